//! `-b`/`--backup`, `--backup-dir`, `--suffix`: the old version of each
//! destination entry a run replaces or deletes is kept, as rsync's
//! backup.c keeps it: beside it as NAME plus the suffix (`~`), or under the
//! backup directory at its path from the destination root (no suffix by
//! default). Files and symlinks get backups; directories never do, their
//! contents do.
//!
//! How, as rsync: an entry about to be replaced is hard-linked to its
//! backup name where the destination can link, so that its own name is
//! never missing, else renamed away right before its replacement is; an
//! entry being deleted is renamed. Where neither works (a backup directory
//! on another file system), a file is copied. An old backup of the same
//! name gives way to the new one.

use std::collections::{HashMap, HashSet};

use tokio::sync::Mutex;

use super::delete::remove_tree;
use super::links::unsafe_symlink;
use crate::endpoint::{base_name, join, parent, Endpoint, Kind, Meta};
use crate::error::{Error, Result};

/// The backup options (rsync's meanings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backup {
    /// `--backup-dir`: where backups go, relative to the destination root
    /// unless absolute; None: beside the entry.
    pub dir: Option<String>,
    /// `--suffix`: added to the backup's name.
    pub suffix: String,
}

impl Backup {
    /// rsync's reading of the options (options.c): `--backup-dir` implies
    /// `--backup`; the suffix is `~`, or nothing with a backup directory;
    /// it may hold no slash, and may be empty only with a backup directory
    /// (checked even without `--backup`, as rsync checks it). None when
    /// no backups are made.
    pub(crate) fn from_options(
        backup: bool,
        dir: Option<&str>,
        suffix: Option<&str>,
    ) -> Result<Option<Backup>, String> {
        let suffix = suffix
            .unwrap_or(if dir.is_some() { "" } else { "~" })
            .to_string();
        if suffix.contains('/') {
            return Err(format!("--suffix cannot contain slashes: {suffix}"));
        }
        let dir = dir.map(strip_dot_slashes);
        // `--backup-dir=.` is the destination itself: backups beside.
        let beside = dir == Some("");
        if (dir.is_none() || beside) && suffix.is_empty() {
            return Err(match beside {
                true => "--suffix cannot be empty when --backup-dir is the same as the dest dir",
                false => "--suffix cannot be empty without a --backup-dir",
            }
            .into());
        }
        let on = backup || dir.is_some();
        let dir = dir.filter(|d| !d.is_empty()).map(str::to_string);
        Ok(on.then_some(Backup { dir, suffix }))
    }

    /// The rule rsync adds with `--delete` (and without
    /// `--delete-excluded`) when backups sit beside their files: `--delete`
    /// spares them.
    pub(crate) fn protect_rule(&self) -> Option<String> {
        self.dir.is_none().then(|| format!("P *{}", self.suffix))
    }

    /// rsync implies `--omit-dir-times` when backups sit beside their
    /// files (options.c), and so does ferry.
    pub(crate) fn omits_dir_times(&self) -> bool {
        self.dir.is_none()
    }
}

/// rsync's clean-up of `--backup-dir`: leading `./` pairs go, and `.`
/// alone is the destination itself ("").
fn strip_dot_slashes(mut dir: &str) -> &str {
    while let Some(rest) = dir.strip_prefix("./") {
        dir = rest;
    }
    match dir {
        "." => "",
        dir => dir,
    }
}

/// A directory path without its trailing slashes ("/" stays).
pub(crate) fn normal(dir: &str) -> &str {
    match dir.trim_end_matches('/') {
        "" if dir.starts_with('/') => "/",
        "" => ".",
        trimmed => trimmed,
    }
}

/// `path`, a path of the destination endpoint, from the destination root
/// `root` (rsync's receiver works in that directory).
pub(crate) fn from_root<'p>(root: &str, path: &'p str) -> &'p str {
    match root {
        "." => path.trim_start_matches("./"),
        "/" => path.trim_start_matches('/'),
        root => path
            .strip_prefix(root)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or_else(|| base_name(path)),
    }
}

/// A path with its `..` steps taken lexically ("d/../bk" is "bk"): for
/// comparing where a run wrote with a directory, never for the writing.
pub(crate) fn collapsed(path: &str) -> String {
    match crate::filter::place::clean(path) {
        cleaned if cleaned.is_empty() => ".".into(),
        cleaned => cleaned,
    }
}

/// The directories outside the entries' own where a run made or wrote
/// something (a backup directory, a temp dir): the lock's directory keeps
/// its time only when the run touched nothing there.
#[derive(Debug, Default)]
pub(crate) struct Touched(std::sync::Mutex<HashSet<String>>);

impl Touched {
    pub(crate) fn note(&self, dir: &str) {
        if let Ok(mut dirs) = self.0.lock() {
            dirs.insert(collapsed(dir));
        }
    }

    pub(crate) fn has(&self, dir: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|dirs| dirs.contains(&collapsed(dir)))
    }
}

/// What became of the entry a backup was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Renamed to its backup name: gone from its own.
    Moved,
    /// Linked or copied: still there too.
    Duplicated,
    /// No backup (a directory, or an unsafe symlink under `--safe-links`).
    Not,
}

/// How the backup of an entry is made first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// A hard link: for an entry about to be replaced, whose name then
    /// stays until the replacement is renamed over it.
    Link,
    /// A rename: for an entry being deleted.
    Rename,
}

/// The backups of one run.
pub(crate) struct Backups {
    suffix: String,
    /// The backup directory as a path of the destination endpoint.
    dir: Option<String>,
    /// The destination root.
    root: String,
    /// The mode each destination directory has by the end of the run
    /// (with `--perms`: its source's). A backup directory made for it takes
    /// that mode, as rsync's takes the one the directory has by then.
    modes: HashMap<String, u32>,
    times: bool,
    safe_links: bool,
    /// Backup directories known to exist; the lock also makes their
    /// creation one at a time.
    made: Mutex<HashSet<String>>,
    /// The backups this run made: `--delete` (planned before they were)
    /// leaves them, as rsync's deletion in each directory before its
    /// transfers never meets them.
    kept: std::sync::Mutex<HashSet<String>>,
    /// rsync's `backed up NAME to BACKUP` lines (`--info=backup`), told
    /// when the run's actions are done.
    lines: std::sync::Mutex<Vec<String>>,
    pub touched: Touched,
}

impl Backups {
    /// `modes` is keyed by destination directory without trailing slash.
    pub(crate) fn new(
        policy: &Backup,
        root: &str,
        modes: HashMap<String, u32>,
        times: bool,
        safe_links: bool,
    ) -> Backups {
        let root = normal(root).to_string();
        let dir = policy.dir.as_deref().map(|dir| match dir.starts_with('/') {
            true => normal(dir).to_string(),
            false => normal(&join(&root, dir)).to_string(),
        });
        Backups {
            suffix: policy.suffix.clone(),
            dir,
            root,
            modes,
            times,
            safe_links,
            made: Mutex::new(HashSet::new()),
            kept: std::sync::Mutex::new(HashSet::new()),
            lines: std::sync::Mutex::new(Vec::new()),
            touched: Touched::default(),
        }
    }

    /// The backup directory, when backups go to one.
    pub(crate) fn dir(&self) -> Option<&str> {
        self.dir.as_deref()
    }

    /// Where the backup of the destination entry `path` goes.
    pub(crate) fn name_of(&self, path: &str) -> String {
        match &self.dir {
            Some(dir) => format!("{}{}", join(dir, from_root(&self.root, path)), self.suffix),
            None => format!("{path}{}", self.suffix),
        }
    }

    /// Notes a backup of `path` about to be made at `to`.
    fn note_kept(&self, path: &str, to: &str) {
        self.touched.note(parent(to));
        if let Ok(mut kept) = self.kept.lock() {
            kept.insert(collapsed(to));
        }
        if let Ok(mut lines) = self.lines.lock() {
            let shown = |p| from_root(&self.root, p).to_string();
            let to = match self.dir.as_deref() {
                // A backup directory outside the destination: as named.
                Some(dir)
                    if !collapsed(to).starts_with(&collapsed(&self.root))
                        && dir.starts_with('/') =>
                {
                    to.to_string()
                }
                _ => shown(to),
            };
            lines.push(format!("backed up {} to {to}", shown(path)));
        }
    }

    /// The `backed up` lines since the last call.
    pub(crate) fn take_lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Whether this run made the backup at `path`.
    pub(crate) fn made_now(&self, path: &str) -> bool {
        self.kept
            .lock()
            .is_ok_and(|kept| kept.contains(&collapsed(path)))
    }

    /// Whether `path` is itself a backup beside its file (ends with the
    /// suffix): rsync deletes such a file without backing it up.
    pub(crate) fn is_backup_name(&self, path: &str) -> bool {
        self.dir.is_none()
            && base_name(path).len() > self.suffix.len()
            && base_name(path).ends_with(&self.suffix)
    }

    /// Whether `--delete` must leave `path` alone: the backup directory,
    /// when it is inside the destination (rsync would delete it into
    /// itself; ferry keeps it: docs/RSYNC.md).
    pub(crate) fn protects(&self, path: &str) -> bool {
        self.dir.as_deref() == Some(normal(path))
    }

    /// Whether deleting `path` leaves its backup in the same directory,
    /// which keeps that directory from being removed.
    pub(crate) async fn stays_beside<D: Endpoint>(
        &self,
        dst: &D,
        path: &str,
        meta: &Meta,
    ) -> Result<bool> {
        if self.dir.is_some() || meta.kind == Kind::Dir || self.is_backup_name(path) {
            return Ok(false);
        }
        Ok(!self.skips_unsafe_link(dst, path, meta).await?)
    }

    /// Keeps the old version of the destination entry `path` (`meta`
    /// describes it) under its backup name.
    pub(crate) async fn keep<D: Endpoint>(
        &self,
        dst: &D,
        path: &str,
        meta: &Meta,
        how: How,
    ) -> Result<Kept> {
        if meta.kind == Kind::Dir || self.skips_unsafe_link(dst, path, meta).await? {
            return Ok(Kept::Not);
        }
        let to = self.name_of(path);
        self.make_dirs_for(dst, path).await?;
        self.note_kept(path, &to);
        if how == How::Link && self.link(dst, path, &to).await? {
            tracing::info!("backed up {path} to {to} (linked)");
            return Ok(Kept::Duplicated);
        }
        let mut renamed = dst.rename(path, &to).await;
        if renamed.as_ref().is_err_and(|e| !e.is_fatal()) && self.clear(dst, &to).await? {
            renamed = dst.rename(path, &to).await;
        }
        match renamed {
            Ok(()) => {
                tracing::info!("backed up {path} to {to}");
                return Ok(Kept::Moved);
            }
            Err(e) if e.is_fatal() || !matches!(meta.kind, Kind::File | Kind::Symlink) => {
                return Err(e)
            }
            // Another file system: copied, as rsync copies.
            Err(e) => tracing::info!("{e}: copying {path} to {to} instead"),
        }
        match meta.kind {
            Kind::Symlink => self.copy_link(dst, path, &to, meta).await?,
            _ => self.copy(dst, path, &to, meta).await?,
        }
        Ok(Kept::Duplicated)
    }

    /// A symlink made again at `to` (rsync's do_symlink in backup.c), with
    /// its time where this side sets a link's own.
    async fn copy_link<D: Endpoint>(
        &self,
        dst: &D,
        from: &str,
        to: &str,
        meta: &Meta,
    ) -> Result<()> {
        let target = dst.read_link(from).await?;
        self.clear(dst, to).await?;
        dst.symlink(&target, to).await?;
        if self.times && dst.features().link_times {
            dst.set_mtime(to, meta.mtime).await?;
        }
        Ok(())
    }

    /// The backup of a file about to be rewritten in place (`--inplace`):
    /// always a copy, since the file itself is about to change.
    pub(crate) async fn keep_copy<D: Endpoint>(
        &self,
        dst: &D,
        path: &str,
        meta: &Meta,
    ) -> Result<()> {
        let to = self.name_of(path);
        self.make_dirs_for(dst, path).await?;
        self.note_kept(path, &to);
        self.clear(dst, &to).await?;
        self.copy(dst, path, &to, meta).await
    }

    /// A copy of the file `from` at `to` with its mode, and its time with
    /// `--times` (rsync's set_file_attrs on the copy).
    async fn copy<D: Endpoint>(&self, dst: &D, from: &str, to: &str, meta: &Meta) -> Result<()> {
        super::copy::duplicate(dst, from, to, meta.size).await?;
        dst.set_mode(to, meta.mode).await?;
        if self.times {
            dst.set_mtime(to, meta.mtime).await?;
        }
        Ok(())
    }

    /// `to` as a second name of `from`; false where that cannot be (no
    /// links on this side, another file system): a rename or copy then.
    async fn link<D: Endpoint>(&self, dst: &D, from: &str, to: &str) -> Result<bool> {
        if !dst.features().hard_links {
            return Ok(false);
        }
        let failed = match dst.hard_link(from, to).await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => e,
        };
        // An old backup in the way gives way, as in rsync.
        if !self.clear(dst, to).await? {
            tracing::debug!("{failed}: renaming instead");
            return Ok(false);
        }
        match dst.hard_link(from, to).await {
            Ok(()) => Ok(true),
            Err(e) if !e.is_fatal() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes whatever has the name `to` (a directory with its contents);
    /// whether something was there.
    async fn clear<D: Endpoint>(&self, dst: &D, to: &str) -> Result<bool> {
        match dst.lstat(to).await? {
            None => Ok(false),
            Some(m) if m.kind == Kind::Dir => remove_tree(dst, to).await.map(|()| true),
            Some(_) => dst.remove_file(to).await.map(|()| true),
        }
    }

    /// rsync keeps no backup of a symlink `--safe-links` calls unsafe.
    async fn skips_unsafe_link<D: Endpoint>(
        &self,
        dst: &D,
        path: &str,
        meta: &Meta,
    ) -> Result<bool> {
        if !self.safe_links || meta.kind != Kind::Symlink {
            return Ok(false);
        }
        let target = dst.read_link(path).await?;
        Ok(unsafe_symlink(&target, from_root(&self.root, path)))
    }

    /// The directories the backup of `path` goes in, made as needed: the
    /// backup directory with its parents, then one for each directory of
    /// `path` below the root, with that directory's mode (something else
    /// in the way of one is removed, as rsync removes it).
    async fn make_dirs_for<D: Endpoint>(&self, dst: &D, path: &str) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut made = self.made.lock().await;
        if !made.contains(dir) {
            make_path(dst, dir, &self.touched).await?;
            made.insert(dir.clone());
        }
        let rel_dir = match parent(from_root(&self.root, path)) {
            "." => return Ok(()),
            rel_dir => rel_dir,
        };
        let mut at = String::new();
        for part in rel_dir.split('/').filter(|p| !p.is_empty()) {
            at = join(&at, part);
            let backup_dir = join(dir, &at);
            if made.contains(&backup_dir) {
                continue;
            }
            self.make_one(dst, &backup_dir, &at).await?;
            made.insert(backup_dir);
        }
        Ok(())
    }

    /// One directory of a backup path (`rel` from the backup directory).
    async fn make_one<D: Endpoint>(&self, dst: &D, backup_dir: &str, rel: &str) -> Result<()> {
        match dst.lstat(backup_dir).await? {
            Some(m) if m.kind == Kind::Dir => return Ok(()),
            Some(_) => self.clear(dst, backup_dir).await.map(drop)?,
            None => {}
        }
        dst.mkdir(backup_dir, 0o777).await?;
        self.touched.note(parent(backup_dir));
        let original = join(&self.root, rel);
        let mode = match self.modes.get(normal(&original)) {
            Some(mode) => Some(*mode),
            None => dst.lstat(&original).await?.map(|m| m.mode),
        };
        match mode {
            Some(mode) => dst.set_mode(backup_dir, mode).await,
            None => Ok(()),
        }
    }
}

/// `mkdir -p` of the backup directory, under the destination side's umask
/// as rsync's make_path; one that exists and is not a directory is an
/// error (rsync: "The backup-dir is not a directory").
async fn make_path<D: Endpoint>(dst: &D, dir: &str, touched: &Touched) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        match dst.stat(at).await? {
            Some(m) if m.kind == Kind::Dir => break,
            Some(_) => return Err(not_a_directory(dst, at)),
            None => missing.push(at),
        }
        let up = parent(at);
        if up == at || up == "." {
            break;
        }
        at = up;
    }
    for dir in missing.into_iter().rev() {
        touched.note(parent(dir));
        let made = dst.mkdir(dir, 0o777).await;
        // Made meanwhile (another run): as good.
        if made.as_ref().is_err_and(|e| !e.is_fatal()) && !is_dir(dst, dir).await? {
            made?;
        }
    }
    Ok(())
}

/// Whether `path` is a directory (following a symlink).
async fn is_dir<D: Endpoint>(dst: &D, path: &str) -> Result<bool> {
    Ok(matches!(dst.stat(path).await?, Some(m) if m.kind == Kind::Dir))
}

pub(crate) fn not_a_directory<D: Endpoint>(dst: &D, dir: &str) -> Error {
    Error::Usage(format!(
        "{}{dir}: the backup-dir is not a directory",
        dst.label()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_as_rsync_reads_them() {
        let b = |backup, dir, suffix| Backup::from_options(backup, dir, suffix);
        assert_eq!(b(false, None, None), Ok(None));
        let tilde = Backup {
            dir: None,
            suffix: "~".into(),
        };
        assert_eq!(b(true, None, None), Ok(Some(tilde)));
        // --backup-dir implies --backup, with no suffix.
        let into = Backup {
            dir: Some("bk".into()),
            suffix: String::new(),
        };
        assert_eq!(b(false, Some("./bk"), None), Ok(Some(into)));
        assert!(b(false, None, Some("")).is_err(), "empty suffix, no dir");
        assert!(b(true, Some("."), None).is_err(), "the dest dir, no suffix");
        assert!(b(true, None, Some("a/b")).is_err(), "slash in the suffix");
        let beside = b(true, Some("."), Some(".old")).unwrap().unwrap();
        assert_eq!(beside.dir, None);
        assert_eq!(beside.protect_rule().as_deref(), Some("P *.old"));
    }

    #[test]
    fn names_from_the_root() {
        let policy = |dir: Option<&str>, suffix: &str| Backup {
            dir: dir.map(str::to_string),
            suffix: suffix.into(),
        };
        let beside = Backups::new(&policy(None, "~"), "dst/", HashMap::new(), true, false);
        assert_eq!(beside.name_of("dst/a/f"), "dst/a/f~");
        assert!(beside.is_backup_name("dst/a/f~"));
        assert!(!beside.is_backup_name("dst/~"));
        let into = Backups::new(
            &policy(Some("../bk"), ""),
            "dst",
            HashMap::new(),
            true,
            false,
        );
        assert_eq!(into.name_of("dst/a/f"), "dst/../bk/a/f");
        assert!(!into.is_backup_name("dst/a/f~"));
        let abs = Backups::new(&policy(Some("/b/"), ".x"), ".", HashMap::new(), true, false);
        assert_eq!(abs.name_of("a/f"), "/b/a/f.x");
        let inside = Backups::new(&policy(Some("bk"), ""), "d", HashMap::new(), true, false);
        assert!(inside.protects("d/bk/") && !inside.protects("d/bkx"));
        assert_eq!(from_root("/", "/etc/x"), "etc/x");
        assert_eq!(collapsed("/w/dst/../bk"), "/w/bk");
        assert_eq!(collapsed("d/.."), ".");
        assert_eq!(collapsed("../x/../y"), "../y");
    }
}
