//! `-H`: names of one file in the source are names of one file in the
//! destination, as rsync makes them, locally, pushed over plain SFTP
//! (`hardlink@openssh.com`) and pulled through the helper (SFTP v3 carries
//! no inode numbers, so a pull without the helper is refused before
//! anything is written).
mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A group of three names (two directories deep), a group of two, a file
/// with one name and a symlink.
fn make_tree(src: &Path) {
    fs::create_dir_all(src.join("d/e")).unwrap();
    fs::write(src.join("a"), b"three names").unwrap();
    fs::hard_link(src.join("a"), src.join("c")).unwrap();
    fs::hard_link(src.join("a"), src.join("d/e/b")).unwrap();
    fs::write(src.join("y"), b"two names").unwrap();
    fs::hard_link(src.join("y"), src.join("d/y2")).unwrap();
    fs::write(src.join("x"), b"one name").unwrap();
    std::os::unix::fs::symlink("a", src.join("link")).unwrap();
    for path in ["a", "y", "x", "d/e", "d", ""] {
        set_mtime(&src.join(path), 1_600_000_000);
    }
}

/// The files of `root` grouped by inode: each group's names, with the
/// content they share.
fn link_groups(root: &Path) -> BTreeSet<(Vec<String>, Vec<u8>)> {
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for entry in walk(root) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        if meta.is_file() {
            let rel = entry.strip_prefix(root).unwrap().display().to_string();
            by_inode.entry(meta.ino()).or_default().push(rel);
        }
    }
    by_inode
        .into_values()
        .map(|mut names| {
            names.sort();
            let data = fs::read(root.join(&names[0])).unwrap();
            (names, data)
        })
        .collect()
}

fn expected_groups() -> BTreeSet<(Vec<String>, Vec<u8>)> {
    [
        (vec!["a", "c", "d/e/b"], &b"three names"[..]),
        (vec!["d/y2", "y"], b"two names"),
        (vec!["x"], b"one name"),
    ]
    .into_iter()
    .map(|(names, data)| (names.into_iter().map(String::from).collect(), data.to_vec()))
    .collect()
}

#[test]
fn a_local_copy_keeps_the_groups_and_mends_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    make_tree(&src);
    // ferry ARGS src/ INTO, locally.
    let copy = |args: &[&str], into: &Path| {
        let out = FerryCmd::bare(dir.path())
            .args(args)
            .arg(format!("{}/", src.display()))
            .arg(into)
            .run_default();
        out.assert_ok();
        out
    };
    let out = copy(&["-aHi"], &dst);
    // The first name met is sent; the others are linked to it.
    assert!(out.stdout.contains(">f+++++++++ a\n"), "{out}");
    assert!(out.stdout.contains("hf+++++++++ c => a\n"), "{out}");
    assert!(out.stdout.contains("hf+++++++++ d/e/b => a\n"), "{out}");
    assert_eq!(link_groups(&dst), expected_groups());
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);

    // A name made a separate copy (same size and time) is linked again,
    // and says so as rsync's does; then nothing is left to do.
    fs::remove_file(dst.join("c")).unwrap();
    fs::write(dst.join("c"), b"three names").unwrap();
    set_mtime(&dst.join("c"), 1_600_000_000);
    let out = copy(&["-aHi", "-O"], &dst);
    assert_eq!(out.stdout.trim(), "hf          c => a", "{out}");
    assert_eq!(link_groups(&dst), expected_groups());
    let out = copy(&["-aHii", "-O"], &dst);
    assert!(out.stdout.contains("hf          c\n"), "{out}");
    assert!(!out.stdout.contains("=>"), "nothing linked again\n{out}");

    // Without -H each name is a file of its own, as rsync's.
    let plain = dir.path().join("plain");
    copy(&["-a"], &plain);
    assert!(link_groups(&plain)
        .iter()
        .all(|(names, _)| names.len() == 1));
}

#[test]
fn push_over_plain_sftp_and_pull_through_the_helper_link_as_rsync_does() {
    let sshd = Sshd::start();
    let local = sshd.local().join("tree");
    make_tree(&local);

    // Push: hardlink@openssh.com, no helper (--remote-hash off).
    let by_rsync = sshd.remote().join("rsync-pushed");
    rsync_through(
        &sshd,
        &["-aH"],
        &format!("{}/", local.display()),
        &sshd.spec(&by_rsync),
    )
    .assert_ok();
    let pushed = sshd.remote().join("pushed");
    sshd.ferry()
        .args(["-aH", "--remote-hash", "off"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default()
        .assert_ok();
    assert_eq!(link_groups(&pushed), link_groups(&by_rsync));
    assert_eq!(link_groups(&pushed), expected_groups());
    assert_trees_identical_with(&local, &pushed, Compare::ARCHIVE);
    // Again: over SFTP ferry cannot see that the names are linked, makes
    // the links again, and the tree stays as it is.
    sshd.ferry()
        .args(["-aH", "--remote-hash", "off"])
        .arg(format!("{}/", local.display()))
        .arg(sshd.spec(&pushed))
        .run_default()
        .assert_ok();
    assert_eq!(link_groups(&pushed), expected_groups());
    assert!(find_partials(&pushed).is_empty());

    // Pull: the helper lists the server's inodes.
    let remote = sshd.remote().join("tree");
    make_tree(&remote);
    let by_rsync = sshd.local().join("rsync-pulled");
    rsync_through(
        &sshd,
        &["-aH"],
        &format!("{}/", sshd.spec(&remote)),
        &by_rsync.display().to_string(),
    )
    .assert_ok();
    let pulled = sshd.local().join("pulled");
    ferry_with_helper(&sshd, &["-aH"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&pulled)
        .run_default()
        .assert_ok();
    assert_eq!(link_groups(&pulled), link_groups(&by_rsync));
    assert_eq!(link_groups(&pulled), expected_groups());
    assert_trees_identical_with(&remote, &pulled, Compare::ARCHIVE);
}

#[test]
fn a_pull_that_cannot_see_inodes_is_refused_before_anything_is_written() {
    let sshd = Sshd::start();
    let remote = sshd.remote().join("tree");
    make_tree(&remote);
    let pulled = sshd.local().join("pulled");
    let out = sshd
        .ferry()
        .args(["-aH", "--remote-hash", "off"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&pulled)
        .run_default();
    out.assert_code(4);
    out.assert_stderr_contains("-H (--hard-links)");
    out.assert_stderr_contains("--remote-ferry upload");
    assert!(!pulled.exists(), "nothing written\n{out}");
}
