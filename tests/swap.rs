//! Directories of a pull's destination swapped for symlinks to elsewhere
//! *while the run goes* (issue 15): what another local user who may write
//! in the destination could do to make ferry delete, chmod or write files
//! outside it. The run is slowed with `--bwlimit` and the swap made once
//! the file being written shows its partial; nothing outside the
//! destination may change (contents, modes, times), the affected entries
//! fail with a message naming the symlink (exit 23, rsync's code for a
//! partial transfer), and the rest of the destination is right.
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file being written while the swaps happen: four seconds at the rate.
const BIG: usize = 4 * MIB as usize;
const RATE_KIB: &str = "1024";

/// Every entry under `dir`, itself included: kind and mode, mtime to the
/// nanosecond, and contents (a symlink's target).
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, i64, i64, Vec<u8>)> {
    std::iter::once(dir.to_path_buf())
        .chain(walk(dir))
        .map(|path| {
            let meta = fs::symlink_metadata(&path).unwrap();
            let body = match meta.file_type() {
                t if t.is_file() => fs::read(&path).unwrap(),
                t if t.is_symlink() => fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
                _ => Vec::new(),
            };
            (path, meta.mode(), meta.mtime(), meta.mtime_nsec(), body)
        })
        .collect()
}

/// The directory `dir` of the destination is moved aside (inside the
/// destination) and a symlink to `to` takes its name, as an attacker
/// would do it: two renames, no gap where the name is missing for long.
fn swap_for_symlink(dir: &Path, to: &Path) {
    let aside = dir.with_extension("real");
    fs::rename(dir, &aside).unwrap();
    symlink(to, dir).unwrap();
}

/// Waits (at most a minute, or until ferry exits) for the partial of the
/// file being written to hold some bytes.
fn wait_for_partial(partial: &Path, pid: u32) {
    let what = format!("a partial at {}", partial.display());
    wait_until(Duration::from_secs(60), &what, || {
        if fs::metadata(partial).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let running = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(running, "ferry ended before its partial appeared");
        false
    });
}

/// A source and a destination in step (pulled once), and beside the
/// destination a directory `outside` with what a swap would expose: a
/// file named as the file being written, one named as the file whose mode
/// changes, and files named as those `--delete` removes.
struct Scene {
    sshd: Sshd,
    src: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let sshd = Sshd::start();
        let src = sshd.remote().join("src");
        let dest = sshd.local().join("dest");
        let outside = sshd.local().join("outside");
        write_file(&src.join("a_write/small"), b"small");
        write_file(&src.join("b_mode/f"), b"mode changes only");
        set_mode(&src.join("b_mode/f"), 0o644);
        write_file(&src.join("keep.txt"), &random_bytes(10_000, 1));
        sshd.ferry()
            .arg("-a")
            .arg(format!("{}/", sshd.spec(&src)))
            .arg(&dest)
            .run_ok();
        write_file(&dest.join("c_gone/old.txt"), b"extraneous");
        for (name, body) in [("w/big.bin", "big"), ("m/f", "mode"), ("g/old.txt", "old")] {
            write_file(&outside.join(name), body.as_bytes());
            set_mode(&outside.join(name), 0o644);
        }
        Scene {
            sshd,
            src,
            dest,
            outside,
        }
    }

    /// `ferry -a --delete` one file at a time, slowed, with `during` run
    /// once the big file's partial holds bytes.
    fn pull_swapping(&self, during: impl FnOnce()) -> Output {
        let partial = partial_path(&self.dest.join("a_write"), "big.bin");
        self.sshd
            .ferry()
            .args(["-a", "--delete", "--jobs", "1", "--bwlimit", RATE_KIB])
            .arg(format!("{}/", self.sshd.spec(&self.src)))
            .arg(&self.dest)
            .run_and(FERRY_TIMEOUT, |pid| {
                wait_for_partial(&partial, pid);
                during();
            })
    }
}

/// The three swaps in one run: the directory holding the file being
/// written, the one holding a file whose mode `-p` sets (after the big
/// file: one file at a time, in order), and one `--delete` would remove.
/// Every change there fails (so `--delete` deletes nothing, as after any
/// error); a file planned after them still arrives.
#[test]
fn swaps_during_a_pull_change_nothing_outside_the_destination() {
    let scene = Scene::new();
    let (src, dest, outside) = (&scene.src, &scene.dest, &scene.outside);
    write_file(&src.join("a_write/big.bin"), &random_bytes(BIG, 2));
    set_mode(&src.join("b_mode/f"), 0o600);
    write_file(&src.join("later.txt"), b"after the swaps");
    let before = snapshot(outside);

    let out = scene.pull_swapping(|| {
        swap_for_symlink(&dest.join("a_write"), &outside.join("w"));
        swap_for_symlink(&dest.join("b_mode"), &outside.join("m"));
        swap_for_symlink(&dest.join("c_gone"), &outside.join("g"));
    });

    assert_eq!(snapshot(outside), before, "outside changed\n{out}");
    out.assert_code(23);
    out.assert_stderr_contains("a_write is a symlink where a directory was");
    out.assert_stderr_contains("b_mode is a symlink where a directory was");
    assert_files_identical(&src.join("later.txt"), &dest.join("later.txt"));
    assert_files_identical(&src.join("keep.txt"), &dest.join("keep.txt"));
    for swapped in ["a_write", "b_mode", "c_gone"] {
        let meta = fs::symlink_metadata(dest.join(swapped)).unwrap();
        assert!(
            meta.is_symlink(),
            "{swapped} is no longer the symlink\n{out}"
        );
    }
    // What was moved aside inside the destination is as it was.
    assert_eq!(mode_of(&dest.join("b_mode.real/f")), 0o644);
    assert_eq!(
        fs::read(dest.join("c_gone.real/old.txt")).unwrap(),
        b"extraneous"
    );
}

/// A directory `--delete` removes, swapped while a file is written, in a
/// run where nothing else fails: the deletion is tried, through the
/// symlink's listing, and refused for every entry; the file arrives.
#[test]
fn a_directory_swapped_before_its_deletion_keeps_what_it_points_to() {
    let scene = Scene::new();
    let (src, dest, outside) = (&scene.src, &scene.dest, &scene.outside);
    write_file(&src.join("a_write/big.bin"), &random_bytes(BIG, 3));
    let before = snapshot(outside);

    let out = scene.pull_swapping(|| {
        swap_for_symlink(&dest.join("c_gone"), &outside.join("g"));
    });

    assert_eq!(snapshot(outside), before, "outside changed\n{out}");
    out.assert_code(23);
    out.assert_stderr_contains("c_gone is a symlink where a directory was");
    out.assert_stderr_contains("c_gone: a symlink stands here");
    assert_files_identical(&src.join("a_write/big.bin"), &dest.join("a_write/big.bin"));
    assert!(fs::symlink_metadata(dest.join("c_gone"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        fs::read(dest.join("c_gone.real/old.txt")).unwrap(),
        b"extraneous"
    );
}
