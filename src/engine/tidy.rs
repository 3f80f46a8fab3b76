//! What the planner does once every source is walked: one action per
//! destination path (the same file or tree named twice, or two sources
//! landing on one directory: the first wins, as in rsync's sorted file
//! list), `--delete` sparing what any source has (each walk only knows
//! its own source), and `-m` pruning directories that end up empty.

use std::collections::BTreeMap;

use super::delete::Extraneous;
use super::plan::Action;
use crate::endpoint::{Entry, Meta};
use crate::filter::Scope;

/// The destination paths the sources' entries map to, whatever the plan
/// does with them (an entry already up to date claims its path too).
#[derive(Debug, Default)]
pub(crate) struct Claims {
    /// Path (no trailing slash) to whether the source entry is a directory.
    paths: BTreeMap<String, bool>,
    /// Directories `-m` may prune: where they are and what the destination
    /// has there.
    dirs: Vec<Prunable>,
}

/// A source directory of the walk, as `-m` needs it.
#[derive(Debug)]
pub(crate) struct Prunable {
    pub dest: String,
    /// Its path from the transfer root, and the rules in its parent.
    pub rel: String,
    pub scope: Scope,
    /// What the destination has there.
    pub there: Option<Meta>,
}

impl Claims {
    pub(crate) fn claim(&mut self, dest: &str, is_dir: bool) {
        self.paths.insert(trimmed(dest).to_string(), is_dir);
    }

    pub(crate) fn dir(&mut self, dir: Prunable) {
        self.claim(&dir.dest, true);
        self.dirs.push(dir);
    }

    fn has(&self, path: &str) -> bool {
        self.paths.contains_key(trimmed(path))
    }

    /// Whether anything but directories is claimed below `dir`.
    fn holds_files(&self, dir: &str) -> bool {
        let prefix = format!("{}/", trimmed(dir));
        self.paths
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .any(|(_, is_dir)| !is_dir)
    }
}

fn trimmed(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" if path.starts_with('/') => "/",
        trimmed => trimmed,
    }
}

/// The destination path an action is about.
fn target(action: &Action) -> &str {
    match action {
        Action::File(job) => &job.paths.dest,
        Action::HardLink(link) => &link.dest,
        Action::Dir { dest, .. }
        | Action::Node { dest, .. }
        | Action::Symlink { dest, .. }
        | Action::Attrs { dest, .. }
        | Action::RemoveSource { dest, .. } => dest,
    }
}

/// Keeps the first action of each kind per destination path. A directory
/// ferry was to make with default attributes takes a later source
/// directory's ones instead. Finds the repeats through a sorted list of
/// indices: a copy of every path (or of the plan) would double the plan's
/// memory for the rare run that names a path twice.
pub(crate) fn one_per_path(actions: &mut Vec<Action>) {
    let mut order: Vec<usize> = (0..actions.len()).collect();
    // Stable: within a path, the actions stay in plan order.
    order.sort_by(|&a, &b| key(&actions[a]).cmp(&key(&actions[b])));
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    // The first action of the run of equal keys the pair is in.
    let mut leader = None;
    for pair in order.windows(2) {
        if key(&actions[pair[0]]) != key(&actions[pair[1]]) {
            leader = None;
            continue;
        }
        repeats.push((*leader.get_or_insert(pair[0]), pair[1]));
    }
    if repeats.is_empty() {
        return;
    }
    let mut dropped = vec![false; actions.len()];
    for &(first, later) in &repeats {
        let theirs = dir_meta(&actions[later]);
        adopt_attributes(&mut actions[first], theirs);
        dropped[later] = true;
    }
    let mut at = 0;
    actions.retain(|_| {
        at += 1;
        !dropped[at - 1]
    });
}

/// What makes two actions one too many: their path and what they do to it.
fn key(action: &Action) -> (&str, u8) {
    (trimmed(target(action)), kind_of(action))
}

/// What an action does to its path: everything that writes the
/// destination entry is one kind (the first source wins, and two of them
/// must never run at once); removing the source's is another.
fn kind_of(action: &Action) -> u8 {
    match action {
        Action::RemoveSource { .. } => 1,
        _ => 0,
    }
}

/// A directory action's source metadata, if it has any.
fn dir_meta(action: &Action) -> Option<Meta> {
    match action {
        Action::Dir { meta, .. } => *meta,
        _ => None,
    }
}

fn adopt_attributes(kept: &mut Action, theirs: Option<Meta>) {
    if let (
        Action::Dir {
            meta: mine @ None, ..
        },
        Some(theirs),
    ) = (kept, theirs)
    {
        *mine = Some(theirs);
    }
}

/// `--delete` deletes nothing a source has: with several sources (or
/// `-R`), one walk's extraneous entry may be another's.
pub(crate) fn spare_claimed(extraneous: &mut Vec<Extraneous>, claims: &Claims) {
    extraneous.retain(|gone| !claims.has(&gone.entry.name));
}

/// `-m`: directories of the source with no file below them are not made
/// (their actions go) and, with `--delete`, the destination's are
/// deleted as if the source had none, as rsync's pruned file list makes
/// them.
pub(crate) fn prune_empty_dirs(
    actions: &mut Vec<Action>,
    extraneous: &mut Vec<Extraneous>,
    claims: &Claims,
    delete: bool,
) {
    let empty: Vec<&Prunable> = claims
        .dirs
        .iter()
        .filter(|dir| !claims.holds_files(&dir.dest))
        .collect();
    if empty.is_empty() {
        return;
    }
    let pruned: std::collections::HashSet<&str> =
        empty.iter().map(|dir| trimmed(&dir.dest)).collect();
    actions.retain(|action| {
        !matches!(action, Action::Dir { meta: Some(_), .. })
            || !pruned.contains(trimmed(target(action)))
    });
    if !delete {
        return;
    }
    for dir in empty {
        // Only the outermost: deleting it takes what is inside along (so
        // what the walk found extraneous inside goes from the list), and a
        // pruned named directory, never deleted, is not looked into.
        let parent = crate::endpoint::parent(trimmed(&dir.dest));
        if pruned.contains(parent) {
            continue;
        }
        let inside = format!("{}/", trimmed(&dir.dest));
        extraneous.retain(|gone| !gone.entry.name.starts_with(&inside));
        let Some(there) = dir.there else { continue };
        extraneous.push(Extraneous {
            entry: Entry {
                name: dir.dest.clone(),
                meta: there,
            },
            path: dir.rel.clone(),
            scope: dir.scope.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{Kind, Mtime};

    fn meta(kind: Kind, secs: i64) -> Meta {
        Meta {
            kind,
            size: 0,
            mtime: Mtime::precise(secs, 0),
            mode: 0o755,
            owner: None,
            inode: None,
        }
    }

    fn dir(dest: &str, meta: Option<Meta>) -> Action {
        Action::Dir {
            dest: dest.to_string(),
            meta,
            exists: false,
            replaces: false,
            alt: None,
        }
    }

    fn node(source: &str, dest: &str) -> Action {
        Action::Node {
            source: source.to_string(),
            dest: dest.to_string(),
            meta: meta(Kind::File, 1),
        }
    }

    fn removal(dest: &str) -> Action {
        Action::RemoveSource {
            source: format!("src/{dest}"),
            dest: dest.to_string(),
            meta: meta(Kind::File, 1),
        }
    }

    /// Repeats go, the first of each path and kind stays, in plan order;
    /// a directory made with default attributes takes the first later
    /// source directory's.
    #[test]
    fn the_first_action_per_path_and_kind_stays() {
        let (first, second) = (meta(Kind::Dir, 10), meta(Kind::Dir, 20));
        let mut actions = vec![
            dir("d", None),
            node("one/p", "d/p"),
            removal("d/p"),
            dir("d/", Some(first)),
            node("two/p", "d/p"),
            dir("d", Some(second)),
            node("one/q", "d/q"),
            removal("d/p"),
        ];
        one_per_path(&mut actions);
        let shown: Vec<String> = actions
            .iter()
            .map(|action| match action {
                Action::Dir { dest, meta, .. } => format!("dir {dest} {:?}", meta.map(|m| m.mtime)),
                Action::Node { source, dest, .. } => format!("node {source} {dest}"),
                Action::RemoveSource { dest, .. } => format!("remove {dest}"),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                format!("dir d {:?}", Some(first.mtime)),
                "node one/p d/p".to_string(),
                "remove d/p".to_string(),
                "node one/q d/q".to_string(),
            ]
        );
        let mut unique = vec![dir("a", None), node("s/b", "b")];
        one_per_path(&mut unique);
        assert_eq!(unique.len(), 2);
    }
}
