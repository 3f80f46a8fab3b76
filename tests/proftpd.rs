//! ferry against a second real SFTP server: ProFTPD's mod_sftp on loopback
//! ([`Proftpd`]), an SFTP-only server (no shell, no exec, so no remote
//! hashing) whose attribute handling, renames and symlinks are its own. A
//! tree goes there and back with `-a` and arrives identical, and an update
//! swaps links and files there; `-v` says remote hashing is off; a push and
//! a pull cut by a [`CutProxy`] resume to an identical file. The trees are
//! [`make_test_tree`]'s: files of several sizes and modes, subdirectories
//! (one empty), relative symlinks (one pointing up), old mtimes.
mod common;

use common::proftpd::Proftpd;
use common::*;
use std::time::Duration;

#[test]
fn push_tree_with_archive_arrives_identical() {
    let server = Proftpd::start();
    let src = server.local().join("tree");
    make_test_tree(&src);
    let dest = server.remote().join("tree");
    server
        .ferry()
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(server.spec(&dest))
        .run_ok();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    assert_no_partials(&dest);
}

#[test]
fn pull_tree_with_archive_arrives_identical() {
    let server = Proftpd::start();
    let src = server.remote().join("tree");
    make_test_tree(&src);
    give_to_session_user(&src);
    let dest = server.local().join("tree");
    server
        .ferry()
        .arg("-a")
        .arg(format!("{}/", server.spec(&src)))
        .arg(&dest)
        .run_ok();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    assert_no_partials(&dest);
}

/// `--remote-hash auto` tries the helper and the shell, which mod_sftp
/// refuses (it runs no commands), and settles for the server's own
/// `check-file-name` extension; `-v` says so once the first file needs a
/// hash: here, an update of a file already on the server.
#[test]
fn verbose_names_the_servers_check_file_extension() {
    let server = Proftpd::start();
    let src = server.local().join("data.bin");
    write_file(&src, &random_bytes(600 * KIB as usize, 7));
    let dest_dir = server.remote();
    let push = || {
        server
            .ferry()
            .args(["-v", "--remote-hash", "auto"])
            .arg(&src)
            .arg(format!("{}/", server.spec(&dest_dir)))
            .run_ok()
    };
    push();
    overwrite_at(&src, 200 * KIB, &random_bytes(4096, 8));
    // Another mtime than the copy's (which is when it was written), so the
    // quick check sends it again.
    set_mtime(&src, 1_600_000_000);
    let out = push();
    // The host as typed, as every message names it.
    let expected = format!("ferry: remote hashing on {HOST_ALIAS}: check-file");
    assert!(
        out.stderr.lines().any(|line| line == expected),
        "-v does not say {expected:?}\n{out}"
    );
    assert_files_identical(&src, &dest_dir.join("data.bin"));
    let log = server.sftp_log();
    assert!(
        log.contains("unsupported exec command"),
        "mod_sftp refused no command, so ferry never asked for a helper or a shell; sftp.log:\n{log}"
    );
}

/// mod_sftp's LSTAT and RENAME resolve a final symlink; ferry must still
/// replace links with files and files with links, retarget links, and
/// delete a link to a directory as a link.
#[test]
fn push_update_swaps_links_and_files_and_deletes_links_as_links() {
    let server = Proftpd::start();
    let src = server.local().join("tree");
    make_test_tree(&src);
    let dest = server.remote().join("tree");
    let push = || {
        server
            .ferry()
            .args(["-a", "--delete"])
            .arg(format!("{}/", src.display()))
            .arg(server.spec(&dest))
            .run_ok()
    };
    push();
    // On the server: a link to a directory full of files, which the
    // source lacks.
    std::os::unix::fs::symlink("dir with space", dest.join("extra-link")).unwrap();
    give_to_session_user(&dest);
    // In the source: a link retargeted, a file become a link, a link become
    // a file, a new link to a directory.
    let relink = |name: &str, target: &str| {
        let path = src.join(name);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    };
    relink("link-to-top", "script.sh");
    relink("top.txt", "empty.txt");
    std::fs::remove_file(src.join("dir with space/link-up")).unwrap();
    write_file(&src.join("dir with space/link-up"), b"a file now\n");
    std::os::unix::fs::symlink("empty-dir", src.join("dirlink")).unwrap();
    push();
    assert_trees_identical_with(&src, &dest, Compare::ARCHIVE);
    assert_no_partials(&dest);
}

/// The big file of the resume tests and where the proxy cuts it.
const BIG: usize = 24 * MIB as usize;
const CUT: u64 = 10 * MIB;
/// The first run's partial must hold at least this much for the rerun to
/// be a resume.
const MIN_PARTIAL: u64 = 4 * MIB;
const SLACK: u64 = 2 * MIB;
const BIG_MTIME: u64 = 1_500_000_000;

#[derive(Clone, Copy, Debug)]
enum Way {
    Push,
    Pull,
}

/// Sends the big file `way`, has the proxy cut the first run after [`CUT`]
/// bytes of it, and runs again: the partial the cut left is resumed, and
/// the file ends identical to the source, with its mtime. A push's rerun
/// sends only what the partial lacks.
fn cut_then_resume(way: Way) -> Output {
    cut_then_resume_with(way, Damage::None, &[])
}

/// What happens to the partial between the cut and the rerun.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Damage {
    None,
    /// Its first 4 KiB overwritten while its sidecar still says it holds
    /// the source's bytes: a bad disk or a second writer.
    Head,
}

/// [`cut_then_resume`], the partial damaged as `damage` says, the rerun
/// with `options` more.
fn cut_then_resume_with(way: Way, damage: Damage, options: &[&str]) -> Output {
    let server = Proftpd::start();
    let (src, dest_dir, cut) = match way {
        Way::Push => (
            server.local().join("big.bin"),
            server.remote(),
            Direction::Up,
        ),
        Way::Pull => (
            server.remote().join("big.bin"),
            server.local(),
            Direction::Down,
        ),
    };
    write_file(&src, &random_bytes(BIG, 31));
    set_mtime(&src, BIG_MTIME);
    give_to_session_user(&src);
    let proxy = CutProxy::start(server.port(), Some((cut, CUT)));
    let config = server.config_for_proxy(&proxy);
    let (from, to) = match way {
        Way::Push => (
            src.display().to_string(),
            format!("{}/", server.spec(&dest_dir)),
        ),
        Way::Pull => (server.spec(&src), dest_dir.display().to_string()),
    };
    let run = |more: &[&str]| {
        server
            .ferry_with_config(&config)
            .args(["-a", "-P", "--retries", "0"])
            .args(more)
            .arg(&from)
            .arg(&to)
            .run_default()
    };

    let first = run(&[]);
    assert!(proxy.tripped(), "the proxy never cut the {way:?}\n{first}");
    first.assert_code(10);
    proxy.wait_idle(Duration::from_secs(10));
    // mod_sftp may still be writing what it received before the cut.
    let partial_len = wait_stable_len(&partial_path(&dest_dir, "big.bin"), Duration::from_secs(10));
    assert!(
        (MIN_PARTIAL..BIG as u64).contains(&partial_len),
        "after the cut the partial holds {partial_len} bytes; the destination holds {:?}\n{first}",
        list_tree(&dest_dir)
    );
    assert!(
        !dest_dir.join("big.bin").exists(),
        "a cut {way:?} installed the file"
    );

    if damage == Damage::Head {
        let sidecar = meta_path(&dest_dir, "big.bin");
        assert!(sidecar.exists(), "no sidecar after the cut\n{first}");
        overwrite_at(
            &partial_path(&dest_dir, "big.bin"),
            0,
            &random_bytes(4096, 0xBAD),
        );
    }
    proxy.set_cut(None);
    proxy.reset_counts();
    let rerun = run(options);
    rerun.assert_ok();
    proxy.wait_idle(Duration::from_secs(10));
    eprintln!(
        "{way:?} rerun: up {} down {} (partial was {partial_len})",
        proxy.up(),
        proxy.down()
    );
    let dest = dest_dir.join("big.bin");
    assert_files_identical(&src, &dest);
    assert_eq!(
        mtime_secs(&dest),
        BIG_MTIME as i64,
        "the mtime of {}",
        dest.display()
    );
    assert_no_partials(&dest_dir);
    // A damaged head may cost a whole resend when hashes catch it after.
    if matches!(way, Way::Push) && damage == Damage::None {
        let bound = BIG as u64 - partial_len + SLACK;
        assert!(
            proxy.up() <= bound,
            "the rerun sent {} bytes up; the partial held {partial_len}, so at most {bound} \
             (a resume, not a resend)\n{rerun}",
            proxy.up()
        );
    }
    rerun
}

/// mod_sftp mixes up the data of several SFTP sessions on one connection
/// (proftpd issue 1897: sessions hang, the connection drops): `--streams 3`
/// keeps one there, says why under `-v`, and the file arrives identical.
#[test]
fn streams_stay_one_on_mod_sftp() {
    let server = Proftpd::start();
    let src = server.local().join("big.bin");
    write_file(&src, &random_bytes(12 * MIB as usize, 41));
    let remote = server.remote().join("big.bin");
    let push = server
        .ferry()
        .args(["--streams", "3", "-v"])
        .arg(&src)
        .arg(server.spec(&remote))
        .run(Duration::from_secs(60));
    push.assert_ok();
    assert_files_identical(&src, &remote);
    push.assert_stderr_contains("1 SFTP session carries the data");
    push.assert_stderr_contains("proftpd issue 1897");
}

/// Across a far link (30 ms: a delaying proxy) a large file gets another
/// connection to mod_sftp, with one session of its own (several on one
/// connection are what mod_sftp mixes up): the file arrives identical, and
/// the proxy saw two connections.
#[test]
fn a_far_mod_sftp_gets_one_session_per_connection() {
    let server = Proftpd::start();
    let src = server.local().join("big.bin");
    write_file(&src, &random_bytes(160 * MIB as usize, 42));
    let proxy = DelayProxy::start(server.port(), Duration::from_millis(15));
    let config = server.config_for_delay(&proxy);
    let remote = server.remote().join("big.bin");
    let push = server
        .ferry_with_config(&config)
        .args(["-v"])
        .arg(&src)
        .arg(server.spec(&remote))
        .run(Duration::from_secs(120));
    push.assert_ok();
    assert_files_identical(&src, &remote);
    push.assert_stderr_contains("proftpd issue 1897");
    push.assert_stderr_contains("1 more SSH connection carries 1 more SFTP session ");
    assert_eq!(proxy.accepted(), 2, "one more connection\n{push}");
}

#[test]
fn push_cut_by_the_proxy_resumes_to_an_identical_file() {
    cut_then_resume(Way::Push);
}

#[test]
fn pull_cut_by_the_proxy_resumes_to_an_identical_file() {
    cut_then_resume(Way::Pull);
}

/// No helper and no shell, but the server hashes (check-file): a partial
/// whose head went bad while its sidecar vouches for it ends identical:
/// the whole-file hashes after the resume disagree, and the file is sent
/// again whole.
#[test]
fn a_bad_head_under_a_good_sidecar_is_caught_by_the_servers_hashes() {
    for way in [Way::Push, Way::Pull] {
        let rerun = cut_then_resume_with(way, Damage::Head, &["-v"]);
        // The window was fine, the head was not: only the whole-file
        // hashes, the server's, can have caught it.
        rerun.assert_stderr_contains("does not match the source end to end; sending it whole");
        assert!(rerun.stdout.contains("1 file sent"), "{way:?}\n{rerun}");
    }
}

/// The same with no remote hashing at all (`--remote-hash off`): the
/// sidecar is not taken at its word, the partial is compared whole with the
/// source (read back) before it is continued.
#[test]
fn a_bad_head_under_a_good_sidecar_is_read_back_without_remote_hashing() {
    for way in [Way::Push, Way::Pull] {
        let rerun = cut_then_resume_with(way, Damage::Head, &["-v", "--remote-hash", "off"]);
        assert!(
            rerun.stdout.contains("checked by read back"),
            "{way:?}: -v does not say the partial was read back\n{rerun}"
        );
    }
}
