//! Extended attributes of one entry (`-X`), and its POSIX ACLs (`-A`) as
//! Linux keeps them, in the xattrs `system.posix_acl_access` and
//! `system.posix_acl_default`. They are read from a path without following
//! a final symlink. They are changed through a descriptor opened at a
//! confined [`Place`] (`O_PATH|O_NOFOLLOW`) and reached as
//! `/proc/self/fd/N`: Linux has no `*at` call for xattrs before 6.13, and
//! this way a symlink swapped in during the run cannot take the change
//! elsewhere.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use rustix::fs::{FileType, XattrFlags};
use rustix::io::Errno;

use super::confined::{self, Place};
use crate::meta::{is_acl, XattrScope, Xattrs};

/// How an entry is reached: by its path, the final symlink not followed;
/// or through the descriptor's magic link, which is the entry itself.
#[derive(Clone, Copy)]
enum At<'a> {
    Entry(&'a Path),
    Descriptor(&'a str),
}

/// Times a read is tried again when the attributes grow between asking
/// their size and reading them.
const TRIES: usize = 4;

/// The attributes of the entry at `path` itself that `scope` covers,
/// sorted by name. A file system without xattrs has none.
pub(crate) fn read(path: &Path, scope: XattrScope) -> io::Result<Xattrs> {
    read_at(At::Entry(path), scope)
}

/// Makes the attributes of the entry at `place` that `scope` covers
/// exactly `want`: the others removed, the differing ones set. Where an ACL
/// changed, the mode bits are put back as they were: the kernel moves an
/// ACL's mask into them, and removing an ACL leaves that mask behind.
/// Returns whether anything changed.
pub(crate) fn write(place: &Place, want: &Xattrs, scope: XattrScope) -> io::Result<bool> {
    let fd = confined::open_entry(place)?;
    let before = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(before.st_mode) == FileType::Symlink {
        // Linux keeps no `user.` attributes on a symlink; ferry sets none.
        return Ok(false);
    }
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let at = At::Descriptor(&proc);
    let have = read_at(at, scope)?;
    let mut acl_changed = false;
    for (name, _) in &have {
        if !want.iter().any(|(n, _)| n == name) {
            rustix::fs::removexattr(proc.as_str(), name.as_slice())?;
            acl_changed |= is_acl(name);
        }
    }
    for (name, value) in want.iter().filter(|(n, _)| scope.covers(n)) {
        if have.iter().any(|(n, v)| n == name && v == value) {
            continue;
        }
        let flags = XattrFlags::empty();
        rustix::fs::setxattr(proc.as_str(), name.as_slice(), value, flags)?;
        acl_changed |= is_acl(name);
    }
    if acl_changed {
        let after = rustix::fs::fstat(&fd)?;
        if after.st_mode & 0o7777 != before.st_mode & 0o7777 {
            let mode = rustix::fs::Mode::from_raw_mode(before.st_mode & 0o7777);
            rustix::fs::chmod(proc.as_str(), mode)?;
        }
    }
    let changed = have.len() != want.len() || have.iter().zip(want).any(|(a, b)| a != b);
    Ok(changed)
}

fn read_at(at: At<'_>, scope: XattrScope) -> io::Result<Xattrs> {
    let names = match with_room(|| list_size(at), |buf| list(at, buf)) {
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        names => names?,
    };
    let mut found = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !scope.covers(name) {
            continue;
        }
        match with_room(|| value_size(at, name), |buf| get(at, name, buf)) {
            Ok(value) => found.push((name.to_vec(), value)),
            // Removed since the listing.
            Err(e) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    found.sort();
    Ok(found)
}

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOTSUP.raw_os_error())
}

fn list_size(at: At<'_>) -> rustix::io::Result<usize> {
    match at {
        At::Entry(path) => rustix::fs::llistxattr_query(path),
        At::Descriptor(proc) => rustix::fs::listxattr_query(proc),
    }
}

fn value_size(at: At<'_>, name: &[u8]) -> rustix::io::Result<usize> {
    match at {
        At::Entry(path) => rustix::fs::lgetxattr_query(path, name),
        At::Descriptor(proc) => rustix::fs::getxattr_query(proc, name),
    }
}

fn list(at: At<'_>, buf: &mut [u8]) -> rustix::io::Result<usize> {
    match at {
        At::Entry(path) => rustix::fs::llistxattr(path, buf),
        At::Descriptor(proc) => rustix::fs::listxattr(proc, buf),
    }
}

fn get(at: At<'_>, name: &[u8], buf: &mut [u8]) -> rustix::io::Result<usize> {
    match at {
        At::Entry(path) => rustix::fs::lgetxattr(path, name, buf),
        At::Descriptor(proc) => rustix::fs::getxattr(proc, name, buf),
    }
}

/// A variable-sized answer: its size asked first, then read, again if it
/// grew in between.
fn with_room(
    size: impl Fn() -> rustix::io::Result<usize>,
    mut call: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    for _ in 0..TRIES {
        let size = size()?;
        let mut buf = vec![0; size];
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno::RANGE.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ACL_ACCESS;

    fn scope() -> XattrScope {
        XattrScope {
            xattrs: true,
            acls: true,
            all_namespaces: false,
        }
    }

    /// A file system here that takes `user.` xattrs (tmpfs before 6.6 does
    /// not): the test's directory, else none and the test has nothing to do.
    fn takes_xattrs(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        rustix::fs::setxattr(&probe, "user.probe", b"1", XattrFlags::empty()).is_ok()
    }

    #[test]
    fn written_attributes_are_read_back_and_extra_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        if !takes_xattrs(dir.path()) {
            assert!(std::env::var_os("CI").is_none(), "no user xattrs here");
            return;
        }
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        rustix::fs::setxattr(&file, "user.old", b"gone", XattrFlags::empty()).unwrap();
        let want: Xattrs = vec![
            (b"user.a".to_vec(), b"1".to_vec()),
            (b"user.b".to_vec(), vec![0, 255]),
        ];
        assert!(write(&Place::path(&file), &want, scope()).unwrap());
        assert_eq!(read(&file, scope()).unwrap(), want);
        // Nothing to do the second time.
        assert!(!write(&Place::path(&file), &want, scope()).unwrap());
        // Outside the scope, nothing is read or removed.
        let acls_only = XattrScope {
            xattrs: false,
            ..scope()
        };
        assert!(read(&file, acls_only).unwrap().is_empty());
        assert!(!write(&Place::path(&file), &Vec::new(), acls_only).unwrap());
        assert_eq!(read(&file, scope()).unwrap(), want);
    }

    #[test]
    fn an_acl_is_set_and_removed_with_the_mode_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o670)).unwrap();
        // user::rw- user:12345:rwx group::r-- mask::rwx other::---
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 7, 12345),
            (4, 4, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&perm.to_le_bytes());
            acl.extend_from_slice(&id.to_le_bytes());
        }
        let want = vec![(ACL_ACCESS.to_vec(), acl)];
        match write(&Place::path(&file), &want, scope()) {
            Ok(true) => {}
            Err(e) if unsupported(&e) => {
                assert!(std::env::var_os("CI").is_none(), "no ACLs here: {e}");
                return;
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(read(&file, scope()).unwrap(), want);
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&file), 0o670, "the group bits are the mask");
        assert!(write(&Place::path(&file), &Vec::new(), scope()).unwrap());
        assert!(read(&file, scope()).unwrap().is_empty());
        assert_eq!(mode(&file), 0o670);
    }
}
