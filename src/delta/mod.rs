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

pub(crate) mod rolling;

use crate::hash::BlockHash;

pub(crate) const COARSE: u64 = 1024 * 1024;
pub(crate) const FINE: u64 = 4096;
/// One run of the new file, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// The old file has these bytes, at `from`.
    Reuse { offset: u64, from: u64, len: u64 },
    /// These bytes must come from the source.
    Send { offset: u64, len: u64 },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    pub pieces: Vec<Piece>,
    pub reuse_bytes: u64,
    pub send_bytes: u64,
    /// The source's hash of each `COARSE` block, as compared: what the
    /// assembled file must hash to, end to end.
    pub source_hashes: Vec<BlockHash>,
}

impl Delta {
    /// Whether the old file, `old_size` bytes, already is the new one,
    /// `size` bytes: every byte reused from where it is.
    pub(crate) fn is_identity(&self, old_size: u64, size: u64) -> bool {
        old_size == size
            && self.send_bytes == 0
            && self.reuse_bytes == size
            && self
                .pieces
                .iter()
                .all(|piece| matches!(*piece, Piece::Reuse { offset, from, .. } if offset == from))
    }
}

pub(crate) fn fine_pieces(
    start: u64,
    end: u64,
    ours: &[[u8; 32]],
    theirs: &[[u8; 32]],
) -> Vec<Piece> {
    ours.iter()
        .enumerate()
        .map(|(j, hash)| {
            let offset = start + j as u64 * FINE;
            let len = (end - offset).min(FINE);
            if theirs.get(j) == Some(hash) {
                Piece::Reuse {
                    offset,
                    from: offset,
                    len,
                }
            } else {
                Piece::Send { offset, len }
            }
        })
        .collect()
}

impl Piece {
    /// Where the piece starts in the new file.
    pub(crate) fn offset(&self) -> u64 {
        match *self {
            Piece::Reuse { offset, .. } | Piece::Send { offset, .. } => offset,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match *self {
            Piece::Reuse { len, .. } | Piece::Send { len, .. } => len,
        }
    }
}

/// Smallest block of a rolling signature; larger old files get larger
/// blocks so the signature stays near 20 bytes per 64 KiB at most.
const SIGNATURE_BLOCK: u64 = 64 * 1024;
/// Read and rescanned at once when looking for shifted blocks: a segment
/// that stays in the CPU's cache scans 256 MiB in 54 ms here, 32 MiB ones in
/// 98.
const SCAN_SEGMENT: usize = 2 * 1024 * 1024;

pub(crate) fn signature_block(old_size: u64) -> u32 {
    SIGNATURE_BLOCK.max((old_size / 262_144).next_power_of_two()) as u32
}

/// Whether `pieces` cover `regions` exactly, in order, and reuse only bytes
/// the old file has: a helper's answer is checked before it shapes a file.
pub(crate) fn tiles(pieces: &[Piece], regions: &[(u64, u64)], old_size: u64) -> bool {
    let mut pieces = pieces.iter();
    regions.iter().all(|&(start, end)| {
        let mut at = start;
        while at < end {
            let Some(piece) = pieces.next() else {
                return false;
            };
            let ok = match *piece {
                Piece::Send { offset, len } => offset == at && len > 0,
                Piece::Reuse { offset, from, len } => {
                    offset == at && len > 0 && from.checked_add(len).is_some_and(|e| e <= old_size)
                }
            };
            if !ok {
                return false;
            }
            at += piece.len();
        }
        at == end
    }) && pieces.next().is_none()
}

/// Bytes read at once for a signature: whole blocks.
const SIGN_READ: usize = 1024 * 1024;

/// Rolling signature of the full `block`-byte blocks of a file of `size`
/// bytes, read ahead and, when large, signed in parts on several threads:
/// for the helper and the local endpoint, which sign next to the data.
pub(crate) fn sign_file_blocking(
    file: &std::fs::File,
    size: u64,
    block: u32,
) -> std::io::Result<rolling::Signature> {
    use crate::local_io::{in_parts, read_ahead};
    use std::io;
    if block == 0 {
        return Err(io::Error::other("block size 0"));
    }
    let full_blocks = size - size % block as u64;
    let chunk = block as usize * (SIGN_READ / block as usize).max(1);
    let parts = in_parts(0, full_blocks, block as u64, |from, to| {
        let mut part = rolling::Signature {
            block,
            ..rolling::Signature::default()
        };
        let mut signed = 0;
        read_ahead(file, from, to, chunk, |_, data| {
            data.chunks_exact(block as usize).for_each(|b| part.push(b));
            signed += data.len() as u64;
            Ok(())
        })?;
        if signed < to - from {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        Ok(part)
    })?;
    let mut signature = rolling::Signature {
        block,
        ..rolling::Signature::default()
    };
    for part in parts {
        signature.weak.extend(part.weak);
        signature.strong.extend(part.strong);
    }
    Ok(signature)
}

/// Splits regions of a file into blocks of the old file found in them and
/// bytes to send, reading ahead of the scan in segments: for the helper and
/// the local endpoint, which scan next to the data.
pub(crate) fn scan_regions_blocking(
    file: &std::fs::File,
    regions: &[(u64, u64)],
    signature: &rolling::Signature,
) -> std::io::Result<Vec<Piece>> {
    let segment = SCAN_SEGMENT.max(4 * signature.block as usize);
    scan_in_segments(file, regions, signature, segment)
}

fn scan_in_segments(
    file: &std::fs::File,
    regions: &[(u64, u64)],
    signature: &rolling::Signature,
    segment: usize,
) -> std::io::Result<Vec<Piece>> {
    let matcher = rolling::Matcher::new(signature);
    let mut pieces = Vec::new();
    for &(start, end) in regions {
        pieces.extend(scan_range(file, &matcher, start, end, segment)?);
    }
    Ok(pieces)
}

/// Scans `[start, end)` of `file`, reading ahead in segments.
fn scan_range(
    file: &std::fs::File,
    matcher: &rolling::Matcher<'_>,
    start: u64,
    end: u64,
    segment: usize,
) -> std::io::Result<Vec<Piece>> {
    let block = matcher.block() as usize;
    let mut pieces = Vec::new();
    // `carry` holds the undecided bytes (less than a block) at `pos`: they
    // are scanned again joined to the next read.
    let (mut pos, mut carry) = (start, Vec::new());
    let each = |at: u64, data: &[u8]| {
        let last = at + data.len() as u64 == end;
        let mut rest = data;
        if !carry.is_empty() {
            let take = data.len().min(block);
            let mut joined = std::mem::take(&mut carry);
            let carried = joined.len();
            joined.extend_from_slice(&data[..take]);
            let last = last && take == data.len();
            let decided = scan_segment(matcher, &joined, pos, last, &mut pieces);
            pos += decided;
            // A full join decides past the carried bytes; a short one (end
            // of the range) decides all of it.
            rest = &data[decided as usize - carried..];
        }
        let decided = scan_segment(matcher, rest, pos, last, &mut pieces);
        pos += decided;
        carry = rest[decided as usize..].to_vec();
        Ok(())
    };
    crate::local_io::read_ahead(file, start, end, segment, each)?;
    if pos < end {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file shrank while it was scanned",
        ));
    }
    Ok(pieces)
}

/// Scans one segment read at `pos`, appends its pieces, and returns how far
/// it decided (the rest is rescanned with what follows).
fn scan_segment(
    matcher: &rolling::Matcher<'_>,
    data: &[u8],
    pos: u64,
    last: bool,
    pieces: &mut Vec<Piece>,
) -> u64 {
    let (found, decided) = matcher.scan(data, last);
    // Nothing decided (only possible for data shorter than a block): all of
    // it goes as it is.
    let decided = if decided == 0 { data.len() } else { decided } as u64;
    let block = matcher.block() as u64;
    let mut cursor = 0u64;
    for f in found {
        let at = f.at as u64;
        if at > cursor {
            pieces.push(Piece::Send {
                offset: pos + cursor,
                len: at - cursor,
            });
        }
        pieces.push(Piece::Reuse {
            offset: pos + at,
            from: f.old_offset,
            len: block,
        });
        cursor = at + block;
    }
    if decided > cursor {
        pieces.push(Piece::Send {
            offset: pos + cursor,
            len: decided - cursor,
        });
    }
    decided
}

/// Joins neighbouring pieces of the same kind and totals them.
pub(crate) fn merge(pieces: impl Iterator<Item = Piece>) -> Delta {
    let mut delta = Delta::default();
    for piece in pieces {
        match piece {
            Piece::Reuse { len, .. } => delta.reuse_bytes += len,
            Piece::Send { len, .. } => delta.send_bytes += len,
        }
        match (delta.pieces.last_mut(), piece) {
            (
                Some(Piece::Reuse { from, len, .. }),
                Piece::Reuse {
                    from: next,
                    len: more,
                    ..
                },
            ) if *from + *len == next => *len += more,
            (Some(Piece::Send { len, .. }), Piece::Send { len: more, .. }) => *len += more,
            _ => delta.pieces.push(piece),
        }
    }
    delta
}

/// Pseudo-random bytes without period (xorshift), so that no two blocks
/// of a test file are alike by accident.
#[cfg(test)]
pub(crate) fn test_data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::LocalFs;
    use crate::engine::compare::{compare, find_moved};
    use crate::hash::HashAlgo;

    async fn delta_of(old: &[u8], new: &[u8]) -> Delta {
        let dir = tempfile::tempdir().unwrap();
        let (o, n) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&o, old).unwrap();
        std::fs::write(&n, new).unwrap();
        let (o, n) = (o.to_str().unwrap(), n.to_str().unwrap());
        compare(
            &LocalFs::default(),
            n,
            new.len() as u64,
            &LocalFs::default(),
            o,
            old.len() as u64,
            HashAlgo::Blake3,
            &|_| {},
        )
        .await
        .unwrap()
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        test_data(len, seed as u32)
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

    /// Only a delta that reuses every byte from where it already is says
    /// the old file is the new one: not a prefix, not moved blocks.
    #[tokio::test]
    async fn only_an_unchanged_file_is_an_identity() {
        let old = data(3 * COARSE as usize + 10, 3);
        let size = old.len() as u64;
        assert!(delta_of(&old, &old).await.is_identity(size, size));
        let longer = [old.as_slice(), b"x"].concat();
        let grown = delta_of(&old, &longer).await;
        assert!(!grown.is_identity(size, size + 1));
        let mut edited = old.clone();
        edited[COARSE as usize] ^= 1;
        assert!(!delta_of(&old, &edited).await.is_identity(size, size));
        let moved = Delta {
            pieces: vec![Piece::Reuse {
                offset: 0,
                from: 1,
                len: size,
            }],
            reuse_bytes: size,
            ..Delta::default()
        };
        assert!(!moved.is_identity(size, size));
        assert!(!delta_of(&old, &old).await.is_identity(size + 1, size));
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
    async fn moved_content_is_found_at_its_new_offset() {
        let dir = tempfile::tempdir().unwrap();
        let old = data(3 * COARSE as usize + 1000, 7);
        let mut new = vec![0xAB; 100];
        new.extend_from_slice(&old);
        let (o, n) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&o, &old).unwrap();
        std::fs::write(&n, &new).unwrap();
        let (o, n) = (o.to_str().unwrap(), n.to_str().unwrap());
        let (new_len, old_len) = (new.len() as u64, old.len() as u64);
        let aligned = compare(
            &LocalFs::default(),
            n,
            new_len,
            &LocalFs::default(),
            o,
            old_len,
            HashAlgo::Sha256,
            &|_| {},
        )
        .await
        .unwrap();
        assert!(
            aligned.send_bytes > 3 * COARSE,
            "nothing lines up after an insertion"
        );
        let moved = find_moved(
            &LocalFs::default(),
            n,
            &LocalFs::default(),
            o,
            old_len,
            aligned,
        )
        .await
        .unwrap();
        // The 100 new bytes, and the old file's last 1000 bytes, which are no
        // full block of the signature.
        assert_eq!(moved.send_bytes, 100 + 1000);
        assert_eq!(moved.reuse_bytes + moved.send_bytes, new_len);
        assert_eq!(
            moved.pieces[1],
            Piece::Reuse {
                offset: 100,
                from: 0,
                len: 3 * COARSE
            }
        );
    }

    #[test]
    fn scanning_in_segments_finds_what_one_pass_finds() {
        let block = 4096u32;
        let old = data(40 * block as usize, 8);
        let signature = rolling::Signature::of(&old, block);
        // Old blocks out of order, at odd offsets, with new bytes between.
        let mut new = data(777, 9);
        new.extend_from_slice(&old[20 * 4096..31 * 4096 + 5]);
        new.extend_from_slice(&data(5000, 10));
        new.extend_from_slice(&old[..12 * 4096]);
        new.extend_from_slice(&old[33 * 4096 + 1..]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        std::fs::write(&path, &new).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let end = new.len() as u64;
        let mut whole = Vec::new();
        let matcher = rolling::Matcher::new(&signature);
        scan_segment(&matcher, &new[100..], 100, true, &mut whole);
        let whole = merge(whole.into_iter()).pieces;
        for segment in [4 * 4096, 4 * 4096 + 1, 5 * 4096 - 1, 1 << 20] {
            let pieces = scan_in_segments(&file, &[(100, end)], &signature, segment).unwrap();
            let merged = merge(pieces.into_iter()).pieces;
            assert_eq!(merged, whole, "segments of {segment} bytes");
        }
        let reused: u64 = whole
            .iter()
            .filter(|p| matches!(p, Piece::Reuse { .. }))
            .map(|p| p.len())
            .sum();
        // 11 blocks, 12 blocks, and the 6 whole blocks after the 1-byte cut.
        assert_eq!(reused, 29 * 4096);
        assert!(tiles(&whole, &[(100, end)], old.len() as u64));
        // A region past the end of the file is an error, not a short answer.
        let past = scan_in_segments(&file, &[(0, end + 10)], &signature, 4 * 4096);
        assert!(past.is_err());
    }

    #[test]
    fn a_helper_answer_must_tile_the_regions() {
        let regions = [(0, 100), (200, 300)];
        let good = [
            Piece::Send { offset: 0, len: 40 },
            Piece::Reuse {
                offset: 40,
                from: 960,
                len: 60,
            },
            Piece::Send {
                offset: 200,
                len: 100,
            },
        ];
        assert!(tiles(&good, &regions, 1020));
        // Reuses bytes past the old file's end.
        assert!(!tiles(&good, &regions, 1000));
        // A hole, an overlap, a missing region, an extra piece.
        assert!(!tiles(&good[1..], &regions, 1020));
        let overlap = [
            good[0],
            Piece::Send {
                offset: 30,
                len: 70,
            },
            good[2],
        ];
        assert!(!tiles(&overlap, &regions, 1020));
        assert!(!tiles(&good[..2], &regions, 1020));
        let extra = [
            good[0],
            good[1],
            good[2],
            Piece::Send {
                offset: 300,
                len: 1,
            },
        ];
        assert!(!tiles(&extra, &regions, 1020));
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
