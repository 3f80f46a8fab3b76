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

use crate::endpoint::{join, Endpoint, FileHandle, Meta, Pipeline};
use crate::error::Result;
use crate::hash::block_hashes;

/// Comparison granularity: small enough that a torn tail costs little to
/// resend, large enough that the hash list stays short.
pub const VERIFY_BLOCK: u64 = 1024 * 1024;

const PARTIAL_SUFFIX: &str = ".ferry-partial";
const META_SUFFIX: &str = ".ferry-meta";
const META_HEADER: &str = "ferry partial v1";

pub fn partial_name(name: &str) -> String {
    format!(".{name}{PARTIAL_SUFFIX}")
}

pub fn meta_name(name: &str) -> String {
    format!(".{name}{META_SUFFIX}")
}

/// ferry's own working files, which are never copied as content.
pub fn is_working_file(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(PARTIAL_SUFFIX) || name.ends_with(META_SUFFIX))
}

/// Paths of the destination, its partial and the partial's sidecar.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dest: String,
    pub partial: String,
    pub meta: String,
}

impl Paths {
    pub fn new(dir: &str, name: &str) -> Paths {
        Paths {
            dest: join(dir, name),
            partial: join(dir, &partial_name(name)),
            meta: join(dir, &meta_name(name)),
        }
    }
}

/// What the sidecar records about the source a partial was copied from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sidecar {
    pub source_size: u64,
    pub source_mtime: i64,
    /// Most bytes of writes that could have been unacknowledged at once.
    pub window: u64,
}

impl Sidecar {
    pub fn encode(&self) -> String {
        format!(
            "{META_HEADER}\nsource_size {}\nsource_mtime {}\nwindow {}\n",
            self.source_size, self.source_mtime, self.window
        )
    }

    pub fn decode(text: &str) -> Option<Sidecar> {
        let mut lines = text.lines();
        if lines.next()? != META_HEADER {
            return None;
        }
        let (mut size, mut mtime, mut window) = (None, None, None);
        for line in lines {
            match line.split_once(' ')? {
                ("source_size", v) => size = v.parse().ok(),
                ("source_mtime", v) => mtime = v.parse().ok(),
                ("window", v) => window = v.parse().ok(),
                _ => {}
            }
        }
        Some(Sidecar {
            source_size: size?,
            source_mtime: mtime?,
            window: window?,
        })
    }

    fn describes(&self, source: &Meta) -> bool {
        self.source_size == source.size && self.source_mtime == source.mtime
    }
}

pub async fn read_sidecar<D: Endpoint>(dst: &D, path: &str) -> Option<Sidecar> {
    let bytes = dst.read_small(path).await.ok()?;
    Sidecar::decode(std::str::from_utf8(&bytes).ok()?)
}

/// How much of an existing partial can be kept: the length of its prefix that
/// is known to equal the source, checked with block hashes.
pub struct Verdict {
    pub keep: u64,
    /// Bytes compared on each side to reach the verdict.
    pub checked: u64,
}

pub async fn verify<S, D>(
    source: &S::File,
    source_meta: &Meta,
    dst: &D,
    partial_path: &str,
    partial_len: u64,
    sidecar: Option<Sidecar>,
    io: Pipeline,
) -> Result<Verdict>
where
    S: Endpoint,
    D: Endpoint,
{
    let len = partial_len.min(source_meta.size);
    let from = match sidecar {
        Some(s) if s.describes(source_meta) => {
            let start = len.saturating_sub(s.window);
            start - start % VERIFY_BLOCK
        }
        _ => 0,
    };
    if len == 0 {
        return Ok(Verdict {
            keep: 0,
            checked: 0,
        });
    }
    let partial = dst.open_read(partial_path).await?;
    let (theirs, ours) = tokio::join!(
        block_hashes(&partial, from, len, VERIFY_BLOCK, io),
        block_hashes(source, from, len, VERIFY_BLOCK, io),
    );
    partial.close(false).await?;
    let (theirs, ours) = (theirs?, ours?);
    let good_blocks = theirs
        .iter()
        .zip(ours.iter())
        .take_while(|(a, b)| a == b)
        .count() as u64;
    let keep = (from + good_blocks * VERIFY_BLOCK).min(len);
    let keep = if good_blocks as usize == ours.len() && theirs.len() == ours.len() {
        len
    } else {
        keep
    };
    Ok(Verdict {
        keep,
        checked: len - from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_round_trip() {
        let s = Sidecar {
            source_size: 5 << 30,
            source_mtime: 1_700_000_000,
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
    }
}
