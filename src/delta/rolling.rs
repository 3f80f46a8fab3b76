//! Matching shifted content: the old file is cut into blocks, each described
//! by a weak rolling checksum (rsync's) and a 16-byte blake3 prefix; the new
//! data is scanned byte by byte with the rolling checksum, and a block is
//! taken as found only when its strong hash matches too. Whatever is found
//! is copied from the old file; only the rest is sent.

use std::collections::HashMap;

/// Bytes of blake3 kept per block: 128 bits, so an accidental match is
/// out of reach, and the end-to-end check stands behind it anyway.
pub(crate) const STRONG_LEN: usize = 16;

/// Per-block checksums of an old file (full blocks only: a short last block
/// cannot be found at another offset, and is sent when it differs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Signature {
    pub block: u32,
    pub weak: Vec<u32>,
    pub strong: Vec<[u8; STRONG_LEN]>,
}

/// rsync's rolling checksum: two 16-bit sums that slide in O(1).
#[derive(Debug, Clone, Copy)]
struct Rolling {
    a: u32,
    b: u32,
    len: u32,
}

impl Rolling {
    fn new(window: &[u8]) -> Rolling {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, as just checked.
            return unsafe { Rolling::new_avx2(window) };
        }
        Rolling::new_portable(window)
    }

    /// The same code compiled for AVX2: three times the speed of the SSE2
    /// baseline on the signature of a big file.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn new_avx2(window: &[u8]) -> Rolling {
        Rolling::new_portable(window)
    }

    #[inline(always)]
    fn new_portable(window: &[u8]) -> Rolling {
        let len = window.len() as u32;
        // Byte i weighs len - i in `b`. With i = LANE * k + j over K whole
        // lanes, per column j: S_j = sum of x, P_j = sum of (K - k) x (a
        // running sum of S), so the weight's k part is K S_j - P_j. Only
        // additions of whole lanes: vector code, whatever the CPU (the
        // signature of a big file is this loop over all of it). Everything
        // is modulo 2^32, as the checksum itself.
        let mut lanes = window.chunks_exact(LANE);
        let (mut sums, mut running) = ([0u32; LANE], [0u32; LANE]);
        let mut whole = 0u32;
        for lane in &mut lanes {
            for j in 0..LANE {
                sums[j] = sums[j].wrapping_add(lane[j] as u32);
                running[j] = running[j].wrapping_add(sums[j]);
            }
            whole += 1;
        }
        let (mut a, mut b) = (0u32, 0u32);
        for j in 0..LANE {
            a = a.wrapping_add(sums[j]);
            let k_part = whole.wrapping_mul(sums[j]).wrapping_sub(running[j]);
            b = b
                .wrapping_add((len - j as u32).wrapping_mul(sums[j]))
                .wrapping_sub((LANE as u32).wrapping_mul(k_part));
        }
        let base = whole * LANE as u32;
        for (j, &x) in lanes.remainder().iter().enumerate() {
            a = a.wrapping_add(x as u32);
            b = b.wrapping_add((len - base - j as u32).wrapping_mul(x as u32));
        }
        Rolling { a, b, len }
    }

    fn roll(&mut self, out: u8, inn: u8) {
        self.a = self.a.wrapping_sub(out as u32).wrapping_add(inn as u32);
        self.b = self
            .b
            .wrapping_sub(self.len.wrapping_mul(out as u32))
            .wrapping_add(self.a);
    }

    fn value(&self) -> u32 {
        (self.a & 0xffff) | (self.b << 16)
    }
}

/// Bytes summed side by side when a window's checksum is computed afresh.
const LANE: usize = 32;

pub(crate) fn weak(block: &[u8]) -> u32 {
    Rolling::new(block).value()
}

pub(crate) fn strong(block: &[u8]) -> [u8; STRONG_LEN] {
    let mut out = [0u8; STRONG_LEN];
    out.copy_from_slice(&blake3::hash(block).as_bytes()[..STRONG_LEN]);
    out
}

impl Signature {
    /// Signature of `data` (a whole old file) in `block`-byte blocks.
    #[cfg(test)]
    pub(crate) fn of(data: &[u8], block: u32) -> Signature {
        let mut sig = Signature {
            block,
            ..Signature::default()
        };
        for chunk in data.chunks_exact(block as usize) {
            sig.push(chunk);
        }
        sig
    }

    pub(crate) fn push(&mut self, block: &[u8]) {
        self.weak.push(weak(block));
        self.strong.push(strong(block));
    }
}

/// A block of the old file found in the new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// Offset in the scanned data.
    pub at: usize,
    /// Offset of the block in the old file.
    pub old_offset: u64,
}

/// Index of a signature for scanning: a bit filter that rejects most weak
/// checksums in a couple of instructions, then a map to candidate blocks.
pub(crate) struct Matcher<'a> {
    sig: &'a Signature,
    filter: Vec<u64>,
    blocks: HashMap<u32, Vec<u32>>,
}

const FILTER_BITS: u32 = 20;

fn filter_slot(weak: u32) -> (usize, u64) {
    let h = (weak ^ (weak >> FILTER_BITS)) & ((1 << FILTER_BITS) - 1);
    ((h >> 6) as usize, 1u64 << (h & 63))
}

impl<'a> Matcher<'a> {
    pub(crate) fn new(sig: &'a Signature) -> Matcher<'a> {
        let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)];
        let mut blocks: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, &w) in sig.weak.iter().enumerate() {
            let (word, bit) = filter_slot(w);
            filter[word] |= bit;
            blocks.entry(w).or_default().push(i as u32);
        }
        Matcher {
            sig,
            filter,
            blocks,
        }
    }

    pub(crate) fn block(&self) -> u32 {
        self.sig.block
    }

    /// Scans `data` for old blocks. Returns what was found, in order and not
    /// overlapping, and how many bytes of `data` were decided: the rest
    /// (less than a block, unless `last`) must be scanned again with what
    /// follows it.
    pub(crate) fn scan(&self, data: &[u8], last: bool) -> (Vec<Found>, usize) {
        let block = self.sig.block as usize;
        let mut found = Vec::new();
        if block == 0 || self.sig.weak.is_empty() || data.len() < block {
            return (found, if last { data.len() } else { 0 });
        }
        let mut at = 0;
        let mut rolling = Rolling::new(&data[..block]);
        loop {
            if let Some(old) = self.lookup(rolling.value(), &data[at..at + block]) {
                let mut old = old as usize;
                found.push(Found {
                    at,
                    old_offset: old as u64 * block as u64,
                });
                at += block;
                // Moved content mostly moved in runs: try the old file's
                // next block here before rolling again.
                while at + block <= data.len()
                    && self.sig.strong.get(old + 1) == Some(&strong(&data[at..at + block]))
                {
                    old += 1;
                    found.push(Found {
                        at,
                        old_offset: old as u64 * block as u64,
                    });
                    at += block;
                }
                if at + block > data.len() {
                    break;
                }
                rolling = Rolling::new(&data[at..at + block]);
                continue;
            }
            if at + block >= data.len() {
                at += 1;
                break;
            }
            rolling.roll(data[at], data[at + block]);
            at += 1;
        }
        let decided = if last { data.len() } else { at.min(data.len()) };
        (found, decided)
    }

    fn lookup(&self, weak: u32, window: &[u8]) -> Option<u32> {
        let (word, bit) = filter_slot(weak);
        if self.filter[word] & bit == 0 {
            return None;
        }
        let candidates = self.blocks.get(&weak)?;
        let hash = strong(window);
        candidates
            .iter()
            .copied()
            .find(|&i| self.sig.strong[i as usize] == hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::delta::test_data as data;

    #[test]
    fn rolling_equals_fresh_checksum_at_every_offset() {
        let d = data(5000, 1);
        let mut r = Rolling::new(&d[..700]);
        for i in 1..=(d.len() - 700) {
            r.roll(d[i - 1], d[i + 699]);
            assert_eq!(r.value(), weak(&d[i..i + 700]), "offset {i}");
        }
    }

    #[test]
    fn the_lane_sums_equal_the_plain_definition() {
        let mut d = data(70_000, 9);
        // Past 2^32 in every sum: the wrapping must agree too.
        d.extend(std::iter::repeat_n(0xff, 8 << 20));
        for len in [0, 1, 31, 32, 33, 255, 4096, 69_999, d.len()] {
            let (mut a, mut b) = (0u32, 0u32);
            for (i, &x) in d[..len].iter().enumerate() {
                a = a.wrapping_add(x as u32);
                b = b.wrapping_add((len as u32 - i as u32).wrapping_mul(x as u32));
            }
            let fast = Rolling::new(&d[..len]);
            assert_eq!((fast.a, fast.b), (a, b), "length {len}");
            let portable = Rolling::new_portable(&d[..len]);
            assert_eq!((portable.a, portable.b), (a, b), "length {len}");
        }
    }

    #[test]
    fn finds_blocks_after_an_insertion_at_the_front() {
        let old = data(64 * 1024, 2);
        let sig = Signature::of(&old, 4096);
        let mut new = b"a header of 23 bytes...".to_vec();
        new.extend_from_slice(&old);
        let (found, decided) = Matcher::new(&sig).scan(&new, true);
        assert_eq!(decided, new.len());
        assert_eq!(found.len(), 16);
        assert_eq!(
            found[0],
            Found {
                at: 23,
                old_offset: 0
            }
        );
        assert_eq!(
            found[15],
            Found {
                at: 23 + 15 * 4096,
                old_offset: 15 * 4096
            }
        );
    }

    #[test]
    fn finds_moved_and_deleted_around_blocks() {
        let old = data(8 * 4096, 3);
        let sig = Signature::of(&old, 4096);
        // Blocks 5..8, 100 new bytes, then blocks 0..2 (block 2..5 deleted).
        let mut new = old[5 * 4096..].to_vec();
        new.extend_from_slice(&data(100, 4));
        new.extend_from_slice(&old[..2 * 4096]);
        let (found, _) = Matcher::new(&sig).scan(&new, true);
        let olds: Vec<u64> = found.iter().map(|f| f.old_offset / 4096).collect();
        assert_eq!(olds, vec![5, 6, 7, 0, 1]);
    }

    #[test]
    fn unrelated_data_finds_nothing_and_scans_in_pieces() {
        let sig = Signature::of(&data(16 * 4096, 5), 4096);
        let other = data(10 * 4096 + 7, 6);
        let m = Matcher::new(&sig);
        let (found, decided) = m.scan(&other, false);
        assert!(found.is_empty());
        // Undecided: less than a block at the end, to be rescanned.
        assert!(decided > other.len() - 4096 && decided < other.len());
        let (_, decided) = m.scan(&other, true);
        assert_eq!(decided, other.len());
    }
}
