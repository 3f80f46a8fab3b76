//! What a person sees: on a terminal, an overall bar (bytes, rate, ETA,
//! files done of total) and a bar for each large file in flight; file names
//! with -v, rsync's itemized lines with -i, errors always, and a closing
//! summary. Scripts get silence on stdout unless they ask.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::lines::Lines;
use crate::engine::Stats;
use crate::error::FileError;
use crate::report::{
    printable, relative, FileStep, Item, ItemKind, Mention, Outcome, Phase, PromptGuard, Reporter,
    TimeChange, Verified,
};

/// How progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    /// No bars.
    Off,
    /// One overall line (`--info=progress2`, or `--progress` off a terminal,
    /// where it goes to stderr once a second).
    Overall,
    /// The overall bar plus one per large file in flight (a terminal's
    /// default).
    PerFile,
}

/// What the console shows, resolved from the flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Display {
    pub progress: ProgressMode,
    /// `-v`: notes (skipped entries) and the closing summary.
    pub verbose: bool,
    /// rsync's info lines that no `--info` word governs (`skipping
    /// directory`): all but `-q`.
    pub info: bool,
    /// rsync's `NONREG` and `SKIP` lines (`--info`).
    pub nonreg: bool,
    pub skip: bool,
    pub backup: bool,
}

impl Display {
    /// No bars and no lines but errors and warnings (`ferry demo`'s own
    /// runs, `--list-only`'s errors).
    pub(crate) fn silent() -> Display {
        Display {
            progress: ProgressMode::Off,
            verbose: false,
            info: false,
            nonreg: false,
            skip: false,
            backup: false,
        }
    }
}

/// Files below this size finish too soon for a bar of their own to help.
const FILE_BAR_MIN: u64 = 4 << 20;

/// At most this many file bars at once; others count in the overall bar.
const FILE_BARS_MAX: usize = 6;

pub(crate) struct ConsoleReporter {
    display: Display,
    /// Which items get a line, and what it says (`-v`, `-i`,
    /// `--out-format`).
    lines: std::sync::Arc<Lines>,
    /// The destination as given: names print relative to it, as rsync's.
    dest_root: String,
    bars: Option<Box<Bars>>,
}

/// The bars and what they count.
struct Bars {
    /// Keeps the drawing target alive; bars are added to it.
    multi: MultiProgress,
    overall: ProgressBar,
    files: Mutex<HashMap<String, ProgressBar>>,
    per_file: bool,
    /// Redrawn in place on stdout; else lines on stderr ([`LogLines`]).
    on_terminal: bool,
    files_total: AtomicU64,
    files_done: AtomicU64,
    /// What the run does now, and how far: the overall line's words.
    doing: Mutex<Doing>,
    /// Bytes of each file taken out of the overall total as already in
    /// place ([`Bars::set_aside`]).
    set_aside: Mutex<HashMap<String, u64>>,
}

/// The overall line's words besides the counts.
#[derive(Debug)]
struct Doing {
    phase: Phase,
    /// Entries found while listing.
    listed: u64,
    /// Whether a plan has been shown (the bar's style is a bar's since).
    planned: bool,
    /// Whether the overall line is drawn yet.
    drawn: bool,
    /// Off a terminal and with the overall line alone, the last file step
    /// begun (the name shown, the step, bytes done of bytes), which no
    /// bar of its own shows.
    step: Option<(String, FileStep, u64, u64)>,
}

/// The overall line before there is a plan: what is happening, and for
/// how long, but no bar of nothing.
const WAITING_ON_TERMINAL: &str = "{spinner} {msg} {elapsed}";
const WAITING_IN_LOG: &str = "{elapsed_precise} {msg}";
const OVERALL_ON_TERMINAL: &str =
    "{bytes:>10}/{total_bytes} {bar:30} {bytes_per_sec:>12} ETA {eta:>4} {msg}";
/// The elapsed time changes every second: a line each second, even while
/// nothing moves (a stalled link shows as one).
const OVERALL_IN_LOG: &str =
    "{elapsed_precise} {bytes}/{total_bytes} {percent}% {bytes_per_sec} ETA {eta} {msg}";
/// A file's bar, while its bytes move or its blocks are hashed or its
/// partial compared (the message names the step): bytes done, at what rate.
const FILE_COUNTING: &str = "  {bytes:>10}/{total_bytes} {bar:20} {bytes_per_sec:>12} {wide_msg}";
/// A file's bar while one answer is awaited (the whole-file check).
const FILE_WAITING: &str = "  {spinner:>10} {wide_msg} {elapsed}";

impl ConsoleReporter {
    pub(crate) fn new(
        display: Display,
        lines: std::sync::Arc<Lines>,
        dest_root: &str,
    ) -> ConsoleReporter {
        let bars =
            (display.progress != ProgressMode::Off).then(|| Box::new(Bars::new(display.progress)));
        ConsoleReporter {
            display,
            lines,
            dest_root: dest_root.to_string(),
            bars,
        }
    }

    fn println(&self, line: &str) {
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// A line on stderr, above the bars.
    pub(crate) fn warn(&self, message: &str) {
        let line = format!("ferry: {message}");
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.clear();
        }
    }

    fn shown(&self, path: &str) -> String {
        printable(relative(path, &self.dest_root, false)).into_owned()
    }
}

impl Bars {
    fn new(mode: ProgressMode) -> Bars {
        let on_terminal = std::io::stdout().is_terminal();
        let (target, waiting) = match on_terminal {
            true => (ProgressDrawTarget::stdout(), WAITING_ON_TERMINAL),
            false => {
                let lines = Box::new(LogLines::default());
                (
                    ProgressDrawTarget::term_like_with_hz(lines, 4),
                    WAITING_IN_LOG,
                )
            }
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style(waiting));
        Bars {
            multi,
            overall,
            files: Mutex::new(HashMap::new()),
            per_file: mode == ProgressMode::PerFile && on_terminal,
            on_terminal,
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            set_aside: Mutex::default(),
            doing: Mutex::new(Doing {
                phase: Phase::Connecting,
                listed: 0,
                planned: false,
                drawn: false,
                step: None,
            }),
        }
    }

    /// Changes what the overall line says with `change`, and shows it:
    /// drawn from the first phase on, never a line of nothing.
    fn update(&self, change: impl FnOnce(&mut Doing)) {
        if let Ok(mut doing) = self.doing.lock() {
            change(&mut doing);
            let message = self.message(&doing);
            self.overall.set_message(message);
            if !doing.drawn {
                doing.drawn = true;
                self.overall.enable_steady_tick(Duration::from_millis(200));
            }
        }
    }

    /// The overall line's words: the phase, and the files done of all.
    fn message(&self, doing: &Doing) -> String {
        let (done, total) = (
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
        );
        let counts = format!("{done}/{total} files");
        let step = doing
            .step
            .as_ref()
            .map(|(name, step, done, total)| match total {
                0 => format!("; {} {name}", step.name()),
                _ => format!("; {} {name} {}%", step.name(), done * 100 / total),
            });
        match (doing.phase, doing.planned) {
            (Phase::Connecting, false) => "connecting".to_string(),
            (Phase::Connecting, true) => format!("{counts}; connecting again"),
            (Phase::Listing, false) => format!("listing: {} entries", doing.listed),
            (Phase::Listing, true) => format!("{counts}; listing again"),
            (Phase::Transferring, _) => format!("{counts}{}", step.unwrap_or_default()),
            (Phase::Attributes, _) => format!("{counts}; setting attributes"),
            (Phase::Deleting, _) => format!("{counts}; deleting"),
        }
    }

    /// Takes the `bytes` of the file at `path` already in place out of the
    /// overall total (they never cross the wire), instead of what was
    /// taken out for it before: a partial's length while it is verified,
    /// then what was found good.
    fn set_aside(&self, path: &str, bytes: u64) {
        let Ok(mut set_aside) = self.set_aside.lock() else {
            return;
        };
        let before = set_aside.insert(path.to_string(), bytes).unwrap_or(0);
        if let Some(total) = self.overall.length() {
            self.overall
                .set_length((total + before).saturating_sub(bytes));
        }
    }

    /// A reconnect: the bars of files in flight go (their files start
    /// again, with bars of their own), the overall bar stays as it is.
    fn drop_file_bars(&self) {
        if let Ok(mut files) = self.files.lock() {
            for (_, bar) in files.drain() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }

    /// Shows `bar` for the file at `path`, in place of the bar it had for
    /// an earlier step (a new bar: its rate starts from nothing); None
    /// when it had none and as many bars as fit are shown.
    fn show_file_bar(&self, path: &str, bar: ProgressBar) -> Option<ProgressBar> {
        let mut files = self.files.lock().ok()?;
        let bar = match files.remove(path) {
            Some(old) => {
                let bar = self.multi.insert_after(&old, bar);
                old.finish_and_clear();
                self.multi.remove(&old);
                bar
            }
            None if files.len() >= FILE_BARS_MAX => return None,
            None => self.multi.add(bar),
        };
        files.insert(path.to_string(), bar.clone());
        Some(bar)
    }

    /// A bar for the file at `path`, labelled `shown`, from `resume_from`.
    fn start_file(&self, path: &str, shown: &str, size: u64, resume_from: u64) {
        if self.per_file && size >= FILE_BAR_MIN {
            let bar = new_bar(size, FILE_COUNTING, shown.to_string());
            // Counted before it is shown, then forgotten by the estimate:
            // the bytes in place are not a rate.
            bar.set_position(resume_from);
            bar.reset_eta();
            self.show_file_bar(path, bar);
        }
    }

    /// The file's bar (or, with the overall line alone, that line) shows
    /// `step` over `bytes`.
    fn start_step(&self, path: &str, shown: &str, step: FileStep, bytes: u64) {
        let message = format!("{} {shown}", step.name());
        // The check comes after the copy: only a file with a bar gets one.
        let has_bar = || self.files.lock().is_ok_and(|f| f.contains_key(path));
        let template = match step {
            FileStep::Checking if has_bar() => Some(FILE_WAITING),
            FileStep::Hashing | FileStep::Verifying { .. } if bytes >= FILE_BAR_MIN => {
                Some(FILE_COUNTING)
            }
            _ => None,
        };
        match template {
            Some(template) if self.per_file => {
                let bar = new_bar(bytes, template, message);
                if let Some(bar) = self.show_file_bar(path, bar) {
                    if step == FileStep::Checking {
                        bar.enable_steady_tick(Duration::from_millis(200));
                    }
                }
            }
            _ if !self.per_file => {
                self.update(|doing| doing.step = Some((shown.to_string(), step, 0, bytes)));
            }
            _ => {}
        }
    }

    /// `bytes` more of the step of the file at `path`, shown as `shown`.
    fn step_bytes(&self, path: &str, shown: &str, bytes: u64) {
        if let Some(bar) = self.files.lock().ok().and_then(|f| f.get(path).cloned()) {
            bar.inc(bytes);
        }
        if !self.per_file {
            // The line follows the latest file's step: another's counts
            // are not its.
            self.update(|doing| match &mut doing.step {
                Some((name, _, done, _)) if name == shown => *done += bytes,
                _ => {}
            });
        }
    }

    fn file_bytes(&self, path: &str, bytes: u64) {
        self.overall.inc(bytes);
        if let Ok(files) = self.files.lock() {
            if let Some(bar) = files.get(path) {
                bar.inc(bytes);
            }
        }
    }

    fn end_file(&self, path: &str) {
        if let Ok(mut files) = self.files.lock() {
            if let Some(bar) = files.remove(path) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }

    fn clear(&self) {
        if let Ok(mut files) = self.files.lock() {
            for (_, bar) in files.drain() {
                bar.finish_and_clear();
            }
        }
        self.overall.finish_and_clear();
    }
}

/// Off a terminal (a log file, a pipe, cron's mail): each drawing of the
/// overall bar becomes a line of its own on stderr, once a second, where a
/// terminal would redraw it in place.
#[derive(Debug, Default)]
struct LogLines {
    /// The last line written, and when: the same line is not written
    /// again, nor any line within a second of the last.
    last: Mutex<Option<(String, std::time::Instant)>>,
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        self.write_str(line)
    }

    fn write_str(&self, line: &str) -> std::io::Result<()> {
        use std::io::Write;
        let line = line.trim_end();
        let Ok(mut last) = self.last.lock() else {
            return Ok(());
        };
        let due = last.as_ref().is_none_or(|(before, at)| {
            before != line && at.elapsed() >= Duration::from_millis(950)
        });
        if line.is_empty() || !due {
            return Ok(());
        }
        *last = Some((line.to_string(), std::time::Instant::now()));
        writeln!(std::io::stderr().lock(), "{line}")
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}

/// A file's bar, drawn nowhere until [`Bars::show_file_bar`] places it.
fn new_bar(len: u64, template: &str, message: String) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
        .with_style(style(template))
        .with_message(message)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("eta", eta)
}

/// The time left, or `-` while nothing moves (hashing, a stalled link):
/// indicatif's own estimate says 0s then, which reads as "almost done".
fn eta(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = match state.pos() == 0 || state.per_sec() < 1.0 {
        true => write!(out, "-"),
        false => write!(out, "{:#}", indicatif::HumanDuration(state.eta())),
    };
}

impl Reporter for ConsoleReporter {
    fn planned(&self, files: u64, bytes: u64) {
        if let Some(bars) = &self.bars {
            // After a reconnect the plan is what is left: the totals are
            // what is done plus that.
            let done = bars.files_done.load(Ordering::Relaxed);
            bars.files_total.store(done + files, Ordering::Relaxed);
            bars.overall.set_length(bars.overall.position() + bytes);
            // The plan counts every file whole: nothing set aside yet.
            if let Ok(mut set_aside) = bars.set_aside.lock() {
                set_aside.clear();
            }
            bars.update(|doing| {
                if !doing.planned {
                    let template = match bars.on_terminal {
                        true => OVERALL_ON_TERMINAL,
                        false => OVERALL_IN_LOG,
                    };
                    bars.overall.set_style(style(template));
                    bars.overall.reset_elapsed();
                    bars.overall.reset_eta();
                }
                doing.planned = true;
                doing.phase = Phase::Transferring;
            });
        }
    }

    fn phase(&self, phase: Phase) {
        if let Some(bars) = &self.bars {
            if phase == Phase::Connecting {
                bars.drop_file_bars();
            }
            bars.update(|doing| {
                doing.phase = phase;
                doing.step = None;
            });
        }
    }

    fn listed(&self, entries: u64) {
        if let Some(bars) = &self.bars {
            bars.update(|doing| doing.listed += entries);
        }
    }

    fn file_step(&self, path: &str, step: FileStep, bytes: u64) {
        if let Some(bars) = &self.bars {
            if let FileStep::Verifying { partial } = step {
                bars.set_aside(path, partial);
            }
            bars.start_step(path, &self.shown(path), step, bytes);
        }
    }

    fn step_done(&self, path: &str, bytes: u64) {
        if let Some(bars) = &self.bars {
            bars.step_bytes(path, &self.shown(path), bytes);
        }
    }

    fn prompt_guard(&self) -> PromptGuard {
        match &self.bars {
            Some(bars) => {
                let multi = bars.multi.clone();
                PromptGuard::new(move |ask| multi.suspend(ask))
            }
            None => PromptGuard::default(),
        }
    }

    fn file_started(&self, path: &str, size: u64, resume_from: u64) {
        if let Some(bars) = &self.bars {
            // Reused bytes never cross the wire: counting them as progress
            // would make the rate and ETA lie.
            bars.set_aside(path, resume_from);
            bars.update(|doing| doing.step = None);
            bars.start_file(path, &self.shown(path), size, resume_from);
        }
    }

    fn bytes_done(&self, path: &str, bytes: u64) {
        if let Some(bars) = &self.bars {
            bars.file_bytes(path, bytes);
        }
    }

    fn finished(&self, item: &Item<'_>) {
        if let Some(bars) = &self.bars {
            if item.kind == ItemKind::File
                && matches!(
                    item.outcome,
                    Outcome::Sent | Outcome::Resumed | Outcome::Delta
                )
            {
                bars.files_done.fetch_add(1, Ordering::Relaxed);
                bars.update(|_| {});
            }
            bars.end_file(item.path);
        }
        for line in self.lines.stdout_lines(item) {
            self.println(&line);
        }
        if self.display.verbose && item.outcome == Outcome::Resumed {
            let how = item
                .verified
                .map_or("nothing (neither side can hash)", Verified::name);
            let line = format!(
                "{}: resumed after {} bytes, checked by {how}",
                printable(relative(item.path, &self.dest_root, false)),
                item.resumed_from
            );
            self.println(&line);
        }
    }

    fn file_failed(&self, path: &str, error: &FileError) {
        if let Some(bars) = &self.bars {
            bars.end_file(path);
        }
        self.warn(&error.to_string());
    }

    fn warning(&self, message: &str) {
        self.warn(message);
    }

    fn note(&self, message: &str) {
        if self.display.verbose {
            self.println(message);
        }
    }

    fn mention(&self, what: Mention, message: &str) {
        let shown = match what {
            Mention::Directory => self.display.info,
            Mention::NonRegular => self.display.nonreg,
            Mention::Skipped => self.display.skip,
            Mention::Backup => self.display.backup,
        };
        if shown {
            self.println(message);
        }
    }
}

/// rsync's `%i`: `YXcstpoguax`, eleven characters. Y is what happens (`<`
/// sent, `>` received, `c` created locally, `.` attributes only or
/// nothing), X the kind (`f`, `d`, `L`), then one column per attribute that
/// differs, `+` in every column for a new entry, or spaces in every column
/// when nothing differs. Deletions are `*deleting`.
pub(crate) fn itemize(item: &Item<'_>, sending: bool) -> String {
    if matches!(item.outcome, Outcome::Deleted | Outcome::WouldDelete) {
        return "*deleting  ".to_string();
    }
    let kind = match item.kind {
        ItemKind::File => 'f',
        ItemKind::Dir => 'd',
        ItemKind::Symlink => 'L',
        ItemKind::Device => 'D',
        ItemKind::Special => 'S',
    };
    let update = match (item.kind, item.outcome) {
        _ if item.hard_link.is_some() => 'h',
        (_, Outcome::Attributes | Outcome::Skipped) => '.',
        // rsync's `h`: a hard link to a basis DIR's file (`hf`, `hL`).
        (_, Outcome::Linked) => 'h',
        (_, Outcome::Copied) => 'c',
        (ItemKind::File, _) => {
            if sending {
                '<'
            } else {
                '>'
            }
        }
        _ => 'c',
    };
    let changes = item.changes;
    if changes.created {
        return format!("{update}{kind}+++++++++");
    }
    let flag = |on: bool, c: char| if on { c } else { '.' };
    let time = match changes.time {
        TimeChange::Same => '.',
        TimeChange::Preserved => 't',
        TimeChange::Now => 'T',
    };
    let columns = format!(
        "{}{}{time}{}{}{}.{}{}",
        flag(changes.checksum, 'c'),
        flag(changes.size, 's'),
        flag(changes.perms, 'p'),
        flag(changes.owner, 'o'),
        flag(changes.group, 'g'),
        flag(changes.acl, 'a'),
        flag(changes.xattrs, 'x'),
    );
    // rsync blanks the columns of an entry nothing happens to
    // (`.f          `), and of a local change that changes nothing.
    let moved = matches!(update, '<' | '>');
    match !moved && columns.chars().all(|c| c == '.') {
        true => format!("{update}{kind}{}", " ".repeat(columns.len())),
        false => format!("{update}{kind}{columns}"),
    }
}

/// The closing summary line.
pub(crate) fn summary(stats: &Stats) -> String {
    let secs = stats.elapsed.as_secs_f64().max(0.001);
    let files = stats.files_done();
    let deleted = match stats.deleted {
        0 => String::new(),
        n => format!(", {n} deleted"),
    };
    // --link-dest and co.: said only when some file came from a DIR.
    let from_dirs = match (stats.files_linked, stats.files_copied) {
        (0, 0) => String::new(),
        (linked, copied) => format!(", {linked} linked, {copied} copied on the destination"),
    };
    let reconnects = match stats.reconnects {
        0 => String::new(),
        1 => ", after 1 reconnect".to_string(),
        n => format!(", after {n} reconnects"),
    };
    format!(
        "{files} file{} sent ({}), {} resumed, {} by delta ({} reused), {} up to date, {} failed, in {:.2} s ({}/s){from_dirs}{deleted}{reconnects}",
        if files == 1 { "" } else { "s" },
        human(stats.bytes_sent),
        stats.files_resumed,
        stats.files_delta,
        human(stats.bytes_reused),
        stats.files_skipped,
        stats.files_failed,
        secs,
        human((stats.bytes_sent as f64 / secs) as u64),
    )
}

/// `--stats`: rsync's fields, in its words and order. ferry sends no file
/// list, so that size is 0 and its "generation time" is the planning.
pub(crate) fn rsync_stats(stats: &Stats, human_readable: bool, dry_run: bool) -> String {
    let n = |v: u64| number(v, human_readable);
    // Counts keep their digits (grouped) under -h, as rsync's: only sizes
    // are scaled.
    let count = |v: u64| number(v, false);
    let source = &stats.source;
    let kinds = |files: u64, dirs: u64, links: u64| {
        let parts: Vec<String> = [("reg", files), ("dir", dirs), ("link", links)]
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(name, many)| format!("{name}: {}", count(*many)))
            .collect();
        match parts.is_empty() {
            true => String::new(),
            false => format!(" ({})", parts.join(", ")),
        }
    };
    let (sent, received) = (stats.wire_sent, stats.wire_received);
    [
        format!(
            "Number of files: {}{}",
            count(source.files + source.dirs + source.links),
            kinds(source.files, source.dirs, source.links)
        ),
        format!("Number of created files: {}", count(stats.created)),
        format!("Number of deleted files: {}", count(stats.deleted)),
        format!(
            "Number of regular files transferred: {}",
            count(stats.files_done())
        ),
        format!("Total file size: {} bytes", n(source.bytes)),
        format!(
            "Total transferred file size: {} bytes",
            n(stats.bytes_transferred_files)
        ),
        format!("Literal data: {} bytes", n(stats.bytes_sent)),
        format!("Matched data: {} bytes", n(stats.bytes_reused)),
        "File list size: 0".to_string(),
        format!(
            "File list generation time: {:.3} seconds",
            stats.planning.as_secs_f64()
        ),
        "File list transfer time: 0.000 seconds".to_string(),
        format!("Total bytes sent: {}", n(sent)),
        format!("Total bytes received: {}", n(received)),
        String::new(),
        rsync_totals(stats, human_readable, dry_run),
    ]
    .join("\n")
}

/// rsync's last two lines of `--stats` (all of it at `--info=stats1`): the
/// bytes each way with their rate, and the speedup (total size over bytes
/// on the wire).
pub(crate) fn rsync_totals(stats: &Stats, human_readable: bool, dry_run: bool) -> String {
    let n = |v: u64| number(v, human_readable);
    let secs = stats.elapsed.as_secs_f64().max(0.001);
    let (sent, received) = (stats.wire_sent, stats.wire_received);
    let speedup = stats.source.bytes as f64 / (sent + received).max(1) as f64;
    format!(
        "sent {} bytes  received {} bytes  {} bytes/sec\ntotal size is {}  speedup is {}{}",
        n(sent),
        n(received),
        rate((sent + received) as f64 / secs, human_readable),
        n(stats.source.bytes),
        // rsync groups the speedup's digits whatever -h says.
        rate(speedup, false),
        if dry_run { " (DRY RUN)" } else { "" }
    )
}

/// A count as rsync prints it: digits in groups of three, or with `-h`
/// in units of 1000 (K, M, G, T).
fn number(value: u64, human_readable: bool) -> String {
    if human_readable && value >= 1000 {
        return scaled(value as f64);
    }
    super::outformat::group_thousands(&value.to_string())
}

fn rate(per_sec: f64, human_readable: bool) -> String {
    if human_readable && per_sec >= 1000.0 {
        return scaled(per_sec);
    }
    let whole = number(per_sec as u64, false);
    format!("{whole}.{:02}", ((per_sec.fract() * 100.0) as u64).min(99))
}

fn scaled(value: f64) -> String {
    let mut value = value;
    let mut unit = ' ';
    for next in ['K', 'M', 'G', 'T'] {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.2}{unit}").trim_end().to_string()
}

pub(super) fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_readable_stats_scale_sizes_and_group_counts() {
        let mut stats = Stats::default();
        stats.source.files = 3_244;
        stats.source.bytes = 3_244_000;
        let text = rsync_stats(&stats, true, false);
        assert!(
            text.contains("Number of files: 3,244 (reg: 3,244)"),
            "{text}"
        );
        assert!(text.contains("Total file size: 3.24M bytes"), "{text}");
    }
    use crate::report::Changes;

    fn file(outcome: Outcome, changes: Changes) -> Item<'static> {
        Item {
            changes,
            ..Item::new("a", ItemKind::File, outcome)
        }
    }

    #[test]
    fn numbers_print_as_rsync_prints_them() {
        assert_eq!(number(0, false), "0");
        assert_eq!(number(999, false), "999");
        assert_eq!(number(1_000, false), "1,000");
        assert_eq!(number(12_345_678, false), "12,345,678");
        assert_eq!(number(999, true), "999");
        assert_eq!(number(12_345_678, true), "12.35M");
        assert_eq!(rate(808.0, false), "808.00");
        assert_eq!(rate(1_234_567.5, false), "1,234,567.50");
    }

    #[test]
    fn itemized_codes_match_rsyncs() {
        let new = Changes {
            created: true,
            ..Changes::default()
        };
        assert_eq!(itemize(&file(Outcome::Sent, new), true), "<f+++++++++");
        assert_eq!(itemize(&file(Outcome::Sent, new), false), ">f+++++++++");
        let dir = Item {
            changes: new,
            ..Item::new("d", ItemKind::Dir, Outcome::Created)
        };
        assert_eq!(itemize(&dir, true), "cd+++++++++");
        let changed = Changes {
            size: true,
            time: TimeChange::Preserved,
            ..Changes::default()
        };
        assert_eq!(
            itemize(&file(Outcome::Delta, changed), false),
            ">f.st......"
        );
        let perms = Changes {
            perms: true,
            ..Changes::default()
        };
        assert_eq!(
            itemize(&file(Outcome::Attributes, perms), true),
            ".f...p....."
        );
        let same_size = Changes {
            checksum: true,
            time: TimeChange::Now,
            ..Changes::default()
        };
        assert_eq!(
            itemize(&file(Outcome::Sent, same_size), true),
            "<fc.T......"
        );
        let same = file(Outcome::Skipped, Changes::default());
        assert_eq!(itemize(&same, true), ".f         ");
        let touched = Item {
            changes: Changes {
                time: TimeChange::Preserved,
                ..Changes::default()
            },
            ..Item::new("d", ItemKind::Dir, Outcome::Skipped)
        };
        assert_eq!(itemize(&touched, false), ".d..t......");
        let gone = file(Outcome::Deleted, Changes::default());
        assert_eq!(format!("{} a", itemize(&gone, true)), "*deleting   a");
    }
}
