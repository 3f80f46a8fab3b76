//! A copy of a file within one endpoint, for what a rename cannot do across
//! file systems: a backup in a `--backup-dir` elsewhere, and a file written
//! in a `--temp-dir` elsewhere (both copied, as rsync copies them); and a
//! file taken from a `--copy-dest` (or `--link-dest`) DIR.

use super::transfer::{copy_range, SourceFile};
use crate::endpoint::{create_fresh, CopyRange, Endpoint, FileHandle, Pipeline};
use crate::error::Result;
use crate::report::Silent;

/// Copies the `size` bytes of the file `from` to a new file `to` (made
/// 0600; whatever had the name is removed first): inside the endpoint where
/// it copies ranges itself (locally, or through the remote helper) or
/// between open files (SFTP `copy-data`), else read and written back.
pub(super) async fn duplicate<D: Endpoint>(dst: &D, from: &str, to: &str, size: u64) -> Result<()> {
    let out = create_fresh(dst, to).await?;
    if dst.features().copies_ranges {
        out.close(false).await?;
        if size == 0 {
            return Ok(());
        }
        let whole = CopyRange {
            from: 0,
            to: 0,
            len: size,
        };
        return dst.copy_ranges(from, to, &[whole]).await;
    }
    let inside = match dst.features().copies_within && size > 0 {
        true => copy_between_open_files(dst, from, &out, size).await,
        false => Ok(false),
    };
    let copied = match inside {
        Ok(false) => read_and_write(dst, from, &out, size).await,
        other => other.map(drop),
    };
    match copied {
        Err(e) if e.is_fatal() => Err(e),
        copied => {
            let closed = out.close(false).await;
            copied.and(closed)
        }
    }
}

/// The copy between two open files of the endpoint ([`Endpoint::copy_within`]);
/// false when the server declines it after all.
async fn copy_between_open_files<D: Endpoint>(
    dst: &D,
    from: &str,
    out: &D::File,
    size: u64,
) -> Result<bool> {
    let input = dst.open_read(from).await?;
    let copied = dst.copy_within(&input, 0, out, 0, size).await;
    match copied {
        Err(e) if e.is_fatal() => Err(e),
        copied => {
            let closed = input.close(false).await;
            copied.and_then(|done| closed.map(|()| done))
        }
    }
}

/// The copy through this process, pipelined as a transfer is.
async fn read_and_write<D: Endpoint>(dst: &D, from: &str, out: &D::File, size: u64) -> Result<()> {
    let input = dst.open_read(from).await?;
    let meta = crate::endpoint::Meta {
        kind: crate::endpoint::Kind::File,
        size,
        mtime: crate::endpoint::Mtime::default(),
        mode: 0o600,
        owner: None,
        inode: None,
    };
    let source = SourceFile {
        file: &input,
        meta,
        host: dst.label().clone(),
        path: from,
        dest: from,
    };
    let io = Pipeline::between(dst, dst);
    let copied = copy_range::<D, D>(&source, out, 0..size, io, &Silent).await;
    match copied {
        Err(e) if e.is_fatal() => Err(e),
        copied => {
            let closed = input.close(false).await;
            copied.and(closed)
        }
    }
}
