//! Progress and outcome reporting, kept out of the engine: the engine calls a
//! [`Reporter`]; the binary decides whether that draws bars, prints lines or
//! stays silent (uv's Reporter pattern).

use std::borrow::Cow;
use std::fmt::Write;

use crate::error::Error;

/// A file name as it may be printed: control characters (a newline, an
/// escape sequence from a hostile server's listing) become rsync's `\#ooo`
/// octal escapes, so no name can forge a line or drive the terminal.
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return Cow::Borrowed(name);
    }
    let mut shown = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            // Every control character is below U+00A0, so three octal digits
            // hold it.
            let _ = write!(shown, "\\#{:03o}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent in full.
    Sent,
    /// Continued from a verified partial.
    Resumed,
    /// Built from the old destination plus the changed blocks.
    Delta,
    /// Already up to date.
    Skipped,
    /// Directory or symlink created, attributes updated.
    Created,
    /// Dry run: would have been sent.
    WouldSend,
    /// Deleted (`--delete`): not in the source.
    Deleted,
    /// Dry run: would have been deleted.
    WouldDelete,
}

/// Receives events from a running sync. Every method has a default so a
/// reporter implements only what it shows.
pub trait Reporter: Send + Sync {
    /// The plan is ready: `files` to transfer, `bytes` of them to move at most.
    fn planned(&self, _files: u64, _bytes: u64) {}

    /// A file transfer begins; `resume_from` bytes are already in place.
    fn file_started(&self, _path: &str, _size: u64, _resume_from: u64) {}

    /// `bytes` more bytes of the current file reached the destination.
    fn bytes_done(&self, _bytes: u64) {}

    fn file_finished(&self, _path: &str, _outcome: Outcome) {}

    /// A non-fatal error on one file; the run continues.
    fn file_failed(&self, _path: &str, _error: &Error) {}

    /// Informational note (skipped directory, dry-run line...).
    fn note(&self, _message: &str) {}

    /// Something a person should see even without -v (deletions skipped).
    fn warning(&self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_print_as_rsync_escapes() {
        assert_eq!(printable("plain name.txt"), "plain name.txt");
        assert_eq!(printable("a\nb"), "a\\#012b");
        assert_eq!(printable("\u{1b}[2J\u{7}"), "\\#033[2J\\#007");
        assert_eq!(printable("caf\u{e9} \u{9b}"), "caf\u{e9} \\#233");
    }
}
