//! File names that are not UTF-8. Between local paths they are copied as
//! they are, like any other name (rsync copies any bytes), and so they are
//! pushed and pulled when the remote helper runs: it lists and changes
//! them by their bytes. Over plain SFTP, russh-sftp takes and gives names as
//! strings (the bytes it cannot decode become U+FFFD), so there such a name
//! fails alone: each is an error naming it (exit 23, rsync's "some files
//! could not be transferred"), and every neighbour arrives.
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
fn a_local_copy_carries_any_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    make_tree(&src);
    let out = FerryCmd::bare(dir.path())
        .args(["-a", "-i"])
        .arg(format!("{}/", src.display()))
        .arg(&dst)
        .run_default();
    out.assert_ok();
    // Each bad byte shown as rsync shows an unprintable one.
    assert!(out.stdout.contains(">f+++++++++ bad\\#377.txt"), "{out}");
    assert!(out.stdout.contains("cd+++++++++ dir\\#376/"), "{out}");
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
    let held = dst.join(OsStr::from_bytes(b"dir\xfe/held.txt"));
    assert_eq!(fs::read(held).unwrap(), b"held");

    // A second run finds everything up to date, and --delete takes a bad
    // name away like any other.
    fs::remove_file(src.join(OsStr::from_bytes(b"bad\xff.txt"))).unwrap();
    let out = FerryCmd::bare(dir.path())
        .args(["-a", "-i", "--delete"])
        .arg(format!("{}/", src.display()))
        .arg(&dst)
        .run_default();
    out.assert_ok();
    assert!(out.stdout.contains("*deleting   bad\\#377.txt"), "{out}");
    assert!(!out.stdout.contains(">f"), "nothing to send\n{out}");
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
}

#[test]
fn push_and_pull_fail_only_the_unnameable_entries() {
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
    out.assert_code(23);
    out.assert_stderr_contains("bad\\#377.txt");
    assert_neighbours_arrived(&pushed);

    let remote = sshd.remote().join("tree");
    make_tree(&remote);
    let pulled = sshd.local().join("pulled");
    let out = sshd
        .ferry()
        .args(["-a", "--remote-hash", "off"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&pulled)
        .run_default();
    out.assert_code(23);
    out.assert_stderr_contains("bad\u{FFFD}.txt");
    out.assert_stderr_contains("dir\u{FFFD}");
    assert_neighbours_arrived(&pulled);
}

/// A file of several requests' worth (it moves through a file handle of
/// the helper, not as one whole-file message) inside the bad directory.
fn add_large_file(root: &Path, seed: u64) -> Vec<u8> {
    let data = random_bytes(3 << 20, seed);
    fs::write(root.join(OsStr::from_bytes(b"dir\xfe/big\xfd.bin")), &data).unwrap();
    data
}

#[test]
fn the_helper_pushes_and_pulls_any_bytes() {
    let sshd = Sshd::start();
    let local = sshd.local().join("tree");
    make_tree(&local);
    add_large_file(&local, 1);
    let pushed = sshd.remote().join("pushed");
    let out = ferry_with_helper(&sshd, &["-a", "-i"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default();
    out.assert_ok();
    assert!(out.stdout.contains("<f+++++++++ bad\\#377.txt"), "{out}");
    assert_trees_identical_with(&local, &pushed, Compare::ARCHIVE);

    // A changed large file goes as a delta against the old one, addressed
    // by its bytes; a removed bad name is deleted on the server.
    let mut changed = add_large_file(&local, 1);
    changed[1 << 20..(1 << 20) + 5].copy_from_slice(b"edit!");
    let big = local.join(OsStr::from_bytes(b"dir\xfe/big\xfd.bin"));
    fs::write(&big, &changed).unwrap();
    // Same size: a later mtime is what tells the quick check it changed.
    set_mtime(&big, 2_000_000_000);
    fs::remove_file(local.join(OsStr::from_bytes(b"bad\xff.txt"))).unwrap();
    let out = ferry_with_helper(&sshd, &["-a", "-i", "--delete", "--stats"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default();
    out.assert_ok();
    assert!(out.stdout.contains("*deleting   bad\\#377.txt"), "{out}");
    assert!(
        out.stdout.contains("<f..t...... dir\\#376/big\\#375.bin"),
        "{out}"
    );
    assert!(out.stdout.contains("Literal data: 4,096 bytes"), "{out}");
    assert_trees_identical_with(&local, &pushed, Compare::ARCHIVE);

    let remote = sshd.remote().join("tree");
    make_tree(&remote);
    add_large_file(&remote, 2);
    let pulled = sshd.local().join("pulled");
    let out = ferry_with_helper(&sshd, &["-a"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&pulled)
        .run_default();
    out.assert_ok();
    assert_trees_identical_with(&remote, &pulled, Compare::ARCHIVE);
    assert_no_partials(&pulled);
}
