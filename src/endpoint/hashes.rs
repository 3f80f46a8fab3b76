//! Hashing as a seam of its own: how an endpoint computes the hashes of its
//! files, with one implementation per tier: next to the data on this
//! machine (`local::LocalHashes`), and on a server by the helper, by the
//! shell's tools, by reading the data over the network, or not at all
//! (`remote::tier`). An endpoint holds one, chosen once; a new way to hash
//! (a server's hashing extension) is a new implementation, not a new branch
//! in every method.

use futures::future::BoxFuture;

use super::Hashing;
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::error::Result;
use crate::hash::{BlockHash, HashAlgo};

/// A tier's answer: None when it does not do this (or not with this
/// algorithm), and the endpoint falls back as its methods say.
pub(crate) type Answer<'a, T> = BoxFuture<'a, Result<Option<T>>>;

/// One way of hashing an endpoint's files. Paths are the endpoint's own.
pub(crate) trait Hashes: Send + Sync {
    /// What `-v` calls it.
    fn name(&self) -> &'static str;

    /// How its hashes come about (see [`Hashing`]).
    fn hashing(&self) -> Hashing;

    /// The one algorithm it computes, when it cannot compute any.
    fn fixed_algorithm(&self) -> Option<HashAlgo> {
        None
    }

    /// Hash of each `block` bytes of `[start, end)` (shorter at end of
    /// file); None: the endpoint reads the data and hashes it itself.
    fn block_hashes<'a>(
        &'a self,
        _path: &'a str,
        _start: u64,
        _end: u64,
        _block: u64,
        _algo: HashAlgo,
    ) -> Answer<'a, Vec<BlockHash>> {
        Box::pin(async { Ok(None) })
    }

    /// Hash of the whole file; None as for [`Hashes::block_hashes`].
    fn file_hash<'a>(&'a self, _path: &'a str, _algo: HashAlgo) -> Answer<'a, BlockHash> {
        Box::pin(async { Ok(None) })
    }

    /// Rolling signature in `block`-byte blocks; None: not next to the data
    /// (the endpoint reads the file when its hashing is by reading, and
    /// goes without otherwise).
    fn signature<'a>(&'a self, _path: &'a str, _block: u32) -> Answer<'a, Signature> {
        Box::pin(async { Ok(None) })
    }

    /// Scan of `regions` for the blocks of an old file with `signature`,
    /// next to the data; None where that would mean moving the data.
    fn find_blocks<'a>(
        &'a self,
        _path: &'a str,
        _regions: &'a [(u64, u64)],
        _signature: &'a Signature,
    ) -> Answer<'a, Vec<Piece>> {
        Box::pin(async { Ok(None) })
    }
}

/// The tier of an endpoint that hashes nothing: no delta, no end-to-end
/// check (a remote before its tier is chosen, or with `--remote-hash off`).
pub(crate) struct NoHashes;

impl Hashes for NoHashes {
    fn name(&self) -> &'static str {
        "off"
    }

    fn hashing(&self) -> Hashing {
        Hashing::Off
    }
}
