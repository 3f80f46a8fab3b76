//! Errors grouped by cause (issue 18), against real sshd and rsync: a
//! destination directory nothing can be created in, a missing destination
//! parent, and a full destination each give at most three lines on stderr,
//! naming the user's paths (never `.NAME.ferry-partial`), and exit as
//! rsync does (23, 11 and 11; each case runs rsync too and compares). A
//! full destination stops the run at its first file and leaves no partial
//! there: the line says it was removed.
//!
//! The full destination is a 2 MiB tmpfs, mounted and unmounted by the
//! test (the tests run as root here and in CI; with `CI=true` a mount that
//! cannot be made fails the test). Permissions do not bind root, so the
//! pushes run the server's sessions as nobody
//! ([`SshdOptions::sftp_as_nobody`]) and the local copy writes into a
//! read-only bind mount.
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many lines on stderr per cause.
const MOST_LINES: usize = 3;

/// A mount the test made, unmounted when dropped (before the tempdir that
/// holds it goes: declare it after the [`Sshd`]).
struct Mounted(PathBuf);

impl Mounted {
    /// A tmpfs of `size` (`mount -o size=`) at `dir`; None where mounting
    /// is impossible (not root) outside CI, a failure under `CI=true`.
    fn tmpfs(dir: &Path, size: &str) -> Option<Mounted> {
        fs::create_dir_all(dir).unwrap();
        let options = format!("size={size}");
        mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], dir).then(|| Mounted(dir.to_path_buf()))
    }

    /// `dir` bound onto itself, then made read-only.
    fn read_only(dir: &Path) -> Option<Mounted> {
        let path = dir.to_str().expect("a UTF-8 path");
        if !mount(&["--bind", path], dir) {
            return None;
        }
        let mounted = Mounted(dir.to_path_buf());
        assert!(
            mount(&["-o", "remount,bind,ro"], dir),
            "remounting {path} read-only failed"
        );
        Some(mounted)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `mount ARGS DIR`; false when it cannot (then, with `CI=true`, the
/// test fails: CI runs as root, where it can).
fn mount(args: &[&str], dir: &Path) -> bool {
    let out = run_with_deadline(
        Command::new("mount").args(args).arg(dir),
        Duration::from_secs(30),
    );
    if out.code == 0 {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "CI=true and mount {args:?} {} failed (CI runs as root):\n{out}",
        dir.display()
    );
    eprintln!("not run: mount needs root here\n{out}");
    false
}

/// stderr's lines, less blank ones.
fn error_lines(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Panics unless stderr has between one and [`MOST_LINES`] lines, none
/// naming a working file, one naming `path` and saying `words`.
#[track_caller]
fn assert_one_cause(out: &Output, path: &str, words: &str) {
    let lines = error_lines(out);
    assert!(
        !lines.is_empty() && lines.len() <= MOST_LINES,
        "{} lines on stderr, not 1 to {MOST_LINES}\n{out}",
        lines.len()
    );
    assert!(
        !out.stderr.contains(".ferry-partial") && !out.stderr.contains(".ferry-meta"),
        "stderr names ferry's working files, not the user's\n{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(path) && l.to_lowercase().contains(words)),
        "no line names {path} and says {words:?}\n{out}"
    );
}

/// A source of a few files at the top and in two subdirectories.
/// `ferry -a SRC/ SPEC`, no reconnect.
fn push_tree(sshd: &Sshd, src: &Path, spec: &str) -> Output {
    sshd.ferry()
        .args(["-a", "--retries", "0"])
        .arg(format!("{}/", src.display()))
        .arg(spec)
        .run(TIMEOUT)
}

fn small_tree(root: &Path) {
    for i in 0..20 {
        write_file(&root.join(format!("f{i}.txt")), b"top");
        write_file(&root.join(format!("sub/g{i}.txt")), b"sub");
        write_file(&root.join(format!("sub2/h{i}.txt")), b"sub2");
    }
}

/// A source that does not fit a 2 MiB disk: two files of 1.5 MB and a
/// small one.
fn big_tree(root: &Path) {
    write_file(&root.join("a.bin"), &random_bytes(1_500_000, 1));
    write_file(&root.join("mid.bin"), &random_bytes(1_500_000, 2));
    write_file(&root.join("small.txt"), b"small");
}

/// A push into a destination directory the server's user may not write:
/// one line blames the directory (rsync: a line per file and one per
/// subdirectory), its contents are skipped, exit 23 as rsync's.
#[test]
fn push_into_a_directory_not_writable_is_one_line() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_as_nobody: true,
        ..SshdOptions::default()
    });
    let src = sshd.local().join("src");
    small_tree(&src);
    let dest = sshd.remote().join("locked");
    fs::create_dir_all(&dest).unwrap();
    lock(&dest);
    let spec = format!("{}/", sshd.spec(&dest));
    let out = push_tree(&sshd, &src, &spec);
    out.assert_code(23);
    assert_one_cause(&out, &dest.display().to_string(), "permission denied");
    assert!(out.stderr.contains("skipping its contents"), "{out}");
    assert_dir_empty(&dest);
    let rsync = rsync_through(&sshd, &["-a"], &format!("{}/", src.display()), &spec);
    rsync.assert_code(23);
    assert!(
        error_lines(&rsync).len() > MOST_LINES,
        "rsync gives a line per file here\n{rsync}"
    );
}

/// A directory the server's user (nobody, when the tests run as root) may
/// not write.
fn lock(dir: &Path) {
    if running_as_root() {
        std::os::unix::fs::lchown(dir, Some(0), Some(0)).unwrap();
        set_mode(dir, 0o755);
    } else {
        set_mode(dir, 0o555);
    }
}

/// A local copy into a read-only directory (a read-only bind mount): one
/// line blames it, exit 23 as rsync's.
#[test]
fn local_copy_into_a_read_only_directory_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    small_tree(&src);
    let dest = tmp.path().join("ro");
    fs::create_dir_all(&dest).unwrap();
    let Some(_ro) = Mounted::read_only(&dest) else {
        return;
    };
    let typed = format!("{}/", dest.display());
    let out = FerryCmd::bare(tmp.path())
        .args(["-a"])
        .arg(format!("{}/", src.display()))
        .arg(&typed)
        .run(TIMEOUT);
    out.assert_code(23);
    assert_one_cause(&out, &dest.display().to_string(), "read-only file system");
    assert_dir_empty(&dest);
    let rsync = rsync_local(&["-a"], &src, &typed);
    rsync.assert_code(23);
}

/// rsync between two local paths.
fn rsync_local(args: &[&str], src: &Path, dest: &str) -> Output {
    require_rsync();
    run_with_deadline(
        Command::new("rsync")
            .args(args)
            .arg(format!("{}/", src.display()))
            .arg(dest),
        TIMEOUT,
    )
}

/// A destination whose parent is missing, pushed, pulled and copied
/// locally: one line naming it, exit 11, as rsync's `mkdir "..." failed`.
#[test]
fn a_missing_destination_parent_is_one_line_and_exit_11() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    small_tree(&src);
    let remote_src = sshd.remote().join("src");
    small_tree(&remote_src);
    let pushed = sshd.remote().join("no/such/parent/dest");
    let push_spec = format!("{}/", sshd.spec(&pushed));
    let local_src = format!("{}/", src.display());
    let push = sshd
        .ferry()
        .args(["-a"])
        .arg(&local_src)
        .arg(&push_spec)
        .run(TIMEOUT);
    push.assert_code(11);
    assert_one_cause(&push, &pushed.display().to_string(), "mkdir failed");
    rsync_through(&sshd, &["-a"], &local_src, &push_spec).assert_code(11);

    let pulled = sshd.local().join("no/such/parent/dest");
    let pull = sshd
        .ferry()
        .args(["-a"])
        .arg(format!("{}/", sshd.spec(&remote_src)))
        .arg(format!("{}/", pulled.display()))
        .run(TIMEOUT);
    pull.assert_code(11);
    assert_one_cause(&pull, &pulled.display().to_string(), "no such file");

    let copied = format!("{}/", pulled.display());
    let local = FerryCmd::bare(&sshd.home())
        .args(["-a"])
        .arg(&local_src)
        .arg(&copied)
        .run(TIMEOUT);
    local.assert_code(11);
    assert_one_cause(&local, &pulled.display().to_string(), "--mkpath");
    rsync_local(&["-a"], &src, &copied).assert_code(11);
    assert!(!sshd.local().join("no").exists() && !sshd.remote().join("no").exists());
}

/// Panics unless the full disk at `dest` holds no working file, and each
/// of the source's files there is whole (or absent): an old file stays
/// until its replacement is complete.
#[track_caller]
fn assert_full_disk_left_clean(src: &Path, dest: &Path, out: &Output) {
    assert!(
        find_partials(dest).is_empty(),
        "partials left on the full disk: {:?}\n{out}",
        find_partials(dest)
    );
    for name in ["a.bin", "mid.bin", "small.txt"] {
        let there = dest.join(name);
        if there.exists() && fs::read(&there).unwrap() != b"old" {
            assert_files_identical(&src.join(name), &there);
        }
    }
}

/// A push onto a full disk (the server's tmpfs): the first file that finds
/// no room stops the run, one line says what SFTP's generic failure
/// usually means there and that the partial was removed, exit 11 as
/// rsync's "write failed ... No space left on device".
#[test]
fn push_onto_a_full_disk_stops_at_once_and_removes_the_partial() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    big_tree(&src);
    let disk = sshd.remote().join("disk");
    let Some(_tmpfs) = Mounted::tmpfs(&disk, "2m") else {
        return;
    };
    let dest = disk.join("dest");
    write_file(&dest.join("mid.bin"), b"old");
    set_mtime(&dest.join("mid.bin"), 1_400_000_000);
    let spec = format!("{}/", sshd.spec(&dest));
    let out = push_tree(&sshd, &src, &spec);
    out.assert_code(11);
    assert_one_cause(&out, &dest.display().to_string(), "no space left on device");
    out.assert_stderr_contains("partial removed");
    assert_full_disk_left_clean(&src, &dest, &out);

    let again = disk.join("rsync");
    let rsync = rsync_through(
        &sshd,
        &["-a"],
        &format!("{}/", src.display()),
        &format!("{}/", sshd.spec(&again)),
    );
    rsync.assert_code(11);
}

/// A local copy onto a full disk (pull and local copy write through the
/// same local endpoint): one line naming the file, with the system's
/// words, its partial removed, exit 11 as rsync's.
#[test]
fn local_copy_onto_a_full_disk_stops_at_once_and_removes_the_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    big_tree(&src);
    let disk = tmp.path().join("disk");
    let Some(_tmpfs) = Mounted::tmpfs(&disk, "2m") else {
        return;
    };
    let dest = disk.join("dest");
    write_file(&dest.join("mid.bin"), b"old");
    set_mtime(&dest.join("mid.bin"), 1_400_000_000);
    let out = FerryCmd::bare(tmp.path())
        .args(["-a"])
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dest.display()))
        .run(TIMEOUT);
    out.assert_code(11);
    assert_one_cause(&out, &dest.display().to_string(), "no space left on device");
    out.assert_stderr_contains("partial removed");
    assert_full_disk_left_clean(&src, &dest, &out);
    let again = format!("{}/", disk.join("rsync").display());
    rsync_local(&["-a"], &src, &again).assert_code(11);
}
