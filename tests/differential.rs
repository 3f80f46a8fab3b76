//! ferry against rsync on the same trees: random source trees (files of many
//! sizes, empty files, directories, symlinks, modes with setuid and sticky
//! bits, nanosecond mtimes, names with spaces and unicode), random
//! destination states (missing, a changed copy with extra entries and type
//! changes), random option sets drawn from what ferry accepts. rsync runs
//! with `-e ssh` against the test sshd (push, pull) or locally; ferry runs
//! the same command line. The trees left behind and the exit codes must be
//! equal.
//!
//! Bounded in CI (a fixed seed, 45 cases); a long run (docs/RSYNC.md has
//! the ones that pass), and one case of it again, its trees kept:
//!
//! ```sh
//! FERRY_DIFF_CASES=400 FERRY_DIFF_SEED=1 cargo test --release --test differential
//! FERRY_DIFF_CASES=400 FERRY_DIFF_SEED=1 FERRY_DIFF_ONLY=155 cargo test --release --test differential
//! ```
//!
//! Where ferry is deliberately different (docs/RSYNC.md), the harness asks
//! rsync for the equivalent: ferry's `--delete` is rsync's `--delete-after`
//! (ferry deletes after the transfers), ferry's `--append` is rsync's
//! `--append-verify` (ferry checks the head it appends to), and times over SFTP are compared in
//! whole seconds (SFTP v3 carries no more).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// Cases in one CI run, split over the three directions.
const CI_CASES: u64 = 45;
const CI_SEED: u64 = 20261206;

/// A small deterministic generator (xorshift64*): no rand crate needed,
/// and a seed reproduces a case exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Local,
    Push,
    Pull,
}

const NAMES: &[&str] = &[
    "a",
    "b.txt",
    "c.tmp",
    "data.bin",
    "with space",
    "ünï",
    "日本",
    "x~",
    "-dash",
    "core",
    "notes.o",
    "keep",
    "z",
];

const FILE_MODES: &[u32] = &[
    0o644, 0o644, 0o600, 0o755, 0o700, 0o640, 0o444, 0o4755, 0o2755, 0o1644, 0o666, 0o664,
];
const DIR_MODES: &[u32] = &[0o755, 0o755, 0o700, 0o775, 0o2775, 0o1777, 0o750, 0o711];

/// A plausible mtime: seconds in 2001-2020, and nanoseconds (sometimes 0).
fn random_time(rng: &mut Rng) -> (i64, i64) {
    let secs = 978_307_200 + rng.below(630_000_000) as i64;
    let nanos = if rng.chance(20) {
        0
    } else {
        rng.below(1_000_000_000) as i64
    };
    (secs, nanos)
}

fn set_times(path: &Path, (secs, nanos): (i64, i64)) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as libc::c_long,
    };
    let times = [t, t];
    // SAFETY: c is NUL-terminated and times has the two entries utimensat reads.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn random_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 0,
        1..=6 => rng.below(3000) as usize,
        7 | 8 => rng.below(70_000) as usize,
        _ => 200_000 + rng.below(400_000) as usize,
    }
}

/// Writes a random tree under `root` (which must not exist).
fn make_source(root: &Path, rng: &mut Rng) {
    fs::create_dir(root).unwrap();
    fill_dir(root, rng, 0);
    set_mode(root, 0o755);
    // An old time, as every other: rsync compares times in whole seconds,
    // and a root touched in the second of the run would look unchanged.
    set_times(root, random_time(rng));
}

/// Rules a per-directory filter file may hold (`-F`, `: .rsync-filter`).
const RULES: &[&str] = &[
    "P keep*",
    "- *.o",
    "+ *.txt",
    "- with space",
    "P z",
    "- /a",
    "-p core",
];

fn write_rules(dir: &Path, rng: &mut Rng) {
    // An old copy may have made the name a directory: leave that as it is.
    if fs::symlink_metadata(dir.join(".rsync-filter")).is_ok_and(|m| !m.is_file()) {
        return;
    }
    let lines: Vec<&str> = (0..1 + rng.below(3)).map(|_| *rng.pick(RULES)).collect();
    fs::write(dir.join(".rsync-filter"), lines.join("\n") + "\n").unwrap();
    set_times(&dir.join(".rsync-filter"), random_time(rng));
}

fn fill_dir(dir: &Path, rng: &mut Rng, depth: u32) {
    if rng.chance(15) {
        write_rules(dir, rng);
    }
    let entries = 1 + rng.below(if depth == 0 { 8 } else { 5 });
    let mut dirs = Vec::new();
    for _ in 0..entries {
        let name = *rng.pick(NAMES);
        let path = dir.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match rng.below(10) {
            0..=5 => make_file(&path, rng),
            6 | 7 if depth < 3 => {
                fs::create_dir(&path).unwrap();
                fill_dir(&path, rng, depth + 1);
                dirs.push(path);
            }
            6 | 7 => make_file(&path, rng),
            8 => {
                fs::create_dir(&path).unwrap();
                dirs.push(path);
            }
            _ => make_symlink(&path, rng),
        }
    }
    // Modes and times last: filling a directory changes its mtime, and a
    // read-only mode would stop the filling.
    for d in dirs {
        set_mode(&d, *rng.pick(DIR_MODES));
        set_times(&d, random_time(rng));
    }
}

fn make_file(path: &Path, rng: &mut Rng) {
    let size = random_size(rng);
    fs::write(path, random_bytes(size, rng.next())).unwrap();
    set_mode(path, *rng.pick(FILE_MODES));
    set_times(path, random_time(rng));
}

fn make_symlink(path: &Path, rng: &mut Rng) {
    let targets = [
        "a",
        "../b.txt",
        "missing",
        "/etc/hostname",
        "with space",
        "日本/z",
    ];
    std::os::unix::fs::symlink(rng.pick(&targets), path).unwrap();
    set_times(path, random_time(rng));
}

/// Makes `dst` a changed copy of `src`: some files rewritten (some at the
/// same size and time, which the quick check cannot see), modes and times
/// changed, entries added, removed, or replaced by another kind.
/// What an old copy may differ in.
#[derive(Clone, Copy)]
struct Changes {
    /// A file where the source has a directory, and the other way round.
    types: bool,
    /// Contents rewritten at the same size and time, which only -c sees.
    hidden: bool,
}

fn make_old_copy(src: &Path, dst: &Path, rng: &mut Rng, allowed: Changes) {
    copy_tree(src, dst);
    let mut paths = walk(dst);
    paths.reverse(); // children before parents
    for path in paths {
        let meta = fs::symlink_metadata(&path).unwrap();
        let parent_time = fs::symlink_metadata(path.parent().unwrap()).unwrap();
        // An old filter file gets other rules (change 8 of its directory),
        // never random bytes: rsync's receiver reads the old one while it
        // walks and stops at a rule it cannot parse (docs/RSYNC.md).
        let rules_file = path.file_name().is_some_and(|n| n == ".rsync-filter");
        let change = match rng.below(14) {
            0 | 1 if rules_file => 14,
            4 | 5 if !allowed.types => 14,
            0 if !allowed.hidden => 14,
            change => change,
        };
        match change {
            0 if meta.is_file() => {
                let len = meta.len() as usize;
                let keep = (meta.mtime(), meta.mtime_nsec());
                fs::write(&path, random_bytes(len, rng.next())).unwrap();
                set_times(&path, keep);
            }
            1 if meta.is_file() => make_file(&path, rng),
            2 if !meta.file_type().is_symlink() => {
                let mode = if meta.is_dir() {
                    *rng.pick(DIR_MODES)
                } else {
                    *rng.pick(FILE_MODES)
                };
                set_mode(&path, mode);
            }
            3 if !meta.file_type().is_symlink() => set_times(&path, random_time(rng)),
            4 if meta.is_file() => {
                fs::remove_file(&path).unwrap();
                fs::create_dir(&path).unwrap();
                if rng.chance(50) {
                    fs::write(path.join("inner"), b"old").unwrap();
                }
            }
            5 if meta.is_dir() => {
                fs::remove_dir_all(&path).unwrap();
                fs::write(&path, b"was a directory").unwrap();
            }
            6 if !meta.is_dir() => {
                fs::remove_file(&path).unwrap();
            }
            8 if meta.is_dir() => write_rules(&path, rng),
            7 if meta.is_dir() => {
                let name = format!("extra{}", rng.below(100));
                fs::write(path.join(&name), b"extra").unwrap();
                if rng.chance(30) {
                    fs::create_dir_all(path.join("extra-dir/deeper")).unwrap();
                }
            }
            _ => continue,
        }
        // Keep the parent's time where a change would otherwise leave it
        // "now": an old copy, not one made a second ago.
        let parent = path.parent().unwrap();
        if parent.exists() && parent != dst.parent().unwrap() {
            set_times(parent, (parent_time.mtime(), parent_time.mtime_nsec()));
        }
    }
}

/// One entry as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap {
    kind: char,
    mode: u32,
    size: u64,
    content: Option<blake3::Hash>,
    mtime: (i64, i64),
    target: Option<PathBuf>,
}

/// The tree under `root` (itself included as ""), by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    if fs::symlink_metadata(root).is_err() {
        return out;
    }
    for path in std::iter::once(root.to_path_buf()).chain(walk(root)) {
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            'l'
        } else if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            'f'
        } else {
            '?'
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(
            rel,
            Snap {
                kind,
                mode: meta.mode() & 0o7777,
                size: if kind == 'd' { 0 } else { meta.len() },
                content: (kind == 'f').then(|| blake3::hash(&fs::read(&path).unwrap())),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                target: ft.is_symlink().then(|| fs::read_link(&path).unwrap()),
            },
        );
    }
    out
}

/// How a case compares times: exactly, in whole seconds (a side of the
/// copy is SFTP), or not at all (neither tool was asked to keep them; then
/// only whether an entry kept its old time or got a new one).
#[derive(Debug, Clone, Copy)]
struct TimePolicy {
    exact: bool,
    /// Whether the destination directory's own time is compared: not with
    /// a backup directory inside it, which rsync may make after it set
    /// that time (ferry sets directory times last: docs/RSYNC.md).
    root: bool,
}

/// Where `a` (rsync's tree) and `b` (ferry's) differ.
fn differences(
    a: &BTreeMap<String, Snap>,
    b: &BTreeMap<String, Snap>,
    before: &BTreeMap<String, Snap>,
    times: TimePolicy,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, x) in a {
        let Some(y) = b.get(path) else {
            out.push(format!("{path:?}: only in rsync's tree ({})", x.kind));
            continue;
        };
        if x.kind != y.kind {
            out.push(format!("{path:?}: kind {} vs {}", x.kind, y.kind));
            continue;
        }
        if x.kind != 'l' && x.mode != y.mode {
            out.push(format!("{path:?}: mode {:o} vs {:o}", x.mode, y.mode));
        }
        if x.size != y.size || x.content != y.content {
            out.push(format!(
                "{path:?}: content ({} vs {} bytes)",
                x.size, y.size
            ));
        }
        if x.target != y.target {
            out.push(format!(
                "{path:?}: link target {:?} vs {:?}",
                x.target, y.target
            ));
        }
        if let Some(d) = time_difference(path, x, y, before.get(path), times) {
            out.push(d);
        }
    }
    for (path, y) in b {
        if !a.contains_key(path) {
            out.push(format!("{path:?}: only in ferry's tree ({})", y.kind));
        }
    }
    out
}

fn time_difference(
    path: &str,
    x: &Snap,
    y: &Snap,
    old: Option<&Snap>,
    times: TimePolicy,
) -> Option<String> {
    if path == "dest" && !times.root {
        return None;
    }
    // An entry both tools left alone keeps its old time in both trees; one
    // both rewrote has "now" in each, a different now. What must agree is
    // whether the old time survived, and otherwise the time itself.
    let kept = |s: &Snap| old.is_some_and(|o| o.kind == s.kind && o.mtime == s.mtime);
    let same = match times.exact {
        true => x.mtime == y.mtime,
        false => x.mtime.0 == y.mtime.0,
    };
    let both_now = !kept(x) && !kept(y) && !copied_time(x) && !copied_time(y);
    if same || both_now {
        return None;
    }
    Some(format!(
        "{path:?}: mtime {}.{:09} vs {}.{:09}",
        x.mtime.0, x.mtime.1, y.mtime.0, y.mtime.1
    ))
}

/// Whether an entry's time is a copied one (the trees' times are old dates)
/// rather than the time of the run.
fn copied_time(s: &Snap) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.mtime.0 < now - 3600
}

/// The option sets a case draws from: each atom is one or more arguments
/// that both tools take with the same meaning.
const BASES: &[&[&str]] = &[
    &["-a"],
    &["-r"],
    &["-rt"],
    &["-rlp"],
    &["-rltp"],
    &["-rl"],
    &["-a"],
];
const EXTRAS: &[&[&str]] = &[
    &["--delete"],
    &["--delete"],
    &["-c"],
    &["-W"],
    &["--no-whole-file"],
    &["--inplace"],
    &["--exclude=*.tmp"],
    &["--exclude=with space/"],
    &["--include=*/", "--include=*.txt", "--exclude=*"],
    &["--delete-excluded", "--exclude=*.o"],
    &["-f", "- core"],
    &["-u"],
    &["--existing"],
    &["--ignore-existing"],
    &["--size-only"],
    &["-I"],
    &["--max-size=100k"],
    &["--min-size=1k"],
    &["--modify-window=1"],
    &["--no-perms"],
    &["--no-times"],
    &["--no-links"],
    &["--no-recursive", "-d"],
    &["-O"],
    &["-J"],
    &["--force"],
    &["--chmod=D755,F644"],
    &["--chmod=u+w,go-w,Fa-x"],
    &["-E"],
    &["--remove-source-files"],
    &["--mkpath"],
    &["-L"],
    &["-k"],
    &["--copy-unsafe-links"],
    &["--safe-links"],
    &["-K"],
    &["--munge-links"],
    &["-m"],
    &["-F", "--delete"],
    &["-FF", "--delete"],
    &["--filter=: .rsync-filter"],
    &["-R"],
    &["--twice"],
    &["--append"],
    &["--append-verify"],
    &["--del"],
    &["--delete-before"],
    &["--delete-during"],
    &["--delete-delay", "-F"],
    &["-C"],
    &["-s"],
    &["--old-args"],
    &["-4"],
    &["-b"],
    &["-b", "--suffix=.old"],
    &["--backup-dir=.bk"],
    &["--partial-dir=.pd"],
    &["--delay-updates"],
    // A temp dir outside both trees (the bench's own): with one inside the
    // destination rsync's incremental recursion sets a directory's time
    // before its last temp file passes through it, ferry sets it last.
    &["-T", TEMP_DIR],
];

/// Stands for the bench's scratch directory in an option.
const TEMP_DIR: &str = "@scratch";

/// One drawn case.
#[derive(Debug, Clone)]
struct Case {
    number: u64,
    side: Side,
    options: Vec<String>,
    /// The source named with a trailing slash (its contents) or without
    /// (itself, inside the destination).
    contents: bool,
    old_copy: bool,
}

fn draw(number: u64, rng: &mut Rng) -> Case {
    let side = match number % 3 {
        0 => Side::Local,
        1 => Side::Push,
        _ => Side::Pull,
    };
    let mut options: Vec<String> = rng.pick(BASES).iter().map(|s| s.to_string()).collect();
    for _ in 0..rng.below(3) {
        let extra = rng.pick(EXTRAS);
        if !options.iter().any(|o| o == extra[0]) {
            options.extend(extra.iter().map(|s| s.to_string()));
        }
    }
    Case {
        number,
        side,
        options,
        contents: rng.chance(75),
        old_copy: rng.chance(70),
    }
}

/// rsync's equivalent of ferry's options (see the module comment).
fn rsync_options(case: &Case) -> Vec<String> {
    let mut options: Vec<String> = case
        .options
        .iter()
        .map(|o| match o.as_str() {
            "--delete" | "--del" | "--delete-before" | "--delete-during" | "--delete-delay" => {
                "--delete-after".to_string()
            }
            // ferry's --append checks the head it appends to (docs/RSYNC.md):
            // what rsync does when asked to verify.
            "--append" => "--append-verify".to_string(),
            other => other.to_string(),
        })
        .collect();
    // rsync backs a backup directory inside the destination up into itself
    // when --delete meets it; ferry leaves it (docs/RSYNC.md).
    let deletes = case.options.iter().any(|o| o.starts_with("--delete"));
    if deletes && case.options.iter().any(|o| o == "--backup-dir=.bk") {
        options.push("--filter=P /.bk/".into());
    }
    // ferry compares times to the nanosecond where both sides have them
    // (rsync: --modify-window=-1), which only a local copy has. rsync's -u
    // reads a negative window its own way, so -u cases keep its default.
    let has = |o: &str| case.options.iter().any(|x| x.starts_with(o));
    if case.side == Side::Local && !has("--modify-window") && !has("-u") {
        options.push("--modify-window=-1".into());
    }
    options
}

struct Bench {
    sshd: Sshd,
    rsh: String,
    /// `-T`'s directory for both tools (they run one after the other).
    scratch: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        require_rsync();
        let sshd = Sshd::start();
        let rsh = format!("ssh -F {}", sshd.ssh_config().display());
        let scratch = tempfile::tempdir().unwrap();
        Bench { sshd, rsh, scratch }
    }

    /// The arguments for SRC and DEST on `side`.
    /// The source and destination arguments: `--twice` (the harness's
    /// own atom) names the source twice, `-R` anchors it with `/./` so that
    /// both tools' trees have the same paths.
    fn places(&self, case: &Case, src: &Path, dest: &Path) -> Vec<String> {
        let relative = case.options.iter().any(|o| o == "-R");
        let shown = match relative {
            true => format!("{}/./src", src.parent().unwrap().display()),
            false => src.display().to_string(),
        };
        let src = format!("{shown}{}", if case.contents { "/" } else { "" });
        let dest = format!("{}/", dest.display());
        let (src, dest) = match case.side {
            Side::Local => (src, dest),
            Side::Push => (src, format!("{HOST_ALIAS}:{dest}")),
            Side::Pull => (format!("{HOST_ALIAS}:{src}"), dest),
        };
        let twice = case.options.iter().any(|o| o == "--twice");
        let mut places = vec![src.clone()];
        if twice {
            places.push(src);
        }
        places.push(dest);
        places
    }

    /// The options as the tools take them (without the harness's own).
    fn options(&self, options: Vec<String>) -> Vec<String> {
        let scratch = self.scratch.path().display().to_string();
        options
            .into_iter()
            .filter(|o| o != "--twice")
            .map(|o| if o == TEMP_DIR { scratch.clone() } else { o })
            .collect()
    }

    fn rsync(&self, case: &Case, src: &Path, dest: &Path) -> Output {
        let mut cmd = Command::new("rsync");
        cmd.env("HOME", self.sshd.home());
        if case.side != Side::Local {
            cmd.arg("-e").arg(&self.rsh);
        }
        cmd.args(self.options(rsync_options(case)));
        cmd.args(self.places(case, src, dest));
        run_with_deadline(&mut cmd, Duration::from_secs(60))
    }

    fn ferry(&self, case: &Case, src: &Path, dest: &Path) -> Output {
        let mut cmd = self.sshd.ferry();
        cmd.args(self.options(case.options.clone()));
        cmd.args(self.places(case, src, dest));
        cmd.run(Duration::from_secs(60))
    }

    /// Runs one case in `work`; returns what differs. Each tool gets its
    /// own copy of the source (`--remove-source-files` changes it) and of
    /// the old destination: `work/rsync/{src,dest}`, `work/ferry/{src,dest}`.
    fn run(&self, case: &Case, seed: u64, work: &Path) -> Vec<String> {
        let mut rng = Rng::new(seed ^ case.number.wrapping_mul(0x1000_0000_01B3));
        let (by_rsync, by_ferry) = (work.join("rsync"), work.join("ferry"));
        fs::create_dir(&by_rsync).unwrap();
        let src = by_rsync.join("src");
        make_source(&src, &mut rng);
        if case.old_copy {
            // Where ferry is deliberately different (docs/RSYNC.md): rsync's
            // --ignore-existing meets a file where the source has a
            // directory with errors for everything inside (and sets the
            // directory's time on the file), ferry leaves both alone; and
            // rsync's --remove-source-files removes a source whose copy
            // differs unseen by the quick check, ferry keeps it (exit 23).
            let has = |o: &str| case.options.iter().any(|x| x == o);
            let allowed = Changes {
                types: !has("--ignore-existing"),
                hidden: !has("--remove-source-files"),
            };
            make_old_copy(&src, &by_rsync.join("dest"), &mut rng, allowed);
        }
        copy_tree(&by_rsync, &by_ferry);
        copy_tree(&by_rsync, &work.join("before"));
        let before = snapshot(&work.join("before"));
        let run = |tool: &Path| match tool == by_rsync {
            true => self.rsync(case, &tool.join("src"), &tool.join("dest")),
            false => self.ferry(case, &tool.join("src"), &tool.join("dest")),
        };
        let (r, f) = (run(&by_rsync), run(&by_ferry));
        let mut found = Vec::new();
        if r.code != f.code {
            found.push(format!(
                "exit code {} (rsync) vs {} (ferry)",
                r.code, f.code
            ));
        }
        let times = TimePolicy {
            exact: case.side == Side::Local,
            root: !case.options.iter().any(|o| o == "--backup-dir=.bk"),
        };
        found.extend(differences(
            &snapshot(&by_rsync),
            &snapshot(&by_ferry),
            &before,
            times,
        ));
        if !found.is_empty() {
            found.push(format!("rsync: {r}"));
            found.push(format!("ferry: {f}"));
        }
        found
    }
}

/// `cp -a from to`: modes, nanosecond times and links kept.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status();
    assert!(status.unwrap().success(), "cp -a {}", from.display());
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn ferry_leaves_the_tree_rsync_leaves() {
    let bench = Bench::new();
    let cases = env_number("FERRY_DIFF_CASES", CI_CASES);
    let seed = env_number("FERRY_DIFF_SEED", CI_SEED);
    let only = std::env::var("FERRY_DIFF_ONLY")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let mut report = String::new();
    let mut failed = 0;
    for number in 0..cases {
        if only.is_some_and(|n| n != number) {
            continue;
        }
        let mut rng = Rng::new(seed.wrapping_add(number));
        let case = draw(number, &mut rng);
        let work = tempfile::Builder::new()
            .prefix("ferry-diff-")
            .tempdir()
            .unwrap();
        let found = bench.run(&case, seed, work.path());
        if found.is_empty() {
            continue;
        }
        failed += 1;
        let _ = writeln!(
            report,
            "\n=== case {number} (FERRY_DIFF_SEED={seed} FERRY_DIFF_ONLY={number}): {:?} {} {}old copy\n{}",
            case.side,
            case.options.join(" "),
            if case.old_copy { "" } else { "no " },
            found.join("\n")
        );
        // Keep the trees of a failed case for a look.
        let kept: PathBuf = work.keep();
        let _ = writeln!(report, "(trees kept in {})", kept.display());
    }
    assert!(
        failed == 0,
        "{failed} of {cases} cases differ from rsync:{report}"
    );
}

#[test]
fn the_harness_sees_a_difference() {
    // A harness that cannot fail proves nothing: a mode, a time and a byte
    // changed by hand must each be found.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut rng = Rng::new(1);
    make_source(&a, &mut rng);
    let status = Command::new("cp").arg("-a").arg(&a).arg(&b).status();
    assert!(status.unwrap().success());
    let exact = TimePolicy {
        exact: true,
        root: true,
    };
    let before = snapshot(&a);
    assert!(differences(&snapshot(&a), &snapshot(&b), &before, exact).is_empty());
    let file = walk(&b)
        .into_iter()
        .find(|p| fs::symlink_metadata(p).unwrap().is_file() && file_len(p) > 0)
        .expect("a non-empty file");
    let meta = fs::metadata(&file).unwrap();
    set_mode(&file, (meta.mode() & 0o7777) ^ 0o010);
    set_times(
        &file,
        (meta.mtime(), (meta.mtime_nsec() + 1) % 1_000_000_000),
    );
    overwrite_at(&file, 0, &[fs::read(&file).unwrap()[0] ^ 1]);
    set_times(
        &file,
        (meta.mtime(), (meta.mtime_nsec() + 1) % 1_000_000_000),
    );
    let found = differences(&snapshot(&a), &snapshot(&b), &before, exact);
    assert_eq!(found.len(), 3, "{found:?}");
}
