//! Finds the pieces of a new file that the old destination already holds,
//! by asking both endpoints for block hashes (and, where enough would be
//! sent, for a rolling signature scan next to the new data): the I/O half of
//! a delta. The decisions on hashes are `crate::delta`'s.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::delta::{
    fine_pieces, merge, rolling, signature_block, tiles, Delta, Piece, COARSE, FINE,
};
use crate::endpoint::{hashes, Endpoint};
use crate::error::{Error, Result};
use crate::hash::HashAlgo;

/// Differing coarse blocks refined at once.
const REFINE_IN_FLIGHT: usize = 8;
/// Past `REFINE_ALWAYS` differing blocks (their fine hashes cost 128 KiB),
/// differing blocks are refined only while they are at most one in this many
/// of the blocks both files have.
const REFINE_WHEN_AT_MOST: usize = 4;
const REFINE_ALWAYS: usize = 16;

/// Compares `source` (of `src`, `new_size` bytes) with `old` (of `dst`,
/// `old_size` bytes) and returns the pieces of the new file.
pub(crate) async fn compare<S: Endpoint, D: Endpoint>(
    src: &S,
    source: &str,
    new_size: u64,
    dst: &D,
    old: &str,
    old_size: u64,
    algo: HashAlgo,
) -> Result<Delta> {
    let (ours, theirs) = tokio::join!(
        hashes::block_hashes(src, source, 0, new_size, COARSE, algo),
        hashes::block_hashes(dst, old, 0, old_size, COARSE, algo),
    );
    let (ours, theirs) = (ours?, theirs?);
    let overlap = new_size.min(old_size);
    let mut pieces: Vec<(usize, Vec<Piece>)> = Vec::new();
    let mut to_refine = Vec::new();
    for (i, hash) in ours.iter().enumerate() {
        let start = i as u64 * COARSE;
        let end = (start + COARSE).min(new_size);
        let len = end - start;
        if theirs.get(i) == Some(hash) {
            let reuse = Piece::Reuse {
                offset: start,
                from: start,
                len,
            };
            pieces.push((i, vec![reuse]));
            continue;
        }
        if start < overlap {
            to_refine.push((i, start, end));
        }
        pieces.push((i, vec![Piece::Send { offset: start, len }]));
    }
    // When much of the old file differs, content most likely moved or was
    // rewritten wholesale: 4 KiB hashes would cost 8 KiB per MiB each way
    // and find little (measured: 2 MiB of hashes for a 100-byte insertion
    // into 256 MiB). The coarse pieces stand; the rolling search may still
    // find moved blocks in them.
    let overlap_blocks = overlap.div_ceil(COARSE) as usize;
    if to_refine.len() > REFINE_ALWAYS && to_refine.len() * REFINE_WHEN_AT_MOST > overlap_blocks {
        let mut delta = merge(pieces.into_iter().flat_map(|(_, p)| p));
        delta.source_hashes = ours;
        return Ok(delta);
    }
    let refining: std::collections::HashSet<usize> = to_refine.iter().map(|(i, _, _)| *i).collect();
    pieces.retain(|(i, _)| !refining.contains(i));
    let refined: Vec<(usize, Vec<Piece>)> = stream::iter(to_refine)
        .map(|(i, start, end)| async move {
            let (ours, theirs) = tokio::join!(
                hashes::block_hashes(src, source, start, end, FINE, algo),
                hashes::block_hashes(dst, old, start, end.min(overlap), FINE, algo),
            );
            Ok::<_, Error>((i, fine_pieces(start, end, &ours?, &theirs?)))
        })
        .buffer_unordered(REFINE_IN_FLIGHT)
        .try_collect()
        .await?;
    pieces.extend(refined);
    pieces.sort_by_key(|(i, _)| *i);
    let mut delta = merge(pieces.into_iter().flat_map(|(_, p)| p));
    delta.source_hashes = ours;
    Ok(delta)
}

/// Looks for content that moved: the parts of `delta` still to be sent that
/// lie within the old file's length are scanned with a rolling checksum for
/// any block of the old file, wherever it was. The scan runs next to the new
/// data (here for a local source, in the helper for a remote one), against
/// the old file's signature (20 bytes per block), and only when enough would
/// be sent to pay for that signature.
pub(crate) async fn find_moved<S: Endpoint, D: Endpoint>(
    src: &S,
    source: &str,
    dst: &D,
    old: &str,
    old_size: u64,
    delta: Delta,
) -> Result<Delta> {
    let block = signature_block(old_size);
    let signature_bytes = old_size / block as u64 * (4 + rolling::STRONG_LEN as u64);
    let in_old_range: u64 = delta
        .pieces
        .iter()
        .map(|p| match *p {
            Piece::Send { offset, len } if offset < old_size => len.min(old_size - offset),
            _ => 0,
        })
        .sum();
    if in_old_range < COARSE.max(4 * signature_bytes) {
        return Ok(delta);
    }
    let since = std::time::Instant::now();
    let Some(signature) = hashes::signature(dst, old, block).await? else {
        return Ok(delta);
    };
    let regions: Vec<(u64, u64)> = delta
        .pieces
        .iter()
        .filter_map(|p| match *p {
            Piece::Send { offset, len } if len >= block as u64 => Some((offset, offset + len)),
            _ => None,
        })
        .collect();
    let signed_ms = since.elapsed().as_millis();
    let Some(found) = hashes::find_blocks(src, source, &regions, &signature).await? else {
        return Ok(delta);
    };
    tracing::debug!(
        signed_ms,
        scanned_ms = since.elapsed().as_millis() - signed_ms,
        "{source}: took the old file's signature and scanned for its blocks"
    );
    if !tiles(&found, &regions, old_size) {
        tracing::warn!(
            "{source}: the scan for moved blocks returned an inconsistent answer; ignoring it"
        );
        return Ok(delta);
    }
    let mut found = found.into_iter().peekable();
    let mut pieces = Vec::new();
    let source_hashes = delta.source_hashes;
    for piece in delta.pieces {
        match piece {
            Piece::Send { offset, len } if len >= block as u64 => {
                while let Some(p) = found.next_if(|p| p.offset() < offset + len) {
                    pieces.push(p);
                }
            }
            other => pieces.push(other),
        }
    }
    let mut moved = merge(pieces.into_iter());
    moved.source_hashes = source_hashes;
    Ok(moved)
}
