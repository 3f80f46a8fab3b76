//! `-o`, `-g` and `--numeric-ids`: which owner and group an entry of the
//! destination is to have, as rsync's receiver decides it (rsync.c
//! `set_file_attrs`, generator.c `ownership_differs`). The owner is given
//! only where the receiving side runs as root; a group where it is root or
//! belongs to that group. Where the side cannot tell its groups (a server
//! over SFTP), the change of group is tried, and a refusal is taken as the
//! skip rsync would have made beforehand ([`OwnerChange::refusal_is_skip`]).
//!
//! Who writes on the destination is learned once, before planning
//! ([`prepare`]), so that the plan can compare owners as rsync's generator
//! does: an entry whose contents are current but whose owner differs is
//! given its owner, not sent again.

use super::Options;
use crate::endpoint::{parent, Endpoint, Identity, Kind, OwnerChange};
use crate::error::Result;
use crate::meta::Owner;

/// What the options ask for owners and groups, and, once [`prepare`]d,
/// who writes on the destination.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owners {
    /// `-o`: the source's owner, where the receiving side is root.
    pub owner: bool,
    /// `-g`: the source's group, where the receiving side may give it.
    pub group: bool,
    /// `--numeric-ids`: ids as they are, never mapped by name.
    pub numeric_ids: bool,
    /// Who writes on the destination; None until [`prepare`] (and then
    /// nothing is changed).
    writer: Option<Identity>,
}

impl Owners {
    pub(crate) fn new(owner: bool, group: bool, numeric_ids: bool) -> Owners {
        Owners {
            owner,
            group,
            numeric_ids,
            writer: None,
        }
    }

    /// Whether owners or groups are kept at all.
    pub(crate) fn wanted(&self) -> bool {
        self.owner || self.group
    }

    /// The change that gives an entry the source's owner and group `src`
    /// where the destination has `old` (None: an entry ferry makes, whose
    /// owner is whoever writes): only what differs and may be given.
    pub(crate) fn change(&self, src: Option<Owner>, old: Option<Owner>) -> OwnerChange {
        let (Some(src), Some(writer)) = (src, self.writer.as_ref()) else {
            return OwnerChange::default();
        };
        let want = self.map(src);
        let differs = |now: fn(&Owner) -> u32| old.is_none_or(|old| now(&old) != now(&want));
        OwnerChange {
            uid: (self.owner && writer.root && differs(|o| o.uid)).then_some(want.uid),
            gid: (self.group && writer.may_give_group(want.gid) && differs(|o| o.gid))
                .then_some(want.gid),
        }
    }

    /// The destination's ids for the source's `src`.
    fn map(&self, src: Owner) -> Owner {
        src
    }
}

/// The options with who writes on `dst` learned, when owners or groups are
/// kept: from the destination directory `dest`, or the nearest directory
/// above it that exists (a remote side creates a file there for a moment,
/// and the directory gets its time back; a dry run leaves no trace, see
/// [`Endpoint::identity`]). A side that cannot be asked (nothing can be
/// created there) is taken for a user who may give no owner and tries
/// groups.
pub(crate) async fn prepare<D: Endpoint>(dst: &D, dest: &str, opts: &Options) -> Result<Options> {
    let mut opts = opts.clone();
    if !opts.owners.wanted() {
        return Ok(opts);
    }
    let writer = match (opts.dry_run, existing_dir(dst, dest).await?) {
        (true, _) => dst.identity(None).await.ok(),
        (false, Some(dir)) => ask(dst, &dir).await?,
        (false, None) => None,
    };
    let writer = writer.unwrap_or_else(|| {
        tracing::info!(
            "{}: cannot tell whether the destination side runs as root; owners are not given",
            dst.label()
        );
        Identity::default()
    });
    tracing::debug!(?writer, "the destination writes as");
    if !opts.owners.numeric_ids {
        tracing::debug!("names are not mapped yet: owners and groups go by number");
    }
    opts.owners.writer = Some(writer);
    Ok(opts)
}

/// `dest` when it is a directory, else the nearest one above it.
async fn existing_dir<D: Endpoint>(dst: &D, dest: &str) -> Result<Option<String>> {
    let mut dir = dest.trim_end_matches('/').to_string();
    for _ in 0..64 {
        if dir.is_empty() {
            dir = ".".into();
        }
        if dst.lstat(&dir).await?.is_some_and(|m| m.kind == Kind::Dir) {
            return Ok(Some(dir));
        }
        let up = parent(&dir).to_string();
        if up == dir || dir == "." {
            break;
        }
        dir = up;
    }
    Ok(None)
}

/// Who writes in `dir` (None: the side could not say), leaving the
/// directory's time as it found it.
async fn ask<D: Endpoint>(dst: &D, dir: &str) -> Result<Option<Identity>> {
    let before = dst.lstat(dir).await?;
    let writer = match dst.identity(Some(dir)).await {
        Ok(writer) => Some(writer),
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => {
            tracing::debug!("{e}");
            None
        }
    };
    if let (Some(before), Some(after)) = (before, dst.lstat(dir).await?) {
        if !after.mtime.same(&before.mtime) {
            let _ = dst.set_mtime(dir, before.mtime).await;
        }
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(owner: bool, group: bool, writer: Identity) -> Owners {
        Owners {
            owner,
            group,
            numeric_ids: true,
            writer: Some(writer),
        }
    }

    const SRC: Owner = Owner {
        uid: 4242,
        gid: 4343,
    };

    #[test]
    fn root_gives_what_differs() {
        let root = Identity {
            root: true,
            groups: None,
        };
        let both = owners(true, true, root.clone());
        let new = both.change(Some(SRC), None);
        assert_eq!((new.uid, new.gid), (Some(4242), Some(4343)));
        let same_group = Owner { uid: 0, gid: 4343 };
        let change = both.change(Some(SRC), Some(same_group));
        assert_eq!((change.uid, change.gid), (Some(4242), None));
        assert!(both.change(Some(SRC), Some(SRC)).is_empty());
        assert!(both.change(None, None).is_empty(), "no owner carried");
        let group_only = owners(false, true, root);
        assert_eq!(group_only.change(Some(SRC), None).uid, None);
    }

    /// As rsync's receiver: no owner without root; a group only where the
    /// user belongs to it, or where that cannot be known (tried).
    #[test]
    fn a_user_gives_no_owner_and_only_its_groups() {
        let member = Identity {
            root: false,
            groups: Some(vec![100, 4343]),
        };
        let change = owners(true, true, member).change(Some(SRC), None);
        assert_eq!((change.uid, change.gid), (None, Some(4343)));
        assert!(change.refusal_is_skip());
        let outsider = Identity {
            root: false,
            groups: Some(vec![100]),
        };
        assert!(owners(true, true, outsider)
            .change(Some(SRC), None)
            .is_empty());
        let unknown = Identity {
            root: false,
            groups: None,
        };
        let tried = owners(true, true, unknown).change(Some(SRC), None);
        assert_eq!((tried.uid, tried.gid), (None, Some(4343)));
    }

    #[test]
    fn nothing_changes_before_the_writer_is_known() {
        let unprepared = Owners {
            owner: true,
            group: true,
            ..Owners::default()
        };
        assert!(unprepared.change(Some(SRC), None).is_empty());
    }
}
