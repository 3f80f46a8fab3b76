//! Several SFTP sessions on one connection (`--streams`): a large file's
//! reads and writes spread over all of them arrive byte-identical, push and
//! pull, beside a tree of small files spread over the sessions; a copy cut
//! while several sessions wrote its partial resumes, after verifying, to an
//! identical file and sends little more than what was missing; a server
//! that allows one session (`MaxSessions 1`) leaves the run with that one,
//! said under `-v`, and the copy still arrives; a server 30 ms away gets
//! several sessions on its own, and a near one a second for a large file;
//! a large file across a far link gets more SSH connections, and one of
//! them lost mid-copy is resumed; many small files pushed to a far server
//! with the helper go over SFTP beside the helper's full stream.
mod common;

use common::*;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

const BIG: usize = 64 * MIB as usize;

/// A 64 MiB file and 120 small ones in three directories.
fn make_source(root: &Path) {
    write_file(&root.join("big.bin"), &random_bytes(BIG, 11));
    for dir in 0..3 {
        for n in 0..40 {
            let size = (n * 997 + dir * 31) % 9000;
            let data = random_bytes(size, (dir * 100 + n) as u64);
            write_file(&root.join(format!("d{dir}/f{n}")), &data);
        }
    }
}

#[test]
fn push_and_pull_spread_over_four_sessions_arrive_identical() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_source(&src);
    let remote = sshd.remote().join("copy");
    let push = sshd
        .ferry()
        .args(["-a", "--streams", "4", "-vvv"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&remote))
        .run_ok();
    assert_trees_identical_with(&src, &remote, Compare::ARCHIVE);
    // The sessions join as they open, the first at once: a copy this
    // short may end before the last has.
    push.assert_stderr_contains("spread over ");

    let back = sshd.local().join("back");
    let pull = sshd
        .ferry()
        .args(["-a", "--streams", "4", "-vvv"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&back)
        .run_ok();
    assert_trees_identical_with(&src, &back, Compare::ARCHIVE);
    pull.assert_stderr_contains("spread over ");
}

/// The first run writes the partial over four sessions and is cut; the
/// rerun (over four sessions again, or one) verifies what the sidecar's
/// window leaves in doubt and sends the rest.
fn cut_then_resume(way: Direction, rerun_streams: &str) {
    const SIZE: usize = 96 * MIB as usize;
    const CUT: u64 = 64 * MIB;
    // The sidecar's window (128 requests of 255 KiB over several
    // sessions), which writes over several sessions may have left with
    // holes, and the protocol's own bytes.
    const WINDOW: u64 = 32 * MIB;
    const SLACK: u64 = 3 * MIB;
    // Past this, the bound below is less than a resend of the whole file.
    const MIN_PARTIAL: u64 = WINDOW + 2 * SLACK;
    let sshd = Sshd::start();
    let (src, dest_dir) = match way {
        Direction::Up => (sshd.local().join("big.bin"), sshd.remote()),
        Direction::Down => (sshd.remote().join("big.bin"), sshd.local()),
    };
    write_file(&src, &random_bytes(SIZE, 5));
    let proxy = CutProxy::start(sshd.port(), Some((way, CUT)));
    let cfg = sshd.config_for_proxy(&proxy);
    let (from, to) = match way {
        Direction::Up => (src.display().to_string(), sshd.spec(&dest_dir)),
        Direction::Down => (sshd.spec(&src), dest_dir.display().to_string()),
    };
    let run = |streams: &str| {
        sshd.ferry_with_config(&cfg)
            .args(["-P", "--retries", "0", "--streams", streams])
            .arg(&from)
            .arg(&to)
            .run_default()
    };
    let first = run("4");
    assert!(proxy.tripped(), "the proxy never cut the copy\n{first}");
    first.assert_code(10);
    proxy.wait_idle(Duration::from_secs(10));
    let partial = partial_path(&dest_dir, "big.bin");
    let partial_len = wait_stable_len(&partial, Duration::from_secs(10));
    assert!(
        (MIN_PARTIAL..SIZE as u64).contains(&partial_len),
        "after the cut the partial holds {partial_len} bytes\n{first}"
    );
    proxy.set_cut(None);
    proxy.reset_counts();
    run(rerun_streams).assert_ok();
    proxy.wait_idle(Duration::from_secs(10));
    assert_files_identical(&src, &dest_dir.join("big.bin"));
    assert_no_partials(&dest_dir);
    let sent = proxy.counter(way);
    let bound = SIZE as u64 - partial_len + WINDOW + SLACK;
    assert!(
        sent <= bound,
        "the rerun moved {sent} bytes; the partial held {partial_len}, so at most {bound} \
         (a resume, not a resend)"
    );
}

#[test]
fn a_push_cut_while_four_sessions_wrote_resumes_to_an_identical_file() {
    cut_then_resume(Direction::Up, "4");
}

#[test]
fn a_push_cut_while_four_sessions_wrote_resumes_over_one() {
    cut_then_resume(Direction::Up, "1");
}

#[test]
fn a_pull_cut_while_four_sessions_read_resumes_to_an_identical_file() {
    cut_then_resume(Direction::Down, "4");
}

#[test]
fn a_server_that_allows_one_session_leaves_the_run_with_one() {
    let sshd = Sshd::start_with(SshdOptions {
        max_sessions: Some(1),
        ..Default::default()
    });
    let src = sshd.local().join("src");
    make_source(&src);
    let remote = sshd.remote().join("copy");
    let push = sshd
        .ferry()
        .args(["-a", "--streams", "4", "-v"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&remote))
        .run_ok();
    assert_trees_identical_with(&src, &remote, Compare::ARCHIVE);
    push.assert_stderr_contains("the server refused another SFTP session");
    push.assert_stderr_contains("1 SFTP session carries the data to");
    push.assert_stderr_contains("(4 wanted;");
}

/// Seven SFTP sessions and the shell tier's commands share OpenSSH's
/// `MaxSessions` (10): eight changed files hashed at once must not find
/// their commands refused (which would read as a lost connection), and
/// arrive identical by delta.
#[test]
fn seven_sessions_leave_room_for_the_shell_tiers_commands() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    for n in 0..8u64 {
        let data = random_bytes(6 * MIB as usize, 100 + n);
        write_file(&src.join(format!("f{n}")), &data);
        let mut old = data.clone();
        old[3 * MIB as usize..3 * MIB as usize + 4096].fill(0);
        write_file(&dest.join(format!("f{n}")), &old);
        // Not up to date by size and time: compared, sent by delta.
        set_mtime(&dest.join(format!("f{n}")), 1_500_000_000);
    }
    let out = sshd
        .ferry()
        .args(["-a", "--streams", "7", "--remote-hash", "shell", "-v"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_trees_identical(&src, &dest);
    let said = out.all_output_lower();
    assert!(
        !said.contains("reconnecting") && !said.contains("refused"),
        "a command or session was refused\n{out}"
    );
}

/// A server on this machine gets one session, but a file of 256 MiB or
/// more asks for a second beside it (one session's chain through sshd and
/// one SFTP process leaves a core idle): the copy arrives identical both
/// ways, and a smaller file, or any with `--streams 1`, keeps the one
/// session.
#[test]
fn a_large_file_to_a_near_server_gets_a_second_session() {
    let sshd = Sshd::start();
    let small = sshd.local().join("small");
    make_source(&small);
    let push = sshd
        .ferry()
        .args(["-a", "-v"])
        .arg(format!("{}/", small.display()))
        .arg(sshd.spec(&sshd.remote().join("small")))
        .run_ok();
    assert_trees_identical_with(&small, &sshd.remote().join("small"), Compare::ARCHIVE);
    assert!(
        !push.all_output_lower().contains("sessions carry"),
        "a 64 MiB file opened more sessions to a near server\n{push}"
    );

    let large = sshd.local().join("large.bin");
    write_file(&large, &random_bytes(256 * MIB as usize, 77));
    let remote = sshd.remote().join("large.bin");
    let push = sshd
        .ferry()
        .args(["-a", "-v"])
        .arg(&large)
        .arg(sshd.spec(&remote))
        .run_ok();
    assert_files_identical(&large, &remote);
    push.assert_stderr_contains("2 SFTP sessions carry the data to");
    push.assert_stderr_contains("for a large file");

    let back = sshd.local().join("back.bin");
    let pull = sshd
        .ferry()
        .args(["-a", "-v"])
        .arg(sshd.spec(&remote))
        .arg(&back)
        .run_ok();
    assert_files_identical(&large, &back);
    pull.assert_stderr_contains("2 SFTP sessions carry the data to");

    // `--streams 1` is one session, however large the file.
    let alone = sshd.remote().join("alone.bin");
    let one = sshd
        .ferry()
        .args(["-a", "-v", "--streams", "1"])
        .arg(&large)
        .arg(sshd.spec(&alone))
        .run_ok();
    assert_files_identical(&large, &alone);
    assert!(
        !one.all_output_lower().contains("sessions carry"),
        "--streams 1 opened more sessions\n{one}"
    );
}

/// `ferry -a -v` with `more` from `from` to `to` through the config `cfg`.
fn copy_verbose(sshd: &Sshd, cfg: &Path, more: &[&str], from: &OsStr, to: &OsStr) -> Output {
    let mut ferry = sshd.ferry_with_config(cfg);
    ferry.args(["-a", "-v"]).args(more).arg(from).arg(to);
    ferry.run_ok()
}

/// A far large file's copies are held to 40 MiB/s (`--bwlimit`, which the
/// further connections count too): 256 MiB then take over 6 s, and the
/// further connection, dialled once the file starts, joins well before the
/// end even on a loaded machine (unlimited, a loopback copy once finished
/// in 2.2 s, before it joined).
const FAR_RATE: [&str; 2] = ["--bwlimit", "40M"];

/// A 256 MiB file (random bytes from `seed`) pushed with `-a -v` through a
/// [`DelayProxy`] 30 ms away (cutting as `cut` says) at [`FAR_RATE`]; it
/// arrived identical and one more SSH connection joined with two sessions.
struct FarPush {
    sshd: Sshd,
    proxy: DelayProxy,
    cfg: std::path::PathBuf,
    large: std::path::PathBuf,
    spec: String,
    push: Output,
}

impl FarPush {
    fn run(seed: u64, cut: Option<(u64, u64)>) -> FarPush {
        let sshd = Sshd::start();
        let large = sshd.local().join("large.bin");
        write_file(&large, &random_bytes(256 * MIB as usize, seed));
        let proxy = DelayProxy::start_cutting(sshd.port(), Duration::from_millis(15), cut);
        let cfg = sshd.config_for_delay(&proxy);
        let remote = sshd.remote().join("large.bin");
        let spec = sshd.spec(&remote);
        let push = copy_verbose(&sshd, &cfg, &FAR_RATE, large.as_os_str(), spec.as_ref());
        assert_files_identical(&large, &remote);
        push.assert_stderr_contains("1 more SSH connection carries 2 more SFTP sessions");
        FarPush {
            sshd,
            proxy,
            cfg,
            large,
            spec,
            push,
        }
    }
}

/// A large file across a far link (30 ms: a delaying proxy) gets one more
/// SSH connection with two sessions of its own, beside the first's: one
/// TCP connection carries at most its window per round trip. The file
/// arrives identical both ways, the connections are counted at the proxy,
/// and `--streams` (sessions the user chose) keeps one connection.
#[test]
fn a_large_file_across_a_far_link_gets_more_connections() {
    let far = FarPush::run(78, None);
    let (sshd, cfg, large) = (&far.sshd, &far.cfg, &far.large);
    let push = &far.push;
    assert_eq!(
        far.proxy.accepted(),
        2,
        "one more connection, no more\n{push}"
    );

    let back = sshd.local().join("back.bin");
    let pull = copy_verbose(sshd, cfg, &FAR_RATE, far.spec.as_ref(), back.as_os_str());
    assert_files_identical(large, &back);
    pull.assert_stderr_contains("1 more SSH connection carries 2 more SFTP sessions");
    assert_eq!(far.proxy.accepted(), 4, "the pull too\n{pull}");

    let chosen = sshd.remote().join("chosen.bin");
    let chosen_spec = sshd.spec(&chosen);
    let streams = ["--streams", "3", FAR_RATE[0], FAR_RATE[1]];
    let fixed = copy_verbose(sshd, cfg, &streams, large.as_os_str(), chosen_spec.as_ref());
    assert_files_identical(large, &chosen);
    let accepted = far.proxy.accepted();
    assert_eq!(accepted, 5, "--streams keeps one connection\n{fixed}");
}

/// The further connection lost in the middle of a large push (the proxy
/// ends it after 1 MiB went up through it): the run reconnects and
/// resumes as after any drop, and the file arrives identical.
#[test]
fn a_further_connection_lost_mid_copy_is_resumed() {
    let far = FarPush::run(79, Some((2, MIB)));
    far.push.assert_stderr_contains("reconnecting in");
    let push = &far.push;
    assert!(far.proxy.accepted() >= 3, "no reconnection\n{push}");
}

/// A server 30 ms away (a delaying proxy in front of sshd) is far: ferry
/// opens more SFTP sessions on its own (their channels beside the first
/// session's, then the round trip measured again), spreads the large file
/// and the small ones over them, all on the one TCP connection, and the
/// tree arrives identical both ways.
#[test]
fn a_far_server_gets_more_sessions_on_its_own() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_source(&src);
    let proxy = DelayProxy::start(sshd.port(), Duration::from_millis(15));
    let cfg = sshd.config_for_delay(&proxy);
    let remote = sshd.remote().join("copy");
    let push = sshd
        .ferry_with_config(&cfg)
        .args(["-a", "-vvv"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&remote))
        .run_ok();
    assert_trees_identical_with(&src, &remote, Compare::ARCHIVE);
    push.assert_stderr_contains("SFTP sessions carry the data to");
    push.assert_stderr_contains("spread over ");
    let said = push.all_output_lower();
    assert!(
        !said.contains("1 sftp session carries") && !said.contains("for a large file"),
        "a far server kept one session, or got a near one's second\n{push}"
    );
    assert_eq!(
        proxy.accepted(),
        1,
        "the sessions must share one connection"
    );

    let back = sshd.local().join("back");
    let pull = sshd
        .ferry_with_config(&cfg)
        .args(["-a", "-vvv"])
        .arg(format!("{}/", sshd.spec(&remote)))
        .arg(&back)
        .run_ok();
    assert_trees_identical_with(&src, &back, Compare::ARCHIVE);
    pull.assert_stderr_contains("SFTP sessions carry the data to");
    pull.assert_stderr_contains("spread over ");
}

/// Many small files (3,000, enough to outlast the helper's start) pushed
/// to a far server (30 ms) that runs the helper:
/// its stream carries about its channel's window a round trip, so the
/// files that would wait for room go over the SFTP sessions beside it
/// (said under `-vv`). The tree arrives identical; with one session
/// (`--streams 1`, not far) every file waits for the helper instead.
#[test]
fn small_files_to_a_far_helper_also_go_over_sftp() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    for n in 0..3000usize {
        let data = random_bytes(8000 + n % 5000, n as u64);
        write_file(&src.join(format!("d{}/f{n}", n % 20)), &data);
    }
    let proxy = DelayProxy::start(sshd.port(), Duration::from_millis(15));
    let cfg = sshd.config_for_delay(&proxy);
    let helper = ferry_bin();
    let push_to = |name: &str, streams: &str| {
        let remote = sshd.remote().join(name);
        let push = sshd
            .ferry_with_config(&cfg)
            .args(["-a", "-vv", "--streams", streams, "--remote-ferry"])
            .arg(&helper)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&remote))
            .run_ok();
        assert_trees_identical_with(&src, &remote, Compare::ARCHIVE);
        push.assert_stderr_contains(": helper\n");
        push
    };
    let far = push_to("far", "0");
    far.assert_stderr_contains("the helper's stream is full: small files go over SFTP beside it");
    let one = push_to("one", "1");
    assert!(
        !one.all_output_lower().contains("go over sftp beside it"),
        "one session is not far: the helper takes every file\n{one}"
    );
}
