//! rsync's per-item output formats: parsing an `--out-format` or
//! `--log-file-format` string and rendering one line from it, byte for byte
//! as rsync 3.5's `log_formatted()` (log.c) does, plus the
//! `YYYY/MM/DD HH:MM:SS [PID] ` prefix of `--log-file` lines.
//!
//! It owns the text of a line, not the choice of which items get one: the
//! caller decides that (with [`OutFormat::itemizes`] and
//! [`OutFormat::lists_unchanged`]) and fills a plain [`LineContext`], so this
//! module knows nothing of the engine or the endpoints.
//!
//! One deliberate difference: names (`%n`, `%f`, `%L`) are escaped with
//! ferry's [`printable`], which also escapes tabs, DEL and C1 characters
//! that rsync prints raw, and leaves a literal `\#` alone where rsync
//! writes `\#134#`; rsync escapes the whole line instead, literal text of
//! the format included.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::report::printable;

/// The format `-v` (or `--info=name`) implies when `--out-format` is absent.
pub(crate) const VERBOSE_FORMAT: &str = "%n%L";
/// The format `-i` implies when `--out-format` is absent.
pub(crate) const ITEMIZE_FORMAT: &str = "%i %n%L";
/// The format `--log-file` uses when `--log-file-format` is absent.
pub(crate) const LOG_FILE_FORMAT: &str = "%i %n%L";
/// What rsync shows for a deletion when the format names neither the
/// operation nor the itemized changes (log.c, `log_delete`).
const DELETING_FORMAT: &str = "deleting %n";
/// `%i` of a deleted item: 11 characters, like every other `%i`.
pub(crate) const DELETED_ITEMIZE: &str = "*deleting  ";

/// rsync builds each escape's printf spec in a 32-byte buffer and stops
/// taking `-` and digits 8 bytes before its end, after the leading `%`: a
/// 24th character is read as the escape letter (unknown, so kept literally).
const MAX_SPEC_CHARS: usize = 23;
/// Each escape is printed into a MAXPATHLEN (4096) buffer, so no padded
/// field grows past 4095 bytes.
const MAX_FIELD_BYTES: usize = 4095;
/// `%C` for an item without a checksum is blank, as wide as the hex of
/// rsync 3.5's checksum (xxh128 by default; md5 and md4 are 16 bytes too),
/// so 32 spaces keep the columns of scripts written for rsync.
const BLANK_CHECKSUM: &str = "                                ";

/// A parsed `--out-format` / `--log-file-format` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutFormat {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Escape(Escape),
}

/// One `%` escape: `%` `'`* `-`? digits* `'`* letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Escape {
    field: Field,
    spec: Spec,
    /// How many apostrophes: 1 groups digits, 2 gives units of 1000, 3 or
    /// more units of 1024 (only `%l`, `%b` and `%c` heed it).
    humanize: usize,
}

/// The printf flags and width between the `%` and the letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Spec {
    /// Any `-` or digit was written (`%L` pads even its empty text then).
    given: bool,
    left: bool,
    /// A leading `0`: zero padding, which printf honours only for numbers.
    zero: bool,
    width: usize,
}

/// The escapes rsync expands outside a daemon. `%h`, `%a`, `%P` and `%u`
/// expand to nothing there, and rsync then leaves them in the line as
/// typed, like any unknown escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Length,
    Uid,
    Gid,
    Pid,
    Mtime,
    Perms,
    Operation,
    FullName,
    Name,
    Link,
    Module,
    Now,
    Bytes,
    ChecksumBytes,
    Checksum,
    Itemize,
    Percent,
}

impl Field {
    fn from_letter(letter: u8) -> Option<Field> {
        Some(match letter {
            b'l' => Field::Length,
            b'U' => Field::Uid,
            b'G' => Field::Gid,
            b'p' => Field::Pid,
            b'M' => Field::Mtime,
            b'B' => Field::Perms,
            b'o' => Field::Operation,
            b'f' => Field::FullName,
            b'n' => Field::Name,
            b'L' => Field::Link,
            b'm' => Field::Module,
            b't' => Field::Now,
            b'b' => Field::Bytes,
            b'c' => Field::ChecksumBytes,
            b'C' => Field::Checksum,
            b'i' => Field::Itemize,
            b'%' => Field::Percent,
            _ => return None,
        })
    }
}

/// Which side of the transfer a line is about (`%o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// This side sends the file (a push).
    Send,
    /// This side receives the file (a pull).
    Recv,
    /// The item is deleted from the destination.
    Delete,
}

impl Operation {
    /// rsync's spelling, period included for deletions.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Send => "send",
            Operation::Recv => "recv",
            Operation::Delete => "del.",
        }
    }
}

/// What one output line is about. Fields hold what rsync would print for the
/// item; the doc of each says what that is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineContext<'a> {
    /// `%o`.
    pub operation: Operation,
    /// `%n`: the path under the destination root, `.` for the root itself,
    /// without a trailing `/` (`%n` adds it to directories).
    pub name: &'a str,
    /// `%f`: the sender's path (`src/dir/file` on a push, as the source was
    /// named; the same as `name` on a pull), no trailing `/`. One leading
    /// `/` is dropped when shown, as rsync does.
    pub full_name: &'a str,
    pub is_dir: bool,
    /// Permission bits for `%B` (the file type bits are ignored).
    pub mode: u32,
    /// `%L` shows ` -> target` for a symlink.
    pub symlink_target: Option<&'a str>,
    /// `%L` shows ` => name` for a hard link to `name` (`-H`).
    pub hard_link: Option<&'a str>,
    /// `%i`, already computed: 11 characters such as `>f+++++++++`.
    pub itemize: &'a str,
    /// `%l`: the file's size; for a directory its st_size (4096 on ext4),
    /// for a symlink the length of its target.
    pub length: u64,
    /// `%b`: bytes that crossed the connection for this item, 0 when nothing
    /// was transferred (directories, links, attribute-only changes).
    pub transferred: u64,
    /// `%c`: bytes of block checksums received for the basis file; rsync
    /// counts them only when sending and prints 0 otherwise.
    pub checksum_bytes: u64,
    /// `%C`: the whole-file checksum in hex, when one comparable to rsync's
    /// is known; `None` prints 32 spaces, as rsync does for directories,
    /// links and files it neither transferred nor checksummed.
    pub checksum: Option<&'a str>,
    /// `%M`: modification time, seconds since the epoch.
    pub mtime: i64,
    /// `%U`: the owner, `None` without `-o` (rsync prints 0 then).
    pub uid: Option<u32>,
    /// `%G`: the group, `None` without `-g` (rsync prints `DEFAULT` then).
    pub gid: Option<u32>,
    /// `%t`: when the line is written.
    pub now: SystemTime,
    /// `%p`: the process id.
    pub pid: u32,
}

impl<'a> LineContext<'a> {
    /// A deletion of `name` as rsync's `log_delete` describes it: it knows
    /// only the name and whether it was a directory, so sizes, ids, mode and
    /// mtime are all zero (`%M` is the epoch, `%B` is `---------`). Set `gid`
    /// to `Some(0)` with `-g`, where rsync prints 0 instead of `DEFAULT`.
    pub(crate) fn deleted(
        name: &'a str,
        is_dir: bool,
        now: SystemTime,
        pid: u32,
    ) -> LineContext<'a> {
        LineContext {
            operation: Operation::Delete,
            name,
            full_name: name,
            is_dir,
            mode: 0,
            symlink_target: None,
            hard_link: None,
            itemize: DELETED_ITEMIZE,
            length: 0,
            transferred: 0,
            checksum_bytes: 0,
            checksum: None,
            mtime: 0,
            uid: Some(0),
            gid: None,
            now,
            pid,
        }
    }
}

impl OutFormat {
    /// Parses `format` as rsync does: an escape rsync does not expand here
    /// (unknown letters, `%h`, `%a`, `%P`, `%u`, a width too long, a `%` at
    /// the end) stays in the line as typed.
    pub(crate) fn parse(format: &str) -> OutFormat {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = 0;
        while let Some(found) = format[rest..].find('%') {
            let percent = rest + found;
            text.push_str(&format[rest..percent]);
            let (escape, next) = scan_escape(format, percent + 1);
            match escape {
                Some(escape) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Escape(escape));
                }
                None => text.push_str(&format[percent..next]),
            }
            rest = next;
        }
        text.push_str(&format[rest..]);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        OutFormat { pieces }
    }

    /// Whether the format shows `%i`. rsync then lists every changed item,
    /// attribute-only changes included (without it, only transferred and
    /// created items), and a `--log-file` with this format lists unchanged
    /// items whenever the output does ([`OutFormat::lists_unchanged`]).
    pub(crate) fn itemizes(&self) -> bool {
        self.has(Field::Itemize)
    }

    /// Whether unchanged items get a line on the output: the format shows
    /// `%i` and `-i` was given twice or `-v` twice (`--info=name2`), as
    /// generator.c and `maybe_log_item` decide.
    pub(crate) fn lists_unchanged(&self, itemize_count: u8, verbosity: u8) -> bool {
        self.itemizes() && (itemize_count >= 2 || verbosity >= 2)
    }

    /// Whether deletions are shown with this format: it names the operation
    /// (`%o`) or the changes (`%i`); otherwise rsync writes `deleting %n`.
    pub(crate) fn names_operation(&self) -> bool {
        self.has(Field::Operation) || self.itemizes()
    }

    /// The line for one item, without its newline.
    pub(crate) fn render(&self, line: &LineContext<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Escape(escape) => out.push_str(&render_escape(escape, line)),
            }
        }
        out
    }

    /// The line for a deletion: this format if it names the operation, else
    /// rsync's `deleting %n`; `%o` and `%i` say it is a deletion either way.
    pub(crate) fn render_deletion(&self, line: &LineContext<'_>) -> String {
        let line = LineContext {
            operation: Operation::Delete,
            itemize: DELETED_ITEMIZE,
            ..*line
        };
        match self.names_operation() {
            true => self.render(&line),
            false => OutFormat::parse(DELETING_FORMAT).render(&line),
        }
    }

    fn has(&self, field: Field) -> bool {
        self.pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Escape(e) if e.field == field))
    }
}

/// Reads the escape whose text starts at `start` (just past its `%`).
/// Returns the escape and where the text after it starts, or `None` and
/// where rsync resumes scanning: at the letter it did not know.
fn scan_escape(format: &str, start: usize) -> (Option<Escape>, usize) {
    let bytes = format.as_bytes();
    let mut at = start;
    let mut humanize = skip_apostrophes(bytes, &mut at);
    let spec_start = at;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    while at - spec_start < MAX_SPEC_CHARS && bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let spec = Spec::parse(&format[spec_start..at]);
    humanize += skip_apostrophes(bytes, &mut at);
    // Only ASCII was skipped, so `at` is still on a character boundary.
    match bytes.get(at).copied().and_then(Field::from_letter) {
        Some(field) => (
            Some(Escape {
                field,
                spec,
                humanize,
            }),
            at + 1,
        ),
        None => (None, at),
    }
}

fn skip_apostrophes(bytes: &[u8], at: &mut usize) -> usize {
    let from = *at;
    while bytes.get(*at) == Some(&b'\'') {
        *at += 1;
    }
    *at - from
}

impl Spec {
    /// `text` is an optional `-` then digits; a leading `0` is printf's zero
    /// flag, the rest the width.
    fn parse(text: &str) -> Spec {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let width = digits.bytes().fold(0usize, |width, digit| {
            width
                .saturating_mul(10)
                .saturating_add(usize::from(digit - b'0'))
        });
        Spec {
            given: !text.is_empty(),
            left: text.starts_with('-'),
            zero: !text.starts_with('-') && digits.starts_with('0'),
            width: width.min(MAX_FIELD_BYTES),
        }
    }

    /// `value` padded with spaces like printf's `%s`: widths count bytes,
    /// and the zero flag does nothing for strings.
    fn pad<'v>(&self, value: &'v str) -> Cow<'v, str> {
        let missing = self.width.saturating_sub(value.len());
        if missing == 0 {
            return Cow::Borrowed(value);
        }
        let spaces = " ".repeat(missing);
        Cow::Owned(match self.left {
            true => format!("{value}{spaces}"),
            false => format!("{spaces}{value}"),
        })
    }

    /// A number padded like printf's `%u`/`%d`, where the zero flag counts.
    fn pad_number(&self, value: u64) -> String {
        match self.zero {
            true => format!("{value:0width$}", width = self.width),
            false => self.pad(&value.to_string()).into_owned(),
        }
    }
}

fn render_escape(escape: &Escape, line: &LineContext<'_>) -> String {
    let spec = &escape.spec;
    let padded = |value: &str| spec.pad(value).into_owned();
    match escape.field {
        Field::Length => padded(&big_num(line.length, escape.humanize)),
        Field::Bytes => padded(&big_num(line.transferred, escape.humanize)),
        Field::ChecksumBytes => padded(&big_num(line.checksum_bytes, escape.humanize)),
        Field::Uid => spec.pad_number(u64::from(line.uid.unwrap_or(0))),
        Field::Gid => match line.gid {
            Some(gid) => spec.pad_number(u64::from(gid)),
            None => padded("DEFAULT"),
        },
        Field::Pid => spec.pad_number(u64::from(line.pid)),
        Field::Mtime => padded(&time_string(line.mtime).replace(' ', "-")),
        Field::Now => padded(&time_string(unix_seconds(line.now))),
        Field::Perms => padded(&perm_string(line.mode)),
        Field::Operation => padded(line.operation.as_str()),
        Field::Itemize => padded(line.itemize),
        Field::Module => padded(""),
        Field::Percent => padded("%"),
        Field::Checksum => render_checksum(spec, line.checksum),
        Field::Name => render_name(spec, line),
        Field::FullName => {
            let full = line.full_name.strip_prefix('/').unwrap_or(line.full_name);
            printable(&spec.pad(full)).into_owned()
        }
        Field::Link => match line.hard_link {
            Some(leader) => format!(" => {}", printable(&spec.pad(leader))),
            None => render_link(spec, line.symlink_target),
        },
    }
}

/// Names are padded first and escaped after, as rsync pads in
/// `log_formatted` and escapes control characters only when writing.
fn render_name(spec: &Spec, line: &LineContext<'_>) -> String {
    let name = match line.is_dir {
        true => Cow::Owned(format!("{}/", line.name)),
        false => Cow::Borrowed(line.name),
    };
    printable(&spec.pad(&name)).into_owned()
}

/// ` -> target` with the width on the target alone; with a width but no
/// link, rsync still pads an empty target behind four spaces.
fn render_link(spec: &Spec, target: Option<&str>) -> String {
    match target {
        Some(target) => format!(" -> {}", printable(&spec.pad(target))),
        None if spec.given => format!("    {}", spec.pad("")),
        None => String::new(),
    }
}

/// rsync pads a known checksum but prints its blank unpadded.
fn render_checksum(spec: &Spec, checksum: Option<&str>) -> String {
    match checksum {
        Some(hex) => spec.pad(hex).into_owned(),
        None => BLANK_CHECKSUM.to_owned(),
    }
}

/// rsync's `do_big_num`: plain digits; with one apostrophe, commas between
/// thousands; with two, units of 1000 (`1.23M`); with three or more, units of
/// 1024. Numbers below one unit keep their commas.
fn big_num(num: u64, humanize: usize) -> String {
    if humanize > 1 {
        let unit = if humanize == 2 { 1000 } else { 1024 };
        if num >= unit {
            return with_units(num, unit);
        }
    }
    let digits = num.to_string();
    match humanize {
        0 => digits,
        _ => group_thousands(&digits),
    }
}

/// Two decimals and the largest unit below `unit` of the value, as
/// rsync's `"%.2f%c"` (round half to even on the exact double, like Rust).
fn with_units(num: u64, unit: u64) -> String {
    let unit = unit as f64;
    let mut value = num as f64 / unit;
    for suffix in ['K', 'M', 'G', 'T'] {
        if value < unit {
            return format!("{value:.2}{suffix}");
        }
        value /= unit;
    }
    format!("{value:.2}P")
}

/// rsync takes `,` as the separator whenever the C locale's decimal point
/// is `.`, which it always is for rsync's own numbers (it never sets
/// LC_NUMERIC).
pub(super) fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `ls -l`'s permission column without the type character (rsync's
/// `permstring`), set-id and sticky bits included.
fn perm_string(mode: u32) -> String {
    let bit = |mask: u32, set: char| if mode & mask != 0 { set } else { '-' };
    let special = |exec: u32, flag: u32, lower: char, upper: char, fallback: char| match (
        mode & flag != 0,
        mode & exec != 0,
    ) {
        (true, true) => lower,
        (true, false) => upper,
        (false, _) => fallback,
    };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S', bit(0o100, 'x')),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S', bit(0o010, 'x')),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T', bit(0o001, 'x')),
    ]
    .iter()
    .collect()
}

/// One line of `--list-only`, as rsync's `list_file_entry` prints it:
/// the type and permissions, the size right-aligned in 14 columns (11 with
/// `--no-h`) in rsync's `-h` style (`human`: 0 plain, 1 commas, 2 units
/// of 1000, 3 of 1024), the local modification time, the name, and
/// ` -> target` for a symlink when links are kept (`-l`).
pub(crate) fn list_line(entry: &ListEntry<'_>, human: usize) -> String {
    let width = if human > 0 { 14 } else { 11 };
    let target = entry
        .target
        .map(|t| format!(" -> {}", printable(t)))
        .unwrap_or_default();
    format!(
        "{}{} {:>width$} {} {}{target}",
        entry.type_char,
        perm_string(entry.mode),
        big_num(entry.size, human),
        time_string(entry.mtime),
        printable(entry.name),
    )
}

/// What `--list-only` shows of one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListEntry<'a> {
    /// `ls -l`'s type character: `-`, `d`, `l`.
    pub type_char: char,
    pub mode: u32,
    /// The size lstat gives: a directory's st_size, a link's target length.
    pub size: u64,
    pub mtime: i64,
    pub name: &'a str,
    pub target: Option<&'a str>,
}

/// The prefix rsync puts before every `--log-file` line:
/// `YYYY/MM/DD HH:MM:SS [PID] ` in local time.
pub(crate) fn log_line_prefix(now: SystemTime, pid: u32) -> String {
    format!("{} [{pid}] ", time_string(unix_seconds(now)))
}

/// Whole seconds since the epoch, rounded down like `time()`.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() > 0);
            whole.saturating_neg().saturating_sub(partial)
        }
    }
}

/// A broken-down local time, the fields rsync's `timestring` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalTime {
    year: i64,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    second: i32,
}

/// rsync's `timestring`: `YYYY/MM/DD HH:MM:SS` in local time, or
/// `(time out of range)` when the C library cannot convert `seconds`.
fn time_string(seconds: i64) -> String {
    match local_time(seconds) {
        Some(time) => format_time(&time),
        None => "(time out of range)".to_owned(),
    }
}

/// rsync prints the year with `%4d` into a 20-byte buffer: years below 1000
/// are padded with spaces and the text is cut at 19 bytes.
fn format_time(time: &LocalTime) -> String {
    let mut text = format!(
        "{:4}/{:02}/{:02} {:02}:{:02}:{:02}",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    );
    text.truncate(19);
    text
}

fn local_time(seconds: i64) -> Option<LocalTime> {
    let seconds = libc::time_t::try_from(seconds).ok()?;
    // SAFETY: tm is plain old data; all-zero is a valid value that
    // localtime_r overwrites.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // reentrant form, so no static buffer is shared between threads.
    let converted = unsafe { libc::localtime_r(&seconds, &mut tm) };
    if converted.is_null() {
        return None;
    }
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: tm.tm_mon + 1,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
    })
}

#[cfg(test)]
mod tests {
    //! Every expected line below was printed by rsync 3.5.0 on a tree made
    //! with (run as root, so the chown sticks; chown clears small's set-uid):
    //!
    //! ```sh
    //! mkdir -p src/d && head -c 1234567 /dev/zero > src/big
    //! printf 'hi\n' > src/small && ln -s big src/link
    //! printf x > "src/nl<newline>name" && printf y > src/Āc1
    //! printf z > src/setgid && printf w > src/weird
    //! chmod 4755 src/small && chmod 2750 src/setgid && chmod 7644 src/weird
    //! chown 1234:5678 src/small
    //! touch -h -d '2024-03-05 07:08:09 UTC' src/* src
    //! ```
    //!
    //! and, unless a test says otherwise, each format `F` run as
    //! `TZ=UTC rsync -r -l --out-format=F /tmp/oft/src/ /tmp/oft/dst/`
    //! into a fresh dst (a push: this side sends).

    use super::*;
    use std::time::Duration;

    /// 2024-03-05 07:08:09 UTC, the fixture's mtime.
    const MTIME: i64 = 1_709_622_489;
    const PID: u32 = 4242;
    /// The xxh128 rsync printed for `%C` of big.
    const BIG_SUM: &str = "62e510ed0fcad492776a6d2bc7e23d7a";

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    }

    /// A regular file sent in full; rsync counted 16 bytes of checksums
    /// received for each one.
    fn file(name: &'static str, full_name: &'static str, mode: u32) -> LineContext<'static> {
        LineContext {
            operation: Operation::Send,
            name,
            full_name,
            is_dir: false,
            mode,
            symlink_target: None,
            hard_link: None,
            itemize: ">f+++++++++",
            length: 1,
            transferred: 44,
            checksum_bytes: 16,
            checksum: None,
            mtime: MTIME,
            uid: None,
            gid: None,
            now: at(MTIME),
            pid: PID,
        }
    }

    fn dir(name: &'static str, full_name: &'static str) -> LineContext<'static> {
        LineContext {
            is_dir: true,
            itemize: "cd+++++++++",
            length: 4096,
            transferred: 0,
            checksum_bytes: 0,
            ..file(name, full_name, 0o755)
        }
    }

    fn root() -> LineContext<'static> {
        dir(".", "src/.")
    }

    fn sub_dir() -> LineContext<'static> {
        dir("d", "src/d")
    }

    fn big() -> LineContext<'static> {
        LineContext {
            length: 1_234_567,
            transferred: 1_234_758,
            checksum: Some(BIG_SUM),
            ..file("big", "src/big", 0o644)
        }
    }

    fn link() -> LineContext<'static> {
        LineContext {
            symlink_target: Some("big"),
            hard_link: None,
            itemize: "cL+++++++++",
            length: 3,
            transferred: 0,
            checksum_bytes: 0,
            ..file("link", "src/link", 0o777)
        }
    }

    fn newline() -> LineContext<'static> {
        file("nl\nname", "src/nl\nname", 0o644)
    }

    fn small() -> LineContext<'static> {
        LineContext {
            length: 3,
            transferred: 46,
            ..file("small", "src/small", 0o755)
        }
    }

    /// small as `-o -g` shows it.
    fn small_owned() -> LineContext<'static> {
        LineContext {
            uid: Some(1234),
            gid: Some(5678),
            ..small()
        }
    }

    fn setgid() -> LineContext<'static> {
        file("setgid", "src/setgid", 0o2750)
    }

    fn weird() -> LineContext<'static> {
        file("weird", "src/weird", 0o7644)
    }

    fn wide() -> LineContext<'static> {
        file("Āc1", "src/Āc1", 0o644)
    }

    const WIDTHS: &str = "[%10l|%-10l|%10'l|%'-12l|%-'12l|%05l|%05U|%05n|%-5n|%3n|%5%|%-8o|%8o|\
                          %12B|%-3i|%5L|%0L|%'L|%-5G|%-3b|%'c]";
    const HUMAN: &str = "[%'l|%''l|%'''l|%''''l|%'b|%''b|%'''c|%c]";
    const UNKNOWN: &str = "[%q%n|%5q|%I|%-'5l|%.3n|%h|%a|%m|%P|%u|%5m|%z]a%";
    const IDS: &str = "[%U|%G|%05U|%010G|%-010U|%00005U]";
    const BLANK: &str = BLANK_CHECKSUM;

    type Case = (&'static str, fn() -> LineContext<'static>, &'static str);

    /// Formats whose output does not depend on the time zone.
    const CASES: &[Case] = &[
        ("%i %n%L", link, "cL+++++++++ link -> big"),
        ("%i %n%L", big, ">f+++++++++ big"),
        ("%i %n%L", root, "cd+++++++++ ./"),
        ("%i %n%L", sub_dir, "cd+++++++++ d/"),
        ("%i %n%L", newline, ">f+++++++++ nl\\#012name"),
        ("%o %n", big, "send big"),
        ("%o %n", sub_dir, "send d/"),
        ("%n%L", link, "link -> big"),
        ("%n%L", wide, "Āc1"),
        (
            WIDTHS,
            root,
            "[      4096|4096      |     4,096|4,096       |%-'12l| 4096|00000|   ./|./   | ./|    %|\
             send    |    send|   rwxr-xr-x|cd+++++++++|         |    ||DEFAULT|0  |0]",
        ),
        (
            WIDTHS,
            big,
            "[   1234567|1234567   | 1,234,567|1,234,567   |%-'12l|1234567|00000|  big|big  |big|    %|\
             send    |    send|   rw-r--r--|>f+++++++++|         |    ||DEFAULT|1234758|16]",
        ),
        (
            WIDTHS,
            link,
            "[         3|3         |         3|3           |%-'12l|    3|00000| link|link |link|    %|\
             send    |    send|   rwxrwxrwx|cL+++++++++| ->   big| -> big| -> big|DEFAULT|0  |0]",
        ),
        (
            WIDTHS,
            newline,
            "[         1|1         |         1|1           |%-'12l|    1|00000|nl\\#012name|nl\\#012name|\
             nl\\#012name|    %|send    |    send|   rw-r--r--|>f+++++++++|         |    ||DEFAULT|44 |16]",
        ),
        (
            WIDTHS,
            wide,
            "[         1|1         |         1|1           |%-'12l|    1|00000| Āc1|Āc1 |Āc1|    %|\
             send    |    send|   rw-r--r--|>f+++++++++|         |    ||DEFAULT|44 |16]",
        ),
        (HUMAN, root, "[4,096|4.10K|4.00K|4.00K|0|0|0|0]"),
        (
            HUMAN,
            big,
            "[1,234,567|1.23M|1.18M|1.18M|1,234,758|1.23M|16|16]",
        ),
        (HUMAN, small, "[3|3|3|3|46|46|16|16]"),
        ("[%%|100%% %n|%5%%n]", big, "[%|100% big|    %big]"),
        ("[%%|100%% %n|%5%%n]", sub_dir, "[%|100% d/|    %d/]"),
        (
            UNKNOWN,
            big,
            "[%qbig|%5q|%I|%-'5l|%.3n|%h|%a||%P|%u|     |%z]a%",
        ),
        ("[%B|%12B|%-10B]", big, "[rw-r--r--|   rw-r--r--|rw-r--r-- ]"),
        ("[%B|%12B|%-10B]", setgid, "[rwxr-s---|   rwxr-s---|rwxr-s--- ]"),
        ("[%B|%12B|%-10B]", weird, "[rwSr-Sr-T|   rwSr-Sr-T|rwSr-Sr-T ]"),
        ("[%B|%12B|%-10B]", sub_dir, "[rwxr-xr-x|   rwxr-xr-x|rwxr-xr-x ]"),
        (IDS, small, "[0|DEFAULT|00000|   DEFAULT|0         |00000]"),
        // rsync -r -l -o -g --out-format=IDS src/ dst/
        (IDS, small_owned, "[1234|5678|01234|0000005678|1234      |01234]"),
        ("[%C|%40C|%-40C]", root, "[{B}|{B}|{B}]"),
        (
            "[%C|%40C|%-40C]",
            big,
            "[62e510ed0fcad492776a6d2bc7e23d7a|        62e510ed0fcad492776a6d2bc7e23d7a|\
             62e510ed0fcad492776a6d2bc7e23d7a        ]",
        ),
        ("[%-6n|%6n]", root, "[./    |    ./]"),
        ("[%-6n|%6n]", newline, "[nl\\#012name|nl\\#012name]"),
        ("[%-6n|%6n]", wide, "[Āc1  |  Āc1]"),
        ("[%-6n|%6n]", small, "[small | small]"),
    ];

    /// `{B}` in an expected line stands for rsync's blank checksum.
    fn expected(text: &str) -> String {
        text.replace("{B}", BLANK)
    }

    #[test]
    fn renders_like_rsync() {
        for (format, line, want) in CASES {
            let got = OutFormat::parse(format).render(&line());
            assert_eq!(got, expected(want), "format {format:?}");
        }
    }

    /// %M, %t, the deletion lines' epoch and the log prefix are local time;
    /// rsync ran with TZ=UTC, so these cases need a zone at UTC here.
    fn zone_is_utc() -> bool {
        time_string(0) == "1970/01/01 00:00:00" && time_string(MTIME) == "2024/03/05 07:08:09"
    }

    #[test]
    fn times_like_rsync() {
        if !zone_is_utc() {
            eprintln!("skipped: the local time zone is not UTC");
            return;
        }
        let format = OutFormat::parse("[%M|%25M|%-20M]");
        let want = "[2024/03/05-07:08:09|      2024/03/05-07:08:09|2024/03/05-07:08:09 ]";
        assert_eq!(format.render(&big()), want);
        // rsync printed its own clock and pid in the same shape:
        // [2026/12/06 04:48:02|12557|   12557|00012557]
        let format = OutFormat::parse("[%t|%p|%8p|%08p]");
        let want = "[2024/03/05 07:08:09|4242|    4242|00004242]";
        assert_eq!(format.render(&big()), want);
        // rsync --log-file=x.log: "2026/12/06 04:43:20 [26513] >f+++++++++ big"
        assert_eq!(
            log_line_prefix(at(MTIME), PID),
            "2024/03/05 07:08:09 [4242] "
        );
    }

    /// `rsync -r -l --delete --out-format=F src/ dst/` after
    /// `mkdir dst/zd`; the last one also with `-g`.
    #[test]
    fn deletions_like_rsync() {
        let gone = LineContext::deleted("zd", true, at(MTIME), PID);
        let render = |format: &str| OutFormat::parse(format).render_deletion(&gone);
        assert_eq!(render("%n"), "deleting zd/");
        assert_eq!(render("%n%L"), "deleting zd/");
        assert_eq!(render("%o %n"), "del. zd/");
        assert_eq!(render("%i %n%L"), "*deleting   zd/");
        if !zone_is_utc() {
            return;
        }
        let all = OutFormat::parse("[%o|%n|%f|%L|%l|%b|%c|%U|%G|%B|%M|%C|%i|%40C|%5L]");
        let want = "[del.|zd/|zd||0|0|0|0|DEFAULT|---------|1970/01/01-00:00:00|{B}|*deleting  |{B}|         ]";
        assert_eq!(all.render_deletion(&gone), expected(want));
        let grouped = LineContext {
            gid: Some(0),
            ..gone
        };
        let want =
            "[del.|zd/|zd||0|0|0|0|0|---------|1970/01/01-00:00:00|{B}|*deleting  |{B}|         ]";
        assert_eq!(all.render_deletion(&grouped), expected(want));
    }

    /// `rsync -e RSH -r -l --out-format='[%o|%f|%n|%L]' host:/tmp/oft/src/ dst/`
    /// with RSH a script running the command locally (a pull), and
    /// `rsync -r -l --out-format='[%f|%n]' /tmp/oft/src/ dst/`.
    #[test]
    fn names_like_rsync() {
        let format = OutFormat::parse("[%o|%f|%n|%L]");
        let pulled = |line: LineContext<'static>| LineContext {
            operation: Operation::Recv,
            full_name: line.name,
            ..line
        };
        assert_eq!(format.render(&pulled(root())), "[recv|.|./|]");
        assert_eq!(format.render(&pulled(sub_dir())), "[recv|d|d/|]");
        assert_eq!(format.render(&pulled(link())), "[recv|link|link| -> big]");
        let absolute = LineContext {
            full_name: "/tmp/oft/src/big",
            ..big()
        };
        assert_eq!(
            OutFormat::parse("[%f|%n]").render(&absolute),
            "[tmp/oft/src/big|big]"
        );
    }

    /// `rsync -r --out-format="%n [%'l|%''l|%'''l]" h/ hd/` over files
    /// made with `truncate -s N`.
    #[test]
    fn humanizes_like_rsync() {
        let cases = [
            (999, "999|999|999"),
            (1000, "1,000|1.00K|1,000"),
            (1005, "1,005|1.00K|1,005"),
            (1015, "1,015|1.01K|1,015"),
            (1023, "1,023|1.02K|1,023"),
            (1024, "1,024|1.02K|1.00K"),
            (1125, "1,125|1.12K|1.10K"),
            (1536, "1,536|1.54K|1.50K"),
            (1_048_576, "1,048,576|1.05M|1.00M"),
            (1_073_741_824, "1,073,741,824|1.07G|1.00G"),
            (1_099_511_627_776, "1,099,511,627,776|1.10T|1.00T"),
        ];
        for (size, want) in cases {
            let got = [1, 2, 3].map(|level| big_num(size, level)).join("|");
            assert_eq!(got, want, "size {size}");
        }
        // Beyond what the file system could hold; from do_big_num's code.
        assert_eq!(big_num(1_000_000_000_000_000, 2), "1.00P");
        assert_eq!(big_num(0, 1), "0");
    }

    /// `rsync --out-format=F h/999 hd/` for each F.
    #[test]
    fn edges_like_rsync() {
        let line = LineContext {
            length: 999,
            ..file("999", "h/999", 0o644)
        };
        let zeros = "0".repeat(22);
        let cases = [
            ("a%".to_owned(), "a%".to_owned()),
            ("a%-".to_owned(), "a%-".to_owned()),
            ("a%'".to_owned(), "a%'".to_owned()),
            ("a%5".to_owned(), "a%5".to_owned()),
            ("%%n".to_owned(), "%n".to_owned()),
            ("%%%n".to_owned(), "%999".to_owned()),
            ("%#n".to_owned(), "%#n".to_owned()),
            ("% n".to_owned(), "% n".to_owned()),
            ("%+5n".to_owned(), "%+5n".to_owned()),
            ("%05n".to_owned(), "  999".to_owned()),
            ("%-0n".to_owned(), "999".to_owned()),
            // The spec holds at most 23 characters of '-' and digits.
            (format!("[%{zeros}5n]"), "[  999]".to_owned()),
            (format!("[%{zeros}05n]"), format!("[%{zeros}05n]")),
            (format!("[%-{zeros}n]"), "[999]".to_owned()),
            (format!("[%-{zeros}0n]"), format!("[%-{zeros}0n]")),
        ];
        for (format, want) in cases {
            assert_eq!(OutFormat::parse(&format).render(&line), want, "{format:?}");
        }
        // `--out-format=%5000n | wc -c` printed 4096 bytes with the newline.
        assert_eq!(OutFormat::parse("%5000n").render(&line).len(), 4095);
        assert_eq!(OutFormat::parse("%-5000n|").render(&line).len(), 4096);
        // `--out-format=''` prints an empty line per item.
        assert_eq!(OutFormat::parse("").render(&line), "");
    }

    #[test]
    fn reports_what_the_format_shows() {
        let default = OutFormat::parse(ITEMIZE_FORMAT);
        assert!(default.itemizes() && default.names_operation());
        let verbose = OutFormat::parse(VERBOSE_FORMAT);
        assert!(!verbose.itemizes() && !verbose.names_operation());
        assert!(OutFormat::parse("%o %n").names_operation());
        // `%%i` and `%%b` are a literal percent and a letter.
        assert!(!OutFormat::parse("%%i %%b").itemizes());
        assert!(OutFormat::parse("%5%%i").itemizes());
        // `rsync -a --out-format='%i %n%L'` on an up-to-date tree printed
        // nothing; adding -ii or -vv listed every item (".f          big").
        assert!(!default.lists_unchanged(1, 1));
        assert!(default.lists_unchanged(2, 0));
        assert!(default.lists_unchanged(0, 2));
        // `-ii --out-format='%n'` listed nothing.
        assert!(!verbose.lists_unchanged(2, 2));
    }

    /// `TZ=UTC rsync --list-only src/` (and `-h`, `--no-h`) on the tree
    /// above, with `src/d` left out.
    #[test]
    fn lists_like_rsync() {
        if !zone_is_utc() {
            return;
        }
        let entry = |type_char, mode, size, name, target| ListEntry {
            type_char,
            mode,
            size,
            mtime: MTIME,
            name,
            target,
        };
        let root = entry('d', 0o755, 4096, ".", None);
        let big = entry('-', 0o644, 1_234_567, "big", None);
        let link = entry('l', 0o777, 3, "link", Some("big"));
        assert_eq!(
            list_line(&root, 1),
            "drwxr-xr-x          4,096 2024/03/05 07:08:09 ."
        );
        assert_eq!(
            list_line(&big, 1),
            "-rw-r--r--      1,234,567 2024/03/05 07:08:09 big"
        );
        assert_eq!(
            list_line(&link, 1),
            "lrwxrwxrwx              3 2024/03/05 07:08:09 link -> big"
        );
        assert_eq!(
            list_line(&big, 2),
            "-rw-r--r--          1.23M 2024/03/05 07:08:09 big"
        );
        assert_eq!(
            list_line(&big, 0),
            "-rw-r--r--     1234567 2024/03/05 07:08:09 big"
        );
        let newline = entry('-', 0o644, 1, "nl\nname", None);
        assert!(list_line(&newline, 1).ends_with(" nl\\#012name"));
    }

    #[test]
    fn formats_times_as_timestring() {
        let time = |year| LocalTime {
            year,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 5,
        };
        assert_eq!(format_time(&time(2024)), "2024/01/02 03:04:05");
        assert_eq!(format_time(&time(999)), " 999/01/02 03:04:05");
        assert_eq!(format_time(&time(-1)), "  -1/01/02 03:04:05");
        assert_eq!(format_time(&time(12345)), "12345/01/02 03:04:0");
        assert_eq!(time_string(i64::MAX), "(time out of range)");
    }

    #[test]
    fn rounds_times_down_to_seconds() {
        assert_eq!(unix_seconds(at(MTIME) + Duration::from_millis(999)), MTIME);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(2)), -2);
    }
}
