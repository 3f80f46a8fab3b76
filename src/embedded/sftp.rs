//! An SFTP v3 server over this machine's files, for the embedded SSH server:
//! what `ferry demo` copies into, and the honest half of the test servers
//! that misbehave on purpose.
//!
//! It answers the way OpenSSH's sftp-server does where ferry can tell the
//! difference: relative paths start in the session's base directory, plain
//! RENAME refuses an existing target, SYMLINK takes its two paths in
//! OpenSSH's (swapped) order, and it offers `posix-rename@openssh.com`,
//! `fsync@openssh.com` and `limits@openssh.com`. russh-sftp runs one
//! request at a time, so blocking file calls here hold nothing else up.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File as NameEntry, FileAttributes, Handle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::{Handler, StatusReply};

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
const LIMITS: &str = "limits@openssh.com";
/// Names per READDIR reply, as OpenSSH sends.
const NAMES_PER_READDIR: usize = 100;
/// Largest read answered; russh-sftp's server refuses packets over 256 KiB.
const MAX_READ: u32 = 255 * 1024;

/// One client's SFTP session over the local filesystem.
pub struct LocalSftp {
    base: PathBuf,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

enum Open {
    File(File),
    /// A listing read whole at OPENDIR and handed out in slices.
    Dir(Vec<NameEntry>),
}

impl LocalSftp {
    /// A session whose relative paths (and `realpath(".")`) start at `base`.
    pub fn new(base: impl Into<PathBuf>) -> LocalSftp {
        LocalSftp {
            base: base.into(),
            handles: HashMap::new(),
            next_handle: 0,
        }
    }

    fn path(&self, sent: &str) -> PathBuf {
        self.base.join(sent)
    }

    fn add(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        handle
    }

    fn file(&self, handle: &str) -> Result<&File, StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File(file)) => Ok(file),
            _ => Err(StatusCode::Failure.with_message("no such file handle")),
        }
    }
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Success".into(),
        language_tag: "en-US".into(),
    }
}

fn status_of(e: io::Error) -> StatusReply {
    let code = match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

/// Attributes as OpenSSH sends them: the mode with its file-type bits.
pub fn attrs_of(meta: &fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(meta.len()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        permissions: Some(meta.mode()),
        atime: Some(meta.atime().clamp(0, u32::MAX as i64) as u32),
        mtime: Some(meta.mtime().clamp(0, u32::MAX as i64) as u32),
        ..Default::default()
    }
}

/// SETSTAT and FSETSTAT alike: size, mode, then times, on an open file.
fn set_attrs(file: &File, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(size) = attrs.size {
        file.set_len(size)?;
    }
    if let Some(mode) = attrs.permissions {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
        let at = |secs: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.into());
        file.set_times(
            fs::FileTimes::new()
                .set_accessed(at(atime))
                .set_modified(at(mtime)),
        )?;
    }
    // Last, as OpenSSH's sftp-server does (after the permissions, whose
    // set-id bits a chown then clears); -1 keeps an id.
    if let (Some(uid), Some(gid)) = (attrs.uid, attrs.gid) {
        let id = |id: u32| (id != u32::MAX).then_some(id);
        std::os::unix::fs::fchown(file, id(uid), id(gid))?;
    }
    Ok(())
}

/// Reads the SSH strings of an extension request's payload.
fn ssh_strings(mut data: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
        let text = data.get(4..4 + len)?;
        out.push(String::from_utf8_lossy(text).into_owned());
        data = &data[4 + len..];
    }
    Some(out)
}

fn lexical_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

impl Handler for LocalSftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusCode::OpUnsupported.into()
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        let mut version = Version::new();
        for name in [POSIX_RENAME, FSYNC, LIMITS] {
            version.extensions.insert(name.into(), "1".into());
        }
        Ok(version)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        let mut options: OpenOptions = pflags.into();
        if pflags.contains(OpenFlags::EXCLUDE) {
            options.create_new(true);
        }
        options.mode(attrs.permissions.unwrap_or(0o666) & 0o7777);
        let file = options.open(self.path(&filename)).map_err(status_of)?;
        let handle = self.add(Open::File(file));
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("no such handle")),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let file = self.file(&handle)?;
        let mut data = vec![0; len.min(MAX_READ) as usize];
        let n = file.read_at(&mut data, offset).map_err(status_of)?;
        if n == 0 {
            return Err(StatusCode::Eof.into());
        }
        data.truncate(n);
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        self.file(&handle)?
            .write_all_at(&data, offset)
            .map_err(status_of)?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let meta = fs::symlink_metadata(self.path(&path)).map_err(status_of)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let meta = fs::metadata(self.path(&path)).map_err(status_of)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let meta = self.file(&handle)?.metadata().map_err(status_of)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        // Write access only when the size changes: a mode or times alone
        // may be set on a file this session cannot write (or a directory).
        let file = OpenOptions::new()
            .read(attrs.size.is_none())
            .write(attrs.size.is_some())
            .open(self.path(&path))
            .map_err(status_of)?;
        set_attrs(&file, &attrs).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        set_attrs(self.file(&handle)?, &attrs).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let dir = self.path(&path);
        let mut entries = Vec::new();
        for entry in fs::read_dir(&dir).map_err(status_of)? {
            let entry = entry.map_err(status_of)?;
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue; // gone since the listing: as if it never was
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.push(NameEntry::new(name, attrs_of(&meta)));
        }
        entries.reverse(); // handed out from the end
        let handle = self.add(Open::Dir(entries));
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        let Some(Open::Dir(left)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("no such directory handle"));
        };
        if left.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        let take = left.len().min(NAMES_PER_READDIR);
        let files = left
            .split_off(left.len() - take)
            .into_iter()
            .rev()
            .collect();
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        fs::remove_file(self.path(&filename)).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        let path = self.path(&path);
        fs::create_dir(&path).map_err(status_of)?;
        if let Some(mode) = attrs.permissions {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(status_of)?;
        }
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        fs::remove_dir(self.path(&path)).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let full = lexical_clean(&self.path(&path));
        let name = full.to_string_lossy().into_owned();
        Ok(Name {
            id,
            files: vec![NameEntry::dummy(name)],
        })
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        let new = self.path(&newpath);
        // SFTP v3 RENAME (and OpenSSH's) never replaces an existing name.
        if new.symlink_metadata().is_ok() {
            return Err(StatusCode::Failure.with_message("target exists"));
        }
        fs::rename(self.path(&oldpath), new).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let target = fs::read_link(self.path(&path)).map_err(status_of)?;
        Ok(Name {
            id,
            files: vec![NameEntry::dummy(target.to_string_lossy().into_owned())],
        })
    }

    /// OpenSSH reads the first field as the target and the second as the
    /// link's name, the reverse of the draft; clients follow OpenSSH.
    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, StatusReply> {
        std::os::unix::fs::symlink(&linkpath, self.path(&targetpath)).map_err(status_of)?;
        Ok(ok(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, StatusReply> {
        let args = ssh_strings(&data).unwrap_or_default();
        match (request.as_str(), args.as_slice()) {
            (POSIX_RENAME, [old, new]) => {
                fs::rename(self.path(old), self.path(new)).map_err(status_of)?;
                Ok(Packet::Status(ok(id)))
            }
            (FSYNC, [handle]) => {
                self.file(handle)?.sync_all().map_err(status_of)?;
                Ok(Packet::Status(ok(id)))
            }
            (LIMITS, _) => {
                let mut data = Vec::with_capacity(32);
                for limit in [256 * 1024, MAX_READ as u64, MAX_READ as u64, 0u64] {
                    data.extend_from_slice(&limit.to_be_bytes());
                }
                Ok(Packet::ExtendedReply(ExtendedReply { id, data }))
            }
            _ => Err(StatusCode::OpUnsupported.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_payloads_are_ssh_strings() {
        let mut data = Vec::new();
        for word in ["old name", "new"] {
            data.extend_from_slice(&(word.len() as u32).to_be_bytes());
            data.extend_from_slice(word.as_bytes());
        }
        assert_eq!(ssh_strings(&data).unwrap(), vec!["old name", "new"]);
        assert_eq!(ssh_strings(&data[..5]), None);
    }

    #[test]
    fn realpath_never_climbs_above_the_root() {
        assert_eq!(lexical_clean(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(lexical_clean(Path::new("/../../x")), Path::new("/x"));
    }
}
