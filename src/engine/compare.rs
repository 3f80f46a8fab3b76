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

/// Past `REFINE_ALWAYS` differing blocks (their fine hashes cost 128 KiB),
/// differing blocks are refined only while they are at most one in this many
/// of the blocks both files have.
const REFINE_WHEN_AT_MOST: usize = 4;
const REFINE_ALWAYS: usize = 16;

/// Spans hashed at once: each side works on the next while the last
/// answer travels.
const SPANS_IN_FLIGHT: usize = 2;

/// Compares `source` (of `src`, `new_size` bytes) with `old` (of `dst`,
/// `old_size` bytes) and returns the pieces of the new file. `on_hashed`
/// hears how many more bytes of the new file have been hashed on both
/// sides.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn compare<S: Endpoint, D: Endpoint>(
    src: &S,
    source: &str,
    new_size: u64,
    dst: &D,
    old: &str,
    old_size: u64,
    algo: HashAlgo,
    on_hashed: &(dyn Fn(u64) + Sync),
) -> Result<Delta> {
    // Bytes hashed per request on each side: a big file's hashing shows
    // progress every so often instead of one long silence.
    let span = hash_span(src, dst);
    let both = |start: u64| async move {
        let (ours, theirs) = tokio::join!(
            span_hashes(src, source, start, span, new_size, algo),
            span_hashes(dst, old, start, span, old_size, algo),
        );
        on_hashed(new_size.saturating_sub(start).min(span));
        Ok::<_, Error>((ours?, theirs?))
    };
    let spans = (0..new_size.max(old_size)).step_by(span as usize);
    let (ours, theirs) = stream::iter(spans)
        .map(both)
        .buffered(SPANS_IN_FLIGHT)
        .try_fold(
            (Vec::new(), Vec::new()),
            |(mut ours, mut theirs), (o, t)| {
                ours.extend(o);
                theirs.extend(t);
                futures::future::ready(Ok((ours, theirs)))
            },
        )
        .await?;
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
    // Every differing block's fine hashes in one request per side where
    // the tier can (the shell's: one process for all).
    let ours_ranges: Vec<(u64, u64)> = to_refine.iter().map(|&(_, s, e)| (s, e)).collect();
    let theirs_ranges: Vec<(u64, u64)> = to_refine
        .iter()
        .map(|&(_, s, e)| (s, e.min(overlap)))
        .collect();
    let (ours_fine, theirs_fine) = tokio::join!(
        hashes::ranges_block_hashes(src, source, &ours_ranges, FINE, algo),
        hashes::ranges_block_hashes(dst, old, &theirs_ranges, FINE, algo),
    );
    let (ours_fine, theirs_fine) = (ours_fine?, theirs_fine?);
    let refined = to_refine
        .iter()
        .zip(ours_fine.iter().zip(theirs_fine.iter()))
        .map(|(&(i, start, end), (ours, theirs))| (i, fine_pieces(start, end, ours, theirs)));
    pieces.extend(refined);
    pieces.sort_by_key(|(i, _)| *i);
    let mut delta = merge(pieces.into_iter().flat_map(|(_, p)| p));
    delta.source_hashes = ours;
    Ok(delta)
}

/// The larger of the two sides' spans, whole `COARSE` blocks.
fn hash_span<S: Endpoint, D: Endpoint>(src: &S, dst: &D) -> u64 {
    let span = src.hashes().span().max(dst.hashes().span());
    (span / COARSE).max(1) * COARSE
}

/// The `COARSE` block hashes of the `span` bytes of `path` (of `size`
/// bytes) that begin at `start`: none past its end.
async fn span_hashes<E: Endpoint>(
    endpoint: &E,
    path: &str,
    start: u64,
    span: u64,
    size: u64,
    algo: HashAlgo,
) -> Result<Vec<crate::hash::BlockHash>> {
    if start >= size {
        return Ok(Vec::new());
    }
    let end = (start + span).min(size);
    hashes::block_hashes(endpoint, path, start, end, COARSE, algo).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::LocalFs;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A file of more than one span: the hashes of the spans join up (the
    /// change in the second span is found, the rest reused), and every
    /// byte of the new file is counted as hashed once.
    #[tokio::test]
    async fn spans_join_up_and_count_every_byte() {
        let span = hash_span(&LocalFs::default(), &LocalFs::default());
        let old = crate::delta::test_data((span + COARSE) as usize, 3);
        let mut new = old.clone();
        new.extend_from_slice(&crate::delta::test_data(2 * COARSE as usize, 4));
        let changed = (span + COARSE / 2) as usize;
        new[changed] ^= 0xff;
        let dir = tempfile::tempdir().unwrap();
        let (o, n) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&o, &old).unwrap();
        std::fs::write(&n, &new).unwrap();
        let (o, n) = (o.to_str().unwrap(), n.to_str().unwrap());
        let hashed = AtomicU64::new(0);
        let count = |bytes| {
            hashed.fetch_add(bytes, Ordering::Relaxed);
        };
        let (local, len) = (LocalFs::default(), new.len() as u64);
        let delta = compare(
            &local,
            n,
            len,
            &local,
            o,
            old.len() as u64,
            HashAlgo::Blake3,
            &count,
        )
        .await
        .unwrap();
        assert_eq!(hashed.load(Ordering::Relaxed), len);
        assert_eq!(delta.source_hashes.len() as u64, len.div_ceil(COARSE));
        // One 4 KiB block changed, two new blocks at the end.
        assert_eq!(delta.send_bytes, FINE + 2 * COARSE);
        assert_eq!(delta.reuse_bytes, len - FINE - 2 * COARSE);
    }
}
