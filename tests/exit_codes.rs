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
