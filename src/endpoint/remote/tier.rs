//! The remote side's hashing tier, chosen once, the first time a file needs
//! it (`--remote-hash`): the helper (`ferry --server`, found on the server
//! or uploaded), the shell's `split --filter` with `b3sum` or `sha256sum`,
//! the server's `check-file-name` extension (ProFTPD), reading the data
//! over SFTP, or none. Each is an implementation of
//! [`Hashes`]; the helper, when one runs, also serves whole small files,
//! range copies and names that are not UTF-8.

use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::by_helper::helper_error;
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::endpoint::hashes::{Answer, Hashes, NoHashes};
use crate::endpoint::Hashing;
use crate::error::{Error, Host, Result};
use crate::hash::{BlockHash, HashAlgo};
use crate::paths::to_bytes;
use crate::protocol::bootstrap;
use crate::protocol::client::{HelperClient, HelperError};
use crate::protocol::fs::{FsReply, FsRequest};
use crate::sftp::{Sftp, CHECK_FILE_MIN_BLOCK};
use crate::ssh::shell::ShellHasher;
use crate::ssh::Connection;

/// Block hashes per helper request: 8 MiB of reply, half the largest frame.
const HASHES_PER_REQUEST: u64 = 256 * 1024;

/// Check-file requests in flight at once: the server hashes one after the
/// other, and the next is there when it is done.
const CHECK_FILE_IN_FLIGHT: usize = 2;

/// Most bytes one check-file request hashes: the server answers only when
/// done, and a session silent for longer than `--timeout` is taken for
/// dead. 64 MiB take a fraction of a second at disk speed.
const CHECK_FILE_RANGE: u64 = 64 * 1024 * 1024;

/// Largest file the check-file tier hashes whole, in one request (a hash
/// of the whole cannot be put together from parts): a few seconds of the
/// server's time, far inside the default `--timeout` of 60 s. A larger
/// file is read back and hashed here.
const CHECK_FILE_WHOLE: u64 = 4 << 30;

/// Which tier the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// The helper when it answers, else the shell when it has the tools,
    /// else the server's check-file extension, else none. Reading is never picked on its own: it costs a download
    /// of everything compared.
    Auto,
    Helper,
    Shell,
    Read,
    Off,
}

/// Where the helper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelperSource {
    /// A command on the server (`--remote-ferry PATH`).
    Command(String),
    /// This binary, uploaded to (or found in) a cache directory.
    Upload { cache: String },
}

/// Told the tier's name once it is chosen (`-v`).
pub(crate) type OnChosen = Arc<dyn Fn(&str) + Send + Sync>;

/// What the remote side needs to choose its tier when the time comes.
#[derive(Clone)]
pub(crate) struct TierChoice {
    pub wanted: Wanted,
    pub helper: HelperSource,
    pub on_chosen: Option<OnChosen>,
    /// The directories the user named as destinations on this side: a
    /// helper's changes below them never follow a symlink (empty: a
    /// source, which the helper does not change).
    pub roots: Vec<String>,
    /// `-K`: a symlink to a directory below its root is followed.
    pub dirlinks: bool,
    /// What the helper, once it runs, tells about entries instead of SFTP.
    pub describe: Describe,
}

/// Which descriptions of entries come from the helper, once it runs, for
/// what SFTP v3 does not carry; each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Describe {
    /// None: SFTP's attributes are enough.
    #[default]
    Sftp,
    /// Single entries (stat, lstat): device numbers, for `-D` on a pulled
    /// side, where a device is found.
    Stats,
    /// Listings too, and every time set goes through the helper: inodes,
    /// for `-H` on a pulled side; times to the nanosecond (SFTP v3 has
    /// whole seconds), wherever `-X` or `-A` start the helper anyway.
    All,
}

/// The chosen tier: the helper when one runs, and how files are hashed.
pub(super) struct Started {
    pub(super) helper: Option<Arc<HelperClient>>,
    pub(super) hashes: Box<dyn Hashes>,
}

impl Started {
    pub(super) fn none() -> Started {
        Started {
            helper: None,
            hashes: Box::new(NoHashes),
        }
    }

    /// The helper as the tier, confined to `choice`'s roots first.
    async fn with_helper(
        helper: HelperClient,
        sftp: &Arc<Sftp>,
        label: &Host,
        choice: &TierChoice,
    ) -> Result<Started> {
        if !choice.roots.is_empty() {
            let roots = choice.roots.iter();
            let confine = FsRequest::Confine {
                roots: roots
                    .map(|r| to_bytes(&sftp.absolute(r)).into_owned())
                    .collect(),
                dirlinks: choice.dirlinks,
            };
            helper.fs(confine).await.map_err(|e| Error::Helper {
                host: sftp.host().to_string(),
                detail: format!("the remote helper did not take the destination's roots: {e}"),
            })?;
        }
        let helper = Arc::new(helper);
        Ok(Started {
            hashes: Box::new(HelperHashes {
                helper: helper.clone(),
                sftp: sftp.clone(),
                label: label.clone(),
            }),
            helper: Some(helper),
        })
    }

    fn hashed_by(hashes: impl Hashes + 'static) -> Started {
        Started {
            helper: None,
            hashes: Box::new(hashes),
        }
    }
}

/// Chooses the tier as `choice` says, starting the helper if it is one.
pub(super) async fn start(
    conn: &Arc<Connection>,
    sftp: &Arc<Sftp>,
    label: &Host,
    choice: &TierChoice,
) -> Result<Started> {
    let started = match (&choice.helper, choice.wanted) {
        (_, Wanted::Off) => Started::none(),
        (HelperSource::Upload { cache }, _) => {
            let helper = bootstrap::upload_helper(conn, sftp, cache).await?;
            Started::with_helper(helper, sftp, label, choice).await?
        }
        (HelperSource::Command(command), _) => {
            without_upload(conn, sftp, label, command, choice).await?
        }
    };
    if let Some(tell) = &choice.on_chosen {
        tell(started.hashes.name());
    }
    Ok(started)
}

async fn without_upload(
    conn: &Arc<Connection>,
    sftp: &Arc<Sftp>,
    label: &Host,
    command: &str,
    choice: &TierChoice,
) -> Result<Started> {
    let shell = || async {
        let found = ShellHasher::detect(conn.clone()).await?;
        Ok::<_, Error>(found.map(|shell| {
            Started::hashed_by(ShellHashes {
                shell,
                sftp: sftp.clone(),
            })
        }))
    };
    match choice.wanted {
        Wanted::Off => Ok(Started::none()),
        Wanted::Read => Ok(Started::hashed_by(ReadHashes)),
        Wanted::Helper => {
            let helper = HelperClient::open(conn, command).await?;
            Started::with_helper(helper, sftp, label, choice).await
        }
        Wanted::Shell => shell().await?.ok_or_else(|| Error::Helper {
            host: conn.host().to_string(),
            detail: "the remote shell lacks split --filter with sha256sum or b3sum; \
                     choose --remote-hash helper, read or off"
                .into(),
        }),
        Wanted::Auto => match HelperClient::open(conn, command).await {
            Ok(helper) => Started::with_helper(helper, sftp, label, choice).await,
            Err(e) if e.is_fatal() && !matches!(e, Error::Helper { .. }) => Err(e),
            Err(e) => {
                tracing::info!("no remote helper: {e}");
                match shell().await? {
                    Some(shell) => Ok(shell),
                    None => Ok(by_extension(sftp).await),
                }
            }
        },
    }
}

/// The server's own hashing where it offers it (`check-file-name`), else
/// none.
async fn by_extension(sftp: &Arc<Sftp>) -> Started {
    if sftp.offers_check_file().await {
        return Started::hashed_by(CheckFileHashes { sftp: sftp.clone() });
    }
    Started::none()
}

/// `ferry --server` hashes at disk speed, blake3 only.
struct HelperHashes {
    helper: Arc<HelperClient>,
    sftp: Arc<Sftp>,
    label: Host,
}

impl HelperHashes {
    fn error(&self, path: &str, e: HelperError) -> Error {
        helper_error(self.sftp.host(), &self.label, path, e)
    }
}

impl Hashes for HelperHashes {
    fn name(&self) -> &'static str {
        "helper"
    }

    fn hashing(&self) -> Hashing {
        Hashing::AtTheData
    }

    fn fixed_algorithm(&self) -> Option<HashAlgo> {
        Some(HashAlgo::Blake3)
    }

    fn block_hashes<'a>(
        &'a self,
        path: &'a str,
        start: u64,
        end: u64,
        block: u64,
        algo: HashAlgo,
    ) -> Answer<'a, Vec<BlockHash>> {
        Box::pin(async move {
            if algo != HashAlgo::Blake3 {
                return Ok(None);
            }
            let absolute = self.sftp.absolute(path);
            let mut hashes = Vec::new();
            // A reply must fit in one frame of the protocol.
            let mut from = start;
            loop {
                let to = end.min(from.saturating_add(block * HASHES_PER_REQUEST));
                let (size, more) = self
                    .helper
                    .block_hashes(&absolute, from, to, block as u32)
                    .await
                    .map_err(|e| self.error(path, e))?;
                hashes.extend(more);
                from = to;
                if from >= end.min(size) {
                    return Ok(Some(hashes));
                }
            }
        })
    }

    fn file_hash<'a>(&'a self, path: &'a str, algo: HashAlgo) -> Answer<'a, BlockHash> {
        Box::pin(async move {
            if algo != HashAlgo::Blake3 {
                return Ok(None);
            }
            let (_, hash) = self
                .helper
                .file_hash(&self.sftp.absolute(path))
                .await
                .map_err(|e| self.error(path, e))?;
            Ok(Some(hash))
        })
    }

    fn links<'a>(&'a self, path: &'a str) -> Answer<'a, u64> {
        Box::pin(async move {
            let request = FsRequest::Stat {
                path: to_bytes(&self.sftp.absolute(path)).to_vec(),
                follow: false,
            };
            match self.helper.fs(request).await {
                Ok(FsReply::Stat(Some(meta))) => Ok(meta.inode.map(|inode| inode.nlink)),
                Ok(_) => Ok(None),
                Err(e) => Err(self.error(path, e)),
            }
        })
    }

    fn signature<'a>(&'a self, path: &'a str, block: u32) -> Answer<'a, Signature> {
        Box::pin(async move {
            self.helper
                .signature(&self.sftp.absolute(path), block)
                .await
                .map(Some)
                .map_err(|e| self.error(path, e))
        })
    }

    fn find_blocks<'a>(
        &'a self,
        path: &'a str,
        regions: &'a [(u64, u64)],
        signature: &'a Signature,
    ) -> Answer<'a, Vec<Piece>> {
        Box::pin(async move {
            self.helper
                .find_blocks(&self.sftp.absolute(path), regions, signature)
                .await
                .map(Some)
                .map_err(|e| self.error(path, e))
        })
    }
}

/// The remote shell's tools: block and whole-file hashes in the one
/// algorithm they have; no rolling checksum.
struct ShellHashes {
    shell: ShellHasher,
    sftp: Arc<Sftp>,
}

impl Hashes for ShellHashes {
    /// Each request is a process, an interpreter's start (100 ms where
    /// python3 is a pyenv shim, measured) as well as the hashing.
    fn span(&self) -> u64 {
        256 << 20
    }

    /// A process on the server (tens of milliseconds at best) costs more
    /// than a request's worth of data on any link ferry is used over: 50
    /// changed files of 400 bytes took 13 s by delta on loopback.
    fn smallest_delta(&self) -> u64 {
        256 << 10
    }

    fn name(&self) -> &'static str {
        "shell"
    }

    fn hashing(&self) -> Hashing {
        Hashing::AtTheData
    }

    fn fixed_algorithm(&self) -> Option<HashAlgo> {
        Some(self.shell.algo())
    }

    fn block_hashes<'a>(
        &'a self,
        path: &'a str,
        start: u64,
        end: u64,
        block: u64,
        algo: HashAlgo,
    ) -> Answer<'a, Vec<BlockHash>> {
        Box::pin(async move {
            if algo != self.shell.algo() {
                return Ok(None);
            }
            let absolute = self.sftp.absolute(path);
            let ranges = [(start, end)];
            let hashes = self.shell.block_hashes(&absolute, &ranges, block).await?;
            Ok(hashes.into_iter().next())
        })
    }

    /// All ranges in one process (a few hundred per command).
    fn ranges_block_hashes<'a>(
        &'a self,
        path: &'a str,
        ranges: &'a [(u64, u64)],
        block: u64,
        algo: HashAlgo,
    ) -> Answer<'a, Vec<Vec<BlockHash>>> {
        Box::pin(async move {
            if algo != self.shell.algo() {
                return Ok(None);
            }
            let absolute = self.sftp.absolute(path);
            let hashes = self.shell.block_hashes(&absolute, ranges, block).await?;
            Ok(Some(hashes))
        })
    }

    fn file_hash<'a>(&'a self, path: &'a str, algo: HashAlgo) -> Answer<'a, BlockHash> {
        Box::pin(async move {
            if algo != self.shell.algo() {
                return Ok(None);
            }
            let hash = self.shell.file_hash(&self.sftp.absolute(path)).await?;
            Ok(Some(hash))
        })
    }

    fn links<'a>(&'a self, path: &'a str) -> Answer<'a, u64> {
        Box::pin(async move { self.shell.links(&self.sftp.absolute(path)).await })
    }
}

/// Reading the data over SFTP and hashing it here: every answer is the
/// default None, which the endpoint takes as "read it".
struct ReadHashes;

impl Hashes for ReadHashes {
    fn name(&self) -> &'static str {
        "read"
    }

    fn hashing(&self) -> Hashing {
        Hashing::ByReading
    }
}

/// The server's `check-file-name` extension (ProFTPD's mod_sftp): SHA-256
/// computed next to the data, in blocks or of a whole file; no rolling
/// checksum.
struct CheckFileHashes {
    sftp: Arc<Sftp>,
}

impl Hashes for CheckFileHashes {
    fn name(&self) -> &'static str {
        "check-file"
    }

    fn hashing(&self) -> Hashing {
        Hashing::AtTheData
    }

    fn fixed_algorithm(&self) -> Option<HashAlgo> {
        Some(HashAlgo::Sha256)
    }

    fn block_hashes<'a>(
        &'a self,
        path: &'a str,
        start: u64,
        end: u64,
        block: u64,
        algo: HashAlgo,
    ) -> Answer<'a, Vec<BlockHash>> {
        Box::pin(async move {
            let Ok(block32) = u32::try_from(block) else {
                return Ok(None);
            };
            if algo != HashAlgo::Sha256 || block < CHECK_FILE_MIN_BLOCK {
                return Ok(None);
            }
            // Whole blocks per request, several requests in flight.
            let step = (CHECK_FILE_RANGE / block).max(1) * block;
            let ranges = (start..end).step_by(step as usize);
            let parts: Vec<Vec<BlockHash>> = stream::iter(ranges)
                .map(|from| {
                    let len = step.min(end - from);
                    self.sftp.check_file(path, from, len, block32)
                })
                .buffered(CHECK_FILE_IN_FLIGHT)
                .try_collect()
                .await?;
            Ok(Some(parts.concat()))
        })
    }

    fn file_hash<'a>(&'a self, path: &'a str, algo: HashAlgo) -> Answer<'a, BlockHash> {
        Box::pin(async move {
            if algo != HashAlgo::Sha256 {
                return Ok(None);
            }
            let size = match self.sftp.raw().stat(path).await {
                Ok(attrs) => attrs.attrs.size.unwrap_or(0),
                Err(e) => return Err(self.sftp.error(path, e)),
            };
            match size {
                // The server refuses a range that starts at the end.
                0 => Ok(Some(crate::hash::block_hash(HashAlgo::Sha256, &[]))),
                CHECK_FILE_WHOLE.. => Ok(None),
                _ => {
                    let hashes = self.sftp.check_file(path, 0, 0, 0).await?;
                    Ok(hashes.first().copied())
                }
            }
        })
    }
}
