//! Whether the helper cache on the server may be trusted, checked over SFTP
//! as OpenSSH's `safe_path` (misc.c) checks `~/.ssh` and the files in it
//! before using them: the cache directory and each parent up to the home
//! directory (`/` for a cache outside it) must be owned by the session user
//! or root and writable by no one else, and the cache itself must be a
//! directory, not a symlink. Whoever else could write there could put a
//! program in the helper's place between ferry's check of its bytes and its
//! start; once these hold, only the user and root can, and both can run
//! programs as the user anyway.
//!
//! One rule differs from safe_path, which refuses every parent writable by
//! group or others: a parent owned by root with the sticky bit (`/tmp`)
//! passes. Others may add names to it but not remove or rename the user's,
//! so the user's directory below stays the user's.

use futures::future::join_all;
use russh_sftp::protocol::FileAttributes;

use crate::error::{Error, Result};
use crate::meta::Kind;
use crate::sftp::Sftp;

const STICKY: u32 = 0o1000;
const GROUP_OR_OTHERS_WRITE: u32 = 0o022;
const OTHERS_WRITE: u32 = 0o002;

/// What is wrong with one directory on the way to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Symlink,
    NotDirectory,
    /// Owned by this uid, neither the session user nor root.
    Owner(u32),
    /// Writable by group or others; the permission bits.
    Writable(u32),
    /// The server did not say the owner or the mode.
    Unknown,
}

/// The cache itself, or a directory above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Cache,
    Parent,
}

/// Checks the cache directory `dir` (absolute, existing) as the session user
/// `uid` and returns it with its symlinks resolved: the path the helper is
/// then checked and started by.
pub(super) async fn check_cache_dir(sftp: &Sftp, dir: &str, uid: u32) -> Result<String> {
    let raw = sftp.raw();
    // Three questions at once: the cache itself, where it really is, and
    // where the walk up from it stops.
    let (own, real, home) = tokio::join!(raw.lstat(dir), real_path(sftp, dir), async {
        real_path(sftp, &sftp.home_directory().await).await.ok()
    });
    let own = own.map_err(|e| unexaminable(sftp, dir, sftp.error(dir, e)))?;
    if let Some(fault) = fault(&own.attrs, Place::Cache, uid) {
        return Err(refused(sftp, dir, dir, fault, uid));
    }
    let real = real.map_err(|e| unexaminable(sftp, dir, e))?;
    let parents = parents_up_to(&real, home.as_deref());
    let stats = join_all(parents.iter().map(|p| raw.lstat(p.as_str()))).await;
    for (parent, stat) in parents.iter().zip(stats) {
        let stat = stat.map_err(|e| unexaminable(sftp, dir, sftp.error(parent, e)))?;
        if let Some(fault) = fault(&stat.attrs, Place::Parent, uid) {
            return Err(refused(sftp, dir, parent, fault, uid));
        }
    }
    Ok(real)
}

async fn real_path(sftp: &Sftp, path: &str) -> Result<String> {
    let name = sftp
        .raw()
        .realpath(path)
        .await
        .map_err(|e| sftp.error(path, e))?;
    Ok(name
        .files
        .into_iter()
        .next()
        .map_or_else(|| path.to_string(), |f| f.filename))
}

/// The directories above `real`, nearest first, up to `home` when it is
/// one of them, else up to `/`.
fn parents_up_to(real: &str, home: Option<&str>) -> Vec<String> {
    let mut parents = Vec::new();
    let mut path = real.trim_end_matches('/');
    while let Some(cut) = path.rfind('/') {
        let parent = if cut == 0 { "/" } else { &path[..cut] };
        parents.push(parent.to_string());
        if Some(parent) == home || parent == "/" {
            break;
        }
        path = parent;
    }
    parents
}

fn fault(attrs: &FileAttributes, place: Place, uid: u32) -> Option<Fault> {
    let (Some(mode), Some(owner)) = (attrs.permissions, attrs.uid) else {
        return Some(Fault::Unknown);
    };
    match Kind::of_mode(mode, 0) {
        Kind::Symlink => return Some(Fault::Symlink),
        Kind::Dir => {}
        _ => return Some(Fault::NotDirectory),
    }
    if owner != uid && owner != 0 {
        return Some(Fault::Owner(owner));
    }
    let shared_but_sticky = place == Place::Parent && owner == 0 && mode & STICKY != 0;
    if mode & GROUP_OR_OTHERS_WRITE != 0 && !shared_but_sticky {
        return Some(Fault::Writable(mode & 0o7777));
    }
    None
}

impl Fault {
    /// What is wrong with `path` and what to do about it.
    fn describe(self, path: &str, uid: u32) -> String {
        match self {
            Fault::Symlink => format!(
                "{path} is a symlink; name the directory itself or choose another --remote-cache"
            ),
            Fault::NotDirectory => {
                format!("{path} is not a directory; choose another --remote-cache")
            }
            Fault::Owner(owner) => format!(
                "{path} is owned by uid {owner}, neither you (uid {uid}) nor root; \
                 choose another --remote-cache"
            ),
            Fault::Writable(mode) => {
                let who = match mode & OTHERS_WRITE {
                    0 => "its group",
                    _ => "others",
                };
                format!(
                    "{path} is writable by {who} (mode {mode:04o}); \
                     chmod go-w it or choose another --remote-cache"
                )
            }
            Fault::Unknown => format!(
                "the server does not say who owns {path} and who may write to it; \
                 use --remote-ferry PATH instead"
            ),
        }
    }
}

fn refused(sftp: &Sftp, cache: &str, path: &str, fault: Fault, uid: u32) -> Error {
    let whose = if path == cache { "" } else { "its parent " };
    Error::Helper {
        host: sftp.host().to_string(),
        detail: format!(
            "refusing the helper cache {cache}: {whose}{}",
            fault.describe(path, uid)
        ),
    }
}

fn unexaminable(sftp: &Sftp, cache: &str, e: Error) -> Error {
    super::helper_step(sftp, &format!("cannot check the helper cache {cache}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(mode: u32, owner: u32) -> FileAttributes {
        FileAttributes {
            permissions: Some(mode),
            uid: Some(owner),
            ..FileAttributes::empty()
        }
    }

    #[test]
    fn a_private_directory_of_the_user_or_root_passes() {
        for place in [Place::Cache, Place::Parent] {
            assert_eq!(fault(&attrs(0o040700, 1000), place, 1000), None);
            assert_eq!(fault(&attrs(0o040755, 0), place, 1000), None);
        }
    }

    #[test]
    fn writable_by_group_or_others_is_refused() {
        let cases = [(0o040777, "others"), (0o040775, "its group")];
        for (mode, who) in cases {
            let found = fault(&attrs(mode, 1000), Place::Cache, 1000);
            assert_eq!(found, Some(Fault::Writable(mode & 0o7777)));
            let text = found.unwrap().describe("/c", 1000);
            assert!(text.contains(&format!("writable by {who} (mode 0{:o})", mode & 0o777)));
        }
    }

    #[test]
    fn only_a_parent_owned_by_root_may_be_shared_and_sticky() {
        let tmp = attrs(0o041777, 0);
        assert_eq!(fault(&tmp, Place::Parent, 1000), None);
        assert_eq!(
            fault(&tmp, Place::Cache, 1000),
            Some(Fault::Writable(0o1777))
        );
        assert_eq!(
            fault(&attrs(0o041777, 1000), Place::Parent, 1000),
            Some(Fault::Writable(0o1777))
        );
    }

    #[test]
    fn others_symlinks_files_and_silence_are_refused() {
        let checks = [
            (attrs(0o040700, 1001), Some(Fault::Owner(1001))),
            (attrs(0o120777, 1000), Some(Fault::Symlink)),
            (attrs(0o100700, 1000), Some(Fault::NotDirectory)),
            (FileAttributes::empty(), Some(Fault::Unknown)),
        ];
        for (attrs, expected) in checks {
            assert_eq!(fault(&attrs, Place::Cache, 1000), expected);
        }
    }

    #[test]
    fn the_walk_stops_at_home_or_root() {
        assert_eq!(
            parents_up_to("/home/u/.cache/ferry", Some("/home/u")),
            ["/home/u/.cache", "/home/u"]
        );
        assert_eq!(
            parents_up_to("/tmp/x/cache", Some("/home/u")),
            ["/tmp/x", "/tmp", "/"]
        );
        assert_eq!(parents_up_to("/cache", None), ["/"]);
        assert_eq!(parents_up_to("/home/u", Some("/home/u")), ["/home", "/"]);
    }
}
