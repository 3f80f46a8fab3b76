//! SIGINT and SIGTERM: ferry stops promptly, exits 20 (rsync's code for an
//! interrupted run), keeps the partial, leaves any old destination intact,
//! and the rerun resumes it. SIGKILL, which ferry cannot see coming, leaves
//! the same state behind. A stalling proxy holds ferry mid-transfer so the
//! signal always lands while data is in flight.
mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

const SIZE: usize = 32 * MIB as usize;
const STALL_AT: u64 = 12 * MIB;
const NAME: &str = "sig.bin";

#[derive(Clone, Copy)]
enum Way {
    Push,
    Pull,
}

fn interrupt_and_resume(way: Way, signal: libc::c_int) {
    let sshd = Sshd::start();
    let (src, dest_dir, dir) = match way {
        Way::Push => (sshd.local().join(NAME), sshd.remote(), Direction::Up),
        Way::Pull => (sshd.remote().join(NAME), sshd.local(), Direction::Down),
    };
    let data = random_bytes(SIZE, 20);
    write_file(&src, &data);
    let old = b"the previous version".to_vec();
    write_file(&dest_dir.join(NAME), &old);

    let proxy = CutProxy::start(sshd.port(), None);
    proxy.set_stall(Some((dir, STALL_AT)));
    let cfg = sshd.config_for_proxy(&proxy);
    let (from, to) = match way {
        Way::Push => (src.display().to_string(), sshd.spec(&dest_dir)),
        Way::Pull => (sshd.spec(&src), dest_dir.display().to_string()),
    };

    let mut signalled_at = None;
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&from)
        .arg(&to)
        .run_and(FERRY_TIMEOUT, |pid| {
            wait_until(Duration::from_secs(60), "ferry at the stall point", || {
                proxy.is_stalled(dir)
            });
            // Let requests pile up against the stall, then interrupt.
            std::thread::sleep(Duration::from_millis(200));
            signalled_at = Some(Instant::now());
            // SAFETY: plain kill(2) of the child we just spawned.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        });
    let stopped_after = signalled_at.expect("signal sent").elapsed();
    // A shell reports death by a signal as 128 + its number.
    out.assert_code(if signal == libc::SIGKILL {
        128 + signal
    } else {
        20
    });
    assert!(
        stopped_after < Duration::from_secs(5),
        "ferry took {stopped_after:?} to stop after the signal\n{out}"
    );
    if signal != libc::SIGKILL {
        // It says what it kept and what to do.
        out.assert_stderr_contains(
            "1 file was cut short; what reached the destination is kept: \
             run the same command again to resume",
        );
    }

    proxy.set_stall(None);
    proxy.wait_idle(Duration::from_secs(10));
    let partial = partial_path(&dest_dir, NAME);
    let partial_len = wait_stable_len(&partial, Duration::from_secs(10));
    assert!(
        partial_len > 0 && partial_len < SIZE as u64,
        "expected a partial shorter than the file, got {partial_len} bytes\n{out}"
    );
    assert_eq!(
        fs::read(dest_dir.join(NAME)).unwrap(),
        old,
        "the old destination changed before the new one was complete"
    );

    proxy.reset_counts();
    sshd.ferry_with_config(&cfg).arg(&from).arg(&to).run_ok();
    assert_files_identical(&src, &dest_dir.join(NAME));
    assert_no_partials(&dest_dir);
    let moved = match way {
        Way::Push => proxy.up(),
        Way::Pull => proxy.down(),
    };
    // The rerun moves what was missing, plus at most the verified window
    // (16 MiB) for a pull, never the whole file again.
    let missing = SIZE as u64 - partial_len;
    let allowed = missing + 16 * MIB + 2 * MIB;
    assert!(
        moved <= allowed && moved < SIZE as u64 + MIB,
        "rerun moved {moved} bytes; missing {missing}, allowed {allowed}"
    );
}

#[test]
fn sigint_during_push_keeps_partial_and_resumes() {
    interrupt_and_resume(Way::Push, libc::SIGINT);
}

#[test]
fn sigterm_during_pull_keeps_partial_and_resumes() {
    interrupt_and_resume(Way::Pull, libc::SIGTERM);
}

#[test]
fn sigkill_during_push_keeps_partial_and_resumes() {
    interrupt_and_resume(Way::Push, libc::SIGKILL);
}

#[test]
fn sigkill_during_pull_keeps_partial_and_resumes() {
    interrupt_and_resume(Way::Pull, libc::SIGKILL);
}
