//! Where a file is written before it takes its place, and when it takes it:
//! `--partial-dir` (the partial, and its sidecar, in DIR: relative to the
//! file's directory or absolute), `-T`/`--temp-dir` (in DIR, relative to
//! the destination root or absolute), `--delay-updates` (every finished
//! partial waits in the partial directory, rsync's `.~tmp~` unless one is
//! named, and all are renamed into place after the last transfer).
//!
//! [`Places`] is one run's side of this: the paths each file's partial
//! gets ([`Places::place`]), the partials earlier runs left there
//! ([`Places::locate`]), the directories made for them
//! ([`Places::prepare`]), the rename into place (with rsync's copy when a
//! temp dir is on another file system), and the clean-up, as rsync does
//! it: a relative partial directory goes once empty, and the partial of a
//! file found up to date goes too ([`Places::finish`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};
use tokio::sync::OnceCell;

use super::backup::{collapsed, normal, Backups, Touched};
use super::blocked::Blocked;
use super::partial::{meta_name, partial_name, Paths};
use super::plan::Action;
use super::transfer::FileJob;
use super::Options;
use crate::endpoint::{base_name, join, parent, Endpoint, Entry, Kind, Meta};
use crate::error::{Error, FileError, Host, Result};
use crate::report::{Item, ItemKind, Outcome, Reporter};

/// rsync's partial directory for `--delay-updates` when none is named.
pub(crate) const DELAY_DIR: &str = ".~tmp~";

/// Staging directories read at once while looking for partials.
const READ_AHEAD: usize = 64;

/// The options that move where files are written (rsync's meanings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Staging {
    /// `--partial-dir`: where partials are kept, relative to each file's
    /// directory unless absolute.
    pub partial_dir: Option<String>,
    /// `-T`/`--temp-dir`: where files are written, relative to the
    /// destination root unless absolute.
    pub temp_dir: Option<String>,
    /// `--delay-updates`: every updated file takes its place at the end.
    pub delay_updates: bool,
}

impl Staging {
    /// rsync's reading (options.c): `--delay-updates` without a partial
    /// directory uses `.~tmp~`; with `--partial` (`-P`), `RSYNC_PARTIAL_DIR`
    /// names one that was not given; the name is cleaned, and `.` is none.
    pub(crate) fn from_options(
        partial_dir: Option<&str>,
        temp_dir: Option<&str>,
        delay_updates: bool,
        from_env: Option<String>,
    ) -> Staging {
        let given = partial_dir.map(str::to_string).or(from_env);
        // rsync's clean_fname, with `..` collapsed.
        let cleaned = given.map(|d| collapsed(&d)).filter(|d| d != ".");
        let partial_dir = match (cleaned, delay_updates) {
            (None, true) => Some(DELAY_DIR.to_string()),
            (dir, _) => dir,
        };
        Staging {
            partial_dir,
            temp_dir: temp_dir.filter(|d| !d.is_empty()).map(str::to_string),
            delay_updates,
        }
    }

    /// The rule rsync adds for a relative partial directory (compat.c): no
    /// directory of that name is sent, and `--delete` spares the
    /// destination's; perishable, so that one inside a directory being
    /// deleted goes with it.
    pub(crate) fn exclude_rule(&self) -> Option<String> {
        let dir = self
            .partial_dir
            .as_deref()
            .filter(|d| !d.starts_with('/'))?;
        Some(format!("-p {dir}/"))
    }

    /// Whether partials live away from their files.
    fn moves_partials(&self) -> bool {
        self.partial_dir.is_some() || self.temp_dir.is_some()
    }

    /// Whether partials of files found up to date are looked for (rsync
    /// removes those in a partial directory).
    pub(crate) fn wants_current_files(&self) -> bool {
        self.partial_dir.is_some()
    }
}

/// Where one file's partial lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Spot {
    /// Beside the file (ferry's default).
    Beside,
    /// In a relative partial directory inside the file's directory: made
    /// as needed, and removed once empty.
    Under(String),
    /// In an absolute partial directory, made as needed, never removed.
    Fixed(String),
    /// In the temp dir, which must exist.
    Temp(String),
}

impl Spot {
    fn dir(&self) -> Option<&str> {
        match self {
            Spot::Beside => None,
            Spot::Under(dir) | Spot::Fixed(dir) | Spot::Temp(dir) => Some(dir),
        }
    }
}

/// One run's staging and backups.
pub(crate) struct Places {
    staging: Staging,
    /// The temp dir as a path of the destination endpoint.
    temp_dir: Option<String>,
    pub backups: Option<Backups>,
    /// The destination's directories that failed, and what stops the run.
    pub blocked: Blocked,
    /// Directories where a source entry has the partial directory's name:
    /// their partials stay beside their files.
    crowded: HashSet<String>,
    /// Directories this run makes: no partial directory is there yet.
    new_dirs: HashSet<String>,
    /// The destination root (see [`root_of`]).
    root: String,
    /// Each partial directory, made or found once.
    ready: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
    /// Relative partial directories to remove (when empty) at the end:
    /// those this run made, and those a partial was taken from.
    emptied: Mutex<HashSet<String>>,
    /// Partials (and sidecars) of files found up to date.
    stale: Mutex<Vec<String>>,
    touched: Touched,
}

impl Places {
    /// The places for a run into `dest` on `host` whose plan is `actions`.
    pub(crate) fn new(opts: &Options, host: &Host, dest: &str, actions: &[Action]) -> Places {
        let root = root_of(dest, actions);
        let temp_dir = opts.staging.temp_dir.as_deref().map(|t| match t {
            t if t.starts_with('/') => normal(t).to_string(),
            t => normal(&join(&root, t)).to_string(),
        });
        let backups = opts.backup.as_ref().map(|policy| {
            Backups::new(
                policy,
                &root,
                dir_modes(actions, opts.perms),
                opts.times,
                opts.links_policy.safe_links,
            )
        });
        let new_dirs = actions
            .iter()
            .filter_map(|a| match a {
                Action::Dir {
                    dest,
                    exists: false,
                    ..
                } => Some(normal(dest).to_string()),
                _ => None,
            })
            .collect();
        Places {
            crowded: crowded(&opts.staging, actions),
            staging: opts.staging.clone(),
            temp_dir,
            backups,
            blocked: Blocked::new(host, &root),
            new_dirs,
            root,
            ready: Mutex::new(HashMap::new()),
            emptied: Mutex::new(HashSet::new()),
            stale: Mutex::new(Vec::new()),
            touched: Touched::default(),
        }
    }

    /// Whether every updated file waits for the end of the run.
    pub(crate) fn delays(&self) -> bool {
        self.staging.delay_updates
    }

    /// Whether the file's partial is written in the temp dir.
    pub(crate) fn in_temp_dir(&self, job: &FileJob) -> bool {
        matches!(self.spot(&job.paths.dest), Spot::Temp(_))
    }

    /// Whether replacing this file's destination entry makes a backup.
    pub(crate) fn keeps_old(&self, job: &FileJob) -> bool {
        self.backups.is_some() && job.existing().is_some_and(|m| m.kind != Kind::Dir)
    }

    /// Whether the run made or wrote something in `dir` that is not the
    /// directory of an entry it copied (a backup or temp directory).
    pub(crate) fn touched(&self, dir: &str) -> bool {
        self.touched.has(dir) || self.backups.as_ref().is_some_and(|b| b.touched.has(dir))
    }

    /// Checks what must be there before anything is written, as rsync's
    /// receiver checks it: the temp dir exists and is a directory, a backup
    /// directory that exists is one (exit 1 otherwise).
    pub(crate) async fn check<D: Endpoint>(&self, dst: &D) -> Result<()> {
        // The destination root itself, made by this run: there by the time
        // anything is written (rsync checks once it is in it).
        let made_root = |temp: &str| {
            collapsed(temp) == collapsed(&self.root) && self.new_dirs.contains(&self.root)
        };
        if let Some(temp) = self.temp_dir.as_deref().filter(|t| !made_root(t)) {
            match dst.stat(temp).await? {
                Some(m) if m.kind == Kind::Dir => {}
                Some(_) => return Err(usage(dst, temp, "the temp-dir is not a directory")),
                None => return Err(usage(dst, temp, "the temp-dir does not exist")),
            }
        }
        if let Some(dir) = self.backups.as_ref().and_then(Backups::dir) {
            if dst.stat(dir).await?.is_some_and(|m| m.kind != Kind::Dir) {
                return Err(super::backup::not_a_directory(dst, dir));
            }
        }
        Ok(())
    }

    /// Where the partial of the file at `dest` lives: the partial directory
    /// wins over the temp dir (it is where rsync keeps a partial).
    fn spot(&self, dest: &str) -> Spot {
        let dir = parent(dest);
        match self.staging.partial_dir.as_deref() {
            Some(abs) if abs.starts_with('/') => Spot::Fixed(abs.to_string()),
            Some(_) if self.crowded.contains(normal(dir)) => Spot::Beside,
            Some(rel) => Spot::Under(join(dir, rel)),
            None => match &self.temp_dir {
                Some(temp) => Spot::Temp(temp.clone()),
                None => Spot::Beside,
            },
        }
    }

    /// The paths of the file at `paths.dest` with its partial and sidecar
    /// where the options put them. In the temp dir, files of one name from
    /// different directories must not meet: the name carries a tag of the
    /// destination path, the same in every run, so that one is resumed.
    /// None where they stay beside it.
    fn paths_for(&self, paths: &Paths) -> Option<Paths> {
        let name = base_name(&paths.dest);
        let (dir, partial, meta) = match self.spot(&paths.dest) {
            Spot::Beside => return None,
            Spot::Under(dir) | Spot::Fixed(dir) => (dir, name.to_string(), meta_name(name)),
            Spot::Temp(dir) => {
                let tagged = format!("{}.{}", short(name), tag(&paths.dest));
                (dir, partial_name(&tagged), meta_name(&tagged))
            }
        };
        let placed = Paths::placed(paths.dest.clone(), join(&dir, &partial), join(&dir, &meta));
        Some(placed)
    }

    /// Gives every file of the plan its partial's paths; what the planner
    /// found beside the file is not its partial then ([`Places::locate`]
    /// looks where it is).
    pub(crate) fn place(&self, actions: &mut [Action]) {
        for action in actions {
            if let Action::File(job) = action {
                if let Some(placed) = self.paths_for(&job.paths) {
                    job.paths = placed;
                    job.partial = None;
                    job.sidecar = false;
                }
            }
        }
    }

    /// Finds the partials and sidecars earlier runs left where the options
    /// put them, for the files of the plan (one listing per directory), and
    /// those of files found up to date (`current`), which go at the end.
    /// Returns the errors of files whose partial's name is taken by
    /// something other than a file (those files leave the plan).
    pub(crate) async fn locate<D: Endpoint>(
        &self,
        dst: &D,
        actions: &mut Vec<Action>,
        current: &[String],
    ) -> Result<Vec<FileError>> {
        if !self.staging.moves_partials() {
            return Ok(Vec::new());
        }
        let attrs_only = actions.iter().filter_map(|a| match a {
            Action::Attrs {
                dest,
                kind: Kind::File,
                ..
            } => Some(dest.clone()),
            _ => None,
        });
        let current: Vec<String> = current.iter().cloned().chain(attrs_only).collect();
        let jobs = actions.iter().filter_map(|a| match a {
            Action::File(job) => Some(job.paths.dest.as_str()),
            _ => None,
        });
        let spots: HashSet<Spot> = jobs
            .chain(current.iter().map(String::as_str))
            .filter(|dest| self.may_hold_partials(dest))
            .map(|dest| self.spot(dest))
            .collect();
        let listed = self.read_spots(dst, spots).await?;
        let mut errors = Vec::new();
        actions.retain_mut(|action| match action {
            Action::File(job) => match self.found_for(dst.label(), job, &listed) {
                Ok(()) => true,
                Err(e) => {
                    errors.push(e);
                    false
                }
            },
            _ => true,
        });
        for dest in &current {
            self.note_stale(dest, &listed);
        }
        Ok(errors)
    }

    /// Whether the spot of the file at `dest` can hold a partial from an
    /// earlier run (not in a directory this run makes).
    fn may_hold_partials(&self, dest: &str) -> bool {
        match self.spot(dest) {
            Spot::Beside => false,
            Spot::Under(_) => !self.new_dirs.contains(normal(parent(dest))),
            Spot::Fixed(_) | Spot::Temp(_) => true,
        }
    }

    /// Lists each spot directory, many at once. A relative partial
    /// directory must be a directory itself, not a symlink to one: a
    /// partial found through it would be written outside the destination.
    async fn read_spots<D: Endpoint>(
        &self,
        dst: &D,
        spots: HashSet<Spot>,
    ) -> Result<HashMap<String, HashMap<String, Meta>>> {
        let read = stream::iter(spots)
            .map(|spot| read_spot(dst, spot))
            .buffer_unordered(READ_AHEAD)
            .collect::<Vec<_>>()
            .await;
        let mut listed = HashMap::new();
        for (spot, dir, entries) in read {
            let entries: Vec<Entry> = match entries {
                Ok(Some(entries)) => {
                    if matches!(spot, Spot::Under(_)) {
                        self.mark_ready(&dir);
                    }
                    entries
                }
                Ok(None) => continue,
                Err(e) if e.is_fatal() => return Err(e),
                // Unreadable: as if it held nothing; writing there will say.
                Err(_) => continue,
            };
            let names = entries.into_iter().map(|e| (e.name, e.meta)).collect();
            listed.insert(dir, names);
        }
        Ok(listed)
    }

    /// The partial and sidecar of `job` in its spot's listing, if any.
    fn found_for(
        &self,
        label: &Host,
        job: &mut FileJob,
        listed: &HashMap<String, HashMap<String, Meta>>,
    ) -> Result<(), FileError> {
        let Some(names) = listed.get(parent(&job.paths.partial())) else {
            return Ok(());
        };
        let partial = names.get(base_name(&job.paths.partial())).copied();
        let sidecar = names.get(base_name(&job.paths.meta())).copied();
        for (found, path) in [
            (partial, &job.paths.partial()),
            (sidecar, &job.paths.meta()),
        ] {
            if found.is_some_and(|m| m.kind != Kind::File) {
                let message = "the partial's name is taken by something that is not a regular \
                               file, which ferry will not write through; remove it";
                return Err(FileError::refused(label, path.as_str(), message));
            }
        }
        if partial.is_some() {
            self.mark_emptied(&job.paths.dest);
        }
        job.partial = partial.map(Box::new);
        job.sidecar = sidecar.is_some();
        Ok(())
    }

    /// The partial (and sidecar) of a file found up to date: rsync removes
    /// a partial-dir file then, and ferry its own sidecar with it.
    fn note_stale(&self, dest: &str, listed: &HashMap<String, HashMap<String, Meta>>) {
        let beside = Paths::new(parent(dest), base_name(dest));
        let placed = self.paths_for(&beside).unwrap_or(beside);
        let Some(names) = listed.get(parent(&placed.partial())) else {
            return;
        };
        let found: Vec<String> = [placed.partial(), placed.meta()]
            .into_iter()
            .filter(|path| {
                names
                    .get(base_name(path))
                    .is_some_and(|m| m.kind == Kind::File)
            })
            .collect();
        if names.contains_key(base_name(&placed.partial())) {
            self.mark_emptied(dest);
        }
        if let Ok(mut stale) = self.stale.lock() {
            stale.extend(found);
        }
    }

    /// A relative partial directory (of the file at `dest`) to remove
    /// when empty, at the end.
    fn mark_emptied(&self, dest: &str) {
        if let (Spot::Under(dir), Ok(mut emptied)) = (self.spot(dest), self.emptied.lock()) {
            emptied.insert(dir);
        }
    }

    fn mark_ready(&self, dir: &str) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.insert(dir.to_string(), Arc::new(OnceCell::new_with(Some(()))));
        }
    }

    /// Makes the directory the file's partial goes in, once per directory:
    /// rsync's handle_partial_dir (mode 0700; a relative one replaces a
    /// non-directory in its way, a symlink above all, which would take the
    /// partial out of the destination).
    pub(crate) async fn prepare<D: Endpoint>(&self, dst: &D, job: &FileJob) -> Result<()> {
        let spot = self.spot(&job.paths.dest);
        let Some(dir) = spot.dir() else {
            return Ok(());
        };
        self.touched.note(dir);
        if let Spot::Temp(_) = spot {
            return Ok(());
        }
        if self.delays() {
            // rsync removes it after each delayed rename.
            self.mark_emptied(&job.paths.dest);
        }
        let cell = match self.ready.lock() {
            Ok(mut ready) => ready.entry(dir.to_string()).or_default().clone(),
            Err(_) => Arc::new(OnceCell::new()),
        };
        let relative = matches!(spot, Spot::Under(_));
        cell.get_or_try_init(|| self.make_dir(dst, dir, relative, &job.paths.dest))
            .await
            .map(drop)
    }

    async fn make_dir<D: Endpoint>(
        &self,
        dst: &D,
        dir: &str,
        relative: bool,
        dest: &str,
    ) -> Result<()> {
        let found = match relative {
            true => dst.lstat(dir).await?,
            false => dst.stat(dir).await?,
        };
        match found {
            Some(m) if m.kind == Kind::Dir => return Ok(()),
            Some(_) if relative => dst.remove_file(dir).await?,
            Some(_) => {
                let message = "--partial-dir names something that is not a directory";
                return Err(FileError::refused(dst.label(), dir, message).into());
            }
            None => {}
        }
        let made = dst.mkdir(dir, 0o700).await;
        if let Err(e) = made {
            // Made meanwhile (by another run): as good.
            let there = dst.lstat(dir).await?;
            if e.is_fatal() || !matches!(there, Some(m) if m.kind == Kind::Dir) {
                return Err(e);
            }
        }
        self.touched.note(parent(dir));
        if relative {
            self.mark_emptied(dest);
        }
        Ok(())
    }

    /// Renames the finished partial over the destination. A partial in a
    /// temp dir on another file system cannot be renamed there: it is
    /// copied beside the file first (rsync copies it over the file; ferry
    /// keeps the old one whole until the copy is complete), then renamed.
    pub(crate) async fn rename_into_place<D: Endpoint>(
        &self,
        dst: &D,
        job: &FileJob,
    ) -> Result<()> {
        let renamed = dst.rename(&job.paths.partial(), &job.paths.dest).await;
        match renamed {
            Err(e) if !e.is_fatal() && self.in_temp_dir(job) => {
                tracing::info!("{e}: copying it from the temp dir instead");
                match self.copy_across(dst, job).await {
                    Ok(()) => Ok(()),
                    Err(copy) if copy.is_fatal() => Err(copy),
                    Err(_) => Err(e),
                }
            }
            renamed => renamed,
        }
    }

    async fn copy_across<D: Endpoint>(&self, dst: &D, job: &FileJob) -> Result<()> {
        let beside = Paths::new(parent(&job.paths.dest), base_name(&job.paths.dest)).partial();
        let from = &job.paths.partial();
        let Some(meta) = dst.lstat(from).await? else {
            let message = "the finished file vanished from the temp dir";
            return Err(FileError::refused(dst.label(), from.as_str(), message).into());
        };
        let copied = async {
            super::copy::duplicate(dst, from, &beside, meta.size).await?;
            dst.set_mode(&beside, meta.mode).await?;
            dst.set_mtime(&beside, meta.mtime).await?;
            dst.rename(&beside, &job.paths.dest).await
        };
        match copied.await {
            Ok(()) => dst.remove_file(from).await,
            Err(e) => {
                if !e.is_fatal() {
                    let _ = dst.remove_file(&beside).await;
                }
                Err(e)
            }
        }
    }

    /// The end of the run's transfers: the partials of files found up to
    /// date go, then each relative partial directory this run made or took
    /// a partial from, when it is empty (rsync's rmdir; one still holding
    /// something stays).
    pub(crate) async fn finish<D: Endpoint>(&self, dst: &D) -> Result<()> {
        let stale = self
            .stale
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        for path in stale {
            ignore_failure(dst.remove_file(&path).await)?;
        }
        let emptied = self
            .emptied
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        for dir in emptied {
            let found = dst.lstat(&dir).await;
            if matches!(found, Ok(Some(m)) if m.kind == Kind::Dir) {
                ignore_failure(dst.remove_dir(&dir).await)?;
            }
        }
        Ok(())
    }
}

/// One spot directory's entries; None when it is not a directory.
async fn read_spot<D: Endpoint>(dst: &D, spot: Spot) -> (Spot, String, Result<Option<Vec<Entry>>>) {
    let dir = spot.dir().unwrap_or(".").to_string();
    let found = match &spot {
        Spot::Under(_) => dst.lstat(&dir).await,
        _ => dst.stat(&dir).await,
    };
    let entries = match found {
        Ok(Some(m)) if m.kind == Kind::Dir => dst.list(&dir).await.map(|l| Some(l.entries)),
        Ok(_) => Ok(None),
        Err(e) => Err(e),
    };
    (spot, dir, entries)
}

/// A clean-up step's result: only an error that ends the run counts.
fn ignore_failure(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if e.is_fatal() => Err(e),
        _ => Ok(()),
    }
}

fn usage<D: Endpoint>(dst: &D, dir: &str, what: &str) -> Error {
    Error::Usage(format!("{}{dir}: {what}", dst.label()))
}

/// The destination root: the destination, unless the plan writes a file or
/// symlink at that very path (a lone file given a new name), whose
/// directory it is then.
fn root_of(dest: &str, actions: &[Action]) -> String {
    let at_dest = |path: &str| normal(path) == normal(dest);
    let names_file = actions.iter().any(|a| match a {
        Action::File(job) => at_dest(&job.paths.dest),
        Action::Symlink { dest, .. } => at_dest(dest),
        _ => false,
    });
    match names_file {
        true => parent(dest).to_string(),
        false => normal(dest).to_string(),
    }
}

/// With `--perms`, the mode each destination directory ends the run with.
fn dir_modes(actions: &[Action], perms: bool) -> HashMap<String, u32> {
    if !perms {
        return HashMap::new();
    }
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dir {
                dest,
                meta: Some(meta),
                ..
            } => Some((normal(dest).to_string(), meta.mode)),
            _ => None,
        })
        .collect()
}

/// The directories where a relative partial directory cannot be: the plan
/// puts an entry of that name there.
fn crowded(staging: &Staging, actions: &[Action]) -> HashSet<String> {
    let Some(rel) = staging
        .partial_dir
        .as_deref()
        .filter(|d| !d.starts_with('/'))
    else {
        return HashSet::new();
    };
    let first = rel.split('/').next().unwrap_or(rel);
    actions
        .iter()
        .filter_map(|a| match a {
            Action::File(job) => Some(job.paths.dest.as_str()),
            Action::Symlink { dest, .. } | Action::Dir { dest, .. } => Some(dest.as_str()),
            _ => None,
        })
        .filter(|dest| base_name(dest) == first)
        .map(|dest| normal(parent(dest)).to_string())
        .collect()
}

/// A name cut to 200 bytes (at a character boundary), so that the tagged
/// partial name stays within a file system's 255.
fn short(name: &str) -> &str {
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Eight hex digits of the destination path's hash.
fn tag(dest: &str) -> String {
    let hash = blake3::hash(collapsed(dest).as_bytes());
    hash.to_hex()[..8].to_string()
}

/// Forwards everything to the run's reporter, noting the files the plan
/// finds up to date, whose partials in a partial directory rsync removes.
pub(crate) struct Noting<'a> {
    inner: &'a dyn Reporter,
    on: bool,
    current: Mutex<Vec<String>>,
}

impl<'a> Noting<'a> {
    pub(crate) fn new(inner: &'a dyn Reporter, on: bool) -> Noting<'a> {
        Noting {
            inner,
            on,
            current: Mutex::new(Vec::new()),
        }
    }

    /// The files noted so far, taken.
    pub(crate) fn take(&self) -> Vec<String> {
        self.current
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl Reporter for Noting<'_> {
    fn planned(&self, files: u64, bytes: u64) {
        self.inner.planned(files, bytes)
    }

    fn file_started(&self, path: &str, size: u64, resume_from: u64) {
        self.inner.file_started(path, size, resume_from)
    }

    fn bytes_done(&self, path: &str, bytes: u64) {
        self.inner.bytes_done(path, bytes)
    }

    fn finished(&self, item: &Item<'_>) {
        if self.on && item.outcome == Outcome::Skipped && item.kind == ItemKind::File {
            if let Ok(mut current) = self.current.lock() {
                current.push(item.path.to_string());
            }
        }
        self.inner.finished(item)
    }

    fn file_failed(&self, path: &str, error: &FileError) {
        self.inner.file_failed(path, error)
    }

    fn note(&self, message: &str) {
        self.inner.note(message)
    }

    fn mention(&self, what: crate::report::Mention, message: &str) {
        self.inner.mention(what, message)
    }

    fn warning(&self, message: &str) {
        self.inner.warning(message)
    }

    fn phase(&self, phase: crate::report::Phase) {
        self.inner.phase(phase)
    }

    fn listed(&self, entries: u64) {
        self.inner.listed(entries)
    }

    fn file_step(&self, path: &str, step: crate::report::FileStep, bytes: u64) {
        self.inner.file_step(path, step, bytes)
    }

    fn step_done(&self, path: &str, bytes: u64) {
        self.inner.step_done(path, bytes)
    }

    fn prompt_guard(&self) -> crate::report::PromptGuard {
        self.inner.prompt_guard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_as_rsync_reads_them() {
        let s = |dir: Option<&str>, delay| Staging::from_options(dir, None, delay, None);
        assert_eq!(s(None, true).partial_dir.as_deref(), Some(DELAY_DIR));
        assert_eq!(
            s(Some("./a//b/"), false).partial_dir.as_deref(),
            Some("a/b")
        );
        assert_eq!(s(Some("."), false).partial_dir, None);
        assert_eq!(s(Some("x/../y"), false).partial_dir.as_deref(), Some("y"));
        assert_eq!(s(Some("/p/"), false).partial_dir.as_deref(), Some("/p"));
        assert_eq!(
            s(Some(".pd"), false).exclude_rule().as_deref(),
            Some("-p .pd/")
        );
        assert_eq!(s(Some("/p"), false).exclude_rule(), None);
        let env = Staging::from_options(None, None, false, Some(".e".into()));
        assert_eq!(env.partial_dir.as_deref(), Some(".e"));
    }

    #[test]
    fn temp_names_differ_by_directory() {
        assert_ne!(tag("d1/x"), tag("d2/x"));
        assert_eq!(tag("d/../x"), tag("x"));
        assert_eq!(short(&"é".repeat(150)).len(), 200);
    }
}
