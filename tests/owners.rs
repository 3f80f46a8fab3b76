//! `-o`, `-g`, `--numeric-ids` and `-a` (which implies them) against rsync:
//! a tree whose files, directories and symlinks belong to ids no user or
//! group has, with a setuid file among them, copied locally, pushed and
//! pulled through the test sshd by both tools; the trees must list alike
//! with find's `%P %y %m %U %G %s %l`. An existing copy whose contents are
//! current but whose owners differ gets its owners back without data (rsync
//! itemizes `.f....og...`). A receiving side that is not root (the server's
//! sessions as nobody, or ferry itself as nobody) gives no owner and does
//! not fail the run.
//!
//! These tests need root, as rsync's do: only root gives files away. They
//! fail loudly (never skip) where the tests do not run as root under CI.

mod common;

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Where the destination is: beside the source, on the server (a push),
/// or here with the source on the server (a pull).
const SIDES: [&str; 3] = ["local", "push", "pull"];

/// Ids no user or group on the machine has.
const UID: u32 = 4242;
const GID: u32 = 4343;

/// True where the tests may give files away; false (with a note) where
/// they may not and are not under CI; a failure under CI=true.
#[track_caller]
fn root_or_skip() -> bool {
    if running_as_root() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the tests do not run as root: the owner tests need root"
    );
    eprintln!("not root: the owner tests need root, as rsync's owner tests do");
    false
}

fn give(path: &Path, uid: u32, gid: u32) {
    lchown(path, Some(uid), Some(gid)).unwrap();
}

fn mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The source tree: owners without names everywhere, root's file among
/// them, a setuid and a setgid file, a symlink with an owner of its own.
fn make_source(src: &Path) {
    fs::create_dir_all(src.join("d/e")).unwrap();
    fs::write(src.join("d/f"), b"file in d").unwrap();
    fs::write(src.join("d/e/deep"), b"deep").unwrap();
    fs::write(src.join("setuid"), b"#!/bin/sh\n").unwrap();
    fs::write(src.join("setgid"), b"#!/bin/sh\n").unwrap();
    fs::write(src.join("rootfile"), b"root's").unwrap();
    std::os::unix::fs::symlink("d/f", src.join("link")).unwrap();
    give(src, UID, GID);
    give(&src.join("d"), UID, 0);
    give(&src.join("d/e"), 5555, 6666);
    give(&src.join("d/f"), UID, GID);
    give(&src.join("d/e/deep"), 0, GID);
    give(&src.join("setuid"), UID, GID);
    give(&src.join("setgid"), 0, GID);
    give(&src.join("rootfile"), 0, 0);
    give(&src.join("link"), 7777, 8888);
    mode(&src.join("setuid"), 0o4755);
    mode(&src.join("setgid"), 0o2755);
    mode(&src.join("d/e"), 0o2775);
}

/// `find -printf '%P %y %m %U %G %s %l'` of `root`, sorted: what the
/// tools' trees are compared by (a directory's size is the file system's).
fn listing(root: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-printf", "%P %y %m %U %G %s %l\n"])
        .output()
        .expect("run find");
    assert!(out.status.success(), "find {}", root.display());
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match l.split(' ').nth(1) {
            Some("d") => {
                let mut f: Vec<&str> = l.split(' ').collect();
                f[5] = "-";
                f.join(" ")
            }
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    lines
}

/// Both tools' roots (`work/rsync`, `work/ferry`) and the server; the
/// tools run on `root/src/` into `root/dest`.
struct Trial<'a> {
    sshd: &'a Sshd,
    work: tempfile::TempDir,
}

impl<'a> Trial<'a> {
    fn new(sshd: &'a Sshd) -> Trial<'a> {
        let work = tempfile::tempdir().unwrap();
        // Reachable by the server's sessions whoever they run as.
        mode(work.path(), 0o755);
        for tool in ["rsync", "ferry"] {
            make_source(&work.path().join(tool).join("src"));
        }
        Trial { sshd, work }
    }

    fn dest(&self, tool: &str) -> PathBuf {
        self.work.path().join(tool).join("dest")
    }

    /// `tool` with `options`, the source and the destination as `side`
    /// names them; rsync reaches the server through `ssh -F`, ferry with
    /// the same config.
    fn run(&self, tool: &str, side: &str, options: &[&str]) -> Output {
        let config = self.sshd.ssh_config();
        let mut cmd = Command::new(if tool == "rsync" {
            PathBuf::from("rsync")
        } else {
            ferry_bin()
        });
        match (tool, side) {
            ("rsync", "local") => {}
            ("rsync", _) => {
                cmd.args(["-e", &format!("ssh -F {}", config.display())]);
            }
            _ => {
                cmd.arg("--ssh-config").arg(&config);
            }
        }
        let src = format!("{}/", self.work.path().join(tool).join("src").display());
        let dest = self.dest(tool).display().to_string();
        let remote = |path: String| format!("{HOST_ALIAS}:{path}");
        let (src, dest) = match side {
            "push" => (src, remote(dest)),
            "pull" => (remote(src), dest),
            _ => (src, dest),
        };
        cmd.env("HOME", self.sshd.home())
            .args(options)
            .arg(src)
            .arg(dest);
        run_with_deadline(&mut cmd, FERRY_TIMEOUT)
    }

    /// Runs both tools with `options` and asserts equal trees and codes.
    #[track_caller]
    fn same_as_rsync(&self, side: &str, options: &[&str]) -> (Output, Output) {
        require_rsync();
        let by_rsync = self.run("rsync", side, options);
        let by_ferry = self.run("ferry", side, options);
        assert_eq!(
            listing(&self.dest("rsync")),
            listing(&self.dest("ferry")),
            "{side} {options:?}: rsync's tree (left) and ferry's (right) differ\n\
             rsync: {by_rsync}\nferry: {by_ferry}"
        );
        assert_eq!(by_rsync.code, by_ferry.code, "{side} {options:?}");
        (by_rsync, by_ferry)
    }
}

/// The itemized lines of an output that change owners or groups, sorted.
fn owner_lines(output: &Output) -> Vec<String> {
    let mut lines: Vec<String> = output
        .stdout
        .lines()
        .filter(|l| {
            let code = l.split(' ').next().unwrap_or("");
            code.len() == 11 && (code.as_bytes()[6] == b'o' || code.as_bytes()[7] == b'g')
        })
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// `-a --numeric-ids` copies owners, groups and the set-id bits that chown
/// would clear, as rsync does, each way; the second run, over a copy whose
/// owners were all changed, gives them back without sending a byte, and
/// itemizes what it changes as rsync does.
#[test]
fn archive_with_numeric_ids_keeps_owners_as_rsync_does() {
    if !root_or_skip() {
        return;
    }
    let sshd = Sshd::start();
    for side in SIDES {
        let trial = Trial::new(&sshd);
        let (_, ferry) = trial.same_as_rsync(side, &["-a", "--numeric-ids"]);
        ferry.assert_ok();
        let got = listing(&trial.dest("ferry"));
        assert!(
            got.iter().any(|l| l == "setuid f 4755 4242 4343 10 "),
            "{side}: {got:#?}"
        );
        assert!(got.iter().any(|l| l.starts_with("link l 777 7777 8888 ")));

        // Every owner changed behind the tools' backs: contents and times
        // are current, only owners and groups differ.
        for tool in ["rsync", "ferry"] {
            let dest = trial.dest(tool);
            for path in std::iter::once(dest.clone()).chain(walk(&dest)) {
                give(&path, 1, 1);
            }
        }
        let options = ["-ai", "--numeric-ids", "--stats"];
        let (rsync, ferry) = trial.same_as_rsync(side, &options);
        ferry.assert_ok();
        assert_eq!(
            owner_lines(&rsync),
            owner_lines(&ferry),
            "{side}: itemized owner changes\nrsync: {rsync}\nferry: {ferry}"
        );
        assert!(ferry.stdout.contains(".f....og... d/f"), "{side}: {ferry}");
        assert!(
            ferry.stdout.contains("Literal data: 0 bytes"),
            "{side}: data was sent for owners alone\n{ferry}"
        );

        // --json says the same: owner and group changed, nothing sent.
        give(&trial.dest("ferry").join("d/f"), 1, 1);
        let json = trial.run("ferry", side, &["-a", "--numeric-ids", "--json"]);
        json.assert_ok();
        let line = json
            .stdout
            .lines()
            .find(|l| l.contains("\"path\":\"d/f\""))
            .unwrap_or_else(|| panic!("{side}: no line for d/f\n{json}"));
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(item["action"], "attributes", "{line}");
        assert_eq!(
            item["changes"],
            serde_json::json!(["owner", "group"]),
            "{line}"
        );
        assert_eq!(item["bytes_sent"], 0, "{line}");
    }
}

/// `-o` alone gives owners, `-g` alone groups; neither touches the other.
#[test]
fn owner_and_group_alone_as_rsync() {
    if !root_or_skip() {
        return;
    }
    let sshd = Sshd::start();
    for options in [
        ["-rlpt", "-o", "--numeric-ids"],
        ["-rlpt", "-g", "--numeric-ids"],
    ] {
        let trial = Trial::new(&sshd);
        trial.same_as_rsync("push", &options).1.assert_ok();
    }
}

/// A receiving side that is not root gives no owner and only its own
/// groups, as rsync's; it does not fail the run. Pushing to a server whose
/// sessions run as nobody (the groups it may give cannot be listed over
/// SFTP: a refusal is taken as rsync's skip), and ferry itself as nobody
/// copying locally.
#[test]
fn a_receiver_that_is_not_root_keeps_its_own_owner_and_succeeds() {
    if !root_or_skip() {
        return;
    }
    require_setpriv();
    let (nobody, nogroup) = nobody_ids();
    let sshd = Sshd::start_with(SshdOptions {
        sftp_as_nobody: true,
        ..SshdOptions::default()
    });
    let src = sshd.local().join("src");
    make_source(&src);
    let dest = sshd.remote().join("dest");
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("--ssh-config")
        .arg(sshd.ssh_config())
        .env("HOME", sshd.home())
        .args(["-a", "--numeric-ids"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest));
    run_with_deadline(&mut cmd, FERRY_TIMEOUT).assert_ok();
    for line in listing(&dest) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[3], nobody.to_string(), "{line}");
        assert_eq!(f[4], nogroup.to_string(), "{line}");
    }

    // Locally, ferry as nobody into a directory of nobody's.
    let work = tempfile::tempdir().unwrap();
    mode(work.path(), 0o755);
    let (src, dest) = (work.path().join("src"), work.path().join("dest"));
    make_source(&src);
    fs::create_dir(&dest).unwrap();
    give(&dest, nobody, nogroup);
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={nobody}"))
        .arg(format!("--regid={nogroup}"))
        .arg("--clear-groups")
        .arg(ferry_bin())
        .args(["-a", "--numeric-ids"])
        .arg(format!("{}/", src.display()))
        .arg(&dest)
        .env("HOME", work.path());
    run_with_deadline(&mut cmd, FERRY_TIMEOUT).assert_ok();
    for line in listing(&dest) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[3], nobody.to_string(), "{line}");
        assert_eq!(f[4], nogroup.to_string(), "{line}");
    }
}

/// Without `--numeric-ids` ids go by name (here both sides share one
/// machine's names: named ids keep theirs, the nameless stay numbers), and
/// `--usermap`, `--groupmap` and `--chown` map them first, as rsync's do:
/// ranges, names, wildcards, numbers; `--chown` implying `-o`/`-g`.
#[test]
fn names_and_maps_as_rsync() {
    if !root_or_skip() {
        return;
    }
    let sshd = Sshd::start();
    let cases: &[&[&str]] = &[
        &["-a"],
        &[
            "-a",
            "--usermap=4000-4999:nobody,root:7,*:8",
            "--groupmap=4343:nogroup",
        ],
        &["-rlpt", "--chown=nobody:nogroup"],
        &["-rlpt", "--chown=:4343"],
        &["-a", "--numeric-ids", "--usermap=5555:nobody,7777:9"],
    ];
    for side in SIDES {
        for options in cases {
            let trial = Trial::new(&sshd);
            trial.same_as_rsync(side, options).1.assert_ok();
        }
    }
}

/// rsync's refusals of maps that cannot be read, before anything runs.
#[test]
fn bad_maps_are_refused_as_rsync_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    for (options, says) in [
        (
            &["--usermap=nobody"][..],
            "No colon found in --usermap: nobody",
        ),
        (
            &["--groupmap=1x:root"][..],
            "Invalid number in --groupmap: 1x:root",
        ),
        (
            &["--chown=a:b", "--usermap=*:c"][..],
            "--chown conflicts with --usermap",
        ),
    ] {
        let mut cmd = Command::new(ferry_bin());
        cmd.args(options)
            .arg(dir.path().join("src"))
            .arg(dir.path().join("dest"))
            .env("HOME", dir.path());
        let out = run_with_deadline(&mut cmd, FERRY_TIMEOUT);
        out.assert_code(1).assert_stderr_contains(says);
        assert!(!dir.path().join("dest").exists());
    }
}
