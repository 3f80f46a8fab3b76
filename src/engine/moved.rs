//! `--remove-source-files`: a source file (or symlink) goes once its copy
//! is in place and checked, as rsync's sender removes what the receiver
//! reports done. rsync trusts its transfer checksum; ferry compares the
//! whole-file hashes of both sides first (each hashed where it can be) and
//! keeps the source when they differ or when it changed since it was read.

use super::links::LinkPolicy;
use super::transfer::FileJob;
use crate::endpoint::{hashes, Endpoint, Kind, Meta};
use crate::error::{Error, FileError, Result};

/// Removes the source entry `source` (as planned: `planned`) now that
/// `dest` holds its copy.
pub(crate) async fn remove_source<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &str,
    dest: &str,
    planned: &Meta,
    links: &LinkPolicy,
) -> Result<()> {
    let same = match planned.kind {
        Kind::File => hashes::same_contents(src, source, dst, dest).await?,
        Kind::Symlink => {
            let (ours, theirs) = tokio::join!(src.read_link(source), dst.read_link(dest));
            links.target(ours?) == theirs?
        }
        _ => return Ok(()),
    };
    if !same {
        return Err(kept(src, source, "its copy differs from it"));
    }
    // A file copied through a symlink (-L) was read through it.
    let now = match planned.kind {
        Kind::File => src.stat(source).await?,
        _ => src.lstat(source).await?,
    };
    let unchanged = now.is_some_and(|m| {
        m.kind == planned.kind && m.size == planned.size && m.mtime.same(&planned.mtime)
    });
    if !unchanged {
        return Err(kept(src, source, "it changed since it was copied"));
    }
    src.remove_file(source).await
}

/// [`remove_source`] for a file just copied.
pub(crate) async fn after_copy<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
) -> Result<()> {
    let links = LinkPolicy::default();
    remove_source(
        src,
        dst,
        &job.source,
        &job.paths.dest,
        &job.source_meta,
        &links,
    )
    .await
}

fn kept<S: Endpoint>(src: &S, source: &str, why: &str) -> Error {
    let message = format!("not removed (--remove-source-files): {why}");
    FileError::refused(src.label(), source, message).into()
}
