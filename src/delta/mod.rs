//! Block-level delta: which ranges of the new file the old destination
//! already holds at the same offset, found hierarchically so that hash
//! traffic stays small for huge files with few changes.
//!
//! Both sides hash the file in 1 MiB blocks (32 bytes per MiB each way, a
//! 1 GiB file costs 32 KiB of hashes); only blocks that differ are hashed
//! again in 4 KiB blocks, so 8 scattered edits cost another 8 x 8 KiB. rsync
//! sends a signature for every block of the file instead. Content shifted by
//! an insertion is not found at its new offset here; that needs the rolling
//! match of a later stage.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::endpoint::Endpoint;
use crate::error::Result;

pub const COARSE: u64 = 1024 * 1024;
pub const FINE: u64 = 4096;
/// Differing coarse blocks refined at once.
const REFINE_IN_FLIGHT: usize = 8;

/// One run of the new file, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The old file has these bytes at the same offset.
    Reuse { offset: u64, len: u64 },
    /// These bytes must come from the source.
    Send { offset: u64, len: u64 },
}

#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub pieces: Vec<Piece>,
    pub reuse_bytes: u64,
    pub send_bytes: u64,
}

/// Compares `source` (of `src`, `new_size` bytes) with `old` (of `dst`,
/// `old_size` bytes) and returns the pieces of the new file.
pub async fn compare<S: Endpoint, D: Endpoint>(
    src: &S,
    source: &str,
    new_size: u64,
    dst: &D,
    old: &str,
    old_size: u64,
) -> Result<Delta> {
    let (ours, theirs) = tokio::join!(
        src.block_hashes(source, 0, new_size, COARSE),
        dst.block_hashes(old, 0, old_size, COARSE),
    );
    let (ours, theirs) = (ours?, theirs?);
    let overlap = new_size.min(old_size);
    let mut pieces: Vec<(usize, Vec<Piece>)> = Vec::new();
    let mut to_refine = Vec::new();
    for (i, hash) in ours.iter().enumerate() {
        let start = i as u64 * COARSE;
        let end = (start + COARSE).min(new_size);
        if theirs.get(i) == Some(hash) {
            pieces.push((
                i,
                vec![Piece::Reuse {
                    offset: start,
                    len: end - start,
                }],
            ));
        } else if start < overlap {
            to_refine.push((i, start, end));
        } else {
            pieces.push((
                i,
                vec![Piece::Send {
                    offset: start,
                    len: end - start,
                }],
            ));
        }
    }
    let refined: Vec<(usize, Vec<Piece>)> = stream::iter(to_refine)
        .map(|(i, start, end)| async move {
            let (ours, theirs) = tokio::join!(
                src.block_hashes(source, start, end, FINE),
                dst.block_hashes(old, start, end.min(overlap), FINE),
            );
            Ok::<_, crate::error::Error>((i, fine_pieces(start, end, &ours?, &theirs?)))
        })
        .buffer_unordered(REFINE_IN_FLIGHT)
        .try_collect()
        .await?;
    pieces.extend(refined);
    pieces.sort_by_key(|(i, _)| *i);
    Ok(merge(pieces.into_iter().flat_map(|(_, p)| p)))
}

fn fine_pieces(start: u64, end: u64, ours: &[[u8; 32]], theirs: &[[u8; 32]]) -> Vec<Piece> {
    ours.iter()
        .enumerate()
        .map(|(j, hash)| {
            let offset = start + j as u64 * FINE;
            let len = (end - offset).min(FINE);
            if theirs.get(j) == Some(hash) {
                Piece::Reuse { offset, len }
            } else {
                Piece::Send { offset, len }
            }
        })
        .collect()
}

/// Joins neighbouring pieces of the same kind and totals them.
fn merge(pieces: impl Iterator<Item = Piece>) -> Delta {
    let mut delta = Delta::default();
    for piece in pieces {
        match piece {
            Piece::Reuse { len, .. } => delta.reuse_bytes += len,
            Piece::Send { len, .. } => delta.send_bytes += len,
        }
        match (delta.pieces.last_mut(), piece) {
            (Some(Piece::Reuse { len, .. }), Piece::Reuse { len: more, .. })
            | (Some(Piece::Send { len, .. }), Piece::Send { len: more, .. }) => *len += more,
            _ => delta.pieces.push(piece),
        }
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::LocalFs;

    async fn delta_of(old: &[u8], new: &[u8]) -> Delta {
        let dir = tempfile::tempdir().unwrap();
        let (o, n) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&o, old).unwrap();
        std::fs::write(&n, new).unwrap();
        let (o, n) = (o.to_str().unwrap(), n.to_str().unwrap());
        compare(&LocalFs, n, new.len() as u64, &LocalFs, o, old.len() as u64)
            .await
            .unwrap()
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    #[tokio::test]
    async fn scattered_edits_send_only_their_fine_blocks() {
        let old = data(5 * COARSE as usize + 1000, 1);
        let mut new = old.clone();
        new[10] ^= 1; // block 0
        new[3 * COARSE as usize + 5000] ^= 1; // block 3, second fine block
        let delta = delta_of(&old, &new).await;
        assert_eq!(delta.send_bytes, 2 * FINE);
        assert_eq!(delta.reuse_bytes + delta.send_bytes, new.len() as u64);
        assert_eq!(
            delta.pieces[0],
            Piece::Send {
                offset: 0,
                len: FINE
            }
        );
    }

    #[tokio::test]
    async fn append_sends_the_tail_and_the_torn_last_block() {
        let old = data(2 * COARSE as usize + 100, 2);
        let mut new = old.clone();
        new.extend_from_slice(&[9u8; 70_000]);
        let delta = delta_of(&old, &new).await;
        // The old last fine block (100 bytes) grew, so it is resent whole.
        assert_eq!(delta.send_bytes, 70_000 + 100);
    }

    #[tokio::test]
    async fn truncation_reuses_everything_left() {
        let old = data(3 * COARSE as usize, 3);
        let new = old[..COARSE as usize + 8192].to_vec();
        let delta = delta_of(&old, &new).await;
        assert_eq!((delta.send_bytes, delta.reuse_bytes), (0, new.len() as u64));
    }

    #[tokio::test]
    async fn empty_and_disjoint_files() {
        assert_eq!(delta_of(&data(5000, 4), &[]).await.pieces, vec![]);
        let d = delta_of(&[], &data(5000, 4)).await;
        assert_eq!((d.send_bytes, d.reuse_bytes), (5000, 0));
        let d = delta_of(&data(9000, 5), &data(9000, 6)).await;
        assert_eq!((d.send_bytes, d.reuse_bytes), (9000, 0));
    }
}
