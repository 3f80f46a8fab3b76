//! What ferry tells scripts and people, checked against what happened on
//! disk: `--json` lines, rsync's `-i` itemized lines and `--stats` fields,
//! `-e` read into ferry's own settings, `--bwlimit`, and the generated man
//! page and completions.
mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    // The phase it got to, then the summary.
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["type"], "phase", "{out}");
    assert_eq!(lines[0]["phase"], "connecting", "{out}");
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

/// A partial left by a cut run is resumed, and the line says from where
/// and how the result was checked.
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
    // No helper on this server, its shell's tools hashed the result.
    assert_eq!(resumed["verified"], "shell", "{resumed}");
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
    // The man page carries what --help says after the options.
    for section in [
        ".SH \"WHAT IS COPIED\"",
        ".SH EXAMPLES",
        ".SH \"EXIT STATUS\"",
        ".SH \"SEE ALSO\"",
    ] {
        assert!(man.stdout.contains(section), "man page lacks {section}");
    }
    assert!(man.stdout.contains("ferry demo syncs"), "{man}");
    assert!(man.stdout.contains("\\fB255\\fR"), "{man}");
}

/// --help: one option a line, in rsync's man page's groups and then
/// ferry's own, then examples, the demo and the exit codes; the same text
/// as rsync's `-h` alone.
#[test]
fn help_groups_the_options_and_ends_with_examples_and_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let help = FerryCmd::bare(home.path()).arg("--help").run_ok();
    let text = &help.stdout;
    let mut from = 0;
    for heading in [
        "Usage: ferry [OPTIONS] SRC... [USER@]HOST:DEST",
        "\nWhat is copied:\n  -a, --archive ",
        "\nDeciding what to send:\n",
        "\nFilters:\n",
        "\nDeleting:\n",
        "\nWriting files:\n",
        "\nOutput:\n",
        "\nConnection:\n",
        "\nferry's own (not in rsync):\n",
        "\nHelp and installation:\n",
        "\nExamples:\n",
        "ferry demo",
        "\nExit codes",
        "255  could not connect",
    ] {
        let at = text[from..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order\n{text}"));
        from += at + heading.len();
    }
    // No catch-all group: every option is under one of the headings.
    assert!(!text.contains("\nOptions:\n"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("      --delete ") && l.contains("Delete destination files")),
        "one option a line, its help beside it\n{text}"
    );
    let h = FerryCmd::bare(home.path()).arg("-h").run_ok();
    assert_eq!(h.stdout, help.stdout);
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

// ---------------------------------------------------------------------------
// rsync's lines: -v, -i, -ii, --out-format, --log-file, --info and
// --list-only, each compared with what rsync 3.5 prints for the same
// command on the same trees, locally and over ssh.
// ---------------------------------------------------------------------------

/// A POSIX zone (no tzdata needed) half an hour off UTC: listings and logs
/// print local time.
const TZ: &str = "FRY-5:30";

/// rsync and ferry run with the same arguments against the same sshd, each
/// after the destination is made afresh.
struct Twins {
    sshd: Sshd,
    rsh: String,
    /// The source tree (in the remote directory, so that a pull reads it).
    src: PathBuf,
}

/// Where a run copies: locally, pushed to the sshd, or pulled from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Local,
    Push,
    Pull,
}

impl Twins {
    fn new() -> Twins {
        assert!(
            Path::new("/usr/bin/rsync").exists(),
            "rsync not found: these tests compare ferry's lines with rsync's \
             (apt-get install -y rsync)"
        );
        let sshd = Sshd::start();
        let rsh = format!("ssh -F {}", sshd.ssh_config().display());
        let src = sshd.remote().join("src");
        make_line_tree(&src);
        Twins { sshd, rsh, src }
    }

    /// The destination directory a run of `way` writes to.
    fn dest(&self, way: Way) -> PathBuf {
        match way {
            Way::Push => self.sshd.remote().join("dst"),
            _ => self.sshd.local().join("dst"),
        }
    }

    /// SRC/ and DEST/ as the command line names them.
    fn paths(&self, way: Way) -> [String; 2] {
        let (src, dest) = (self.src.display(), self.dest(way).display().to_string());
        match way {
            Way::Local => [format!("{src}/"), format!("{dest}/")],
            Way::Push => [format!("{src}/"), format!("{HOST_ALIAS}:{dest}/")],
            Way::Pull => [format!("{HOST_ALIAS}:{src}/"), format!("{dest}/")],
        }
    }

    fn rsync(&self, args: &[String]) -> Output {
        let mut cmd = Command::new("rsync");
        cmd.env("HOME", self.sshd.home())
            .env("TZ", TZ)
            .arg("-e")
            .arg(&self.rsh)
            .args(args);
        run_with_deadline(&mut cmd, Duration::from_secs(60))
    }

    fn ferry(&self, args: &[String]) -> Output {
        self.sshd.ferry().env("TZ", TZ).args(args).run_default()
    }

    /// rsync, then ferry, each on the destination `state` makes for `way`,
    /// with `options` and the two paths; both must exit alike.
    fn both(&self, way: Way, state: State, options: &[&str]) -> (Output, Output) {
        let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        args.extend(self.paths(way));
        state.make(&self.src, &self.dest(way));
        let by_rsync = self.rsync(&args);
        state.make(&self.src, &self.dest(way));
        let by_ferry = self.ferry(&args);
        assert_eq!(
            by_rsync.code, by_ferry.code,
            "{way:?} {options:?}: exit codes differ\nrsync: {by_rsync}\nferry: {by_ferry}"
        );
        (by_rsync, by_ferry)
    }

    /// Asserts that both print the same item lines (in any order: ferry
    /// finishes files as they complete); returns them.
    #[track_caller]
    fn same_lines(&self, way: Way, state: State, options: &[&str]) -> Vec<String> {
        let (by_rsync, by_ferry) = self.both(way, state, options);
        let (r, f) = (item_lines(&by_rsync), item_lines(&by_ferry));
        assert_eq!(
            r, f,
            "{way:?} {state:?} {options:?}: lines differ\nrsync: {by_rsync}\nferry: {by_ferry}"
        );
        r
    }
}

/// The destination a run starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing there: everything is created.
    Fresh,
    /// An exact copy: nothing changes.
    Synced,
    /// A copy gone stale: a file changed, a mode and a directory time
    /// differ, a link and a file missing, extra entries to delete.
    Stale,
}

impl State {
    fn make(self, src: &Path, dest: &Path) {
        if dest.exists() {
            fs::remove_dir_all(dest).unwrap();
        }
        if self == State::Fresh {
            return;
        }
        let copied = Command::new("cp").arg("-a").arg(src).arg(dest).status();
        assert!(copied.is_ok_and(|s| s.success()), "cp -a {}", src.display());
        if self == State::Synced {
            return;
        }
        write_file(&dest.join("d/b.txt"), b"an older, longer version\n");
        set_mtime(&dest.join("d/b.txt"), 1_500_000_000);
        set_mode(&dest.join("a.txt"), 0o600);
        fs::remove_file(dest.join("lnk")).unwrap();
        fs::remove_file(dest.join("with space.txt")).unwrap();
        write_file(&dest.join("extra.txt"), b"only here");
        write_file(&dest.join("gone/sub/f"), b"only here");
        set_mtime(&dest.join("gone/sub"), 1_400_000_000);
        set_mtime(&dest.join("gone"), 1_400_000_000);
        set_mtime(&dest.join("d"), 1_300_000_000);
        set_mtime(dest, 1_300_000_000);
    }
}

/// Files, directories (one empty, one nested), symlinks in and out of a
/// directory, a name with a space; every time fixed and old.
fn make_line_tree(src: &Path) {
    write_file(&src.join("a.txt"), b"hello\n");
    write_file(&src.join("big.bin"), &random_bytes(100_000, 7));
    write_file(&src.join("d/b.txt"), b"b\n");
    write_file(&src.join("with space.txt"), b"s");
    fs::create_dir_all(src.join("d/e")).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("lnk")).unwrap();
    std::os::unix::fs::symlink("../a.txt", src.join("d/up")).unwrap();
    for (i, rel) in ["a.txt", "big.bin", "d/b.txt", "with space.txt"]
        .iter()
        .enumerate()
    {
        set_mtime(&src.join(rel), 1_600_000_000 + i as u64 * 86_400);
        set_mode(&src.join(rel), 0o644);
    }
    for (i, rel) in ["d/e", "d", "empty", ""].iter().enumerate() {
        set_mtime(&src.join(rel), 1_650_000_000 + i as u64 * 3_600);
    }
}

/// stdout's lines about items, sorted: without the lines around them that
/// rsync prints with -v (file list, totals) and ferry's summary, which
/// differ by design (docs/RSYNC.md).
fn item_lines(out: &Output) -> Vec<String> {
    let around = |l: &&str| {
        l.is_empty()
            || l.ends_with("incremental file list")
            || l.starts_with("delta-transmission ")
            || l.starts_with("opening connection using: ")
            || l.starts_with("total: matches=")
            || (l.starts_with("sent ") && l.contains(" bytes  received "))
            || l.starts_with("total size is ")
            || l.contains(" sent (") && l.contains(" resumed, ")
    };
    let mut lines: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| !around(l))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn out_format_lines_are_rsyncs() {
    let twins = Twins::new();
    let formats = [
        "--out-format=%o|%i|%n|%f|%l|%B|%M|%L",
        "--log-format=%n%L",
        "--out-format=[%-12n] %'10l %i",
    ];
    for way in [Way::Local, Way::Push, Way::Pull] {
        for format in formats {
            for state in [State::Fresh, State::Stale] {
                let lines = twins.same_lines(way, state, &["-a", "--delete", format]);
                assert!(lines.len() > 3, "{way:?} {format}: {lines:?}");
            }
        }
    }
    // A sample of what both printed: a link made, a deletion (rsync knows
    // nothing of it but its name: the epoch in local time), a directory
    // whose time is set.
    let lines = twins.same_lines(Way::Push, State::Stale, &["-a", "--delete", formats[0]]);
    for (start, end) in [
        ("send|cL+++++++++|lnk|", "| -> a.txt"),
        (
            "del.|*deleting  |gone/|gone|0|---------|1970/01/01-05:30:00|",
            "|",
        ),
        ("send|.d..t......|d/|", "|"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(start) && l.ends_with(end)),
            "no {start}...{end} in {lines:#?}"
        );
    }
}

#[test]
fn verbose_and_itemized_lines_show_symlink_targets() {
    let twins = Twins::new();
    for way in [Way::Local, Way::Push, Way::Pull] {
        for flag in ["-v", "-i"] {
            let lines = twins.same_lines(way, State::Fresh, &["-a", flag]);
            let link = match flag {
                "-v" => "d/up -> ../a.txt",
                _ => "cL+++++++++ d/up -> ../a.txt",
            };
            assert!(lines.iter().any(|l| l == link), "{way:?}: {lines:#?}");
        }
        // A dry run reads the targets it would make.
        twins.same_lines(way, State::Stale, &["-a", "-n", "-i"]);
    }
}

#[test]
fn unchanged_entries_are_listed_at_the_second_level() {
    let twins = Twins::new();
    for way in [Way::Local, Way::Push, Way::Pull] {
        let lines = twins.same_lines(way, State::Synced, &["-a", "-ii"]);
        for line in [
            ".d          ./",
            ".f          a.txt",
            ".L          lnk -> a.txt",
        ] {
            assert!(lines.iter().any(|l| l == line), "{way:?}: {lines:#?}");
        }
        // -vv: with %i the same, without it rsync's "is uptodate".
        twins.same_lines(way, State::Synced, &["-a", "-vv", "-i"]);
        let lines = twins.same_lines(way, State::Stale, &["-a", "-vv"]);
        assert!(
            lines.iter().any(|l| l == "big.bin is uptodate"),
            "{way:?}: {lines:#?}"
        );
    }
    // One -i lists only what changes: nothing here.
    let lines = twins.same_lines(Way::Push, State::Synced, &["-a", "-i"]);
    assert!(lines.is_empty(), "{lines:#?}");
}

/// A `--log-file`'s lines without rsync's `YYYY/MM/DD HH:MM:SS [PID] `
/// prefix (checked here), sorted, and its last line apart: the byte counts
/// differ between any two runs.
fn log_lines(path: &Path) -> (Vec<String>, String) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let (stamp, rest) = line.split_at(20);
            let digits = stamp.chars().filter(char::is_ascii_digit).count();
            assert_eq!(digits, 14, "no timestamp: {line:?}");
            let (pid, rest) = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once("] "))
                .unwrap_or_else(|| panic!("no [pid]: {line:?}"));
            assert!(pid.parse::<u32>().is_ok(), "{line:?}");
            rest.to_string()
        })
        .collect();
    let last = lines.pop().unwrap_or_default();
    lines.sort();
    (lines, last)
}

#[test]
fn log_file_lines_are_rsyncs() {
    let twins = Twins::new();
    let log = twins.sshd.local().join("run.log");
    let log_arg = format!("--log-file={}", log.display());
    for way in [Way::Local, Way::Push, Way::Pull] {
        for (state, extra) in [
            (State::Fresh, None),
            (State::Stale, None),
            (State::Stale, Some("--log-file-format=%o %n%L")),
            (State::Synced, Some("-ii")),
        ] {
            let mut options = vec!["-a", "--delete", log_arg.as_str()];
            options.extend(extra);
            let logged = |by: &str| {
                let (lines, last) = log_lines(&log);
                fs::remove_file(&log).unwrap();
                assert!(
                    last.starts_with("sent ") && last.contains(" bytes  total size "),
                    "{by}'s last line: {last:?}"
                );
                lines
            };
            let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            args.extend(twins.paths(way));
            state.make(&twins.src, &twins.dest(way));
            twins.rsync(&args).assert_ok();
            let by_rsync = logged("rsync");
            state.make(&twins.src, &twins.dest(way));
            twins.ferry(&args).assert_ok();
            assert_eq!(by_rsync, logged("ferry"), "{way:?} {state:?} {extra:?}");
            let first = if way == Way::Pull {
                "receiving"
            } else {
                "building"
            };
            assert!(by_rsync.contains(&format!("{first} file list")));
        }
    }
    // With -v the log ends as the output does; the output is rsync's too.
    let mut args = vec!["-av".to_string(), log_arg.clone()];
    args.extend(twins.paths(Way::Local));
    State::Fresh.make(&twins.src, &twins.dest(Way::Local));
    let out = twins.ferry(&args);
    out.assert_ok();
    let (lines, last) = log_lines(&log);
    assert!(last.starts_with("total size is "), "{last}");
    let dest = twins.dest(Way::Local).display().to_string();
    assert!(
        lines.contains(&format!("created directory {dest}")),
        "{lines:#?}"
    );
    assert!(
        out.stdout.contains(&format!("created directory {dest}\n")),
        "{out}"
    );
}

/// rsync logs to syslog when its log file cannot be opened, says so, and
/// goes on (exit 0); ferry names the file and goes on without a log.
#[test]
fn a_log_file_that_cannot_be_opened_is_named_and_the_run_goes_on() {
    let twins = Twins::new();
    let bad = twins.sshd.local().join("no/such/dir/run.log");
    let option = format!("--log-file={}", bad.display());
    let (by_rsync, by_ferry) = twins.both(Way::Push, State::Fresh, &["-a", &option]);
    by_rsync.assert_ok();
    by_ferry
        .assert_ok()
        .assert_stderr_contains(&format!("failed to open log-file {}", bad.display()));
    assert!(by_ferry.stdout.contains("Ignoring \"log file\" setting."));
    assert_trees_identical(&twins.src, &twins.dest(Way::Push));
}

#[test]
fn info_flags_choose_the_lines_as_rsyncs_do() {
    let twins = Twins::new();
    for (way, state, options) in [
        (Way::Local, State::Stale, &["-a", "--info=name2"][..]),
        (
            Way::Push,
            State::Stale,
            &["-a", "--info=NAME,del", "--delete"],
        ),
        (
            Way::Pull,
            State::Stale,
            &["-a", "-v", "--info=name0", "--delete"],
        ),
        (
            Way::Local,
            State::Stale,
            &["-a", "-i", "--info=del0", "--delete"],
        ),
        (Way::Push, State::Synced, &["-a", "-i", "--info=name2"]),
        (Way::Local, State::Fresh, &["-a", "--info=all0,name1"]),
    ] {
        let lines = twins.same_lines(way, state, options);
        assert!(!lines.is_empty(), "{options:?} printed nothing");
    }
    let help = |by: Output| by.assert_ok().stdout.clone();
    let args = ["--info=help".to_string()];
    assert_eq!(help(twins.rsync(&args)), help(twins.ferry(&args)));
    let args = ["--info=names".to_string(), "a".into(), "b".into()];
    let (by_rsync, by_ferry) = (twins.rsync(&args), twins.ferry(&args));
    assert_eq!((by_rsync.code, by_ferry.code), (1, 1), "{by_ferry}");
    by_ferry.assert_stderr_contains("Unknown --info item: \"names\"");
}

#[test]
fn verbose_names_what_delete_removes_in_every_direction() {
    let twins = Twins::new();
    for way in [Way::Local, Way::Push, Way::Pull] {
        // The dry run first: the tree the real run leaves is checked after.
        for options in [
            &["-a", "--delete", "-v", "-n"][..],
            &["-a", "--delete", "-v"],
        ] {
            let lines = twins.same_lines(way, State::Stale, options);
            for line in [
                "deleting extra.txt",
                "deleting gone/sub/f",
                "deleting gone/",
            ] {
                assert!(lines.iter().any(|l| l == line), "{way:?}: {lines:#?}");
            }
        }
        assert!(
            !twins.dest(way).join("extra.txt").exists(),
            "{way:?}: not deleted"
        );
    }
}

#[test]
fn list_only_prints_rsyncs_listing_and_copies_nothing() {
    let twins = Twins::new();
    let src = twins.src.display().to_string();
    let remote = format!("{HOST_ALIAS}:{src}");
    let dest = twins.sshd.local().join("never");
    let never = dest.display().to_string();
    for args in [
        vec!["--list-only".to_string(), format!("{src}/")],
        vec![format!("{src}/")],
        vec!["-a".into(), format!("{src}/")],
        vec!["-r".into(), src.clone()],
        vec![src.clone()],
        vec!["-a".into(), "--exclude=d/".into(), format!("{src}/")],
        vec![
            "-ah".into(),
            "--list-only".into(),
            format!("{src}/d/"),
            format!("{src}/a.txt"),
            never.clone(),
        ],
        vec![
            "-a".into(),
            "--list-only".into(),
            format!("{src}/"),
            never.clone(),
        ],
        vec!["-a".into(), format!("{remote}/")],
        vec![
            "--list-only".into(),
            "-r".into(),
            remote.clone(),
            never.clone(),
        ],
    ] {
        let (by_rsync, by_ferry) = (twins.rsync(&args), twins.ferry(&args));
        by_ferry.assert_ok();
        // In rsync's order, line for line.
        assert_eq!(by_rsync.stdout, by_ferry.stdout, "{args:?}\n{by_ferry}");
        assert!(by_ferry.stdout.lines().count() > 0, "{args:?}");
    }
    assert!(!dest.exists(), "a listing made its destination");
    let lines = twins.ferry(&["-a".to_string(), format!("{src}/")]).stdout;
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with(" lnk -> a.txt")),
        "{lines}"
    );
}

/// `-i`, `-v` and `--json` lines follow the plan, not the order transfers
/// finish in: two identical runs print the same lines, pushed with 128
/// files in flight through sizes that finish out of order.
#[test]
fn identical_runs_print_identical_lines() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    for dir in 0..4 {
        for file in 0..60u64 {
            // Large and small files mixed, so that later ones finish first.
            let len = if file % 7 == 0 {
                300_000
            } else {
                (file * 37) as usize % 5000
            };
            let seed = dir * 100 + file;
            write_file(
                &src.join(format!("d{dir}/f{file:02}")),
                &random_bytes(len, seed),
            );
        }
    }
    let without_summary = |out: &Output| -> Vec<String> {
        out.stdout
            .lines()
            // The summary lines hold the run's time.
            .filter(|l| !l.contains("\"type\":\"summary\"") && !l.contains(" files sent ("))
            .map(str::to_string)
            .collect()
    };
    for format in [&["-i"][..], &["-v"], &["--json"]] {
        let dest = sshd.remote().join("dest");
        let runs: Vec<Vec<String>> = (0..2)
            .map(|_| {
                let _ = fs::remove_dir_all(&dest);
                let out = sshd
                    .ferry()
                    .args(["-r", "--remote-hash", "off"])
                    .args(format)
                    .arg(format!("{}/", src.display()))
                    .arg(sshd.spec(&dest))
                    .run_default();
                out.assert_ok();
                without_summary(&out)
            })
            .collect();
        assert!(runs[0].len() >= 240, "{format:?}: {:?}", runs[0]);
        assert_eq!(runs[0], runs[1], "{format:?}");
    }
}

/// `-P` off a terminal (stderr to a file, as under cron): the overall line
/// once a second while a transfer of several seconds goes on, each a line
/// of its own; before the plan, a line saying what the run is doing (no
/// bar of nothing).
#[test]
fn progress_off_a_terminal_prints_a_line_every_second() {
    let sshd = Sshd::start();
    let src = sshd.local().join("slow.bin");
    write_file(&src, &random_bytes(3 * MIB as usize, 4));
    let dest = sshd.remote().join("slow.bin");
    let out = sshd
        .ferry()
        .args(["-P", "--bwlimit", "800", "--remote-hash", "off"])
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_ok();
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&src).unwrap());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("/3.00 MiB ") && l.contains("ETA"))
        .collect();
    // About four seconds at 800 KiB/s: a line each second, the first
    // within a second of the start.
    assert!(lines.len() >= 3, "{lines:#?}\n{out}");
    assert!(
        !out.stderr.contains("0 B/0 B"),
        "no bar before the plan\n{out}"
    );
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("00:00:00 connecting"),
        "the first line says what the run does\n{out}"
    );
    assert!(
        !out.stderr.contains('\r') && !out.stderr.contains('\x1b'),
        "{out}"
    );
}

/// A dry run's summary says so, as rsync's lines do.
#[test]
fn a_dry_runs_summary_is_marked() {
    let t = tempfile::tempdir().unwrap();
    write_file(&t.path().join("src/a"), b"a");
    let out = FerryCmd::bare(t.path())
        .args(["-rvn", "src/", "dest/"])
        .current_dir(t.path())
        .run_default();
    out.assert_ok();
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" (DRY RUN)"), "{out}");
    assert!(!t.path().join("dest").exists(), "{out}");
}

/// `-vv`'s logs on stderr carry no colour codes when stderr is no
/// terminal (a log file, a pipe).
#[test]
fn logs_off_a_terminal_carry_no_colour_codes() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f");
    write_file(&src, b"data");
    let out = sshd
        .ferry()
        .args(["-vv"])
        .arg(&src)
        .arg(sshd.spec(&sshd.remote().join("f")))
        .run_default();
    out.assert_ok();
    assert!(out.stderr.contains("INFO"), "-vv logs\n{out}");
    assert!(!out.stderr.contains('\x1b'), "{out}");
}

/// Sizes as the progress line prints them (indicatif's binary units).
fn size_of(shown: &str) -> Option<f64> {
    let (number, unit) = shown.split_once(' ').unwrap_or((shown, "B"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// A reconnect keeps the overall line's totals: never more bytes done
/// than in all, never a file counted twice (before, a resumed push showed
/// `284 MiB/110 MiB` and `0/3 files` for one file).
#[test]
fn progress_keeps_its_totals_across_a_reconnect() {
    let sshd = Sshd::start();
    let src = sshd.local().join("cut.bin");
    write_file(&src, &random_bytes(6 * MIB as usize, 11));
    let dest = sshd.remote().join("cut.bin");
    let proxy = CutProxy::start(sshd.port(), None);
    proxy.set_schedule(&[Fault::Cut(Direction::Up, 3 * MIB)]);
    let out = sshd
        .ferry_with_config(&sshd.config_for_proxy(&proxy))
        .args(["-P", "--bwlimit", "1500", "--retry-wait", "0.05"])
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run(Duration::from_secs(120));
    out.assert_ok();
    assert_eq!(proxy.schedule_left(), 0, "the link was never cut\n{out}");
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&src).unwrap());
    let bars: Vec<&str> = out.stderr.lines().filter(|l| l.contains(" ETA ")).collect();
    assert!(bars.len() >= 3, "{out}");
    for line in &bars {
        // "00:00:03 2.50 MiB/6.00 MiB 41% 1.46 MiB/s ETA 2s 0/1 files"
        let mut words = line.split(' ').skip(1);
        let done_total: String = [words.next(), words.next(), words.next()]
            .iter()
            .map(|w| w.unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        let (done, total) = done_total.split_once('/').expect("done/total");
        let (done, total) = (size_of(done), size_of(total));
        assert!(
            done.is_some() && total.is_some() && done <= total,
            "more done than in all: {line}\n{out}"
        );
        assert!(
            line.contains(" 0/1 files") || line.contains(" 1/1 files"),
            "one file counted as more: {line}\n{out}"
        );
    }
}

/// A directory named without -r or -d: rsync's `skipping directory NAME`
/// on stdout (an info line, piped or not), exit 0, nothing made; no
/// `--info` word silences it, -q does. Compared with rsync line for line.
#[test]
fn a_directory_without_recursion_is_skipped_in_rsyncs_words() {
    require_rsync();
    let dir = tempfile::tempdir().unwrap();
    write_file(&dir.path().join("dir/f"), b"data");
    let lines: [&[&str]; 6] = [
        &["dir"],
        &["--info=nonreg0", "dir"],
        &["-q", "dir"],
        &["-n", "dir"],
        &["dir", "dir"],
        &["dir/"],
    ];
    for line in lines {
        let dest = dir.path().join("dest");
        let mut rsync = std::process::Command::new("rsync");
        rsync.current_dir(dir.path()).args(line).arg("dest");
        let rsync = run_with_deadline(&mut rsync, std::time::Duration::from_secs(60));
        assert!(!dest.exists(), "{line:?}: rsync made the destination");
        let ferry = FerryCmd::bare(dir.path())
            .current_dir(dir.path())
            .args(line)
            .arg("dest")
            .run_default();
        assert!(
            !dest.exists(),
            "{line:?}: ferry made the destination\n{ferry}"
        );
        assert_eq!(
            (ferry.code, ferry.stdout.as_str(), ferry.stderr.as_str()),
            (rsync.code, rsync.stdout.as_str(), rsync.stderr.as_str()),
            "{line:?}: ferry, then rsync"
        );
    }
}
