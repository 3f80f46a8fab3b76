//! `--link-dest`, `--copy-dest` and `--compare-dest` (rsync's basis
//! directories): where on the destination side a file the destination
//! lacks may be already, and what that spares. For each such file the
//! DIRs are tried in order at the file's path under them, as rsync's
//! generator tries them (`try_dests_reg`, `try_dests_non`): the first whose
//! entry passes the quick check with unchanged attributes is taken; else
//! the first that passes the quick check; else the first that has a
//! regular file at all, which then is only the basis of the delta.
//!
//! The DIRs are read, never written: a hard link adds a name to one of
//! their files, a copy or a delta reads it.

use std::collections::HashMap;

use super::select::Quick;
use super::staging::Places;
use super::transfer::{self, FileJob, Transferred};
use super::Options;
use crate::endpoint::{hashes, join, Endpoint, Kind, Meta};
use crate::error::Result;
use crate::report::{Outcome, Reporter};

/// rsync's limit on how many DIRs one run takes (`MAX_BASIS_DIRS`).
pub(crate) const MOST_DIRS: usize = 20;

/// Which of the three options the DIRs came with: they do not mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AltKind {
    /// `--compare-dest`: a file a DIR has as the source has it is left out.
    Compare,
    /// `--copy-dest`: it is copied from there, inside the destination side.
    Copy,
    /// `--link-dest`: it is hard-linked from there (copied where the
    /// destination cannot link).
    Link,
}

impl AltKind {
    /// The option as given on the command line.
    pub(crate) fn option(self) -> &'static str {
        match self {
            AltKind::Compare => "--compare-dest",
            AltKind::Copy => "--copy-dest",
            AltKind::Link => "--link-dest",
        }
    }
}

/// The DIRs of a run, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AltDests {
    pub kind: AltKind,
    /// As given: a relative one is taken from the destination directory.
    pub dirs: Vec<String>,
}

impl AltDests {
    /// Each DIR as a path of the destination side, a relative one taken
    /// from `dest_dir` (the directory the destination's names are under,
    /// as rsync's receiver takes it from the directory it changed into),
    /// its `..` resolved by name: the destination directory may not exist
    /// yet when the run starts.
    pub(crate) fn roots(&self, dest_dir: &str) -> Vec<String> {
        self.dirs
            .iter()
            .map(|dir| match dir.starts_with('/') {
                true => normalize(dir),
                false => normalize(&join(dest_dir, dir)),
            })
            .collect()
    }
}

/// The DIRs of a run as paths of the destination side, for the
/// destination directory `base` the run's names are under.
#[derive(Debug, Clone)]
pub(crate) struct AltRoots {
    pub kind: AltKind,
    base: String,
    /// The DIRs that exist, in order.
    roots: Vec<String>,
    /// The first one's metadata.
    first: Option<Meta>,
}

impl AltRoots {
    /// Resolves the DIRs against `base`; one that is not a directory is
    /// warned about and left out, as rsync warns ("--link-dest arg does
    /// not exist") and finds nothing there.
    pub(crate) async fn resolve<D: Endpoint>(
        dst: &D,
        alt: &AltDests,
        base: &str,
        reporter: &dyn Reporter,
    ) -> Result<AltRoots> {
        let (mut roots, mut first) = (Vec::new(), None);
        for root in alt.roots(base) {
            let why = match dst.stat(&root).await {
                Ok(Some(meta)) if meta.kind == Kind::Dir => {
                    roots.push(root);
                    first = first.or(Some(meta));
                    continue;
                }
                Ok(Some(_)) => "is not a dir",
                Ok(None) => "does not exist",
                Err(e) if e.is_fatal() => return Err(e),
                Err(_) => "cannot be read",
            };
            let option = alt.kind.option();
            let shown = crate::report::printable(&root);
            reporter.warning(&format!("{option} arg {why}: {}{shown}", dst.label()));
        }
        Ok(AltRoots {
            kind: alt.kind,
            base: base.to_string(),
            roots,
            first,
        })
    }

    /// Whether these are the DIRs for names under `base`.
    pub(crate) fn base_is(&self, base: &str) -> bool {
        self.base == base
    }

    /// The first DIR's metadata when `dest` is the destination directory
    /// itself, which the DIRs stand beside.
    pub(crate) fn top_dir(&self, dest: &str) -> Option<Meta> {
        let top = dest.trim_end_matches('/') == self.base.trim_end_matches('/');
        self.first.filter(|_| top)
    }

    /// Where each DIR holds the destination path `path` (a directory of
    /// the walk or a file); None for a path outside the base.
    pub(crate) fn paths_for(&self, path: &str) -> Option<Vec<String>> {
        if self.roots.is_empty() {
            return None;
        }
        let base = self.base.trim_end_matches('/');
        let rel = if path.trim_end_matches('/') == base {
            ""
        } else if base == "." && !path.starts_with('/') {
            path.strip_prefix("./").unwrap_or(path)
        } else {
            path.strip_prefix(base)?.strip_prefix('/')?
        };
        let under = |root: &String| match rel {
            "" => root.clone(),
            rel => join(root, rel),
        };
        Some(self.roots.iter().map(under).collect())
    }
}

/// The DIRs' listings of one directory of the walk.
#[derive(Debug)]
pub(crate) struct AltListing {
    /// Each DIR's directory, in order.
    dirs: Vec<String>,
    /// What each holds: entry names to their metadata (none where the DIR
    /// lacks the directory).
    listed: Vec<HashMap<String, Meta>>,
}

impl AltListing {
    /// What each DIR holds under `name`, with its path.
    pub(crate) fn entry(&self, name: &str) -> Vec<(String, Option<Meta>)> {
        let at = |(dir, found): (&String, &HashMap<String, Meta>)| {
            (join(dir, name), found.get(name).copied())
        };
        self.dirs.iter().zip(&self.listed).map(at).collect()
    }

    /// The first DIR's directory named `name`.
    pub(crate) fn dir(&self, name: &str) -> Option<Meta> {
        let is_dir = |m: &&Meta| m.kind == Kind::Dir;
        self.listed
            .iter()
            .find_map(|found| found.get(name).filter(is_dir).copied())
    }
}

/// Lists each DIR's directory (`dirs`, from [`AltRoots::paths_for`]) for
/// the walk; nothing where the DIR lacks the directory or it cannot be
/// read (the files are then sent as without it).
pub(crate) async fn list_dirs<D: Endpoint>(dst: &D, dirs: Vec<String>) -> Result<AltListing> {
    let listed = futures::future::join_all(dirs.iter().map(|dir| dst.list(dir))).await;
    let mut maps = Vec::with_capacity(listed.len());
    for listing in listed {
        maps.push(match listing {
            Ok(listing) => listing
                .entries
                .into_iter()
                .map(|e| (e.name, e.meta))
                .collect(),
            Err(e) if e.is_fatal() => return Err(e),
            Err(_) => HashMap::new(),
        });
    }
    Ok(AltListing { dirs, listed: maps })
}

/// [`list_dirs`] for each of the destination directories `dirs` at once,
/// ahead of the walk (none without DIRs).
pub(crate) async fn list_ahead<D: Endpoint>(
    dst: &D,
    alt: Option<&AltRoots>,
    dirs: &[String],
) -> Vec<(String, Result<AltListing>)> {
    let Some(alt) = alt else {
        return Vec::new();
    };
    let lists = dirs.iter().filter_map(|dir| {
        let paths = alt.paths_for(dir)?;
        Some(async move { (dir.clone(), list_dirs(dst, paths).await) })
    });
    futures::future::join_all(lists).await
}

/// What each DIR has at `path`, an lstat each (where the walk has no
/// listing of the DIRs: a file named alone, a `--files-from` path).
pub(crate) async fn look_up<D: Endpoint>(
    dst: &D,
    paths: Vec<String>,
) -> Result<Vec<(String, Option<Meta>)>> {
    let found = futures::future::join_all(paths.iter().map(|p| dst.lstat(p))).await;
    let mut out = Vec::with_capacity(paths.len());
    for (path, meta) in paths.into_iter().zip(found) {
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) if e.is_fatal() => return Err(e),
            Err(_) => None,
        };
        out.push((path, meta));
    }
    Ok(out)
}

/// A path with its `.` and empty components dropped and each `..` taking
/// the component before it away (kept where there is none, in a relative
/// path).
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        match part {
            ".." if kept.last().is_some_and(|last| *last != "..") => {
                kept.pop();
            }
            ".." if absolute => {}
            part => kept.push(part),
        }
    }
    let joined = kept.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// How a DIR's file serves the destination's new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Hard-linked to it (or copied, where linking fails).
    Link,
    /// Copied from it inside the destination side: no data crosses.
    Copy,
    /// The old file of the delta: only what differs crosses.
    Delta,
}

/// A DIR's file the new destination file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Basis {
    /// Its path on the destination side.
    pub path: String,
    pub meta: Meta,
    pub how: Use,
}

/// A DIR's symlink a new destination symlink comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkBasis {
    /// Its path on the destination side.
    pub path: String,
    /// Where it points (the source's link points there too).
    pub target: String,
    /// [`Use::Link`]: hard-linked; [`Use::Copy`]: made anew.
    pub how: Use,
}

/// What the DIRs hold for one source entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FromDirs {
    /// A DIR has it as the source has it, attributes and all, and the
    /// option leaves it out (`--compare-dest`).
    Current,
    /// A DIR's file to make it from.
    Basis(Basis),
}

/// How closely a DIR's entry matches (rsync's `match_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// An entry of the same kind.
    Kind = 1,
    /// Which also passes the quick check.
    Content = 2,
    /// Whose attributes are the ones the run would give it too.
    Everything = 3,
}

/// The DIRs' best entry for the source file `src_path` (`meta`):
/// `candidates` are what each DIR has at its path, in order (None where
/// it has nothing). With `-c` the contents are hashed on both sides.
pub(crate) async fn choose_file<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    opts: &Options,
    kind: AltKind,
    src_path: &str,
    meta: &Meta,
    candidates: &[(String, Option<Meta>)],
) -> Result<Option<FromDirs>> {
    let mut best: Option<(Level, &str, Meta)> = None;
    for (path, found) in candidates {
        let Some(there) = found.filter(|m| m.kind == Kind::File) else {
            continue;
        };
        let level = match opts.select.quick_check(meta, &there, opts.checksum) {
            Quick::Differs => Level::Kind,
            Quick::Current => Level::Content,
            Quick::CompareContents if hashes::same_contents(src, src_path, dst, path).await? => {
                Level::Content
            }
            Quick::CompareContents => Level::Kind,
        };
        let level = match level == Level::Content && attrs_unchanged(meta, &there, opts) {
            true => Level::Everything,
            false => level,
        };
        if best.is_none_or(|(b, _, _)| level > b) {
            best = Some((level, path, there));
        }
        if level == Level::Everything {
            break;
        }
    }
    let Some((level, path, there)) = best else {
        return Ok(None);
    };
    let how = match (level, kind) {
        (Level::Everything, AltKind::Compare) => return Ok(Some(FromDirs::Current)),
        (Level::Everything, AltKind::Link) => Use::Link,
        (Level::Everything | Level::Content, _) => Use::Copy,
        (Level::Kind, _) => Use::Delta,
    };
    Ok(Some(FromDirs::Basis(Basis {
        path: path.to_string(),
        meta: there,
        how,
    })))
}

/// rsync's `unchanged_attrs` for a file: the time with `-t`, the
/// permissions with `-p` (their executability with `-E`), the owner and
/// group with `-o`/`-g` where this side may give them.
fn attrs_unchanged(src: &Meta, there: &Meta, opts: &Options) -> bool {
    let time = !opts.times || opts.select.window.same(&src.mtime, &there.mtime);
    let perms = match (opts.perms, opts.executability) {
        (true, _) => src.mode & 0o7777 == there.mode & 0o7777,
        (false, true) => (src.mode & 0o111 != 0) == (there.mode & 0o111 != 0),
        (false, false) => true,
    };
    // rsync's ownership_differs: only what this side may give counts.
    let owners = opts.owners.change(src.owner, there.owner).is_empty();
    time && perms && owners
}

/// The DIRs' best entry for a source symlink pointing at `target`: one
/// pointing there too, with the same time where the run keeps link times
/// (`keeps_time`). rsync links such a symlink too with `--link-dest`,
/// leaves it out with `--compare-dest`, makes it anew with `--copy-dest`.
pub(crate) async fn choose_symlink<D: Endpoint>(
    dst: &D,
    opts: &Options,
    target: &str,
    meta: &Meta,
    keeps_time: bool,
    candidates: &[(String, Option<Meta>)],
) -> Result<Option<String>> {
    for (path, found) in candidates {
        let Some(there) = found.filter(|m| m.kind == Kind::Symlink) else {
            continue;
        };
        let time = !keeps_time || opts.select.window.same(&meta.mtime, &there.mtime);
        if time && dst.read_link(path).await.ok().as_deref() == Some(target) {
            return Ok(Some(path.clone()));
        }
    }
    Ok(None)
}

/// Makes the destination's new file from a DIR's without its data
/// crossing: a hard link ([`Use::Link`]), or a copy inside the destination
/// side ([`Use::Copy`], and a link the destination refuses, as rsync copies
/// when linking fails), which gets the attributes the run gives files and
/// takes its place as a transferred file does.
pub(super) async fn make_from<D: Endpoint>(
    dst: &D,
    job: &FileJob,
    basis: &Basis,
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
) -> Result<Transferred> {
    let from_basis = |outcome, delayed| Transferred {
        outcome,
        sent: 0,
        reused: 0,
        delayed,
        verified: None,
    };
    let dest = &job.paths.dest;
    if basis.how == Use::Link && linked(dst, &basis.path, dest, reporter).await? {
        // An earlier run's partial of it is of no use any more.
        if job.partial().is_some() {
            let _ = dst.remove_file(&job.paths.partial()).await;
        }
        if job.sidecar {
            let _ = dst.remove_file(&job.paths.meta()).await;
        }
        return Ok(from_basis(Outcome::Linked, false));
    }
    let attrs = transfer::attrs_for(dst, job, opts).await?;
    places.prepare(dst, job).await?;
    let partial = &job.paths.partial();
    super::copy::duplicate(dst, &basis.path, partial, basis.meta.size).await?;
    transfer::apply_attrs(dst, partial, attrs).await?;
    let delayed = places.delays();
    if !delayed {
        transfer::install(dst, job, opts, places, job.sidecar).await?;
    }
    Ok(from_basis(Outcome::Copied, delayed))
}

/// Hard-links `dest` to the DIR's entry `from`; false (said under `-v`)
/// when the destination cannot: a server without `hardlink@openssh.com`,
/// another file system, a file system without hard links. The caller then
/// copies, as rsync does when linking fails.
pub(super) async fn linked<D: Endpoint>(
    dst: &D,
    from: &str,
    dest: &str,
    reporter: &dyn Reporter,
) -> Result<bool> {
    let why = match dst.features().hard_links {
        false => "this side cannot make hard links".to_string(),
        true => match dst.hard_link(from, dest).await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => e.to_string(),
        },
    };
    reporter.note(&format!(
        "{dest}: not hard-linked to {from} ({why}); copied there instead"
    ));
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_dir_is_taken_from_the_destination_by_name() {
        let link = |dirs: &[&str]| AltDests {
            kind: AltKind::Link,
            dirs: dirs.iter().map(|d| d.to_string()).collect(),
        };
        assert_eq!(
            link(&["../snap1", "/abs/./x/"]).roots("/b/snap2"),
            ["/b/snap1", "/abs/x"]
        );
        assert_eq!(link(&["../snap1"]).roots("snap2"), ["snap1"]);
        assert_eq!(link(&["../snap1"]).roots("."), ["../snap1"]);
        assert_eq!(link(&["../../x"]).roots("a"), ["../x"]);
        assert_eq!(link(&["old"]).roots("/"), ["/old"]);
        assert_eq!(link(&[".."]).roots("/"), ["/"]);
        assert_eq!(link(&[".."]).roots("a"), ["."]);
    }

    fn file(mode: u32, secs: i64) -> Meta {
        Meta {
            kind: Kind::File,
            size: 3,
            mtime: crate::endpoint::Mtime::precise(secs, 0),
            mode,
            owner: None,
            inode: None,
        }
    }

    #[test]
    fn attributes_count_only_where_the_run_keeps_them() {
        let opts = Options::default();
        assert!(attrs_unchanged(&file(0o644, 1), &file(0o600, 2), &opts));
        let kept = Options {
            perms: true,
            times: true,
            ..Options::default()
        };
        assert!(!attrs_unchanged(&file(0o644, 1), &file(0o600, 1), &kept));
        assert!(!attrs_unchanged(&file(0o644, 1), &file(0o644, 2), &kept));
        assert!(attrs_unchanged(&file(0o644, 1), &file(0o644, 1), &kept));
        let exec = Options {
            executability: true,
            ..Options::default()
        };
        assert!(!attrs_unchanged(&file(0o755, 1), &file(0o644, 1), &exec));
        assert!(attrs_unchanged(&file(0o755, 1), &file(0o700, 1), &exec));
    }
}
