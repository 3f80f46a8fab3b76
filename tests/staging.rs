//! Where old and new files go on their way: `-b`/`--backup`,
//! `--backup-dir`, `--suffix` (the replaced or deleted version is kept),
//! `--partial-dir` (an interrupted file waits there and resumes from there),
//! `-T`/`--temp-dir` (new data is written there first) and
//! `--delay-updates` (nothing takes its place before every file is done).
//! Local, push and pull, each checked on disk.
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

const OLD_TIME: u64 = 1_400_000_000;
const NEW_TIME: u64 = 1_500_000_000;

/// A source with `a`, `d/b` and a link `l -> a`, and a destination with
/// older versions of all three plus `extra`, `d/gone` and an old backup
/// `x~` that is no file's backup.
fn make_pair(src: &Path, dest: &Path) {
    for (path, body) in [("a", "new a\n"), ("d/b", "new b\n")] {
        write_file(&src.join(path), body.as_bytes());
        set_mtime(&src.join(path), NEW_TIME);
    }
    symlink("a", src.join("l")).unwrap();
    for (path, body) in [
        ("a", "old a\n"),
        ("d/b", "old b\n"),
        ("extra", "extra\n"),
        ("d/gone", "gone\n"),
        ("x~", "kept\n"),
    ] {
        write_file(&dest.join(path), body.as_bytes());
        set_mtime(&dest.join(path), OLD_TIME);
    }
    symlink("elsewhere", dest.join("l")).unwrap();
}

#[track_caller]
fn assert_body(path: &Path, body: &str) {
    let found = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(found, body, "{}", path.display());
}

#[track_caller]
fn assert_absent(path: &Path) {
    assert!(
        fs::symlink_metadata(path).is_err(),
        "{} should not exist",
        path.display()
    );
}

/// What every run leaves: the new versions in place.
#[track_caller]
fn assert_new(dest: &Path) {
    assert_body(&dest.join("a"), "new a\n");
    assert_body(&dest.join("d/b"), "new b\n");
    assert_eq!(fs::read_link(dest.join("l")).unwrap(), Path::new("a"));
}

fn contents(dir: &Path) -> String {
    format!("{}/", dir.display())
}

/// A local pair of trees ([`make_pair`]) in a new temporary directory.
struct Local {
    dir: tempfile::TempDir,
    src: PathBuf,
    dest: PathBuf,
}

impl Local {
    fn new() -> Local {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        make_pair(&src, &dest);
        Local { dir, src, dest }
    }

    /// `ferry OPTIONS src/ dest/`.
    fn run<S: AsRef<std::ffi::OsStr>>(&self, options: &[S]) -> Output {
        FerryCmd::bare(self.dir.path())
            .args(options)
            .arg(contents(&self.src))
            .arg(contents(&self.dest))
            .run(Duration::from_secs(60))
    }
}

#[test]
fn backup_beside_keeps_replaced_and_deleted_files_locally() {
    let l = Local::new();
    l.run(&["-a", "-b", "--delete"]).assert_ok();
    let dest = &l.dest;
    assert_new(dest);
    assert_body(&dest.join("a~"), "old a\n");
    assert_body(&dest.join("d/b~"), "old b\n");
    assert_eq!(
        fs::read_link(dest.join("l~")).unwrap(),
        Path::new("elsewhere")
    );
    // Deleted: renamed to its backup, as rsync does.
    assert_absent(&dest.join("extra"));
    assert_body(&dest.join("extra~"), "extra\n");
    assert_body(&dest.join("d/gone~"), "gone\n");
    // rsync's implied `P *~`: --delete spares backups.
    assert_body(&dest.join("x~"), "kept\n");
    // The backup keeps the old file's time.
    assert_eq!(mtime_secs(&dest.join("a~")), OLD_TIME as i64);
}

#[test]
fn backup_suffix_names_the_backup_locally() {
    let l = Local::new();
    l.run(&["-a", "-b", "--suffix=.old"]).assert_ok();
    let dest = &l.dest;
    assert_new(dest);
    assert_body(&dest.join("a.old"), "old a\n");
    assert_body(&dest.join("d/b.old"), "old b\n");
    assert_absent(&dest.join("a~"));
    // No --delete: nothing else changed.
    assert_body(&dest.join("extra"), "extra\n");
    assert_absent(&dest.join("extra.old"));
}

#[test]
fn backup_dir_relative_to_the_destination_on_push() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    make_pair(&src, &dest);
    sshd.ferry()
        .args(["-a", "--backup-dir=../bk", "--delete"])
        .arg(contents(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_new(&dest);
    let bk = sshd.remote().join("bk");
    // No suffix with a backup directory; paths as in the destination.
    assert_body(&bk.join("a"), "old a\n");
    assert_body(&bk.join("d/b"), "old b\n");
    assert_body(&bk.join("extra"), "extra\n");
    assert_body(&bk.join("d/gone"), "gone\n");
    assert_eq!(fs::read_link(bk.join("l")).unwrap(), Path::new("elsewhere"));
    // Only `P *~` with backups beside: in a directory, x~ is deleted (kept).
    assert_absent(&dest.join("x~"));
    assert_body(&bk.join("x~"), "kept\n");
    assert_absent(&dest.join("extra"));
}

#[test]
fn backup_with_a_suffix_on_pull() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    let dest = sshd.local().join("dest");
    make_pair(&src, &dest);
    sshd.ferry()
        .args(["-a", "-b", "--suffix=.bak", "--delete"])
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(contents(&dest))
        .run_ok();
    assert_new(&dest);
    assert_body(&dest.join("a.bak"), "old a\n");
    assert_body(&dest.join("d/b.bak"), "old b\n");
    assert_body(&dest.join("extra.bak"), "extra\n");
    assert_absent(&dest.join("extra"));
    // `P *.bak` protects backups only: x~ is deleted and kept as x~.bak.
    assert_body(&dest.join("x~.bak"), "kept\n");
}

/// A symlink inside the backup directory that leads out of it is replaced
/// by a directory, as rsync replaces it: no backup is written through it.
#[test]
fn backups_never_leave_the_backup_dir_on_push() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    make_pair(&src, &dest);
    let outside = sshd.remote().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::create_dir_all(dest.join("bk")).unwrap();
    symlink(&outside, dest.join("bk/d")).unwrap();
    sshd.ferry()
        .args(["-a", "--backup-dir=bk"])
        .arg(contents(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_new(&dest);
    assert_dir_empty(&outside);
    assert!(fs::symlink_metadata(dest.join("bk/d")).unwrap().is_dir());
    assert_body(&dest.join("bk/d/b"), "old b\n");
    assert_body(&dest.join("bk/a"), "old a\n");
}

/// A backup directory on another file system (a tmpfs): renames cannot
/// reach it, so backups are copies, links made again.
#[test]
fn backup_dir_on_another_file_system_locally() {
    let l = Local::new();
    let shm = tempfile::tempdir_in(other_fs()).unwrap();
    let bk = shm.path().join("bk");
    let backup_dir = format!("--backup-dir={}", bk.display());
    l.run(&["-a", "--delete", &backup_dir]).assert_ok();
    let dest = &l.dest;
    assert_new(dest);
    assert_body(&bk.join("a"), "old a\n");
    assert_body(&bk.join("extra"), "extra\n");
    assert_eq!(fs::read_link(bk.join("l")).unwrap(), Path::new("elsewhere"));
    assert_eq!(mtime_secs(&bk.join("a")), OLD_TIME as i64);
    assert_absent(&dest.join("extra"));
}

/// /dev/shm: a tmpfs on Linux, another file system than the temp dir's.
fn other_fs() -> PathBuf {
    PathBuf::from("/dev/shm")
}

#[test]
fn temp_dir_on_another_file_system_locally() {
    let l = Local::new();
    let (src, dest) = (&l.src, &l.dest);
    write_file(&src.join("big"), &random_bytes(3 * MIB as usize, 7));
    write_file(&dest.join("big"), &random_bytes(3 * MIB as usize, 8));
    // Written within one clock tick of the source, it could have its size
    // and time, and be found up to date.
    set_mtime(&dest.join("big"), OLD_TIME);
    let shm = tempfile::tempdir_in(other_fs()).unwrap();
    l.run(&["-a".as_ref(), "-T".as_ref(), shm.path().as_os_str()])
        .assert_ok();
    assert_new(dest);
    assert_files_identical(&src.join("big"), &dest.join("big"));
    assert_dir_empty(shm.path());
    assert_no_partials(dest);
}

#[test]
fn temp_dir_must_exist() {
    let l = Local::new();
    let dest = &l.dest;
    let out = l.run(&["-a", "-T", "nowhere"]);
    out.assert_code(1)
        .assert_stderr_contains("temp-dir does not exist");
    assert_body(&dest.join("a"), "old a\n");
}

#[test]
fn delay_updates_leaves_no_staging_behind_on_pull() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    let dest = sshd.local().join("dest");
    make_pair(&src, &dest);
    sshd.ferry()
        .args(["-a", "--delay-updates", "--delete"])
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(contents(&dest))
        .run_ok();
    assert_new(&dest);
    assert_absent(&dest.join(".~tmp~"));
    assert_absent(&dest.join("d/.~tmp~"));
    assert_absent(&dest.join("extra"));
}

// ----- interrupted pushes ----------------------------------------------------

const BIG: usize = 24 * MIB as usize;
const CUT: u64 = 10 * MIB;
const SLACK: u64 = 3 * MIB;

/// A push of `src/` to the remote `dest/` through a proxy that cuts it
/// after [`CUT`] bytes up; the run ends with exit 10.
struct CutPush {
    sshd: Sshd,
    proxy: CutProxy,
    cfg: PathBuf,
    src: PathBuf,
    dest: PathBuf,
}

impl CutPush {
    fn new() -> CutPush {
        let sshd = Sshd::start();
        let proxy = CutProxy::start(sshd.port(), Some((Direction::Up, CUT)));
        let cfg = sshd.config_for_proxy(&proxy);
        let src = sshd.local().join("src");
        let dest = sshd.remote().join("dest");
        fs::create_dir_all(&dest).unwrap();
        write_file(&src.join("z.bin"), &random_bytes(BIG, 3));
        set_mtime(&src.join("z.bin"), NEW_TIME);
        CutPush {
            sshd,
            proxy,
            cfg,
            src,
            dest,
        }
    }

    fn push(&self, options: &[&str]) -> Output {
        self.sshd
            .ferry_with_config(&self.cfg)
            .args(["-a", "--retries", "0"])
            .args(options)
            .arg(contents(&self.src))
            .arg(self.sshd.spec(&self.dest))
            .run(Duration::from_secs(120))
    }

    /// The first, cut run.
    fn cut(&self, options: &[&str]) {
        let out = self.push(options);
        assert!(self.proxy.tripped(), "the proxy never cut\n{out}");
        out.assert_code(10);
        self.proxy.wait_idle(Duration::from_secs(10));
    }

    /// The rerun without a cut; the bytes it sent up.
    fn rerun(&self, options: &[&str]) -> u64 {
        self.proxy.set_cut(None);
        self.proxy.reset_counts();
        self.push(options).assert_ok();
        self.proxy.wait_idle(Duration::from_secs(10));
        assert_files_identical(&self.src.join("z.bin"), &self.dest.join("z.bin"));
        self.proxy.up()
    }
}

#[test]
fn partial_dir_keeps_and_resumes_the_partial_on_push() {
    let c = CutPush::new();
    write_file(&c.dest.join("z.bin"), b"old version");
    c.cut(&["--partial-dir=.pd"]);
    let partial = c.dest.join(".pd/z.bin");
    let kept = wait_stable_len(&partial, Duration::from_secs(10));
    assert!(
        kept >= 2 * MIB && kept < BIG as u64,
        "partial in .pd holds {kept} bytes; dest holds {:?}",
        list_tree(&c.dest)
    );
    // Not beside the file: the sidecar is in .pd with it.
    assert_absent(&partial_path(&c.dest, "z.bin"));
    assert!(c.dest.join(".pd").join(".z.bin.ferry-meta").is_file());
    assert_body(&c.dest.join("z.bin"), "old version");
    let up = c.rerun(&["--partial-dir=.pd"]);
    assert!(
        up < BIG as u64 - kept + SLACK,
        "the rerun sent {up} bytes although {kept} of {BIG} were kept"
    );
    // rsync removes the partial directory once it is empty.
    assert_absent(&c.dest.join(".pd"));
}

#[test]
fn temp_dir_holds_the_partial_on_push() {
    let c = CutPush::new();
    let temp = c.sshd.remote().join("tmp");
    fs::create_dir(&temp).unwrap();
    // Relative to the destination, as rsync's receiver reads it.
    c.cut(&["-T", "../tmp"]);
    let found = find_partials(&temp);
    assert!(
        !found.is_empty(),
        "no partial in the temp dir: {:?}; dest: {:?}",
        list_tree(&temp),
        list_tree(&c.dest)
    );
    assert_no_partials(&c.dest);
    assert_absent(&c.dest.join("z.bin"));
    let kept = found.iter().map(|p| file_len(p)).max().unwrap_or(0);
    let up = c.rerun(&["-T", "../tmp"]);
    assert!(
        up < BIG as u64 - kept + SLACK,
        "the rerun sent {up} bytes although {kept} of {BIG} were kept"
    );
    assert_dir_empty(&temp);
}

/// Files finished before the cut wait in `.~tmp~`; their old versions
/// stay in place until every file is done.
#[test]
fn delay_updates_keeps_old_files_until_the_end_on_push() {
    let c = CutPush::new();
    for name in ["a", "b", "c"] {
        write_file(&c.src.join(name), format!("new {name}\n").as_bytes());
        write_file(&c.dest.join(name), format!("old {name}\n").as_bytes());
        set_mtime(&c.dest.join(name), OLD_TIME);
    }
    c.cut(&["--delay-updates"]);
    for name in ["a", "b", "c"] {
        assert_body(&c.dest.join(name), &format!("old {name}\n"));
    }
    let waiting = c.dest.join(".~tmp~");
    assert!(
        waiting.is_dir(),
        "no .~tmp~ after the cut: {:?}",
        list_tree(&c.dest)
    );
    c.rerun(&["--delay-updates"]);
    for name in ["a", "b", "c"] {
        assert_body(&c.dest.join(name), &format!("new {name}\n"));
    }
    assert_absent(&waiting);
    assert_no_partials(&c.dest);
}
