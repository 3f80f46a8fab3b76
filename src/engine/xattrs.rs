//! `-X` and `-A`: extended attributes and POSIX ACLs, copied as Linux keeps
//! them (ACLs are the xattrs `system.posix_acl_access` and
//! `system.posix_acl_default`, the ids in them mapped as owners are).
//! SFTP v3 carries neither: a remote side needs its helper, and a run that
//! asks for them where none can start is refused before anything is
//! written ([`check`]).
//!
//! The planner notes every entry the run keeps ([`Kept`]). Before anything
//! is written, each one's attributes are read on both sides, many at once
//! ([`compare`]): the differences show in the `a` and `x` columns of the
//! entries' lines, as rsync's. A file written anew gets its set on its
//! partial, before the rename ([`give`]); once the transfers, links and
//! nodes are in place, every other entry gets the source's ([`apply`]),
//! and an entry the run changed nothing else of gets its own line
//! (`.f........x`).

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};

use super::blocked::Blocked;
use super::plan::Action;
use super::{done, finish, item_kind, Options, Stats};
use crate::endpoint::{Endpoint, Kind, XattrScope, Xattrs};
use crate::error::{Error, Result};
use crate::meta::is_acl;
use crate::report::{Changes, Item, Outcome, Reporter};

/// An entry of the source the destination keeps after the run.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub source: String,
    pub dest: String,
    pub kind: Kind,
}

/// Both sides must read and write attributes; which namespaces `-X` takes
/// follows from who runs on each side (all but `system.` where both are
/// root, as rsync's; else `user.`). Returns the scope for the run.
pub(crate) async fn check<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    scope: XattrScope,
) -> Result<XattrScope> {
    for (side, label) in [
        (super::offers(src, |f| f.xattrs).await?, src.label()),
        (super::offers(dst, |f| f.xattrs).await?, dst.label()),
    ] {
        if !side {
            return Err(Error::Unsupported(format!(
                "{}: SFTP carries no ACLs or extended attributes, so {} cannot be kept on \
                 {}; ferry needs its helper there: --remote-ferry upload, or ferry installed \
                 on the server (or leave the option out)",
                options(scope),
                options(scope),
                label.machine()
            )));
        }
    }
    let (src_is, dst_is) = tokio::try_join!(src.identity(None), dst.identity(None))?;
    Ok(XattrScope {
        all_namespaces: src_is.root && dst_is.root,
        ..scope
    })
}

/// The options that ask for attributes, as the user wrote them.
fn options(scope: XattrScope) -> &'static str {
    match (scope.acls, scope.xattrs) {
        (true, true) => "-A and -X (--acls, --xattrs)",
        (true, false) => "-A (--acls)",
        _ => "-X (--xattrs)",
    }
}

/// What the source's entries have and how the destination's differ,
/// learned before anything is written: the differences show in the `a`
/// and `x` columns of the entries' lines, the sets are given afterwards.
#[derive(Debug, Default)]
pub(crate) struct Compared {
    /// By destination path: entries whose source has attributes, or whose
    /// destination's differ.
    by_dest: HashMap<String, Wanted>,
}

#[derive(Debug)]
struct Wanted {
    xattrs: Xattrs,
    /// The `a` and `x` columns: what differs on the destination now.
    acl: bool,
    other: bool,
}

impl Compared {
    /// The `a` and `x` columns of `dest`'s line.
    pub(crate) fn columns(&self, dest: &str) -> (bool, bool) {
        self.by_dest
            .get(dest)
            .map_or((false, false), |w| (w.acl, w.other))
    }
}

/// Reads the attributes of every entry of `kept` on both sides,
/// `opts.jobs` entries at once. An entry whose attributes cannot be read
/// fails alone.
pub(crate) async fn compare<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    kept: &[Kept],
    opts: &Options,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<Compared> {
    let scope = opts.xattrs;
    let mut compared = Compared::default();
    if !scope.wanted() {
        return Ok(compared);
    }
    let mut reading = stream::iter(attributed(kept))
        .map(|kept| async move { (kept, read_both(src, dst, kept, scope).await) })
        .buffered(opts.jobs.max(1) * 4);
    while let Some((kept, read)) = reading.next().await {
        let Some((want, have)) = super::absorb(read, &kept.dest, blocked, reporter, stats)? else {
            continue;
        };
        let want: Xattrs = want
            .into_iter()
            .map(|(name, value)| match is_acl(&name) {
                true => {
                    let mapped = opts.owners.map_acl(&value);
                    (name, mapped)
                }
                false => (name, value),
            })
            .collect();
        let differs = have.as_ref().is_some_and(|have| *have != want);
        if want.is_empty() && !differs {
            continue;
        }
        let have = have.unwrap_or_default();
        let wanted = Wanted {
            acl: differs && differ(&want, &have, is_acl),
            other: differs && differ(&want, &have, |n| !is_acl(n)),
            xattrs: want,
        };
        compared.by_dest.insert(kept.dest.clone(), wanted);
    }
    Ok(compared)
}

/// The entries that can hold attributes: Linux keeps no `user.` ones on a
/// symlink, and ferry sets none there.
fn attributed(kept: &[Kept]) -> impl Iterator<Item = &Kept> {
    kept.iter().filter(|k| k.kind != Kind::Symlink)
}

/// The source's attributes, and the destination's (None where it has no
/// such entry yet).
async fn read_both<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    kept: &Kept,
    scope: XattrScope,
) -> Result<(Xattrs, Option<Xattrs>)> {
    let (want, have) = tokio::join!(
        src.xattrs(&kept.source, scope),
        dst.xattrs(&kept.dest, scope)
    );
    let have = match have {
        Ok(have) => Some(have),
        Err(e) if !e.is_fatal() && dst.lstat(&kept.dest).await?.is_none() => None,
        Err(e) => return Err(e),
    };
    Ok((want?, have))
}

/// Gives the destination's entries the source's attributes, now that they
/// are in place, `opts.jobs` at once: those [`compare`] found different,
/// and every entry the run made or changed (a new file has none, or what
/// its directory's default ACL gave it). An entry the run itemized no
/// other change of gets a line of its own (`.f........x`); in a dry run,
/// that line is all.
pub(crate) async fn apply<D: Endpoint>(
    dst: &D,
    kept: &[Kept],
    actions: &[Action],
    opts: &Options,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let scope = opts.xattrs;
    if !scope.wanted() {
        return Ok(());
    }
    let compared = &opts.xattrs_found;
    let acted: HashSet<&str> = actions.iter().filter_map(action_dest).collect();
    let none = Xattrs::new();
    let work = attributed(kept).filter_map(|kept| {
        let wanted = compared.by_dest.get(&kept.dest);
        let acted = acted.contains(kept.dest.as_str());
        let differs = wanted.is_some_and(|w| w.acl || w.other);
        (acted || differs).then(|| (kept, wanted.map_or(&none, |w| &w.xattrs), acted))
    });
    let mut setting = stream::iter(work)
        .map(|(kept, want, acted)| async move {
            let set = match opts.dry_run {
                true => Ok(()),
                false => dst.set_xattrs(&kept.dest, want, scope).await,
            };
            // An entry whose transfer failed (and was reported) is not
            // there to be given anything.
            let gone = match &set {
                Err(e) if acted && !e.is_fatal() => dst.lstat(&kept.dest).await.ok() == Some(None),
                _ => false,
            };
            (
                kept,
                acted || gone,
                set.or_else(|e| if gone { Ok(()) } else { Err(e) }),
            )
        })
        .buffered(opts.jobs.max(1) * 4);
    while let Some((kept, acted, set)) = setting.next().await {
        if acted && set.is_ok() {
            continue;
        }
        let (acl, xattrs) = compared.columns(&kept.dest);
        let item = Item {
            changes: Changes {
                acl,
                xattrs,
                ..Changes::default()
            },
            ..Item::new(&kept.dest, item_kind(kept.kind), Outcome::Attributes)
        };
        finish(
            item,
            set.map(|()| done(Outcome::Attributes)),
            blocked,
            reporter,
            stats,
        )?;
    }
    Ok(())
}

/// Gives `partial`, about to be renamed to `dest`, the attributes the
/// source's entry for `dest` has (none where it has none: a new file may
/// have inherited a default ACL).
pub(crate) async fn give<D: Endpoint>(
    dst: &D,
    partial: &str,
    dest: &str,
    opts: &Options,
) -> Result<()> {
    if !opts.xattrs.wanted() {
        return Ok(());
    }
    let none = Xattrs::new();
    let want = opts
        .xattrs_found
        .by_dest
        .get(dest)
        .map_or(&none, |w| &w.xattrs);
    dst.set_xattrs(partial, want, opts.xattrs).await
}

/// Whether the attributes `which` picks differ between two sets.
fn differ(a: &Xattrs, b: &Xattrs, which: fn(&[u8]) -> bool) -> bool {
    let picked = |x: &Xattrs| {
        x.iter()
            .filter(|(n, _)| which(n))
            .cloned()
            .collect::<Vec<_>>()
    };
    picked(a) != picked(b)
}

/// The destination entry an action makes or changes (and itemizes).
fn action_dest(action: &Action) -> Option<&str> {
    match action {
        Action::File(job) => Some(&job.paths.dest),
        Action::HardLink(link) => Some(&link.dest),
        Action::Dir { dest, exists, .. } if !exists => Some(dest),
        Action::Node { dest, .. } | Action::Symlink { dest, .. } | Action::Attrs { dest, .. } => {
            Some(dest)
        }
        Action::Dir { .. } | Action::RemoveSource { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_and_xattr_columns_are_told_apart() {
        let acl = |v: &[u8]| (crate::meta::ACL_ACCESS.to_vec(), v.to_vec());
        let user = |v: &[u8]| (b"user.a".to_vec(), v.to_vec());
        let (a, b) = (vec![acl(b"1"), user(b"x")], vec![acl(b"1"), user(b"y")]);
        assert!(differ(&a, &b, |n| !is_acl(n)) && !differ(&a, &b, is_acl));
        let c = vec![user(b"x")];
        assert!(differ(&a, &c, is_acl) && !differ(&a, &c, |n| !is_acl(n)));
    }
}
