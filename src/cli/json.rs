//! `--json`: one JSON object per line on stdout for each file action, each
//! warning, and a closing summary with the totals and the exit code, so a
//! script needs no parsing of messages meant for people. The schema is in
//! docs/JSON.md; changing a field's name or meaning is a breaking change.

use std::io::Write;

use serde::Serialize;

use crate::engine::Stats;
use crate::error::{Error, FileError};
use crate::report::{
    relative, Changes, Item, ItemKind, Outcome, Phase, Reporter, TimeChange, Verified,
};

/// Version of the line format, in every summary: bumped when a field
/// changes meaning or goes away (new fields do not bump it).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Writes JSON lines; whole lines only, so output from concurrent file
/// transfers never interleaves.
pub(crate) struct JsonReporter {
    out: std::io::Stdout,
    /// Paths are given relative to the destination, as rsync shows them.
    dest_root: String,
}

#[derive(Serialize)]
struct ItemLine<'a> {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    action: &'static str,
    kind: &'static str,
    path: &'a str,
    size: u64,
    bytes_sent: u64,
    bytes_reused: u64,
    resumed_from: u64,
    /// How the copy was checked against the source (`helper`, `shell`,
    /// `check-file`, `read`, `local`, `read back`), when it was.
    verified: Option<&'static str>,
    /// What differed and was changed, in rsync's `-i` order: `checksum`,
    /// `size`, `time`, `perms`, `owner`, `group`, `acl`, `xattrs` (empty for
    /// a new entry).
    changes: Vec<&'static str>,
    result: &'static str,
}

#[derive(Serialize)]
struct FailureLine<'a> {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    action: &'static str,
    path: &'a str,
    result: &'static str,
    error: String,
}

#[derive(Serialize)]
struct MessageLine<'a> {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    message: &'a str,
}

/// The run moved on to another phase (a line per change).
#[derive(Serialize)]
struct PhaseLine {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    phase: &'static str,
}

/// The closing line: totals of the whole run, every attempt included.
#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind_of_line: &'static str,
    schema: u32,
    exit_code: i32,
    /// The error that ended the run early, if one did.
    error: Option<&'a str>,
    files_sent: u64,
    files_resumed: u64,
    files_delta: u64,
    files_linked: u64,
    files_copied: u64,
    files_up_to_date: u64,
    files_failed: u64,
    created: u64,
    deleted: u64,
    bytes_sent: u64,
    bytes_reused: u64,
    wire_bytes_sent: u64,
    wire_bytes_received: u64,
    reconnects: u32,
    elapsed_seconds: f64,
}

impl JsonReporter {
    pub(crate) fn new(dest_root: &str) -> JsonReporter {
        JsonReporter {
            out: std::io::stdout(),
            dest_root: dest_root.to_string(),
        }
    }

    fn write<T: Serialize>(&self, line: &T) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        // Stdout's own lock keeps the line whole. A closed stdout (a script
        // that stopped reading) must not stop the transfer; the exit code
        // still tells.
        let mut out = self.out.lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// The summary line: `stats` so far (all zero when the run failed
    /// before it started), the exit code, and the error if the run ended
    /// on one.
    pub(crate) fn summary(&self, stats: &Stats, exit_code: i32, error: Option<&Error>) {
        let error = error.map(ToString::to_string);
        self.write(&SummaryLine {
            kind_of_line: "summary",
            schema: SCHEMA_VERSION,
            exit_code,
            error: error.as_deref(),
            files_sent: stats.files_sent,
            files_resumed: stats.files_resumed,
            files_delta: stats.files_delta,
            files_linked: stats.files_linked,
            files_copied: stats.files_copied,
            files_up_to_date: stats.files_skipped,
            files_failed: stats.files_failed,
            created: stats.created,
            deleted: stats.deleted,
            bytes_sent: stats.bytes_sent,
            bytes_reused: stats.bytes_reused,
            wire_bytes_sent: stats.wire_sent,
            wire_bytes_received: stats.wire_received,
            reconnects: stats.reconnects,
            elapsed_seconds: (stats.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        });
    }
}

/// The `action` field's word for an outcome.
pub(crate) fn action_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Sent => "sent",
        Outcome::Resumed => "resumed",
        Outcome::Delta => "delta",
        Outcome::Skipped => "up_to_date",
        Outcome::Created => "created",
        Outcome::Attributes => "attributes",
        Outcome::Linked => "linked",
        Outcome::Copied => "copied",
        Outcome::WouldSend => "would_send",
        Outcome::Deleted => "deleted",
        Outcome::WouldDelete => "would_delete",
    }
}

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::File => "file",
        ItemKind::Dir => "dir",
        ItemKind::Symlink => "symlink",
        ItemKind::Device => "device",
        ItemKind::Special => "special",
    }
}

/// The words of [`ItemLine::changes`].
fn changed(changes: &Changes) -> Vec<&'static str> {
    let time = changes.time != TimeChange::Same;
    [
        (changes.checksum, "checksum"),
        (changes.size, "size"),
        (time, "time"),
        (changes.perms, "perms"),
        (changes.owner, "owner"),
        (changes.group, "group"),
        (changes.acl, "acl"),
        (changes.xattrs, "xattrs"),
    ]
    .into_iter()
    .filter_map(|(on, word)| on.then_some(word))
    .collect()
}

impl Reporter for JsonReporter {
    fn finished(&self, item: &Item<'_>) {
        // Up-to-date entries are counted in the summary, not listed.
        if item.outcome == Outcome::Skipped {
            return;
        }
        self.write(&ItemLine {
            kind_of_line: "item",
            // A directory a basis DIR has is made, not copied.
            action: match (item.kind, item.outcome) {
                (ItemKind::Dir, Outcome::Copied) => "created",
                (_, outcome) => action_name(outcome),
            },
            kind: kind_name(item.kind),
            path: relative(item.path, &self.dest_root, item.kind == ItemKind::Dir),
            size: item.size,
            bytes_sent: item.sent,
            bytes_reused: item.reused,
            resumed_from: item.resumed_from,
            verified: item.verified.map(Verified::name),
            changes: changed(&item.changes),
            result: "ok",
        });
    }

    fn file_failed(&self, path: &str, error: &FileError) {
        // A failure found while planning comes without a destination path:
        // the error's own (source or destination, with its host) stands in.
        let subject;
        let path = match path {
            "" => {
                subject = error.subject();
                subject.as_str()
            }
            path => relative(path, &self.dest_root, false),
        };
        self.write(&FailureLine {
            kind_of_line: "item",
            action: "failed",
            path,
            result: "error",
            error: error.to_string(),
        });
    }

    fn warning(&self, message: &str) {
        self.write(&MessageLine {
            kind_of_line: "warning",
            message,
        });
    }

    /// The run's phases only: a file's steps (hashing, verifying) come as
    /// concurrent transfers reach them, which would make two identical
    /// runs' lines differ, and one line per file would flood a big tree's.
    fn phase(&self, phase: Phase) {
        self.write(&PhaseLine {
            kind_of_line: "phase",
            phase: phase.name(),
        });
    }
}
