//! What ferry tells scripts and people, checked against what happened on
//! disk: `--json` lines, rsync's `-i` itemized lines and `--stats` fields,
//! `-e` read into ferry's own settings, `--bwlimit`, and the generated man
//! page and completions.
mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

/// Every stdout line parsed as JSON; the test fails on any line that is not.
fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{out}"))
        })
        .collect()
}

fn item<'a>(lines: &'a [Value], path: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "item" && l["path"] == path)
        .unwrap_or_else(|| panic!("no item line for {path}: {lines:#?}"))
}

fn summary(lines: &[Value]) -> &Value {
    let last = lines.last().expect("no output lines");
    assert_eq!(last["type"], "summary", "the last line is not the summary");
    last
}

#[test]
fn json_lines_account_for_every_action_and_the_run() {
    let sshd = Sshd::start();
    let src = sshd.local().join("site");
    make_test_tree(&src);
    let dest = sshd.remote().join("site");
    let push = |extra: &[&str]| {
        sshd.ferry()
            .args(["-a", "--json"])
            .args(extra)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run_ok()
    };

    let first = json_lines(&push(&[]));
    assert_trees_identical(&src, &dest);
    let medium = item(&first, "medium.bin");
    assert_eq!(medium["action"], "sent");
    assert_eq!(medium["kind"], "file");
    assert_eq!(medium["size"], 300 * 1024);
    assert_eq!(medium["bytes_sent"], 300 * 1024);
    assert_eq!(item(&first, "dir with space/nested")["kind"], "dir");
    let total = summary(&first);
    assert_eq!(total["exit_code"], 0);
    assert_eq!(total["error"], Value::Null);
    assert_eq!(total["files_sent"], 7);
    let sent = total["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(
        total["wire_bytes_sent"].as_u64().expect("wire") > sent,
        "{total}"
    );
    assert!(total["wire_bytes_received"].as_u64().expect("wire") > 0);

    // One block changed, one file gone from the source.
    let mut data = fs::read(src.join("medium.bin")).unwrap();
    data[100_000] ^= 0xff;
    write_file(&src.join("medium.bin"), &data);
    set_mtime(&src.join("medium.bin"), 1_600_000_000);
    fs::remove_file(src.join("top.txt")).unwrap();
    let second = json_lines(&push(&["--delete"]));
    assert_trees_identical(&src, &dest);
    let delta = item(&second, "medium.bin");
    assert_eq!(delta["action"], "delta");
    let (sent, reused) = (delta["bytes_sent"].as_u64(), delta["bytes_reused"].as_u64());
    assert_eq!(sent.zip(reused).map(|(s, r)| s + r), Some(300 * 1024));
    assert!(sent < Some(64 * 1024), "{delta}");
    assert_eq!(item(&second, "top.txt")["action"], "deleted");
    let total = summary(&second);
    assert_eq!(
        (total["files_delta"].as_u64(), total["deleted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(total["files_up_to_date"], 5);
}

#[test]
fn json_summary_carries_the_exit_code_of_a_failed_run() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.txt");
    write_file(&src, b"data");
    let config = sshd.config_for_port("closed", closed_port());
    let out = sshd
        .ferry_with_config(&config)
        .arg("--json")
        .arg(&src)
        .arg(format!("{HOST_ALIAS}:f.txt"))
        .run_default();
    out.assert_code(255);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    let total = summary(&lines);
    assert_eq!(total["exit_code"], 255);
    assert!(
        total["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{total}"
    );
    assert_eq!(total["files_sent"], 0);

    // A bad option value is still answered with a summary line.
    let out = sshd
        .ferry()
        .args(["--json", "--bwlimit", "lots"])
        .arg(&src)
        .arg(format!("{HOST_ALIAS}:f.txt"))
        .run_default();
    out.assert_code(1);
    let total = summary(&json_lines(&out)).clone();
    assert_eq!(total["exit_code"], 1);
    assert!(
        total["error"]
            .as_str()
            .is_some_and(|e| e.contains("--bwlimit")),
        "{total}"
    );
}

/// A partial left by a cut run is resumed, and the line says from where.
#[test]
fn json_names_the_offset_a_resume_continued_from() {
    let sshd = Sshd::start();
    let src = sshd.local().join("big.bin");
    let data = random_bytes(6 * MIB as usize, 9);
    write_file(&src, &data);
    let dest = sshd.remote().join("big.bin");
    let proxy = CutProxy::start(sshd.port(), Some((Direction::Up, 3 * MIB)));
    let cut = sshd
        .ferry_with_config(&sshd.config_for_proxy(&proxy))
        .args(["--retries", "0", "--json"])
        .arg(&src)
        .arg(format!("{HOST_ALIAS}:{}", dest.display()))
        .run_default();
    assert_eq!(summary(&json_lines(&cut))["exit_code"], cut.code);
    assert_ne!(cut.code, 0, "{cut}");

    let lines = json_lines(
        &sshd
            .ferry()
            .arg("--json")
            .arg(&src)
            .arg(sshd.spec(&dest))
            .run_ok(),
    );
    assert_files_identical(&src, &dest);
    let resumed = item(&lines, "big.bin");
    assert_eq!(resumed["action"], "resumed", "{resumed}");
    let from = resumed["resumed_from"].as_u64().expect("resumed_from");
    assert!(from > 0 && from < 6 * MIB, "{resumed}");
    assert_eq!(resumed["bytes_reused"].as_u64(), Some(from));
    assert_eq!(resumed["bytes_sent"].as_u64(), Some(6 * MIB - from));
}

#[test]
fn itemized_lines_read_as_rsyncs() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_test_tree(&src);
    let dest = sshd.remote().join("tree");
    let push = |extra: &[&str]| {
        sshd.ferry()
            .args(["-a", "-i"])
            .args(extra)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run_ok()
    };
    let lines = push(&[]).stdout;
    for expected in [
        "cd+++++++++ ./",
        "<f+++++++++ top.txt",
        "cd+++++++++ dir with space/nested/",
        "<f+++++++++ dir with space/nested/deeper/leaf.dat",
    ] {
        assert!(
            lines.lines().any(|l| l == expected),
            "no {expected:?} in\n{lines}"
        );
    }

    fs::write(src.join("top.txt"), b"shorter now").unwrap();
    set_mtime(&src.join("top.txt"), 1_700_000_000);
    set_mode(&src.join("script.sh"), 0o700);
    write_file(&dest.join("stale.txt"), b"only on the destination");
    let lines = push(&["--delete"]).stdout;
    let got: Vec<&str> = lines.lines().collect();
    for expected in [
        "<f.st...... top.txt",
        ".f...p..... script.sh",
        "*deleting   stale.txt",
    ] {
        assert!(got.contains(&expected), "no {expected:?} in\n{lines}");
    }
    assert!(
        !lines.contains("medium.bin"),
        "an unchanged file was listed:\n{lines}"
    );

    // Pulling receives: '>' instead of '<'.
    let back = sshd.local().join("back");
    let out = sshd
        .ferry()
        .args(["-a", "-i"])
        .arg(sshd.spec(&dest.join("top.txt")))
        .arg(format!("{}/", back.display()))
        .run_ok();
    assert!(
        out.stdout.lines().any(|l| l == ">f+++++++++ top.txt"),
        "{out}"
    );
    assert!(!out.stdout.contains('<'), "{out}");
}

#[test]
fn stats_give_rsyncs_fields_with_the_runs_numbers() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_test_tree(&src);
    let dest = sshd.remote().join("tree");
    let out = sshd
        .ferry()
        .args(["-a", "--stats"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_trees_identical(&src, &dest);
    let field = |name: &str| -> u64 {
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name:?} line\n{out}"));
        let number: String = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        number.parse().unwrap_or_else(|_| panic!("{name}: {line}"))
    };
    let file_bytes = regular_file_bytes(&src);
    assert_eq!(field("Number of regular files transferred"), 7);
    assert_eq!(field("Literal data"), file_bytes);
    assert_eq!(field("Total transferred file size"), file_bytes);
    assert_eq!(field("Total file size"), file_bytes);
    assert_eq!(field("Matched data"), 0);
    assert!(field("Total bytes sent") > file_bytes, "{out}");
    assert!(field("Total bytes received") > 0);
    assert!(
        out.stdout
            .contains("Number of files: 15 (reg: 7, dir: 6, link: 2)"),
        "{out}"
    );
}

#[test]
fn rsh_arguments_become_ferrys_own_settings() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.bin");
    write_file(&src, &random_bytes(50_000, 3));
    // A config that knows the host key and nothing else: port, user and
    // key come from -e alone.
    let config = sshd.dir().join("rsh_config");
    fs::write(
        &config,
        format!(
            "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  UserKnownHostsFile {}\n  \
             StrictHostKeyChecking yes\n  IdentitiesOnly yes\n",
            sshd.known_hosts().display()
        ),
    )
    .unwrap();
    let rsh = format!(
        "ssh -p {} -i '{}' -l {} -F {} -o ConnectTimeout=10",
        sshd.port(),
        sshd.user_key().display(),
        sshd.user(),
        config.display()
    );
    let dest = sshd.remote().join("f.bin");
    sshd.ferry_bare()
        .arg("-e")
        .arg(&rsh)
        .arg(&src)
        .arg(format!("{HOST_ALIAS}:{}", dest.display()))
        .run_ok();
    assert_files_identical(&src, &dest);

    for (command, named) in [
        ("ssh -L 8080:localhost:80", "-L"),
        ("rsh -l me", "rsh"),
        ("ssh -o LocalForward=1", "LocalForward"),
    ] {
        let out = sshd
            .ferry_bare()
            .arg("-e")
            .arg(command)
            .arg(&src)
            .arg(format!("{HOST_ALIAS}:elsewhere"))
            .run_default();
        out.assert_code(1).assert_stderr_contains(named);
        assert!(!sshd.remote().join("elsewhere").exists());
    }
}

#[test]
fn bwlimit_and_compression_still_deliver_identical_files() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_test_tree(&src);
    let dest = sshd.remote().join("tree");
    sshd.ferry()
        .args(["-az", "--bwlimit", "20M"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_trees_identical(&src, &dest);
    let out = sshd
        .ferry()
        .args(["--bwlimit", "lots"])
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(1).assert_stderr_contains("--bwlimit");
}

#[test]
fn man_page_and_completions_come_from_the_flags() {
    let home = tempfile::tempdir().unwrap();
    let man = FerryCmd::bare(home.path()).arg("--man").run_ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH ferry"),
        "{man}"
    );
    for flag in ["itemize\\-changes", "exclude\\-from", "bwlimit"] {
        assert!(man.stdout.contains(flag), "man page lacks {flag}");
    }
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ferry"),
        ("fish", "complete -c ferry"),
    ] {
        let out = FerryCmd::bare(home.path())
            .args(["--completions", shell])
            .run_ok();
        assert!(out.stdout.contains(marker), "{shell}: {out}");
        assert!(out.stdout.contains("files-from"), "{shell}: {out}");
    }
    // rsync's -h is --human-readable; alone it prints the help, as rsync's.
    let help = FerryCmd::bare(home.path()).arg("-h").run_ok();
    assert!(help.stdout.contains("--itemize-changes"), "{help}");
}

/// The sizes of the regular files under `root`, added up.
fn regular_file_bytes(root: &Path) -> u64 {
    fs::read_dir(root)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                regular_file_bytes(&entry.path())
            } else if meta.is_file() {
                meta.len()
            } else {
                0
            }
        })
        .sum()
}

#[test]
fn json_failed_lines_name_the_file_and_the_summary_counts_it() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["blocked.txt", "fine.txt"]);
    let dest = sshd.remote().join("dest");
    // A directory that is not empty, which rsync too leaves (exit 23)
    // without --delete or --force.
    write_file(&dest.join("blocked.txt/inner"), b"kept");
    let out = sshd
        .ferry()
        .args(["-a", "--json"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(23);
    let lines = json_lines(&out);
    let failed: Vec<&Value> = lines.iter().filter(|l| l["action"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["result"], "error");
    assert!(
        failed[0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("blocked.txt")),
        "{out}"
    );
    assert!(failed[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("directory is in the way")));
    assert_eq!(item(&lines, "fine.txt")["action"], "sent");
    let total = summary(&lines);
    assert_eq!(
        (total["exit_code"].as_i64(), total["files_failed"].as_u64()),
        (Some(23), Some(1))
    );
    assert!(dest.join("blocked.txt").is_dir());
    assert_files_identical(&src.join("fine.txt"), &dest.join("fine.txt"));
}
