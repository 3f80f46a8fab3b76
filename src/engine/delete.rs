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

use futures::stream::{self, StreamExt};

use super::{Options, Stats};
use crate::endpoint::{join, Endpoint, Entry, Kind};
use crate::error::{Error, ExitCode, Result};
use crate::filter::{Scope, Side};
use crate::report::{Item, ItemKind, Outcome, Reporter};

/// A destination entry the source does not have, found while planning.
#[derive(Debug, Clone)]
pub struct Extraneous {
    pub entry: Entry,
    /// Its path from the transfer root, as the filter rules see it.
    pub path: String,
    /// The rules in force in its directory.
    pub scope: Scope,
}

/// Deletes `extraneous` (found while planning) from `dst`, with what is in
/// its directories, children before their parents.
pub async fn delete_extraneous<D: Endpoint>(
    dst: &D,
    extraneous: Vec<Extraneous>,
    opts: &Options,
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
        expand(dst, entry, path, &scope, &mut doomed, reporter).await?;
    }
    if let Some(max) = opts.max_delete.filter(|max| doomed.len() as u64 > *max) {
        reporter.warning(&format!(
            "--max-delete {max}: {} files and directories would be deleted, so none was",
            doomed.len()
        ));
        stats.failure_code.get_or_insert(ExitCode::MaxDelete);
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
    let removed: Vec<(Entry, Result<()>)> = stream::iter(files)
        .map(|entry| async move {
            let result = dst.remove_file(&entry.name).await;
            (entry, result)
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    for (entry, result) in removed {
        settle(&entry, result, reporter, stats)?;
    }
    for entry in dirs {
        let result = dst.remove_dir(&entry.name).await;
        settle(&entry, result, reporter, stats)?;
    }
    Ok(())
}

/// rsync's way with a directory where a file or a symlink goes: removed
/// when it is empty, and with `--delete` or `--force` (`recursive`) with
/// everything in it (links removed, never followed); otherwise the new
/// entry fails, naming the directory.
pub async fn make_way<D: Endpoint>(dst: &D, dir: &str, recursive: bool) -> Result<()> {
    let not_empty = match dst.remove_dir(dir).await {
        Ok(()) => return Ok(()),
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => e,
    };
    if !recursive {
        return Err(Error::Refused {
            path: format!("{}{dir}", dst.label()),
            message: format!(
                "a directory is in the way of a file or link and could not be removed                  ({not_empty}); --delete or --force remove it with its contents"
            ),
        });
    }
    remove_tree(dst, dir).await
}

/// Removes the directory `dir` and everything in it, children first.
async fn remove_tree<D: Endpoint>(dst: &D, dir: &str) -> Result<()> {
    for child in dst.list(dir).await? {
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
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            reporter.file_failed(&entry.name, &e);
            stats.record_failure(&e);
            Ok(())
        }
    }
}

/// `entry` (at `path` from the transfer root), after everything under it
/// when it is a directory (a symlink to a directory is removed as a link,
/// never followed). What the rules protect inside stays, and so does every
/// directory above it; returns whether `entry` goes.
async fn expand<D: Endpoint>(
    dst: &D,
    entry: Entry,
    path: String,
    scope: &Scope,
    out: &mut Vec<Entry>,
    reporter: &dyn Reporter,
) -> Result<bool> {
    let mut whole = true;
    if entry.meta.kind == Kind::Dir {
        for child in dst.list(&entry.name).await? {
            let child_path = join(&path, &child.name);
            if scope.excluded(&child_path, child.meta.kind == Kind::Dir, Side::Deleting) {
                whole = false;
                continue;
            }
            let child = Entry {
                name: join(&entry.name, &child.name),
                meta: child.meta,
            };
            whole &= Box::pin(expand(dst, child, child_path, scope, out, reporter)).await?;
        }
    }
    match whole {
        true => out.push(entry),
        false => reporter.note(&format!("cannot delete non-empty directory: {path}")),
    }
    Ok(whole)
}
