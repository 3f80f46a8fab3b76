//! A remote file tree over SFTP as an endpoint.
//!
//! Each read or write is one SFTP request; the engine keeps many of them in
//! flight on the shared session, which is what makes SFTP fast on links with
//! latency. Hashes come from the tier chosen once ([`tier`]); names that
//! are not UTF-8 go through the helper instead ([`by_helper`]), or fail
//! alone where there is none. What the server lists and names is held
//! within the bounds of [`limits`]. On a server whose renames and symlink
//! reads resolve symlinks, those take another way ([`symlinks`]).

mod by_helper;
mod lanes;
mod limits;
mod symlinks;
pub(crate) mod tier;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::ahead::Ahead;
use super::hashes::{Hashes, NoHashes};
use super::mounts::MountTable;
use super::{
    Attrs, CopyRange, Endpoint, Features, FileHandle, Identity, Kind, Listing, Meta, Mtime,
    OwnerChange, Unnameable, WriteMode, XattrScope, Xattrs,
};
use crate::error::{Error, FileError, Host, Result};
use crate::meta::{Node, Owner};
use crate::paths::has_raw_bytes;
use crate::protocol::client::{HelperClient, HelperError};
use crate::protocol::fs::OpenHow;
use crate::sftp::{is_not_found, Sftp};
use crate::ssh::Connection;
use by_helper::{open_how, ByHelper, HelperFile};
use lanes::Lanes;
pub(crate) use lanes::{Early, StreamChoice, Streams};
use limits::Gathering;
use tier::{Describe, Started, TierChoice};

/// 64 requests of up to 255 KiB: 16 MiB in flight per file, enough for a
/// 200 Mbit/s link with 500 ms of latency, and OpenSSH's sftp keeps 64 too.
const REQUESTS_IN_FLIGHT: usize = 64;

/// Largest range one copy-data request moves: the server copies it before
/// answering, so a huge one would outlast the request timeout.
const COPY_DATA_PIECE: u64 = 256 * 1024 * 1024;

/// Where a Linux server's SFTP process reads its own credentials.
const PROC_STATUS: &str = "/proc/self/status";

/// Who a process is, from its `/proc/PID/status`: the effective uid and
/// gid (the second of the `Uid:` and `Gid:` fields) and its `Groups:`.
fn identity_of_status(status: &str) -> Option<Identity> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse::<u32>().ok())
            })
    };
    let uid = field("Uid:")?.nth(1)?;
    let gid = field("Gid:")?.nth(1)?;
    let mut groups: Vec<u32> = field("Groups:")?.collect();
    groups.push(gid);
    Some(Identity {
        root: uid == 0,
        groups: Some(groups),
    })
}

/// The umask of a process, from the `Umask:` line of its
/// `/proc/PID/status` (Linux 4.7 and later).
fn umask_of_status(status: &str) -> Option<u32> {
    let field = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(field.trim(), 8).ok().map(|m| m & 0o777)
}

/// The SFTP server's own [`PROC_STATUS`] (None without one: not Linux, a
/// chroot), asked for in the background as soon as the session is up: it
/// writes nothing, and who the server runs as and its umask are wanted
/// before the first new file (a probe file takes three round trips). It
/// gives up after `silence` (`--timeout`): a session that dies under it
/// may leave a request sent in that moment unanswered, and the run's own
/// requests then fail on their own.
fn status_early(
    sftp: Arc<Sftp>,
    silence: Duration,
) -> Shared<BoxFuture<'static, Option<Arc<str>>>> {
    let read = async move {
        let _slot = sftp.handle_slot().await;
        let raw = sftp.raw();
        let opened = raw.open(PROC_STATUS, OpenFlags::READ, FileAttributes::empty());
        let handle = opened.await.ok()?.handle;
        let (read, _) = read_first_and_close(&sftp, &handle).await;
        Some(Arc::from(String::from_utf8_lossy(&read.ok()?)))
    };
    let read =
        tokio::spawn(async move { tokio::time::timeout(silence, read).await.ok().flatten() });
    async move { read.await.ok().flatten() }.boxed().shared()
}

/// The first request's worth of the file open as `handle` (empty at its
/// end) and the file's close, sent together: one round trip.
async fn read_first_and_close(
    sftp: &Sftp,
    handle: &str,
) -> (
    std::result::Result<Vec<u8>, SftpError>,
    std::result::Result<(), SftpError>,
) {
    let raw = sftp.raw();
    let (read, closed) = tokio::join!(raw.read(handle, 0, sftp.read_chunk()), raw.close(handle));
    let read = match read {
        Ok(data) => Ok(data.data),
        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    (read, closed.map(drop))
}

/// Most of a server's `/etc/passwd` or `/etc/group` read for names.
const SYSTEM_FILE_MOST: usize = 4 << 20;

/// Ranges per helper copy request: 6 MiB of request.
const RANGES_PER_REQUEST: usize = 256 * 1024;

pub(crate) struct RemoteFs {
    conn: Arc<Connection>,
    /// The first SFTP session: paths, listings and most files go here.
    sftp: Arc<Sftp>,
    /// The first session and the others a far server gets ([`lanes`]).
    lanes: Arc<Lanes>,
    label: Host,
    /// The hashing tier and the helper, set once by
    /// [`Endpoint::start_helper`] as `choice` says.
    started: OnceLock<Started>,
    /// Taken by the start: a failed start is not tried again (but one
    /// made early, while planning).
    choice: tokio::sync::Mutex<Option<TierChoice>>,
    /// The server's umask and who writes there, learned from one file
    /// made when something new first needs either.
    probe: tokio::sync::OnceCell<Probe>,
    /// The SFTP server's [`PROC_STATUS`], asked for from the start.
    status: Shared<BoxFuture<'static, Option<Arc<str>>>>,
    /// The server's mount points (`-x`), read when first needed.
    mounts: tokio::sync::OnceCell<MountTable>,
    /// Where the server resolves symlinks it should not: what ferry
    /// learned of them.
    links: symlinks::KnownLinks,
    /// What the helper describes, once it runs.
    describe: Describe,
    /// Listings started ahead of the walk ([`Endpoint::list_soon`]), by
    /// directory, each running as a task of its own.
    listing_ahead: Ahead<Listing>,
    /// Stats started ahead ([`Endpoint::stat_soon`]), by path.
    stat_ahead: Ahead<Option<Meta>>,
    /// Whether a small file went over SFTP beside the helper's full stream
    /// (said once, `-vv`).
    beside_helper: AtomicBool,
}

/// A remote file: opened over SFTP, or by the helper for a name SFTP
/// cannot carry.
pub(crate) enum RemoteFile {
    Sftp(SftpFile),
    Helper(HelperFile),
}

pub(crate) struct SftpFile {
    /// The session the file was opened on.
    sftp: Arc<Sftp>,
    handle: String,
    path: String,
    /// Room for this handle among the server's open ones, freed on drop.
    _slot: Option<OwnedSemaphorePermit>,
    /// The connection's sessions, and the flags that open the file again
    /// on another ([`SftpFile::spread`]).
    lanes: Arc<Lanes>,
    again: OpenFlags,
    /// The same file open on other sessions, once spread.
    spread: std::sync::Mutex<Option<Spread>>,
    /// This file's requests (reads or writes) in flight on its own
    /// session, once spread.
    own_in_flight: AtomicUsize,
    /// Woken when a request of this file is answered, once spread.
    answered: Notify,
}

/// A file's handles on the sessions other than its own: each read or write
/// goes to the least loaded ([`SftpFile::least_loaded_lane`]). It widens
/// onto each session that opens later.
struct Spread {
    /// The number of the connection the file's own session is on.
    own_connection: usize,
    handles: Vec<Arc<LaneHandle>>,
    /// How many of [`Lanes::open_now`]'s sessions were considered.
    tried: usize,
    /// Whether a request is opening handles on sessions that opened since.
    widening: bool,
}

/// A file's handle on one more session.
struct LaneHandle {
    sftp: Arc<Sftp>,
    handle: String,
    _slot: Option<OwnedSemaphorePermit>,
    /// The number of the connection the session is on.
    connection: usize,
    /// The file's requests in flight on this session.
    in_flight: AtomicUsize,
}

/// Writes of one spread file in flight on one session at most: 4 MiB of
/// 255 KiB requests, twice what OpenSSH's 2 MiB channel window lets cross
/// at once. More would only queue behind that window: a pipeline started
/// before the other sessions opened would leave 32 MiB on the first, to
/// drain at 2 MiB a round trip while the others stood idle (the first
/// 1.5 s of a push at 100 ms ran at 20 MB/s).
const WRITES_PER_LANE: usize = 16;

/// One request of a spread file counted on the session that carries it,
/// until answered.
struct LaneRequest<'a> {
    file: &'a SftpFile,
    /// None: the file's own session.
    lane: Option<Arc<LaneHandle>>,
}

impl Drop for LaneRequest<'_> {
    fn drop(&mut self) {
        match &self.lane {
            Some(lane) => lane.in_flight.fetch_sub(1, Ordering::Relaxed),
            None => self.file.own_in_flight.fetch_sub(1, Ordering::Relaxed),
        };
        self.file.answered.notify_waiters();
    }
}

/// What a file the server creates for ferry shows: the bits its umask
/// takes away, and the owner it gets (the user the server writes as).
#[derive(Debug, Clone, Copy)]
struct Probe {
    umask: u32,
    owner: Option<Owner>,
}

/// The start of the name of the file that asks a server without a `/proc`
/// for its umask and who it writes as ([`RemoteFs::probe`]): there for a
/// moment, in the destination's directory, maybe while it is listed.
pub(crate) const PROBE_PREFIX: &str = ".ferry-umask.";

/// Why a name that is not UTF-8 fails without the helper.
pub(crate) const NOT_UTF8: &str = "the name is not valid UTF-8, which SFTP cannot carry \
     without the remote helper (--remote-ferry upload, or ferry installed on the server); \
     rename or exclude it";

/// Directory reads sent at once: OpenSSH returns at most 100 names per
/// read, so four cover most directories in one round trip.
const READDIR_AHEAD: usize = 4;

impl RemoteFs {
    /// Chooses the tier and starts the helper, once; a start that fails is
    /// not tried again unless `again_if_failed`.
    async fn start_tier(&self, again_if_failed: bool) -> Result<()> {
        let mut choice = self.choice.lock().await;
        let Some(chosen) = choice.take() else {
            return Ok(());
        };
        match tier::start(&self.conn, &self.sftp, &self.label, &chosen).await {
            Ok(started) => {
                tracing::debug!(tier = started.hashes.name(), "remote hashing ready");
                let _ = self.started.set(started);
                Ok(())
            }
            Err(e) => {
                if again_if_failed {
                    *choice = Some(chosen);
                }
                Err(e)
            }
        }
    }

    /// The files `sftp` (a session of `conn`) reaches. The hashing tier is
    /// chosen as `choice` says the first time a file needs it (it may start
    /// a process on the server), never before.
    /// `streams` says how many SFTP sessions carry data ([`lanes`]).
    pub(crate) fn new(
        conn: Arc<Connection>,
        sftp: Arc<Sftp>,
        choice: TierChoice,
        streams: StreamChoice,
        early: Option<Early>,
    ) -> RemoteFs {
        RemoteFs {
            label: sftp.label().clone(),
            describe: choice.describe,
            listing_ahead: Ahead::default(),
            stat_ahead: Ahead::default(),
            lanes: Lanes::new(conn.clone(), sftp.clone(), streams, early),
            status: status_early(sftp.clone(), conn.request_timeout()),
            conn,
            sftp,
            started: OnceLock::new(),
            choice: tokio::sync::Mutex::new(Some(choice)),
            probe: tokio::sync::OnceCell::new(),
            mounts: tokio::sync::OnceCell::new(),
            links: symlinks::KnownLinks::default(),
            beside_helper: AtomicBool::new(false),
        }
    }

    /// The helper, once started, if it is the tier.
    fn helper(&self) -> Option<&Arc<HelperClient>> {
        self.started.get().and_then(|s| s.helper.as_ref())
    }

    /// The helper, when it describes entries at least as far as `needed`
    /// ([`TierChoice::describe`]): for the inodes and device numbers SFTP
    /// v3 lacks.
    fn describing_helper(&self, needed: Describe) -> Option<ByHelper<'_>> {
        let helper = self.helper().filter(|_| self.describe >= needed)?;
        Some(ByHelper { fs: self, helper })
    }

    /// Whether entries and times here are known to the nanosecond: the
    /// helper describes every entry, and every time set here goes through
    /// it too (a time set over SFTP would lose its nanoseconds and then
    /// differ from the source's on every run).
    fn precise_times(&self) -> bool {
        self.describing_helper(Describe::All).is_some()
    }

    /// The helper, for an operation on `paths` that goes through it: a
    /// name SFTP cannot carry ([`RemoteFs::by_helper`]), or any name where
    /// the helper describes every entry ([`Describe::All`]): then it makes
    /// every change here too, so that times are kept to the nanosecond and a
    /// helper started through sudo (`--remote-ferry "sudo -n ferry"`) does
    /// what needs root.
    fn by_describing_helper(&self, paths: &[&str]) -> Result<Option<ByHelper<'_>>> {
        Ok(self
            .by_helper(paths)?
            .or(self.describing_helper(Describe::All)))
    }

    fn helper_error(&self, path: &str, e: HelperError) -> Error {
        by_helper::helper_error(self.sftp.host(), &self.label, path, e)
    }

    /// The helper, when an operation on `paths` must go through it: a name
    /// that is not UTF-8 cannot be sent over SFTP (russh-sftp takes
    /// strings). Where there is no helper, such an operation fails alone,
    /// named by the first of `paths` (the entry it makes or changes).
    fn by_helper(&self, paths: &[&str]) -> Result<Option<ByHelper<'_>>> {
        if !paths.iter().any(|p| has_raw_bytes(p)) {
            return Ok(None);
        }
        match self.helper() {
            Some(helper) => Ok(Some(ByHelper { fs: self, helper })),
            None => {
                Err(FileError::refused(&self.label, *paths.first().unwrap_or(&""), NOT_UTF8).into())
            }
        }
    }

    /// The helper, for a whole small file of `len` bytes put at `dest`
    /// through `partial`. Across a far round trip, a file that would wait
    /// for room in the helper's stream (at most 1.75 MiB unanswered, a
    /// little under its channel's window: about 18 MB/s at 100 ms) goes
    /// over the SFTP sessions instead, which move many files at once each;
    /// both carry files side by side.
    /// Not where only the helper can make it: names that are not UTF-8, or
    /// times kept to the nanosecond.
    fn helper_for_whole(
        &self,
        partial: &str,
        dest: &str,
        len: usize,
    ) -> Option<&Arc<HelperClient>> {
        let helper = self.helper()?;
        let must = self.precise_times() || [partial, dest].iter().any(|p| has_raw_bytes(p));
        if must || !self.lanes.far() || helper.has_room(len) {
            return Some(helper);
        }
        if !self.beside_helper.swap(true, Ordering::Relaxed) {
            tracing::info!("the helper's stream is full: small files go over SFTP beside it");
        }
        None
    }

    fn err(&self, path: &str, e: SftpError) -> Error {
        self.sftp.error(path, e)
    }

    async fn stat_with(&self, path: &str, follow: bool) -> Result<Option<Meta>> {
        if let Some(by) = self
            .by_helper(&[path])?
            .or(self.describing_helper(Describe::Stats))
        {
            return by.stat(path, follow).await;
        }
        if !follow && self.sftp.quirks().follows_final_symlinks {
            return self.lstat_not_following(path).await;
        }
        if follow {
            if let Some(meta) = self.stat_ahead.take(path).await {
                return Ok(meta);
            }
        }
        self.stat_over_sftp(path, follow).await
    }

    /// STAT or LSTAT's answer for `path`, as the server gives it.
    async fn stat_over_sftp(&self, path: &str, follow: bool) -> Result<Option<Meta>> {
        stat_on(&self.sftp, path, follow).await
    }

    /// [`Endpoint::read_whole`] over SFTP: a file that one read request
    /// holds takes two round trips, the open, then its read, fstat and
    /// close together ([`SftpFile::read_whole_and_close`]); a larger one,
    /// or one whose answer needs more, is read the long way.
    async fn read_whole_over_sftp(&self, path: &str, len: u64) -> Result<super::Whole> {
        // A name SFTP cannot carry fails here, as its open would.
        if len < u64::from(self.sftp.read_chunk()) && self.by_helper(&[path])?.is_none() {
            let read = OpenFlags::READ;
            let file = self.open(path, read, FileAttributes::empty(), read).await?;
            if let Some(whole) = file.read_whole_and_close(len as usize).await? {
                return Ok(whole);
            }
        }
        super::read_whole_by_parts(self, path, len).await
    }

    /// Opens `path` on the session with the fewest files open; `again`
    /// are the flags that open it once more on another session.
    async fn open(
        &self,
        path: &str,
        flags: OpenFlags,
        attrs: FileAttributes,
        again: OpenFlags,
    ) -> Result<SftpFile> {
        let (sftp, slot) = self.lanes.least_busy().await;
        let handle = sftp
            .raw()
            .open(path, flags, attrs)
            .await
            .map_err(|e| self.err(path, e))?
            .handle;
        Ok(SftpFile {
            sftp,
            handle,
            path: path.to_string(),
            _slot: slot,
            lanes: self.lanes.clone(),
            again,
            spread: std::sync::Mutex::new(None),
            own_in_flight: AtomicUsize::new(0),
            answered: Notify::new(),
        })
    }

    /// Learns the server's umask and who it writes as: a file created in
    /// `dir` asking for every permission bit gets those the umask leaves
    /// (as OpenSSH's sftp-server and ProFTPD apply it) and the user the
    /// server runs as for its owner, and is removed at once.
    async fn probe(&self, dir: &str) -> Result<Probe> {
        let probe = super::join(dir, &format!("{PROBE_PREFIX}{}", std::process::id()));
        let file = self.open_write(&probe, WriteMode::CreateNew, 0o777).await?;
        let (made, closed) = tokio::join!(self.lstat(&probe), file.close(false));
        let removed = self.remove_file(&probe).await;
        let made = made?;
        closed?;
        removed?;
        let mode = made.map_or(0o755, |m| m.mode) & 0o777;
        let owner = made.and_then(|m| m.owner);
        tracing::debug!(
            "{}: umask {:03o}, writes as {owner:?}",
            self.label,
            !mode & 0o777
        );
        Ok(Probe {
            umask: !mode & 0o777,
            owner,
        })
    }

    async fn probed(&self, dir: &str) -> Result<Probe> {
        self.probe
            .get_or_try_init(|| self.probe(dir))
            .await
            .copied()
    }

    /// [`Self::probed`], leaving `dir`'s time as it found it: the probe's
    /// file comes and goes there, and nothing else may change it yet.
    async fn probed_keeping_time(&self, dir: &str) -> Result<Probe> {
        let before = self.lstat(dir).await?;
        let probe = self.probed(dir).await?;
        if let (Some(before), Some(after)) = (before, self.lstat(dir).await?) {
            if !after.mtime.same(&before.mtime) {
                let _ = self.set_mtime(dir, before.mtime).await;
            }
        }
        Ok(probe)
    }

    /// Reads the server's mount table: SFTP carries no device numbers, so
    /// `-x` goes by the mount points the SFTP server's process sees. A
    /// server without `/proc` (a chroot, another system) cannot say.
    async fn read_mounts(&self) -> Result<MountTable> {
        const MOUNTINFO: &str = "/proc/self/mountinfo";
        let cannot = |why: String| {
            Error::Unsupported(format!(
                "-x/--one-file-system: {} cannot tell which file system a directory is on ({MOUNTINFO}: {why}); run without -x",
                self.sftp.host()
            ))
        };
        let file = self
            .open_read(MOUNTINFO)
            .await
            .map_err(|e| cannot(e.to_string()))?;
        let data = file.read_at(0, super::mounts::MAX_MOUNTINFO).await;
        let _ = file.close(false).await;
        let data = data.map_err(|e| cannot(e.to_string()))?;
        let table = MountTable::parse(&String::from_utf8_lossy(&data));
        match table.device_of("/") {
            Some(_) => Ok(table),
            None => Err(cannot("no mount at /".into())),
        }
    }

    /// A small file of the server's own (`/etc/passwd`), None where it
    /// cannot be read (a chroot, a server that hides it): best effort.
    async fn read_system_file(&self, path: &str) -> Result<Option<String>> {
        let file = match self.open_read(path).await {
            Ok(file) => file,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                tracing::debug!("{e}");
                return Ok(None);
            }
        };
        let data = match file {
            RemoteFile::Sftp(file) => match file.read_small_and_close().await {
                Ok(Some(data)) => Ok(data),
                // Longer than one request: read again, to the end.
                Ok(None) => self.read_long(path).await,
                Err(e) => Err(e),
            },
            file => {
                let data = file.read_at(0, SYSTEM_FILE_MOST).await;
                let _ = file.close(false).await;
                data
            }
        };
        match data {
            Ok(data) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            Err(e) if e.is_fatal() => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// [`Self::read_system_file`]'s data past one request.
    async fn read_long(&self, path: &str) -> Result<Bytes> {
        let file = self.open_read(path).await?;
        let data = file.read_at(0, SYSTEM_FILE_MOST).await;
        let _ = file.close(false).await;
        data
    }

    async fn set_attrs(&self, path: &str, attrs: FileAttributes) -> Result<()> {
        self.sftp.set_attrs(path, attrs).await
    }
}

/// STAT or LSTAT's answer for `path` on `sftp`, as the server gives it.
async fn stat_on(sftp: &Sftp, path: &str, follow: bool) -> Result<Option<Meta>> {
    let raw = sftp.raw();
    let reply = if follow {
        raw.stat(path).await
    } else {
        raw.lstat(path).await
    };
    match reply {
        Ok(attrs) => Ok(Some(meta_of(&attrs.attrs))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(sftp.error(path, e)),
    }
}

fn meta_of(attrs: &FileAttributes) -> Meta {
    let perms = attrs.permissions.unwrap_or(0);
    Meta {
        kind: Kind::of_mode(perms, 0),
        size: attrs.size.unwrap_or(0),
        mtime: Mtime::secs(attrs.mtime.map(i64::from).unwrap_or(0)),
        mode: perms & 0o7777,
        owner: attrs
            .uid
            .zip(attrs.gid)
            .map(|(uid, gid)| Owner { uid, gid }),
        inode: None,
    }
}

/// SFTP v3 sets atime and mtime together; atime becomes "now", as a fresh
/// copy would have.
fn times_of(mtime: Mtime) -> FileAttributes {
    FileAttributes {
        atime: Some(now_secs()),
        mtime: Some(mtime.secs.clamp(0, u32::MAX as i64) as u32),
        ..FileAttributes::empty()
    }
}

/// SFTP v3 carries owner and group together: what is kept goes as -1,
/// which chown(2) leaves as it is (russh-sftp would send 0 for a None).
fn owner_attributes(change: OwnerChange) -> FileAttributes {
    let (uid, gid) = change.ids();
    FileAttributes {
        uid: Some(uid),
        gid: Some(gid),
        ..FileAttributes::empty()
    }
}

/// An owner change's reply: a refusal for want of privilege that is
/// rsync's silent skip ([`OwnerChange::refusal_is_skip`]) is Ok(false).
fn owner_set(
    change: OwnerChange,
    reply: std::result::Result<(), SftpError>,
) -> std::result::Result<bool, SftpError> {
    match reply {
        Ok(()) => Ok(true),
        Err(SftpError::Status(s))
            if s.status_code == StatusCode::PermissionDenied && change.refusal_is_skip() =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A new file's attributes as its setstat requests carry them: the owner
/// change that needs a request of its own before the rest, and the rest.
/// The owner goes apart where the mode has a setuid or setgid bit (OpenSSH
/// sets a request's permissions before its owner, and chown clears those
/// bits), or where a refusal is rsync's skip (a change of group alone: a
/// server may stop at the refused part and leave the mode and time unset).
/// Otherwise, as root gives any owner, one request carries everything: a
/// request less per file.
fn owner_apart(attrs: Attrs) -> (OwnerChange, FileAttributes) {
    let owner = attrs.owner;
    let apart = owner.is_empty() || attrs.mode & 0o6000 != 0 || owner.refusal_is_skip();
    match apart {
        true => (owner, file_attributes(attrs)),
        false => {
            let (uid, gid) = owner.ids();
            let together = FileAttributes {
                uid: Some(uid),
                gid: Some(gid),
                ..file_attributes(attrs)
            };
            (OwnerChange::default(), together)
        }
    }
}

fn file_attributes(attrs: Attrs) -> FileAttributes {
    let times = match attrs.mtime {
        Some(mtime) => times_of(mtime),
        None => FileAttributes::empty(),
    };
    FileAttributes {
        permissions: Some(attrs.mode),
        ..times
    }
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Endpoint for RemoteFs {
    type File = RemoteFile;

    fn label(&self) -> &Host {
        &self.label
    }

    fn features(&self) -> Features {
        let helper = self.helper().is_some();
        let extensions = self.sftp.extensions();
        Features {
            chunk: self.sftp.read_chunk().min(self.sftp.write_chunk()) as usize,
            // Across a round trip long enough for several sessions, 16 MiB
            // in flight per file is less than a fast link holds.
            depth: match self.lanes.far() {
                true => 2 * REQUESTS_IN_FLIGHT,
                false => REQUESTS_IN_FLIGHT,
            },
            sessions: self.lanes.wanted(),
            hard_links: extensions.hardlink || helper,
            copies_ranges: helper,
            copies_within: extensions.copy_data,
            link_times: self.sftp.extensions().lsetstat || self.precise_times(),
            owners: true,
            link_owners: self.sftp.extensions().lsetstat || self.precise_times(),
            raw_byte_names: helper,
            inodes: self.describing_helper(Describe::All).is_some(),
            device_numbers: self.describing_helper(Describe::Stats).is_some(),
            makes_nodes: helper,
            // Whether the server's side runs as root is its to say: a
            // device it may not make fails alone.
            may_make_devices: true,
            xattrs: helper,
        }
    }

    async fn put_whole(
        &self,
        partial: &str,
        dest: &str,
        data: Bytes,
        attrs: Attrs,
        sync: bool,
    ) -> Result<()> {
        let Some(helper) = self.helper_for_whole(partial, dest, data.len()) else {
            return super::put_whole_by_parts(self, partial, dest, data, attrs, sync).await;
        };
        let (partial, dest) = (self.sftp.absolute(partial), self.sftp.absolute(dest));
        helper
            .put_file(&partial, &dest, &data, attrs, sync)
            .await
            .map_err(|e| self.helper_error(&dest, e))
    }

    async fn read_whole(&self, path: &str, len: u64) -> Result<super::Whole> {
        let Some(helper) = self.helper() else {
            return self.read_whole_over_sftp(path, len).await;
        };
        let (data, size, mtime) = helper
            .get_file(&self.sftp.absolute(path))
            .await
            .map_err(|e| self.helper_error(path, e))?;
        Ok(super::Whole {
            data: data.into(),
            stamp: Some((size, Mtime::secs(mtime))),
        })
    }

    async fn start_helper(&self) -> Result<()> {
        self.start_tier(false).await
    }

    async fn start_helper_early(&self) -> Result<()> {
        self.start_tier(true).await
    }

    /// Not at all until the tier is chosen.
    fn hashes(&self) -> &dyn Hashes {
        self.started.get().map_or(&NoHashes, |s| &*s.hashes)
    }

    async fn copy_ranges(&self, from: &str, to: &str, ranges: &[CopyRange]) -> Result<()> {
        let Some(helper) = self.helper() else {
            return Err(FileError::refused(
                &self.label,
                to,
                "copying within the server needs the remote helper",
            )
            .into());
        };
        let (old, new) = (self.sftp.absolute(from), self.sftp.absolute(to));
        for batch in ranges.chunks(RANGES_PER_REQUEST) {
            helper
                .copy_ranges(&old, &new, batch)
                .await
                .map_err(|e| self.helper_error(to, e))?;
        }
        Ok(())
    }

    async fn copy_within(
        &self,
        from: &RemoteFile,
        from_offset: u64,
        to: &RemoteFile,
        to_offset: u64,
        len: u64,
    ) -> Result<bool> {
        let (RemoteFile::Sftp(from), RemoteFile::Sftp(to)) = (from, to) else {
            return Ok(false);
        };
        if !self.sftp.extensions().copy_data {
            return Err(super::unsupported(
                self,
                &to.path,
                "copying between open files",
            ));
        }
        // Both handles must be of one session: the source is opened again
        // on the destination's where they differ.
        let Some(from_handle) = from.handle_on(&to.sftp).await else {
            return Ok(false);
        };
        let from_handle = from_handle.as_str();
        let mut done = 0;
        while done < len {
            let piece = (len - done).min(COPY_DATA_PIECE);
            let copied = to
                .sftp
                .copy_data(
                    from_handle,
                    from_offset + done,
                    piece,
                    &to.handle,
                    to_offset + done,
                    &to.path,
                )
                .await?;
            if !copied {
                return Ok(false);
            }
            done += piece;
        }
        Ok(true)
    }

    fn absolute(&self, path: &str) -> String {
        self.sftp.absolute(path)
    }

    async fn lstat(&self, path: &str) -> Result<Option<Meta>> {
        self.stat_with(path, false).await
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        self.stat_with(path, true).await
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        if let Some(by) = self
            .by_helper(&[dir])?
            .or(self.describing_helper(Describe::All))
        {
            return by.list(dir).await;
        }
        let listing = self.listed_ahead_or_now(dir).await?;
        if self.sftp.quirks().readlink_joins_relative {
            self.links.listed(dir, &listing);
        }
        if !listing.unnamed.iter().any(|u| u.why == Unnameable::NotUtf8) {
            return Ok(listing);
        }
        // Names SFTP could not carry: the helper lists them as they are,
        // started now if it was not yet.
        self.start_helper().await?;
        match self.helper() {
            Some(helper) => ByHelper { fs: self, helper }.list(dir).await,
            None => Ok(listing),
        }
    }

    fn list_soon(&self, dirs: &[&str]) {
        // Listings the helper makes are not started ahead.
        if self.describing_helper(Describe::All).is_some() {
            return;
        }
        for &dir in dirs {
            if !matches!(self.by_helper(&[dir]), Ok(None)) {
                continue;
            }
            let (sftp, label, path) = (self.sftp.clone(), self.label.clone(), dir.to_string());
            let listing = async move { list_dir_over_sftp(&sftp, &label, &path).await };
            self.listing_ahead.start(dir, listing);
        }
    }

    fn stat_soon(&self, path: &str) {
        // As stat_with: what the helper would answer is not started ahead.
        let by_helper = !matches!(self.by_helper(&[path]), Ok(None));
        if by_helper || self.describing_helper(Describe::Stats).is_some() {
            return;
        }
        let (sftp, at) = (self.sftp.clone(), path.to_string());
        let stat = async move { stat_on(&sftp, &at, true).await };
        self.stat_ahead.start(path, stat);
    }

    async fn open_read(&self, path: &str) -> Result<RemoteFile> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by
                .open(path, OpenHow::Read, 0)
                .await
                .map(RemoteFile::Helper);
        }
        self.open(
            path,
            OpenFlags::READ,
            FileAttributes::empty(),
            OpenFlags::READ,
        )
        .await
        .map(RemoteFile::Sftp)
    }

    async fn open_write(&self, path: &str, how: WriteMode, mode: u32) -> Result<RemoteFile> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by
                .open(path, open_how(how), mode)
                .await
                .map(RemoteFile::Helper);
        }
        let mut flags = OpenFlags::WRITE | OpenFlags::READ | OpenFlags::CREATE;
        match how {
            WriteMode::CreateNew => flags |= OpenFlags::EXCLUDE,
            WriteMode::Keep => {}
        }
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        // Opened again, the file must be there already: never created
        // (nor emptied) by a second open.
        let again = OpenFlags::WRITE | OpenFlags::READ;
        self.open(path, flags, attrs, again)
            .await
            .map(RemoteFile::Sftp)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[to, from])? {
            return by.rename(from, to).await;
        }
        if self.sftp.quirks().follows_final_symlinks {
            return self.rename_not_following(from, to).await;
        }
        self.sftp.rename_replace(from, to).await
    }

    async fn hard_link(&self, from: &str, to: &str) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[to, from])? {
            return by.hard_link(from, to).await;
        }
        if self.sftp.extensions().hardlink {
            return self.sftp.hard_link(from, to).await;
        }
        match self.helper() {
            Some(helper) => ByHelper { fs: self, helper }.hard_link(from, to).await,
            None => Err(super::unsupported(self, to, "making hard links")),
        }
    }

    async fn set_mtime(&self, path: &str, mtime: Mtime) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.set_mtime(path, mtime).await;
        }
        self.set_attrs(path, times_of(mtime)).await
    }

    async fn set_owner(&self, path: &str, change: OwnerChange) -> Result<bool> {
        if change.is_empty() {
            return Ok(true);
        }
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.set_owner(path, change).await;
        }
        let reply = self
            .sftp
            .set_attrs_raw(path, owner_attributes(change))
            .await;
        owner_set(change, reply).map_err(|e| self.err(path, e))
    }

    async fn xattrs(&self, path: &str, scope: XattrScope) -> Result<Xattrs> {
        match self.helper() {
            Some(helper) => ByHelper { fs: self, helper }.xattrs(path, scope).await,
            None => Err(super::unsupported(
                self,
                path,
                "reading extended attributes and ACLs",
            )),
        }
    }

    async fn set_xattrs(&self, path: &str, want: &Xattrs, scope: XattrScope) -> Result<()> {
        match self.helper() {
            Some(helper) => {
                let by = ByHelper { fs: self, helper };
                by.set_xattrs(path, want, scope).await
            }
            None => Err(super::unsupported(
                self,
                path,
                "setting extended attributes and ACLs",
            )),
        }
    }

    async fn id_names(&self) -> Result<super::IdNames> {
        let (passwd, group) = tokio::join!(
            self.read_system_file("/etc/passwd"),
            self.read_system_file("/etc/group")
        );
        match (passwd?, group?) {
            (Some(passwd), Some(group)) => Ok(super::IdNames::parse(&passwd, &group)),
            _ => Ok(super::IdNames::Unknown),
        }
    }

    async fn identity(&self, dir: Option<&str>) -> Result<Identity> {
        // The SFTP server's own process says who it is and which groups
        // it has, where it sees a /proc (Linux, outside a chroot).
        if let Some(status) = self.status.clone().await {
            if let Some(identity) = identity_of_status(&status) {
                return Ok(identity);
            }
        }
        // Only a server without one is asked by a file of its making: one
        // that hides it is taken for a user who may give no owner.
        let absent = match self.lstat(PROC_STATUS).await {
            Ok(found) => found.is_none(),
            Err(e) if e.is_fatal() => return Err(e),
            Err(_) => false,
        };
        let owner = match (dir, self.probe.get()) {
            (_, Some(probe)) => probe.owner,
            (Some(dir), None) if absent => self.probed_keeping_time(dir).await?.owner,
            // Without a trace: who owns the session's starting directory
            // (a home directory is its user's).
            (None, None) if absent => self.lstat(".").await?.and_then(|m| m.owner),
            _ => None,
        };
        // Its groups unknown: a change of group is tried, and a refusal
        // taken as rsync's skip.
        Ok(Identity {
            root: owner.is_some_and(|o| o.uid == 0),
            groups: None,
        })
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.set_mode(path, mode).await;
        }
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        self.set_attrs(path, attrs).await
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.remove_file(path).await;
        }
        self.sftp
            .raw()
            .remove(path)
            .await
            .map(drop)
            .map_err(|e| self.err(path, e))
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.remove_dir(path).await;
        }
        self.sftp
            .raw()
            .rmdir(path)
            .await
            .map(drop)
            .map_err(|e| self.err(path, e))
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.mkdir(path, mode).await;
        }
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        self.sftp
            .raw()
            .mkdir(path, attrs)
            .await
            .map(drop)
            .map_err(|e| self.err(path, e))
    }

    async fn make_node(&self, path: &str, node: Node, mode: u32) -> Result<()> {
        let Some(helper) = self.helper() else {
            return Err(super::unsupported(
                self,
                path,
                "making fifos, sockets and devices",
            ));
        };
        ByHelper { fs: self, helper }
            .make_node(path, node, mode)
            .await
    }

    async fn symlink(&self, target: &str, path: &str) -> Result<()> {
        if let Some(by) = self.by_describing_helper(&[path, target])? {
            return by.symlink(target, path).await;
        }
        // OpenSSH's sftp-server reads SSH_FXP_SYMLINK's two strings as
        // (target, link), the reverse of the draft; russh-sftp sends its first
        // argument first, so the target goes first here.
        self.sftp
            .raw()
            .symlink(target, path)
            .await
            .map_err(|e| self.err(path, e))?;
        if self.sftp.quirks().follows_final_symlinks {
            self.links.made(path, target);
        }
        Ok(())
    }

    async fn umask(&self, dir: &str) -> Result<u32> {
        // The process's umask is the one its new files get, except where
        // the server applies one of its own (ProFTPD's Umask directive):
        // there, and without a /proc, a file made for the purpose says.
        if self.sftp.quirks().process_umask {
            if let Some(umask) = self
                .status
                .clone()
                .await
                .as_deref()
                .and_then(umask_of_status)
            {
                return Ok(umask);
            }
        }
        self.probed(dir).await.map(|probe| probe.umask)
    }

    async fn file_system(&self, dir: &str) -> Result<u64> {
        let mounts = self.mounts.get_or_try_init(|| self.read_mounts()).await?;
        let real = match self.by_helper(&[dir])? {
            Some(by) => Some(by.real_path(dir).await?),
            None => self.real_path(dir).await?,
        };
        Ok(real
            .and_then(|path| mounts.device_of(&path))
            .unwrap_or_default())
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        if let Some(by) = self.by_describing_helper(&[path])? {
            return by.read_link(path).await;
        }
        if self.sftp.quirks().readlink_joins_relative {
            return self.read_link_as_written(path).await;
        }
        self.read_link_over_sftp(path).await
    }
}

impl RemoteFs {
    /// READLINK's answer for `path`, as the server gives it.
    async fn read_link_over_sftp(&self, path: &str) -> Result<String> {
        let name = self
            .sftp
            .raw()
            .readlink(path)
            .await
            .map_err(|e| self.err(path, e))?;
        let Some(target) = name.files.into_iter().next() else {
            let message = "the server returned no symlink target";
            return Err(FileError::server(&self.label, path, message).into());
        };
        limits::link_target(&self.label, path, target.filename)
    }

    /// `dir`'s listing over SFTP: the one started ahead of the walk
    /// ([`Endpoint::list_soon`]) if there is one and it succeeded, else one
    /// made now.
    async fn listed_ahead_or_now(&self, dir: &str) -> Result<Listing> {
        match self.listing_ahead.take(dir).await {
            Some(listed) => Ok(listed),
            None => self.list_over_sftp(dir).await,
        }
    }

    /// `dir`'s listing over SFTP, made now.
    async fn list_over_sftp(&self, dir: &str) -> Result<Listing> {
        list_dir_over_sftp(&self.sftp, &self.label, dir).await
    }

    /// `dir` with every symlink resolved, as the SFTP server says.
    async fn real_path(&self, dir: &str) -> Result<Option<String>> {
        let real = self
            .sftp
            .raw()
            .realpath(dir)
            .await
            .map_err(|e| self.err(dir, e))?;
        Ok(real.files.into_iter().next().map(|f| f.filename))
    }
}

/// Lists `dir` over SFTP: OPENDIR, then [`READDIR_AHEAD`] reads at once
/// until the end; the close goes out without being waited for.
async fn list_dir_over_sftp(sftp: &Sftp, label: &Host, dir: &str) -> Result<Listing> {
    let raw = sftp.raw().clone();
    let slot = sftp.handle_slot().await;
    let handle = raw
        .opendir(dir)
        .await
        .map_err(|e| sftp.error(dir, e))?
        .handle;
    let mut gathering = Gathering::new(sftp.host(), label, dir);
    let outcome = loop {
        match read_dir_batch(sftp, &raw, &handle, &mut gathering, dir).await {
            Ok(true) => break Ok(()),
            Ok(false) => continue,
            Err(e) => break Err(e),
        }
    };
    // Nothing waits on the close: the handle's slot is freed with it.
    tokio::spawn(async move {
        let _ = raw.close(handle).await;
        drop(slot);
    });
    outcome?;
    Ok(gathering.finish())
}

/// Sends [`READDIR_AHEAD`] reads of an open directory at once and adds
/// what they return to `gathering`; true once the end was reached. The
/// server answers them in order, so a directory of a few hundred entries
/// costs one round trip, not one per hundred. Replies after the end (an
/// end again, or an error from a server that closed the listing) are
/// ignored.
async fn read_dir_batch(
    sftp: &Sftp,
    raw: &RawSftpSession,
    handle: &str,
    gathering: &mut Gathering<'_>,
    dir: &str,
) -> Result<bool> {
    let replies = futures::future::join_all((0..READDIR_AHEAD).map(|_| raw.readdir(handle))).await;
    for reply in replies {
        match reply {
            Ok(name) => {
                for file in name.files {
                    // russh-sftp turns bytes that are not UTF-8 into
                    // U+FFFD: such a name cannot be addressed again.
                    let mangled = file.filename.contains(char::REPLACEMENT_CHARACTER);
                    gathering.take(file.filename, meta_of(&file.attrs), mangled)?;
                }
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => return Ok(true),
            Err(e) => return Err(sftp.error(dir, e)),
        }
    }
    Ok(false)
}

impl SftpFile {
    /// Spreads the file's reads and writes over the connection's other
    /// sessions: those open now, and each that opens later, as the next
    /// request finds it (that request opens the file there; the others go
    /// on meanwhile, none waits a round trip for it). A session that
    /// refuses is left out (said under `-vv`). Only a file's data requests
    /// are spread: its attributes, sync and close stay on its own session.
    /// `bytes` of them may call for a second session to a near server.
    async fn spread(&self, bytes: u64) {
        self.lanes.widen_for_large(bytes);
        if !self.lanes.several() {
            return;
        }
        if let Ok(mut spread) = self.spread.lock() {
            spread.get_or_insert_with(|| self.new_spread());
        }
    }

    /// A spread with no other handle yet.
    fn new_spread(&self) -> Spread {
        Spread {
            own_connection: self.lanes.connection_of(&self.sftp),
            handles: Vec::new(),
            tried: 0,
            widening: false,
        }
    }

    /// Opens the file on the sessions that opened since it was last
    /// widened, if it is spread and no other request is at it already.
    async fn widen(&self) {
        let new: Vec<Arc<Sftp>> = {
            let Ok(mut spread) = self.spread.lock() else {
                return;
            };
            let Some(spread) = spread.as_mut() else {
                return;
            };
            let open = self.lanes.open_now();
            if spread.widening || open.len() <= spread.tried {
                return;
            }
            let new = open[spread.tried..].iter();
            let new = new.filter(|sftp| !Arc::ptr_eq(sftp, &self.sftp)).cloned();
            spread.tried = open.len();
            spread.widening = true;
            new.collect()
        };
        let opened = new.into_iter().map(|sftp| self.open_on(sftp, Wait::No));
        let opened = futures::future::join_all(opened).await;
        if let Ok(mut spread) = self.spread.lock() {
            if let Some(spread) = spread.as_mut() {
                spread
                    .handles
                    .extend(opened.into_iter().flatten().map(Arc::new));
                spread.widening = false;
                let sessions = spread.handles.len() + 1;
                tracing::debug!(path = self.path, "spread over {sessions} sessions");
            }
        }
    }

    /// The file opened again on `sftp`; None if that failed (said under
    /// `-vv`), or, with [`Wait::No`], if that session has no handle free
    /// now: a write that widens the file must not wait behind the small
    /// files that fill a session.
    async fn open_on(&self, sftp: Arc<Sftp>, wait: Wait) -> Option<LaneHandle> {
        let slot = match wait {
            Wait::Yes => sftp.handle_slot().await,
            Wait::No => Some(sftp.handle_slot_now()?),
        };
        let reply = sftp
            .raw()
            .open(self.path.as_str(), self.again, FileAttributes::empty())
            .await;
        match reply {
            Ok(opened) => Some(LaneHandle {
                connection: self.lanes.connection_of(&sftp),
                sftp,
                handle: opened.handle,
                _slot: slot,
                in_flight: AtomicUsize::new(0),
            }),
            Err(e) => {
                tracing::info!("{}: not opened on another session: {e}", self.path);
                None
            }
        }
    }

    /// The file's handle on the session `sftp`, opening it there (among
    /// the spread handles) if needed.
    async fn handle_on(&self, sftp: &Arc<Sftp>) -> Option<String> {
        if Arc::ptr_eq(sftp, &self.sftp) {
            return Some(self.handle.clone());
        }
        let known = self.spread.lock().ok().and_then(|spread| {
            let handles = &spread.as_ref()?.handles;
            let lane = handles.iter().find(|lane| Arc::ptr_eq(&lane.sftp, sftp))?;
            Some(lane.handle.clone())
        });
        if known.is_some() {
            return known;
        }
        let lane = self.open_on(sftp.clone(), Wait::Yes).await?;
        let handle = lane.handle.clone();
        if let Ok(mut spread) = self.spread.lock() {
            let spread = spread.get_or_insert_with(|| self.new_spread());
            spread.handles.push(Arc::new(lane));
        }
        Some(handle)
    }

    /// Closes the spread handles: after every request on them was
    /// answered, before the file's own closes. An error of any is returned.
    async fn close_spread(&mut self) -> Result<()> {
        let spread = self.take_spread();
        self.close_lanes(spread).await
    }

    /// The spread handles, taken: later requests go to the file's own.
    fn take_spread(&self) -> Option<Spread> {
        self.spread.lock().ok().and_then(|mut spread| spread.take())
    }

    /// Closes `spread`'s handles (their requests all answered).
    async fn close_lanes(&self, spread: Option<Spread>) -> Result<()> {
        let Some(spread) = spread else {
            return Ok(());
        };
        let path = self.path.as_str();
        let closes = spread.handles.iter().map(|lane| async move {
            let closed = lane.sftp.raw().close(lane.handle.as_str()).await;
            closed.map(drop).map_err(|e| lane.sftp.error(path, e))
        });
        futures::future::try_join_all(closes).await.map(drop)
    }

    /// The session and handle for a read or a write: the file's own until
    /// it is spread; then the least loaded session
    /// ([`SftpFile::least_loaded_lane`]), waiting while each has `most` of
    /// the file's requests in flight (any session may read or write
    /// anywhere in the file, and one that opens later takes requests at
    /// once). The request stays counted until what is returned is dropped.
    async fn route(&self, most: usize) -> (Arc<Sftp>, Route, Option<LaneRequest<'_>>) {
        loop {
            self.widen().await;
            let answered = self.answered.notified();
            match self.least_loaded_lane(most) {
                None => return (self.sftp.clone(), Route::Own, None),
                Some(Some(request)) => {
                    let (sftp, route) = match &request.lane {
                        Some(lane) => (lane.sftp.clone(), Route::Spread(lane.clone())),
                        None => (self.sftp.clone(), Route::Own),
                    };
                    return (sftp, route, Some(request));
                }
                Some(None) => answered.await,
            }
        }
    }

    /// The spread file's session with the fewest of its requests in flight
    /// on the session's whole connection, then on the session itself;
    /// counted taken. Some(None) when each has `most`; None when the file
    /// is not spread. Counting by connection keeps one connection's
    /// sessions from holding more than the others: they share one TCP
    /// window, and requests are taken in order, so the slowest holds back
    /// the rest (a far link's first connection, with seven sessions, took
    /// as many requests as three more connections with two each, and
    /// answered them three times slower).
    fn least_loaded_lane(&self, most: usize) -> Option<Option<LaneRequest<'_>>> {
        let spread = self.spread.lock().ok()?;
        let spread = spread.as_ref()?;
        let handles = &spread.handles;
        let own = (
            spread.own_connection,
            self.own_in_flight.load(Ordering::Relaxed),
            None,
        );
        let others = handles.iter().map(|lane| {
            let in_flight = lane.in_flight.load(Ordering::Relaxed);
            (lane.connection, in_flight, Some(lane.clone()))
        });
        let lanes: Vec<_> = std::iter::once(own).chain(others).collect();
        let on_connection = |connection: usize| -> usize {
            let same = lanes.iter().filter(|(on, _, _)| *on == connection);
            same.map(|(_, in_flight, _)| in_flight).sum()
        };
        let least = lanes
            .iter()
            .filter(|(_, in_flight, _)| *in_flight < most)
            .min_by_key(|(connection, in_flight, _)| (on_connection(*connection), *in_flight));
        let Some((_, _, lane)) = least else {
            return Some(None);
        };
        match lane {
            Some(lane) => lane.in_flight.fetch_add(1, Ordering::Relaxed),
            None => self.own_in_flight.fetch_add(1, Ordering::Relaxed),
        };
        let lane = lane.clone();
        Some(Some(LaneRequest { file: self, lane }))
    }

    async fn write_piece(&self, offset: u64, data: Bytes) -> Result<()> {
        let (sftp, route, _counted) = self.route(WRITES_PER_LANE).await;
        let handle = route.handle(self);
        sftp.raw()
            .write(handle, offset, Vec::from(data))
            .await
            .map(drop)
            .map_err(|e| sftp.error(&self.path, e))
    }
}

impl SftpFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        // Reads are not held to a number per session: those a copy keeps
        // in flight are its only bound, as before it was spread.
        let (sftp, route, _counted) = self.route(usize::MAX).await;
        let handle = route.handle(self);
        let raw = sftp.raw();
        let mut out = Vec::new();
        // A server may answer with fewer bytes than asked for before the end
        // of the file: keep asking until the range is full or EOF is reported.
        while out.len() < len {
            let want = (len - out.len()) as u32;
            match raw.read(handle, offset + out.len() as u64, want).await {
                Ok(data) if data.data.is_empty() => break,
                Ok(data) if out.is_empty() && data.data.len() == len => {
                    return Ok(data.data.into())
                }
                Ok(data) => {
                    out.extend_from_slice(&data.data[..data.data.len().min(len - out.len())])
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => return Err(sftp.error(&self.path, e)),
            }
        }
        Ok(out.into())
    }

    /// All of a file that one read request holds, the file closed in the
    /// same round trip (read and close go out together); None where it
    /// fills the request and may hold more. A short answer is the whole
    /// file: SFTP servers read regular files to the end of the request or
    /// of the file (draft-ietf-secsh-filexfer-02, 6.4).
    async fn read_small_and_close(self) -> Result<Option<Bytes>> {
        let (read, closed) = read_first_and_close(&self.sftp, &self.handle).await;
        let data = read.map_err(|e| self.sftp.error(&self.path, e))?;
        closed.map_err(|e| self.sftp.error(&self.path, e))?;
        Ok((data.len() < self.sftp.read_chunk() as usize).then(|| data.into()))
    }

    async fn read_last(&self, offset: u64, len: usize) -> Result<Bytes> {
        // One byte more in the same request: sftp-server answers with what
        // the file holds, so the probe costs nothing. A short answer says
        // nothing either way (servers may answer short), and a range that
        // fills the largest request gets no probe, to stay within limits.
        if len as u64 >= u64::from(self.sftp.read_chunk()) {
            return self.read_at(offset, len).await;
        }
        let reply = self
            .sftp
            .raw()
            .read(self.handle.as_str(), offset, len as u32 + 1)
            .await;
        match reply {
            Ok(data) if data.data.len() > len => {
                self.past_the_end(offset + len as u64, data.data, len).await
            }
            Ok(data) if data.data.len() == len => Ok(data.data.into()),
            Ok(data) => {
                let got = data.data.len();
                let rest = self.read_at(offset + got as u64, len - got).await?;
                let mut whole = data.data;
                whole.extend_from_slice(&rest);
                Ok(whole.into())
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Ok(Bytes::new()),
            Err(e) => Err(self.sftp.error(&self.path, e)),
        }
    }

    /// Reads this whole file of `len` bytes (less than one read request
    /// carries) and closes it in one round trip: the read (one byte more,
    /// to see where the file ends), an fstat and the close go out together,
    /// and a server carries out requests on one handle in the order sent.
    /// The fstat, after the read, is the file as read (the stamp a later
    /// check compares). None where the read came back short of a file
    /// that did not shrink: some servers answer short, and the file is read
    /// again the long way.
    async fn read_whole_and_close(self, len: usize) -> Result<Option<super::Whole>> {
        let raw = self.sftp.raw();
        let handle = self.handle.as_str();
        // join! polls in order and each request is sent on its first poll.
        let (read, now, closed) = tokio::join!(
            raw.read(handle, 0, len as u32 + 1),
            raw.fstat(handle),
            raw.close(handle)
        );
        let data = match read {
            Ok(data) => data.data,
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Vec::new(),
            Err(e) => return Err(self.sftp.error(&self.path, e)),
        };
        let now = now.map_err(|e| self.sftp.error(&self.path, e))?.attrs;
        closed.map_err(|e| self.sftp.error(&self.path, e))?;
        // Short, and not because the file shrank to what came back.
        if data.len() < len && now.size != Some(data.len() as u64) {
            return Ok(None);
        }
        let data = match data.len() > len {
            true => self.truncated_past_the_end(len as u64, data, &now)?,
            false => data,
        };
        let now = meta_of(&now);
        Ok(Some(super::Whole {
            data: data.into(),
            stamp: Some((now.size, now.mtime)),
        }))
    }

    /// `data`, read past `end`, cut there when the file grew since it was
    /// planned (`now`'s size); else the server's sizes are wrong: it fails.
    fn truncated_past_the_end(
        &self,
        end: u64,
        mut data: Vec<u8>,
        now: &FileAttributes,
    ) -> Result<Vec<u8>> {
        if now.size.is_some_and(|size| size > end) {
            data.truncate(end as usize);
            return Ok(data);
        }
        let message = format!(
            "the file goes on past the {end} bytes the server gave as its size \
             (the server's sizes are wrong)"
        );
        Err(FileError::refused(self.sftp.label(), &self.path, message).into())
    }

    /// The last read of the file found bytes past `end`, where the caller
    /// expects it to end; `data` ends with them. A file that grew since it
    /// was planned is read only up to `end`, as a push reads a local file:
    /// the copy has the planned size, and the check after the copy finds
    /// the file changed. A file that still says it ends at `end` shows the
    /// server's sizes are wrong: it fails.
    async fn past_the_end(&self, end: u64, data: Vec<u8>, len: usize) -> Result<Bytes> {
        let now = self
            .sftp
            .raw()
            .fstat(self.handle.as_str())
            .await
            .map_err(|e| self.sftp.error(&self.path, e))?;
        let mut data = self.truncated_past_the_end(end, data, &now.attrs)?;
        data.truncate(len);
        Ok(data.into())
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        // A request larger than the server's limit would end the session, so
        // larger writes go out as several requests, all in flight at once.
        let chunk = self.sftp.write_chunk() as usize;
        if data.len() <= chunk {
            // Unsliced, the buffer stays uniquely owned and becomes the
            // request's Vec without a copy; a slice made it shared and cost a
            // copy per request (6.6 % of the main thread in a push profile).
            return self.write_piece(offset, data).await;
        }
        let pieces = (0..data.len()).step_by(chunk.max(1)).map(|start| {
            let piece = data.slice(start..data.len().min(start + chunk));
            self.write_piece(offset + start as u64, piece)
        });
        futures::future::try_join_all(pieces).await.map(drop)
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let attrs = FileAttributes {
            size: Some(len),
            ..FileAttributes::empty()
        };
        self.sftp
            .raw()
            .fsetstat(self.handle.as_str(), attrs)
            .await
            .map(drop)
            .map_err(|e| self.sftp.error(&self.path, e))
    }

    async fn finish(self, last: Option<(u64, Bytes)>, attrs: Attrs, sync: bool) -> Result<()> {
        // Every write on the other sessions was answered: their handles
        // close in the same round trip as the file's own requests.
        let spread = self.take_spread();
        let raw = self.sftp.raw();
        let handle = self.handle.as_str();
        // join! polls in order and each request is sent on its first poll:
        // the server receives write, setstat, fsync, close in that order.
        let (apart, together) = owner_apart(attrs);
        let (spread_closed, written, owned, set, synced, closed) = tokio::join!(
            self.close_lanes(spread),
            async {
                match last {
                    Some((offset, data)) => self.write_at(offset, data).await,
                    None => Ok(()),
                }
            },
            async {
                if apart.is_empty() {
                    return Ok(true);
                }
                let reply = raw.fsetstat(handle, owner_attributes(apart)).await;
                owner_set(apart, reply.map(drop))
            },
            raw.fsetstat(handle, together),
            async {
                if sync {
                    self.sftp.fsync(handle, &self.path).await
                } else {
                    Ok(())
                }
            },
            raw.close(handle)
        );
        spread_closed?;
        written?;
        owned.map_err(|e| self.sftp.error(&self.path, e))?;
        set.map_err(|e| self.sftp.error(&self.path, e))?;
        synced?;
        closed.map(drop).map_err(|e| self.sftp.error(&self.path, e))
    }

    async fn close(mut self, sync: bool) -> Result<()> {
        self.close_spread().await?;
        if sync {
            self.sftp.fsync(&self.handle, &self.path).await?;
        }
        self.sftp
            .raw()
            .close(self.handle.as_str())
            .await
            .map(drop)
            .map_err(|e| self.sftp.error(&self.path, e))
    }
}

/// Whether opening a file on another session may wait for a free handle.
#[derive(Clone, Copy)]
enum Wait {
    Yes,
    No,
}

/// Which handle of a file carries a request.
enum Route {
    Own,
    Spread(Arc<LaneHandle>),
}

impl Route {
    fn handle<'a>(&'a self, file: &'a SftpFile) -> &'a str {
        match self {
            Route::Own => &file.handle,
            Route::Spread(lane) => &lane.handle,
        }
    }
}

impl FileHandle for RemoteFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        match self {
            RemoteFile::Sftp(file) => file.read_at(offset, len).await,
            RemoteFile::Helper(file) => file.read_at(offset, len).await,
        }
    }

    async fn read_last(&self, offset: u64, len: usize) -> Result<Bytes> {
        match self {
            RemoteFile::Sftp(file) => file.read_last(offset, len).await,
            RemoteFile::Helper(file) => file.read_at(offset, len).await,
        }
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        match self {
            RemoteFile::Sftp(file) => file.write_at(offset, data).await,
            RemoteFile::Helper(file) => file.write_at(offset, data).await,
        }
    }

    async fn spread(&self, bytes: u64) {
        if let RemoteFile::Sftp(file) = self {
            file.spread(bytes).await
        }
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        match self {
            RemoteFile::Sftp(file) => file.set_len(len).await,
            RemoteFile::Helper(file) => file.set_len(len).await,
        }
    }

    async fn finish(self, last: Option<(u64, Bytes)>, attrs: Attrs, sync: bool) -> Result<()> {
        match self {
            RemoteFile::Sftp(file) => file.finish(last, attrs, sync).await,
            RemoteFile::Helper(file) => {
                if let Some((offset, data)) = last {
                    file.write_at(offset, data).await?;
                }
                file.close_with(Some(attrs), sync).await
            }
        }
    }

    async fn close(self, sync: bool) -> Result<()> {
        match self {
            RemoteFile::Sftp(file) => file.close(sync).await,
            RemoteFile::Helper(file) => file.close_with(None, sync).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_status_says_who_it_is() {
        let status = "Name:\tsftp-server\nUid:\t1000\t65534\t65534\t65534\n\
                      Gid:\t1000\t65533\t65533\t65533\nGroups:\t27 100 \n";
        let id = identity_of_status(status).unwrap();
        assert!(!id.root);
        assert_eq!(id.groups, Some(vec![27, 100, 65533]));
        let root = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert!(identity_of_status(root).unwrap().root);
        assert_eq!(identity_of_status("Uid:\t0\n"), None);
    }

    #[test]
    fn a_process_status_says_its_umask() {
        let status = "Name:\tsftp-server\nUmask:\t0027\nState:\tS (sleeping)\n";
        assert_eq!(umask_of_status(status), Some(0o027));
        assert_eq!(umask_of_status("Umask:\t0002\n"), Some(0o002));
        // Older kernels have no such line: a probe file says instead.
        assert_eq!(umask_of_status("Name:\tsftp-server\n"), None);
        assert_eq!(umask_of_status("Umask:\tx\n"), None);
    }
}
