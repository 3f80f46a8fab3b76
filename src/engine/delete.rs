//! `--delete`: removing what the destination has and the source does not.
//!
//! It runs after every transfer, and only when none failed: a run that went
//! wrong anywhere deletes nothing (rsync's "IO error encountered -- skipping
//! file deletion"), so a source that could not be read completely never
//! empties its copy. Everything that would go is listed first, so that
//! `--max-delete` can refuse the lot before anything is gone.
//!
//! The filter rules protect too: an entry the receiving side's rules
//! exclude is left, and so is a directory that still holds one (rsync's
//! "cannot delete non-empty directory").
//!
//! With `--backup` a file or symlink is renamed to its backup name rather
//! than removed (`engine::backup`); one kept beside its file (NAME~) keeps
//! its directory too, as in rsync.

use futures::stream::{self, StreamExt};

use super::backup::{Backups, How, Kept};
use super::{Options, Stats};
use crate::endpoint::{join, Endpoint, Entry, Kind};
use crate::error::{Error, FileError, Result};
use crate::filter::{Scope, Side};
use crate::report::{Item, ItemKind, Outcome, Reporter};

/// A destination entry the source does not have, found while planning.
#[derive(Debug, Clone)]
pub(crate) struct Extraneous {
    pub entry: Entry,
    /// Its path from the transfer root, as the filter rules see it.
    pub path: String,
    /// The rules in force in its directory.
    pub scope: Scope,
}

/// Deletes `extraneous` (found while planning) from `dst`, with what is in
/// its directories, children before their parents.
pub(crate) async fn delete_extraneous<D: Endpoint>(
    dst: &D,
    extraneous: Vec<Extraneous>,
    opts: &Options,
    backups: Option<&Backups>,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    if extraneous.is_empty() {
        return Ok(());
    }
    if stats.files_failed > 0 {
        reporter.warning(&format!(
            "not deleting anything: {} error{} happened in this run (--delete runs only after a run without errors)",
            stats.files_failed,
            if stats.files_failed == 1 { "" } else { "s" }
        ));
        return Ok(());
    }
    let mut doomed = Vec::new();
    for gone in extraneous {
        let Extraneous { entry, path, scope } = gone;
        if backups.is_some_and(|b| b.protects(&entry.name) || b.made_now(&entry.name)) {
            continue;
        }
        let at = Place {
            scope: &scope,
            backups,
        };
        expand(dst, entry, path, &at, &mut doomed, reporter).await?;
    }
    if let Some(max) = opts.max_delete.filter(|max| doomed.len() as u64 > *max) {
        reporter.warning(&format!(
            "--max-delete {max}: {} files and directories would be deleted, so none was",
            doomed.len()
        ));
        stats.deletions_held = true;
        return Ok(());
    }
    if opts.dry_run {
        for entry in &doomed {
            reporter.finished(&deletion(entry, Outcome::WouldDelete));
        }
        return Ok(());
    }
    // Files (and links) at once; then directories, deepest first.
    let (dirs, files): (Vec<Entry>, Vec<Entry>) =
        doomed.into_iter().partition(|e| e.meta.kind == Kind::Dir);
    // Old backups (NAME~) go before anything is renamed to such a name,
    // as rsync's reverse name order has it.
    let (old_backups, files): (Vec<Entry>, Vec<Entry>) = files
        .into_iter()
        .partition(|e| backups.is_some_and(|b| b.is_backup_name(&e.name)));
    for batch in [old_backups, files] {
        let removed: Vec<(Entry, Result<()>)> = stream::iter(batch)
            .map(|entry| remove_one(dst, entry, backups))
            // In order: the lines come as the plan has them, every run.
            .buffered(opts.jobs.max(1))
            .collect()
            .await;
        for (entry, result) in removed {
            settle(&entry, result, reporter, stats)?;
        }
    }
    for entry in dirs {
        let result = dst.remove_dir(&entry.name).await;
        settle(&entry, result, reporter, stats)?;
    }
    Ok(())
}

async fn remove_one<D: Endpoint>(
    dst: &D,
    entry: Entry,
    backups: Option<&Backups>,
) -> (Entry, Result<()>) {
    let result = remove_or_keep(dst, &entry, backups).await;
    (entry, result)
}

/// A file or symlink `--delete` removes: with `--backup`, renamed to its
/// backup name instead (removed after all when the backup had to be a
/// copy, or when none is kept: an old backup, an unsafe symlink).
async fn remove_or_keep<D: Endpoint>(
    dst: &D,
    entry: &Entry,
    backups: Option<&Backups>,
) -> Result<()> {
    let kept = match backups {
        Some(b) if !b.is_backup_name(&entry.name) => {
            b.keep(dst, &entry.name, &entry.meta, How::Rename).await?
        }
        _ => Kept::Not,
    };
    match kept {
        Kept::Moved => Ok(()),
        Kept::Duplicated | Kept::Not => dst.remove_file(&entry.name).await,
    }
}

/// rsync's way with a directory where a file or a symlink goes: removed
/// when it is empty, and with `--delete` or `--force` (`recursive`) with
/// everything in it (links removed, never followed); otherwise the new
/// entry fails, naming the directory. With `--backup` what is in it is
/// kept as backups: in a backup directory, which empties it, or beside
/// each entry, which keeps the directory and fails the new entry.
pub(crate) async fn make_way<D: Endpoint>(
    dst: &D,
    dir: &str,
    recursive: bool,
    backups: Option<&Backups>,
) -> Result<()> {
    let not_empty = match dst.remove_dir(dir).await {
        Ok(()) => return Ok(()),
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => e,
    };
    if !recursive {
        let message = format!(
            "a directory is in the way of a file or link and could not be removed \
             ({not_empty}); --delete or --force remove it with its contents"
        );
        return Err(FileError::refused(dst.label(), dir, message).into());
    }
    let Some(backups) = backups else {
        return remove_tree(dst, dir).await;
    };
    match Box::pin(back_up_tree(dst, dir, backups)).await {
        Err(e) if !e.is_fatal() => {
            let message = format!(
                "could not make way for the new entry: the directory keeps its contents' \
                 backups ({e})"
            );
            Err(FileError::refused(dst.label(), dir, message).into())
        }
        done => done,
    }
}

/// `--backup` and a directory that must go: each file and symlink in it
/// is kept as a backup (or removed when none is kept), children first,
/// then the directory itself is removed, which fails while it holds
/// backups kept beside their files.
async fn back_up_tree<D: Endpoint>(dst: &D, dir: &str, backups: &Backups) -> Result<()> {
    for child in whole_listing(dst, dir).await? {
        let path = join(dir, &child.name);
        let entry = Entry {
            name: path,
            meta: child.meta,
        };
        match child.meta.kind {
            Kind::Dir => Box::pin(back_up_tree(dst, &entry.name, backups)).await?,
            _ => remove_or_keep(dst, &entry, Some(backups)).await?,
        }
    }
    dst.remove_dir(dir).await
}

/// The entries of `dir`, all of them: an entry the endpoint cannot name
/// is an error, as the directory could not be emptied.
async fn whole_listing<D: Endpoint>(dst: &D, dir: &str) -> Result<Vec<Entry>> {
    let listing = dst.list(dir).await?;
    if let Some(e) = super::unnamed_errors(dst, dir, &listing).next() {
        return Err(e.into());
    }
    Ok(listing.entries)
}

/// Removes the directory `dir` and everything in it, children first.
pub(super) async fn remove_tree<D: Endpoint>(dst: &D, dir: &str) -> Result<()> {
    for child in whole_listing(dst, dir).await? {
        let path = join(dir, &child.name);
        match child.meta.kind {
            Kind::Dir => Box::pin(remove_tree(dst, &path)).await?,
            _ => dst.remove_file(&path).await?,
        }
    }
    dst.remove_dir(dir).await
}

fn deletion(entry: &Entry, outcome: Outcome) -> Item<'_> {
    let kind = match entry.meta.kind {
        Kind::Dir => ItemKind::Dir,
        Kind::Symlink => ItemKind::Symlink,
        _ => ItemKind::File,
    };
    Item {
        meta: Some(entry.meta),
        ..Item::new(&entry.name, kind, outcome)
    }
}

fn settle(
    entry: &Entry,
    result: Result<()>,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    match result {
        Ok(()) => {
            stats.deleted += 1;
            reporter.finished(&deletion(entry, Outcome::Deleted));
            Ok(())
        }
        Err(Error::File(e)) => {
            reporter.file_failed(&entry.name, &e);
            stats.record_failure();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Where an extraneous entry stands: the rules in its directory, and the
/// run's backups.
struct Place<'a> {
    scope: &'a Scope,
    backups: Option<&'a Backups>,
}

/// `entry` (at `path` from the transfer root), after everything under it
/// when it is a directory (a symlink to a directory is removed as a link,
/// never followed). What the rules protect inside stays, and so does every
/// directory above it, as does a backup kept beside its file; returns
/// whether `entry` goes (it is listed either way when it is kept as a
/// backup).
async fn expand<D: Endpoint>(
    dst: &D,
    entry: Entry,
    path: String,
    at: &Place<'_>,
    out: &mut Vec<Entry>,
    reporter: &dyn Reporter,
) -> Result<bool> {
    let mut whole = true;
    if entry.meta.kind == Kind::Dir {
        let listing = dst.list(&entry.name).await?;
        for e in super::unnamed_errors(dst, &entry.name, &listing) {
            reporter.warning(&format!("cannot delete {e}"));
            whole = false;
        }
        for child in listing.entries {
            let child_path = join(&path, &child.name);
            let name = join(&entry.name, &child.name);
            let is_dir = child.meta.kind == Kind::Dir;
            let protected = at.scope.excluded(&child_path, is_dir, Side::Deleting)
                || at.backups.is_some_and(|b| b.protects(&name));
            if protected {
                whole = false;
                continue;
            }
            if let Some(b) = at.backups {
                whole &= !b.stays_beside(dst, &name, &child.meta).await?;
            }
            let child = Entry {
                name,
                meta: child.meta,
            };
            whole &= Box::pin(expand(dst, child, child_path, at, out, reporter)).await?;
        }
    }
    match whole {
        true => out.push(entry),
        false => reporter.note(&format!("cannot delete non-empty directory: {path}")),
    }
    Ok(whole)
}
