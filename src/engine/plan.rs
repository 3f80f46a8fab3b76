//! Walking the source and destination trees side by side and deciding, per
//! entry, what has to happen (rclone's walk / decide split). No data moves
//! here; the plan is a list of actions the executor carries out in order.

use std::collections::HashMap;

use futures::stream::{FuturesUnordered, StreamExt};

use super::partial::{is_working_file, meta_name, partial_name, Paths};
use super::transfer::FileJob;
use super::Options;
use crate::endpoint::{base_name, join, Endpoint, Entry, Kind, Meta};
use crate::error::{Error, Result};
use crate::report::Reporter;

#[derive(Debug, Clone)]
pub enum Action {
    /// Make sure a directory exists; its attributes are set after its contents.
    Dir {
        dest: String,
        /// The source directory's metadata; None for a destination ferry
        /// creates on its own, which keeps default attributes.
        meta: Option<Meta>,
        exists: bool,
    },
    /// Copy a file (or resume its partial).
    File(FileJob),
    /// Create or replace a symlink.
    Symlink { source: String, dest: String },
    /// The file is current but its permissions differ.
    Mode { dest: String, mode: u32 },
}

/// What the destination already holds under one name.
#[derive(Debug, Clone, Copy)]
struct There {
    existing: Option<Meta>,
    partial: Option<Meta>,
    sidecar: Option<Meta>,
}

/// Where a lone file lands when the destination names no directory: its
/// parent, and what is already there.
struct AsFile {
    parent: Result<Option<Meta>>,
    there: Result<There>,
}

/// A top-level source argument.
#[derive(Debug, Clone)]
pub struct SourceArg {
    pub path: String,
    /// rsync's trailing slash: copy the directory's contents, not the directory.
    pub contents_only: bool,
}

impl SourceArg {
    pub fn new(path: &str) -> SourceArg {
        SourceArg {
            contents_only: path.ends_with('/') && path.len() > 1,
            path: path.to_string(),
        }
    }
}

pub struct Planner<'a, S, D> {
    pub src: &'a S,
    pub dst: &'a D,
    pub opts: &'a Options,
    pub reporter: &'a dyn Reporter,
    pub actions: Vec<Action>,
    /// Per-entry errors found while planning; the rest of the plan goes on.
    pub errors: Vec<Error>,
    /// Files found already up to date.
    pub up_to_date: u64,
    /// Destination entries the source does not have (with `--delete`).
    pub extraneous: Vec<Entry>,
    /// Listings taken ahead of the walk, by path, until it gets there.
    listed_src: HashMap<String, Result<Vec<Entry>>>,
    listed_dst: HashMap<String, Result<Vec<Entry>>>,
}

/// Subdirectories listed at once, ahead of the walk: enough to hide the
/// round trips, few enough that the listings held stay small.
const LIST_AHEAD: usize = 64;

async fn list_all<'a, E: Endpoint>(
    endpoint: &E,
    dirs: impl Iterator<Item = &'a str>,
) -> Vec<(String, Result<Vec<Entry>>)> {
    dirs.map(|dir| list_one(endpoint, dir))
        .collect::<FuturesUnordered<_>>()
        .collect()
        .await
}

async fn list_one<E: Endpoint>(endpoint: &E, dir: &str) -> (String, Result<Vec<Entry>>) {
    (dir.to_string(), endpoint.list(dir).await)
}

impl<'a, S: Endpoint, D: Endpoint> Planner<'a, S, D> {
    pub fn new(src: &'a S, dst: &'a D, opts: &'a Options, reporter: &'a dyn Reporter) -> Self {
        Planner {
            src,
            dst,
            opts,
            reporter,
            actions: Vec::new(),
            errors: Vec::new(),
            up_to_date: 0,
            extraneous: Vec::new(),
            listed_src: HashMap::new(),
            listed_dst: HashMap::new(),
        }
    }

    /// Plans the copy of `sources` into `dest` with rsync's rules for where
    /// each lands.
    pub async fn plan(&mut self, sources: &[SourceArg], dest: &str) -> Result<()> {
        let mut found = Vec::new();
        for source in sources {
            match self.source_meta(source).await? {
                Some(meta) => found.push((source, meta)),
                None => self.errors.push(Error::FileSelection(format!(
                    "{}{}: no such file or directory",
                    self.src.label(),
                    source.path
                ))),
            }
        }
        let copies_dirs = self.opts.recursive && found.iter().any(|(_, m)| m.kind == Kind::Dir);
        let into_dir = sources.len() > 1 || copies_dirs || dest.ends_with('/');
        let (dest_meta, mut as_file) = if into_dir || found.is_empty() {
            (self.dst.stat(dest).await?, None)
        } else {
            let (dest_meta, as_file) = tokio::join!(self.dst.stat(dest), self.look_as_file(dest));
            (dest_meta?, Some(as_file))
        };
        let dest_is_dir = match dest_meta {
            Some(m) => m.kind == Kind::Dir,
            None if into_dir => {
                self.actions.push(Action::Dir {
                    dest: dest.to_string(),
                    meta: None,
                    exists: false,
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
        for (source, meta) in found {
            self.plan_source(
                source,
                meta,
                dest,
                dest_is_dir,
                dest_meta.is_some(),
                as_file.take(),
            )
            .await?;
        }
        Ok(())
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
        let (existing, partial, sidecar) = tokio::join!(
            self.dst.lstat(&paths.dest),
            self.dst.lstat(&paths.partial),
            self.dst.lstat(&paths.meta)
        );
        Ok(There {
            existing: existing?,
            partial: partial?,
            sidecar: sidecar?,
        })
    }

    async fn source_meta(&self, source: &SourceArg) -> Result<Option<Meta>> {
        if source.contents_only {
            self.src.stat(&source.path).await
        } else {
            self.src.lstat(&source.path).await
        }
    }

    async fn plan_source(
        &mut self,
        source: &SourceArg,
        meta: Meta,
        dest: &str,
        dest_is_dir: bool,
        dest_exists: bool,
        as_file: Option<AsFile>,
    ) -> Result<()> {
        let path = source.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        if meta.kind == Kind::Dir && self.opts.recursive {
            let (target, exists) = if source.contents_only {
                (dest.to_string(), dest_exists)
            } else {
                let target = join(dest, base_name(path));
                let found = match dest_exists {
                    true => self.dst.lstat(&target).await?.map(|m| m.kind),
                    false => None,
                };
                if let Some(kind) = found.filter(|k| *k != Kind::Dir) {
                    self.errors.push(self.in_the_way(&target, kind));
                    return Ok(());
                }
                (target, found.is_some())
            };
            self.push_top_dir(&target, meta, exists);
            return self.walk(path, &target, exists).await;
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

    /// What `dst_dir` holds and the source directory (`entries`) does not,
    /// ferry's own working files aside.
    fn note_extraneous(
        &mut self,
        dst_dir: &str,
        entries: &[Entry],
        existing: &HashMap<String, Meta>,
    ) {
        let in_source: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.name.as_str()).collect();
        let mut gone: Vec<Entry> = existing
            .iter()
            .filter(|(name, _)| !in_source.contains(name.as_str()) && !is_working_file(name))
            .map(|(name, meta)| Entry {
                name: join(dst_dir, name),
                meta: *meta,
            })
            .collect();
        gone.sort_by(|a, b| a.name.cmp(&b.name));
        self.extraneous.extend(gone);
    }

    /// A directory of the source meets something else of that name in the
    /// destination. Files are written under it by name, so a symlink there
    /// would take them out of the destination: the subtree is refused, and
    /// so is anything but a directory, which ferry does not delete.
    fn in_the_way(&self, target: &str, kind: Kind) -> Error {
        let what = match kind {
            Kind::Symlink => "a symlink, which ferry does not write through",
            Kind::File => "a file, which ferry does not delete",
            _ => "something that is not a directory",
        };
        Error::Refused {
            path: format!("{}{target}", self.dst.label()),
            message: format!("a directory of the source goes here, but this is {what}; skipped"),
        }
    }

    /// Several `dir/` sources can land in one destination directory, which
    /// `plan` may already have queued for creation: one action per directory.
    fn push_top_dir(&mut self, dest: &str, meta: Meta, exists: bool) {
        for action in &mut self.actions {
            if let Action::Dir {
                dest: d, meta: m, ..
            } = action
            {
                if d == dest {
                    *m = Some(meta);
                    return;
                }
            }
        }
        self.push_dir(dest, meta, exists);
    }

    fn push_dir(&mut self, dest: &str, meta: Meta, exists: bool) {
        self.actions.push(Action::Dir {
            dest: dest.to_string(),
            meta: Some(meta),
            exists,
        });
    }

    /// Depth-first walk of one source directory against its destination.
    async fn walk(&mut self, src_dir: &str, dst_dir: &str, dst_exists: bool) -> Result<()> {
        let listed = match self.listed_src.remove(src_dir) {
            Some(listed) => listed,
            None => self.src.list(src_dir).await,
        };
        let entries = match listed {
            Ok(entries) => entries,
            Err(e) if !e.is_fatal() => {
                self.errors.push(e);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let existing: HashMap<String, Meta> = if dst_exists {
            let listed = match self.listed_dst.remove(dst_dir) {
                Some(listed) => listed,
                None => self.dst.list(dst_dir).await,
            };
            listed?
                .into_iter()
                .map(|Entry { name, meta }| (name, meta))
                .collect()
        } else {
            HashMap::new()
        };
        if self.opts.delete {
            self.note_extraneous(dst_dir, &entries, &existing);
        }
        let is_dir_there = |name: &str| existing.get(name).map(|m| m.kind) == Some(Kind::Dir);
        for (i, entry) in entries.iter().enumerate() {
            if is_working_file(&entry.name) {
                continue;
            }
            let src_path = join(src_dir, &entry.name);
            if entry.meta.kind == Kind::Dir {
                let target = join(dst_dir, &entry.name);
                if let Some(in_the_way) = existing.get(&entry.name).filter(|m| m.kind != Kind::Dir)
                {
                    self.errors.push(self.in_the_way(&target, in_the_way.kind));
                    continue;
                }
                let exists = is_dir_there(&entry.name);
                if !self.listed_src.contains_key(&src_path) {
                    let ahead: Vec<_> = entries[i..]
                        .iter()
                        .filter(|e| e.meta.kind == Kind::Dir)
                        .take(LIST_AHEAD)
                        .map(|e| {
                            let there = is_dir_there(&e.name).then(|| join(dst_dir, &e.name));
                            (join(src_dir, &e.name), there)
                        })
                        .collect();
                    self.list_ahead(&ahead).await;
                }
                self.push_dir(&target, entry.meta, exists);
                Box::pin(self.walk(&src_path, &target, exists)).await?;
                continue;
            }
            let there = There {
                existing: existing.get(&entry.name).copied(),
                partial: existing.get(&partial_name(&entry.name)).copied(),
                sidecar: existing.get(&meta_name(&entry.name)).copied(),
            };
            self.plan_entry(&src_path, dst_dir, &entry.name, entry.meta, there)
                .await?;
        }
        Ok(())
    }

    /// Lists the next subdirectories on both sides at once (the source
    /// path, and the destination's when it exists), so that a tree costs
    /// round trips per batch of directories, not per directory.
    async fn list_ahead(&mut self, dirs: &[(String, Option<String>)]) {
        let (srcs, dsts) = tokio::join!(
            list_all(self.src, dirs.iter().map(|(s, _)| s.as_str())),
            list_all(self.dst, dirs.iter().filter_map(|(_, d)| d.as_deref()))
        );
        self.listed_src.extend(srcs);
        self.listed_dst.extend(dsts);
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
        } = there;
        let paths = Paths::new(dst_dir, name);
        // Writing a partial or sidecar opens it by name, which would follow
        // a symlink planted there out of the destination.
        let odd = |m: Option<Meta>| m.is_some_and(|m| m.kind != Kind::File);
        if meta.kind == Kind::File && (odd(partial) || odd(sidecar)) {
            let taken = if odd(partial) {
                &paths.partial
            } else {
                &paths.meta
            };
            self.errors.push(Error::Refused {
                path: format!("{}{taken}", self.dst.label()),
                message: "ferry's working file name is taken by something that is not a \
                          regular file (a symlink?), which it will not write through; remove it"
                    .into(),
            });
            return Ok(());
        }
        match meta.kind {
            Kind::Dir => self
                .reporter
                .note(&format!("skipping directory {src_path}")),
            Kind::Symlink if self.opts.links => {
                if !self
                    .symlink_current(src_path, &paths.dest, existing)
                    .await?
                {
                    self.actions.push(Action::Symlink {
                        source: src_path.to_string(),
                        dest: paths.dest,
                    });
                }
            }
            Kind::Symlink | Kind::Other => self
                .reporter
                .note(&format!("skipping non-regular file \"{src_path}\"")),
            Kind::File if existing.is_some_and(|m| m.kind == Kind::Dir) => {
                self.errors.push(Error::Refused {
                    path: format!("{}{}", self.dst.label(), paths.dest),
                    message: "a directory is in the way; could not make way for the new file"
                        .into(),
                });
            }
            Kind::File => {
                if self
                    .file_current(src_path, &paths.dest, &meta, existing)
                    .await?
                {
                    self.up_to_date += 1;
                    let existing_mode = existing.map(|m| m.mode);
                    if self.opts.perms && existing_mode != Some(meta.mode) {
                        self.actions.push(Action::Mode {
                            dest: paths.dest,
                            mode: meta.mode,
                        });
                    }
                    return Ok(());
                }
                self.actions.push(Action::File(FileJob {
                    source: src_path.to_string(),
                    source_meta: meta,
                    paths,
                    existing,
                    partial,
                    sidecar: sidecar.is_some(),
                }));
            }
        }
        Ok(())
    }

    /// rsync's quick check: same size and modification time, or with
    /// `--checksum` the same content.
    async fn file_current(
        &self,
        src_path: &str,
        dest: &str,
        meta: &Meta,
        existing: Option<Meta>,
    ) -> Result<bool> {
        let Some(there) = existing.filter(|m| m.kind == Kind::File) else {
            return Ok(false);
        };
        if there.size != meta.size {
            return Ok(false);
        }
        if !self.opts.checksum {
            return Ok(there.mtime == meta.mtime);
        }
        // Each side hashes where it can (a remote helper or shell hashes on
        // the server); what only one side can do decides the algorithm.
        let algo = crate::endpoint::common_algorithm(self.src, self.dst).unwrap_or_default();
        let (a, b) = tokio::join!(
            self.src.file_hash(src_path, algo),
            self.dst.file_hash(dest, algo)
        );
        Ok(a? == b?)
    }

    async fn symlink_current(
        &self,
        src_path: &str,
        dest: &str,
        existing: Option<Meta>,
    ) -> Result<bool> {
        if existing.map(|m| m.kind) != Some(Kind::Symlink) {
            return Ok(false);
        }
        let (ours, theirs) = tokio::join!(self.src.read_link(src_path), self.dst.read_link(dest));
        Ok(ours? == theirs?)
    }
}
