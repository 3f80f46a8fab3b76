//! Symlinks on a server whose LSTAT, RENAME and READLINK resolve them
//! ([`Quirks`](crate::sftp::Quirks): ProFTPD's mod_sftp).
//!
//! There, asked as usual, LSTAT describes what a link points at, renaming a
//! link moves the file it points at (a pushed tree lost the file one of its
//! links named, and ferry exited 0), renaming a file over a link replaces
//! the link's target, and reading a link gives its target joined to the
//! link's directory. Here READLINK, which fails on anything but a link,
//! tells a link (so LSTAT answers as lstat(2) would); a link is made anew
//! under its new name and the old one removed instead of being renamed; a
//! link in a rename's way is removed first; and a link's target is taken
//! back to the text the link holds, whose length is the link's size as a
//! directory listing gives it.

use std::collections::HashMap;
use std::sync::Mutex;

use russh_sftp::client::error::Error as SftpError;

use super::RemoteFs;
use crate::endpoint::{Endpoint, Kind, Listing, Meta};
use crate::error::{FileError, Result};
use crate::paths::{join, parent};

/// What ferry learned of symlinks on such a server: the targets of the
/// links this run made (the text a rename must write again) and the sizes
/// listings gave (a link's size is the length of its text).
#[derive(Default)]
pub(super) struct KnownLinks {
    made: Mutex<HashMap<String, String>>,
    sizes: Mutex<HashMap<String, u64>>,
}

impl KnownLinks {
    /// Keeps the sizes of the links in `listing`, a listing of `dir`.
    pub(super) fn listed(&self, dir: &str, listing: &Listing) {
        let links = listing
            .entries
            .iter()
            .filter(|e| e.meta.kind == Kind::Symlink);
        let mut sizes = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        for entry in links {
            sizes.insert(join(dir, &entry.name), entry.meta.size);
        }
    }

    /// Keeps `target` as what the link `path`, just made, holds.
    pub(super) fn made(&self, path: &str, target: &str) {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.insert(path.to_string(), target.to_string());
    }

    fn made_target(&self, path: &str) -> Option<String> {
        let made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.get(path).cloned()
    }

    fn forget(&self, path: &str) {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.remove(path);
    }

    fn size(&self, path: &str) -> Option<u64> {
        let sizes = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        sizes.get(path).copied()
    }
}

impl RemoteFs {
    /// lstat(2) of `path`: LSTAT, and READLINK with it, which succeeds on a
    /// link only. A link that points at something is then a symlink whose
    /// mtime is what LSTAT gave, its target's, and whose size is a listing's
    /// (READLINK's answer's length where none was kept).
    pub(super) async fn lstat_not_following(&self, path: &str) -> Result<Option<Meta>> {
        let (meta, answer) = tokio::join!(self.stat_over_sftp(path, false), self.link_answer(path));
        let (meta, answer) = (meta?, answer?);
        let (Some(meta), Some(answer)) = (meta, answer) else {
            return Ok(meta);
        };
        // A link that points nowhere: LSTAT described the link itself.
        if meta.kind == Kind::Symlink {
            return Ok(Some(meta));
        }
        Ok(Some(Meta {
            kind: Kind::Symlink,
            size: self.links.size(path).unwrap_or(answer.len() as u64),
            mode: 0o777,
            ..meta
        }))
    }

    /// READLINK's answer, None when the server refuses it: `path` is not a
    /// link, or not there.
    async fn link_answer(&self, path: &str) -> Result<Option<String>> {
        match self.sftp.raw().readlink(path).await {
            Ok(name) => Ok(name.files.into_iter().next().map(|f| f.filename)),
            Err(SftpError::Status(_)) => Ok(None),
            Err(e) => Err(self.err(path, e)),
        }
    }

    /// Renames `from` over `to` without asking the server to rename a
    /// symlink: a link `from` is made again as `to`, and a link `to` is
    /// removed before `from` takes its name. Unlike a rename, neither is one
    /// step: for a moment `to` does not exist.
    pub(super) async fn rename_not_following(&self, from: &str, to: &str) -> Result<()> {
        let (old, new) = tokio::join!(self.lstat(from), self.lstat(to));
        let (old, new) = (old?, new?);
        let is_link = |meta: &Option<Meta>| meta.is_some_and(|m| m.kind == Kind::Symlink);
        if is_link(&old) {
            let target = self.read_link(from).await?;
            if new.is_some_and(|m| m.kind != Kind::Dir) {
                self.remove_file(to).await?;
            }
            self.symlink(&target, to).await?;
            self.remove_file(from).await?;
            self.links.forget(from);
            return Ok(());
        }
        if is_link(&new) {
            self.remove_file(to).await?;
        }
        self.sftp.rename_replace(from, to).await
    }

    /// The target of the symlink `path` as the link holds it, where the
    /// server's READLINK answers a relative one joined to the link's
    /// directory: a link this run made holds what it was made with; another
    /// one is as long as its size in a listing of its directory, and an
    /// answer longer than that is taken back to a path relative to the
    /// link's directory, which must then have the link's length. A target
    /// the server changed beyond that (`./t`, `x/../t`) fails, rather than
    /// becoming another link.
    pub(super) async fn read_link_as_written(&self, path: &str) -> Result<String> {
        if let Some(target) = self.links.made_target(path) {
            return Ok(target);
        }
        let answer = self.read_link_over_sftp(path).await?;
        let Some(len) = self.listed_link_size(path).await? else {
            return Ok(answer);
        };
        if answer.len() as u64 == len {
            return Ok(answer);
        }
        match relative_to(parent(path), &answer) {
            Some(target) if target.len() as u64 == len => Ok(target),
            _ => Err(FileError::server(
                &self.label,
                path,
                format!(
                    "the server reads this symlink's {len}-byte target as `{answer}`, \
                     which is not what the link holds"
                ),
            )
            .into()),
        }
    }

    /// The size of the link `path` as the listing of its directory gives
    /// it, listed now when no listing of it was kept.
    async fn listed_link_size(&self, path: &str) -> Result<Option<u64>> {
        if let Some(size) = self.links.size(path) {
            return Ok(Some(size));
        }
        let dir = parent(path);
        let listing = self.list_over_sftp(dir).await?;
        self.links.listed(dir, &listing);
        Ok(self.links.size(path))
    }
}

/// `target` as a path relative to the directory `dir`, both `/`-separated
/// and clean, both absolute or both relative: `../t` for `a/b` and `a/t`.
/// None when one is absolute and the other not.
fn relative_to(dir: &str, target: &str) -> Option<String> {
    if dir.starts_with('/') != target.starts_with('/') {
        return None;
    }
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let (from, to) = (parts(dir), parts(target));
    let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..".to_string(), from.len() - shared);
    let rest: Vec<String> = ups.chain(to[shared..].iter().cloned()).collect();
    match rest.is_empty() {
        true => Some(".".to_string()),
        false => Some(rest.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::relative_to;

    #[test]
    fn a_joined_target_is_taken_back_to_the_links_directory() {
        let cases = [
            ("/srv/tree", "/srv/tree/top.txt", "top.txt"),
            (
                "/srv/tree/dir with space",
                "/srv/tree/top.txt",
                "../top.txt",
            ),
            ("/srv/tree", "/srv/other/x", "../other/x"),
            ("/srv/tree/a/b", "/srv/tree/a/b/c/d", "c/d"),
            ("/srv/tree", "/srv/tree", "."),
            ("/", "/etc/passwd", "etc/passwd"),
            ("tree/sub", "tree/t", "../t"),
        ];
        for (dir, target, expected) in cases {
            assert_eq!(
                relative_to(dir, target).as_deref(),
                Some(expected),
                "{dir} -> {target}"
            );
        }
    }

    #[test]
    fn absolute_and_relative_do_not_mix() {
        assert_eq!(relative_to("/srv", "t"), None);
        assert_eq!(relative_to("srv", "/t"), None);
    }
}
