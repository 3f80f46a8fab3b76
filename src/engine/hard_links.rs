//! `-H`: source files that are one inode under several names arrive as one
//! inode under the same names. The planner sends the first name of each
//! group it meets (the leader) as any file; every later name becomes a
//! [`HardLink`] to the leader's destination, made once all transfers are
//! done, so the leader is in place by then.
//!
//! A name already linked to its leader is left alone where the destination
//! tells inodes (locally, or through a remote helper); over plain SFTP it
//! cannot tell, so the link is made again: the same tree, at two requests
//! per name.

use std::collections::HashMap;

use crate::endpoint::{Endpoint, Kind, Meta};
use crate::error::{Error, FileError, Result};
use crate::meta::Inode;

use super::staging::Places;
use super::Options;

/// The leaders met so far, by the source inode they stand for.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    leaders: HashMap<(u64, u64), String>,
}

impl Groups {
    /// The destination of the leader of `inode`'s group when `dest` is not
    /// it; None makes `dest` the leader (the first name met) or leaves it
    /// alone (a file with one name).
    pub(crate) fn leader_of(&mut self, inode: Option<Inode>, dest: &str) -> Option<String> {
        let inode = inode.filter(|i| i.nlink > 1)?;
        let leader = self
            .leaders
            .entry((inode.dev, inode.ino))
            .or_insert_with(|| dest.to_string());
        (leader != dest).then(|| leader.clone())
    }
}

/// A later name of a group: `dest` becomes another name of `leader`.
#[derive(Debug, Clone)]
pub(crate) struct HardLink {
    pub source: String,
    pub dest: String,
    pub leader: String,
    pub source_meta: Meta,
    /// The destination as it was when planned.
    pub existing: Option<Meta>,
}

impl HardLink {
    /// Whether the destination already had a file like the source's there
    /// (its line then reads as unchanged when it turns out linked).
    pub(crate) fn had_file(&self) -> bool {
        self.existing.is_some_and(|m| m.kind == Kind::File)
    }
}

/// `-H` needs to know which names of the source are one file: a side that
/// cannot tell (a server over plain SFTP) gets its helper started, and
/// without one the run is refused before anything is written.
pub(crate) async fn check_source<S: Endpoint>(src: &S) -> Result<()> {
    if super::offers(src, |f| f.inodes).await? {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "-H (--hard-links): the SFTP server on {} cannot tell which names are one file \
         (SFTP v3 carries no inode numbers); ferry needs its helper there: --remote-ferry \
         upload, or ferry installed on the server",
        src.label().machine()
    )))
}

/// The destination must be able to make hard links for the groups the
/// plan found, before anything is written.
pub(crate) async fn check_destination<D: Endpoint>(dst: &D) -> Result<()> {
    if super::offers(dst, |f| f.hard_links).await? {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "-H (--hard-links): the SFTP server on {} cannot make hard links (it lacks \
         hardlink@openssh.com); ferry needs its helper there: --remote-ferry upload, or \
         ferry installed on the server",
        dst.label().machine()
    )))
}

/// What linking one name did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linked {
    /// It was a name of the leader already.
    Already,
    Made,
}

/// Makes `link.dest` a name of its leader: under a temporary name first,
/// renamed over whatever file is there, so the old file stays until then.
pub(crate) async fn make<D: Endpoint>(
    dst: &D,
    link: &HardLink,
    opts: &Options,
    places: &Places,
) -> Result<Linked> {
    let (leader, old) = tokio::join!(dst.lstat(&link.leader), dst.lstat(&link.dest));
    let leader = leader?.filter(|m| is_copy_of(m, &link.source_meta, opts));
    let Some(leader) = leader else {
        return Err(FileError::refused(
            dst.label(),
            &link.dest,
            format!(
                "not linked: {} did not arrive, and this name of the same file waits for it",
                link.leader
            ),
        )
        .into());
    };
    let old = old?;
    let same = |m: &Meta| {
        m.inode
            .zip(leader.inode)
            .is_some_and(|(a, b)| same_inode(a, b))
    };
    if old.as_ref().is_some_and(same) {
        return Ok(Linked::Already);
    }
    let temp = super::make_way_for(dst, &link.dest, old.as_ref(), opts, places).await?;
    dst.hard_link(&link.leader, &temp).await?;
    dst.rename(&temp, &link.dest).await?;
    // rename(2) between two names of one inode does nothing: the name was
    // linked already, which a side without inodes could not tell before.
    if old.is_some() && dst.lstat(&temp).await?.is_some() {
        dst.remove_file(&temp).await?;
        return Ok(Linked::Already);
    }
    Ok(Linked::Made)
}

/// Whether the leader's destination holds the source file as sent: the
/// size, and the time where `--times` keeps it. A leader whose transfer
/// failed is not linked to.
fn is_copy_of(dest: &Meta, source: &Meta, opts: &Options) -> bool {
    let timed = !opts.times || dest.mtime.same(&source.mtime);
    dest.kind == Kind::File && dest.size == source.size && timed
}

fn same_inode(a: Inode, b: Inode) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(ino: u64, nlink: u64) -> Option<Inode> {
        Some(Inode { dev: 1, ino, nlink })
    }

    #[test]
    fn the_first_name_met_leads_its_group() {
        let mut groups = Groups::default();
        assert_eq!(groups.leader_of(inode(5, 3), "d/a"), None);
        assert_eq!(groups.leader_of(inode(5, 3), "d/b"), Some("d/a".into()));
        assert_eq!(groups.leader_of(inode(5, 3), "c"), Some("d/a".into()));
        // One name, no inode: never linked.
        assert_eq!(groups.leader_of(inode(6, 1), "x"), None);
        assert_eq!(groups.leader_of(inode(6, 1), "y"), None);
        assert_eq!(groups.leader_of(None, "z"), None);
    }
}
