//! Reading lists: the records of rule files and `--files-from` lists
//! (lines, or NUL-ended with `--from0`), the words of word-split files,
//! and the files themselves (`-` being standard input, for one of them).

use std::io::Read;

use crate::error::{Error, Result};

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
pub struct ListReader {
    /// The option that took standard input.
    stdin_taken_by: Option<String>,
    /// Whether lists read from here on are NUL-separated.
    from0: bool,
}

impl ListReader {
    /// A reader whose lists are NUL-separated from the start when `from0`.
    pub fn new(from0: bool) -> ListReader {
        ListReader {
            from0,
            ..ListReader::default()
        }
    }

    /// Whether lists are read NUL-separated (`--from0`) at this point of the
    /// command line; after the filter is built, its final value, which
    /// `--files-from` and per-directory files use.
    pub fn from0(&self) -> bool {
        self.from0
    }

    /// `--from0` (true) or `--no-from0` (false), from here on.
    pub fn set_from0(&mut self, on: bool) {
        self.from0 = on;
    }

    /// The contents of `name` (`-`: standard input), read for `option`.
    pub fn read(&mut self, name: &str, option: &str) -> Result<Vec<u8>> {
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
pub struct FilesFrom {
    /// The list's file name, for messages.
    pub name: String,
    pub paths: Vec<Listed>,
}

/// One path of a `--files-from` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// From the source directory, `/`-separated, without `.` or `..`
    /// components; empty for the source directory itself.
    pub path: String,
    /// Listed with a trailing `/`: a directory's immediate contents come
    /// too, even without `-r`.
    pub contents: bool,
}

impl FilesFrom {
    /// Reads the list `name` (`-`: standard input), NUL-separated when the
    /// reader says `--from0`.
    pub fn read(name: &str, lists: &mut ListReader) -> Result<FilesFrom> {
        let data = lists.read(name, "--files-from")?;
        Ok(FilesFrom::parse_with(name, &data, lists.from0()))
    }

    /// rsync's reading of a newline-separated list; see
    /// [`FilesFrom::parse_with`].
    pub fn parse(name: &str, data: &[u8]) -> FilesFrom {
        FilesFrom::parse_with(name, data, false)
    }

    /// rsync's reading of the list: one path a record (a line, or with
    /// `from0` up to a NUL), blank records and `#`/`;` comments skipped
    /// (with `from0` too), a leading `/` dropped and `..` kept from rising
    /// above the source directory.
    pub fn parse_with(name: &str, data: &[u8], from0: bool) -> FilesFrom {
        let paths = records(data, from0)
            .into_iter()
            .filter(|(_, record)| !is_comment(record))
            .map(|(_, record)| normalize(&String::from_utf8_lossy(record)))
            .collect();
        FilesFrom {
            name: name.to_string(),
            paths,
        }
    }
}

fn normalize(line: &str) -> Listed {
    let mut parts: Vec<&str> = Vec::new();
    for part in line.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    Listed {
        path: parts.join("/"),
        // "dir/" and "dir/." (or "." alone) bring the directory's entries.
        contents: line.ends_with('/') || line == "." || line.ends_with("/."),
    }
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

    #[test]
    fn the_reader_keeps_from0_as_set() {
        let mut lists = ListReader::new(true);
        assert!(lists.from0());
        lists.set_from0(false);
        assert!(!lists.from0());
    }
}
