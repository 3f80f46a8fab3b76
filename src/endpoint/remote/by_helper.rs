//! The remote endpoint's operations on names SFTP cannot carry, done by the
//! helper instead ([`crate::protocol::fs`]): russh-sftp turns every name
//! into a `String`, so a name that is not UTF-8 could neither be listed
//! nor addressed over it. Paths arrive as the engine holds them (bytes
//! that are not UTF-8 carried as `paths::from_bytes` says) and leave as
//! the bytes they stand for.

use std::sync::Arc;

use bytes::Bytes;

use super::limits::{self, Gathering};
use super::RemoteFs;
use crate::endpoint::{
    Attrs, Listing, Meta, Mtime, Node, OwnerChange, WriteMode, XattrScope, Xattrs,
};
use crate::error::{Error, FileError, Host, Result};
use crate::paths::{from_bytes, to_bytes};
use crate::protocol::client::{HelperClient, HelperError};
use crate::protocol::fs::{FsReply, FsRequest, OpenHow};

/// Largest write in one request: well inside a frame, and small enough
/// that many stay in flight within the client's budget.
const WRITE_PIECE: usize = 1024 * 1024;

/// The helper of a remote endpoint, for the operations on one path.
pub(super) struct ByHelper<'a> {
    pub(super) fs: &'a RemoteFs,
    pub(super) helper: &'a Arc<HelperClient>,
}

/// What a failed helper request becomes: the file's error when the helper
/// answered, the connection's when its channel broke.
pub(super) fn helper_error(host: &str, label: &Host, path: &str, e: HelperError) -> Error {
    match e {
        HelperError::Request(message) => FileError::server(label, path, message).into(),
        other => Error::ConnectionLost {
            host: host.to_string(),
            detail: other.to_string(),
        },
    }
}

impl ByHelper<'_> {
    fn bytes(&self, path: &str) -> Vec<u8> {
        to_bytes(&self.fs.sftp.absolute(path)).into_owned()
    }

    async fn call(&self, path: &str, request: FsRequest) -> Result<FsReply> {
        self.helper
            .fs(request)
            .await
            .map_err(|e| self.fs.helper_error(path, e))
    }

    async fn done(&self, path: &str, request: FsRequest) -> Result<()> {
        match self.call(path, request).await? {
            FsReply::Done => Ok(()),
            other => Err(self.unexpected(path, &other)),
        }
    }

    fn unexpected(&self, path: &str, reply: &FsReply) -> Error {
        let what = match reply {
            FsReply::Done => "done",
            FsReply::Stat(_) => "stat",
            FsReply::Entries(_) => "entries",
            FsReply::Name(_) => "name",
            FsReply::Handle(_) => "handle",
            FsReply::Data(_) => "data",
            FsReply::NotPermitted => "not permitted",
            FsReply::Xattrs(_) => "xattrs",
        };
        self.fs.helper_error(
            path,
            HelperError::Channel(format!("the helper answered with {what} out of turn")),
        )
    }

    pub(super) async fn stat(&self, path: &str, follow: bool) -> Result<Option<Meta>> {
        let request = FsRequest::Stat {
            path: self.bytes(path),
            follow,
        };
        match self.call(path, request).await? {
            FsReply::Stat(meta) => Ok(meta.map(|m| self.as_compared(m))),
            other => Err(self.unexpected(path, &other)),
        }
    }

    /// `meta` with its time as this side's entries compare: to the
    /// nanosecond where the helper describes them all, else in whole
    /// seconds, as SFTP v3 lists them (a time set over SFTP then
    /// compares equal to the one listed through the helper).
    fn as_compared(&self, meta: Meta) -> Meta {
        if self.fs.precise_times() {
            return meta;
        }
        Meta {
            mtime: Mtime::secs(meta.mtime.secs),
            ..meta
        }
    }

    pub(super) async fn list(&self, dir: &str) -> Result<Listing> {
        let request = FsRequest::List {
            dir: self.bytes(dir),
        };
        let found = match self.call(dir, request).await? {
            FsReply::Entries(found) => found,
            other => return Err(self.unexpected(dir, &other)),
        };
        // The helper's reply fits in one frame, far inside the bounds;
        // they hold here all the same, as they do over SFTP.
        let mut gathering = Gathering::new(self.fs.sftp.host(), &self.fs.label, dir);
        for (name, meta) in found {
            gathering.take(
                from_bytes(&name).into_owned(),
                self.as_compared(meta),
                false,
            )?;
        }
        Ok(gathering.finish())
    }

    async fn name(&self, path: &str, request: FsRequest) -> Result<String> {
        match self.call(path, request).await? {
            FsReply::Name(name) => Ok(from_bytes(&name).into_owned()),
            other => Err(self.unexpected(path, &other)),
        }
    }

    pub(super) async fn read_link(&self, path: &str) -> Result<String> {
        let path_bytes = self.bytes(path);
        let target = self
            .name(path, FsRequest::ReadLink { path: path_bytes })
            .await?;
        limits::link_target(&self.fs.label, path, target)
    }

    pub(super) async fn real_path(&self, path: &str) -> Result<String> {
        let path_bytes = self.bytes(path);
        self.name(path, FsRequest::RealPath { path: path_bytes })
            .await
    }

    pub(super) async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        let request = FsRequest::Mkdir {
            path: self.bytes(path),
            mode,
        };
        self.done(path, request).await
    }

    pub(super) async fn remove_dir(&self, path: &str) -> Result<()> {
        let request = FsRequest::RemoveDir {
            path: self.bytes(path),
        };
        self.done(path, request).await
    }

    pub(super) async fn remove_file(&self, path: &str) -> Result<()> {
        let request = FsRequest::RemoveFile {
            path: self.bytes(path),
        };
        self.done(path, request).await
    }

    pub(super) async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let request = FsRequest::Rename {
            from: self.bytes(from),
            to: self.bytes(to),
        };
        self.done(to, request).await
    }

    pub(super) async fn hard_link(&self, from: &str, to: &str) -> Result<()> {
        let request = FsRequest::HardLink {
            from: self.bytes(from),
            to: self.bytes(to),
        };
        self.done(to, request).await
    }

    /// `target` is stored as given: relative targets stay relative.
    pub(super) async fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let request = FsRequest::Symlink {
            target: to_bytes(target).into_owned(),
            path: self.bytes(path),
        };
        self.done(path, request).await
    }

    pub(super) async fn make_node(&self, path: &str, node: Node, mode: u32) -> Result<()> {
        let request = FsRequest::MakeNode {
            path: self.bytes(path),
            mode: node.kind.type_bits() | mode & 0o7777,
            rdev: node.rdev,
        };
        self.done(path, request).await
    }

    pub(super) async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        let request = FsRequest::SetMode {
            path: self.bytes(path),
            mode,
        };
        self.done(path, request).await
    }

    /// Ok(false): refused, and the refusal is rsync's silent skip.
    pub(super) async fn set_owner(&self, path: &str, owner: OwnerChange) -> Result<bool> {
        let request = FsRequest::SetOwner {
            path: self.bytes(path),
            owner,
        };
        match self.call(path, request).await? {
            FsReply::Done => Ok(true),
            FsReply::NotPermitted => Ok(false),
            other => Err(self.unexpected(path, &other)),
        }
    }

    pub(super) async fn set_mtime(&self, path: &str, mtime: Mtime) -> Result<()> {
        let request = FsRequest::SetMtime {
            path: self.bytes(path),
            mtime,
        };
        self.done(path, request).await
    }

    pub(super) async fn xattrs(&self, path: &str, scope: XattrScope) -> Result<Xattrs> {
        let request = FsRequest::ReadXattrs {
            path: self.bytes(path),
            scope,
        };
        match self.call(path, request).await? {
            FsReply::Xattrs(found) => Ok(found),
            other => Err(self.unexpected(path, &other)),
        }
    }

    pub(super) async fn set_xattrs(
        &self,
        path: &str,
        want: &Xattrs,
        scope: XattrScope,
    ) -> Result<()> {
        let request = FsRequest::WriteXattrs {
            path: self.bytes(path),
            want: want.clone(),
            scope,
        };
        self.done(path, request).await
    }

    pub(super) async fn open(&self, path: &str, how: OpenHow, mode: u32) -> Result<HelperFile> {
        let request = FsRequest::Open {
            path: self.bytes(path),
            how,
            mode,
        };
        match self.call(path, request).await? {
            FsReply::Handle(handle) => Ok(HelperFile {
                helper: self.helper.clone(),
                handle: Some(handle),
                host: self.fs.sftp.host().to_string(),
                label: self.fs.label.clone(),
                path: path.to_string(),
            }),
            other => Err(self.unexpected(path, &other)),
        }
    }
}

pub(super) fn open_how(how: WriteMode) -> OpenHow {
    match how {
        WriteMode::CreateNew => OpenHow::CreateNew,
        WriteMode::Keep => OpenHow::Write,
    }
}

/// A remote file opened by the helper. Dropped unclosed, it is closed in
/// the background so that the helper's table of open files does not fill.
pub(crate) struct HelperFile {
    helper: Arc<HelperClient>,
    /// None once closed.
    handle: Option<u32>,
    host: String,
    /// The file as messages name it: its host and path.
    label: Host,
    path: String,
}

impl HelperFile {
    fn handle(&self) -> u32 {
        self.handle.unwrap_or(u32::MAX)
    }

    fn error(&self, e: HelperError) -> Error {
        helper_error(&self.host, &self.label, &self.path, e)
    }

    async fn done(&self, request: FsRequest) -> Result<()> {
        match self.helper.fs(request).await.map_err(|e| self.error(e))? {
            FsReply::Done => Ok(()),
            _ => Err(self.error(HelperError::Channel(
                "the helper answered a write with something else".into(),
            ))),
        }
    }

    pub(super) async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let request = FsRequest::Read {
            handle: self.handle(),
            offset,
            len: len.min(u32::MAX as usize) as u32,
        };
        match self.helper.fs(request).await.map_err(|e| self.error(e))? {
            FsReply::Data(data) if data.len() <= len => Ok(data.into()),
            _ => Err(self.error(HelperError::Channel(
                "the helper answered a read with something else".into(),
            ))),
        }
    }

    pub(super) async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        let pieces = (0..data.len()).step_by(WRITE_PIECE).map(|start| {
            let piece = &data[start..data.len().min(start + WRITE_PIECE)];
            self.done(FsRequest::Write {
                handle: self.handle(),
                offset: offset + start as u64,
                data: piece.to_vec(),
            })
        });
        futures::future::try_join_all(pieces).await.map(drop)
    }

    pub(super) async fn set_len(&self, len: u64) -> Result<()> {
        let handle = self.handle();
        self.done(FsRequest::SetLen { handle, len }).await
    }

    /// Closes, first giving the file `attrs` when set and syncing it when
    /// asked.
    pub(super) async fn close_with(mut self, attrs: Option<Attrs>, sync: bool) -> Result<()> {
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        self.done(FsRequest::Close {
            handle,
            owner: attrs.map(|a| a.owner).unwrap_or_default(),
            mode: attrs.map(|a| a.mode),
            mtime: attrs.and_then(|a| a.mtime),
            sync,
        })
        .await
    }
}

impl Drop for HelperFile {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let helper = self.helper.clone();
        runtime.spawn(async move {
            let close = FsRequest::Close {
                handle,
                owner: Default::default(),
                mode: None,
                mtime: None,
                sync: false,
            };
            let _ = helper.fs(close).await;
        });
    }
}
