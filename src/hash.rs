//! Block hashing with blake3: the evidence on which a partial file is trusted
//! or rejected, and the content comparison behind `--checksum`.

use futures::stream::TryStreamExt;

use crate::endpoint::{read_ranges, FileHandle, Pipeline};
use crate::error::Result;

/// Hash of one block: blake3, 32 bytes.
pub type BlockHash = [u8; 32];

/// Hash of one block held in memory.
pub fn block_hash(data: &[u8]) -> BlockHash {
    *blake3::hash(data).as_bytes()
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
