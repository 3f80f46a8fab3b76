//! rsync's results in the cases where ferry used to leave another tree:
//! each test builds the same trees twice, runs rsync on one and ferry on
//! the other with the same options (locally, pushing and pulling through
//! the test sshd), and compares what is left: kinds, modes, sizes, content,
//! link targets, times, and the exit codes. Where ferry is deliberately
//! more careful (docs/RSYNC.md), the test says so and checks ferry's result
//! on its own.
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Push,
    Pull,
}

const SIDES: [Side; 3] = [Side::Local, Side::Push, Side::Pull];

/// How times are compared: not at all (neither tool was asked to keep
/// them), in seconds (SFTP v3 carries no more), or to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    Ignored,
    Seconds,
    Nanos,
}

impl Times {
    fn of(side: Side, options: &[&str]) -> Times {
        let short_t = |o: &&str| {
            !o.starts_with("--") && o.starts_with('-') && (o.contains('t') || o.contains('a'))
        };
        match (options.iter().any(short_t), side) {
            (false, _) => Times::Ignored,
            (true, Side::Local) => Times::Nanos,
            (true, _) => Times::Seconds,
        }
    }
}

/// One entry as compared: `path kind mode size mtime target content`.
fn listing(root: &Path, times: Times) -> Vec<String> {
    let mut out = Vec::new();
    if fs::symlink_metadata(root).is_err() {
        return out;
    }
    for path in std::iter::once(root.to_path_buf()).chain(walk(root)) {
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = match (ft.is_symlink(), ft.is_dir()) {
            (true, _) => 'l',
            (_, true) => 'd',
            _ => 'f',
        };
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let time = match times {
            Times::Nanos => format!("{}.{:09}", meta.mtime(), meta.mtime_nsec()),
            Times::Seconds => meta.mtime().to_string(),
            Times::Ignored => String::new(),
        };
        let mode = if kind == 'l' { 0 } else { meta.mode() & 0o7777 };
        let target = fs::read_link(&path).map(|t| t.display().to_string());
        let content = match kind {
            'f' => blake3::hash(&fs::read(&path).unwrap()).to_hex()[..12].to_string(),
            _ => String::new(),
        };
        let size = if kind == 'd' { 0 } else { meta.len() };
        // A link's own time is compared only where both tools set it.
        let time = if kind == 'l' { String::new() } else { time };
        out.push(format!(
            "{rel:?} {kind} {mode:o} {size} {time} {} {content}",
            target.unwrap_or_default()
        ));
    }
    out
}

/// The same scenario for both tools: `setup(root)` makes `root/src` and,
/// when the scenario has one, `root/dest`.
struct Trial<'a> {
    sshd: &'a Sshd,
    work: tempfile::TempDir,
}

impl<'a> Trial<'a> {
    fn new(sshd: &'a Sshd) -> Trial<'a> {
        let work = tempfile::Builder::new()
            .prefix("ferry-rsync-")
            .tempdir()
            .unwrap();
        Trial { sshd, work }
    }

    fn root(&self, tool: &str) -> PathBuf {
        self.work.path().join(tool)
    }

    /// The source and destination arguments on `side` (`src_arg` and
    /// `dest_arg` relative to the tool's root).
    fn places(&self, tool: &str, side: Side, src_arg: &str, dest_arg: &str) -> [String; 2] {
        let root = self.root(tool);
        let (src, dest) = (
            format!("{}/{src_arg}", root.display()),
            format!("{}/{dest_arg}", root.display()),
        );
        match side {
            Side::Local => [src, dest],
            Side::Push => [src, format!("{HOST_ALIAS}:{dest}")],
            Side::Pull => [format!("{HOST_ALIAS}:{src}"), dest],
        }
    }

    /// Runs both tools after `setup`, and asserts that the trees under
    /// `compare` (relative to each root) and the exit codes agree.
    #[track_caller]
    fn same_as_rsync(&self, line: Line, compare: &str, setup: impl Fn(&Path)) -> (Output, Output) {
        for tool in ["rsync", "ferry"] {
            fs::create_dir_all(self.root(tool)).unwrap();
            setup(&self.root(tool));
        }
        let by_rsync = self.run("rsync", &line);
        let by_ferry = self.run("ferry", &line);
        let (side, options) = (line.side, line.options);
        let times = Times::of(side, options);
        let (a, b) = (
            listing(&self.root("rsync").join(compare), times),
            listing(&self.root("ferry").join(compare), times),
        );
        assert_eq!(
            a, b,
            "{side:?} {options:?}: rsync's tree (left) and ferry's (right) differ\nrsync: {by_rsync}\nferry: {by_ferry}"
        );
        assert_eq!(
            by_rsync.code, by_ferry.code,
            "{side:?} {options:?}: exit codes\nrsync: {by_rsync}\nferry: {by_ferry}"
        );
        (by_rsync, by_ferry)
    }

    /// Runs `tool` (rsync through `ssh -F`, or ferry with the same config).
    fn run(&self, tool: &str, line: &Line) -> Output {
        let config = self.sshd.ssh_config();
        let mut cmd = match tool {
            "rsync" => {
                require_rsync();
                let mut cmd = Command::new("rsync");
                if line.side != Side::Local {
                    cmd.arg("-e").arg(format!("ssh -F {}", config.display()));
                }
                cmd
            }
            _ => {
                let mut cmd = Command::new(ferry_bin());
                cmd.arg("--ssh-config").arg(&config).env("NO_COLOR", "1");
                cmd
            }
        };
        cmd.env("HOME", self.sshd.home()).args(line.options);
        let [src, dest] = self.places(tool, line.side, line.places.0, line.places.1);
        cmd.args(std::iter::repeat_n(src, line.copies)).arg(dest);
        if let Some(mask) = line.umask {
            // SAFETY: umask(2) only, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        run_with_deadline(&mut cmd, FERRY_TIMEOUT)
    }
}

/// One command line for both tools.
struct Line<'l> {
    side: Side,
    options: &'l [&'l str],
    /// Source and destination, relative to each tool's root.
    places: (&'l str, &'l str),
    /// How many times the source is named.
    copies: usize,
    /// The umask both tools start with (None: the test's own).
    umask: Option<libc::mode_t>,
}

fn line<'l>(side: Side, options: &'l [&'l str], places: (&'l str, &'l str)) -> Line<'l> {
    Line {
        side,
        options,
        places,
        copies: 1,
        umask: None,
    }
}

fn make_dir(path: &Path, mode: u32, mtime: u64) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

fn make_file(path: &Path, data: &[u8], mode: u32, mtime: u64) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

/// Without -p a new file loses setuid, setgid and sticky bits and gets the
/// source's mode masked by the *receiving* side's umask (ferry runs with
/// umask 077 here; the server's is sshd's), new directories likewise.
#[test]
fn new_entries_get_the_receivers_umask_and_no_special_bits() {
    let sshd = Sshd::start();
    for side in SIDES {
        let trial = Trial::new(&sshd);
        let setup = |root: &Path| {
            make_dir(&root.join("src/sub"), 0o2775, 1_500_000_000);
            make_file(
                &root.join("src/sub/tool"),
                b"#!/bin/sh\n",
                0o4755,
                1_500_000_000,
            );
            make_file(&root.join("src/sticky"), b"t", 0o1666, 1_500_000_000);
            set_mtime(&root.join("src/sub"), 1_500_000_000);
            set_mtime(&root.join("src"), 1_500_000_000);
        };
        // Both tools with the same local umask: the receiver's counts.
        let run = Line {
            umask: Some(0o077),
            ..line(side, &["-rt"], ("src/", "dest"))
        };
        trial.same_as_rsync(run, "dest", setup);
        let tool = trial.root("ferry").join("dest/sub/tool");
        assert_eq!(fs::metadata(&tool).unwrap().mode() & 0o7000, 0, "{side:?}");
    }
}

/// `--delete` removing an entry changes its directory's time; rsync sets
/// the source's back afterwards (-t), and so must ferry.
#[test]
fn a_directory_keeps_the_source_time_after_delete() {
    let sshd = Sshd::start();
    for side in SIDES {
        Trial::new(&sshd).same_as_rsync(
            line(side, &["-rt", "--delete"], ("src/", "dest")),
            "dest",
            |root| {
                make_dir(&root.join("src/d"), 0o755, 1_400_000_000);
                make_file(&root.join("src/d/kept"), b"k", 0o644, 1_400_000_000);
                set_mtime(&root.join("src/d"), 1_400_000_000);
                set_mtime(&root.join("src"), 1_400_000_000);
                make_dir(&root.join("dest/d"), 0o755, 1_300_000_000);
                make_file(&root.join("dest/d/kept"), b"k", 0o644, 1_400_000_000);
                make_file(&root.join("dest/d/extra"), b"x", 0o644, 1_300_000_000);
                set_mtime(&root.join("dest/d"), 1_300_000_000);
            },
        );
    }
}

/// -c -t: equal content with another time gets the time, no copy.
#[test]
fn checksum_with_times_fixes_the_time_of_an_equal_file() {
    let sshd = Sshd::start();
    for side in SIDES {
        Trial::new(&sshd).same_as_rsync(line(side, &["-rtc"], ("src/", "dest")), "dest", |root| {
            make_dir(&root.join("src"), 0o755, 1_400_000_000);
            make_file(&root.join("src/same"), b"same bytes", 0o644, 1_400_000_000);
            set_mtime(&root.join("src"), 1_400_000_000);
            make_dir(&root.join("dest"), 0o755, 1_400_000_000);
            make_file(&root.join("dest/same"), b"same bytes", 0o644, 1_300_000_000);
        });
    }
}

/// A receiving side's per-directory filter file protects what it names from
/// `--delete` (rsync reads it on the receiver; its `--delete-after` is
/// ferry's order), and a file excluded on the sending side's rules stays.
#[test]
fn a_protect_rule_in_the_destinations_filter_file_keeps_files() {
    let sshd = Sshd::start();
    for side in SIDES {
        for options in [
            &["-r", "--delete-after", "-F"][..],
            &["-r", "--delete-after", "-FF"][..],
            &["-r", "--delete-after", "--filter=: .keep-rules"][..],
        ] {
            let rules = if options[2].contains("keep-rules") {
                ".keep-rules"
            } else {
                ".rsync-filter"
            };
            Trial::new(&sshd).same_as_rsync(
                line(side, options, ("src/", "dest")),
                "dest",
                |root| {
                    make_dir(&root.join("src/d"), 0o755, 1_400_000_000);
                    make_file(&root.join("src/d/new"), b"n", 0o644, 1_400_000_000);
                    make_dir(&root.join("dest/d"), 0o755, 1_400_000_000);
                    fs::write(root.join("dest/d").join(rules), "P keep*\n").unwrap();
                    fs::write(root.join("dest/d/keep.db"), "precious").unwrap();
                    fs::write(root.join("dest/d/gone"), "goes").unwrap();
                },
            );
        }
    }
}

/// The same source named several times, and a tree with a file inside it
/// named as well: planned once per destination path (the first wins), exit 0.
#[test]
fn a_source_named_twice_is_copied_once() {
    let sshd = Sshd::start();
    for side in SIDES {
        let trial = Trial::new(&sshd);
        let setup = |root: &Path| {
            make_dir(&root.join("src/d"), 0o755, 1_400_000_000);
            make_file(
                &root.join("src/d/f"),
                &random_bytes(300_000, 3),
                0o644,
                1_400_000_000,
            );
            set_mtime(&root.join("src/d"), 1_400_000_000);
            set_mtime(&root.join("src"), 1_400_000_000);
            make_dir(&root.join("dest"), 0o755, 1_400_000_000);
        };
        let run = Line {
            copies: 10,
            ..line(side, &["-rt"], ("src/", "dest/"))
        };
        let (_, ferry) = trial.same_as_rsync(run, "dest", setup);
        ferry.assert_ok();
    }
}

/// A directory named without -r is skipped with rsync's line, and nothing
/// is made: not the destination, not a lock beside it.
#[test]
fn a_directory_without_recursion_makes_nothing() {
    let sshd = Sshd::start();
    for side in SIDES {
        let (_, ferry) =
            Trial::new(&sshd).same_as_rsync(line(side, &["-t"], ("src", "dest")), "", |root| {
                make_dir(&root.join("src"), 0o755, 1_400_000_000);
                make_file(&root.join("src/f"), b"f", 0o644, 1_400_000_000);
                set_mtime(&root.join("src"), 1_400_000_000);
                set_mtime(root, 1_400_000_000);
            });
        // An info line, on stdout as rsync's (the remote side's too).
        assert!(
            ferry.stdout.contains("skipping directory src")
                && !ferry.stderr.contains("skipping directory"),
            "{side:?}: {ferry}"
        );
    }
}

/// The lock ferry keeps beside the destination must not leave the parent
/// directory's time changed: rsync leaves it as it was.
#[test]
fn the_lock_leaves_the_destinations_parent_as_it_was() {
    let sshd = Sshd::start();
    for side in SIDES {
        Trial::new(&sshd).same_as_rsync(
            line(side, &["-rt"], ("src/", "parent/dest")),
            "parent",
            |root| {
                make_dir(&root.join("src"), 0o755, 1_400_000_000);
                make_file(&root.join("src/f"), b"f", 0o644, 1_400_000_000);
                set_mtime(&root.join("src"), 1_400_000_000);
                make_dir(&root.join("parent/dest"), 0o755, 1_400_000_000);
                set_mtime(&root.join("parent"), 1_300_000_000);
            },
        );
    }
}

/// -x: a source directory on another file system arrives empty; -xx leaves
/// it out. /dev/shm (a tmpfs) stands in for a mount point, reached through
/// a symlink that -L follows, as rsync's -x looks at the followed directory.
#[test]
fn one_file_system_stops_at_a_mount_point() {
    let shm = Path::new("/dev/shm");
    let here = tempfile::tempdir().unwrap();
    assert_ne!(
        fs::metadata(shm).map(|m| m.dev()).ok(),
        Some(fs::metadata(here.path()).unwrap().dev()),
        "this test needs /dev/shm on a file system of its own (a tmpfs)"
    );
    let other = tempfile::Builder::new()
        .prefix("ferry-x-")
        .tempdir_in(shm)
        .unwrap();
    fs::create_dir(other.path().join("deep")).unwrap();
    fs::write(other.path().join("deep/far"), b"on another fs").unwrap();
    set_mtime(&other.path().join("deep"), 1_400_000_000);
    set_mtime(other.path(), 1_400_000_000);
    let sshd = Sshd::start();
    for side in SIDES {
        for x in ["-x", "-xx"] {
            let target = other.path().to_path_buf();
            let (_, ferry) = Trial::new(&sshd).same_as_rsync(
                line(side, &["-rL", x], ("src/", "dest")),
                "dest",
                |root| {
                    make_dir(&root.join("src/here"), 0o755, 1_400_000_000);
                    make_file(&root.join("src/here/f"), b"f", 0o644, 1_400_000_000);
                    std::os::unix::fs::symlink(&target, root.join("src/mnt")).unwrap();
                },
            );
            ferry.assert_ok();
        }
    }
}

/// A file rewritten within the second of the last copy, at the same size:
/// rsync's default compares whole seconds and keeps the old copy; ferry
/// compares at the best resolution both sides carry (nanoseconds between
/// local paths) and never skips a file whose time differs there
/// (docs/RSYNC.md: deliberately more careful).
#[test]
fn a_change_within_the_same_second_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let at = |nanos| std::time::UNIX_EPOCH + Duration::new(1_500_000_000, nanos);
    fs::write(&src, b"first").unwrap();
    fs::File::open(&src).unwrap().set_modified(at(100)).unwrap();
    FerryCmd::bare(dir.path())
        .arg("-t")
        .arg(&src)
        .arg(&dst)
        .run_ok();
    fs::write(&src, b"again").unwrap();
    fs::File::open(&src).unwrap().set_modified(at(200)).unwrap();
    FerryCmd::bare(dir.path())
        .arg("-t")
        .arg(&src)
        .arg(&dst)
        .run_ok();
    assert_eq!(fs::read(&dst).unwrap(), b"again");
    assert_eq!(fs::metadata(&dst).unwrap().mtime_nsec(), 200);
}

/// `--info=skip,backup` and the default `NONREG` lines say what rsync's
/// say, for the same tree and options.
#[test]
fn skip_backup_and_nonreg_lines_are_rsyncs() {
    let sshd = Sshd::start();
    let options = [
        &["-r", "--info=skip", "--ignore-existing"][..],
        &["-r", "--info=skip", "--existing"][..],
        &["-r", "--info=skip", "--max-size=3"][..],
        &["-r", "--info=skip", "--min-size=3"][..],
        &["-rt", "--info=skip", "-u"][..],
        &["-r", "--info=backup", "-b", "--delete"][..],
        &["-r", "--info=backup", "--backup-dir=bk", "--delete"][..],
    ];
    for options in options {
        let trial = Trial::new(&sshd);
        let (rsync, ferry) = trial.same_as_rsync(
            line(Side::Local, options, ("src/", "dest")),
            "dest",
            |root| {
                make_dir(&root.join("src/sub"), 0o755, 1_400_000_000);
                make_file(&root.join("src/a"), b"new a", 0o644, 1_400_000_000);
                make_file(&root.join("src/sub/b"), b"b", 0o644, 1_400_000_000);
                make_file(&root.join("src/new"), b"fresh", 0o644, 1_400_000_000);
                let fifo = std::ffi::CString::new(
                    root.join("src/fifo").into_os_string().into_encoded_bytes(),
                )
                .unwrap();
                // SAFETY: a NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
                set_mtime(&root.join("src/sub"), 1_400_000_000);
                set_mtime(&root.join("src"), 1_400_000_000);
                make_dir(&root.join("dest/sub"), 0o755, 1_400_000_000);
                make_file(&root.join("dest/a"), b"old a", 0o644, 1_500_000_000);
                make_file(&root.join("dest/sub/b"), b"b", 0o644, 1_300_000_000);
                make_file(&root.join("dest/gone"), b"x", 0o644, 1_300_000_000);
            },
        );
        let lines = |out: &Output| {
            let mut lines: Vec<String> = out
                .stdout
                .lines()
                .filter(|l| !l.contains("files sent") && !l.starts_with("(new) backup_dir"))
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(
            lines(&rsync),
            lines(&ferry),
            "{options:?}\nrsync: {rsync}\nferry: {ferry}"
        );
    }
}

/// rsync's command-line forms from scripts: `-e` bundled at the end of
/// short flags (`-avze "ssh ..."`) and options after the paths.
#[test]
fn bundled_rsh_and_options_after_the_paths_parse_as_rsyncs() {
    let sshd = Sshd::start();
    let rsh = format!("ssh -F {}", sshd.ssh_config().display());
    for (before, after) in [
        (vec!["-rtze", rsh.as_str()], vec!["--delete"]),
        (vec!["-rtzhe", rsh.as_str(), "--delete"], vec![]),
        (vec![], vec!["-rt", "--delete", "-e", rsh.as_str()]),
    ] {
        let trial = Trial::new(&sshd);
        let mut outputs = Vec::new();
        for tool in ["rsync", "ferry"] {
            let root = trial.root(tool);
            make_dir(&root.join("src/d"), 0o755, 1_400_000_000);
            make_file(&root.join("src/d/f"), b"new", 0o644, 1_400_000_000);
            set_mtime(&root.join("src/d"), 1_400_000_000);
            set_mtime(&root.join("src"), 1_400_000_000);
            make_dir(&root.join("dest"), 0o755, 1_300_000_000);
            make_file(&root.join("dest/extra"), b"old", 0o644, 1_300_000_000);
            let [src, dest] = trial.places(tool, Side::Push, "src/", "dest");
            let program = match tool {
                "rsync" => PathBuf::from("rsync"),
                _ => ferry_bin(),
            };
            let mut cmd = Command::new(program);
            cmd.env("HOME", sshd.home())
                .args(&before)
                .arg(src)
                .arg(dest)
                .args(&after);
            outputs.push(run_with_deadline(&mut cmd, FERRY_TIMEOUT));
        }
        let times = Times::of(Side::Push, &["-t"]);
        assert_eq!(
            listing(&trial.root("rsync").join("dest"), times),
            listing(&trial.root("ferry").join("dest"), times),
            "{before:?} {after:?}\nrsync: {}\nferry: {}",
            outputs[0],
            outputs[1]
        );
        outputs[1].assert_ok();
    }
}

/// `-s` with `--old-args`: rsync refuses the pair before touching
/// anything (exit 1), and so does ferry.
#[test]
fn secluded_and_old_args_together_are_refused_as_rsync_does() {
    let sshd = Sshd::start();
    for side in SIDES {
        let (_, ferry) = Trial::new(&sshd).same_as_rsync(
            line(side, &["-rt", "-s", "--old-args"], ("src/", "dest")),
            "",
            |root| {
                make_dir(&root.join("src"), 0o755, 1_400_000_000);
                make_file(&root.join("src/f"), b"f", 0o644, 1_400_000_000);
                set_mtime(&root.join("src"), 1_400_000_000);
                set_mtime(root, 1_400_000_000);
            },
        );
        assert_eq!(ferry.code, 1, "{ferry}");
    }
}
