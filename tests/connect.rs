//! How the remote side is reached and asked, against a real sshd and
//! rsync: `--files-from` lists on the remote host (`:FILE`, `HOST:FILE`)
//! with `/./` anchors, for a push and a pull, each compared with the tree
//! rsync leaves; `--rsync-path` with a wrapper that the remote side is
//! started through, and values ferry refuses; `--iconv` taken where it
//! converts no name, refused (exit 4) where it would.
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// rsync with `args`, over ssh to the fixture's sshd.
fn rsync(sshd: &Sshd, args: &[String]) -> Output {
    let mut cmd = Command::new("rsync");
    cmd.env("HOME", sshd.home())
        .arg("-e")
        .arg(format!("ssh -F {}", sshd.ssh_config().display()))
        .args(args);
    run_with_deadline(&mut cmd, Duration::from_secs(60))
}

fn slash(path: &Path) -> String {
    format!("{}/", path.display())
}

/// A source with the same names under several directories, so that an
/// anchor that is not honoured brings the wrong file or the wrong path.
fn anchored_tree(src: &Path) {
    make_tree_of(
        src,
        &[
            "a/b/c/f",
            "a/b/g",
            "a/k",
            "x/b/h",
            "x/b/c/f",
            "top/t",
            "plain/p",
            "# not a comment",
        ],
    );
}

/// `/./` anchors (the part before is not kept), a plain path, and a line
/// that reads as a comment only where the list is read locally.
const ANCHORED_LIST: &str = "a/./b/c/f\nx/./b/h\ntop/./t\na/./k\nplain/p\n# not a comment\n";

/// Runs ferry and rsync with `-a` and the `--files-from` option `from`
/// from `src` into a destination each (`dest(name)` names it as the tools
/// take it), and checks they leave the same tree; returns ferry's.
fn both_with_list(
    sshd: &Sshd,
    from: &str,
    src: &str,
    dest: impl Fn(&str) -> (PathBuf, String),
) -> PathBuf {
    let ((by_ferry, ferry_arg), (by_rsync, rsync_arg)) = (dest("ferry"), dest("rsync"));
    sshd.ferry().args(["-a", from, src, &ferry_arg]).run_ok();
    rsync(sshd, &["-a", from, src, &rsync_arg].map(String::from)).assert_ok();
    assert_trees_identical_with(&by_rsync, &by_ferry, Compare::ARCHIVE);
    by_ferry
}

#[test]
fn files_from_on_the_remote_host_pushes_as_rsync_does() {
    require_rsync();
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    anchored_tree(&src);
    let list = sshd.remote().join("list");
    fs::write(&list, ANCHORED_LIST).unwrap();
    let from = format!("--files-from=:{}", list.display());
    let by_ferry = both_with_list(&sshd, &from, &slash(&src), |name| {
        let dest = sshd.remote().join(name);
        (dest.clone(), sshd.spec(&dest))
    });
    // Read on the receiving side, the list has no comments.
    assert_eq!(
        list_tree(&by_ferry),
        [
            "# not a comment",
            "b/",
            "b/c/",
            "b/c/f",
            "b/h",
            "k",
            "plain/",
            "plain/p",
            "t"
        ]
    );
    assert_files_identical(&src.join("a/b/c/f"), &by_ferry.join("b/c/f"));
}

#[test]
fn files_from_on_the_remote_host_pulls_as_rsync_does() {
    require_rsync();
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    anchored_tree(&src);
    let list = sshd.remote().join("list");
    fs::write(&list, ANCHORED_LIST).unwrap();
    let from = format!("--files-from={}", sshd.spec(&list));
    let by_ferry = both_with_list(&sshd, &from, &sshd.spec(&src), |name| {
        let dest = sshd.local().join(name);
        (dest.clone(), slash(&dest))
    });
    // Read where it is (the sending side), the list has its comment.
    assert_eq!(
        list_tree(&by_ferry),
        ["b/", "b/c/", "b/c/f", "b/h", "k", "plain/", "plain/p", "t"]
    );
    assert_files_identical(&src.join("x/b/h"), &by_ferry.join("b/h"));
}

#[test]
fn a_missing_remote_list_or_another_host_stops_before_writing() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["f"]);
    let dest = sshd.remote().join("dest");
    let missing = sshd.remote().join("no-such-list");
    let out = sshd
        .ferry()
        .arg(format!("--files-from=:{}", missing.display()))
        .args([&slash(&src), &sshd.spec(&dest)])
        .run_default();
    out.assert_code(12)
        .assert_stderr_contains("failed to open files-from file");
    let out = sshd
        .ferry()
        .arg("--files-from=elsewhere:/list")
        .args([&slash(&src), &sshd.spec(&dest)])
        .run_default();
    out.assert_code(1)
        .assert_stderr_contains("not the same as the transfer hostname");
    assert!(!dest.exists());
}

/// A wrapper in the fixture's directory that notes each command it runs
/// in `log` and then runs it.
fn logging_wrapper(sshd: &Sshd) -> (PathBuf, PathBuf) {
    let (script, log) = (sshd.dir().join("wrap"), sshd.dir().join("wrap.log"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

#[test]
fn rsync_path_with_a_wrapper_starts_the_remote_side_through_it() {
    let sshd = Sshd::start();
    let (script, log) = logging_wrapper(&sshd);
    // The wrapper's own words come before the program, as rsync puts them.
    let rsync_path = format!("--rsync-path={} env FERRY_MARK=1 rsync", script.display());
    let src = sshd.local().join("src");
    make_tree_of(&src, &["a", "sub/b", "sub/deeper/c"]);
    let dest = sshd.remote().join("dest");
    sshd.ferry()
        .args(["-a", &rsync_path, &slash(&src), &sshd.spec(&dest)])
        .run_ok();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    let ran = fs::read_to_string(&log).expect("the wrapper ran");
    assert!(ran.contains("env FERRY_MARK=1 /"), "{ran}");
    assert!(ran.contains("sftp-server"), "{ran}");
    // A changed file is compared by hashing on the server: the helper is
    // started through the wrapper too (and the shell's tools, without it).
    fs::write(&log, "").unwrap();
    write_file(&src.join("sub/b"), &random_bytes(200 * KIB as usize, 7));
    sshd.ferry()
        .args(["-a", &rsync_path, &slash(&src), &sshd.spec(&dest)])
        .run_ok();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    let ran = fs::read_to_string(&log).unwrap();
    assert!(ran.contains("sftp-server"), "{ran}");
    assert!(
        ran.contains("env FERRY_MARK=1 ferry --server"),
        "hashing did not go through the wrapper: {ran}"
    );
    // A pull goes through it as well.
    fs::write(&log, "").unwrap();
    let back = sshd.local().join("back");
    sshd.ferry()
        .args([
            "-a",
            &rsync_path,
            &format!("{}/", sshd.spec(&dest)),
            &slash(&back),
        ])
        .run_ok();
    assert_trees_identical_with(&src, &back, Compare::ARCHIVE);
    assert!(fs::read_to_string(&log).unwrap().contains("sftp-server"));
}

#[test]
fn rsync_path_ferry_cannot_honour_is_refused_before_connecting() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["a"]);
    let dest = sshd.remote().join("dest");
    for value in ["/opt/bin/rsync-3", "rsync --fake-super", "cat | rsync"] {
        let out = sshd
            .ferry()
            .arg(format!("--rsync-path={value}"))
            .args([&slash(&src), &sshd.spec(&dest)])
            .run_default();
        out.assert_code(4).assert_stderr_contains("--rsync-path=");
    }
    // A plain rsync path says where rsync is: ferry needs none there.
    sshd.ferry()
        .args(["-r", "--rsync-path=/usr/local/bin/rsync"])
        .args([&slash(&src), &sshd.spec(&dest)])
        .run_ok();
    assert_trees_identical(&src, &dest);
}

#[test]
fn a_wrapper_that_cannot_run_ends_the_run_as_rsync_does() {
    require_rsync();
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["a"]);
    let dest = sshd.remote().join("dest");
    let value = format!(
        "--rsync-path={} rsync",
        sshd.dir().join("missing").display()
    );
    let out = sshd
        .ferry()
        .args([&value, &slash(&src), &sshd.spec(&dest)])
        .run_default();
    let by_rsync = rsync(
        &sshd,
        &[value, slash(&src), sshd.spec(&dest)].map(String::from),
    );
    // ssh's status, the remote shell's "command not found", or 12 when
    // rsync notices the closed connection first (it races).
    assert!([12, 127].contains(&by_rsync.code), "{by_rsync}");
    out.assert_code(127).assert_stderr_contains("missing");
    assert!(!dest.exists());
}

#[test]
fn iconv_is_taken_where_it_converts_no_name_and_refused_elsewhere() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["plain", "ünïcødé"]);
    let dest = sshd.remote().join("dest");
    let run = |iconv: &[&str]| {
        sshd.ferry()
            .env("LC_ALL", "C.UTF-8")
            .args(["-r"])
            .args(iconv)
            .args([&slash(&src), &sshd.spec(&dest)])
            .run_default()
    };
    for refused in [
        &["--iconv=utf8,iso88591"][..],
        &["--iconv=utf-8-mac,utf8"],
        &["--no-iconv", "--iconv=latin1,utf8"],
    ] {
        run(refused)
            .assert_code(4)
            .assert_stderr_contains("ferry copies file names as they are");
        assert!(!dest.exists(), "{refused:?}");
    }
    for taken in [
        &["--iconv=utf8,UTF-8"][..],
        &["--iconv=."],
        &["--iconv=utf8,iso88591", "--no-iconv"],
    ] {
        run(taken).assert_ok();
        assert_trees_identical(&src, &dest);
    }
}
