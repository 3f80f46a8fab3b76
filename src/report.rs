//! Progress and outcome reporting, kept out of the engine: the engine calls a
//! [`Reporter`]; the binary decides whether that draws bars, prints lines or
//! stays silent (uv's Reporter pattern).

use std::sync::Arc;

use crate::error::FileError;
use crate::meta::Meta;
pub(crate) use crate::paths::printable;

/// A destination path as rsync shows it: relative to the destination
/// directory `root`, `./` for the root itself; a file copied to a new name
/// (the destination names the file) by its base name.
pub(crate) fn relative<'a>(path: &'a str, root: &str, is_dir: bool) -> &'a str {
    let root = root.trim_end_matches('/');
    let trimmed = path.trim_end_matches('/');
    if trimmed == root {
        return match is_dir || root.is_empty() {
            true => ".",
            false => trimmed.rsplit('/').next().unwrap_or(trimmed),
        };
    }
    match root.is_empty() {
        true => path.trim_start_matches('/'),
        false => path
            .strip_prefix(root)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(path),
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Sent in full.
    Sent,
    /// Continued from a verified partial.
    Resumed,
    /// Built from the old destination plus the changed blocks.
    Delta,
    /// Already up to date: nothing is sent or created for it. Reported
    /// while planning (rsync's `-ii` and `-vv` list these); for an existing
    /// directory, `changes` holds the attributes that still differ (set at
    /// the end of the run, as rsync's `.d..t......` shows).
    Skipped,
    /// Directory or symlink created.
    Created,
    /// Already current but for its permissions, which were set.
    Attributes,
    /// Hard-linked to a `--link-dest` DIR's file: nothing crossed.
    Linked,
    /// Copied from a `--link-dest`, `--copy-dest` or `--compare-dest`
    /// DIR's file inside the destination side: nothing crossed.
    Copied,
    /// Dry run: would have been sent.
    WouldSend,
    /// Deleted (`--delete`): not in the source.
    Deleted,
    /// Dry run: would have been deleted.
    WouldDelete,
}

/// How a copied file's content was found equal to the source's, beyond
/// the transport's own integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// Whole-file hashes of both sides agreed; the name is the tier that
    /// hashed the remote side's file (`helper`, `shell`, `check-file`,
    /// `read`), or `local` between two local paths.
    Hashes(&'static str),
    /// A resumed partial was compared block by block with the source,
    /// read back from where it lies, before it was continued.
    ReadBack,
}

impl Verified {
    /// What `-v` and `--json` call it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verified::Hashes(tier) => tier,
            Verified::ReadBack => "read back",
        }
    }
}

/// What kind of entry an [`Item`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    File,
    Dir,
    Symlink,
    /// A device node (rsync's `D`).
    Device,
    /// A fifo or socket (rsync's `S`).
    Special,
}

/// What happens to a destination entry's modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TimeChange {
    /// Left as it is (or the same as the source's).
    #[default]
    Same,
    /// Set to the source's (`--times`).
    Preserved,
    /// Rewritten without `--times`: it becomes the time of the transfer.
    Now,
}

/// How an entry differs from what the destination had: what rsync's
/// `--itemize-changes` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Changes {
    /// The destination had nothing (or nothing of this kind) there.
    pub created: bool,
    /// `--checksum` found different contents at the same size.
    pub checksum: bool,
    pub size: bool,
    pub time: TimeChange,
    pub perms: bool,
    /// `-o`: the owner is (to be) changed: rsync's `o` column.
    pub owner: bool,
    /// `-g`: the group is (to be) changed: rsync's `g` column.
    pub group: bool,
    /// `-A`: the ACLs are (to be) changed: rsync's `a` column.
    pub acl: bool,
    /// `-X`: the extended attributes are (to be) changed: rsync's `x`.
    pub xattrs: bool,
}

impl Changes {
    /// The `o` and `g` columns of an owner change.
    pub(crate) fn with_owner(self, owner: crate::meta::OwnerChange) -> Changes {
        Changes {
            owner: owner.uid.is_some(),
            group: owner.gid.is_some(),
            ..self
        }
    }
}

/// One finished action on one path, with what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    /// The path under the destination.
    pub path: &'a str,
    pub kind: ItemKind,
    pub outcome: Outcome,
    /// The source file's size (0 for directories and links).
    pub size: u64,
    /// File data bytes that crossed from the source.
    pub sent: u64,
    /// Bytes taken from what the destination already had.
    pub reused: u64,
    /// Where a resumed partial was continued from.
    pub resumed_from: u64,
    pub changes: Changes,
    /// The entry's metadata where the engine has it (the source's; for a
    /// deletion, the deleted entry's): what rsync's `--out-format` shows as
    /// `%l`, `%B` and `%M`.
    pub meta: Option<Meta>,
    /// The source path the entry comes from, where the action names it
    /// (files and symlinks): `%f`.
    pub source: Option<&'a str>,
    /// What a symlink points to: `%L` shows ` -> target`.
    pub target: Option<&'a str>,
    /// `-H`: the destination path this file was made another name of:
    /// `%L` shows ` => leader`, `%i` an `h`.
    pub hard_link: Option<&'a str>,
    /// How a copied file was checked, when it was.
    pub verified: Option<Verified>,
}

impl<'a> Item<'a> {
    /// An item with nothing moved yet.
    pub(crate) fn new(path: &'a str, kind: ItemKind, outcome: Outcome) -> Item<'a> {
        Item {
            path,
            kind,
            outcome,
            size: 0,
            sent: 0,
            reused: 0,
            resumed_from: 0,
            changes: Changes::default(),
            meta: None,
            source: None,
            target: None,
            hard_link: None,
            verified: None,
        }
    }
}

/// What one of rsync's `--info` lines is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mention {
    /// A device, fifo or socket skipped (`NONREG`: on unless `-q`).
    NonRegular,
    /// A directory skipped without `-r` or `-d`: rsync prints it whatever
    /// `--info` says (a plain info line), silenced by `-q` alone.
    Directory,
    /// An entry an option leaves alone: `--existing`, `--ignore-existing`,
    /// `-u`, `--max-size`, `--min-size` (`SKIP`: from `-vv`).
    Skipped,
    /// A backup made (`BACKUP`: from `-vv`).
    Backup,
}

/// What the run is doing, for a person watching it and for `--json`: a
/// long phase with nothing moving must not look frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Making the SSH connection (and authenticating): again after a
    /// reconnect.
    Connecting,
    /// Listing both sides and deciding what to do.
    Listing,
    /// Moving files (the plan is known: [`Reporter::planned`]).
    Transferring,
    /// Setting the directories' attributes, after every transfer.
    Attributes,
    /// `--delete`: removing what the source does not have.
    Deleting,
}

impl Phase {
    /// What `--json` and the progress line call it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Listing => "listing",
            Phase::Transferring => "transferring",
            Phase::Attributes => "attributes",
            Phase::Deleting => "deleting",
        }
    }
}

/// What one file waits for before (or after) its bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileStep {
    /// Block hashes of both sides, to find what the old file holds
    /// already (a delta); counted in bytes of the new file.
    Hashing,
    /// A partial from an earlier run, of `partial` bytes, compared with the
    /// source before it is continued; counted in bytes compared (all of
    /// it, or its last window when its sidecar vouches for the rest).
    Verifying { partial: u64 },
    /// The copy's whole-file hash against the source's: one answer, no
    /// count.
    Checking,
}

impl FileStep {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileStep::Hashing => "hashing",
            FileStep::Verifying { .. } => "verifying",
            FileStep::Checking => "checking",
        }
    }
}

/// Lets a prompt (an unknown host key, a passphrase, a password) take the
/// terminal from whatever draws on it: the bars are cleared while the
/// question waits and come back after the answer, so a person sees what
/// is asked and types into the prompt, not into a redrawn bar.
#[derive(Clone, Default)]
pub(crate) struct PromptGuard(Option<Arc<HoldScreen>>);

/// Runs the closure with the screen free of progress.
type HoldScreen = dyn Fn(&mut dyn FnMut()) + Send + Sync;

impl PromptGuard {
    pub(crate) fn new(hold: impl Fn(&mut dyn FnMut()) + Send + Sync + 'static) -> PromptGuard {
        PromptGuard(Some(Arc::new(hold)))
    }

    /// Runs `ask` with the terminal to itself.
    pub(crate) fn hold<R>(&self, ask: impl FnOnce() -> R) -> R {
        let Some(hold) = &self.0 else {
            return ask();
        };
        let mut ask = Some(ask);
        let mut answer = None;
        hold(&mut || answer = ask.take().map(|ask| ask()));
        // A screen that never ran the closure still gets its question.
        match (answer, ask) {
            (Some(answer), _) => answer,
            (None, Some(ask)) => ask(),
            (None, None) => unreachable!("the closure ran and left no answer"),
        }
    }
}

impl std::fmt::Debug for PromptGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "PromptGuard(holds the screen)",
            None => "PromptGuard(nothing to hold)",
        })
    }
}

/// Receives events from a running sync. Every method has a default so a
/// reporter implements only what it shows.
pub(crate) trait Reporter: Send + Sync {
    /// The plan is ready: `files` to transfer, `bytes` of them to move at most.
    fn planned(&self, _files: u64, _bytes: u64) {}

    /// A file transfer begins; `resume_from` bytes are already in place.
    fn file_started(&self, _path: &str, _size: u64, _resume_from: u64) {}

    /// `bytes` more bytes of the file at `path` reached the destination.
    fn bytes_done(&self, _path: &str, _bytes: u64) {}

    /// An action is complete (or, in a dry run, would be done).
    fn finished(&self, _item: &Item<'_>) {}

    /// A non-fatal error on one file; the run continues.
    fn file_failed(&self, _path: &str, _error: &FileError) {}

    /// Informational note shown with `-v` (an unsafe symlink ignored...).
    fn note(&self, _message: &str) {}

    /// One of rsync's lines that its `--info` words turn on and off.
    fn mention(&self, _what: Mention, _message: &str) {}

    /// Something a person should see even without -v (deletions skipped).
    fn warning(&self, _message: &str) {}

    /// The run moved on to `phase`.
    fn phase(&self, _phase: Phase) {}

    /// `entries` more entries were found while listing.
    fn listed(&self, _entries: u64) {}

    /// The file at `path` begins `step`, over `bytes` bytes (0 where the
    /// step has no count).
    fn file_step(&self, _path: &str, _step: FileStep, _bytes: u64) {}

    /// `bytes` more bytes of the file's current step are done.
    fn step_done(&self, _path: &str, _bytes: u64) {}

    /// What lets a prompt clear the screen of this reporter's drawing.
    fn prompt_guard(&self) -> PromptGuard {
        PromptGuard::default()
    }
}

/// Reports nothing.
pub(crate) struct Silent;

impl Reporter for Silent {}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn paths_show_relative_to_the_destination() {
        use super::relative;
        assert_eq!(relative("dst/a", "dst", false), "a");
        assert_eq!(relative("dst/sub/b", "dst/", false), "sub/b");
        assert_eq!(relative("dst/", "dst/", true), ".");
        assert_eq!(relative("dst", "dst", true), ".");
        assert_eq!(relative("dir/new.txt", "dir/new.txt", false), "new.txt");
        assert_eq!(relative("/srv/x", "/", false), "srv/x");
        assert_eq!(relative("elsewhere/a", "dst", false), "elsewhere/a");
    }

    #[test]
    fn control_characters_print_as_rsync_escapes() {
        assert_eq!(printable("plain name.txt"), "plain name.txt");
        assert_eq!(printable("a\nb"), "a\\#012b");
        assert_eq!(printable("\u{1b}[2J\u{7}"), "\\#033[2J\\#007");
        assert_eq!(printable("caf\u{e9} \u{9b}"), "caf\u{e9} \\#233");
    }
}
