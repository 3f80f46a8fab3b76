//! Reading lists: the records of rule files and `--files-from` lists
//! (lines, or NUL-ended with `--from0`), the words of word-split files,
//! and the files themselves (`-` being standard input, for one of them).

use std::collections::HashMap;
use std::io::Read;

use crate::error::{Cause, Error, FileError, Result};

/// The records of a list, numbered from 1, blank ones left out. Without
/// `from0` a record ends at `\n`, `\r` or `\r\n`, and a NUL ends its text
/// (rsync keeps records in C strings); with it, records end at NUL and may
/// hold newlines.
pub(crate) fn records(data: &[u8], from0: bool) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let end = match from0 {
            true => rest.iter().position(|&c| c == 0),
            false => rest.iter().position(|&c| c == b'\n' || c == b'\r'),
        };
        let (record, after) = match end {
            Some(i) => (&rest[..i], ended_at(rest, i)),
            None => (rest, rest.len()),
        };
        let record = until_nul(record);
        if !record.is_empty() {
            out.push((number, record));
        }
        rest = &rest[after..];
    }
    out
}

/// Where the next record starts after the terminator at `i` (`\r\n`
/// counts as one).
fn ended_at(data: &[u8], i: usize) -> usize {
    match (data[i], data.get(i + 1)) {
        (b'\r', Some(b'\n')) => i + 2,
        _ => i + 1,
    }
}

fn until_nul(text: &[u8]) -> &[u8] {
    match text.iter().position(|&c| c == 0) {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The whitespace-separated words of a word-split file (`w`, `C`), with
/// the number of the line each is on. Whitespace is C's `isspace`; a NUL
/// separates words too with `from0`, and otherwise ends its word's text.
pub(crate) fn words(data: &[u8], from0: bool) -> Vec<(usize, &[u8])> {
    let is_gap =
        |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') || (from0 && c == 0);
    let mut out = Vec::new();
    let mut line = 1;
    let mut start = None;
    for (i, &c) in data.iter().enumerate() {
        match (is_gap(c), start) {
            (true, Some(s)) => {
                out.push((line, until_nul(&data[s..i])));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
        if c == b'\n' {
            line += 1;
        }
    }
    if let Some(s) = start {
        out.push((line, until_nul(&data[s..])));
    }
    out.retain(|(_, word)| !word.is_empty());
    out
}

/// Whether a record of a rule file or `--files-from` list is a comment:
/// rsync skips records starting with `#` or `;`, with `--from0` too.
pub(crate) fn is_comment(record: &[u8]) -> bool {
    matches!(record.first(), Some(b'#' | b';'))
}

/// Reads the files that filter options and `--files-from` name, giving
/// standard input (`-`) to one of them only, and keeps `--from0`'s state
/// as the options are read in order.
#[derive(Debug, Default)]
pub(crate) struct ListReader {
    /// The option that took standard input.
    stdin_taken_by: Option<String>,
    /// Whether lists read from here on are NUL-separated.
    from0: bool,
}

impl ListReader {
    /// A reader whose lists are NUL-separated from the start when `from0`.
    #[cfg(test)]
    pub(crate) fn new(from0: bool) -> ListReader {
        ListReader {
            from0,
            ..ListReader::default()
        }
    }

    /// A reader for which standard input is taken already: a fuzzed rule
    /// that names `-` then fails instead of waiting on the test's input.
    #[cfg(test)]
    pub(crate) fn without_stdin() -> ListReader {
        ListReader {
            stdin_taken_by: Some("the fuzz harness".to_string()),
            from0: false,
        }
    }

    /// Whether lists are read NUL-separated (`--from0`) at this point of the
    /// command line; after the filter is built, its final value, which
    /// `--files-from` and per-directory files use.
    pub(crate) fn from0(&self) -> bool {
        self.from0
    }

    /// `--from0` (true) or `--no-from0` (false), from here on.
    pub(crate) fn set_from0(&mut self, on: bool) {
        self.from0 = on;
    }

    /// The contents of `name` (`-`: standard input), read for `option`.
    pub(crate) fn read(&mut self, name: &str, option: &str) -> Result<Vec<u8>> {
        if name != "-" {
            return std::fs::read(name).map_err(|e| Error::io(format!("{option} {name}"), e));
        }
        if let Some(first) = &self.stdin_taken_by {
            return Err(Error::Usage(format!(
                "{option} - and {first} - both want standard input; give one of them a file"
            )));
        }
        self.stdin_taken_by = Some(option.to_string());
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| Error::io(format!("{option} - (standard input)"), e))?;
        Ok(data)
    }
}

/// `--files-from`: the paths to copy, relative to the source directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilesFrom {
    /// The list's file name, for messages.
    pub name: String,
    pub paths: Vec<Listed>,
    /// Where the source holds each listed path and the directories above
    /// it, when a line has a `/./` anchor: the first line naming a path
    /// decides, as rsync keeps the first of two entries of one name.
    /// Empty when no line has an anchor (every path is under the source).
    anchors: HashMap<String, String>,
    /// The destination directory itself is an entry of the transfer, with
    /// the attributes of this source directory (from the source, `""` for
    /// the source itself): a `.` line (`dir/./` too), or rsync's implied
    /// dot directory of a line starting with `./`. The first such line
    /// decides.
    pub dot_dir: Option<String>,
}

/// One path of a `--files-from` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// From the transfer root, `/`-separated, without `.` or `..`
    /// components; empty for the root itself.
    pub path: String,
    /// Listed with a trailing `/`: a directory's immediate contents come
    /// too, even without `-r`.
    pub contents: bool,
    /// The part of the line before a `/./` anchor: the directory of the
    /// source the path is read from, which is not kept at the destination
    /// (empty without an anchor).
    pub from: String,
}

/// How a `--files-from` list is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListFormat {
    /// `--from0`: records end at NUL.
    pub from0: bool,
    /// The list travels over the connection to the sending side (a pull
    /// with a local list, a push with a remote one). rsync's sender then
    /// reads it as its forwarder sent it: `#` and `;` lines are names, not
    /// comments, and a NUL ends a record even without `--from0`.
    pub forwarded: bool,
}

impl FilesFrom {
    /// A list ferry makes itself (`-R`'s sources): no name, no anchors.
    pub(crate) fn of(paths: Vec<Listed>) -> FilesFrom {
        FilesFrom {
            paths,
            ..FilesFrom::default()
        }
    }

    /// Reads the list `name` (`-`: standard input), NUL-separated when the
    /// reader says `--from0`. A list that cannot be read ends the run
    /// before it starts, with rsync's message and code (1).
    pub(crate) fn read(name: &str, lists: &mut ListReader, forwarded: bool) -> Result<FilesFrom> {
        let data = match lists.read(name, "--files-from") {
            Ok(data) => data,
            Err(Error::File(FileError {
                cause: Cause::Io(source),
                ..
            })) => {
                return Err(Error::Usage(format!(
                    "failed to open files-from file {name}: {source}"
                )))
            }
            Err(e) => return Err(e),
        };
        let format = ListFormat {
            from0: lists.from0(),
            forwarded,
        };
        Ok(FilesFrom::parse_as(name, &data, format))
    }

    /// rsync's reading of a newline-separated list; see
    /// [`FilesFrom::parse_as`].
    #[cfg(test)]
    pub(crate) fn parse(name: &str, data: &[u8]) -> FilesFrom {
        FilesFrom::parse_with(name, data, false)
    }

    /// A list read where it is, NUL-separated with `from0`.
    #[cfg(test)]
    pub(crate) fn parse_with(name: &str, data: &[u8], from0: bool) -> FilesFrom {
        let format = ListFormat {
            from0,
            forwarded: false,
        };
        FilesFrom::parse_as(name, data, format)
    }

    /// rsync's reading of the list: one path a record (a line, or with
    /// `from0` up to a NUL), blank records skipped, and `#`/`;` comments
    /// too unless the list was forwarded; each line read as
    /// [`normalize`] says.
    pub(crate) fn parse_as(name: &str, data: &[u8], format: ListFormat) -> FilesFrom {
        let texts: Vec<String> = match format.forwarded && !format.from0 {
            // rsync's forwarder turns line ends into NULs, which end
            // records from then on.
            true => data
                .split(|&c| matches!(c, b'\n' | b'\r' | 0))
                .filter(|record| !record.is_empty())
                .map(|record| String::from_utf8_lossy(record).into_owned())
                .collect(),
            false => records(data, format.from0)
                .into_iter()
                .filter(|(_, record)| format.forwarded || !is_comment(record))
                .map(|(_, record)| String::from_utf8_lossy(record).into_owned())
                .collect(),
        };
        let mut list = FilesFrom {
            name: name.to_string(),
            ..FilesFrom::default()
        };
        let anchored = texts.iter().any(|t| t.contains("/./"));
        for text in &texts {
            let (listed, implied_dot) = normalize(text);
            if list.dot_dir.is_none() && (listed.path.is_empty() || implied_dot) {
                list.dot_dir = Some(listed.from.clone());
            }
            if anchored {
                list.anchor(&listed);
            }
            list.paths.push(listed);
        }
        list
    }

    /// Notes where the source holds `listed` and the directories above it,
    /// unless an earlier line named them.
    fn anchor(&mut self, listed: &Listed) {
        let path = listed.path.as_str();
        let above = path.match_indices('/').map(|(i, _)| &path[..i]);
        for rel in above.chain([path]) {
            if !self.anchors.contains_key(rel) {
                self.anchors.insert(rel.to_string(), listed.from.clone());
            }
        }
    }

    /// The directory of the source (from the source, `""` for the source
    /// itself) that holds `rel`, a listed path or a directory above one.
    pub(crate) fn source_dir(&self, rel: &str) -> &str {
        self.anchors.get(rel).map_or("", String::as_str)
    }
}

/// One line as rsync's sender reads it under the `--relative` that
/// `--files-from` implies (flist.c, send_file_list): `sanitize_path` first,
/// keeping `.` components, then the part before the first `/./` is the
/// directory the rest is read from. Also says whether the line makes the
/// destination directory an implied entry (a path starting `./`).
fn normalize(line: &str) -> (Listed, bool) {
    let clean = sanitize(line);
    let (from, rest) = match clean.find("/./") {
        Some(i) => (&clean[..i], &clean[i + 3..]),
        None => ("", clean.as_str()),
    };
    let rest = rest.trim_start_matches('/');
    let implied_dot = rest.len() > 2 && rest.starts_with("./");
    let listed = Listed {
        path: components(rest).join("/"),
        // "dir/", "dir/." and "." (or nothing after `/./`) bring the
        // directory's entries.
        contents: rest.ends_with('/') || rest.ends_with("/.") || components(rest).is_empty(),
        from: components(from).join("/"),
    };
    (listed, implied_dot)
}

/// The names of a path, without empty and `.` components.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect()
}

/// rsync's `sanitize_path` with `SP_KEEP_DOT_DIRS` and no depth: leading
/// and repeated slashes go, `..` removes the component before it (a `.`
/// one too) and is dropped where there is none, so nothing rises above the
/// source; `.` components and a trailing slash stay. Nothing left is `.`.
fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('/') {
            rest = after;
            continue;
        }
        let end = rest.find('/').map_or(rest.len(), |i| i + 1);
        let (part, after) = rest.split_at(end);
        rest = after;
        if part.trim_end_matches('/') == ".." {
            // Back to just after the slash before the last component.
            let kept = out.trim_end_matches('/');
            out.truncate(kept.rfind('/').map_or(0, |i| i + 1));
            continue;
        }
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(records: Vec<(usize, &[u8])>) -> Vec<String> {
        records
            .into_iter()
            .map(|(_, r)| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn lines_end_at_newline_carriage_return_or_both() {
        let got = records(b"a\r\nb\rc\n\nd", false);
        let numbers: Vec<usize> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(texts(got), ["a", "b", "c", "d"]);
        assert_eq!(numbers, [1, 2, 3, 5]);
    }

    /// Checked against rsync 3.5.0: with -0, "foo\0#c\0a\nb\0\0;x\0"
    /// as --exclude-from excludes foo and "a\nb" (the comments stay
    /// comments); without -0 a NUL ends the line's text ("foo", "b").
    #[test]
    fn from0_records_end_at_nul_and_may_hold_newlines() {
        let data = b"foo\0#c\0a\nb\0\0;x\0";
        assert_eq!(texts(records(data, true)), ["foo", "#c", "a\nb", ";x"]);
        assert_eq!(texts(records(data, false)), ["foo", "b"]);
        assert!(is_comment(b"#c") && is_comment(b";x") && !is_comment(b"c#"));
    }

    #[test]
    fn words_split_on_c_whitespace() {
        let got = words(b"foo  #bar\n\x0bbaz\tqux\r\n", false);
        let lines: Vec<usize> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(texts(got), ["foo", "#bar", "baz", "qux"]);
        assert_eq!(lines, [1, 1, 2, 2]);
        assert_eq!(texts(words(b"a\0b c", true)), ["a", "b", "c"]);
        assert_eq!(texts(words(b"a\0b c", false)), ["a", "c"]);
    }

    #[test]
    fn files_from_lists_are_read_as_rsync_reads_them() {
        let list = FilesFrom::parse(
            "list",
            b"sub/c.rs\n# comment\n\n; other\n/a.rs\r\n../up\n./x/../y/\nsub/deep\n",
        );
        let paths: Vec<(&str, bool)> = list
            .paths
            .iter()
            .map(|l| (l.path.as_str(), l.contents))
            .collect();
        assert_eq!(
            paths,
            [
                ("sub/c.rs", false),
                ("a.rs", false),
                ("up", false),
                ("y", true),
                ("sub/deep", false)
            ]
        );
    }

    /// Checked against rsync 3.5.0: `-0 --files-from` with
    /// "foo\0#c\0a\nb\0\0;x\0bar\r\nbaz\0" sends foo and "a\nb", skips the
    /// comments, and looks for a file named "bar\r\nbaz".
    #[test]
    fn files_from_with_from0() {
        let list = FilesFrom::parse_with("list", b"foo\0#c\0a\nb\0\0;x\0bar\r\nbaz\0", true);
        let paths: Vec<&str> = list.paths.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["foo", "a\nb", "bar\r\nbaz"]);
    }

    fn read(list: &FilesFrom) -> Vec<(&str, bool, &str)> {
        list.paths
            .iter()
            .map(|l| (l.path.as_str(), l.contents, l.from.as_str()))
            .collect()
    }

    /// Checked against rsync 3.5.0 (`rsync -a --files-from=list src/ d/`):
    /// the part before the first `/./` is where the path is read from,
    /// and not kept; `a/./` is a's contents in the destination itself.
    #[test]
    fn an_anchor_says_where_the_kept_path_starts() {
        let list = FilesFrom::parse(
            "list",
            b"a/./b/c/f\na/./b/\na/./\nx//./b/h\na/./b/./c/\n/./top\na/b/..\n",
        );
        assert_eq!(
            read(&list),
            [
                ("b/c/f", false, "a"),
                ("b", true, "a"),
                ("", true, "a"),
                ("b/h", false, "x"),
                ("b/c", true, "a"),
                // sanitize_path drops the leading slash: no anchor.
                ("top", false, ""),
                // `..` leaves "a/", a's contents.
                ("a", true, ""),
            ]
        );
        // The first line naming a path (or a directory above one) decides
        // where the source holds it.
        assert_eq!(list.source_dir("b"), "a");
        assert_eq!(list.source_dir("b/h"), "x");
        assert_eq!(list.source_dir("top"), "");
        assert_eq!(list.dot_dir.as_deref(), Some("a"));
    }

    /// Checked against rsync 3.5.0: `..` takes a `.` component with it, so
    /// `a/./../b` has no anchor; a line starting `./` (after an anchor
    /// too) makes the destination an entry with its source directory's
    /// attributes, the first such line deciding.
    #[test]
    fn dot_components_as_sanitize_path_leaves_them() {
        let list = FilesFrom::parse("list", b"a/./../b\nx/././b/h\n./a/top\n");
        assert_eq!(
            read(&list),
            [
                ("a/b", false, ""),
                ("b/h", false, "x"),
                ("a/top", false, "")
            ]
        );
        assert_eq!(list.dot_dir.as_deref(), Some("x"));
        let list = FilesFrom::parse("list", b"a/b\n");
        assert_eq!(list.dot_dir, None);
        assert_eq!(list.source_dir("a"), "");
    }

    /// Checked against rsync 3.5.0 over ssh: a list that crosses the
    /// connection to the sender (pull with a local list, push with a
    /// remote one) has no comments, and a NUL ends a record.
    #[test]
    fn a_forwarded_list_has_no_comments() {
        let data = b"# c\nsub/a\r\n;x\0y\n\n";
        let forwarded = ListFormat {
            from0: false,
            forwarded: true,
        };
        let paths = |list: FilesFrom| list.paths.into_iter().map(|l| l.path).collect::<Vec<_>>();
        assert_eq!(
            paths(FilesFrom::parse_as("l", data, forwarded)),
            ["# c", "sub/a", ";x", "y"]
        );
        assert_eq!(paths(FilesFrom::parse("l", data)), ["sub/a"]);
    }

    #[test]
    fn the_reader_keeps_from0_as_set() {
        let mut lists = ListReader::new(true);
        assert!(lists.from0());
        lists.set_from0(false);
        assert!(!lists.from0());
    }
}
