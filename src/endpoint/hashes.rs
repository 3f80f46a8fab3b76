//! Hashing as a seam of its own: how an endpoint computes the hashes of its
//! files, with one implementation per tier: next to the data on this
//! machine (`local::LocalHashes`), and on a server by the helper, by the
//! shell's tools, by reading the data over the network, or not at all
//! (`remote::tier`). An endpoint holds one, chosen once; a new way to hash
//! (a server's hashing extension) is a new implementation, not a new branch
//! in every method.
//!
//! The engine asks through the functions at the end ([`block_hashes`],
//! [`file_hash`], [`signature`], [`find_blocks`]): the endpoint's tier
//! answers, or the data is read through the endpoint and hashed here.

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};

use super::{read_ranges, Endpoint, FileHandle, Hashing, Pipeline};
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::error::{Error, Result};
use crate::hash::{BlockHash, BlockHasher, HashAlgo, Hasher};

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

    /// Bytes worth hashing per request when a large file's blocks are
    /// hashed in parts (for progress along the way): a tier that starts a
    /// process per request wants fewer, larger parts.
    fn span(&self) -> u64 {
        64 << 20
    }

    /// Files smaller than this are sent whole, not compared first: below
    /// it the comparison costs more than sending the bytes (a tier that
    /// starts a process per request).
    fn smallest_delta(&self) -> u64 {
        0
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

    /// [`Hashes::block_hashes`] of each of `ranges`, in one request where
    /// the tier can (a process each would cost more than the hashing);
    /// None: range by range.
    fn ranges_block_hashes<'a>(
        &'a self,
        _path: &'a str,
        _ranges: &'a [(u64, u64)],
        _block: u64,
        _algo: HashAlgo,
    ) -> Answer<'a, Vec<Vec<BlockHash>>> {
        Box::pin(async { Ok(None) })
    }

    /// Hash of the whole file; None as for [`Hashes::block_hashes`].
    fn file_hash<'a>(&'a self, _path: &'a str, _algo: HashAlgo) -> Answer<'a, BlockHash> {
        Box::pin(async { Ok(None) })
    }

    /// How many names the file at `path` has (its link count), where the
    /// tier can tell; None where it cannot. A file found equal to its
    /// source is kept rather than rebuilt only when it has no other name,
    /// which a change of its times or mode would reach too.
    fn links<'a>(&'a self, _path: &'a str) -> Answer<'a, u64> {
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

/// Hash of each `block` bytes of `[start, end)` of `path` on `endpoint`
/// (shorter at end of file): by its tier, or else read and hashed here.
pub(crate) async fn block_hashes<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    start: u64,
    end: u64,
    block: u64,
    algo: HashAlgo,
) -> Result<Vec<BlockHash>> {
    let answer = endpoint
        .hashes()
        .block_hashes(path, start, end, block, algo);
    match answer.await? {
        Some(hashes) => Ok(hashes),
        None => block_hashes_by_reading(endpoint, path, start, end, block, algo).await,
    }
}

/// Ranges asked for at once when the tier takes them one by one.
const RANGES_IN_FLIGHT: usize = 8;

/// [`block_hashes`] of each of `ranges` of `path`: in one request where the
/// tier can, else several ranges at once.
pub(crate) async fn ranges_block_hashes<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    ranges: &[(u64, u64)],
    block: u64,
    algo: HashAlgo,
) -> Result<Vec<Vec<BlockHash>>> {
    let answer = endpoint
        .hashes()
        .ranges_block_hashes(path, ranges, block, algo);
    if let Some(hashes) = answer.await? {
        // A list for each range, or the delta would lose the ranges left.
        if hashes.len() != ranges.len() {
            return Err(Error::Protocol {
                host: endpoint.label().machine().to_string(),
                detail: format!(
                    "{path}: block hashes of {} ranges asked for, {} answered",
                    ranges.len(),
                    hashes.len()
                ),
            });
        }
        return Ok(hashes);
    }
    futures::stream::iter(ranges)
        .map(|&(start, end)| block_hashes(endpoint, path, start, end, block, algo))
        .buffered(RANGES_IN_FLIGHT)
        .try_collect()
        .await
}

/// Hash of the whole file at `path` on `endpoint`: by its tier, or else
/// read and hashed here.
pub(crate) async fn file_hash<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    algo: HashAlgo,
) -> Result<BlockHash> {
    match endpoint.hashes().file_hash(path, algo).await? {
        Some(hash) => Ok(hash),
        None => file_hash_by_reading(endpoint, path, algo).await,
    }
}

/// Whether the file `src_path` of `src` and `dst_path` of `dst` hold the
/// same bytes (`-c`): each hashed where it lies, in the algorithm both
/// sides can compute.
pub(crate) async fn same_contents<S: Endpoint, D: Endpoint>(
    src: &S,
    src_path: &str,
    dst: &D,
    dst_path: &str,
) -> Result<bool> {
    let algo = common_algorithm(src, dst).unwrap_or_default();
    let (a, b) = tokio::join!(
        file_hash(src, src_path, algo),
        file_hash(dst, dst_path, algo)
    );
    Ok(a? == b?)
}

/// Rolling signature of the file at `path` on `endpoint` in `block`-byte
/// blocks: by its tier, or read and computed here when the endpoint hashes
/// by reading; None when it cannot make one (standard tools have no rolling
/// checksum).
pub(crate) async fn signature<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    block: u32,
) -> Result<Option<Signature>> {
    let hashes = endpoint.hashes();
    match hashes.signature(path, block).await? {
        Some(signature) => Ok(Some(signature)),
        None if hashes.hashing() == Hashing::ByReading => {
            signature_by_reading(endpoint, path, block).await.map(Some)
        }
        None => Ok(None),
    }
}

/// Scans `regions` of the file at `path` on `endpoint` for blocks of an old
/// file given by its signature, next to the data. None when the endpoint
/// cannot without moving the data over the network.
pub(crate) async fn find_blocks<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    regions: &[(u64, u64)],
    signature: &Signature,
) -> Result<Option<Vec<Piece>>> {
    endpoint
        .hashes()
        .find_blocks(path, regions, signature)
        .await
}

/// Block hashes of a file of `endpoint`, read through it and hashed here.
async fn block_hashes_by_reading<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    start: u64,
    end: u64,
    block: u64,
    algo: HashAlgo,
) -> Result<Vec<BlockHash>> {
    let file = endpoint.open_read(path).await?;
    let io = Pipeline::reading(endpoint);
    let hashes = hash_blocks_by_reading(&file, start, end, block, io, algo).await;
    file.close(false).await?;
    hashes
}

/// Whole-file hash of a file of `endpoint`, read through it and hashed here.
async fn file_hash_by_reading<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    algo: HashAlgo,
) -> Result<BlockHash> {
    let size = endpoint.lstat(path).await?.map(|m| m.size).unwrap_or(0);
    let file = endpoint.open_read(path).await?;
    let hash = hash_whole_by_reading(&file, size, Pipeline::reading(endpoint), algo).await;
    file.close(false).await?;
    hash
}

/// Whole-content hash of `[0, len)`.
async fn hash_whole_by_reading<F: FileHandle>(
    file: &F,
    len: u64,
    io: Pipeline,
    algo: HashAlgo,
) -> Result<BlockHash> {
    let mut hasher = Hasher::new(algo);
    let mut reads = read_ranges(file, 0, len, io);
    while let Some(data) = reads.try_next().await? {
        hasher.update(&data);
    }
    Ok(hasher.take())
}

/// Rolling signature of a file of `endpoint`, read through it and computed here.
async fn signature_by_reading<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    block: u32,
) -> Result<Signature> {
    let size = endpoint.lstat(path).await?.map(|m| m.size).unwrap_or(0);
    let full = size - size % block as u64;
    let file = endpoint.open_read(path).await?;
    let mut signature = Signature {
        block,
        ..Signature::default()
    };
    let mut pending = BytesMut::new();
    let mut reads = read_ranges(&file, 0, full, Pipeline::reading(endpoint));
    while let Some(data) = reads.try_next().await? {
        pending.extend_from_slice(&data);
        while pending.len() >= block as usize {
            let whole = pending.split_to(block as usize);
            signature.push(&whole);
        }
    }
    drop(reads);
    file.close(false).await?;
    Ok(signature)
}

/// Block hashes of `[start, end)` computed here from pipelined reads.
async fn hash_blocks_by_reading<F: FileHandle>(
    file: &F,
    start: u64,
    end: u64,
    block: u64,
    io: Pipeline,
    algo: HashAlgo,
) -> Result<Vec<BlockHash>> {
    let mut hasher = BlockHasher::new(algo, block);
    // One pipeline over the whole range, cut into blocks as data arrives.
    let mut reads = read_ranges(file, start, end, io);
    while let Some(data) = reads.try_next().await? {
        hasher.update(&data);
    }
    Ok(hasher.finish())
}

/// The hash algorithm two endpoints can both compute: the fixed one of
/// either side, blake3 when neither is fixed; None when they cannot agree.
pub(crate) fn common_algorithm<S: Endpoint, D: Endpoint>(src: &S, dst: &D) -> Option<HashAlgo> {
    match (
        src.hashes().fixed_algorithm(),
        dst.hashes().fixed_algorithm(),
    ) {
        (Some(a), Some(b)) if a != b => None,
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => Some(HashAlgo::Blake3),
    }
}
