//! Interrupted transfers and resumption. A CutProxy between ferry and sshd
//! cuts every connection after a set number of bytes; the rerun (no cut)
//! must finish byte-identical and, for a clean partial, send only what is
//! missing (plus the verification window for pulls).
mod common;

use common::*;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

const SIZE: usize = 48 * MIB as usize;
/// Push: cut after ~20 MiB client→server.
const PUSH_CUT: u64 = 20 * MIB;
/// Pull: cut after 30 MiB server→client. Later than the push cut so that
/// "missing + 16 MiB verification window" stays clearly below 48 - 4 MiB.
const PULL_CUT: u64 = 30 * MIB;
/// Verification window the rerun may re-read in full.
const WINDOW: u64 = 16 * MIB;
const SLACK: u64 = 2 * MIB;
/// The first run's partial must hold at least this much for the byte
/// bounds of the rerun to prove anything.
const MIN_PARTIAL: u64 = 8 * MIB;
const NAME: &str = "big.bin";
const SRC_MTIME: u64 = 1_500_000_000;
const CHANGED_MTIME: u64 = 1_600_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Push,
    Pull,
}

/// State after a transfer that was cut by the proxy.
struct Cut {
    sshd: Sshd,
    proxy: CutProxy,
    cfg: PathBuf,
    way: Way,
    /// The source file (local for push, remote for pull).
    src: PathBuf,
    /// The destination directory (remote for push, local for pull).
    dest_dir: PathBuf,
    partial: PathBuf,
    partial_len: u64,
}

impl Cut {
    fn dest(&self) -> PathBuf {
        self.dest_dir.join(NAME)
    }
    fn meta(&self) -> PathBuf {
        meta_path(&self.dest_dir, NAME)
    }

    fn ferry_args(&self) -> (String, String) {
        match self.way {
            Way::Push => (
                self.src.display().to_string(),
                self.sshd.spec(&self.dest_dir),
            ),
            Way::Pull => (
                self.sshd.spec(&self.src),
                self.dest_dir.display().to_string(),
            ),
        }
    }

    /// Rerun without a cut; asserts exit 0, identical result, no leftovers.
    /// Returns (up, down) bytes of the rerun.
    fn rerun(&self) -> (u64, u64, Output) {
        self.rerun_with(&[])
    }

    /// [`Cut::rerun`] with more options.
    fn rerun_with(&self, options: &[&str]) -> (u64, u64, Output) {
        self.proxy.set_cut(None);
        self.proxy.reset_counts();
        let (s, d) = self.ferry_args();
        let out = self
            .sshd
            .ferry_with_config(&self.cfg)
            .arg("-P")
            .args(options)
            .arg(s)
            .arg(d)
            .run_default();
        out.assert_ok();
        self.proxy.wait_idle(Duration::from_secs(10));
        eprintln!(
            "{:?} rerun: up {} down {} (partial was {})",
            self.way,
            self.proxy.up(),
            self.proxy.down(),
            self.partial_len
        );
        assert_files_identical(&self.src, &self.dest());
        assert_no_partials(&self.dest_dir);
        (self.proxy.up(), self.proxy.down(), out)
    }
}

/// Transfer a 48 MiB file and have the proxy cut it; `old` is placed at the
/// destination beforehand (an older version that must survive the cut).
fn interrupted(way: Way, old: Option<&[u8]>, seed: u64) -> Cut {
    let sshd = Sshd::start();
    let (src, dest_dir, cut) = match way {
        Way::Push => (
            sshd.local().join(NAME),
            sshd.remote(),
            (Direction::Up, PUSH_CUT),
        ),
        Way::Pull => (
            sshd.remote().join(NAME),
            sshd.local(),
            (Direction::Down, PULL_CUT),
        ),
    };
    write_file(&src, &random_bytes(SIZE, seed));
    set_mtime(&src, SRC_MTIME);
    if let Some(old) = old {
        write_file(&dest_dir.join(NAME), old);
    }
    let proxy = CutProxy::start(sshd.port(), Some(cut));
    let cfg = sshd.config_for_proxy(&proxy);
    let partial = partial_path(&dest_dir, NAME);
    let mut c = Cut {
        sshd,
        proxy,
        cfg,
        way,
        src,
        dest_dir,
        partial,
        partial_len: 0,
    };
    let (s, d) = c.ferry_args();
    let out = c
        .sshd
        .ferry_with_config(&c.cfg)
        .args(["-P", "--retries", "0"])
        .arg(s)
        .arg(d)
        .run_default();
    assert!(
        c.proxy.tripped(),
        "the proxy never cut the connection (up {}, down {})\n{out}",
        c.proxy.up(),
        c.proxy.down()
    );
    out.assert_code(10);
    c.proxy.wait_idle(Duration::from_secs(10));
    // sftp-server may still be writing what it received before the cut.
    c.partial_len = wait_stable_len(&c.partial, Duration::from_secs(10));
    eprintln!(
        "{way:?} cut: up {} down {}, partial {} bytes, meta sidecar {}",
        c.proxy.up(),
        c.proxy.down(),
        c.partial_len,
        if c.meta().exists() {
            "present"
        } else {
            "absent"
        }
    );

    match old {
        None => assert!(
            !c.dest().exists(),
            "final file {} exists after an interrupted transfer",
            c.dest().display()
        ),
        Some(old) => assert!(
            fs::read(c.dest()).unwrap() == old,
            "the old version of {} was not left intact by the interrupted transfer",
            c.dest().display()
        ),
    }
    assert!(
        c.partial.is_file(),
        "no partial file {} after the cut; dest dir holds {:?}\n{out}",
        c.partial.display(),
        list_tree(&c.dest_dir)
    );
    assert!(
        c.partial_len < SIZE as u64,
        "partial is {} bytes, not smaller than the {SIZE}-byte file",
        c.partial_len
    );
    assert!(
        c.partial_len >= MIN_PARTIAL,
        "partial holds only {} bytes although the proxy forwarded {} MiB",
        c.partial_len,
        cut.1 / MIB
    );
    c
}

fn garbage() -> Vec<u8> {
    random_bytes(4096, 0xBAD)
}

// ----- push ------------------------------------------------------------------

#[test]
fn push_resume_sends_only_missing() {
    let c = interrupted(Way::Push, None, 1);
    let (up, _down, out) = c.rerun();
    let bound = (SIZE as u64 - c.partial_len) + SLACK;
    assert!(
        up <= bound,
        "push rerun sent {up} bytes up; partial was {} bytes, so at most {bound} expected\n{out}",
        c.partial_len
    );
}

#[test]
fn push_resume_keeps_old_version_until_done() {
    let old = random_bytes(10 * MIB as usize, 99);
    let c = interrupted(Way::Push, Some(&old), 2);
    let (up, _down, out) = c.rerun();
    let bound = (SIZE as u64 - c.partial_len) + SLACK;
    assert!(
        up <= bound,
        "push rerun sent {up} bytes up; partial was {} bytes, so at most {bound} expected\n{out}",
        c.partial_len
    );
}

#[test]
fn push_resume_repairs_corrupt_partial_tail() {
    let c = interrupted(Way::Push, None, 3);
    // 4 KiB of garbage 1 MiB before the partial's end (inside the window).
    overwrite_at(&c.partial, c.partial_len - MIB, &garbage());
    c.rerun();
}

#[test]
fn push_resume_without_meta_repairs_corrupt_partial_head() {
    let c = interrupted(Way::Push, None, 4);
    let _ = fs::remove_file(c.meta());
    overwrite_at(&c.partial, 0, &garbage());
    c.rerun();
}

/// With no remote hashing nothing checks the whole file after a resume, so
/// the sidecar's word is not taken: a partial whose head went bad while its
/// sidecar still describes the source is read back, compared whole and
/// repaired, and `-v` says so.
#[test]
fn push_resume_without_remote_hashing_repairs_a_bad_head_despite_the_sidecar() {
    let c = interrupted(Way::Push, None, 6);
    resume_with_a_bad_head_despite_the_sidecar(&c);
}

fn resume_with_a_bad_head_despite_the_sidecar(c: &Cut) {
    assert!(c.meta().exists(), "no sidecar after the cut");
    overwrite_at(&c.partial, 0, &garbage());
    let (_, _, out) = c.rerun_with(&["--remote-hash", "off", "-v"]);
    assert!(
        out.stdout.contains(&format!("{NAME}: resumed after "))
            && out.stdout.contains("checked by read back"),
        "-v does not say how the resume was checked\n{out}"
    );
}

/// With the shell's tools the whole-file hashes are compared after the
/// resume, and `-v` names the tier.
#[test]
fn push_resume_says_how_it_was_checked() {
    let c = interrupted(Way::Push, None, 7);
    let (_, _, out) = c.rerun_with(&["--remote-hash", "shell", "-v"]);
    assert!(out.stdout.contains("checked by shell"), "{out}");
}

#[test]
fn push_resume_after_source_changed() {
    let c = interrupted(Way::Push, None, 5);
    overwrite_at(&c.src, 0, &garbage());
    set_mtime(&c.src, CHANGED_MTIME);
    c.rerun();
}

// ----- pull ------------------------------------------------------------------

fn assert_pull_rerun_bounds(c: &Cut, down: u64, out: &Output) {
    let missing = SIZE as u64 - c.partial_len;
    let bound = missing + WINDOW + SLACK;
    assert!(
        down <= bound,
        "pull rerun received {down} bytes; partial was {} bytes ({missing} missing), \
         so at most {bound} expected\n{out}",
        c.partial_len
    );
    assert!(
        down < SIZE as u64 - 4 * MIB,
        "pull rerun received {down} bytes: that is (nearly) a full resend of {SIZE}\n{out}"
    );
}

#[test]
fn pull_resume_receives_only_missing() {
    let c = interrupted(Way::Pull, None, 11);
    let (_up, down, out) = c.rerun();
    assert_pull_rerun_bounds(&c, down, &out);
}

#[test]
fn pull_resume_keeps_old_version_until_done() {
    let old = random_bytes(10 * MIB as usize, 98);
    let c = interrupted(Way::Pull, Some(&old), 12);
    let (_up, down, out) = c.rerun();
    assert_pull_rerun_bounds(&c, down, &out);
}

#[test]
fn pull_resume_repairs_corrupt_partial_tail() {
    let c = interrupted(Way::Pull, None, 13);
    overwrite_at(&c.partial, c.partial_len - MIB, &garbage());
    c.rerun();
}

#[test]
fn pull_resume_without_meta_repairs_corrupt_partial_head() {
    let c = interrupted(Way::Pull, None, 14);
    let _ = fs::remove_file(c.meta());
    overwrite_at(&c.partial, 0, &garbage());
    c.rerun();
}

/// As [`push_resume_without_remote_hashing_repairs_a_bad_head_despite_the_sidecar`],
/// pulling: the source is what is read to compare, which costs what
/// sending the partial's bytes again would.
#[test]
fn pull_resume_without_remote_hashing_repairs_a_bad_head_despite_the_sidecar() {
    let c = interrupted(Way::Pull, None, 16);
    resume_with_a_bad_head_despite_the_sidecar(&c);
}

#[test]
fn pull_resume_after_source_changed() {
    let c = interrupted(Way::Pull, None, 15);
    overwrite_at(&c.src, 0, &garbage());
    set_mtime(&c.src, CHANGED_MTIME);
    c.rerun();
}

// ----- "sends only what is missing or bad" after a full verification --------
//
// With the sidecar gone or the source changed, the whole partial is verified;
// a single bad 4 KiB region must then cost about one verification block, not
// a resend of everything after it. Pushes are measured on the up direction
// (verification reads come down); pulls must read the partial's range once
// for verification, so they are allowed partial_len + missing + slack.

/// Allowance for the bad block(s) and protocol overhead.
const BAD_SLACK: u64 = 4 * MIB;

fn assert_only_missing_or_bad(c: &Cut, up: u64, down: u64, out: &Output) {
    let missing = SIZE as u64 - c.partial_len;
    match c.way {
        Way::Push => {
            let bound = missing + BAD_SLACK;
            assert!(
                up <= bound,
                "push rerun sent {up} bytes up; {missing} were missing and one 4 KiB \
                 region was bad, so at most {bound} expected (a resend from the bad \
                 region on is not 'only what is missing or bad')\n{out}"
            );
        }
        Way::Pull => {
            let bound = c.partial_len + missing + BAD_SLACK;
            assert!(
                down <= bound,
                "pull rerun received {down} bytes; verifying the {}-byte partial plus \
                 {missing} missing bytes and one bad 4 KiB region allow at most {bound}\n{out}",
                c.partial_len
            );
        }
    }
}

#[test]
fn push_resume_without_meta_resends_only_bad_head() {
    let c = interrupted(Way::Push, None, 21);
    let _ = fs::remove_file(c.meta());
    overwrite_at(&c.partial, 0, &garbage());
    let (up, down, out) = c.rerun();
    assert_only_missing_or_bad(&c, up, down, &out);
}

#[test]
fn push_resume_after_source_changed_resends_only_changed_block() {
    let c = interrupted(Way::Push, None, 22);
    overwrite_at(&c.src, 0, &garbage());
    set_mtime(&c.src, CHANGED_MTIME);
    let (up, down, out) = c.rerun();
    assert_only_missing_or_bad(&c, up, down, &out);
}

#[test]
fn pull_resume_without_meta_resends_only_bad_head() {
    let c = interrupted(Way::Pull, None, 23);
    let _ = fs::remove_file(c.meta());
    overwrite_at(&c.partial, 0, &garbage());
    let (up, down, out) = c.rerun();
    assert_only_missing_or_bad(&c, up, down, &out);
}

#[test]
fn pull_resume_after_source_changed_resends_only_changed_block() {
    let c = interrupted(Way::Pull, None, 24);
    overwrite_at(&c.src, 0, &garbage());
    set_mtime(&c.src, CHANGED_MTIME);
    let (up, down, out) = c.rerun();
    assert_only_missing_or_bad(&c, up, down, &out);
}
