//! The helper's side of [`super::fs`]: file-system requests carried out on
//! this machine with names as bytes, and the table of files they opened.
//! The changes go through `local_io::confined`, as the local endpoint's do:
//! below the roots the client named ([`FsRequest::Confine`]) no component
//! is reached through a symlink; elsewhere, not the last one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

use super::fs::{FsReply, FsRequest, OpenHow, ENTRY_OVERHEAD};
use super::MAX_FRAME;
use crate::local_io::{
    confined, finish_file, meta_of, not_found_is_none, read_at_most, xattrs, Place, Roots,
};
use crate::meta::{Attrs, Kind, Mtime, OwnerChange};
use crate::paths::from_bytes;

/// Files a client may hold open at once: a client that never closes runs
/// into this rather than into the process's descriptor limit.
const MAX_OPEN: usize = 1024;

/// The open files of one client, by the handle numbers given out.
#[derive(Default)]
pub(super) struct Files {
    open: HashMap<u32, File>,
    next: u32,
    /// Where changes are confined: nowhere until the client says.
    pub(super) roots: Roots,
}

impl Files {
    pub(super) fn answer(&mut self, request: FsRequest) -> io::Result<FsReply> {
        match request {
            FsRequest::Confine { roots, dirlinks } => {
                let roots = roots.iter().map(|r| from_bytes(r).into_owned());
                self.roots = Roots::new(roots, dirlinks);
                Ok(FsReply::Done)
            }
            FsRequest::Stat { path, follow } => {
                let path = os(&path);
                let meta = match follow {
                    true => fs::metadata(path),
                    false => fs::symlink_metadata(path),
                };
                Ok(FsReply::Stat(not_found_is_none(meta)?))
            }
            FsRequest::List { dir } => list(&dir),
            FsRequest::ReadLink { path } => {
                let target = fs::read_link(os(&path))?;
                Ok(FsReply::Name(target.as_os_str().as_bytes().to_vec()))
            }
            FsRequest::RealPath { path } => {
                let real = fs::canonicalize(os(&path))?;
                Ok(FsReply::Name(real.as_os_str().as_bytes().to_vec()))
            }
            FsRequest::Mkdir { path, mode } => done(confined::mkdir(&self.place(&path)?, mode)),
            FsRequest::RemoveDir { path } => done(confined::remove_dir(&self.place(&path)?)),
            FsRequest::RemoveFile { path } => done(confined::remove_file(&self.place(&path)?)),
            FsRequest::Rename { from, to } => {
                let (from, to) = self.place_both(&from, &to)?;
                done(confined::rename(&from, &to))
            }
            FsRequest::Symlink { target, path } => {
                done(confined::symlink(&from_bytes(&target), &self.place(&path)?))
            }
            FsRequest::HardLink { from, to } => {
                let (from, to) = self.place_both(&from, &to)?;
                done(confined::hard_link(&from, &to))
            }
            FsRequest::MakeNode { path, mode, rdev } => {
                let Kind::Node(node) = Kind::of_mode(mode, rdev) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not a fifo, socket or device type",
                    ));
                };
                done(confined::make_node(&self.place(&path)?, node, mode))
            }
            FsRequest::SetMode { path, mode } => {
                done(self.roots.set_mode(&from_bytes(&path), mode))
            }
            FsRequest::SetOwner { path, owner } => {
                match confined::set_owner(&self.place(&path)?, owner)? {
                    true => Ok(FsReply::Done),
                    false => Ok(FsReply::NotPermitted),
                }
            }
            FsRequest::SetMtime { path, mtime } => {
                done(confined::set_mtime(&self.place(&path)?, mtime))
            }
            FsRequest::ReadXattrs { path, scope } => {
                xattrs::read(os(&path), scope).map(FsReply::Xattrs)
            }
            FsRequest::WriteXattrs { path, want, scope } => {
                done(xattrs::write(&self.place(&path)?, &want, scope).map(drop))
            }
            FsRequest::Open { path, how, mode } => self.open(&path, how, mode),
            FsRequest::Read {
                handle,
                offset,
                len,
            } => read(self.file(handle)?, offset, len),
            FsRequest::Write {
                handle,
                offset,
                data,
            } => done(self.file(handle)?.write_all_at(&data, offset)),
            FsRequest::SetLen { handle, len } => done(self.file(handle)?.set_len(len)),
            FsRequest::Close {
                handle,
                owner,
                mode,
                mtime,
                sync,
            } => {
                let file = self.open.remove(&handle).ok_or_else(unknown_handle)?;
                done(finish(&file, owner, mode, mtime, sync))
            }
        }
    }

    fn place(&self, path: &[u8]) -> io::Result<Place> {
        self.roots.place(&from_bytes(path))
    }

    fn place_both(&self, one: &[u8], other: &[u8]) -> io::Result<(Place, Place)> {
        self.roots.place_both(&from_bytes(one), &from_bytes(other))
    }

    fn file(&self, handle: u32) -> io::Result<&File> {
        self.open.get(&handle).ok_or_else(unknown_handle)
    }

    fn open(&mut self, path: &[u8], how: OpenHow, mode: u32) -> io::Result<FsReply> {
        if self.open.len() >= MAX_OPEN {
            return Err(io::Error::other(format!(
                "more than {MAX_OPEN} files open at once"
            )));
        }
        let file = match how {
            OpenHow::Read => File::open(os(path))?,
            OpenHow::Write => confined::open_write(&self.place(path)?, false, mode)?,
            OpenHow::CreateNew => confined::open_write(&self.place(path)?, true, mode)?,
        };
        let handle = self.next;
        self.next = self.next.wrapping_add(1);
        self.open.insert(handle, file);
        Ok(FsReply::Handle(handle))
    }
}

fn os(path: &[u8]) -> &std::path::Path {
    std::path::Path::new(std::ffi::OsStr::from_bytes(path))
}

fn done(result: io::Result<()>) -> io::Result<FsReply> {
    result.map(|()| FsReply::Done)
}

fn unknown_handle() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "no such open file")
}

/// A directory's entries, in one reply or an error when they do not fit.
fn list(dir: &[u8]) -> io::Result<FsReply> {
    let mut entries = Vec::new();
    let mut bytes = 64;
    for item in fs::read_dir(os(dir))? {
        let item = item?;
        let name = item.file_name().as_bytes().to_vec();
        bytes += name.len() + ENTRY_OVERHEAD;
        if bytes > MAX_FRAME {
            return Err(io::Error::other(
                "the directory has too many entries for one reply",
            ));
        }
        entries.push((name, meta_of(&item.metadata()?)));
    }
    Ok(FsReply::Entries(entries))
}

fn read(file: &File, offset: u64, len: u32) -> io::Result<FsReply> {
    let len = (len as usize).min(MAX_FRAME - 64);
    read_at_most(file, offset, len).map(FsReply::Data)
}

/// What closing a written file asks for: its owner, mode and mtime
/// (after the last write) when given, as the local endpoint finishes a
/// file; a sync.
fn finish(
    file: &File,
    owner: OwnerChange,
    mode: Option<u32>,
    mtime: Option<Mtime>,
    sync: bool,
) -> io::Result<()> {
    let Some(mode) = mode else {
        return if sync { file.sync_all() } else { Ok(()) };
    };
    let attrs = Attrs { mode, mtime, owner };
    finish_file(file, None, attrs, sync)
}
