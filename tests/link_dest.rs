//! `--link-dest`, `--copy-dest` and `--compare-dest`: dated snapshots in
//! which every unchanged file of the second shares its inode with the
//! first (the same set rsync links), local, pushed and pulled, over plain
//! SFTP too; only the changed file's bytes cross the wire; the DIRs are
//! never written.
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const OLD: u64 = 1_500_000_000;
const NEW: u64 = 1_600_000_000;
/// SSH handshake, SFTP requests, listings, hashes: what a run adds to the
/// file data it moves.
const OVERHEAD: u64 = 256 * KIB;
/// The file that changes between the snapshots.
const CHANGED: &str = "sub/changed.txt";
const CHANGED_SIZE: usize = 64 * KIB as usize;

/// A source tree of 4 MiB and more, mtimes set: two large files that do
/// not change, a small one that will, one in a deeper directory, a symlink.
fn make_source(root: &Path) {
    fs::create_dir_all(root.join("sub/deep")).unwrap();
    let files: [(&str, Vec<u8>); 4] = [
        ("a.bin", random_bytes(2 * MIB as usize, 1)),
        ("sub/b.bin", random_bytes(2 * MIB as usize, 2)),
        (CHANGED, random_bytes(CHANGED_SIZE, 3)),
        ("sub/deep/c.txt", b"unchanged, deep\n".to_vec()),
    ];
    for (name, data) in files {
        write_file(&root.join(name), &data);
        set_mtime(&root.join(name), OLD);
    }
    std::os::unix::fs::symlink("a.bin", root.join("link")).unwrap();
    set_link_mtime(&root.join("link"), OLD);
    for dir in ["sub/deep", "sub", ""] {
        set_mtime(&root.join(dir), OLD);
    }
}

/// What changes for the second snapshot: one file's contents and time, and
/// one new file.
fn change_source(root: &Path) {
    write_file(&root.join(CHANGED), &random_bytes(CHANGED_SIZE, 4));
    set_mtime(&root.join(CHANGED), NEW);
    write_file(&root.join("new.txt"), b"new in snapshot two\n");
    set_mtime(&root.join("new.txt"), NEW);
    set_mtime(root, NEW);
}

fn set_link_mtime(path: &Path, secs: u64) {
    let out = run_with_deadline(
        Command::new("touch")
            .arg("-h")
            .arg("-d")
            .arg(format!("@{secs}"))
            .arg(path),
        Duration::from_secs(10),
    );
    out.assert_ok();
}

/// Paths under `root`, relative, sorted.
fn rel_paths(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(root)
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    v.sort();
    v
}

/// The paths of `second` that are the same inode as in `first`.
fn shared_inodes(first: &Path, second: &Path) -> BTreeSet<String> {
    rel_paths(second)
        .into_iter()
        .filter(|rel| {
            let ino =
                |root: &Path| fs::symlink_metadata(root.join(rel)).map(|m| (m.dev(), m.ino()));
            matches!((ino(first), ino(second)), (Ok(a), Ok(b)) if a == b)
        })
        .map(|rel| rel.display().to_string())
        .collect()
}

/// Everything a run could change in a tree: names, kinds, modes, mtimes,
/// contents, link targets.
fn state_of(root: &Path) -> Vec<(PathBuf, u32, i64, Vec<u8>)> {
    rel_paths(root)
        .into_iter()
        .map(|rel| {
            let path = root.join(&rel);
            let meta = fs::symlink_metadata(&path).unwrap();
            let body = if meta.file_type().is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_file() {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (rel, meta.mode(), meta.mtime(), body)
        })
        .collect()
}

/// The unchanged files and the symlink: what a second snapshot links.
fn unchanged() -> BTreeSet<String> {
    ["a.bin", "link", "sub/b.bin", "sub/deep/c.txt"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// rsync itself, through the test server's ssh config where `remote`.
fn rsync(sshd: &Sshd, args: &[&str]) -> Output {
    require_rsync();
    let mut cmd = Command::new("rsync");
    cmd.env("HOME", sshd.home())
        .arg("-e")
        .arg(format!("ssh -F {}", sshd.ssh_config().display()))
        .args(args);
    let out = run_with_deadline(&mut cmd, Duration::from_secs(120));
    out.assert_ok();
    out
}

fn path_arg(path: &Path) -> String {
    format!("{}/", path.display())
}

#[test]
fn local_snapshots_link_what_rsync_links_and_leave_the_first_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (src, ours, theirs) = (
        dir.path().join("src"),
        dir.path().join("ours"),
        dir.path().join("theirs"),
    );
    make_source(&src);
    for root in [&ours, &theirs] {
        fs::create_dir_all(root).unwrap();
    }
    FerryCmd::bare(dir.path())
        .args(["-a", &path_arg(&src), &path_arg(&ours.join("snap1"))])
        .run_ok();
    require_rsync();
    let by_rsync = Command::new("rsync")
        .args(["-a", &path_arg(&src), &path_arg(&theirs.join("snap1"))])
        .status();
    assert!(by_rsync.is_ok_and(|s| s.success()), "rsync snap1");
    change_source(&src);
    let before = state_of(&ours.join("snap1"));
    let out = FerryCmd::bare(dir.path())
        .args(["-a", "-ii", "--link-dest=../snap1"])
        .args([&path_arg(&src), &path_arg(&ours.join("snap2"))])
        .run_ok();
    let by_rsync = run_with_deadline(
        Command::new("rsync")
            .args(["-a", "-ii", "--link-dest=../snap1"])
            .args([&path_arg(&src), &path_arg(&theirs.join("snap2"))]),
        Duration::from_secs(60),
    );
    by_rsync.assert_ok();
    // The same -ii lines as rsync's (hf, hL, cd for the directories the
    // DIR has, the changed file itemized against the DIR's), in any order.
    let itemized = |out: &Output| {
        let mut lines: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("created directory"))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        itemized(&by_rsync),
        itemized(&out),
        "rsync (left), ferry (right)"
    );
    assert_trees_identical(&src, &ours.join("snap2"));
    let linked = shared_inodes(&ours.join("snap1"), &ours.join("snap2"));
    assert_eq!(linked, unchanged(), "{out}");
    assert_eq!(
        linked,
        shared_inodes(&theirs.join("snap1"), &theirs.join("snap2")),
        "ferry (left) and rsync (right) link different files"
    );
    assert_eq!(state_of(&ours.join("snap1")), before, "the DIR changed");
    for line in [
        "hf          a.bin",
        "hL          link -> a.bin",
        ">f+++++++++ new.txt",
    ] {
        assert!(out.stdout.lines().any(|l| l == line), "no {line:?}\n{out}");
    }
    // Itemized against the basis, as rsync does: not a new file.
    assert!(
        out.stdout
            .lines()
            .any(|l| l == ">f..t...... sub/changed.txt"),
        "{out}"
    );
}

/// Pushes `src` to `snap1` and then, changed, to `snap2` with
/// `extra` options, counting snap2's bytes on the wire. Returns them.
fn push_two_snapshots(sshd: &Sshd, src: &Path, extra: &[&str]) -> (u64, Output) {
    make_source(src);
    fs::create_dir_all(sshd.remote().join("ours")).unwrap();
    sshd.ferry()
        .args(["-a", "--remote-hash", "off", &path_arg(src)])
        .arg(sshd.spec(&sshd.remote().join("ours/snap1")))
        .run_ok();
    change_source(src);
    let proxy = CutProxy::start(sshd.port(), None);
    let out = sshd
        .ferry_with_config(&sshd.config_for_proxy(&proxy))
        .args(["-a", "--stats"])
        .args(extra)
        .arg(path_arg(src))
        .arg(sshd.spec(&sshd.remote().join("ours/snap2")))
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    (proxy.up() + proxy.down(), out)
}

#[test]
fn push_over_plain_sftp_links_what_rsync_links_and_sends_only_the_change() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    let before_snap2 = |sshd: &Sshd| state_of(&sshd.remote().join("ours/snap1"));
    let (wire, out) = push_two_snapshots(
        &sshd,
        &src,
        &["--remote-hash", "off", "-v", "--link-dest=../snap1"],
    );
    eprintln!("link-dest push, plain SFTP: {wire} bytes on the wire");
    let (ours, theirs) = (sshd.remote().join("ours"), sshd.remote().join("theirs"));
    assert_trees_identical(&src, &ours.join("snap2"));
    let linked = shared_inodes(&ours.join("snap1"), &ours.join("snap2"));
    assert_eq!(linked, unchanged(), "{out}");
    let tree: u64 = 4 * MIB + CHANGED_SIZE as u64;
    assert!(
        wire < CHANGED_SIZE as u64 + OVERHEAD && wire < tree / 8,
        "{wire} bytes on the wire for a {CHANGED_SIZE}-byte change\n{out}"
    );
    // rsync, on a tree made the same way, links the same files.
    let fresh = sshd.local().join("src-for-rsync");
    make_source(&fresh);
    fs::create_dir_all(&theirs).unwrap();
    let snap1 = before_snap2(&sshd);
    rsync(
        &sshd,
        &["-a", &path_arg(&fresh), &sshd.spec(&theirs.join("snap1"))],
    );
    change_source(&fresh);
    let snap2 = sshd.spec(&theirs.join("snap2"));
    rsync(
        &sshd,
        &["-a", "--link-dest=../snap1", &path_arg(&fresh), &snap2],
    );
    assert_eq!(
        linked,
        shared_inodes(&theirs.join("snap1"), &theirs.join("snap2")),
        "ferry (left) and rsync (right) link different files"
    );
    assert_eq!(before_snap2(&sshd), snap1, "the DIR changed");
}

#[test]
fn pull_over_plain_sftp_links_and_sends_only_the_change() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    make_source(&src);
    let local = sshd.local();
    sshd.ferry()
        .args(["-a", "--remote-hash", "off"])
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(path_arg(&local.join("snap1")))
        .run_ok();
    change_source(&src);
    let snap1 = state_of(&local.join("snap1"));
    let proxy = CutProxy::start(sshd.port(), None);
    let out = sshd
        .ferry_with_config(&sshd.config_for_proxy(&proxy))
        .args(["-a", "--remote-hash", "off", "--link-dest=../snap1"])
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(path_arg(&local.join("snap2")))
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    assert_trees_identical(&src, &local.join("snap2"));
    let linked = shared_inodes(&local.join("snap1"), &local.join("snap2"));
    assert_eq!(linked, unchanged(), "{out}");
    let wire = proxy.up() + proxy.down();
    eprintln!("link-dest pull, plain SFTP: {wire} bytes on the wire");
    assert!(
        wire < CHANGED_SIZE as u64 + OVERHEAD,
        "{wire} bytes on the wire for a {CHANGED_SIZE}-byte change\n{out}"
    );
    assert_eq!(state_of(&local.join("snap1")), snap1, "the DIR changed");
}

#[test]
fn a_changed_file_is_a_delta_against_the_dirs_copy_both_ways() {
    let sshd = Sshd::start();
    for push in [true, false] {
        let (here, there) = (sshd.local(), sshd.remote());
        let (src_root, dst_root) = match push {
            true => (here.join("push-src"), there.join("push")),
            false => (there.join("pull-src"), here.join("pull")),
        };
        fs::create_dir_all(&src_root).unwrap();
        let big = random_bytes(4 * MIB as usize, 9);
        write_file(&src_root.join("big.bin"), &big);
        set_mtime(&src_root.join("big.bin"), OLD);
        fs::create_dir_all(dst_root.join("snap1")).unwrap();
        fs::copy(src_root.join("big.bin"), dst_root.join("snap1/big.bin")).unwrap();
        set_mtime(&dst_root.join("snap1/big.bin"), OLD);
        overwrite_at(&src_root.join("big.bin"), MIB + 100, &[0x5a; 4096]);
        set_mtime(&src_root.join("big.bin"), NEW);
        let spec = |p: &Path| match p.starts_with(&there) {
            true => format!("{}/", sshd.spec(p)),
            false => path_arg(p),
        };
        let proxy = CutProxy::start(sshd.port(), None);
        let out = sshd
            .ferry_with_config(&sshd.config_for_proxy(&proxy))
            .args(["-a", "--remote-hash", "helper", "--remote-ferry"])
            .arg(ferry_bin())
            .args(["--link-dest=../snap1", "--stats"])
            .arg(spec(&src_root))
            .arg(spec(&dst_root.join("snap2")))
            .run_ok();
        proxy.wait_idle(Duration::from_secs(10));
        assert_files_identical(&src_root.join("big.bin"), &dst_root.join("snap2/big.bin"));
        let wire = proxy.up() + proxy.down();
        eprintln!("delta against the DIR's copy, push {push}: {wire} bytes on the wire");
        assert!(
            wire < OVERHEAD + 64 * KIB,
            "push {push}: {wire} bytes on the wire for a 4 KiB change in 4 MiB\n{out}"
        );
        let ino = |p: PathBuf| fs::metadata(p).unwrap().ino();
        assert_ne!(
            ino(dst_root.join("snap1/big.bin")),
            ino(dst_root.join("snap2/big.bin"))
        );
        assert_eq!(
            fs::read(dst_root.join("snap1/big.bin")).unwrap(),
            big,
            "push {push}: the DIR's file changed"
        );
    }
}

/// In a fresh directory: a source, its first snapshot `snap1` made by
/// ferry, then the source changed; and a second snapshot `snap2` made with
/// `options`. Returns the directory and that run's output.
fn local_second_snapshot(options: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    FerryCmd::bare(dir.path())
        .args(["-a", &path_arg(&src), &path_arg(&dir.path().join("snap1"))])
        .run_ok();
    change_source(&src);
    let out = FerryCmd::bare(dir.path())
        .arg("-a")
        .args(options)
        .args([&path_arg(&src), &path_arg(&dir.path().join("snap2"))])
        .run_ok();
    (dir, out)
}

#[test]
fn compare_dest_leaves_unchanged_files_out() {
    let (dir, out) = local_second_snapshot(&["-i", "--compare-dest=../snap1"]);
    let src = dir.path().join("src");
    let snap2 = dir.path().join("snap2");
    let files: BTreeSet<String> = rel_paths(&snap2)
        .into_iter()
        .filter(|p| !snap2.join(p).is_dir())
        .map(|p| p.display().to_string())
        .collect();
    let expected: BTreeSet<String> = [CHANGED, "new.txt"].into_iter().map(String::from).collect();
    assert_eq!(files, expected, "{out}");
    assert_files_identical(&src.join(CHANGED), &snap2.join(CHANGED));
}

#[test]
fn copy_dest_copies_inside_the_server_with_no_data_on_the_wire() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    let (wire, out) = push_two_snapshots(
        &sshd,
        &src,
        &["--remote-hash", "off", "-ii", "--copy-dest=../snap1"],
    );
    eprintln!("copy-dest push, plain SFTP: {wire} bytes on the wire");
    let ours = sshd.remote().join("ours");
    assert_trees_identical(&src, &ours.join("snap2"));
    assert!(
        shared_inodes(&ours.join("snap1"), &ours.join("snap2")).is_empty(),
        "copies have inodes of their own\n{out}"
    );
    assert!(
        wire < CHANGED_SIZE as u64 + OVERHEAD,
        "{wire} bytes on the wire: the copies crossed it\n{out}"
    );
    assert!(
        out.stdout.lines().any(|l| l == "cf          a.bin"),
        "{out}"
    );
}

#[test]
fn several_dirs_are_tried_in_order_and_a_missing_one_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    change_source(&src);
    let root = dir.path();
    // older: everything but the changed file as the source has it;
    // newer: the changed file too. The first DIR that matches wins.
    FerryCmd::bare(root)
        .args(["-a", &path_arg(&src), &path_arg(&root.join("older"))])
        .run_ok();
    write_file(&root.join("older").join(CHANGED), b"an older version\n");
    FerryCmd::bare(root)
        .args(["-a", &path_arg(&src), &path_arg(&root.join("newer"))])
        .run_ok();
    let out = FerryCmd::bare(root)
        .args([
            "-a",
            "--link-dest=../missing",
            "--link-dest=../older",
            "--link-dest=../newer",
        ])
        .args([&path_arg(&src), &path_arg(&root.join("snap"))])
        .run_ok();
    out.assert_stderr_contains("--link-dest arg does not exist");
    let ino = |p: PathBuf| fs::symlink_metadata(p).unwrap().ino();
    assert_eq!(ino(root.join("snap/a.bin")), ino(root.join("older/a.bin")));
    assert_eq!(
        ino(root.join("snap").join(CHANGED)),
        ino(root.join("newer").join(CHANGED))
    );
}

#[test]
fn the_three_options_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let out = FerryCmd::bare(dir.path())
        .args(["-a", "--link-dest=x", "--compare-dest=y"])
        .args([&path_arg(&src), &path_arg(&dir.path().join("dst"))])
        .run_default();
    out.assert_code(1)
        .assert_stderr_contains("the --compare-dest option conflicts with the --link-dest option");
    assert!(!dir.path().join("dst").exists());
}

/// A server without `hardlink@openssh.com` (nor `copy-data`, nor the
/// helper): ferry's embedded one. Each unchanged file is copied on the
/// server instead, said under `-v`, and the DIR is left as it was.
#[test]
fn without_hard_links_on_the_server_the_files_are_copied_and_said_so() {
    use ferry::embedded::{throwaway_key, EmbeddedServer, ServerOptions};
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = throwaway_key().unwrap();
    let options = ServerOptions {
        client_key: client.public_key().clone(),
        base: dir.path().to_path_buf(),
        helper: false,
        sftp: None,
    };
    let server = runtime.block_on(EmbeddedServer::start(options)).unwrap();
    let config = server
        .write_client_files(dir.path(), "plain", &client)
        .unwrap();
    let (src, remote) = (dir.path().join("src"), dir.path().join("remote"));
    fs::create_dir_all(&remote).unwrap();
    make_source(&src);
    let push = |extra: &[&str], snap: &str| {
        FerryCmd::bare(dir.path())
            .arg("--ssh-config")
            .arg(&config)
            .args(["-a", "--remote-hash", "off"])
            .args(extra)
            .arg(path_arg(&src))
            .arg(format!("plain:{}", remote.join(snap).display()))
            .run_ok()
    };
    push(&[], "snap1");
    change_source(&src);
    let snap1 = state_of(&remote.join("snap1"));
    let out = push(&["-v", "--link-dest=../snap1"], "snap2");
    assert_trees_identical(&src, &remote.join("snap2"));
    assert!(shared_inodes(&remote.join("snap1"), &remote.join("snap2")).is_empty());
    assert!(
        out.stdout.contains("a.bin: not hard-linked to")
            && out.stdout.contains("copied there instead"),
        "{out}"
    );
    assert_eq!(state_of(&remote.join("snap1")), snap1, "the DIR changed");
    drop(server);
}

/// `--json` names each linked file and counts them in its summary.
#[test]
fn json_lines_say_linked_and_the_summary_counts_them() {
    let (_dir, out) = local_second_snapshot(&["--json", "--link-dest=../snap1"]);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let linked: BTreeSet<String> = lines
        .iter()
        .filter(|l| l["action"] == "linked")
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(linked, unchanged(), "{out}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "{out}");
    assert_eq!(summary["files_linked"], 3, "{out}");
    assert_eq!(summary["files_sent"], 2, "{out}");
    assert_eq!(summary["created"], 1, "new.txt only\n{out}");
}
