//! Block-level delta against real sshd, with the helper (`ferry --server`,
//! this very binary, on the "remote" side of loopback) and without it. Each
//! case checks the result byte for byte and the bytes on the wire, counted
//! at a proxy, against what the change requires.
mod common;

use common::*;
use std::fs;
use std::path::Path;

const SIZE: usize = 8 * MIB as usize;
/// SSH handshake, SFTP requests, hash lists: what a delta may add to the
/// changed bytes themselves.
const OVERHEAD: u64 = 256 * KIB;
const OLD_MTIME: u64 = 1_500_000_000;
const NEW_MTIME: u64 = 1_600_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    Push,
    Pull,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tier {
    Helper,
    Shell,
    Read,
    Off,
}

struct Moved {
    /// Bytes from the source side to the destination side.
    forward: u64,
    /// Bytes the other way.
    back: u64,
}

/// Puts `old` at the destination and `new` at the source, syncs with `-t`,
/// checks the result, and returns the bytes moved each way.
fn sync_change(way: Way, tier: Tier, old: &[u8], new: &[u8]) -> Moved {
    let sshd = Sshd::start();
    let (src, dst) = match way {
        Way::Push => (sshd.local().join("f.bin"), sshd.remote().join("f.bin")),
        Way::Pull => (sshd.remote().join("f.bin"), sshd.local().join("f.bin")),
    };
    write_file(&dst, old);
    set_mtime(&dst, OLD_MTIME);
    write_file(&src, new);
    set_mtime(&src, NEW_MTIME);
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    let mut cmd = sshd.ferry_with_config(&cfg);
    cmd.arg("-t");
    match tier {
        Tier::Helper => cmd
            .args(["--remote-hash", "helper", "--remote-ferry"])
            .arg(ferry_bin()),
        Tier::Shell => cmd.args(["--remote-hash", "shell"]),
        Tier::Read => cmd.args(["--remote-hash", "read"]),
        Tier::Off => cmd.args(["--remote-hash", "off"]),
    };
    let (from, to) = match way {
        Way::Push => (src.display().to_string(), sshd.spec(&dst)),
        Way::Pull => (sshd.spec(&src), dst.display().to_string()),
    };
    let out = cmd.arg(from).arg(to).run_default();
    out.assert_ok();
    proxy.wait_idle(std::time::Duration::from_secs(10));
    assert_files_identical(&src, &dst);
    assert_no_partials(dst.parent().unwrap_or(Path::new("/")));
    let (up, down) = (proxy.up(), proxy.down());
    match way {
        Way::Push => Moved {
            forward: up,
            back: down,
        },
        Way::Pull => Moved {
            forward: down,
            back: up,
        },
    }
}

fn base() -> Vec<u8> {
    random_bytes(SIZE, 40)
}

#[track_caller]
fn assert_at_most(what: &str, moved: u64, limit: u64) {
    assert!(
        moved <= limit,
        "{what}: moved {moved} bytes, allowed {limit}"
    );
}

fn edits_in_place(way: Way, tier: Tier) {
    let old = base();
    let mut new = old.clone();
    for at in [100, 3 * MIB as usize + 7, 7 * MIB as usize + 4000] {
        new[at..at + 16].copy_from_slice(b"edited in place!");
    }
    let moved = sync_change(way, tier, &old, &new);
    // Three edits, each inside one 4 KiB block.
    assert_at_most("edits", moved.forward, 3 * 4 * KIB + OVERHEAD);
}

#[test]
fn push_edits_in_place_with_helper() {
    edits_in_place(Way::Push, Tier::Helper);
}

#[test]
fn pull_edits_in_place_with_helper() {
    edits_in_place(Way::Pull, Tier::Helper);
}

/// The shell tier: the server's split --filter with sha256sum (no b3sum on
/// the test machine), so both sides compare SHA-256.
#[test]
fn push_edits_in_place_with_shell() {
    edits_in_place(Way::Push, Tier::Shell);
}

#[test]
fn pull_edits_in_place_with_shell() {
    edits_in_place(Way::Pull, Tier::Shell);
}

/// File names full of shell syntax travel both ways with the shell tier
/// hashing them on the server, and nothing in them ever runs there.
#[test]
fn hostile_names_never_reach_the_shell_unquoted() {
    let sshd = Sshd::start();
    let tag = std::process::id();
    let names = [
        format!("$(touch pwned-a-{tag})"),
        format!("`touch pwned-b-{tag}`"),
        format!("x; touch pwned-c-{tag}"),
        "it's quoted \"twice\"".to_string(),
        "-rf".to_string(),
        "new\nline".to_string(),
        "a|b&c>d".to_string(),
    ];
    let src = sshd.local().join("tree");
    for (i, name) in names.iter().enumerate() {
        write_file(
            &src.join(name),
            &random_bytes(3 * MIB as usize, 50 + i as u64),
        );
        set_mtime(&src.join(name), OLD_MTIME);
    }
    let dest = sshd.remote().join("tree");
    let push = |tier: &str| {
        sshd.ferry()
            .args(["-rt", "--remote-hash", tier])
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run_ok();
    };
    push("off");
    // Change every file so the second run hashes each name on the server.
    for name in &names {
        let mut data = fs::read(src.join(name)).unwrap();
        data[MIB as usize] ^= 0xff;
        write_file(&src.join(name), &data);
        set_mtime(&src.join(name), NEW_MTIME);
    }
    push("shell");
    assert_trees_identical(&src, &dest);
    let back = sshd.local().join("back");
    sshd.ferry()
        .args(["-rt", "--remote-hash", "shell"])
        .arg(format!("{}/", sshd.spec(&dest)))
        .arg(&back)
        .run_ok();
    assert_trees_identical(&src, &back);
    let home = remote_home();
    for dir in [home.as_path(), sshd.remote().as_path(), dest.as_path()] {
        let planted: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pwned-"))
            .collect();
        assert!(
            planted.is_empty(),
            "a file name ran on the server: {planted:?} in {}",
            dir.display()
        );
    }
}

/// The login directory of the test user, where a remote command would run.
fn remote_home() -> std::path::PathBuf {
    let out = std::process::Command::new("getent")
        .args(["passwd", &current_user()])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    std::path::PathBuf::from(line.trim().split(':').nth(5).unwrap_or("/"))
}

/// The read tier downloads the old file to hash it, then uploads only the
/// changed blocks: for links whose download is the cheaper direction.
#[test]
fn push_edits_in_place_reading_remote_blocks() {
    let old = base();
    let mut new = old.clone();
    new[5 * MIB as usize..5 * MIB as usize + 3].copy_from_slice(b"abc");
    let moved = sync_change(Way::Push, Tier::Read, &old, &new);
    assert_at_most("upload", moved.forward, 4 * KIB + OVERHEAD);
    // Old file read for hashing, its one differing 1 MiB block read again to
    // refine it, and the new file read back for the end-to-end check.
    assert_at_most("download", moved.back, 2 * SIZE as u64 + MIB + OVERHEAD);
}

/// Without remote hashing there is no delta: the whole file goes.
#[test]
fn push_without_remote_hashing_sends_whole_file() {
    let old = base();
    let mut new = old.clone();
    new[0] ^= 1;
    let moved = sync_change(Way::Push, Tier::Off, &old, &new);
    assert!(moved.forward >= SIZE as u64, "sent only {}", moved.forward);
}

fn append(way: Way) {
    let old = base();
    let mut new = old.clone();
    new.extend_from_slice(&random_bytes(300 * KIB as usize, 41));
    let moved = sync_change(way, Tier::Helper, &old, &new);
    assert_at_most("append", moved.forward, 300 * KIB + 4 * KIB + OVERHEAD);
}

#[test]
fn push_append_with_helper() {
    append(Way::Push);
}

#[test]
fn pull_append_with_helper() {
    append(Way::Pull);
}

fn truncation(way: Way) {
    let old = base();
    let new = old[..5 * MIB as usize + 1234].to_vec();
    let moved = sync_change(way, Tier::Helper, &old, &new);
    assert_at_most("truncation", moved.forward, OVERHEAD);
}

#[test]
fn push_truncation_with_helper() {
    truncation(Way::Push);
}

#[test]
fn pull_truncation_with_helper() {
    truncation(Way::Pull);
}

fn shift(at: usize, insert: bool) -> (Vec<u8>, Vec<u8>) {
    let old = base();
    let mut new = old[..at].to_vec();
    if insert {
        new.extend_from_slice(&random_bytes(100, 42));
        new.extend_from_slice(&old[at..]);
    } else {
        new.extend_from_slice(&old[at + 64 * KIB as usize..]);
    }
    (old, new)
}

/// On push the source is local, so the old file's rolling signature comes
/// from the helper and shifted blocks are found anywhere: only the inserted
/// bytes cross (the signature of 8 MiB is 2.5 KiB).
#[test]
fn push_insertion_at_front_sends_only_the_insert() {
    let (old, new) = shift(0, true);
    let moved = sync_change(Way::Push, Tier::Helper, &old, &new);
    assert_at_most("insert at front", moved.forward, 100 + OVERHEAD);
}

#[test]
fn push_insertion_in_middle_sends_only_the_insert() {
    let (old, new) = shift(6 * MIB as usize, true);
    let moved = sync_change(Way::Push, Tier::Helper, &old, &new);
    assert_at_most("insert in middle", moved.forward, 100 + OVERHEAD);
}

#[test]
fn push_deleted_range_sends_next_to_nothing() {
    let (old, new) = shift(3 * MIB as usize, false);
    let moved = sync_change(Way::Push, Tier::Helper, &old, &new);
    assert_at_most("deleted range", moved.forward, OVERHEAD);
}

/// On pull the scan runs in the helper, next to the new file, against the
/// local old file's signature: again only the inserted bytes cross.
#[test]
fn pull_insertion_at_front_receives_only_the_insert() {
    let (old, new) = shift(0, true);
    let moved = sync_change(Way::Pull, Tier::Helper, &old, &new);
    assert_at_most("insert at front", moved.forward, 100 + OVERHEAD);
}

#[test]
fn pull_deleted_range_receives_next_to_nothing() {
    let (old, new) = shift(6 * MIB as usize, false);
    let moved = sync_change(Way::Pull, Tier::Helper, &old, &new);
    assert_at_most("deleted range", moved.forward, OVERHEAD);
}

fn different_content(way: Way) {
    let moved = sync_change(way, Tier::Helper, &base(), &random_bytes(SIZE, 43));
    assert_at_most("different", moved.forward, SIZE as u64 + OVERHEAD);
}

#[test]
fn push_entirely_different_content() {
    different_content(Way::Push);
}

#[test]
fn pull_entirely_different_content() {
    different_content(Way::Pull);
}

#[test]
fn push_to_zero_length_and_back() {
    let moved = sync_change(Way::Push, Tier::Helper, &base(), &[]);
    assert_at_most("to zero", moved.forward, OVERHEAD);
    let moved = sync_change(Way::Push, Tier::Helper, &[], &base());
    assert_at_most("from zero", moved.forward, SIZE as u64 + OVERHEAD);
}

#[test]
fn pull_file_grown_from_zero() {
    let moved = sync_change(Way::Pull, Tier::Helper, &[], &base());
    assert_at_most("from zero", moved.forward, SIZE as u64 + OVERHEAD);
}

/// A forced helper that cannot start is a clear error (exit 5) and nothing
/// changes at the destination.
#[test]
fn missing_helper_when_forced_is_a_clear_error() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.bin");
    let dst = sshd.remote().join("f.bin");
    write_file(&src, b"new");
    write_file(&dst, b"old");
    let out = sshd
        .ferry()
        .args([
            "--remote-hash",
            "helper",
            "--remote-ferry",
            "/no/such/ferry",
        ])
        .arg(&src)
        .arg(sshd.spec(&dst))
        .run_default();
    out.assert_code(5);
    out.assert_stderr_contains("--remote-ferry");
    assert_eq!(fs::read(&dst).unwrap(), b"old");
}

/// `--remote-ferry upload` puts this binary in the cache directory, reuses
/// it next time without sending it again, and replaces a cached copy whose
/// own hash no longer matches.
#[test]
fn uploaded_helper_is_cached_verified_and_reused() {
    let sshd = Sshd::start();
    let cache = sshd.remote().join("cache");
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    let src = sshd.local().join("f.bin");
    let dst = sshd.remote().join("f.bin");
    let old = base();
    write_file(&dst, &old);
    set_mtime(&dst, OLD_MTIME);
    let run = |edit_at: usize, mtime: u64| {
        let mut new = old.clone();
        new[edit_at] ^= 0x5a;
        write_file(&src, &new);
        set_mtime(&src, mtime);
        proxy.reset_counts();
        let out = sshd
            .ferry_with_config(&cfg)
            .args(["-v", "-t", "--remote-ferry", "upload", "--remote-cache"])
            .arg(&cache)
            .arg(&src)
            .arg(sshd.spec(&dst))
            .run_default();
        out.assert_ok();
        out.assert_stderr_contains("remote hashing on");
        assert!(out.stderr.contains(": helper"), "helper not used\n{out}");
        proxy.wait_idle(std::time::Duration::from_secs(10));
        assert_files_identical(&src, &dst);
        proxy.up()
    };
    let binary = fs::metadata(ferry_bin()).unwrap().len();
    let first = run(1000, NEW_MTIME);
    assert!(
        first >= binary,
        "the helper was not uploaded ({first} bytes up)"
    );
    let cached: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(mode_of(&cached[0]) & 0o777, 0o700);
    assert_eq!(
        fs::read(&cached[0]).unwrap(),
        fs::read(ferry_bin()).unwrap()
    );

    let second = run(2000, NEW_MTIME + 10);
    assert!(
        second < binary / 10,
        "the cached helper was sent again ({second} bytes up)"
    );

    // Flip one byte near the end of the cached copy (still runnable): the
    // helper's hash of itself no longer matches, so it is uploaded again.
    let mut tampered = fs::read(&cached[0]).unwrap();
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    fs::write(&cached[0], &tampered).unwrap();
    let third = run(3000, NEW_MTIME + 20);
    assert!(
        third >= binary / 2,
        "a tampered helper was trusted ({third} bytes up)"
    );
    assert_eq!(
        fs::read(&cached[0]).unwrap(),
        fs::read(ferry_bin()).unwrap()
    );
}

/// `--inplace` writes only the changed block into the destination itself:
/// same inode, no partial, and it needs no copy-data on the server.
#[test]
fn inplace_push_patches_only_changed_blocks() {
    use std::os::unix::fs::MetadataExt;
    let sshd = Sshd::start();
    let (src, dst) = (sshd.local().join("f.bin"), sshd.remote().join("f.bin"));
    let old = base();
    write_file(&dst, &old);
    set_mtime(&dst, OLD_MTIME);
    let inode = fs::metadata(&dst).unwrap().ino();
    let mut new = old.clone();
    new[4 * MIB as usize + 9..4 * MIB as usize + 20].copy_from_slice(b"in place!!!");
    new.truncate(7 * MIB as usize);
    write_file(&src, &new);
    set_mtime(&src, NEW_MTIME);
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    sshd.ferry_with_config(&cfg)
        .args([
            "-t",
            "--inplace",
            "--remote-hash",
            "helper",
            "--remote-ferry",
        ])
        .arg(ferry_bin())
        .arg(&src)
        .arg(sshd.spec(&dst))
        .run_ok();
    proxy.wait_idle(std::time::Duration::from_secs(10));
    assert_files_identical(&src, &dst);
    assert_eq!(
        fs::metadata(&dst).unwrap().ino(),
        inode,
        "not updated in place"
    );
    assert_no_partials(&sshd.remote());
    assert_at_most("in place", proxy.up(), 4 * KIB + OVERHEAD);
}

/// Without remote hashing, --inplace rewrites the whole file in place.
#[test]
fn inplace_pull_without_hashing_rewrites_in_place() {
    use std::os::unix::fs::MetadataExt;
    let sshd = Sshd::start();
    let (src, dst) = (sshd.remote().join("f.bin"), sshd.local().join("f.bin"));
    write_file(&dst, &base());
    set_mtime(&dst, OLD_MTIME);
    let inode = fs::metadata(&dst).unwrap().ino();
    write_file(&src, &random_bytes(SIZE / 2, 77));
    set_mtime(&src, NEW_MTIME);
    sshd.ferry()
        .args(["-t", "--inplace", "--remote-hash", "off"])
        .arg(sshd.spec(&src))
        .arg(&dst)
        .run_ok();
    assert_files_identical(&src, &dst);
    assert_eq!(
        fs::metadata(&dst).unwrap().ino(),
        inode,
        "not updated in place"
    );
    assert_no_partials(&sshd.local());
}
