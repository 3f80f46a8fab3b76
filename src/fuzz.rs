//! Fuzz targets for every parser that reads bytes ferry does not control:
//! the helper's frames, the files ferry reads (ssh config, known_hosts,
//! filter and merge files, `--files-from` lists, partial sidecars, lock
//! files). Test-only, at the top of the layers: it imports what it tests.
//!
//! Each target starts from valid inputs (encoded from generated values, or
//! sample lines), mutates them with a seeded generator (bit flips,
//! truncation, splicing, length fields set to huge values, random bytes)
//! and feeds each result to the parser. Properties: no panic; no single
//! allocation much larger than the input (a length field claiming 4 GiB
//! must not be believed); a bounded time per input; and, where an encoder
//! exists, `decode(encode(x)) == x` for the generated values.
//!
//! A few thousand inputs per target run in the normal test suite with a
//! fixed seed. `FERRY_FUZZ_ITERS` and `FERRY_FUZZ_SEED` make a longer run
//! (docs/RELIABILITY.md says how, and what the long runs found). A
//! failure names the target, seed and iteration, and shows the input.

mod files;
mod frames;
mod watch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Inputs per target when `FERRY_FUZZ_ITERS` is not set.
const DEFAULT_ITERS: u64 = 2_000;
/// The seed when `FERRY_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x00F3_2217_5EED;
/// Longest one input may take, in an unoptimised build on a busy machine;
/// the parsers take microseconds, so this only catches runaway work.
const MAX_TIME: Duration = Duration::from_secs(2);

/// A small deterministic generator (xorshift64*): the same seed gives the
/// same inputs on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % (n as u64).max(1)) as usize
    }

    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `most` bytes, mostly the kind a path holds, sometimes any.
    pub(crate) fn bytes(&mut self, most: usize) -> Vec<u8> {
        let len = self.below(most + 1);
        let any = self.chance(20);
        (0..len)
            .map(|_| match any {
                true => self.next() as u8,
                false => *self.pick(b"abcxyz019._-/ "),
            })
            .collect()
    }
}

/// The settings of a run: inputs per target and the seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub iters: u64,
    pub seed: u64,
    /// `FERRY_FUZZ_TRACE`: print every input before feeding it.
    pub trace: bool,
}

impl Run {
    /// From `FERRY_FUZZ_ITERS` and `FERRY_FUZZ_SEED` (decimal or 0x-hex),
    /// or the defaults.
    pub(crate) fn from_env() -> Run {
        let number = |name: &str| {
            let text = std::env::var(name).ok()?;
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => text.parse().ok(),
            }
        };
        Run {
            iters: number("FERRY_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS),
            seed: number("FERRY_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            trace: std::env::var_os("FERRY_FUZZ_TRACE").is_some(),
        }
    }

    /// The generator for one input of one target: any failing input can be
    /// made again from the seed and its iteration alone.
    fn rng(&self, target: &str, iteration: u64) -> Rng {
        let name = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng::new(self.seed ^ name ^ iteration.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }
}

/// Feeds `run.iters` inputs made by `make` to `feed`, checking that none
/// panics, takes longer than [`MAX_TIME`], or makes an allocation larger
/// than `alloc_limit(input length)`. Panics naming the first bad input.
pub(crate) fn drive(
    target: &str,
    run: Run,
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    mut feed: impl FnMut(&[u8]),
    alloc_limit: impl Fn(usize) -> usize,
) {
    let (mut slowest, mut largest) = (Duration::ZERO, 0usize);
    for iteration in 0..run.iters {
        let input = make(&mut run.rng(target, iteration));
        if run.trace {
            // Before the input is fed: a stack overflow or an abort ends
            // the process where no `catch_unwind` can name the input.
            eprintln!("fuzz {target} iteration {iteration}: {:?}", lossy(&input));
        }
        let started = Instant::now();
        let (outcome, peak) =
            watch::largest_allocation(|| catch_unwind(AssertUnwindSafe(|| feed(&input))));
        let took = started.elapsed();
        let problem = match outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(()) if peak > alloc_limit(input.len()) => {
                Some(format!("allocated {peak} bytes at once"))
            }
            Ok(()) if took > MAX_TIME => Some(format!("took {took:?}")),
            Ok(()) => None,
        };
        if let Some(problem) = problem {
            panic!(
                "fuzz target {target} {problem} on iteration {iteration} \
                 (FERRY_FUZZ_SEED={:#x}); input ({} bytes): {:?}",
                run.seed,
                input.len(),
                lossy(&input)
            );
        }
        slowest = slowest.max(took);
        largest = largest.max(peak);
    }
    eprintln!(
        "fuzz {target}: {} inputs, slowest {slowest:?}, largest allocation {largest} bytes",
        run.iters
    );
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lengths that lie: what a mutated length field claims.
const LYING_LENGTHS: [u32; 6] = [
    u32::MAX,
    0x8000_0000,
    0x7fff_ffff,
    0x0100_0000,
    0x00ff_ffff,
    0x0001_0000,
];

/// One to four random changes to `data`; `others` are valid inputs to
/// splice from.
pub(crate) fn mutate(rng: &mut Rng, mut data: Vec<u8>, others: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = rng.next() as u8;
            }
            2 => {
                let lie = rng.pick(&LYING_LENGTHS).to_be_bytes();
                let end = (at + 4).min(data.len());
                data.splice(at..end, lie);
            }
            3 => data.truncate(at),
            4 => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            5 => {
                let noise = rng.bytes(12);
                data.splice(at..at, noise);
            }
            6 if !others.is_empty() => {
                let other = rng.pick(others);
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let end = (at + rng.below(32)).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(at..at, copy);
            }
        }
    }
    data
}

/// Like [`mutate`], for text: also inserts the tokens the text parsers
/// treat specially.
pub(crate) fn mutate_text(
    rng: &mut Rng,
    data: Vec<u8>,
    others: &[Vec<u8>],
    tokens: &[&str],
) -> Vec<u8> {
    let mut data = match rng.chance(70) {
        true => mutate(rng, data, others),
        false => data,
    };
    for _ in 0..rng.below(4) {
        let at = rng.below(data.len() + 1);
        let token = rng.pick(tokens).as_bytes().to_vec();
        data.splice(at..at, token);
    }
    data
}

/// A valid input or, mostly, a mutated one.
pub(crate) fn sample_or_mutant(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let seed = rng.pick(seeds).clone();
    match rng.chance(10) {
        true => seed,
        false => mutate(rng, seed, seeds),
    }
}
