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
        "ünïcødé 名前 with spaces".to_string(),
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

/// The helper is started only when a file needs remote hashing: a new
/// file is copied without it. A forced helper that cannot start is a clear
/// error (exit 5) once a file needs it (here: an old destination to
/// update), and nothing changes at the destination.
#[test]
fn missing_helper_when_forced_is_a_clear_error() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.bin");
    let dst = sshd.remote().join("f.bin");
    write_file(&src, b"new, longer");
    let run = || {
        sshd.ferry()
            .args([
                "--remote-hash",
                "helper",
                "--remote-ferry",
                "/no/such/ferry",
            ])
            .arg(&src)
            .arg(sshd.spec(&dst))
            .run_default()
    };
    run().assert_ok();
    assert_files_identical(&src, &dst);
    write_file(&dst, b"old");
    let out = run();
    out.assert_code(5);
    out.assert_stderr_contains("--remote-ferry");
    assert_eq!(fs::read(&dst).unwrap(), b"old");

    // With enough new small files beside it, the helper's start is tried
    // while the plan is made (between two directories of the walk);
    // failing there, it is tried again when the update needs it, and that
    // failure is the run's.
    let tree = sshd.local().join("tree");
    for i in 0..300 {
        let name = format!("d{:02}/s{i:03}", i / 10);
        write_file(&tree.join(name), &random_bytes(100, i as u64));
    }
    write_file(&tree.join("f.bin"), b"new, longer");
    let remote = sshd.remote().join("tree");
    fs::create_dir_all(&remote).unwrap();
    write_file(&remote.join("f.bin"), b"old");
    let out = sshd
        .ferry()
        .args([
            "--remote-hash",
            "helper",
            "--remote-ferry",
            "/no/such/ferry",
        ])
        .args(["-r", "-vv"])
        .arg(format!("{}/", tree.display()))
        .arg(sshd.spec(&remote))
        .run_default();
    out.assert_code(5);
    out.assert_stderr_contains("--remote-ferry");
    out.assert_stderr_contains("the helper's early start failed");
    assert_eq!(fs::read(remote.join("f.bin")).unwrap(), b"old");
    assert_eq!(fs::read_dir(&remote).unwrap().count(), 1, "{out}");
}

/// `--remote-ferry upload` puts this binary in the cache directory, reuses
/// it next time without sending it again, and replaces a cached copy whose
/// hash no longer matches. Every copy is read back and hashed here before
/// it runs, the fresh upload included: the bytes down show it.
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
        (proxy.up(), proxy.down())
    };
    let binary = fs::metadata(ferry_bin()).unwrap().len();
    let read_back = |down: u64| {
        assert!(
            down >= binary,
            "the helper was not read back before it ran ({down} bytes down)"
        )
    };
    let (first, down) = run(1000, NEW_MTIME);
    assert!(
        first >= binary,
        "the helper was not uploaded ({first} bytes up)"
    );
    read_back(down);
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

    let (second, down) = run(2000, NEW_MTIME + 10);
    assert!(
        second < binary / 10,
        "the cached helper was sent again ({second} bytes up)"
    );
    read_back(down);
    assert!(
        down < 2 * binary,
        "the cached helper was read back more than once ({down} bytes down)"
    );

    // Flip one byte near the end of the cached copy (still runnable): its
    // hash no longer matches, so it is uploaded again.
    let mut tampered = fs::read(&cached[0]).unwrap();
    let at = tampered.len() - 100;
    tampered[at] ^= 1;
    fs::write(&cached[0], &tampered).unwrap();
    let (third, down) = run(3000, NEW_MTIME + 20);
    read_back(down);
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

/// One change of a file and the most bytes it may cost to bring over.
struct Case {
    name: &'static str,
    old: Vec<u8>,
    new: Vec<u8>,
    /// Bytes that must cross with block matching at the same offsets only.
    aligned: u64,
    /// Bytes that must cross when moved content is found too.
    moved: u64,
}

fn cases() -> Vec<Case> {
    let old = base();
    let size = SIZE as u64;
    let mut edited = old.clone();
    for at in [100, 3 * MIB as usize + 7, 7 * MIB as usize + 4000] {
        edited[at..at + 16].copy_from_slice(b"edited in place!");
    }
    let mut appended = old.clone();
    appended.extend_from_slice(&random_bytes(300 * KIB as usize, 41));
    let (_, front) = shift(0, true);
    let (_, middle) = shift(6 * MIB as usize, true);
    let (_, deleted) = shift(3 * MIB as usize, false);
    let after = |new: &Vec<u8>, at: u64| new.len() as u64 - at + 4 * KIB;
    vec![
        Case {
            name: "edits",
            aligned: 12 * KIB,
            moved: 12 * KIB,
            old: old.clone(),
            new: edited,
        },
        Case {
            name: "append",
            aligned: 304 * KIB,
            moved: 304 * KIB,
            old: old.clone(),
            new: appended,
        },
        Case {
            name: "truncate",
            aligned: 0,
            moved: 0,
            old: old.clone(),
            new: old[..5 * MIB as usize].to_vec(),
        },
        Case {
            name: "insert at front",
            aligned: after(&front, 0),
            moved: 100,
            old: old.clone(),
            new: front,
        },
        Case {
            name: "insert in middle",
            aligned: after(&middle, 6 * MIB),
            moved: 100,
            old: old.clone(),
            new: middle,
        },
        Case {
            name: "deleted range",
            aligned: after(&deleted, 3 * MIB),
            moved: 0,
            old: old.clone(),
            new: deleted,
        },
        Case {
            name: "different",
            aligned: size,
            moved: size,
            old: old.clone(),
            new: random_bytes(SIZE, 43),
        },
        Case {
            name: "to zero",
            aligned: 0,
            moved: 0,
            old: old.clone(),
            new: Vec::new(),
        },
        Case {
            name: "from zero",
            aligned: size,
            moved: size,
            old: Vec::new(),
            new: old,
        },
    ]
}

/// Runs every case one way over one tier; `limit` says what a case may cost.
fn matrix(way: Way, tier: Tier, limit: impl Fn(&Case) -> u64) {
    for case in cases() {
        let moved = sync_change(way, tier, &case.old, &case.new);
        let allowed = limit(&case) + OVERHEAD;
        assert!(
            moved.forward <= allowed,
            "{way:?} over {tier:?}, {}: moved {} bytes, allowed {allowed}",
            case.name,
            moved.forward
        );
    }
}

/// The shell tier compares at the same offsets only (standard tools have no
/// rolling checksum).
#[test]
fn every_change_over_the_shell_tier_push() {
    matrix(Way::Push, Tier::Shell, |c| c.aligned);
}

#[test]
fn every_change_over_the_shell_tier_pull() {
    matrix(Way::Pull, Tier::Shell, |c| c.aligned);
}

/// The read tier on push reads the old file to hash it and to make its
/// signature, then finds moved content like the helper does.
#[test]
fn every_change_over_the_read_tier_push() {
    matrix(Way::Push, Tier::Read, |c| c.moved);
}

/// On pull, reading the remote source to hash it would cost the transfer it
/// is meant to save: the read tier sends changed files whole.
#[test]
fn every_change_over_the_read_tier_pull() {
    matrix(Way::Pull, Tier::Read, |c| c.new.len() as u64);
}

#[test]
fn every_change_over_the_helper_both_ways() {
    matrix(Way::Push, Tier::Helper, |c| c.moved);
    matrix(Way::Pull, Tier::Helper, |c| c.moved);
}

/// A server without copy-data (sftp-server -P copy-data, which also stops
/// advertising it): the shell tier cannot assemble there, so the file goes
/// whole and intact; the helper assembles without copy-data, so it still
/// sends only the edit.
#[test]
fn a_server_refusing_copy_data_gets_the_whole_file_unless_the_helper_copies() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_denies: Some("copy-data"),
        ..SshdOptions::default()
    });
    let src = sshd.local().join("f.bin");
    let dst = sshd.remote().join("f.bin");
    let old = base();
    for (i, tier) in ["shell", "helper"].into_iter().enumerate() {
        write_file(&dst, &old);
        set_mtime(&dst, OLD_MTIME);
        let mut new = old.clone();
        new[3 * MIB as usize + 7] ^= 0x5a;
        write_file(&src, &new);
        set_mtime(&src, NEW_MTIME + i as u64);
        let proxy = CutProxy::start(sshd.port(), None);
        let cfg = sshd.config_for_proxy(&proxy);
        let out = sshd
            .ferry_with_config(&cfg)
            .args(["-vv", "-t", "--remote-hash", tier, "--remote-ferry"])
            .arg(ferry_bin())
            .arg(&src)
            .arg(sshd.spec(&dst))
            .run_default();
        out.assert_ok();
        proxy.wait_idle(std::time::Duration::from_secs(10));
        assert_files_identical(&src, &dst);
        assert_no_partials(&sshd.remote());
        if tier == "shell" {
            assert!(out.stderr.contains("sending the whole file"), "{out}");
            assert!(proxy.up() >= SIZE as u64, "sent {} bytes", proxy.up());
        } else {
            assert!(out.stdout.contains(" 1 by delta"), "{out}");
            assert_at_most("helper without copy-data", proxy.up(), OVERHEAD);
        }
    }
}

/// An SFTP server that starts sessions somewhere else than the login
/// directory (sftp-server -d): a relative remote path must mean the same
/// file to the helper and the shell as to SFTP.
#[test]
fn relative_paths_mean_the_same_file_to_every_tier() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_starts_in_remote: true,
        ..SshdOptions::default()
    });
    let src = sshd.local().join("rel.bin");
    let dst = sshd.remote().join("rel.bin");
    let old = base();
    write_file(&dst, &old);
    set_mtime(&dst, OLD_MTIME);
    for (i, tier) in ["shell", "helper"].into_iter().enumerate() {
        let mut new = old.clone();
        new[MIB as usize * (i + 1)] ^= 0x33;
        write_file(&src, &new);
        set_mtime(&src, NEW_MTIME + i as u64);
        let out = sshd
            .ferry()
            .args(["-v", "-t", "--remote-hash", tier, "--remote-ferry"])
            .arg(ferry_bin())
            .arg(&src)
            .arg(format!("{HOST_ALIAS}:rel.bin"))
            .run_default();
        out.assert_ok();
        assert!(
            out.stdout.contains(" 1 by delta"),
            "not sent as a delta\n{out}"
        );
        assert_files_identical(&src, &dst);
    }
}

/// Enough new small files that the helper takes them (as a stream, not
/// three SFTP round trips each): the tree arrives identical, with modes and
/// times, nothing is left behind, and the helper is what was used; pulled
/// back, the helper gives them the same way. With a helper that cannot
/// start, the same copies go over SFTP instead.
#[test]
fn many_small_files_go_through_the_helper() {
    let sshd = Sshd::start();
    let src = sshd.local().join("small");
    for i in 0..300 {
        let dir = src.join(format!("d{}", i % 4));
        fs::create_dir_all(&dir).unwrap();
        write_file(
            &dir.join(format!("f{i:03}")),
            &random_bytes(i * 13, i as u64),
        );
    }
    for (helper, name) in [
        (ferry_bin(), "via-helper"),
        ("/no/such/ferry".into(), "via-sftp"),
    ] {
        let dst = sshd.remote().join(name);
        let out = sshd
            .ferry()
            .args(["-a", "-v", "--remote-ferry"])
            .arg(&helper)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dst))
            .run_default();
        out.assert_ok();
        assert_trees_identical(&src, &dst);
        assert_no_partials(&dst);
        let used_helper =
            out.stderr.contains("remote hashing on") && out.stderr.contains(": helper");
        assert_eq!(used_helper, name == "via-helper", "{out}");
        let back = sshd.local().join(format!("back-{name}"));
        let out = sshd
            .ferry()
            .args(["-a", "-v", "--remote-ferry"])
            .arg(&helper)
            .arg(format!("{}/", sshd.spec(&dst)))
            .arg(&back)
            .run_default();
        out.assert_ok();
        assert_trees_identical(&src, &back);
        assert_no_partials(&back);
        let used_helper =
            out.stderr.contains("remote hashing on") && out.stderr.contains(": helper");
        assert_eq!(used_helper, name == "via-helper", "pull\n{out}");
    }
}

/// A file whose time changed but not its content is kept where it is, its
/// time set, over every tier that can tell its link count (the shell's
/// `stat`, the helper, a local destination): not rebuilt beside itself.
/// One with a second name outside the destination is rebuilt, as rsync
/// rebuilds it, and the other name keeps its time.
#[test]
fn an_equal_file_with_a_new_time_is_kept_unless_it_has_another_name() {
    use std::os::unix::fs::MetadataExt;
    let sshd = Sshd::start();
    let data = base();
    for (way, tier) in [
        (Way::Push, "shell"),
        (Way::Push, "helper"),
        (Way::Pull, "helper"),
    ] {
        let (src_dir, dst_dir) = match way {
            Way::Push => (sshd.local(), sshd.remote()),
            Way::Pull => (sshd.remote(), sshd.local()),
        };
        let name = format!("{way:?}-{tier}");
        let (src, dst) = (src_dir.join(&name), dst_dir.join(&name));
        let outside = dst_dir.join(format!("{name}.outside"));
        for dir in [&src, &dst] {
            fs::create_dir_all(dir).unwrap();
        }
        for file in ["alone.bin", "linked.bin"] {
            write_file(&src.join(file), &data);
            set_mtime(&src.join(file), NEW_MTIME);
            write_file(&dst.join(file), &data);
            set_mtime(&dst.join(file), OLD_MTIME);
        }
        fs::hard_link(dst.join("linked.bin"), &outside).unwrap();
        let inode = |p: &Path| fs::metadata(p).unwrap().ino();
        let (alone, linked) = (inode(&dst.join("alone.bin")), inode(&outside));
        let (from, to) = match way {
            Way::Push => (format!("{}/", src.display()), sshd.spec(&dst)),
            Way::Pull => (format!("{}/", sshd.spec(&src)), dst.display().to_string()),
        };
        let out = sshd
            .ferry()
            .args(["-a", "-v", "--remote-hash", tier, "--remote-ferry"])
            .arg(ferry_bin())
            .arg(from)
            .arg(to)
            .run_default();
        out.assert_ok();
        assert!(out.stdout.contains(" 2 by delta"), "{name}: {out}");
        assert_trees_identical(&src, &dst);
        assert_no_partials(&dst);
        assert_eq!(inode(&dst.join("alone.bin")), alone, "{name}: rebuilt");
        assert_ne!(inode(&dst.join("linked.bin")), linked, "{name}: kept");
        let other = fs::metadata(&outside).unwrap();
        assert_eq!(other.mtime() as u64, OLD_MTIME, "{name}: touched outside");
        assert_eq!(other.nlink(), 1, "{name}");
        assert_eq!(fs::read(&outside).unwrap(), data, "{name}");
    }
}
