//! File-system requests of the helper protocol: the operations the SFTP
//! session does, with names as the bytes they are on the server. SFTP v3
//! carries bytes too, but russh-sftp turns every name into a `String` (and
//! bytes that are not UTF-8 into U+FFFD), so a name that is not UTF-8 goes
//! through the helper instead (`endpoint::remote` decides which).
//!
//! Files are opened by path and then read and written by a handle number
//! the helper gives out, as SFTP's are; the helper keeps a bounded table of
//! them.

use super::{put_bytes, put_mtime, Reader};
use crate::meta::{Inode, Kind, Meta, Mtime, Owner, OwnerChange, XattrScope, Xattrs};

/// How [`FsRequest::Open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenHow {
    /// Read only, following a symlink (as SFTP's open does).
    Read,
    /// Read and write, created with the mode when missing, never through
    /// a symlink.
    Write,
    /// As `Write`, but the file must not exist yet.
    CreateNew,
}

/// A file-system operation on the helper's machine. Paths are absolute
/// byte strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsRequest {
    /// From now on, changes below `roots` (the directories the user named
    /// as destinations) reach their directory without following a
    /// symlink, as the local endpoint's do (`local_io::confined`); with
    /// `dirlinks` (`-K`), a symlink to a directory below its root is.
    Confine {
        roots: Vec<Vec<u8>>,
        dirlinks: bool,
    },
    /// lstat, or stat with `follow`: answered with [`FsReply::Stat`].
    Stat {
        path: Vec<u8>,
        follow: bool,
    },
    /// A directory's entries without `.` and `..`: [`FsReply::Entries`].
    List {
        dir: Vec<u8>,
    },
    /// A symlink's target: [`FsReply::Name`].
    ReadLink {
        path: Vec<u8>,
    },
    /// The path with every symlink resolved: [`FsReply::Name`].
    RealPath {
        path: Vec<u8>,
    },
    Mkdir {
        path: Vec<u8>,
        mode: u32,
    },
    RemoveDir {
        path: Vec<u8>,
    },
    RemoveFile {
        path: Vec<u8>,
    },
    /// Renames `from` over `to`, replacing it.
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Symlink {
        target: Vec<u8>,
        path: Vec<u8>,
    },
    HardLink {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// mknod: `mode` holds the file type bits and the permissions.
    MakeNode {
        path: Vec<u8>,
        mode: u32,
        rdev: u64,
    },
    SetMode {
        path: Vec<u8>,
        mode: u32,
    },
    /// The entry's own owner and group (a symlink's, not its target's):
    /// [`FsReply::Done`], or [`FsReply::NotPermitted`] for a refusal that
    /// is rsync's silent skip ([`OwnerChange::refusal_is_skip`]).
    SetOwner {
        path: Vec<u8>,
        owner: OwnerChange,
    },
    /// The entry's own modification time (a symlink's, not its target's),
    /// to the nanosecond where it is known so.
    SetMtime {
        path: Vec<u8>,
        mtime: Mtime,
    },
    /// The entry's own extended attributes that `scope` covers:
    /// [`FsReply::Xattrs`].
    ReadXattrs {
        path: Vec<u8>,
        scope: XattrScope,
    },
    /// Makes the entry's extended attributes that `scope` covers exactly
    /// `want` (`local_io::xattrs::write`).
    WriteXattrs {
        path: Vec<u8>,
        want: Xattrs,
        scope: XattrScope,
    },
    /// [`FsReply::Handle`] for the open file.
    Open {
        path: Vec<u8>,
        how: OpenHow,
        mode: u32,
    },
    /// Up to `len` bytes at `offset`, fewer only at end of file:
    /// [`FsReply::Data`].
    Read {
        handle: u32,
        offset: u64,
        len: u32,
    },
    Write {
        handle: u32,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        handle: u32,
        len: u64,
    },
    /// Sets `owner` (first: chown clears set-id bits), `mode` and `mtime`
    /// when given, syncs when asked, and closes.
    Close {
        handle: u32,
        owner: OwnerChange,
        mode: Option<u32>,
        mtime: Option<Mtime>,
        sync: bool,
    },
}

/// The answer to an [`FsRequest`] that succeeded (a failure is an
/// `Error` message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsReply {
    Done,
    Stat(Option<Meta>),
    Entries(Vec<(Vec<u8>, Meta)>),
    Name(Vec<u8>),
    Handle(u32),
    Data(Vec<u8>),
    /// A change of group alone was refused for want of privilege: rsync's
    /// receiver would not have tried it.
    NotPermitted,
    Xattrs(Xattrs),
}

/// Bytes a listing entry takes in a reply besides its name.
pub(crate) const ENTRY_OVERHEAD: usize = 4 + 1 + 8 + 13 + 4;

impl FsRequest {
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        let u32s = |out: &mut Vec<u8>, n: u32| out.extend_from_slice(&n.to_be_bytes());
        let u64s = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_be_bytes());
        match self {
            FsRequest::Stat { path, follow } => {
                out.push(0);
                put_bytes(out, path);
                out.push(u8::from(*follow));
            }
            FsRequest::List { dir } => {
                out.push(1);
                put_bytes(out, dir);
            }
            FsRequest::ReadLink { path } => {
                out.push(2);
                put_bytes(out, path);
            }
            FsRequest::RealPath { path } => {
                out.push(3);
                put_bytes(out, path);
            }
            FsRequest::Mkdir { path, mode } => {
                out.push(4);
                put_bytes(out, path);
                u32s(out, *mode);
            }
            FsRequest::RemoveDir { path } => {
                out.push(5);
                put_bytes(out, path);
            }
            FsRequest::RemoveFile { path } => {
                out.push(6);
                put_bytes(out, path);
            }
            FsRequest::Rename { from, to } => {
                out.push(7);
                put_bytes(out, from);
                put_bytes(out, to);
            }
            FsRequest::Symlink { target, path } => {
                out.push(8);
                put_bytes(out, target);
                put_bytes(out, path);
            }
            FsRequest::HardLink { from, to } => {
                out.push(9);
                put_bytes(out, from);
                put_bytes(out, to);
            }
            FsRequest::MakeNode { path, mode, rdev } => {
                out.push(40);
                put_bytes(out, path);
                u32s(out, *mode);
                u64s(out, *rdev);
            }
            FsRequest::SetMode { path, mode } => {
                out.push(10);
                put_bytes(out, path);
                u32s(out, *mode);
            }
            FsRequest::SetMtime { path, mtime } => {
                out.push(11);
                put_bytes(out, path);
                put_mtime(out, Some(*mtime));
            }
            FsRequest::ReadXattrs { path, scope } => {
                out.push(41);
                put_bytes(out, path);
                out.push(scope.bits());
            }
            FsRequest::WriteXattrs { path, want, scope } => {
                out.push(42);
                put_bytes(out, path);
                out.push(scope.bits());
                put_xattrs(out, want);
            }
            FsRequest::Open { path, how, mode } => {
                out.push(12);
                put_bytes(out, path);
                out.push(match how {
                    OpenHow::Read => 0,
                    OpenHow::Write => 1,
                    OpenHow::CreateNew => 2,
                });
                u32s(out, *mode);
            }
            FsRequest::Read {
                handle,
                offset,
                len,
            } => {
                out.push(13);
                u32s(out, *handle);
                u64s(out, *offset);
                u32s(out, *len);
            }
            FsRequest::Write {
                handle,
                offset,
                data,
            } => {
                out.push(14);
                u32s(out, *handle);
                u64s(out, *offset);
                put_bytes(out, data);
            }
            FsRequest::SetLen { handle, len } => {
                out.push(15);
                u32s(out, *handle);
                u64s(out, *len);
            }
            FsRequest::SetOwner { path, owner } => {
                out.push(18);
                put_bytes(out, path);
                put_owner(out, owner);
            }
            FsRequest::Confine { roots, dirlinks } => {
                out.push(17);
                u32s(out, roots.len() as u32);
                roots.iter().for_each(|root| put_bytes(out, root));
                out.push(u8::from(*dirlinks));
            }
            FsRequest::Close {
                handle,
                owner,
                mode,
                mtime,
                sync,
            } => {
                out.push(16);
                u32s(out, *handle);
                put_owner(out, owner);
                out.push(u8::from(mode.is_some()));
                u32s(out, mode.unwrap_or(0));
                put_mtime(out, *mtime);
                out.push(u8::from(*sync));
            }
        }
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<FsRequest, String> {
        let path = |r: &mut Reader<'_>| r.bytes().map(<[u8]>::to_vec);
        let request = match r.u8()? {
            0 => FsRequest::Stat {
                path: path(r)?,
                follow: r.u8()? != 0,
            },
            1 => FsRequest::List { dir: path(r)? },
            2 => FsRequest::ReadLink { path: path(r)? },
            3 => FsRequest::RealPath { path: path(r)? },
            4 => FsRequest::Mkdir {
                path: path(r)?,
                mode: r.u32()?,
            },
            5 => FsRequest::RemoveDir { path: path(r)? },
            6 => FsRequest::RemoveFile { path: path(r)? },
            7 => FsRequest::Rename {
                from: path(r)?,
                to: path(r)?,
            },
            8 => FsRequest::Symlink {
                target: path(r)?,
                path: path(r)?,
            },
            9 => FsRequest::HardLink {
                from: path(r)?,
                to: path(r)?,
            },
            40 => FsRequest::MakeNode {
                path: path(r)?,
                mode: r.u32()?,
                rdev: r.u64()?,
            },
            10 => FsRequest::SetMode {
                path: path(r)?,
                mode: r.u32()?,
            },
            11 => FsRequest::SetMtime {
                path: path(r)?,
                mtime: r.mtime()?.ok_or("a time to set that is no time")?,
            },
            41 => FsRequest::ReadXattrs {
                path: path(r)?,
                scope: XattrScope::of_bits(r.u8()?),
            },
            42 => FsRequest::WriteXattrs {
                path: path(r)?,
                scope: XattrScope::of_bits(r.u8()?),
                want: xattrs(r)?,
            },
            12 => FsRequest::Open {
                path: path(r)?,
                how: match r.u8()? {
                    0 => OpenHow::Read,
                    1 => OpenHow::Write,
                    2 => OpenHow::CreateNew,
                    other => return Err(format!("unknown open mode {other}")),
                },
                mode: r.u32()?,
            },
            13 => FsRequest::Read {
                handle: r.u32()?,
                offset: r.u64()?,
                len: r.u32()?,
            },
            14 => FsRequest::Write {
                handle: r.u32()?,
                offset: r.u64()?,
                data: path(r)?,
            },
            15 => FsRequest::SetLen {
                handle: r.u32()?,
                len: r.u64()?,
            },
            16 => {
                let handle = r.u32()?;
                let owner = owner(r)?;
                let (has_mode, mode) = (r.u8()? != 0, r.u32()?);
                let mtime = r.mtime()?;
                FsRequest::Close {
                    handle,
                    owner,
                    mode: has_mode.then_some(mode),
                    mtime,
                    sync: r.u8()? != 0,
                }
            }
            17 => {
                let count = r.u32()? as usize;
                if count > r.remaining() / 4 {
                    return Err("more roots than the message holds".into());
                }
                let roots = (0..count).map(|_| path(r)).collect::<Result<_, _>>()?;
                FsRequest::Confine {
                    roots,
                    dirlinks: r.u8()? != 0,
                }
            }
            18 => FsRequest::SetOwner {
                path: path(r)?,
                owner: owner(r)?,
            },
            other => return Err(format!("unknown file-system request {other}")),
        };
        Ok(request)
    }
}

impl FsReply {
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            FsReply::Done => out.push(0),
            FsReply::Stat(meta) => {
                out.push(1);
                out.push(u8::from(meta.is_some()));
                put_meta(out, &meta.unwrap_or(NO_META));
            }
            FsReply::Entries(entries) => {
                out.push(2);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (name, meta) in entries {
                    put_bytes(out, name);
                    put_meta(out, meta);
                }
            }
            FsReply::Name(name) => {
                out.push(3);
                put_bytes(out, name);
            }
            FsReply::Handle(handle) => {
                out.push(4);
                out.extend_from_slice(&handle.to_be_bytes());
            }
            FsReply::Data(data) => {
                out.push(5);
                put_bytes(out, data);
            }
            FsReply::NotPermitted => out.push(6),
            FsReply::Xattrs(found) => {
                out.push(7);
                put_xattrs(out, found);
            }
        }
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<FsReply, String> {
        let reply = match r.u8()? {
            0 => FsReply::Done,
            1 => {
                let present = r.u8()? != 0;
                let meta = meta(r)?;
                FsReply::Stat(present.then_some(meta))
            }
            2 => {
                let count = r.u32()? as usize;
                // Each entry takes at least its overhead: a count larger
                // than the frame could hold is a lie, not an allocation.
                if count > r.remaining() / ENTRY_OVERHEAD {
                    return Err("more entries than the message holds".into());
                }
                let entries = (0..count)
                    .map(|_| Ok((r.bytes()?.to_vec(), meta(r)?)))
                    .collect::<Result<_, String>>()?;
                FsReply::Entries(entries)
            }
            3 => FsReply::Name(r.bytes()?.to_vec()),
            4 => FsReply::Handle(r.u32()?),
            5 => FsReply::Data(r.bytes()?.to_vec()),
            6 => FsReply::NotPermitted,
            7 => FsReply::Xattrs(xattrs(r)?),
            other => return Err(format!("unknown file-system reply {other}")),
        };
        Ok(reply)
    }
}

const NO_META: Meta = Meta {
    kind: Kind::Other,
    size: 0,
    mtime: Mtime::secs(0),
    mode: 0,
    owner: None,
    inode: None,
};

/// Kind, size, mtime (to the nanosecond: the client keeps whole seconds
/// where its listings over SFTP must compare alike) and permission bits;
/// then the owner and the inode, each behind a flag byte (0: not known).
fn put_meta(out: &mut Vec<u8>, meta: &Meta) {
    out.push(match meta.kind {
        Kind::File => 0,
        Kind::Dir => 1,
        Kind::Symlink => 2,
        Kind::Other => 3,
        Kind::Node(_) => 4,
    });
    if let Kind::Node(node) = meta.kind {
        out.extend_from_slice(&node.kind.type_bits().to_be_bytes());
        out.extend_from_slice(&node.rdev.to_be_bytes());
    }
    out.extend_from_slice(&meta.size.to_be_bytes());
    put_mtime(out, Some(meta.mtime));
    out.extend_from_slice(&meta.mode.to_be_bytes());
    match meta.owner {
        None => out.push(0),
        Some(owner) => {
            out.push(1);
            out.extend_from_slice(&owner.uid.to_be_bytes());
            out.extend_from_slice(&owner.gid.to_be_bytes());
        }
    }
    match meta.inode {
        None => out.push(0),
        Some(inode) => {
            out.push(1);
            for n in [inode.dev, inode.ino, inode.nlink] {
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
}

fn meta(r: &mut Reader<'_>) -> Result<Meta, String> {
    let kind = match r.u8()? {
        0 => Kind::File,
        1 => Kind::Dir,
        2 => Kind::Symlink,
        3 => Kind::Other,
        4 => match Kind::of_mode(r.u32()?, r.u64()?) {
            node @ Kind::Node(_) => node,
            _ => return Err("a node of no node type".into()),
        },
        other => return Err(format!("unknown file kind {other}")),
    };
    Ok(Meta {
        kind,
        size: r.u64()?,
        mtime: r.mtime()?.unwrap_or_default(),
        mode: r.u32()? & 0o7777,
        owner: match r.u8()? {
            0 => None,
            _ => Some(Owner {
                uid: r.u32()?,
                gid: r.u32()?,
            }),
        },
        inode: match r.u8()? {
            0 => None,
            _ => Some(Inode {
                dev: r.u64()?,
                ino: r.u64()?,
                nlink: r.u64()?,
            }),
        },
    })
}

/// Extended attributes: a count, then each name and value.
fn put_xattrs(out: &mut Vec<u8>, xattrs: &Xattrs) {
    out.extend_from_slice(&(xattrs.len() as u32).to_be_bytes());
    for (name, value) in xattrs {
        put_bytes(out, name);
        put_bytes(out, value);
    }
}

fn xattrs(r: &mut Reader<'_>) -> Result<Xattrs, String> {
    let count = r.u32()? as usize;
    // Each takes at least its two lengths.
    if count > r.remaining() / 8 {
        return Err("more attributes than the message holds".into());
    }
    (0..count)
        .map(|_| Ok((r.bytes()?.to_vec(), r.bytes()?.to_vec())))
        .collect()
}

/// An owner change: each id behind a flag byte (0: kept).
pub(super) fn put_owner(out: &mut Vec<u8>, owner: &OwnerChange) {
    for id in [owner.uid, owner.gid] {
        out.push(u8::from(id.is_some()));
        out.extend_from_slice(&id.unwrap_or(0).to_be_bytes());
    }
}

pub(super) fn owner(r: &mut Reader<'_>) -> Result<OwnerChange, String> {
    let mut id = || -> Result<Option<u32>, String> {
        let given = r.u8()? != 0;
        let id = r.u32()?;
        Ok(given.then_some(id))
    };
    Ok(OwnerChange {
        uid: id()?,
        gid: id()?,
    })
}
