//! Partial files: where an unfinished copy lives, the sidecar that says what it
//! was copied from, and the check that decides how much of it to trust.
//!
//! A copy is written to `.NAME.ferry-partial` beside its destination and renamed
//! over `NAME` once complete, so readers never see half a file and the old
//! version survives until then. Beside it, `.NAME.ferry-meta` records the
//! source's size and mtime and the most bytes that were ever in flight. On
//! resume, when the source still has that size and mtime, only the last
//! `window` bytes of the partial can be missing or torn, and only they are
//! compared block by block with the source; otherwise the whole partial is.
//! Blocks that differ are rewritten from the source, the rest kept.

use futures::stream::{self, StreamExt, TryStreamExt};

use super::transfer::SourceFile;
use crate::endpoint::{self, join, read_span, Endpoint, FileHandle, Meta, Mtime, Pipeline};
use crate::error::Result;
use crate::hash::{block_hash, HashAlgo};

/// Comparison granularity: small enough that a torn tail costs little to
/// resend, large enough that the hash list stays short.
pub(crate) const VERIFY_BLOCK: u64 = 1024 * 1024;

const PARTIAL_SUFFIX: &str = ".ferry-partial";
const META_SUFFIX: &str = ".ferry-meta";
const META_HEADER: &str = "ferry partial v1";

pub(crate) fn partial_name(name: &str) -> String {
    format!(".{name}{PARTIAL_SUFFIX}")
}

pub(crate) fn meta_name(name: &str) -> String {
    format!(".{name}{META_SUFFIX}")
}

/// ferry's own working files (partials, sidecars, locks, a remote side's
/// umask probe), which are never copied as content nor deleted as extraneous.
pub(crate) fn is_working_file(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(PARTIAL_SUFFIX) || name.ends_with(META_SUFFIX))
        || super::lock::is_lock_file(name)
        || name.starts_with(crate::endpoint::remote::PROBE_PREFIX)
}

/// Paths of the destination, its partial and the partial's sidecar. Only
/// the destination's is kept as it is: the others are made when asked for,
/// beside it unless placed elsewhere (a plan holds these for every file to
/// copy: two strings fewer per file).
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub dest: String,
    /// The partial and the sidecar where they are not beside the
    /// destination (`--partial-dir`, `--temp-dir`, a file written in place).
    elsewhere: Option<Box<(String, String)>>,
}

impl Paths {
    /// `dir/name`, with its partial and sidecar beside it.
    pub(crate) fn new(dir: &str, name: &str) -> Paths {
        Paths {
            dest: join(dir, name),
            elsewhere: None,
        }
    }

    /// `dest`, with its partial and sidecar at the paths given.
    pub(crate) fn placed(dest: String, partial: String, meta: String) -> Paths {
        Paths {
            dest,
            elsewhere: Some(Box::new((partial, meta))),
        }
    }

    /// Where the partial is written.
    pub(crate) fn partial(&self) -> String {
        match &self.elsewhere {
            Some(placed) => placed.0.clone(),
            None => self.beside(partial_name),
        }
    }

    /// Where the partial's sidecar is written.
    pub(crate) fn meta(&self) -> String {
        match &self.elsewhere {
            Some(placed) => placed.1.clone(),
            None => self.beside(meta_name),
        }
    }

    fn beside(&self, named: fn(&str) -> String) -> String {
        let (dir, name) = match self.dest.rsplit_once('/') {
            Some((dir, name)) => (if dir.is_empty() { "/" } else { dir }, name),
            None => ("", self.dest.as_str()),
        };
        join(dir, &named(name))
    }
}

/// What the sidecar records about the source a partial was copied from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sidecar {
    pub source_size: u64,
    pub source_mtime: Mtime,
    /// Most bytes of writes that could have been unacknowledged at once.
    pub window: u64,
}

impl Sidecar {
    pub(crate) fn encode(&self) -> String {
        let nanos = match self.source_mtime.nanos {
            Some(nanos) => format!("source_mtime_nsec {nanos}\n"),
            None => String::new(),
        };
        format!(
            "{META_HEADER}\nsource_size {}\nsource_mtime {}\n{nanos}window {}\n",
            self.source_size, self.source_mtime.secs, self.window
        )
    }

    pub(crate) fn decode(text: &str) -> Option<Sidecar> {
        let (mut size, mut mtime, mut window) = (None, None, None);
        let mut nanos = None;
        for field in record_fields(text, META_HEADER)? {
            match field {
                ("source_size", v) => size = v.parse().ok(),
                ("source_mtime", v) => mtime = v.parse().ok(),
                ("source_mtime_nsec", v) => nanos = v.parse().ok(),
                ("window", v) => window = v.parse().ok(),
                _ => {}
            }
        }
        Some(Sidecar {
            source_size: size?,
            source_mtime: Mtime {
                secs: mtime?,
                nanos,
            },
            window: window?,
        })
    }

    fn describes(&self, source: &Meta) -> bool {
        self.source_size == source.size && self.source_mtime.same(&source.mtime)
    }
}

/// The `name value` lines of a small text record (a sidecar, a lock) under
/// its `header` line; None when the header differs or a line is no pair.
pub(crate) fn record_fields<'a>(text: &'a str, header: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let mut lines = text.lines();
    if lines.next()? != header {
        return None;
    }
    lines.map(|line| line.split_once(' ')).collect()
}

pub(crate) async fn read_sidecar<D: Endpoint>(dst: &D, path: &str) -> Option<Sidecar> {
    let bytes = endpoint::read_small(dst, path).await.ok()?;
    Sidecar::decode(std::str::from_utf8(&bytes).ok()?)
}

/// What checking a partial against the source found and fixed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Repair {
    /// Length of the partial that now equals the source's start.
    pub good_len: u64,
    /// Bytes compared on each side.
    pub checked: u64,
    /// Bytes rewritten from the source where the partial differed.
    pub rewritten: u64,
}

/// Most 1 MiB blocks compared at once: bounds memory to twice this in MiB.
const BLOCKS_IN_FLIGHT: usize = 8;

/// The head of a partial of `len` bytes that [`repair`] leaves unread: what
/// `sidecar`, when it still describes `source`, vouches for (all but its
/// last window), to be checked with the whole file after the copy.
pub(crate) fn unchecked_head(len: u64, sidecar: Option<Sidecar>, source: &Meta) -> u64 {
    match sidecar {
        Some(s) if s.describes(source) => {
            let start = len.saturating_sub(s.window);
            start - start % VERIFY_BLOCK
        }
        _ => 0,
    }
}

/// Compares the partial (open for reading and writing as `partial`) with the
/// source, block by block with blake3, and rewrites each block that differs
/// from the source's data just read, so that only bad blocks are sent, not
/// everything after the first one. The region compared is the last window
/// when `sidecar` still describes the source, the whole partial otherwise.
///
/// The caller writes the new sidecar only after this returns: a crash while
/// blocks are being rewritten leaves the old sidecar, which no longer
/// matches or is absent, so the next run compares the whole partial again.
pub(crate) async fn repair<S: Endpoint, D: Endpoint>(
    source: &SourceFile<'_, S::File>,
    partial: &D::File,
    partial_len: u64,
    sidecar: Option<Sidecar>,
    io: Pipeline,
    on_checked: &(dyn Fn(u64) + Sync),
) -> Result<Repair> {
    let len = partial_len.min(source.meta.size);
    let from = unchecked_head(len, sidecar, &source.meta);
    let blocks = (from..len).step_by(VERIFY_BLOCK as usize);
    let rewritten = stream::iter(blocks)
        .map(|start| {
            let end = (start + VERIFY_BLOCK).min(len);
            repair_block(source, partial, start..end, io, on_checked)
        })
        .buffered(BLOCKS_IN_FLIGHT)
        .try_fold(0u64, |total, n| futures::future::ready(Ok(total + n)))
        .await?;
    Ok(Repair {
        good_len: len,
        checked: len - from,
        rewritten,
    })
}

async fn repair_block<S: FileHandle, D: FileHandle>(
    source: &SourceFile<'_, S>,
    partial: &D,
    range: std::ops::Range<u64>,
    io: Pipeline,
    on_checked: &(dyn Fn(u64) + Sync),
) -> Result<u64> {
    let (ours, theirs) = tokio::join!(
        read_span(source.file, range.start, range.end, io),
        read_span(partial, range.start, range.end, io),
    );
    let (ours, theirs) = (ours?, theirs?);
    if (ours.len() as u64) < range.end - range.start {
        return Err(source.shrank(range.end));
    }
    // Both blocks are in memory here, so the algorithm is ours to choose.
    let n = ours.len() as u64;
    if block_hash(HashAlgo::Blake3, &ours) == block_hash(HashAlgo::Blake3, &theirs) {
        on_checked(n);
        return Ok(0);
    }
    partial.write_at(range.start, ours).await?;
    on_checked(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partial and sidecar made when asked for are where they always
    /// were, beside the destination, whatever the directory looks like; a
    /// placed pair is kept as given.
    #[test]
    fn partial_paths_are_beside_the_destination_unless_placed() {
        for dir in ["", ".", "/", "a", "a/", "/x/y", "/x/y/"] {
            let paths = Paths::new(dir, "f.bin");
            assert_eq!(paths.dest, join(dir, "f.bin"));
            assert_eq!(paths.partial(), join(dir, &partial_name("f.bin")), "{dir}");
            assert_eq!(paths.meta(), join(dir, &meta_name("f.bin")), "{dir}");
        }
        let placed = Paths::placed("a/f".into(), "p/.f.part".into(), "p/.f.meta".into());
        assert_eq!(
            (placed.partial(), placed.meta()),
            ("p/.f.part".into(), "p/.f.meta".into())
        );
    }

    #[test]
    fn sidecar_round_trip() {
        let s = Sidecar {
            source_size: 5 << 30,
            source_mtime: Mtime::precise(1_700_000_000, 5),
            window: 16 << 20,
        };
        assert_eq!(Sidecar::decode(&s.encode()), Some(s));
        assert_eq!(Sidecar::decode("garbage\nsource_size 1"), None);
        assert_eq!(Sidecar::decode("ferry partial v1\nsource_size 1\n"), None);
    }

    #[test]
    fn working_names() {
        assert_eq!(partial_name("a b.txt"), ".a b.txt.ferry-partial");
        assert!(is_working_file(&partial_name("x")));
        assert!(is_working_file(&meta_name("x")));
        assert!(!is_working_file("x.ferry-partial"));
        // A remote side's probe, which a listing taken beside it may show.
        assert!(is_working_file(".ferry-umask.4242"));
    }
}
