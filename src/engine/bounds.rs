//! `-x/--one-file-system`: where a walk stops at a file-system boundary, as
//! rsync's sender and receiver do.
//!
//! The file system of each walk's top directory is the one a tree keeps to
//! (rsync's `filesystem_dev`, set per source argument). A source directory
//! on another one is a mount point: sent as an empty directory (`-x`) or
//! not at all (`-xx`); files are never affected (rsync: "-x only affects
//! dirs"). On the receiving side `--delete` stays out of a destination
//! directory on another file system than the destination's top.

use std::collections::HashSet;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::endpoint::{join, Endpoint, Entry, Kind};
use crate::error::{Error, Result};

/// The file systems a walk keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    src: u64,
    /// The destination's, when its top directory exists.
    dst: Option<u64>,
}

impl Bounds {
    /// The file systems of a walk's top directories.
    pub(crate) async fn at_top<S: Endpoint, D: Endpoint>(
        src: &S,
        src_dir: &str,
        dst: &D,
        dst_dir: Option<&str>,
    ) -> Result<Bounds> {
        let src = src.file_system(src_dir).await?;
        let dst = match dst_dir {
            Some(dir) => Some(dst.file_system(dir).await?),
            None => None,
        };
        Ok(Bounds { src, dst })
    }

    /// The subdirectories among `entries` (of `src_dir`) on another file
    /// system than the top's, and the errors of those that could not be
    /// looked at (counted as mount points: the walk does not enter them).
    pub(crate) async fn mount_points<S: Endpoint>(
        &self,
        src: &S,
        src_dir: &str,
        entries: &[Entry],
    ) -> (HashSet<String>, Vec<Error>) {
        let looked: Vec<(&str, Result<u64>)> = entries
            .iter()
            .filter(|e| e.meta.kind == Kind::Dir)
            .map(|e| async move {
                (
                    e.name.as_str(),
                    src.file_system(&join(src_dir, &e.name)).await,
                )
            })
            .collect::<FuturesUnordered<_>>()
            .collect()
            .await;
        let mut mounts = HashSet::new();
        let mut errors = Vec::new();
        for (name, found) in looked {
            match found {
                Ok(fs) if fs == self.src => {}
                Ok(_) => {
                    mounts.insert(name.to_string());
                }
                Err(e) => {
                    errors.push(e);
                    mounts.insert(name.to_string());
                }
            }
        }
        (mounts, errors)
    }

    /// Whether `--delete` may look into the destination directory `dir`:
    /// not when it is on another file system than the destination's top.
    pub(crate) async fn deletes_in<D: Endpoint>(&self, dst: &D, dir: &str) -> Result<bool> {
        match self.dst {
            Some(top) => Ok(dst.file_system(dir).await? == top),
            None => Ok(true),
        }
    }
}
