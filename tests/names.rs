//! File names that are not UTF-8. ferry's paths are UTF-8 strings for now
//! (issue 15 makes them bytes end to end), so such a name cannot be carried
//! yet; what must hold already is that it fails alone: each unnameable
//! entry is an error naming it (exit 23, rsync's "some files could not be
//! transferred"), and every neighbour arrives, in a local copy, a push and
//! a pull (over SFTP russh-sftp hands ferry U+FFFD for the bad bytes; a
//! listing with such a name is treated the same way).
mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A tree with a bad file, a bad directory holding a good file, and good
/// neighbours on both levels.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("good")).unwrap();
    fs::write(root.join("a.txt"), b"first").unwrap();
    fs::write(root.join("z.txt"), b"last").unwrap();
    fs::write(root.join("good/inner.txt"), b"inner").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"bad\xff.txt")), b"x").unwrap();
    let bad_dir = root.join(OsStr::from_bytes(b"dir\xfe"));
    fs::create_dir(&bad_dir).unwrap();
    fs::write(bad_dir.join("held.txt"), b"held").unwrap();
}

/// The neighbours arrived whole, and nothing with a mangled name did.
fn assert_neighbours_arrived(dst: &Path) {
    assert_eq!(fs::read(dst.join("a.txt")).unwrap(), b"first");
    assert_eq!(fs::read(dst.join("z.txt")).unwrap(), b"last");
    assert_eq!(fs::read(dst.join("good/inner.txt")).unwrap(), b"inner");
    let mut names: Vec<_> = fs::read_dir(dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "good", "z.txt"], "in {}", dst.display());
}

#[test]
fn a_local_copy_fails_only_the_unnameable_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    make_tree(&src);
    let out = FerryCmd::bare(dir.path())
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(&dst)
        .run_default();
    out.assert_code(23);
    // Each bad byte shown as rsync shows an unprintable one.
    out.assert_stderr_contains("bad\\#377.txt");
    out.assert_stderr_contains("dir\\#376");
    out.assert_stderr_contains("not valid UTF-8");
    assert_neighbours_arrived(&dst);
}

#[test]
fn push_and_pull_fail_only_the_unnameable_entries() {
    let sshd = Sshd::start();
    let local = sshd.local().join("tree");
    make_tree(&local);
    let pushed = sshd.remote().join("pushed");
    let out = sshd
        .ferry()
        .arg("-a")
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default();
    out.assert_code(23);
    out.assert_stderr_contains("bad\\#377.txt");
    assert_neighbours_arrived(&pushed);

    let remote = sshd.remote().join("tree");
    make_tree(&remote);
    let pulled = sshd.local().join("pulled");
    let out = sshd
        .ferry()
        .arg("-a")
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&pulled)
        .run_default();
    out.assert_code(23);
    out.assert_stderr_contains("bad\u{FFFD}.txt");
    out.assert_stderr_contains("dir\u{FFFD}");
    assert_neighbours_arrived(&pulled);
}
