//! rsync's options about symlinks in the source: `-L` (copy what every
//! link points to), `-k` (what links to directories point to),
//! `--copy-unsafe-links` (what links that leave the tree point to),
//! `--safe-links` (leave those out), and `--munge-links` (on the side
//! ferry runs on, as rsync's client applies it: a received link's target
//! gets `/rsyncd-munged/` in front, a sent one loses it).

use crate::endpoint::{Endpoint, Kind, Meta};
use crate::error::{FileError, Result};

/// The prefix `--munge-links` puts before a symlink's target.
pub(crate) const MUNGED: &str = "/rsyncd-munged/";

/// What the symlink options ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkPolicy {
    pub copy_links: bool,
    pub copy_dirlinks: bool,
    pub copy_unsafe_links: bool,
    pub safe_links: bool,
    pub munge: Munge,
}

/// `--munge-links` on ferry's side of the transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Munge {
    #[default]
    Off,
    /// Links received here (a pull) are made with the prefix.
    Add,
    /// Links sent from here (a push) lose the prefix.
    Strip,
}

impl LinkPolicy {
    /// Whether any option needs a source symlink looked at more closely.
    pub(crate) fn looks_at_links(&self) -> bool {
        self.copy_links || self.copy_dirlinks || self.copy_unsafe_links || self.safe_links
    }

    /// The target a copied link gets, from the source link's target.
    pub(crate) fn target(&self, target: String) -> String {
        match self.munge {
            Munge::Off => target,
            Munge::Add => format!("{MUNGED}{target}"),
            Munge::Strip => match target.strip_prefix(MUNGED) {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => target,
            },
        }
    }
}

/// What becomes of a source symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Copied as the link it is (or skipped without `-l`, as ever).
    Link,
    /// Copied as what it points to, with that entry's metadata.
    Followed(Meta),
    /// Left out (`--safe-links`: it points out of the tree).
    Unsafe,
}

/// What the options make of the source symlink at `path`, `rel` from the
/// transfer root. A link to follow that points nowhere is an error
/// naming it (rsync's "symlink has no referent", exit 23).
pub(crate) async fn resolve<E: Endpoint>(
    src: &E,
    policy: &LinkPolicy,
    path: &str,
    rel: &str,
) -> Result<Resolved> {
    if policy.copy_links {
        return follow(src, path).await;
    }
    if policy.copy_dirlinks {
        // A link that cannot be followed (a loop, a dangling target) is
        // no link to a directory: copied as a link, as rsync's link_stat
        // keeps the lstat then.
        match src.stat(path).await {
            Ok(Some(meta)) if meta.kind == Kind::Dir => return Ok(Resolved::Followed(meta)),
            Err(e) if e.is_fatal() => return Err(e),
            _ => {}
        }
    }
    if !(policy.copy_unsafe_links || policy.safe_links) {
        return Ok(Resolved::Link);
    }
    let target = src.read_link(path).await?;
    if !unsafe_symlink(&target, rel) {
        return Ok(Resolved::Link);
    }
    match policy.copy_unsafe_links {
        true => follow(src, path).await,
        false => Ok(Resolved::Unsafe),
    }
}

async fn follow<E: Endpoint>(src: &E, path: &str) -> Result<Resolved> {
    match src.stat(path).await? {
        Some(meta) => Ok(Resolved::Followed(meta)),
        None => Err(FileError::refused(src.label(), path, "symlink has no referent").into()),
    }
}

/// rsync's `unsafe_symlink()` (util1.c): whether the link at `link_path`
/// (from the transfer root) with target `target` points outside the
/// tree: an absolute or empty target, or one whose `..` climb above the
/// root.
pub(crate) fn unsafe_symlink(target: &str, link_path: &str) -> bool {
    if target.is_empty() || target.starts_with('/') {
        return true;
    }
    // The link's own directory depth, a ".." starting the count over.
    let mut depth: i64 = 0;
    let mut parts = link_path.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        match part {
            "." if !last => {}
            ".." => depth = 0,
            _ if last => {}
            _ => depth += 1,
        }
    }
    let mut parts = target.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        match part {
            "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 && !last {
                    return true;
                }
            }
            _ if last => {}
            _ => depth += 1,
        }
    }
    depth < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_links_are_those_rsync_calls_unsafe() {
        // Checked against rsync 3.5.0 --safe-links on the same links.
        assert!(unsafe_symlink("/etc/passwd", "abs"));
        assert!(unsafe_symlink("", "empty"));
        assert!(unsafe_symlink("../x", "up"));
        assert!(unsafe_symlink("../../x", "sub/upup"));
        assert!(!unsafe_symlink("../in", "sub/ok"));
        assert!(!unsafe_symlink("a", "in"));
        assert!(!unsafe_symlink("a/../b", "in"));
        assert!(unsafe_symlink("a/../../b", "in"));
        assert!(!unsafe_symlink("./a", "in"));
        assert!(unsafe_symlink("..", "in"));
        assert!(!unsafe_symlink("..", "sub/in"));
        assert!(unsafe_symlink("../..", "sub/in"));
    }

    #[test]
    fn munging_adds_or_strips_the_prefix() {
        let add = LinkPolicy {
            munge: Munge::Add,
            ..LinkPolicy::default()
        };
        assert_eq!(add.target("../x".into()), "/rsyncd-munged/../x");
        let strip = LinkPolicy {
            munge: Munge::Strip,
            ..LinkPolicy::default()
        };
        assert_eq!(strip.target("/rsyncd-munged/../x".into()), "../x");
        assert_eq!(strip.target("/etc".into()), "/etc");
        assert_eq!(LinkPolicy::default().target("t".into()), "t");
    }
}
