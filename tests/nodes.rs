//! `-D` (and `-a`, which implies it, as rsync's): fifos, sockets and device
//! nodes arrive as rsync makes them, locally and through the remote helper
//! (SFTP v3 has no mknod). Without the helper a run that would need one is
//! refused before anything is written, naming what to do; `--no-D` leaves
//! them out with rsync's "skipping non-regular file".
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// A fifo, a socket, a character device (as /dev/null is: 1,3) and a
/// file, with set modes and times. Devices need root, which CI has.
fn make_tree(src: &Path) {
    assert!(
        running_as_root(),
        "this test makes a device node, which needs root (CI runs as root)"
    );
    fs::create_dir_all(src).unwrap();
    fs::write(src.join("file"), b"data").unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("mkfifo -m 640 fifo && mknod -m 600 null c 1 3")
        .current_dir(src)
        .status()
        .unwrap();
    assert!(status.success());
    let socket = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    drop(socket);
    // touch, not an open: opening a fifo waits for a writer.
    let status = Command::new("touch")
        .args([
            "-h",
            "-d",
            "@1600000000",
            "file",
            "fifo",
            "null",
            "sock",
            ".",
        ])
        .current_dir(src)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Name, type, mode, device number and time of each entry.
fn listing(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let t = meta.file_type();
            let kind = match () {
                _ if t.is_fifo() => "fifo",
                _ if t.is_socket() => "socket",
                _ if t.is_char_device() => "char",
                _ if t.is_file() => "file",
                _ => "other",
            };
            format!(
                "{} {kind} {:o} {} {}",
                path.file_name().unwrap().to_string_lossy(),
                meta.mode() & 0o7777,
                meta.rdev(),
                meta.mtime()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn local_push_and_pull_make_the_nodes_rsync_makes() {
    let sshd = Sshd::start();
    let local = sshd.local().join("tree");
    make_tree(&local);
    let expected = listing(&local);
    assert_eq!(expected.len(), 4);

    let copied = sshd.local().join("copied");
    let out = FerryCmd::bare(&sshd.home())
        .args(["-ai"])
        .arg(format!("{}/", local.display()))
        .arg(&copied)
        .run_default();
    out.assert_ok();
    assert!(out.stdout.contains("cS+++++++++ fifo\n"), "{out}");
    assert!(out.stdout.contains("cD+++++++++ null\n"), "{out}");
    assert_eq!(listing(&copied), expected);

    let by_rsync = sshd.remote().join("rsync-pushed");
    rsync_through(
        &sshd,
        &["-a"],
        &format!("{}/", local.display()),
        &sshd.spec(&by_rsync),
    )
    .assert_ok();
    let pushed = sshd.remote().join("pushed");
    ferry_with_helper(&sshd, &["-a"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default()
        .assert_ok();
    assert_eq!(listing(&pushed), listing(&by_rsync));
    assert_eq!(listing(&pushed), expected);

    // Pulled back through the helper, which lists the device's number; a
    // second run finds every node as it should be.
    let pulled = sshd.local().join("pulled");
    for _ in 0..2 {
        let out = ferry_with_helper(&sshd, &["-ai"])
            .arg(format!("{}/", sshd.spec(&pushed)))
            .arg(&pulled)
            .run_default();
        out.assert_ok();
        assert_eq!(listing(&pulled), expected, "{out}");
    }
    let out = ferry_with_helper(&sshd, &["-ai"])
        .arg(format!("{}/", sshd.spec(&pushed)))
        .arg(&pulled)
        .run_default();
    assert_eq!(out.stdout.trim(), "", "nothing left to do\n{out}");
}

#[test]
fn without_the_helper_nodes_are_refused_before_anything_is_written() {
    let sshd = Sshd::start();
    let local = sshd.local().join("tree");
    make_tree(&local);
    let pushed = sshd.remote().join("pushed");
    let out = sshd
        .ferry()
        .args(["-a", "--remote-hash", "off"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default();
    out.assert_code(4);
    out.assert_stderr_contains("--remote-ferry upload");
    out.assert_stderr_contains("--no-D");
    assert!(!pushed.exists(), "nothing written\n{out}");

    // --no-D: the nodes are left out, named, and the file arrives.
    let out = sshd
        .ferry()
        .args(["-a", "--no-D", "--remote-hash", "off"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default();
    out.assert_ok();
    assert!(
        out.stdout.contains("skipping non-regular file \"fifo\""),
        "{out}"
    );
    assert_eq!(
        listing(&pushed),
        ["file file 644 0 1600000000"],
        "only the file\n{out}"
    );
}
