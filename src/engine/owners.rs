//! `-o`, `-g`, `--numeric-ids`, `--usermap`, `--groupmap` and `--chown`:
//! which owner and group an entry of the destination is to have, as
//! rsync's receiver decides it (rsync.c `set_file_attrs`, generator.c
//! `ownership_differs`, uidlist.c `recv_add_id`).
//!
//! The source's ids become the destination's as rsync maps them: the
//! first `--usermap`/`--groupmap` rule that matches the source's id or
//! name ([`IdMap`]); else, without `--numeric-ids`, by name (the source's
//! name for the id, the destination's id for that name); root (0), ids
//! without a name, and names the destination lacks stay numbers. Where a
//! side's names cannot be learned (a server that hides `/etc/passwd`), ids
//! go by number, with a note under `-v`.
//!
//! The owner is given
//! only where the receiving side runs as root; a group where it is root or
//! belongs to that group. Where the side cannot tell its groups (a server
//! over SFTP), the change of group is tried, and a refusal is taken as the
//! skip rsync would have made beforehand ([`OwnerChange::refusal_is_skip`]).
//!
//! Who writes on the destination is learned once, before planning
//! ([`prepare`]), so that the plan can compare owners as rsync's generator
//! does: an entry whose contents are current but whose owner differs is
//! given its owner, not sent again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Options;
use crate::endpoint::names::Of;
use crate::endpoint::{parent, Endpoint, IdNames, Identity, Kind, OwnerChange};
pub(crate) use crate::engine::idmap::IdMap;
use crate::engine::idmap::Match;
use crate::error::Result;
use crate::meta::Owner;
use crate::report::Reporter;

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
    /// `--usermap`, `--groupmap` (or `--chown`): applied first.
    pub usermap: Option<Arc<IdMap>>,
    pub groupmap: Option<Arc<IdMap>>,
    /// Who writes on the destination; None until [`prepare`] (and then
    /// nothing is changed).
    writer: Option<Identity>,
    /// How source ids become destination ids, once [`prepare`]d; None:
    /// they stay as they are.
    mapping: Option<Arc<Mapping>>,
}

impl Owners {
    pub(crate) fn new(owner: bool, group: bool, numeric_ids: bool) -> Owners {
        Owners {
            owner,
            group,
            numeric_ids,
            ..Owners::default()
        }
    }

    /// With `--usermap` and `--groupmap` (or `--chown`).
    pub(crate) fn with_maps(
        self,
        usermap: Option<Arc<IdMap>>,
        groupmap: Option<Arc<IdMap>>,
    ) -> Owners {
        Owners {
            usermap,
            groupmap,
            ..self
        }
    }

    /// Whether owners or groups are kept at all.
    pub(crate) fn wanted(&self) -> bool {
        self.owner || self.group
    }

    /// Whether the destination is written as root (false until
    /// [`prepare`]d).
    pub(crate) fn writer_is_root(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| w.root)
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

    /// A source's ACL (`system.posix_acl_*`'s value) with the ids of its
    /// named users and groups mapped as owners are (rsync's acls.c maps
    /// them by name too); unchanged where ids stay as they are, or where it
    /// is not an ACL of the layout Linux keeps (version 2, entries of tag,
    /// permissions and id).
    pub(crate) fn map_acl(&self, acl: &[u8]) -> Vec<u8> {
        const USER: u16 = 2;
        const GROUP: u16 = 8;
        let mut out = acl.to_vec();
        let Some(mapping) = &self.mapping else {
            return out;
        };
        if acl.len() % 8 != 4 || acl[..4] != 2u32.to_le_bytes() {
            return out;
        }
        for entry in out[4..].chunks_exact_mut(8) {
            let tag = u16::from_le_bytes([entry[0], entry[1]]);
            let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let mapped = match tag {
                USER => mapping.uid(id),
                GROUP => mapping.gid(id),
                _ => continue,
            };
            entry[4..].copy_from_slice(&mapped.to_le_bytes());
        }
        out
    }

    /// The destination's ids for the source's `src`.
    fn map(&self, src: Owner) -> Owner {
        match &self.mapping {
            Some(mapping) => Owner {
                uid: mapping.uid(src.uid),
                gid: mapping.gid(src.gid),
            },
            None => src,
        }
    }
}

/// How the source's ids become the destination's (uidlist.c
/// `recv_add_id`), each id worked out once.
#[derive(Debug)]
struct Mapping {
    src: IdNames,
    dst: IdNames,
    /// `--numeric-ids`: the source's names are not looked at.
    numeric: bool,
    users: Ids,
    groups: Ids,
}

/// One kind of id: its rules with their destination ids, and the ids
/// mapped so far.
#[derive(Debug, Default)]
struct Ids {
    rules: Vec<(Match, u32)>,
    seen: Mutex<HashMap<u32, u32>>,
}

impl Ids {
    /// The mapped id, worked out by `map` the first time it is asked for.
    fn get(&self, id: u32, map: impl FnOnce() -> u32) -> u32 {
        let Ok(mut seen) = self.seen.lock() else {
            return map();
        };
        *seen.entry(id).or_insert_with(map)
    }

    /// rsync's order: the first rule matching the id or the source's
    /// name; else the destination's id for that name, except for root and
    /// for a name the destination lacks; else the id itself.
    fn map(&self, id: u32, name: Option<String>, id_of: impl Fn(&str) -> Option<u32>) -> u32 {
        let shown = name.as_deref().unwrap_or("");
        if let Some((_, to)) = self.rules.iter().find(|(m, _)| m.matches(id, shown)) {
            return *to;
        }
        match name {
            Some(name) if id != 0 => id_of(&name).unwrap_or(id),
            _ => id,
        }
    }
}

impl Mapping {
    fn uid(&self, id: u32) -> u32 {
        self.one(&self.users, Of::Users, id)
    }

    fn gid(&self, id: u32) -> u32 {
        self.one(&self.groups, Of::Groups, id)
    }

    fn one(&self, ids: &Ids, of: Of, id: u32) -> u32 {
        ids.get(id, || {
            let name = (!self.numeric).then(|| self.src.name(of, id)).flatten();
            ids.map(id, name, |n| self.dst.id(of, n))
        })
    }
}

/// The options with who writes on `dst` learned, when owners or groups are
/// kept: from the destination directory `dest`, or the nearest directory
/// above it that exists (a remote side creates a file there for a moment,
/// and the directory gets its time back; a dry run leaves no trace, see
/// [`Endpoint::identity`]). A side that cannot be asked (nothing can be
/// created there) is taken for a user who may give no owner and tries
/// groups.
pub(crate) async fn prepare<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    dest: &str,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Options> {
    let mut opts = opts.clone();
    // -A maps the ids of ACL entries as -o and -g map owners.
    if !opts.owners.wanted() && !opts.xattrs.acls {
        return Ok(opts);
    }
    // Both ask the destination a few round trips' worth: at once (the
    // first to fail ends both).
    let (mapping, writer) = tokio::try_join!(
        mapping(src, dst, &opts.owners, reporter),
        writer(dst, dest, &opts)
    )?;
    opts.owners.mapping = mapping;
    if !opts.owners.wanted() {
        return Ok(opts);
    }
    let writer = writer.unwrap_or_else(|| {
        reporter.note(&format!(
            "{}: cannot tell whether the receiving side runs as root; owners are not given",
            dst.label()
        ));
        Identity::default()
    });
    tracing::debug!(?writer, "the destination writes as");
    opts.owners.writer = Some(writer);
    Ok(opts)
}

/// The map from the source's ids to the destination's; None where every
/// id stays as it is (`--numeric-ids` without maps, or one machine's own
/// names on both sides).
async fn mapping<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    owners: &Owners,
    reporter: &dyn Reporter,
) -> Result<Option<Arc<Mapping>>> {
    let maps = owners.usermap.is_some() || owners.groupmap.is_some();
    if owners.numeric_ids && !maps {
        return Ok(None);
    }
    let (src_names, dst_names) = match owners.numeric_ids {
        true => (Ok(IdNames::Unknown), dst.id_names().await),
        false => tokio::join!(src.id_names(), dst.id_names()),
    };
    let (src_names, dst_names) = (src_names?, dst_names?);
    let same_machine = matches!((&src_names, &dst_names), (IdNames::System, IdNames::System));
    if same_machine && !maps {
        return Ok(None);
    }
    if !owners.numeric_ids {
        for (names, side) in [(&src_names, src.label()), (&dst_names, dst.label())] {
            if !names.known() {
                reporter.note(&format!(
                    "{side}: the names of users and groups cannot be read there; \
                     owners and groups go by number"
                ));
            }
        }
    }
    let resolve = |map: &Option<Arc<IdMap>>, id_of: &dyn Fn(&str) -> Option<u32>, what: &str| {
        let rules = map
            .as_deref()
            .map(|m| m.rules.as_slice())
            .unwrap_or_default();
        rules
            .iter()
            .filter_map(|(from, to)| {
                let id = to.parse::<u32>().ok().or_else(|| id_of(to));
                if id.is_none() {
                    reporter.warning(&format!("Unknown --{what} name on receiver: {to}"));
                }
                Some((from.clone(), id?))
            })
            .collect()
    };
    let users = resolve(&owners.usermap, &|n| dst_names.id(Of::Users, n), "usermap");
    let groups = resolve(
        &owners.groupmap,
        &|n| dst_names.id(Of::Groups, n),
        "groupmap",
    );
    Ok(Some(Arc::new(Mapping {
        numeric: owners.numeric_ids,
        users: Ids {
            rules: users,
            ..Ids::default()
        },
        groups: Ids {
            rules: groups,
            ..Ids::default()
        },
        src: src_names,
        dst: dst_names,
    })))
}

/// Who writes at `dest` when owners are wanted (None: not wanted, or the
/// side could not say).
async fn writer<D: Endpoint>(dst: &D, dest: &str, opts: &Options) -> Result<Option<Identity>> {
    if !opts.owners.wanted() {
        return Ok(None);
    }
    Ok(match (opts.dry_run, existing_dir(dst, dest).await?) {
        (true, _) => dst.identity(None).await.ok(),
        (false, Some(dir)) => ask(dst, &dir).await?,
        (false, None) => None,
    })
}

/// `dest` when it is a directory, else the nearest one above it: every
/// candidate asked at once, the nearest answer taken as a walk up would
/// take it (an error before the first directory is the walk's error).
async fn existing_dir<D: Endpoint>(dst: &D, dest: &str) -> Result<Option<String>> {
    let candidates = dirs_up_from(dest);
    let found = futures::future::join_all(candidates.iter().map(|dir| dst.lstat(dir))).await;
    for (dir, meta) in candidates.into_iter().zip(found) {
        if meta?.is_some_and(|m| m.kind == Kind::Dir) {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// `dest` and the directories above it, nearest first, ending at the root
/// or at "." for a relative path (at most 64).
fn dirs_up_from(dest: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut dir = dest.trim_end_matches('/').to_string();
    for _ in 0..64 {
        if dir.is_empty() {
            dir = ".".into();
        }
        dirs.push(dir.clone());
        let up = parent(&dir).to_string();
        if up == dir || dir == "." {
            break;
        }
        dir = up;
    }
    dirs
}

/// Who writes in `dir` (None: the side could not say). A side that finds
/// out from a file it makes there leaves the directory's time as it was.
async fn ask<D: Endpoint>(dst: &D, dir: &str) -> Result<Option<Identity>> {
    match dst.identity(Some(dir)).await {
        Ok(writer) => Ok(Some(writer)),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            tracing::debug!("{e}");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(owner: bool, group: bool, writer: Identity) -> Owners {
        Owners {
            writer: Some(writer),
            ..Owners::new(owner, group, true)
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
        let unprepared = Owners::new(true, true, false);
        assert!(unprepared.change(Some(SRC), None).is_empty());
    }

    /// As rsync's receiver: a rule first, then the name, root and ids
    /// without a name as numbers.
    #[test]
    fn ids_map_by_rule_then_by_name() {
        let src = IdNames::parse("alice:x:1000:1000::/:\nroot:x:0:0::/:\n", "staff:x:50:\n");
        let dst = IdNames::parse("alice:x:2000:2000::/:\nroot:x:0:0::/:\n", "staff:x:60:\n");
        let mapping = Mapping {
            src,
            dst,
            numeric: false,
            users: Ids {
                rules: vec![(Match::Ids(4000, 4999), 7)],
                ..Ids::default()
            },
            groups: Ids::default(),
        };
        assert_eq!(mapping.uid(1000), 2000, "by name");
        assert_eq!(mapping.uid(0), 0, "root by number");
        assert_eq!(mapping.uid(3000), 3000, "no name");
        assert_eq!(mapping.uid(4242), 7, "a rule");
        assert_eq!(mapping.gid(50), 60);
        let numeric = Mapping {
            numeric: true,
            users: Ids::default(),
            groups: Ids::default(),
            ..mapping
        };
        assert_eq!(numeric.uid(1000), 1000);
    }
}
