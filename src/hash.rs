//! Content hashes: blake3 by default, SHA-256 when the other side can only
//! offer `sha256sum` (the shell tier). Both give 32 bytes; what matters is
//! that the two sides of a comparison use the same one.

use futures::stream::TryStreamExt;
use sha2::Digest;

use crate::endpoint::{read_ranges, FileHandle, Pipeline};
use crate::error::Result;

/// Hash of one block or file: 32 bytes.
pub type BlockHash = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgo {
    #[default]
    Blake3,
    Sha256,
}

/// An incremental hasher of either algorithm.
pub enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Hasher {
        match algo {
            HashAlgo::Blake3 => Hasher::Blake3(Box::default()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The hash so far, and the hasher reset for the next block.
    pub fn take(&mut self) -> BlockHash {
        match self {
            Hasher::Blake3(h) => {
                let out = *h.finalize().as_bytes();
                h.reset();
                out
            }
            Hasher::Sha256(h) => h.finalize_reset().into(),
        }
    }
}

/// Hash of one block held in memory.
pub fn block_hash(algo: HashAlgo, data: &[u8]) -> BlockHash {
    let mut hasher = Hasher::new(algo);
    hasher.update(data);
    hasher.take()
}

/// Whole-content hash of `[0, len)`.
pub async fn file_hash<F: FileHandle>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_match_their_references() {
        assert_eq!(
            block_hash(HashAlgo::Blake3, b"x"),
            *blake3::hash(b"x").as_bytes()
        );
        assert_eq!(
            hex::encode(block_hash(HashAlgo::Sha256, b"x")),
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        let mut h = Hasher::new(HashAlgo::Sha256);
        h.update(b"x");
        let first = h.take();
        h.update(b"x");
        assert_eq!(h.take(), first, "take() resets the hasher");
    }
}
