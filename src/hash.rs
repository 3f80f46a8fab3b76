//! Block hashing with blake3: the evidence on which a partial file is trusted
//! or rejected, and the content comparison behind `--checksum`.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::endpoint::{FileHandle, Pipeline};
use crate::error::Result;

/// Hash of one block: blake3, 32 bytes.
pub type BlockHash = [u8; 32];

/// Hashes `[start, end)` of `file` in blocks of `block` bytes (the last one may
/// be shorter), with reads as `io` says. A file shorter than `end` yields
/// hashes of what exists.
pub async fn block_hashes<F: FileHandle>(
    file: &F,
    start: u64,
    end: u64,
    block: u64,
    io: Pipeline,
) -> Result<Vec<BlockHash>> {
    let mut hashes = Vec::new();
    let mut hasher = blake3::Hasher::new();
    let mut in_block = 0u64;
    // One pipeline over the whole range, cut into blocks as data arrives, so
    // a slow link keeps `depth` requests in flight across block boundaries.
    let mut reads = read_ranges(file, start, end, io);
    while let Some(mut data) = reads.try_next().await? {
        while !data.is_empty() {
            let take = ((block - in_block) as usize).min(data.len());
            hasher.update(&data[..take]);
            in_block += take as u64;
            data = data.slice(take..);
            if in_block == block {
                hashes.push(*hasher.finalize().as_bytes());
                hasher.reset();
                in_block = 0;
            }
        }
    }
    if in_block > 0 {
        hashes.push(*hasher.finalize().as_bytes());
    }
    Ok(hashes)
}

/// Whole-content hash of `[0, len)`.
pub async fn file_hash<F: FileHandle>(file: &F, len: u64, io: Pipeline) -> Result<BlockHash> {
    let mut hasher = blake3::Hasher::new();
    let mut reads = read_ranges(file, 0, len, io);
    while let Some(data) = reads.try_next().await? {
        hasher.update(&data);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Pipelined, in-order reads of `[start, end)`: `io.read_depth` requests of
/// `io.chunk` bytes in flight.
pub fn read_ranges<F: FileHandle>(
    file: &F,
    start: u64,
    end: u64,
    io: Pipeline,
) -> impl futures::Stream<Item = Result<bytes::Bytes>> + Send + '_ {
    let chunk = io.chunk.max(1);
    stream::iter((start..end).step_by(chunk))
        .map(move |offset| {
            let len = (end - offset).min(chunk as u64) as usize;
            file.read_at(offset, len)
        })
        .buffered(io.read_depth.max(1))
}
