//! The one interface the sync engine sees: a file tree it can stat, list, read
//! and write, implemented by the local filesystem and by a remote server over
//! SFTP. Push, pull and local-to-local copies are the same engine code with
//! different endpoints on each side (rclone's Fs/Object split, in Rust traits).
//!
//! Paths are `/`-separated strings as the endpoint understands them: absolute,
//! or relative to the process's directory (local) or the login directory
//! (remote).

pub(crate) mod ahead;
pub(crate) mod hashes;
pub(crate) mod local;
pub(crate) mod mounts;
pub(crate) mod names;
pub(crate) mod remote;

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::{DirFailure, Error, FileError, Host, Problem, Result};
use hashes::Hashes;

pub(crate) use crate::meta::{
    Attrs, CopyRange, Entry, Identity, Kind, Listing, Meta, Mtime, Node, OwnerChange, Unnameable,
    Unnamed, WriteMode, XattrScope, Xattrs,
};
pub(crate) use crate::paths::{base_name, join, parent};
pub(crate) use local::LocalFs;
pub(crate) use names::IdNames;
pub(crate) use remote::RemoteFs;

/// An open file. Reads and writes take an offset, so many can be in flight at
/// once; the engine decides how many.
pub(crate) trait FileHandle: Send + Sync + 'static {
    /// Reads up to `len` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, offset: u64, len: usize) -> impl Future<Output = Result<Bytes>> + Send;

    /// Reads the last `len` bytes of a file the caller believes ends at
    /// `offset + len`, and no further. A server's sizes are only its word:
    /// where it costs no round trip, this also asks for one byte more, and
    /// fails if it comes while the file still claims to end there (a file
    /// that grew meanwhile is read to the expected end, as a local one).
    fn read_last(&self, offset: u64, len: usize) -> impl Future<Output = Result<Bytes>> + Send {
        self.read_at(offset, len)
    }

    fn write_at(&self, offset: u64, data: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Readies the file for `bytes` of large reads or writes at once: a
    /// remote one to a far server (or a near one, for a very large copy)
    /// opens it on every SFTP session of the connection, each with a
    /// flow-control window of its own, and spreads the requests over them.
    /// A session that refuses is left out; nothing fails.
    fn spread(&self, bytes: u64) -> impl Future<Output = ()> + Send {
        let _ = bytes;
        async {}
    }

    fn set_len(&self, len: u64) -> impl Future<Output = Result<()>> + Send;

    /// Closes the file, first making its contents durable when `sync` is set.
    /// Errors of earlier writes surface here at the latest.
    fn close(self, sync: bool) -> impl Future<Output = Result<()>> + Send;

    /// Writes `last` (the file's final piece at its offset, if any), sets
    /// `attrs`, makes the contents durable when `sync` is set, and closes:
    /// over SFTP every request goes out at once, so a small file's whole
    /// write costs one round trip (requests on one handle are carried out
    /// in order). An error of any step, or of an earlier write, is returned.
    fn finish(
        self,
        last: Option<(u64, Bytes)>,
        attrs: Attrs,
        sync: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// How an endpoint computes hashes of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hashing {
    /// Where the data is: on this machine, or by the remote helper.
    AtTheData,
    /// By reading the data over the network and hashing it here.
    ByReading,
    /// Not at all: no delta, no end-to-end check (a resume compares the
    /// whole partial by reading it back).
    Off,
}

/// What an endpoint can do and how it is best driven, in one place
/// (rclone's `Features`): the engine asks here before it calls an optional
/// operation, and a new optional operation is a method whose default
/// refuses plus a field here. An optional method called where its field is
/// false fails with [`unsupported`]. How the endpoint hashes is its own seam,
/// [`Endpoint::hashes`]. A remote endpoint may offer more once
/// [`Endpoint::start_helper`] has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features {
    /// Bytes per read or write request.
    pub chunk: usize,
    /// Requests worth keeping in flight per open file.
    pub depth: usize,
    /// Sessions the data goes over (a far server's several SFTP
    /// sessions): `--jobs` files are kept in flight per session.
    pub sessions: usize,
    /// Whether [`Endpoint::hard_link`] works here.
    pub hard_links: bool,
    /// Whether [`Endpoint::copy_ranges`] works here.
    pub copies_ranges: bool,
    /// Whether [`Endpoint::copy_within`] works here.
    pub copies_within: bool,
    /// Whether [`Endpoint::set_mtime`] can set a symlink's own time (SFTP
    /// needs `lsetstat@openssh.com`; without it a link keeps the time it
    /// was made at, as rsync's with `--omit-link-times`).
    pub link_times: bool,
    /// Whether [`Endpoint::set_owner`] works here (`-o`, `-g`).
    pub owners: bool,
    /// Whether it can change a symlink's own owner (SFTP needs
    /// `lsetstat@openssh.com`: a plain SETSTAT would change the target's).
    pub link_owners: bool,
    /// Whether names may hold bytes that are not UTF-8 (carried in paths as
    /// `paths::from_bytes` says). SFTP through russh-sftp takes strings only.
    pub raw_byte_names: bool,
    /// Whether listings and stats carry [`Meta::inode`], by which `-H`
    /// finds a file's other names. SFTP v3 has no inodes: a remote side
    /// has them only from its helper, started for it.
    pub inodes: bool,
    /// Whether stats carry a device node's number (`-D`): SFTP v3 has
    /// none; a remote side has them from its helper.
    pub device_numbers: bool,
    /// Whether [`Endpoint::make_node`] works here: fifos and sockets.
    pub makes_nodes: bool,
    /// Whether device nodes are worth trying here (`-D`): rsync's
    /// receiver makes them only as root. A local side knows; a remote one
    /// tries, and the server refuses each if it must.
    pub may_make_devices: bool,
    /// Whether [`Endpoint::xattrs`] and [`Endpoint::set_xattrs`] work here
    /// (`-X`, `-A`): SFTP v3 has no xattrs or ACLs; a remote side has them
    /// from its helper.
    pub xattrs: bool,
}

/// A file tree on one side of a sync.
pub(crate) trait Endpoint: Send + Sync {
    type File: FileHandle;

    /// The host its files are on, as messages name it: shown as `host:`
    /// before a remote path, as nothing before a local one.
    fn label(&self) -> &Host;

    /// What it can do and how it is best driven.
    fn features(&self) -> Features;

    /// `path` as an absolute path of this endpoint (relative paths are
    /// taken from the process's or the SFTP session's directory).
    fn absolute(&self, path: &str) -> String;

    /// lstat: None when the path does not exist.
    fn lstat(&self, path: &str) -> impl Future<Output = Result<Option<Meta>>> + Send;

    /// stat following symlinks: None when the path does not exist.
    fn stat(&self, path: &str) -> impl Future<Output = Result<Option<Meta>>> + Send;

    /// The entries of a directory, without `.` and `..`, sorted by name.
    fn list(&self, dir: &str) -> impl Future<Output = Result<Listing>> + Send;

    /// Starts listing `dirs`, which [`Endpoint::list`] will soon be asked
    /// for, in the background: a remote listing is round trips and the
    /// server's work, which then overlap the walk of the directories
    /// before them. What is never asked for is dropped with the endpoint.
    fn list_soon(&self, _dirs: &[&str]) {}

    /// Starts [`Endpoint::stat`] of `path`, which will soon be asked for,
    /// in the background, as [`Endpoint::list_soon`] does for listings.
    fn stat_soon(&self, _path: &str) {}

    fn open_read(&self, path: &str) -> impl Future<Output = Result<Self::File>> + Send;

    /// Opens for writing, creating the file with `mode` (before umask) if missing.
    fn open_write(
        &self,
        path: &str,
        how: WriteMode,
        mode: u32,
    ) -> impl Future<Output = Result<Self::File>> + Send;

    /// Renames `from` over `to`, atomically replacing an existing `to`.
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = Result<()>> + Send;

    /// Sets the modification time of `path` itself: a symlink's own time
    /// where [`Features::link_times`], never its target's.
    fn set_mtime(&self, path: &str, mtime: Mtime) -> impl Future<Output = Result<()>> + Send;

    fn set_mode(&self, path: &str, mode: u32) -> impl Future<Output = Result<()>> + Send;

    fn remove_file(&self, path: &str) -> impl Future<Output = Result<()>> + Send;

    fn mkdir(&self, path: &str, mode: u32) -> impl Future<Output = Result<()>> + Send;

    /// Removes an empty directory.
    fn remove_dir(&self, path: &str) -> impl Future<Output = Result<()>> + Send;

    fn symlink(&self, target: &str, path: &str) -> impl Future<Output = Result<()>> + Send;

    /// The permission bits this side takes away from what it creates: a new
    /// entry without `--perms` gets the source's mode masked by it, as
    /// rsync's receiver masks with its own umask. `dir` is a directory of
    /// this endpoint about to get a new entry, where finding out may leave
    /// a trace for a moment (a remote side learns it by creating a file).
    fn umask(&self, dir: &str) -> impl Future<Output = Result<u32>> + Send;

    /// Which file system holds the directory `dir` (`-x`): equal numbers
    /// for directories on one file system. An error when this side cannot
    /// tell, so that `-x` is refused rather than ignored.
    fn file_system(&self, dir: &str) -> impl Future<Output = Result<u64>> + Send;

    fn read_link(&self, path: &str) -> impl Future<Output = Result<String>> + Send;

    /// Who writes on this side, for `-o` and `-g`: root gives any owner and
    /// group, another user only its own groups. `dir` is a directory of
    /// this endpoint where finding out may leave a trace for a moment (a
    /// remote side learns it from a file it creates, as for its umask);
    /// None (a dry run) leaves none, and a remote side then goes by the
    /// owner of the directory its session starts in.
    fn identity(&self, _dir: Option<&str>) -> impl Future<Output = Result<Identity>> + Send {
        async { Ok(Identity::default()) }
    }

    /// How this side names its users and groups (`-o`/`-g` without
    /// `--numeric-ids`, the names of `--usermap`), as far as it can tell:
    /// [`IdNames::Unknown`] where it cannot, and ids then stay numbers.
    fn id_names(&self) -> impl Future<Output = Result<IdNames>> + Send {
        async { Ok(IdNames::Unknown) }
    }

    // Hashing: its own seam, one tier per endpoint.

    /// Readies hashing, and whole-file writes, for the files about to need
    /// them: a remote endpoint starts its helper (or finds its shell) only
    /// now, so that a run that needs neither (a few new files, nothing to do)
    /// never pays for it. Until then its [`Endpoint::hashes`] are [`hashes::NoHashes`].
    fn start_helper(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// [`Endpoint::start_helper`] while the plan is still being made, for
    /// the work it is seen to hold: a start that fails here is tried again
    /// by the next `start_helper`, which reports it.
    fn start_helper_early(&self) -> impl Future<Output = Result<()>> + Send {
        self.start_helper()
    }

    /// How this endpoint hashes its files: its tier, chosen once (a
    /// remote one only by [`Endpoint::start_helper`]).
    fn hashes(&self) -> &dyn Hashes;

    // Optional operations: each works only where its `Features` field says;
    // the defaults refuse.

    /// Makes `to` (which must not exist) another name of `from` (a symlink
    /// itself, never its target), where [`Features::hard_links`].
    fn hard_link(&self, _from: &str, to: &str) -> impl Future<Output = Result<()>> + Send {
        let unsupported = unsupported(self, to, "making hard links");
        async move { Err(unsupported) }
    }

    /// Makes a fifo, socket or device node `path` (which must not exist)
    /// with permission bits `mode` (before umask), where
    /// [`Features::makes_nodes`].
    fn make_node(
        &self,
        path: &str,
        _node: Node,
        _mode: u32,
    ) -> impl Future<Output = Result<()>> + Send {
        let unsupported = unsupported(self, path, "making fifos, sockets and devices");
        async move { Err(unsupported) }
    }

    /// Gives `path` itself (a symlink's own, where
    /// [`Features::link_owners`]) the owner and group `change` names, where
    /// [`Features::owners`]. Ok(false) where it was refused for want of
    /// privilege and the refusal is rsync's silent skip
    /// ([`OwnerChange::refusal_is_skip`]).
    fn set_owner(
        &self,
        path: &str,
        _change: OwnerChange,
    ) -> impl Future<Output = Result<bool>> + Send {
        let unsupported = unsupported(self, path, "changing owners");
        async move { Err(unsupported) }
    }

    /// The extended attributes of `path` itself (ACLs among them) that
    /// `scope` covers, sorted by name, where [`Features::xattrs`].
    fn xattrs(
        &self,
        path: &str,
        _scope: XattrScope,
    ) -> impl Future<Output = Result<Xattrs>> + Send {
        let unsupported = unsupported(self, path, "reading extended attributes and ACLs");
        async move { Err(unsupported) }
    }

    /// Makes the extended attributes of `path` that `scope` covers exactly
    /// `want` (ACLs set keep the mode bits as they were), where
    /// [`Features::xattrs`].
    fn set_xattrs(
        &self,
        path: &str,
        _want: &Xattrs,
        _scope: XattrScope,
    ) -> impl Future<Output = Result<()>> + Send {
        let unsupported = unsupported(self, path, "setting extended attributes and ACLs");
        async move { Err(unsupported) }
    }

    /// Copies `ranges` of the file `from` into the existing file `to`, both
    /// of this endpoint, next to the data and in one request
    /// (copy_file_range here, the helper on a remote): how a new file is
    /// assembled from an old one, where [`Features::copies_ranges`].
    fn copy_ranges(
        &self,
        _from: &str,
        to: &str,
        _ranges: &[CopyRange],
    ) -> impl Future<Output = Result<()>> + Send {
        let unsupported = unsupported(self, to, "copying within itself");
        async move { Err(unsupported) }
    }

    /// Copies `len` bytes between two open files of this endpoint without
    /// moving them through ferry (SFTP copy-data), one piece at a time: the
    /// fallback of a remote without the helper, where
    /// [`Features::copies_within`]. Ok(false) when the server declines after
    /// all (it offered the extension but refuses this request): the caller
    /// sends the data instead.
    fn copy_within(
        &self,
        _from: &Self::File,
        _from_offset: u64,
        _to: &Self::File,
        _to_offset: u64,
        _len: u64,
    ) -> impl Future<Output = Result<bool>> + Send {
        let unsupported = unsupported(self, "", "copying between open files");
        async move { Err(unsupported) }
    }

    // Fast paths: the defaults are made of the primitives above; an endpoint
    // with a quicker way overrides them.

    /// Installs `data` as the whole file `dest`: written under `partial`,
    /// given `attrs`, synced when `sync`, renamed over `dest`. Over SFTP
    /// that is three round trips; the remote helper takes it as one request
    /// among many in flight.
    fn put_whole(
        &self,
        partial: &str,
        dest: &str,
        data: Bytes,
        attrs: Attrs,
        sync: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        put_whole_by_parts(self, partial, dest, data, attrs, sync)
    }

    /// Reads a whole small file of about `len` bytes, with its size and
    /// mtime as they were once it was read (a file that changed meanwhile
    /// shows it there). Over SFTP that is three round trips; the remote
    /// helper answers it as one request among many in flight.
    fn read_whole(&self, path: &str, len: u64) -> impl Future<Output = Result<Whole>> + Send {
        read_whole_by_parts(self, path, len)
    }
}

/// The error of an optional operation called where [`Features`] says the
/// endpoint lacks it: a bug of the caller, reported as a refusal of `path`.
pub(crate) fn unsupported<E: Endpoint + ?Sized>(endpoint: &E, path: &str, what: &str) -> Error {
    FileError::refused(
        endpoint.label(),
        path,
        format!("{what} is not possible on this side"),
    )
    .into()
}

/// Reads a whole small file (partial-file metadata).
pub(crate) async fn read_small<E: Endpoint + ?Sized>(endpoint: &E, path: &str) -> Result<Vec<u8>> {
    let file = endpoint.open_read(path).await?;
    let data = file.read_at(0, 64 * 1024).await?;
    file.close(false).await?;
    Ok(data.to_vec())
}

/// Writes a whole small file, replacing it.
pub(crate) async fn write_small<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    data: &[u8],
) -> Result<()> {
    let file = create_fresh(endpoint, path).await?;
    file.write_at(0, Bytes::copy_from_slice(data)).await?;
    file.close(false).await
}

/// A whole small file as [`Endpoint::read_whole`] found it.
#[derive(Debug, Clone)]
pub(crate) struct Whole {
    pub data: Bytes,
    /// Size and mtime after the read; None when the file was gone by then.
    pub stamp: Option<(u64, Mtime)>,
}

/// [`Endpoint::read_whole`] with the endpoint's file operations: open, read,
/// then close and lstat together.
pub(crate) async fn read_whole_by_parts<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
    len: u64,
) -> Result<Whole> {
    let file = endpoint.open_read(path).await?;
    let data = match file.read_last(0, len as usize).await {
        Ok(data) => data,
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => {
            file.close(false).await?;
            return Err(e);
        }
    };
    // stat, not lstat: the open followed a symlink (-L) too.
    let (closed, now) = tokio::join!(file.close(false), endpoint.stat(path));
    closed?;
    Ok(Whole {
        data,
        stamp: now?.map(|m| (m.size, m.mtime)),
    })
}

/// [`Endpoint::put_whole`] with the endpoint's file operations: open, then
/// write, attributes and close together, then rename.
pub(crate) async fn put_whole_by_parts<E: Endpoint + ?Sized>(
    endpoint: &E,
    partial: &str,
    dest: &str,
    data: Bytes,
    attrs: Attrs,
    sync: bool,
) -> Result<()> {
    let file = create_in(endpoint, partial).await?;
    let last = (!data.is_empty()).then_some((0, data));
    file.finish(last, attrs, sync).await?;
    endpoint.rename(partial, dest).await
}

/// [`create_fresh`], whose refusal is its directory's ([`refused_by_dir`]):
/// what creates a file's partial, or a whole small file.
pub(crate) async fn create_in<E: Endpoint + ?Sized>(endpoint: &E, path: &str) -> Result<E::File> {
    create_fresh(endpoint, path)
        .await
        .map_err(|e| refused_by_dir(e, true))
}

/// A new entry in a directory could not be made (or renamed into place):
/// permission denied, a read-only file system, the directory gone, or,
/// with `generic` (a create, not a write, was refused), SFTP's generic
/// failure, which OpenSSH's sftp-server gives for EROFS. That is the
/// directory's failure, and every new entry there meets it: the error is
/// turned into one about the directory ([`DirFailure::NotWritable`]).
pub(crate) fn refused_by_dir(e: Error, generic: bool) -> Error {
    let Error::File(e) = e else {
        return e;
    };
    let dirs = match e.problem() {
        Problem::Denied | Problem::ReadOnly | Problem::NotFound => true,
        Problem::Failure => generic,
        _ => false,
    };
    match dirs {
        true => {
            let dir = parent(&e.path).to_string();
            e.into_dir(dir, DirFailure::NotWritable).into()
        }
        false => e.into(),
    }
}

/// Creates `path` (0600) as a new file of its own: whatever is there under
/// that name (an old partial, or a symlink planted to take the write
/// elsewhere) is removed, never opened. The common case, nothing there,
/// costs one request, as a plain create would.
pub(crate) async fn create_fresh<E: Endpoint + ?Sized>(
    endpoint: &E,
    path: &str,
) -> Result<E::File> {
    match endpoint.open_write(path, WriteMode::CreateNew, 0o600).await {
        Err(e) if !e.is_fatal() && endpoint.lstat(path).await?.is_some() => {
            endpoint.remove_file(path).await?;
            endpoint.open_write(path, WriteMode::CreateNew, 0o600).await
        }
        opened => opened,
    }
}

/// Copies shorter than this are not spread ([`FileHandle::spread`]):
/// opening the other handles costs a round trip, more than they gain.
pub(crate) const SPREAD_FROM: u64 = 4 << 20;

/// How a copy between two endpoints is cut into requests: one request size
/// both sides accept, and how many reads and writes to keep in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pipeline {
    pub chunk: usize,
    pub read_depth: usize,
    pub write_depth: usize,
}

impl Pipeline {
    pub(crate) fn between<S: Endpoint + ?Sized, D: Endpoint + ?Sized>(
        src: &S,
        dst: &D,
    ) -> Pipeline {
        let (from, to) = (src.features(), dst.features());
        Pipeline {
            chunk: from.chunk.min(to.chunk),
            read_depth: from.depth,
            write_depth: to.depth,
        }
    }

    /// For reading one endpoint alone.
    pub(crate) fn reading<E: Endpoint + ?Sized>(endpoint: &E) -> Pipeline {
        Pipeline::between(endpoint, endpoint)
    }

    /// Most bytes of writes that can be unacknowledged at once.
    pub(crate) fn write_window(&self) -> u64 {
        (self.chunk * self.write_depth) as u64
    }

    /// Most bytes one copy holds at once: reads in flight plus writes in
    /// flight.
    pub(crate) fn memory(&self) -> u64 {
        (self.chunk * (self.read_depth + self.write_depth)) as u64
    }
}

/// Pipelined, in-order reads of `[start, end)`: `io.read_depth` requests of
/// `io.chunk` bytes in flight.
pub(crate) fn read_ranges<F: FileHandle>(
    file: &F,
    start: u64,
    end: u64,
    io: Pipeline,
) -> impl futures::Stream<Item = Result<Bytes>> + Send + '_ {
    let chunk = io.chunk.max(1);
    stream::iter((start..end).step_by(chunk))
        .map(move |offset| {
            let len = (end - offset).min(chunk as u64) as usize;
            file.read_at(offset, len)
        })
        .buffered(io.read_depth.max(1))
}

/// Reads `[start, end)` into one buffer (shorter at end of file), with the
/// requests pipelined.
pub(crate) async fn read_span<F: FileHandle>(
    file: &F,
    start: u64,
    end: u64,
    io: Pipeline,
) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity((end - start) as usize);
    let mut reads = read_ranges(file, start, end, io);
    while let Some(data) = reads.try_next().await? {
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}
