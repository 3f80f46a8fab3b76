//! Permission denied on some files, against real sshd: the files the
//! server's user may not write (or read) fail with messages naming them and
//! saying why, the others arrive, the run exits 23 (partial transfer), and
//! the old files stay as they were. Replacing a file the user may not write
//! in a directory it may write works, as with rsync: a rename needs only the
//! directory.
//!
//! The tests run as root here and in CI, where permissions do not apply, so
//! the server runs its sessions as nobody ([`SshdOptions::sftp_as_nobody`])
//! and what nobody may not touch is owned by root; run as another user,
//! permissions apply already and the same places are made read-only.
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// sshd whose sessions run as nobody when the tests run as root (it fails,
/// never skips, without sshd or, as root, without setpriv).
fn start() -> Sshd {
    Sshd::start_with(SshdOptions {
        sftp_as_nobody: true,
        ..SshdOptions::default()
    })
}

/// A directory the server's user may read but not write: root's, 0755,
/// when the tests run as root; 0555 otherwise.
fn lock_dir(dir: &Path) {
    if running_as_root() {
        std::os::unix::fs::lchown(dir, Some(0), Some(0)).unwrap();
        set_mode(dir, 0o755);
    } else {
        set_mode(dir, 0o555);
    }
}

/// A file the server's user may neither read nor write: root's, 0600, when
/// the tests run as root; 0000 otherwise.
fn lock_file_unreadable(file: &Path) {
    if running_as_root() {
        std::os::unix::fs::lchown(file, Some(0), Some(0)).unwrap();
        set_mode(file, 0o600);
    } else {
        set_mode(file, 0o000);
    }
}

/// A file the server's user may read but not write: root's, 0644, when the
/// tests run as root; 0444 otherwise.
fn lock_file_read_only(file: &Path) {
    if running_as_root() {
        std::os::unix::fs::lchown(file, Some(0), Some(0)).unwrap();
        set_mode(file, 0o644);
    } else {
        set_mode(file, 0o444);
    }
}

/// The server's user owns `path` again (and may write it).
fn unlock(path: &Path, mode: u32) {
    give_to_session_user(path);
    set_mode(path, mode);
}

/// The stderr lines that mention `needle`, lowercased.
fn lines_about(out: &Output, needle: &str) -> Vec<String> {
    out.stderr
        .lines()
        .map(str::to_lowercase)
        .filter(|l| l.contains(&needle.to_lowercase()))
        .collect()
}

/// Panics unless some stderr line names `file` (`dir/name`: its directory
/// and its name, maybe as the name of its partial, `dir/.name.ferry-partial`)
/// and says permission denied.
#[track_caller]
fn assert_denied(out: &Output, file: &str) {
    let (dir, name) = match file.rsplit_once('/') {
        Some((dir, name)) => (format!("/{dir}/"), name),
        None => ("/".to_string(), file),
    };
    let named = lines_about(out, name)
        .into_iter()
        .filter(|l| l.contains(&format!("{dir}{name}")) || l.contains(&format!("{dir}.{name}.")))
        .collect::<Vec<_>>();
    assert!(
        named.iter().any(|l| l.contains("permission denied")),
        "no line of stderr names {file} and says permission denied\n{out}"
    );
}

/// Writes an old version of a file: older than the source's, so that it
/// is never taken for up to date.
fn write_old(path: &Path, data: &[u8]) {
    write_file(path, data);
    set_mtime(path, 1_400_000_000);
}

/// A push into a destination with one directory the server's user may not
/// write: that directory is named once, with "permission denied", its
/// files are skipped without a line each, and their old versions stay;
/// every other file arrives (exit 23), and no working file is left behind.
/// Once the directory is writable, a rerun completes the sync.
#[test]
fn push_into_a_directory_not_writable_fails_its_files_only() {
    let sshd = start();
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    write_file(&src.join("top.txt"), b"top, new");
    write_file(&src.join("open/one.txt"), b"one, new");
    write_file(
        &src.join("open/big.bin"),
        &random_bytes(2 * MIB as usize, 1),
    );
    write_file(&src.join("open/new.txt"), b"a file the destination lacks");
    write_file(&src.join("locked/old.txt"), b"old.txt, new version");
    write_file(
        &src.join("locked/huge.bin"),
        &random_bytes(3 * MIB as usize, 2),
    );
    write_file(&src.join("locked/fresh.txt"), b"not in the destination yet");

    write_old(&dest.join("top.txt"), b"top, old");
    write_old(&dest.join("open/one.txt"), b"one, old");
    // Most of it matches: a delta, with the hashing on the server.
    let mut big_old = random_bytes(2 * MIB as usize, 1);
    big_old[1_000_000..1_000_100].fill(0);
    write_old(&dest.join("open/big.bin"), &big_old);
    let old_txt = b"old.txt, old version".to_vec();
    let huge_old = random_bytes(3 * MIB as usize, 2)[..2 * MIB as usize].to_vec();
    write_old(&dest.join("locked/old.txt"), &old_txt);
    write_old(&dest.join("locked/huge.bin"), &huge_old);
    give_to_session_user(&dest);
    lock_dir(&dest.join("locked"));

    let push = || {
        sshd.ferry()
            .args(["-av", "--retries", "0"])
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run(TIMEOUT)
    };
    let out = push();
    out.assert_code(23);
    assert!(
        out.stdout.contains("1 by delta"),
        "open/big.bin was not built by delta (the server's hashing runs as its user)\n{out}"
    );
    let locked = lines_about(&out, "/locked");
    assert!(
        locked.len() == 1 && locked[0].contains("permission denied"),
        "not one line naming locked/ with permission denied\n{out}"
    );
    for file in ["old.txt", "huge.bin", "fresh.txt"] {
        assert!(
            lines_about(&out, file).is_empty(),
            "a line for {file}\n{out}"
        );
    }
    for file in ["top.txt", "open/one.txt", "open/big.bin", "open/new.txt"] {
        assert_files_identical(&src.join(file), &dest.join(file));
        assert!(
            lines_about(&out, file).is_empty(),
            "{file} arrived, yet stderr mentions it\n{out}"
        );
    }
    assert_eq!(
        fs::read(dest.join("locked/old.txt")).unwrap(),
        old_txt,
        "{out}"
    );
    assert_eq!(
        fs::read(dest.join("locked/huge.bin")).unwrap(),
        huge_old,
        "{out}"
    );
    assert!(!dest.join("locked/fresh.txt").exists(), "{out}");
    assert_no_partials(&dest);
    assert_eq!(
        top_names(&sshd.remote()),
        ["dest"],
        "the lock or another working file was left beside the destination\n{out}"
    );

    unlock(&dest.join("locked"), 0o755);
    push().assert_ok();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    assert_no_partials(&dest);
}

/// A pull of a tree holding one file the server's user may not read: that
/// file fails, named with "permission denied", and the old local copy of it
/// stays as it was; every other file arrives (exit 23).
#[test]
fn pull_of_a_file_not_readable_fails_that_file_only() {
    let sshd = start();
    let src = sshd.remote().join("src");
    let dest = sshd.local().join("dest");
    write_file(&src.join("top.txt"), b"top");
    write_file(&src.join("d/one.txt"), b"one");
    write_file(&src.join("d/big.bin"), &random_bytes(2 * MIB as usize, 3));
    write_file(&src.join("d/secret.txt"), b"secret, new version");
    write_file(&src.join("d/vault.bin"), &random_bytes(2 * MIB as usize, 4));
    give_to_session_user(&src);
    lock_file_unreadable(&src.join("d/secret.txt"));
    lock_file_unreadable(&src.join("d/vault.bin"));

    let old_secret = b"secret, old version".to_vec();
    let old_vault = random_bytes(2 * MIB as usize, 4)[..MIB as usize].to_vec();
    write_old(&dest.join("d/secret.txt"), &old_secret);
    write_old(&dest.join("d/vault.bin"), &old_vault);

    let out = sshd
        .ferry()
        .args(["-a", "--retries", "0"])
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(&dest)
        .run(TIMEOUT);
    out.assert_code(23);
    assert_denied(&out, "d/secret.txt");
    assert_denied(&out, "d/vault.bin");
    for file in ["top.txt", "d/one.txt", "d/big.bin"] {
        assert_files_identical(&src.join(file), &dest.join(file));
    }
    assert_eq!(fs::read(dest.join("d/secret.txt")).unwrap(), old_secret);
    assert_eq!(fs::read(dest.join("d/vault.bin")).unwrap(), old_vault);
    assert_no_partials(&dest);
    // Put back for the tempdir's removal when not root.
    set_mode(&src.join("d/secret.txt"), 0o600);
    set_mode(&src.join("d/vault.bin"), 0o600);
}

/// A destination file the server's user may not write, in a directory it
/// may: ferry writes the new version beside it and renames it over, which
/// needs only the directory, so the file is replaced (exit 0), as rsync
/// does. `--inplace` has to write the file itself: that fails, named with
/// "permission denied", and the file stays as it was (exit 23).
#[test]
fn a_file_not_writable_in_a_writable_directory_is_replaced() {
    let sshd = start();
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    write_file(&src.join("small.txt"), b"small, new version");
    let big = random_bytes(3 * MIB as usize, 5);
    write_file(&src.join("big.bin"), &big);
    let small_old = b"small, old".to_vec();
    let mut big_old = big.clone();
    big_old[2_000_000..2_000_500].fill(7);
    write_old(&dest.join("small.txt"), &small_old);
    write_old(&dest.join("big.bin"), &big_old);
    give_to_session_user(&dest);
    lock_file_read_only(&dest.join("small.txt"));
    lock_file_read_only(&dest.join("big.bin"));

    let ferry = |extra: &[&str]| {
        sshd.ferry()
            .args(["-av", "--retries", "0"])
            .args(extra)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run(TIMEOUT)
    };
    let out = ferry(&["--inplace"]);
    out.assert_code(23);
    assert_denied(&out, "small.txt");
    assert_denied(&out, "big.bin");
    assert_eq!(fs::read(dest.join("small.txt")).unwrap(), small_old);
    assert_eq!(fs::read(dest.join("big.bin")).unwrap(), big_old);

    let out = ferry(&[]);
    out.assert_ok();
    assert!(
        out.stdout.contains("1 by delta"),
        "big.bin was not built by delta\n{out}"
    );
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    assert_no_partials(&dest);
}
