//! Walking the source and destination trees side by side and deciding, per
//! entry, what has to happen (rclone's walk / decide split). No data moves
//! here; the plan is a list of actions the executor carries out in order.
//!
//! The filter rules (`crate::filter`) are applied here: an excluded source
//! entry is not planned (an excluded directory is not even listed), an
//! excluded destination entry is not marked for `--delete`, and each
//! directory's per-directory filter files are read as the walk enters it.
//! `--files-from` lists are planned here too ([`Planner::plan`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::stream::{FuturesUnordered, StreamExt};

use super::basis::{self, AltKind, AltListing, AltRoots, FromDirs, LinkBasis, Use};
use super::bounds::Bounds;
use super::delete::Extraneous;
use super::hard_links::{Groups, HardLink};
use super::links::{self, Resolved};
use super::partial::{is_working_file, meta_name, partial_name, Paths};
use super::select::{Quick, Skip};
use super::tidy::{self, Claims, Prunable};
use super::transfer::FileJob;
use super::xattrs::Kept;
use super::{unchanged, Options, SourceCounts};
use crate::endpoint::{
    base_name, hashes, join, Endpoint, Entry, FileHandle, Kind, Listing, Meta, Mtime, OwnerChange,
};
use crate::error::{Error, FileError, Result};
use crate::filter::{Entered, FileSet, FilesFrom, Listed, Need, Scope, Side};
use crate::report::{Mention, Reporter};

#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Make sure a directory exists; its attributes are set after its contents.
    Dir {
        dest: String,
        /// The source directory's metadata; None for a destination ferry
        /// creates on its own, which keeps default attributes.
        meta: Option<Meta>,
        exists: bool,
        /// Something else has the name (a file, a symlink), which goes
        /// first, as rsync replaces it (the link is removed, never followed).
        replaces: bool,
        /// A missing directory that a `--link-dest` (`--copy-dest`,
        /// `--compare-dest`) DIR has: that one's metadata, which rsync
        /// itemizes it against (`cd          ` rather than a new one).
        alt: Option<Box<Meta>>,
    },
    /// Copy a file (or resume its partial).
    File(FileJob),
    /// `-H`: make another name of a file sent (or found current) under
    /// its first name; done after every transfer.
    HardLink(Box<HardLink>),
    /// `-D`: make a fifo, socket or device node (or replace what is there).
    Node {
        source: String,
        dest: String,
        /// The source node's metadata.
        meta: Meta,
    },
    /// Create or replace a symlink.
    Symlink {
        source: String,
        dest: String,
        /// The source link's metadata.
        meta: Meta,
        /// The link gets the source link's time (`--times`).
        set_time: bool,
        /// A `--link-dest` (`--copy-dest`) DIR's link pointing where the
        /// source's does: hard-linked (made anew), reported as such.
        alt: Option<Box<LinkBasis>>,
    },
    /// `--remove-source-files`: the destination holds this entry already;
    /// the source's goes once that is checked.
    RemoveSource {
        source: String,
        dest: String,
        meta: Meta,
    },
    /// The file's contents are current but its permissions, time, owner or
    /// group are not (`--perms`, `-E`; `--times` after `--checksum` or
    /// `--size-only`; `-o`, `-g`).
    Attrs {
        dest: String,
        kind: Kind,
        mode: Option<u32>,
        mtime: Option<Mtime>,
        /// Set first, as rsync does.
        owner: OwnerChange,
        /// The mode to set again after the owner, where it has the setuid or
        /// setgid bit that chown clears (and `mode` sets none).
        set_id_mode: Option<u32>,
        /// The source entry's, for the lines that show it (`%l`, `%B`).
        source_meta: Meta,
    },
}

/// The directories a `--files-from` plan has walked or given up on, by
/// path from the transfer root.
#[derive(Debug, Default)]
struct Walked {
    /// Walked whole: everything below is planned.
    trees: HashSet<String>,
    /// Walked one level: the entries right inside are planned.
    one_level: HashSet<String>,
    /// Failed: nothing below is tried.
    blocked: HashSet<String>,
}

impl Walked {
    /// Whether a walk (or a failure) already took care of `rel`.
    fn covers(&self, rel: &str) -> bool {
        rel_ancestors(rel).any(|a| self.trees.contains(a) || self.blocked.contains(a))
    }
}

/// A device node listed where device numbers are not carried (SFTP v3):
/// it cannot be found equal to the source's, so it is made again.
fn unknown_device(meta: &Meta) -> bool {
    matches!(meta.kind, Kind::Node(node) if node.kind.is_device() && node.rdev == 0)
}

/// What the destination already holds under one name.
#[derive(Debug, Clone)]
struct There {
    existing: Option<Meta>,
    partial: Option<Meta>,
    sidecar: Option<Meta>,
    /// What each `--link-dest` (`--copy-dest`, `--compare-dest`) DIR holds
    /// at its path, where the walk listed them; None: not looked at yet.
    alt: Option<Vec<(String, Option<Meta>)>>,
}

/// Where a lone file lands when the destination names no directory: its
/// parent, and what is already there.
struct AsFile {
    parent: Result<Option<Meta>>,
    there: Result<There>,
}

/// A top-level source argument.
#[derive(Debug, Clone)]
pub(crate) struct SourceArg {
    pub path: String,
    /// rsync's trailing slash: copy the directory's contents, not the directory.
    pub contents_only: bool,
}

impl SourceArg {
    pub(crate) fn new(path: &str) -> SourceArg {
        SourceArg {
            contents_only: path.ends_with('/') && path.len() > 1,
            path: path.to_string(),
        }
    }
}

/// Where a directory of the walk stands: its path from the transfer root
/// (what filter patterns are matched against) and the rules in force.
#[derive(Debug, Clone)]
struct Here {
    rel: String,
    scope: Scope,
    /// The rules `--delete` goes by, where the destination's per-directory
    /// filter files make them differ from the source's (None: the same).
    protect: Option<Scope>,
    /// The file systems `-x` keeps to, once the walk's top has been seen.
    bounds: Option<Bounds>,
}

impl Here {
    fn new(rel: &str, scope: &Scope) -> Here {
        Here {
            rel: rel.to_string(),
            scope: scope.clone(),
            protect: None,
            bounds: None,
        }
    }

    /// The rules on the receiving side (`--delete`).
    fn receiving(&self) -> &Scope {
        self.protect.as_ref().unwrap_or(&self.scope)
    }

    /// Whether the rules hide an entry of this directory from the walk.
    fn sender_excludes(&self, entry: &Entry) -> bool {
        if self.scope.is_empty() {
            return false;
        }
        let path = join(&self.rel, &entry.name);
        self.scope
            .excluded(&path, entry.meta.kind == Kind::Dir, Side::Sender)
    }
}

/// How far a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The whole tree (`-r`).
    Tree,
    /// The directory's entries, its subdirectories made but not entered (a
    /// `--files-from` entry with a trailing slash).
    Contents,
}

/// Per-directory filter files larger than this are refused: rules, not
/// data, and read whole into memory.
const MAX_RULES_FILE: u64 = 1 << 20;

/// Reads a per-directory filter file whole.
async fn read_rules<E: Endpoint>(src: &E, path: &str, size: u64) -> Result<Vec<u8>> {
    if size > MAX_RULES_FILE {
        let message = format!(
            "a per-directory filter file over {} KiB is not read; its directory is skipped",
            MAX_RULES_FILE >> 10
        );
        return Err(FileError::refused(src.label(), path, message).into());
    }
    let file = src.open_read(path).await?;
    let data = file.read_at(0, size as usize).await;
    let closed = file.close(false).await;
    let data = data?;
    closed?;
    Ok(data.to_vec())
}

/// `rel` under `root`: `root` itself for the empty path.
fn under(root: &str, rel: &str) -> String {
    match rel.is_empty() {
        true => root.to_string(),
        false => join(root, rel),
    }
}

/// The transfer root as the source names it, from a directory of the walk
/// (`src_dir`) and its path from the root (`rel`).
fn transfer_root<'p>(src_dir: &'p str, rel: &str) -> &'p str {
    if rel.is_empty() {
        return src_dir;
    }
    match src_dir.strip_suffix(rel) {
        Some(root) => match root.trim_end_matches('/') {
            "" if root.starts_with('/') => "/",
            "" => ".",
            root => root,
        },
        None => src_dir,
    }
}

/// A source path under `-R`: the directory its kept path starts from and
/// that path (rsync: what follows `/./`, else the whole path, a leading
/// `/` dropped).
fn relative_parts(path: &str) -> (String, &str) {
    if let Some(at) = path.find("/./") {
        let base = match &path[..at] {
            "" => "/",
            base => base,
        };
        return (base.to_string(), path[at + 3..].trim_start_matches('/'));
    }
    match path.strip_prefix('/') {
        Some(rest) => ("/".to_string(), rest.trim_start_matches('/')),
        None => (".".to_string(), path.strip_prefix("./").unwrap_or(path)),
    }
}

/// The directory part of a path from the transfer root ("" at the top).
fn rel_parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// The directories above a path from the transfer root, outermost first.
fn rel_ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

/// What a path is to a `--files-from` list: listed (with a trailing slash
/// or not), a directory above listed paths, or both.
#[derive(Debug, Clone, Copy)]
struct Role {
    listed: Option<bool>,
    implied: bool,
}

/// What both sides hold at one path of a `--files-from` list.
struct Found {
    src: Result<Option<Meta>>,
    there: Result<There>,
}

pub(crate) struct Planner<'a, S, D> {
    pub src: &'a S,
    pub dst: &'a D,
    pub opts: &'a Options,
    pub reporter: &'a dyn Reporter,
    pub actions: Vec<Action>,
    /// Per-entry errors found while planning; the rest of the plan goes on.
    pub errors: Vec<FileError>,
    /// Files found already up to date.
    pub up_to_date: u64,
    /// Source entries the filters let through, for `--stats`.
    pub seen: SourceCounts,
    /// Destination entries the source does not have (with `--delete`),
    /// those the filter protects left out.
    pub extraneous: Vec<Extraneous>,
    /// The filter rules at the transfer root.
    root: Scope,
    /// Where the sources' entries land, kept when something needs all of
    /// them at the end (`-m`; `--delete` with several sources).
    claims: Option<Claims>,
    /// Listings taken ahead of the walk, by path, until it gets there.
    listed_src: HashMap<String, Result<Listing>>,
    listed_dst: HashMap<String, Result<Listing>>,
    /// The directory the source being planned is named from (rsync's
    /// transfer root), for rsync's names in notes.
    source_root: String,
    /// `-H`: the first destination name of each multiply linked source file.
    hard_links: Groups,
    /// `--link-dest`, `--copy-dest`, `--compare-dest`: the DIRs, once the
    /// destination directory is known.
    alt: Option<AltRoots>,
    /// The DIRs' listings for destination directories the walk has not
    /// reached yet, taken ahead with the source's.
    listed_alt: HashMap<String, Result<AltListing>>,
    /// `-X`, `-A`: the entries the destination keeps, whose attributes
    /// are brought over once they are in place.
    pub kept: Vec<Kept>,
    /// Told when enough new small files are planned.
    pub small_files: Option<SmallFiles<'a>>,
}

/// Counts the new small files planned, and says when there are enough of
/// them for the remote side's helper to pay for itself: its start (a
/// session, a process) then overlaps the rest of the plan.
pub(crate) struct SmallFiles<'a> {
    /// The largest size counted.
    pub largest: u64,
    pub enough: usize,
    pub tell: &'a tokio::sync::Notify,
    pub seen: usize,
}

impl SmallFiles<'_> {
    /// Counts `action` if it is one carry_out counts ([`super::is_small_file`]).
    fn planned(&mut self, action: &Action) {
        if super::is_small_file(action, self.largest) {
            self.seen += 1;
            if self.seen == self.enough {
                self.tell.notify_one();
            }
        }
    }
}

/// Subdirectories listed at once, ahead of the walk: enough to hide the
/// round trips, few enough that the listings held stay small.
pub(super) const LIST_AHEAD: usize = 64;

async fn list_all<'a, E: Endpoint>(
    endpoint: &E,
    dirs: impl Iterator<Item = &'a str>,
) -> Vec<(String, Result<Listing>)> {
    dirs.map(|dir| list_one(endpoint, dir))
        .collect::<FuturesUnordered<_>>()
        .collect()
        .await
}

async fn list_one<E: Endpoint>(endpoint: &E, dir: &str) -> (String, Result<Listing>) {
    (dir.to_string(), endpoint.list(dir).await)
}

impl<'a, S: Endpoint, D: Endpoint> Planner<'a, S, D> {
    pub(crate) fn new(
        src: &'a S,
        dst: &'a D,
        opts: &'a Options,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Planner {
            src,
            dst,
            opts,
            reporter,
            actions: Vec::new(),
            errors: Vec::new(),
            up_to_date: 0,
            seen: SourceCounts::default(),
            extraneous: Vec::new(),
            root: Scope::root(&opts.filter),
            claims: None,
            listed_src: HashMap::new(),
            listed_dst: HashMap::new(),
            source_root: String::new(),
            hard_links: Groups::default(),
            alt: None,
            listed_alt: HashMap::new(),
            kept: Vec::new(),
            small_files: None,
        }
    }

    /// `-X`, `-A`: the source's `src` is kept at `dest` (made, changed or
    /// found current).
    fn keep(&mut self, src: &str, dest: &str, kind: Kind) {
        if self.opts.xattrs.wanted() {
            self.kept.push(Kept {
                source: src.to_string(),
                dest: dest.to_string(),
                kind,
            });
        }
    }

    /// Plans the copy of `sources` into `dest` with rsync's rules for where
    /// each lands (with `--files-from`, the listed paths of the one source).
    pub(crate) async fn plan(&mut self, sources: &[SourceArg], dest: &str) -> Result<()> {
        let several = sources.len() > 1 || self.opts.relative;
        if self.opts.prune_empty_dirs || (self.opts.delete && several) {
            self.claims = Some(Claims::default());
        }
        self.plan_sources(sources, dest).await?;
        tidy::one_per_path(&mut self.actions);
        // A file an earlier attempt of this run moved is not extraneous.
        if self.opts.moved.is_some() {
            let opts = self.opts;
            self.extraneous
                .retain(|gone| !opts.was_moved(&gone.entry.name));
        }
        if let Some(claims) = &self.claims {
            tidy::spare_claimed(&mut self.extraneous, claims);
            if self.opts.prune_empty_dirs {
                let delete = self.opts.delete;
                tidy::prune_empty_dirs(&mut self.actions, &mut self.extraneous, claims, delete);
            }
        }
        Ok(())
    }

    async fn plan_sources(&mut self, sources: &[SourceArg], dest: &str) -> Result<()> {
        if let Some(list) = self.opts.files_from.clone() {
            let [source] = sources else {
                return Err(Error::Usage(
                    "--files-from takes one source directory (the listed paths are relative \
                     to it) and a destination"
                        .into(),
                ));
            };
            return self.plan_listed(&source.path, dest, &list).await;
        }
        if self.opts.relative {
            return self.plan_relative(sources, dest).await;
        }
        let mut found = Vec::new();
        for source in sources {
            match self.source_meta(source).await? {
                Some(meta) => found.push((source, meta)),
                // rsync's link_stat failure: the other sources still go,
                // and the run ends with 23.
                None => self.errors.push(FileError::io(
                    self.src.label(),
                    &source.path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
                )),
            }
        }
        let takes_dirs = self.opts.recursive || self.opts.dirs;
        let copies_dirs = takes_dirs && found.iter().any(|(_, m)| m.kind == Kind::Dir);
        let into_dir = sources.len() > 1 || copies_dirs || dest.ends_with('/');
        // As rsync: no destination is made for sources that all go nowhere
        // (directories without -r or -d, symlinks without -l).
        let sends_any = found.iter().any(|(_, m)| self.makes_entry(m));
        // --mkpath: the missing directories above the destination first.
        let made_parent = match self.opts.mkpath && sends_any {
            true => self.make_path(crate::endpoint::parent(dest)).await?,
            false => false,
        };
        let (dest_meta, mut as_file) = if into_dir || found.is_empty() {
            (self.dst.stat(dest).await?, None)
        } else {
            let (dest_meta, as_file) = tokio::join!(self.dst.stat(dest), self.look_as_file(dest));
            (dest_meta?, Some(as_file))
        };
        let dest_is_dir = match dest_meta {
            Some(m) => m.kind == Kind::Dir,
            None if into_dir && !sends_any => {
                for (source, meta) in &found {
                    let shown = match source.contents_only {
                        true => ".",
                        false => base_name(source.path.trim_end_matches('/')),
                    };
                    self.note_skipped(shown, meta);
                }
                return Ok(());
            }
            None if into_dir => {
                self.actions.push(Action::Dir {
                    dest: dest.to_string(),
                    meta: None,
                    exists: false,
                    replaces: false,
                    alt: None,
                });
                true
            }
            None => false,
        };
        if into_dir && !dest_is_dir {
            return Err(Error::FileSelection(format!(
                "{}{dest}: destination must be a directory when copying several files or a directory",
                self.dst.label()
            )));
        }
        if dest_is_dir {
            as_file = None;
        }
        let names_under = match dest_is_dir {
            true => dest,
            false => crate::endpoint::parent(dest),
        };
        self.resolve_alt(names_under).await?;
        if let Some(found) = as_file.as_mut().filter(|_| made_parent) {
            // Made by --mkpath before the file arrives.
            found.parent = Ok(Some(Meta {
                kind: Kind::Dir,
                size: 0,
                mtime: Mtime::default(),
                mode: 0o755,
                owner: None,
                inode: None,
            }));
        }
        for (source, meta) in found {
            self.source_root = match source.contents_only {
                true => source.path.trim_end_matches('/').to_string(),
                false => crate::endpoint::parent(&source.path).to_string(),
            };
            self.plan_source(source, meta, dest, dest_is_dir, dest_meta, as_file.take())
                .await?;
        }
        Ok(())
    }

    /// `--mkpath`: plans `dir` and the directories above it that the
    /// destination lacks, outermost first; whether `dir` was missing.
    async fn make_path(&mut self, dir: &str) -> Result<bool> {
        let mut missing = Vec::new();
        let mut at = dir;
        loop {
            match self.dst.stat(at).await? {
                Some(meta) if meta.kind == Kind::Dir => break,
                Some(_) => {
                    return Err(Error::FileSelection(format!(
                        "{}{at}: --mkpath cannot make a path through something that is not \
                         a directory",
                        self.dst.label()
                    )))
                }
                None => missing.push(at.to_string()),
            }
            let up = crate::endpoint::parent(at);
            if up == at {
                break;
            }
            at = up;
        }
        let made = !missing.is_empty();
        for dir in missing.into_iter().rev() {
            self.actions.push(Action::Dir {
                dest: dir,
                meta: None,
                exists: false,
                replaces: false,
                alt: None,
            });
        }
        Ok(made)
    }

    /// The symlinks among `entries` (of the source directory `src_dir`,
    /// `rel` from the transfer root) as the link options make them
    /// ([`links::resolve`]): followed ones become what they point to,
    /// unsafe ones under `--safe-links` go, dangling ones to follow are
    /// errors. Each link costs a request or two: they go at once.
    async fn resolve_links(
        &mut self,
        src_dir: &str,
        rel: &str,
        entries: Vec<Entry>,
    ) -> Result<Vec<Entry>> {
        let policy = self.opts.links_policy;
        if !policy.looks_at_links() || !entries.iter().any(|e| e.meta.kind == Kind::Symlink) {
            return Ok(entries);
        }
        let src = self.src;
        let verdicts = futures::future::join_all(entries.iter().map(|e| async move {
            match e.meta.kind {
                Kind::Symlink => {
                    let path = join(src_dir, &e.name);
                    Some(links::resolve(src, &policy, &path, &join(rel, &e.name)).await)
                }
                _ => None,
            }
        }))
        .await;
        let mut kept = Vec::with_capacity(entries.len());
        for (mut entry, verdict) in entries.into_iter().zip(verdicts) {
            match verdict {
                None | Some(Ok(Resolved::Link)) => {}
                Some(Ok(Resolved::Followed(meta))) => entry.meta = meta,
                Some(Ok(Resolved::Unsafe)) => {
                    self.reporter.note(&format!(
                        "ignoring unsafe symlink \"{}\"",
                        join(src_dir, &entry.name)
                    ));
                    continue;
                }
                Some(Err(Error::File(e))) => {
                    self.errors.push(e);
                    continue;
                }
                Some(Err(e)) => return Err(e),
            }
            kept.push(entry);
        }
        Ok(kept)
    }

    /// `-K`: whether the destination's symlink at `path` (`rel` from the
    /// transfer root) is kept and treated as the directory it points to.
    /// Only a link that leads to a directory inside the destination is: one
    /// leading out of it is refused (ferry never writes outside the
    /// destination; rsync would follow it), one to something else is
    /// replaced by the directory, as without `-K`.
    async fn kept_dirlink(&self, path: &str, rel: &str) -> Result<Option<Meta>> {
        let (target, meta) = tokio::join!(self.dst.read_link(path), self.dst.stat(path));
        let Some(dir) = meta?.filter(|m| m.kind == Kind::Dir) else {
            return Ok(None);
        };
        if links::unsafe_symlink(&target?, rel) {
            let message = "-K: this symlink leads out of the destination, where ferry never \
                           writes; skipped (copy into its target directly instead)";
            return Err(FileError::refused(self.dst.label(), path, message).into());
        }
        Ok(Some(dir))
    }

    /// Whether a source entry of this kind lands in the destination.
    fn makes_entry(&self, meta: &Meta) -> bool {
        match meta.kind {
            Kind::File => true,
            Kind::Dir => self.opts.recursive || self.opts.dirs,
            Kind::Symlink => self.opts.links,
            Kind::Node(node) if node.kind.is_device() => {
                self.opts.devices && self.dst.features().may_make_devices
            }
            Kind::Node(_) => self.opts.specials,
            Kind::Other => false,
        }
    }

    /// rsync's note for a source entry that goes nowhere, naming it as
    /// rsync's file list does (`shown`: from the transfer root).
    fn note_skipped(&self, shown: &str, meta: &Meta) {
        match meta.kind {
            Kind::Dir => self
                .reporter
                .mention(Mention::Directory, &format!("skipping directory {shown}")),
            Kind::Symlink | Kind::Node(_) | Kind::Other if !self.makes_entry(meta) => {
                self.reporter.mention(
                    Mention::NonRegular,
                    &format!("skipping non-regular file \"{shown}\""),
                )
            }
            _ => {}
        }
    }

    /// A source path as rsync's file list names it: from the transfer
    /// root (`.` for the root itself).
    fn shown<'p>(&self, src_path: &'p str) -> &'p str {
        let root = self.source_root.as_str();
        let rel = match root {
            "." if !src_path.starts_with("./") => Some(src_path),
            "/" => src_path.strip_prefix('/'),
            _ => src_path
                .strip_prefix(root)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(|rest| rest.trim_start_matches('/')),
        };
        match rel {
            Some("") => ".",
            Some(rel) => rel,
            None => src_path,
        }
    }

    /// The rules at the root of a walk whose transfer root the source calls
    /// `root`: where a per-directory file is named with a path (`-F`), the
    /// root's absolute path says which directories above it hold more.
    fn root_scope_at(&self, root: &str) -> Scope {
        match self.opts.filter.has_dir_merges() {
            true => self.root.at_root_path(&self.src.absolute(root)),
            false => self.root.clone(),
        }
    }

    /// What a lone file would find at `dest` should `dest` name no
    /// directory, asked beside `dest` itself: one round trip, not three.
    async fn look_as_file(&self, dest: &str) -> AsFile {
        let dir = crate::endpoint::parent(dest);
        let paths = Paths::new(dir, base_name(dest));
        let (parent, there) = tokio::join!(self.dst.stat(dir), self.look_at(&paths));
        AsFile { parent, there }
    }

    async fn look_at(&self, paths: &Paths) -> Result<There> {
        let (partial, sidecar) = (paths.partial(), paths.meta());
        let (existing, partial, sidecar) = tokio::join!(
            self.dst.lstat(&paths.dest),
            self.dst.lstat(&partial),
            self.dst.lstat(&sidecar)
        );
        Ok(There {
            existing: existing?,
            partial: partial?,
            sidecar: sidecar?,
            alt: None,
        })
    }

    async fn source_meta(&self, source: &SourceArg) -> Result<Option<Meta>> {
        let meta = if source.contents_only {
            self.src.stat(&source.path).await?
        } else {
            self.src.lstat(&source.path).await?
        };
        let policy = &self.opts.links_policy;
        let meta = match meta {
            Some(m) if m.kind == Kind::Symlink && policy.looks_at_links() => {
                let name = base_name(&source.path);
                match links::resolve(self.src, policy, &source.path, name).await? {
                    Resolved::Followed(followed) => Some(followed),
                    Resolved::Link => Some(m),
                    // Left out as rsync leaves it out ("skipping").
                    Resolved::Unsafe => Some(Meta {
                        kind: Kind::Other,
                        ..m
                    }),
                }
            }
            other => other,
        };
        Ok(meta.map(|m| self.as_sent(m)))
    }

    /// A source entry's metadata as the transfer treats it: its mode
    /// changed by `--chmod`, as rsync changes it where the file list is
    /// made.
    fn as_sent(&self, mut meta: Meta) -> Meta {
        if let Some(chmod) = &self.opts.chmod {
            if matches!(meta.kind, Kind::File | Kind::Dir) {
                let umask = crate::local_io::process_umask();
                meta.mode = chmod.apply(meta.mode, meta.kind == Kind::Dir, umask);
            }
        }
        meta
    }

    async fn plan_source(
        &mut self,
        source: &SourceArg,
        meta: Meta,
        dest: &str,
        dest_is_dir: bool,
        dest_meta: Option<Meta>,
        as_file: Option<AsFile>,
    ) -> Result<()> {
        let path = source.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        // A source named without its trailing slash is itself an entry of
        // the transfer, which the rules may exclude (its contents are not).
        let is_dir = meta.kind == Kind::Dir;
        let is_root = source.contents_only && is_dir;
        if !is_root && self.root.excluded(base_name(path), is_dir, Side::Sender) {
            return Ok(());
        }
        if meta.kind == Kind::Dir && (self.opts.recursive || self.opts.dirs) {
            let (target, exists) = if source.contents_only {
                (dest.to_string(), dest_meta.filter(|m| m.kind == Kind::Dir))
            } else {
                let target = join(dest, base_name(path));
                let found = match dest_meta {
                    Some(_) => self.dst.lstat(&target).await?,
                    None => None,
                };
                if self.left_out(&meta, found.as_ref(), path) {
                    return Ok(());
                }
                (target, found)
            };
            self.push_top_dir(path, &target, meta, exists);
            if !source.contents_only {
                self.top_dir_prunable(&target, base_name(path));
            }
            let exists = exists.map(|m| m.kind) == Some(Kind::Dir);
            let depth = match (self.opts.recursive, source.contents_only) {
                (true, _) => Depth::Tree,
                // -d: `dir/` copies its entries, subdirectories made empty.
                (false, true) => Depth::Contents,
                // -d: `dir` is made, not filled.
                (false, false) => return Ok(()),
            };
            let rel = match source.contents_only {
                true => "",
                false => base_name(path),
            };
            let root = match source.contents_only {
                true => path,
                false => crate::endpoint::parent(path),
            };
            let at = Here::new(rel, &self.root_scope_at(root));
            return self.walk(path, &target, exists, at, depth).await;
        }
        let (dir, name) = if dest_is_dir {
            (dest.to_string(), base_name(path).to_string())
        } else {
            (
                crate::endpoint::parent(dest).to_string(),
                base_name(dest).to_string(),
            )
        };
        let paths = Paths::new(&dir, &name);
        let (parent, there) = match as_file {
            Some(found) => (Some(found.parent), found.there),
            None if dest_is_dir => (None, self.look_at(&paths).await),
            None => (Some(self.dst.stat(&dir).await), self.look_at(&paths).await),
        };
        if let Some(parent) = parent {
            if parent?.map(|m| m.kind) != Some(Kind::Dir) {
                return Err(Error::FileSelection(format!(
                    "{}{dir}: no such directory to copy {name} into",
                    self.dst.label()
                )));
            }
        }
        self.plan_entry(path, &dir, &name, meta, there?).await
    }

    /// What `dst_dir` holds and the source directory (`entries`, as the
    /// filter lets the walk see it) does not, ferry's own working files
    /// aside, and the entries the filter protects on the receiving side.
    fn note_extraneous(
        &mut self,
        dst_dir: &str,
        entries: &[Entry],
        existing: &HashMap<String, Meta>,
        at: &Here,
    ) {
        let in_source: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut gone: Vec<Extraneous> = existing
            .iter()
            .filter(|(name, _)| !in_source.contains(name.as_str()) && !is_working_file(name))
            .map(|(name, meta)| (join(&at.rel, name), name, meta))
            .filter(|(path, _, meta)| {
                !at.receiving()
                    .excluded(path, meta.kind == Kind::Dir, Side::Receiver)
            })
            .map(|(path, name, meta)| Extraneous {
                entry: Entry {
                    name: join(dst_dir, name),
                    meta: *meta,
                },
                path,
                scope: at.receiving().clone(),
            })
            .collect();
        gone.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        self.extraneous.extend(gone);
    }

    /// Several `dir/` sources can land in one destination directory, which
    /// `plan` may already have queued for creation: one action per directory.
    /// `-m`: a named source directory is pruned too when nothing lands in
    /// it, as rsync leaves it out of its file list; it is never deleted
    /// (rsync deletes nothing in the directory above it).
    fn top_dir_prunable(&mut self, target: &str, rel: &str) {
        let scope = self.root.clone();
        if let Some(claims) = self.claims.as_mut().filter(|_| self.opts.prune_empty_dirs) {
            claims.dir(Prunable {
                dest: target.to_string(),
                rel: rel.to_string(),
                scope,
                there: None,
            });
        }
    }

    fn push_top_dir(&mut self, src: &str, dest: &str, meta: Meta, there: Option<Meta>) {
        if let Some(claims) = &mut self.claims {
            claims.claim(dest, true);
        }
        let alt = self.alt.as_ref().and_then(|alt| alt.top_dir(dest));
        for action in &mut self.actions {
            if let Action::Dir {
                dest: d,
                meta: m,
                alt: a,
                ..
            } = action
            {
                if d == dest {
                    *m = Some(meta);
                    *a = alt.map(Box::new);
                    self.seen.dirs += 1;
                    self.keep(src, dest, Kind::Dir);
                    return;
                }
            }
        }
        self.push_dir(src, dest, meta, there, alt);
    }

    /// A directory of the source, `src`, at `dest` where the destination
    /// has the entry `there`, if any (and a DIR of `--link-dest` and co.
    /// `alt`).
    fn push_dir(
        &mut self,
        src: &str,
        dest: &str,
        meta: Meta,
        there: Option<Meta>,
        alt: Option<Meta>,
    ) {
        self.keep(src, dest, Kind::Dir);
        if let Some(old) = there.filter(|m| m.kind == Kind::Dir) {
            unchanged::existing_dir(self.reporter, self.opts, dest, &meta, &old);
        }
        let there = there.map(|m| m.kind);
        self.seen.dirs += 1;
        self.actions.push(Action::Dir {
            dest: dest.to_string(),
            meta: Some(meta),
            exists: there == Some(Kind::Dir),
            replaces: there.is_some_and(|k| k != Kind::Dir),
            alt: alt.filter(|_| there != Some(Kind::Dir)).map(Box::new),
        });
    }

    /// The source entries the destination can name: one whose name holds
    /// bytes that are not UTF-8 fails alone when the destination takes
    /// strings only (a remote side without its helper, which is started
    /// now to find out).
    async fn carried_names(&mut self, src_dir: &str, entries: Vec<Entry>) -> Result<Vec<Entry>> {
        let raw = |e: &Entry| crate::paths::has_raw_bytes(&e.name);
        if !entries.iter().any(raw) || self.dst.features().raw_byte_names {
            return Ok(entries);
        }
        self.dst.start_helper().await?;
        if self.dst.features().raw_byte_names {
            return Ok(entries);
        }
        let (refused, kept): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(raw);
        let message = crate::endpoint::remote::NOT_UTF8;
        self.errors.extend(
            refused
                .iter()
                .map(|e| FileError::refused(self.src.label(), join(src_dir, &e.name), message)),
        );
        Ok(kept)
    }

    /// Depth-first walk of one source directory against its destination
    /// (only its immediate entries with `Depth::Contents`). `at` is where
    /// the directory is in the transfer, with the rules of its parent.
    async fn walk(
        &mut self,
        src_dir: &str,
        dst_dir: &str,
        dst_exists: bool,
        at: Here,
        depth: Depth,
    ) -> Result<()> {
        // The runtime has one thread, and a walk of local directories
        // never waits: without this, nothing else (the connection's
        // keepalives, a helper starting) would run until the plan is made.
        tokio::task::yield_now().await;
        let listed = match self.listed_src.remove(src_dir) {
            Some(listed) => listed,
            None => self.src.list(src_dir).await,
        };
        let entries = match listed {
            Ok(listing) => {
                self.errors
                    .extend(super::unnamed_errors(self.src, src_dir, &listing));
                self.reporter.listed(listing.entries.len() as u64);
                listing.entries
            }
            Err(Error::File(e)) => {
                self.errors.push(e);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let entries = self.resolve_links(src_dir, &at.rel, entries).await?;
        let Some(scope) = self.enter(src_dir, &at, &entries).await? else {
            return Ok(());
        };
        let parent = at;
        let mut at = Here {
            rel: parent.rel.clone(),
            scope,
            protect: None,
            bounds: parent.bounds,
        };
        let entries = self.carried_names(src_dir, entries).await?;
        let mut entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !is_working_file(&e.name) && !at.sender_excludes(e))
            .map(|Entry { name, meta }| Entry {
                name,
                meta: self.as_sent(meta),
            })
            .collect();
        let mounts = self
            .mount_points(src_dir, dst_dir, dst_exists, &mut at, &mut entries)
            .await?;
        let existing: HashMap<String, Meta> = if dst_exists {
            let listed = match self.listed_dst.remove(dst_dir) {
                Some(listed) => listed,
                None => self.dst.list(dst_dir).await,
            };
            let listing = listed?;
            if self.opts.delete {
                self.errors
                    .extend(super::unnamed_errors(self.dst, dst_dir, &listing));
            }
            listing
                .entries
                .into_iter()
                .map(|Entry { name, meta }| (name, meta))
                .collect()
        } else {
            HashMap::new()
        };
        if self.opts.delete && self.deletes_in(dst_dir, dst_exists, &at).await? {
            at.protect = self
                .rules_receiving(src_dir, dst_dir, &parent, &entries, &existing)
                .await?;
            self.note_extraneous(dst_dir, &entries, &existing, &at);
        }
        let alt = self.list_alt(dst_dir, &entries, &existing).await?;
        let is_dir_there = |name: &str| existing.get(name).map(|m| m.kind) == Some(Kind::Dir);
        for (i, entry) in entries.iter().enumerate() {
            let src_path = join(src_dir, &entry.name);
            if entry.meta.kind == Kind::Dir {
                let target = join(dst_dir, &entry.name);
                if self.left_out(&entry.meta, existing.get(&entry.name), &src_path) {
                    continue;
                }
                let mut there = existing.get(&entry.name).copied();
                if there.is_some_and(|m| m.kind == Kind::Symlink) && self.opts.keep_dirlinks {
                    let rel = join(&at.rel, &entry.name);
                    match self.kept_dirlink(&target, &rel).await {
                        Ok(Some(dir)) => there = Some(dir),
                        Ok(None) => {}
                        Err(Error::File(e)) => {
                            self.errors.push(e);
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                let exists = there.map(|m| m.kind) == Some(Kind::Dir);
                if let Some(claims) = &mut self.claims {
                    claims.dir(Prunable {
                        dest: target.clone(),
                        rel: join(&at.rel, &entry.name),
                        scope: at.scope.clone(),
                        there,
                    });
                }
                let alt_dir = alt.as_ref().and_then(|alt| alt.dir(&entry.name));
                if depth == Depth::Contents || mounts.contains(&entry.name) {
                    self.push_dir(&src_path, &target, entry.meta, there, alt_dir);
                    continue;
                }
                if !self.listed_src.contains_key(&src_path) {
                    let mut dirs = entries[i..]
                        .iter()
                        .filter(|e| e.meta.kind == Kind::Dir)
                        .map(|e| {
                            let there = is_dir_there(&e.name).then(|| join(dst_dir, &e.name));
                            (join(src_dir, &e.name), there)
                        });
                    let ahead: Vec<_> = dirs.by_ref().take(LIST_AHEAD).collect();
                    // The batch after this one lists while this one is
                    // walked: the walk never waits a whole batch's round
                    // trips and server work.
                    // (Not a mount point -x leaves unwalked: a listing
                    // started is one the walk takes.)
                    let next: Vec<_> = dirs
                        .filter(|(s, _)| !mounts.contains(base_name(s)))
                        .take(LIST_AHEAD)
                        .collect();
                    let next_src: Vec<&str> = next.iter().map(|(s, _)| s.as_str()).collect();
                    let next_dst: Vec<&str> =
                        next.iter().filter_map(|(_, d)| d.as_deref()).collect();
                    self.src.list_soon(&next_src);
                    self.dst.list_soon(&next_dst);
                    // The DIRs' directories where the destination has none.
                    let new_dirs: Vec<String> = entries[i..]
                        .iter()
                        .filter(|e| e.meta.kind == Kind::Dir && self.alt.is_some())
                        .take(LIST_AHEAD)
                        .filter(|e| !is_dir_there(&e.name))
                        .map(|e| join(dst_dir, &e.name))
                        .collect();
                    self.list_ahead(&ahead, &new_dirs).await;
                }
                self.push_dir(&src_path, &target, entry.meta, there, alt_dir);
                let inner = Here {
                    rel: join(&at.rel, &entry.name),
                    scope: at.scope.clone(),
                    protect: at.protect.clone(),
                    bounds: at.bounds,
                };
                Box::pin(self.walk(&src_path, &target, exists, inner, Depth::Tree)).await?;
                continue;
            }
            let there = There {
                existing: existing.get(&entry.name).copied(),
                partial: existing.get(&partial_name(&entry.name)).copied(),
                sidecar: existing.get(&meta_name(&entry.name)).copied(),
                alt: alt.as_ref().map(|alt| alt.entry(&entry.name)),
            };
            self.plan_entry(&src_path, dst_dir, &entry.name, entry.meta, there)
                .await?;
        }
        Ok(())
    }

    /// The rules in force inside a source directory: its parent's, plus
    /// what its per-directory filter files say (and the files those merge,
    /// and, for the first directory of a walk under `-F`, the files above
    /// it: [`Scope::enter_dir`] asks until it has them all). None when one
    /// of those could not be read: the directory is skipped then, with its
    /// error counted, as copying it without its rules could send what they
    /// hide.
    async fn enter(
        &mut self,
        src_dir: &str,
        at: &Here,
        entries: &[Entry],
    ) -> Result<Option<Scope>> {
        if at.scope.dir_merge_names().next().is_none() {
            return Ok(Some(at.scope.clone()));
        }
        let mut files = FileSet::new(self.src.label(), transfer_root(src_dir, &at.rel));
        loop {
            let needs = match at.scope.enter_dir(&at.rel, &files)? {
                Entered::Ready(scope) => return Ok(Some(scope)),
                Entered::Need(needs) => needs,
            };
            let fresh: Vec<Need> = needs.into_iter().filter(|n| !files.has(&n.path)).collect();
            if fresh.is_empty() {
                return Err(Error::Usage(format!(
                    "{}{src_dir}: the filter rules ask again for files already read",
                    self.src.label()
                )));
            }
            for need in fresh {
                match self.read_need(src_dir, entries, &files, &need).await {
                    Ok(data) => files.insert(need.path, data),
                    Err(Error::File(e)) => {
                        self.errors.push(e);
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// `-x`: the subdirectories among `entries` on another file system than
    /// the walk's top (learned here when `at` is the top); `-xx` takes them
    /// out of `entries`, as rsync leaves them out of its file list.
    async fn mount_points(
        &mut self,
        src_dir: &str,
        dst_dir: &str,
        dst_exists: bool,
        at: &mut Here,
        entries: &mut Vec<Entry>,
    ) -> Result<HashSet<String>> {
        if self.opts.one_file_system == 0 {
            return Ok(HashSet::new());
        }
        let bounds = match at.bounds {
            Some(bounds) => bounds,
            None => {
                // The destination's only matters to --delete (and a
                // server that cannot tell is refused only then).
                let dst_dir = (dst_exists && self.opts.delete).then_some(dst_dir);
                Bounds::at_top(self.src, src_dir, self.dst, dst_dir).await?
            }
        };
        at.bounds = Some(bounds);
        let (mounts, errors) = bounds.mount_points(self.src, src_dir, entries).await;
        for error in errors {
            match error {
                Error::File(error) => self.errors.push(error),
                fatal => return Err(fatal),
            }
        }
        if self.opts.one_file_system > 1 {
            entries.retain(|e| !mounts.contains(&e.name));
        }
        Ok(mounts)
    }

    /// Whether `--delete` looks into `dst_dir`: with `-x`, not when it is
    /// on another file system than the destination's top.
    async fn deletes_in(&mut self, dst_dir: &str, dst_exists: bool, at: &Here) -> Result<bool> {
        match at.bounds {
            Some(bounds) if dst_exists => match bounds.deletes_in(self.dst, dst_dir).await {
                Ok(inside) => Ok(inside),
                Err(Error::File(e)) => {
                    self.errors.push(e);
                    Ok(false)
                }
                Err(e) => Err(e),
            },
            _ => Ok(true),
        }
    }

    /// The rules `--delete` goes by inside a destination directory, as
    /// rsync's receiver reads them after the transfer (ferry deletes when
    /// rsync's `--delete-after` does): a per-directory filter file the
    /// source sends is the source's, one it does not send (missing there,
    /// or excluded) is the destination's own, if any. None when that comes
    /// to the source's rules.
    async fn rules_receiving(
        &mut self,
        src_dir: &str,
        dst_dir: &str,
        parent: &Here,
        sent: &[Entry],
        existing: &HashMap<String, Meta>,
    ) -> Result<Option<Scope>> {
        let outer = parent.receiving();
        let sends = |name: &str| {
            sent.iter()
                .any(|e| e.name == name && e.meta.kind == Kind::File)
        };
        // A merge file the source does not send makes the receiver's
        // rules its own: the destination's file, or none (where the source
        // has one that is excluded, or the destination's is no file).
        let differs = outer.dir_merge_names().any(|name| !sends(name));
        if parent.protect.is_none() && !differs {
            return Ok(None);
        }
        let mut files = FileSet::new(self.src.label(), transfer_root(src_dir, &parent.rel));
        loop {
            let needs = match outer.enter_dir(&parent.rel, &files)? {
                Entered::Ready(scope) => return Ok(Some(scope)),
                Entered::Need(needs) => needs,
            };
            let fresh: Vec<Need> = needs.into_iter().filter(|n| !files.has(&n.path)).collect();
            if fresh.is_empty() {
                return Ok(Some(outer.clone()));
            }
            for need in fresh {
                let read = match &need.in_dir {
                    Some(name) if !sends(name) => match existing.get(name.as_str()) {
                        Some(meta) if meta.kind == Kind::File => {
                            read_rules(self.dst, &join(dst_dir, name), meta.size)
                                .await
                                .map(Some)
                        }
                        _ => Ok(None),
                    },
                    _ => self.read_need(src_dir, sent, &files, &need).await,
                };
                match read {
                    Ok(data) => files.insert(need.path, data),
                    // Unreadable protection: counted as an error, and a
                    // run with errors deletes nothing (delete.rs).
                    Err(Error::File(e)) => {
                        self.errors.push(e);
                        return Ok(Some(outer.clone()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// One file the rules of a directory need: an entry of the directory
    /// (`entries`, already listed), or a path the source is asked for.
    /// None when there is no such file.
    async fn read_need(
        &self,
        src_dir: &str,
        entries: &[Entry],
        files: &FileSet,
        need: &Need,
    ) -> Result<Option<Vec<u8>>> {
        let (path, size) = match &need.in_dir {
            Some(name) => {
                let entry = entries.iter().find(|e| e.name == *name);
                (join(src_dir, name), entry.map(|e| e.meta))
            }
            None => {
                let path = files.source_path(&need.path);
                let meta = self.src.stat(&path).await?;
                (path, meta)
            }
        };
        match size.filter(|m| m.kind == Kind::File) {
            Some(meta) => read_rules(self.src, &path, meta.size).await.map(Some),
            None => Ok(None),
        }
    }

    /// `-R`: each source keeps its path under `dest` (from after a `/./`
    /// in it, else all of it), the directories above it made with the
    /// source's attributes (`--no-implied-dirs`: with default ones, and
    /// only when missing). That is a `--files-from` list per directory the
    /// paths start from.
    async fn plan_relative(&mut self, sources: &[SourceArg], dest: &str) -> Result<()> {
        let mut groups: Vec<(String, FilesFrom)> = Vec::new();
        for source in sources {
            let (base, rel) = relative_parts(&source.path);
            let listed = Listed {
                path: rel.trim_end_matches('/').to_string(),
                contents: source.contents_only,
                from: String::new(),
            };
            match groups.iter_mut().find(|(b, _)| *b == base) {
                Some((_, list)) => list.paths.push(listed),
                None => groups.push((base, FilesFrom::of(vec![listed]))),
            }
        }
        for (base, list) in groups {
            self.plan_listed(&base, dest, &list).await?;
        }
        Ok(())
    }

    /// `--files-from`: each listed path of the source directory `base`
    /// lands at the same path under `dest`, the directories above it made
    /// as needed (rsync's implied `--relative`). A listed directory is made;
    /// its entries come too when it is listed with a trailing slash, all of
    /// it with `-r`. The rules apply to the listed paths, not to the
    /// directories above them.
    async fn plan_listed(&mut self, base: &str, dest: &str, list: &FilesFrom) -> Result<()> {
        let base = match base.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        if self.src.stat(base).await?.map(|m| m.kind) != Some(Kind::Dir) {
            return Err(Error::FileSelection(format!(
                "{}{base}: --files-from needs a source directory (the listed paths are \
                 relative to it)",
                self.src.label()
            )));
        }
        let dest_meta = self.dst.stat(dest).await?;
        let dest_exists = match dest_meta {
            Some(m) if m.kind == Kind::Dir => true,
            Some(_) => {
                return Err(Error::FileSelection(format!(
                    "{}{dest}: destination must be a directory with --files-from",
                    self.dst.label()
                )))
            }
            None => {
                self.actions.push(Action::Dir {
                    dest: dest.to_string(),
                    meta: None,
                    exists: false,
                    replaces: false,
                    alt: None,
                });
                false
            }
        };
        self.resolve_alt(dest).await?;
        if let Some(dir) = &list.dot_dir {
            self.plan_listed_dot_dir(&under(base, dir), dest, dest_meta)
                .await?;
        }
        let mut listed: HashMap<&str, bool> = HashMap::new();
        for Listed { path, contents, .. } in &list.paths {
            *listed.entry(path.as_str()).or_default() |= *contents;
        }
        if let Some(&contents) = listed.get("") {
            if self.opts.recursive || contents {
                let depth = if self.opts.recursive {
                    Depth::Tree
                } else {
                    Depth::Contents
                };
                let at = Here::new("", &self.root_scope_at(base));
                let root = self.listed_source(base, "");
                return self.walk(&root, dest, dest_exists, at, depth).await;
            }
        }
        let wanted: BTreeSet<&str> = listed
            .keys()
            .filter(|p| !p.is_empty())
            .flat_map(|p| rel_ancestors(p).chain([*p]))
            .collect();
        let mut found = self.look_up_listed(base, dest, dest_exists, &wanted).await;
        // As in rsync, only a listed path that is sent brings the
        // directories above it.
        let implied: HashSet<&str> = listed
            .keys()
            .filter(|p| found.get(**p).is_some_and(|f| self.sends(p, f)))
            .flat_map(|p| rel_ancestors(p))
            .collect();
        let mut done = Walked::default();
        for rel in wanted {
            let Some(found) = found.remove(rel) else {
                continue;
            };
            let role = Role {
                listed: listed.get(rel).copied(),
                implied: implied.contains(rel),
            };
            self.plan_one_listed(base, dest, rel, role, found, &mut done, &list.name)
                .await?;
        }
        Ok(())
    }

    /// Looks up every path of a `--files-from` list, and the directories
    /// above them, on both sides: many at once, as each costs round trips.
    async fn look_up_listed(
        &self,
        base: &str,
        dest: &str,
        dest_exists: bool,
        wanted: &BTreeSet<&str>,
    ) -> HashMap<String, Found> {
        let jobs = self.opts.jobs.clamp(1, LIST_AHEAD);
        let mut pending = wanted.iter();
        let mut running = FuturesUnordered::new();
        let mut found = HashMap::new();
        loop {
            while running.len() < jobs {
                let Some(rel) = pending.next() else { break };
                running.push(self.look_up_one(base, dest, dest_exists, rel.to_string()));
            }
            let Some((rel, one)) = running.next().await else {
                return found;
            };
            found.insert(rel, one);
        }
    }

    /// What both sides hold at `rel`, a path of a `--files-from` list.
    async fn look_up_one(
        &self,
        base: &str,
        dest: &str,
        dest_exists: bool,
        rel: String,
    ) -> (String, Found) {
        let paths = Paths::new(&under(dest, rel_parent(&rel)), base_name(&rel));
        let there = async {
            match dest_exists {
                true => self.look_at(&paths).await,
                false => Ok(There {
                    existing: None,
                    partial: None,
                    sidecar: None,
                    alt: None,
                }),
            }
        };
        let path = self.listed_source(base, &rel);
        let (found, there) = tokio::join!(self.src.lstat(&path), there);
        let found = found.map(|meta| meta.map(|m| self.as_sent(m)));
        (rel, Found { src: found, there })
    }

    /// Whether a listed path exists in the source and the rules let it be
    /// sent.
    fn sends(&self, rel: &str, found: &Found) -> bool {
        match &found.src {
            Ok(Some(meta)) => !self
                .root
                .excluded(rel, meta.kind == Kind::Dir, Side::Sender),
            _ => false,
        }
    }

    /// One path of a `--files-from` list, or a directory above one, in
    /// path order (parents first).
    #[allow(clippy::too_many_arguments)]
    async fn plan_one_listed(
        &mut self,
        base: &str,
        dest: &str,
        rel: &str,
        role: Role,
        found: Found,
        done: &mut Walked,
        list: &str,
    ) -> Result<()> {
        if done.covers(rel) {
            return Ok(());
        }
        let meta = match found.src {
            Ok(Some(meta)) => meta,
            // A missing directory above a listed path: the listed path
            // says so itself.
            Ok(None) if role.listed.is_none() => return Ok(()),
            Ok(None) => {
                let why = match list {
                    "" => "no such file or directory".to_string(),
                    list => format!("no such file or directory (listed in --files-from {list})"),
                };
                self.errors.push(FileError::io(
                    self.src.label(),
                    self.listed_source(base, rel),
                    std::io::Error::new(std::io::ErrorKind::NotFound, why),
                ));
                return Ok(());
            }
            Err(e) => return self.skip_listed(e, rel, done),
        };
        let there = match found.there {
            Ok(there) => there,
            Err(e) => return self.skip_listed(e, rel, done),
        };
        let is_dir = meta.kind == Kind::Dir;
        let listed = role.listed.is_some() && !self.root.excluded(rel, is_dir, Side::Sender);
        if !listed && !role.implied {
            return Ok(());
        }
        if !is_dir {
            if listed && !done.one_level.contains(rel_parent(rel)) {
                let (dir, name) = (under(dest, rel_parent(rel)), base_name(rel));
                self.plan_entry(&self.listed_source(base, rel), &dir, name, meta, there)
                    .await?;
            }
            return Ok(());
        }
        // Made even when excluded, if it is a directory above listed paths.
        let target = under(dest, rel);
        if self.left_out(&meta, there.existing.as_ref(), &under(base, rel)) {
            done.blocked.insert(rel.to_string());
            return Ok(());
        }
        let found = there.existing;
        let exists = found.map(|m| m.kind) == Some(Kind::Dir);
        if !done.one_level.contains(rel_parent(rel)) {
            match listed || self.opts.implied_dirs {
                true => {
                    let src = self.listed_source(base, rel);
                    self.push_dir(&src, &target, meta, found, None)
                }
                // --no-implied-dirs: made only when missing, with default
                // attributes.
                false if found.is_none() => self.actions.push(Action::Dir {
                    dest: target.clone(),
                    meta: None,
                    exists: false,
                    replaces: false,
                    alt: None,
                }),
                false => {}
            }
        }
        let depth = match role.listed {
            _ if !listed => return Ok(()),
            _ if self.opts.recursive => Depth::Tree,
            Some(true) => Depth::Contents,
            _ => return Ok(()),
        };
        let at = Here::new(rel, &self.root_scope_at(base));
        self.walk(&self.listed_source(base, rel), &target, exists, at, depth)
            .await?;
        match depth {
            Depth::Tree => done.trees.insert(rel.to_string()),
            Depth::Contents => done.one_level.insert(rel.to_string()),
        };
        Ok(())
    }

    /// Where the source holds `rel` of a `--files-from` list: under `base`,
    /// below the part of its line before a `/./` anchor.
    fn listed_source(&self, base: &str, rel: &str) -> String {
        let list = self.opts.files_from.as_deref();
        let dir = list.map_or("", |list| list.source_dir(rel));
        under(&under(base, dir), rel)
    }

    /// The destination directory as an entry of a `--files-from` transfer
    /// (a `.` line, or a line starting `./`): it gets the attributes of
    /// the source directory `src_dir`, as rsync's dot directory does.
    async fn plan_listed_dot_dir(
        &mut self,
        src_dir: &str,
        dest: &str,
        there: Option<Meta>,
    ) -> Result<()> {
        match self.src.stat(src_dir).await {
            Ok(Some(meta)) if meta.kind == Kind::Dir => {
                let meta = self.as_sent(meta);
                self.push_top_dir(src_dir, dest, meta, there);
                Ok(())
            }
            // The listed paths below it say what is missing.
            Ok(_) => Ok(()),
            Err(Error::File(e)) => {
                self.errors.push(e);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A `--files-from` path that could not be looked up: counted, and
    /// nothing below it is tried.
    fn skip_listed(&mut self, error: Error, rel: &str, done: &mut Walked) -> Result<()> {
        let Error::File(error) = error else {
            return Err(error);
        };
        self.errors.push(error);
        done.blocked.insert(rel.to_string());
        Ok(())
    }

    /// Lists the next subdirectories on both sides at once (the source
    /// path, and the destination's when it exists; with `--link-dest` and
    /// co., the DIRs' for `new_dirs`, which the destination lacks), so
    /// that a tree costs round trips per batch of directories, not per
    /// directory.
    async fn list_ahead(&mut self, dirs: &[(String, Option<String>)], new_dirs: &[String]) {
        let (srcs, dsts, alts) = tokio::join!(
            list_all(self.src, dirs.iter().map(|(s, _)| s.as_str())),
            list_all(self.dst, dirs.iter().filter_map(|(_, d)| d.as_deref())),
            basis::list_ahead(self.dst, self.alt.as_ref(), new_dirs)
        );
        self.listed_src.extend(srcs);
        self.listed_dst.extend(dsts);
        self.listed_alt.extend(alts);
    }

    async fn plan_entry(
        &mut self,
        src_path: &str,
        dst_dir: &str,
        name: &str,
        meta: Meta,
        there: There,
    ) -> Result<()> {
        let There {
            existing,
            partial,
            sidecar,
            alt,
        } = there;
        let paths = Paths::new(dst_dir, name);
        let lands = match meta.kind {
            Kind::File => true,
            Kind::Symlink | Kind::Node(_) => self.makes_entry(&meta),
            _ => false,
        };
        if let Some(claims) = self.claims.as_mut().filter(|_| lands) {
            claims.claim(&paths.dest, false);
        }
        // Writing a partial or sidecar opens it by name, which would follow
        // a symlink planted there out of the destination.
        let odd = |m: Option<Meta>| m.is_some_and(|m| m.kind != Kind::File);
        if meta.kind == Kind::File && (odd(partial) || odd(sidecar)) {
            let taken = if odd(partial) {
                &paths.partial()
            } else {
                &paths.meta()
            };
            let message = "ferry's working file name is taken by something that is not a \
                           regular file (a symlink?), which it will not write through; remove it";
            self.errors.push(FileError::refused(
                self.dst.label(),
                taken.as_str(),
                message,
            ));
            return Ok(());
        }
        match meta.kind {
            Kind::File => {
                self.seen.files += 1;
                self.seen.bytes += meta.size;
            }
            Kind::Symlink if self.opts.links => self.seen.links += 1,
            _ => {}
        }
        // As rsync's generator: --existing and --ignore-existing before the
        // type (a fifo is "not created"); a directory without -r never
        // gets there (its sender skips it).
        let selected = meta.kind != Kind::Dir;
        if let Some(why) = self
            .opts
            .select
            .skips(&meta, existing.as_ref())
            .filter(|_| selected)
        {
            self.note_selected_out(why, src_path, &meta);
            return Ok(());
        }
        if meta.kind == Kind::File || (lands && meta.kind != Kind::Symlink) {
            self.keep(src_path, &paths.dest, meta.kind);
        }
        match meta.kind {
            Kind::Dir | Kind::Other => self.note_skipped(self.shown(src_path), &meta),
            Kind::Node(_) if self.makes_entry(&meta) => {
                self.plan_node(src_path, paths.dest, meta, existing).await?
            }
            Kind::Node(_) => self.note_skipped(self.shown(src_path), &meta),
            Kind::Symlink if self.opts.links => {
                let mtime = self.link_time(&meta);
                let current = self
                    .symlink_current(src_path, &paths.dest, existing)
                    .await?;
                let alt = match (current.is_none(), existing) {
                    (true, None) => self.alt_symlink(src_path, &paths.dest, &meta, alt).await?,
                    _ => None,
                };
                if let Some((AltKind::Compare, LinkBasis { target, .. })) = &alt {
                    // --compare-dest: a DIR has the link as it is.
                    let (dest, target) = (&paths.dest, Some(target.as_str()));
                    unchanged::up_to_date(self.reporter, dest, &meta, src_path, target);
                    self.source_done(src_path, paths.dest, meta);
                    return Ok(());
                }
                let alt = alt.map(|(_, basis)| basis);
                let Some(target) = current else {
                    self.actions.push(Action::Symlink {
                        source: src_path.to_string(),
                        dest: paths.dest,
                        meta,
                        set_time: mtime.is_some(),
                        alt: alt.map(Box::new),
                    });
                    return Ok(());
                };
                let mtime = mtime.filter(|t| existing.is_some_and(|m| !m.mtime.same(t)));
                let owner = self.link_owner(&meta, existing.as_ref());
                if mtime.is_some() || !owner.is_empty() {
                    self.actions.push(Action::Attrs {
                        dest: paths.dest.clone(),
                        kind: Kind::Symlink,
                        mode: None,
                        mtime,
                        owner,
                        set_id_mode: None,
                        source_meta: meta,
                    });
                } else {
                    unchanged::up_to_date(
                        self.reporter,
                        &paths.dest,
                        &meta,
                        src_path,
                        Some(&target),
                    );
                }
                self.source_done(src_path, paths.dest, meta);
            }
            Kind::Symlink => self.note_skipped(self.shown(src_path), &meta),
            Kind::File => {
                if self.plan_hard_link(src_path, &paths.dest, &meta, existing) {
                    return Ok(());
                }
                if self
                    .file_current(src_path, &paths.dest, &meta, existing)
                    .await?
                {
                    self.up_to_date += 1;
                    let attrs = existing
                        .is_some_and(|old| self.plan_attrs(paths.dest.clone(), &meta, &old));
                    if !attrs {
                        unchanged::up_to_date(self.reporter, &paths.dest, &meta, src_path, None);
                    }
                    self.source_done(src_path, paths.dest, meta);
                    return Ok(());
                }
                // rsync's --append leaves a file the destination has at
                // the source's size or longer as it is.
                let longer = existing.is_some_and(|m| m.kind == Kind::File && m.size >= meta.size);
                if self.opts.append && longer {
                    return Ok(());
                }
                let found = match existing {
                    None => self.alt_file(src_path, &paths.dest, &meta, alt).await?,
                    Some(_) => None,
                };
                let basis = match found {
                    Some(FromDirs::Current) => {
                        // --compare-dest: a DIR has it as it is.
                        self.up_to_date += 1;
                        unchanged::up_to_date(self.reporter, &paths.dest, &meta, src_path, None);
                        self.source_done(src_path, paths.dest, meta);
                        return Ok(());
                    }
                    Some(FromDirs::Basis(basis)) => Some(Box::new(basis)),
                    None => None,
                };
                let action = Action::File(FileJob {
                    source: src_path.to_string(),
                    source_meta: meta,
                    paths,
                    existing: existing.map(Box::new),
                    partial: partial.map(Box::new),
                    sidecar: sidecar.is_some(),
                    basis,
                });
                if let Some(small) = &mut self.small_files {
                    small.planned(&action);
                }
                self.actions.push(action);
            }
        }
        Ok(())
    }

    /// `-H`: a later name of a file already planned under another becomes
    /// a link to that one. Returns whether it does.
    fn plan_hard_link(
        &mut self,
        source: &str,
        dest: &str,
        meta: &Meta,
        existing: Option<Meta>,
    ) -> bool {
        if !self.opts.hard_links {
            return false;
        }
        let Some(leader) = self.hard_links.leader_of(meta.inode, dest) else {
            return false;
        };
        self.actions.push(Action::HardLink(Box::new(HardLink {
            source: source.to_string(),
            dest: dest.to_string(),
            leader,
            source_meta: *meta,
            existing,
        })));
        true
    }

    /// `--link-dest` and co.: the DIRs resolved against `base`, the
    /// directory the destination's names are under.
    async fn resolve_alt(&mut self, base: &str) -> Result<()> {
        let Some(alt) = self.opts.alt_dests.clone() else {
            return Ok(());
        };
        // -R plans one list per source base, all into one destination:
        // its DIRs are resolved (and a missing one warned about) once.
        if !self.alt.as_ref().is_some_and(|done| done.base_is(base)) {
            self.alt = Some(AltRoots::resolve(self.dst, &alt, base, self.reporter).await?);
        }
        Ok(())
    }

    /// The DIRs' directories for the destination directory `dst_dir` and
    /// their listings, when some of its source entries are missing from
    /// the destination: one listing per DIR and directory, not a lookup
    /// per file.
    async fn list_alt(
        &mut self,
        dst_dir: &str,
        entries: &[Entry],
        existing: &HashMap<String, Meta>,
    ) -> Result<Option<AltListing>> {
        let ahead = self.listed_alt.remove(dst_dir);
        let missing = entries.iter().any(|e| !existing.contains_key(&e.name));
        if let Some(listed) = ahead.filter(|_| missing) {
            return listed.map(Some);
        }
        let Some(dirs) = self.alt.as_ref().filter(|_| missing) else {
            return Ok(None);
        };
        let Some(dirs) = dirs.paths_for(dst_dir) else {
            return Ok(None);
        };
        basis::list_dirs(self.dst, dirs).await.map(Some)
    }

    /// Which option the DIRs came with and what each holds for the
    /// destination path `dest`: the walk's listings, else a lookup of
    /// each. None without DIRs (or for a path outside the destination).
    async fn alt_candidates(
        &self,
        dest: &str,
        listed: Option<Vec<(String, Option<Meta>)>>,
    ) -> Result<Option<(AltKind, Vec<(String, Option<Meta>)>)>> {
        let Some(alt) = &self.alt else {
            return Ok(None);
        };
        let candidates = match (listed, alt.paths_for(dest)) {
            (Some(listed), _) => listed,
            (None, Some(paths)) => basis::look_up(self.dst, paths).await?,
            (None, None) => return Ok(None),
        };
        Ok(Some((alt.kind, candidates)))
    }

    /// The DIRs' file a file the destination lacks comes from, if any.
    async fn alt_file(
        &self,
        src_path: &str,
        dest: &str,
        meta: &Meta,
        listed: Option<Vec<(String, Option<Meta>)>>,
    ) -> Result<Option<FromDirs>> {
        let Some((kind, candidates)) = self.alt_candidates(dest, listed).await? else {
            return Ok(None);
        };
        let (src, dst, opts) = (self.src, self.dst, self.opts);
        basis::choose_file(src, dst, opts, kind, src_path, meta, &candidates).await
    }

    /// The DIRs' symlink pointing where the source's does, for a symlink
    /// the destination lacks, with the option it came with.
    async fn alt_symlink(
        &self,
        src_path: &str,
        dest: &str,
        meta: &Meta,
        listed: Option<Vec<(String, Option<Meta>)>>,
    ) -> Result<Option<(AltKind, LinkBasis)>> {
        let Some((kind, candidates)) = self.alt_candidates(dest, listed).await? else {
            return Ok(None);
        };
        let is_link = |m: &Option<Meta>| m.is_some_and(|m| m.kind == Kind::Symlink);
        if !candidates.iter().any(|(_, m)| is_link(m)) {
            return Ok(None);
        }
        let target = self.src.read_link(src_path).await?;
        let target = self.opts.links_policy.target(target);
        let keeps_time = self.link_time(meta).is_some();
        let (dst, opts) = (self.dst, self.opts);
        let found =
            basis::choose_symlink(dst, opts, &target, meta, keeps_time, &candidates).await?;
        let how = match kind {
            AltKind::Link => Use::Link,
            _ => Use::Copy,
        };
        Ok(found.map(|path| (kind, LinkBasis { path, target, how })))
    }

    /// Whether the selection options leave a source directory out, with
    /// everything in it (`--existing` where the destination has none,
    /// `--ignore-existing` where it has something else).
    fn left_out(&self, meta: &Meta, there: Option<&Meta>, src_path: &str) -> bool {
        let skip = self.opts.select.skips(meta, there);
        if let Some(why) = skip {
            self.note_selected_out(why, src_path, meta);
        }
        skip.is_some()
    }

    /// rsync's `--info=skip` line for an entry an option leaves alone.
    fn note_selected_out(&self, why: Skip, src_path: &str, meta: &Meta) {
        let name = self.shown(src_path);
        let line = match why {
            Skip::NotCreating => {
                let what = if meta.kind == Kind::Dir {
                    "directory"
                } else {
                    "file"
                };
                format!("not creating new {what} \"{name}\"")
            }
            Skip::Exists => format!("{name} exists"),
            Skip::OverMaxSize => format!("{name} is over max-size"),
            Skip::UnderMinSize => format!("{name} is under min-size"),
            Skip::Newer => format!("{name} is newer"),
        };
        self.reporter.mention(Mention::Skipped, &line);
    }

    /// A file whose contents are current still gets the source's
    /// permissions and time where the options ask for them, as rsync sets
    /// them on a file it does not send. Returns whether it does.
    fn plan_attrs(&mut self, dest: String, meta: &Meta, old: &Meta) -> bool {
        let opts = self.opts;
        let mode = crate::mode::dest_mode(
            meta.mode,
            Some(old.mode),
            true,
            opts.perms,
            opts.executability,
            0,
        );
        let set_id = mode & 0o6000 != 0;
        let mode = (mode != old.mode).then_some(mode);
        let mtime = (opts.times && !old.mtime.same(&meta.mtime)).then_some(meta.mtime);
        let owner = opts.owners.change(meta.owner, old.owner);
        let changed = mode.is_some() || mtime.is_some() || !owner.is_empty();
        if changed {
            self.actions.push(Action::Attrs {
                dest,
                kind: meta.kind,
                mode,
                mtime,
                owner,
                set_id_mode: (set_id && mode.is_none() && !owner.is_empty()).then_some(old.mode),
                source_meta: *meta,
            });
        }
        changed
    }

    /// A fifo, socket or device node (`-D`): made where the destination
    /// has no node of its type and number, else given what attributes
    /// differ, as rsync's generator does.
    async fn plan_node(
        &mut self,
        source: &str,
        dest: String,
        meta: Meta,
        existing: Option<Meta>,
    ) -> Result<()> {
        let meta = match unknown_device(&meta) {
            true => self.device_numbered(source).await?.unwrap_or(meta),
            false => meta,
        };
        let same = existing.filter(|old| old.kind == meta.kind && !unknown_device(old));
        let Some(old) = same else {
            self.actions.push(Action::Node {
                source: source.to_string(),
                dest,
                meta,
            });
            return Ok(());
        };
        if !self.plan_attrs(dest.clone(), &meta, &old) {
            unchanged::up_to_date(self.reporter, &dest, &meta, source, None);
        }
        self.source_done(source, dest, meta);
        Ok(())
    }

    /// A source device listed without its number (over SFTP v3), described
    /// again by the source's helper, started for it; None without one
    /// (making it then fails alone, naming what is missing).
    async fn device_numbered(&self, source: &str) -> Result<Option<Meta>> {
        match super::offers(self.src, |f| f.device_numbers).await? {
            true => self.src.lstat(source).await,
            false => Ok(None),
        }
    }

    /// The owner change a current symlink needs, where the destination can
    /// change a link's own.
    fn link_owner(&self, meta: &Meta, old: Option<&Meta>) -> OwnerChange {
        match self.dst.features().link_owners {
            true => self
                .opts
                .owners
                .change(meta.owner, old.and_then(|m| m.owner)),
            false => OwnerChange::default(),
        }
    }

    /// An entry the destination already holds: with
    /// `--remove-source-files` the source's goes too (as rsync removes
    /// files it finds up to date), once checked.
    fn source_done(&mut self, source: &str, dest: String, meta: Meta) {
        if self.opts.remove_source_files {
            self.actions.push(Action::RemoveSource {
                source: source.to_string(),
                dest,
                meta,
            });
        }
    }

    /// The time a copied symlink gets: the source link's with `--times`
    /// (not `-J`), where the destination can set a link's own time.
    fn link_time(&self, meta: &Meta) -> Option<Mtime> {
        let opts = self.opts;
        let kept = opts.times && !opts.omit_link_times && self.dst.features().link_times;
        kept.then_some(meta.mtime)
    }

    /// rsync's quick check ([`super::select`]): same size and modification
    /// time, or with `--checksum` the same content.
    async fn file_current(
        &self,
        src_path: &str,
        dest: &str,
        meta: &Meta,
        existing: Option<Meta>,
    ) -> Result<bool> {
        let Some(there) = existing else {
            return Ok(false);
        };
        match self
            .opts
            .select
            .quick_check(meta, &there, self.opts.checksum)
        {
            Quick::Current => return Ok(true),
            Quick::Differs => return Ok(false),
            Quick::CompareContents => {}
        }
        // Each side hashes where it can (a remote helper or shell hashes on
        // the server); what only one side can do decides the algorithm.
        hashes::same_contents(self.src, src_path, self.dst, dest).await
    }

    /// The target of a destination symlink that already points where the
    /// source's does; None when it needs (re)making.
    async fn symlink_current(
        &self,
        src_path: &str,
        dest: &str,
        existing: Option<Meta>,
    ) -> Result<Option<String>> {
        if existing.map(|m| m.kind) != Some(Kind::Symlink) {
            return Ok(None);
        }
        let (ours, theirs) = tokio::join!(self.src.read_link(src_path), self.dst.read_link(dest));
        let ours = self.opts.links_policy.target(ours?);
        Ok((ours == theirs?).then_some(ours))
    }
}

/// `--list-only` walks the source alone (`engine::list`), with the rules
/// the transfer's walk applies: these lend it the planner's.
impl<S: Endpoint, D: Endpoint> Planner<'_, S, D> {
    /// The rules at the root of a walk whose transfer root the source
    /// calls `root`.
    pub(super) fn rules_at_root(&self, root: &str) -> Scope {
        self.root_scope_at(root)
    }

    /// The rules inside the source directory `src_dir` (at `rel` from the
    /// transfer root, in a directory ruled by `outer`), with what its
    /// filter files add. None when one could not be read (in `errors`).
    pub(super) async fn rules_inside(
        &mut self,
        src_dir: &str,
        rel: &str,
        outer: &Scope,
        entries: &[Entry],
    ) -> Result<Option<Scope>> {
        self.enter(src_dir, &Here::new(rel, outer), entries).await
    }
}
