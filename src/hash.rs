//! Content hashes: blake3 by default, SHA-256 when the other side can only
//! offer `sha256sum` (the shell tier). Both give 32 bytes; what matters is
//! that the two sides of a comparison use the same one.

use sha2::Digest;

use crate::local_io::{in_parts, read_ahead};

/// Hash of one block or file: 32 bytes.
pub(crate) type BlockHash = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum HashAlgo {
    #[default]
    Blake3,
    Sha256,
}

/// An incremental hasher of either algorithm.
pub(crate) enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub(crate) fn new(algo: HashAlgo) -> Hasher {
        match algo {
            HashAlgo::Blake3 => Hasher::Blake3(Box::default()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Sha256(h) => h.update(data),
        }
    }

    /// The hash so far, and the hasher reset for the next block.
    pub(crate) fn take(&mut self) -> BlockHash {
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

/// Hashes a stream of data in `block`-byte blocks, whatever pieces it
/// arrives in.
pub(crate) struct BlockHasher {
    hasher: Hasher,
    block: u64,
    in_block: u64,
    hashes: Vec<BlockHash>,
}

impl BlockHasher {
    pub(crate) fn new(algo: HashAlgo, block: u64) -> BlockHasher {
        BlockHasher {
            hasher: Hasher::new(algo),
            block: block.max(1),
            in_block: 0,
            hashes: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((self.block - self.in_block) as usize).min(data.len());
            self.hasher.update(&data[..take]);
            self.in_block += take as u64;
            data = &data[take..];
            if self.in_block == self.block {
                self.hashes.push(self.hasher.take());
                self.in_block = 0;
            }
        }
    }

    /// The hashes, the last one of a short block included.
    pub(crate) fn finish(mut self) -> Vec<BlockHash> {
        if self.in_block > 0 {
            self.hashes.push(self.hasher.take());
        }
        self.hashes
    }
}

/// Hashes `[start, end)` of a file on this machine in `block`-byte blocks
/// (shorter at end of file) with blocking reads ahead of the hashing: how
/// the helper and the local endpoint hash at disk speed.
/// Returns the file's size too.
pub(crate) fn hash_file_blocks(
    file: &std::fs::File,
    start: u64,
    end: u64,
    block: u64,
    algo: HashAlgo,
) -> std::io::Result<(u64, Vec<BlockHash>)> {
    let size = file.metadata()?.len();
    let parts = in_parts(start, end.min(size), block, |from, to| {
        let mut hasher = BlockHasher::new(algo, block);
        // A file that shrinks while read ends early: the hashes cover what
        // was there, and differ from the other side's.
        read_ahead(file, from, to, READ_BUFFER, |_, data| {
            hasher.update(data);
            Ok(())
        })?;
        Ok(hasher.finish())
    })?;
    Ok((size, parts.concat()))
}

const READ_BUFFER: usize = 1024 * 1024;

/// The size of a file on this machine and the hash of all of it.
pub(crate) fn hash_whole_file(
    file: &std::fs::File,
    algo: HashAlgo,
) -> std::io::Result<(u64, BlockHash)> {
    let (size, hashes) = hash_file_blocks(file, 0, u64::MAX, u64::MAX, algo)?;
    let hash = match hashes.first() {
        Some(hash) => *hash,
        None => block_hash(algo, &[]),
    };
    Ok((size, hash))
}

/// Hash of one block held in memory.
pub(crate) fn block_hash(algo: HashAlgo, data: &[u8]) -> BlockHash {
    let mut hasher = Hasher::new(algo);
    hasher.update(data);
    hasher.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big enough to be hashed in parts on several threads: the same
    /// hashes, in order, as one pass.
    #[test]
    fn hashing_in_parts_equals_one_pass() {
        let data = crate::delta::test_data(65 * 1024 * 1024 + 123, 11);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let block = 1024 * 1024;
        let (size, hashes) = hash_file_blocks(&file, 5, u64::MAX, block, HashAlgo::Blake3).unwrap();
        assert_eq!(size, data.len() as u64);
        let expected: Vec<_> = data[5..]
            .chunks(block as usize)
            .map(|c| block_hash(HashAlgo::Blake3, c))
            .collect();
        assert_eq!(hashes, expected);
        let (_, whole) = hash_whole_file(&file, HashAlgo::Sha256).unwrap();
        assert_eq!(whole, block_hash(HashAlgo::Sha256, &data));
    }

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
