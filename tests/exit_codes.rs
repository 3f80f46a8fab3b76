//! Exit codes (rsync's numbers) for usage, selection, connection and
//! subsystem failures.
mod common;

use common::*;
use std::time::Duration;

#[test]
fn no_arguments_is_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let out = FerryCmd::bare(t.path()).run(Duration::from_secs(30));
    out.assert_code(1);
    // The usage, and where to begin.
    out.assert_stderr_contains("usage: ferry [OPTIONS] SRC... [USER@]HOST:DEST");
    out.assert_stderr_contains("ferry demo");
}

#[test]
fn unknown_option_is_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let out = FerryCmd::bare(t.path())
        .args(["--no-such-option", "a", "b"])
        .run(Duration::from_secs(30));
    out.assert_code(1);
    out.assert_stderr_contains("unknown option --no-such-option; ferry --help lists them");
}

/// An rsync option ferry lacks is named with docs/RSYNC.md's row and what
/// the row says, long or short, before anything is touched (rsync's usage
/// error, exit 1).
#[test]
fn an_rsync_option_ferry_lacks_points_at_its_row() {
    let t = tempfile::tempdir().unwrap();
    write_file(&t.path().join("src/f"), b"data");
    for (option, named) in [("--fuzzy", "--fuzzy"), ("-avy", "-y")] {
        let out = FerryCmd::bare(t.path())
            .current_dir(t.path())
            .args([option, "src/", "dest"])
            .run(Duration::from_secs(30));
        out.assert_code(1);
        out.assert_stderr_contains(&format!(
            "ferry: {named} is an rsync option ferry does not support: \
             see docs/RSYNC.md, \"-y, --fuzzy\""
        ));
        assert!(!t.path().join("dest").exists(), "{out}");
    }
    let out = FerryCmd::bare(t.path())
        .args(["src/", "dest", "--debug=ALL"])
        .run(Duration::from_secs(30));
    out.assert_code(1);
    out.assert_stderr_contains("\"--debug=FLAGS\" (use -vv, -vvv, or FERRY_LOG=debug");
}

/// With --json anywhere, a command line ferry cannot read still ends with
/// the summary scripts read (`tail -n 1 | jq .exit_code`).
#[test]
fn a_usage_error_under_json_ends_with_the_summary() {
    let t = tempfile::tempdir().unwrap();
    for line in [
        &["--json", "--bogus-flag", "a", "b"][..],
        &["a", "b", "--jobs", "0", "--json"],
        &["--json", "--fuzzy", "a", "b"],
    ] {
        let out = FerryCmd::bare(t.path())
            .args(line)
            .run(Duration::from_secs(30));
        out.assert_code(1);
        let last = out.stdout.lines().last().unwrap_or_default();
        let summary: serde_json::Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{line:?}: the last line is not JSON ({e})\n{out}"));
        assert_eq!(summary["type"], "summary", "{out}");
        assert_eq!(summary["exit_code"], 1, "{out}");
        let error = summary["error"].as_str().unwrap_or_default();
        assert!(
            line.iter()
                .any(|arg| error.contains(arg.trim_start_matches('-'))),
            "{out}"
        );
    }
}

#[test]
fn missing_local_source_exits_23_as_rsync() {
    let sshd = Sshd::start();
    let missing = sshd.local().join("does-not-exist.bin");
    let out = sshd
        .ferry()
        .arg(&missing)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(23);
    out.assert_stderr_contains("No such file or directory");
    assert_dir_empty(&sshd.remote());
}

#[test]
fn missing_remote_parent_directory_exits_3() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.txt");
    write_file(&src, b"hello");
    let target = sshd.remote().join("no/such/dir/f.txt");
    let out = sshd.ferry().arg(&src).arg(sshd.spec(&target)).run_default();
    out.assert_code(3);
    out.assert_stderr_contains("no such directory");
    assert_dir_empty(&sshd.remote());
}

#[test]
fn unreachable_port_exits_255() {
    let sshd = Sshd::start();
    let port = closed_port();
    let cfg = sshd.config_for_port("ssh_config.closed", port);
    let src = sshd.local().join("f.txt");
    write_file(&src, b"hello");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run(Duration::from_secs(60));
    out.assert_code(255);
    assert!(!out.stderr.trim().is_empty(), "no error message\n{out}");
    assert_dir_empty(&sshd.remote());
}

#[test]
fn refused_sftp_subsystem_exits_5() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_subsystem: false,
        ..SshdOptions::default()
    });
    let src = sshd.local().join("f.txt");
    write_file(&src, b"hello");
    let out = sshd
        .ferry()
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(5);
    // Caught beside the pipelined handshake, not after its timeout.
    out.assert_stderr_contains("subsystem request denied");
    assert_dir_empty(&sshd.remote());
}
