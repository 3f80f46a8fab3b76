//! `--list-only` (and rsync's listing when no destination is given): the
//! source's entries, as the transfer would see them, and nothing copied.
//!
//! The walk is the source's alone, with the transfer's filter rules (the
//! per-directory files too, read through the planner) and rsync's order:
//! the top-level entries of all the sources merged into one directory
//! (`.` first when a source is named with its trailing slash), and in each
//! directory its other entries sorted by name, then its subdirectories
//! sorted by name, each followed by what it holds. Without `-r`, a
//! directory named with its trailing slash shows its entries and nothing
//! below them; one named without shows itself.

use super::partial::is_working_file;
use super::plan::{Planner, SourceArg, LIST_AHEAD};
use super::{Options, Stats};
use crate::endpoint::{base_name, join, parent, Endpoint, Entry, Kind, Meta};
use crate::error::{Error, FileError, Result};
use crate::filter::{Scope, Side};
use crate::report::{Reporter, Silent};

/// One entry of the listing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listed<'a> {
    /// Its path in the transfer: `.`, `name`, `dir/name`.
    pub name: &'a str,
    pub meta: Meta,
    /// Where a symlink points, read when links are kept (`-l`).
    pub target: Option<&'a str>,
}

/// A top-level entry: a source named without its trailing slash, or an
/// entry of one named with it.
struct Top {
    name: String,
    path: String,
    meta: Meta,
    /// Its path from its transfer root, and the rules of its directory.
    rel: String,
    scope: Scope,
}

struct Lister<'a, S> {
    src: &'a S,
    opts: &'a Options,
    reporter: &'a dyn Reporter,
    /// The transfer's planner, for the rules it reads in each directory.
    rules: Planner<'a, S, S>,
    show: &'a mut dyn FnMut(Listed<'_>),
    /// Sources that are not there, among the rules' errors.
    missing: u64,
}

/// Lists `sources` on `src` into `show`. Entries that cannot be read are
/// reported and counted in `stats`; the listing goes on.
pub(crate) async fn list_sources<S: Endpoint>(
    src: &S,
    sources: &[String],
    opts: &Options,
    reporter: &dyn Reporter,
    show: &mut dyn FnMut(Listed<'_>),
    stats: &mut Stats,
) -> Result<()> {
    let mut lister = Lister {
        src,
        opts,
        reporter,
        rules: Planner::new(src, src, opts, &Silent),
        show,
        missing: 0,
    };
    let result = lister.list(sources).await;
    for error in lister.rules.errors.drain(..) {
        reporter.file_failed("", &error);
        stats.record_failure();
    }
    // A listing's missing source is rsync's file-selection error; in a
    // copy, the planner's, it is one file that failed.
    stats.selection_failures += lister.missing;
    result
}

impl<S: Endpoint> Lister<'_, S> {
    async fn list(&mut self, sources: &[String]) -> Result<()> {
        let mut root: Option<Meta> = None;
        let mut top = Vec::new();
        for source in sources.iter().map(|s| SourceArg::new(s)) {
            self.gather(&source, &mut root, &mut top).await?;
        }
        if let Some(meta) = root {
            self.emit(".", meta, None).await?;
        }
        sort_entries(&mut top, |t| (&t.name, t.meta.kind));
        top.dedup_by(|a, b| a.name == b.name);
        let recursive = self.opts.recursive;
        let walked = |t: &Top| t.meta.kind == Kind::Dir && recursive;
        let dirs = top.iter().filter(|t| walked(t)).map(|t| t.path.clone());
        let mut ahead = Ahead::start(self.src, dirs.collect());
        for entry in top {
            self.emit(&entry.name, entry.meta, Some(&entry.path))
                .await?;
            if walked(&entry) {
                ahead.walked(self.src);
                Box::pin(self.walk(&entry.path, &entry.name, &entry.rel, &entry.scope)).await?;
            }
        }
        Ok(())
    }

    /// One source argument's top-level entries.
    async fn gather(
        &mut self,
        source: &SourceArg,
        root: &mut Option<Meta>,
        top: &mut Vec<Top>,
    ) -> Result<()> {
        let path = match source.path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let found = match source.contents_only {
            true => self.src.stat(path).await?,
            false => self.src.lstat(path).await?,
        };
        let Some(meta) = found else {
            let missing =
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory");
            self.rules
                .errors
                .push(FileError::io(self.src.label(), &source.path, missing));
            self.missing += 1;
            return Ok(());
        };
        if !(source.contents_only && meta.kind == Kind::Dir) {
            let scope = self.rules.rules_at_root(parent(path));
            let name = base_name(path);
            if !scope.excluded(name, meta.kind == Kind::Dir, Side::Sender) {
                top.push(Top {
                    name: name.to_string(),
                    path: path.to_string(),
                    meta,
                    rel: name.to_string(),
                    scope,
                });
            }
            return Ok(());
        }
        root.get_or_insert(meta);
        let outer = self.rules.rules_at_root(path);
        let Some((entries, scope)) = self.read_dir(path, "", &outer).await? else {
            return Ok(());
        };
        top.extend(entries.into_iter().map(|e| Top {
            path: join(path, &e.name),
            rel: e.name.clone(),
            name: e.name,
            meta: e.meta,
            scope: scope.clone(),
        }));
        Ok(())
    }

    /// Everything below the directory `path`, listed as `name/...`.
    async fn walk(&mut self, path: &str, name: &str, rel: &str, outer: &Scope) -> Result<()> {
        let Some((mut entries, scope)) = self.read_dir(path, rel, outer).await? else {
            return Ok(());
        };
        sort_entries(&mut entries, |e| (&e.name, e.meta.kind));
        let dirs = entries.iter().filter(|e| e.meta.kind == Kind::Dir);
        let mut ahead = Ahead::start(self.src, dirs.map(|e| join(path, &e.name)).collect());
        for entry in entries {
            let (inner_name, inner_path) = (join(name, &entry.name), join(path, &entry.name));
            self.emit(&inner_name, entry.meta, Some(&inner_path))
                .await?;
            if entry.meta.kind == Kind::Dir {
                ahead.walked(self.src);
                let inner_rel = join(rel, &entry.name);
                Box::pin(self.walk(&inner_path, &inner_name, &inner_rel, &scope)).await?;
            }
        }
        Ok(())
    }

    /// The entries of a directory the rules let through, and the rules in
    /// force inside it; None when it could not be read (the error counted).
    async fn read_dir(
        &mut self,
        path: &str,
        rel: &str,
        outer: &Scope,
    ) -> Result<Option<(Vec<Entry>, Scope)>> {
        let entries = match self.src.list(path).await {
            Ok(listing) => {
                let unnamed = crate::engine::unnamed_errors(self.src, path, &listing);
                self.rules.errors.extend(unnamed);
                listing.entries
            }
            Err(Error::File(e)) => {
                self.rules.errors.push(e);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some(scope) = self.rules.rules_inside(path, rel, outer, &entries).await? else {
            return Ok(None);
        };
        let kept = entries
            .into_iter()
            .filter(|e| !is_working_file(&e.name))
            .filter(|e| {
                !scope.excluded(&join(rel, &e.name), e.meta.kind == Kind::Dir, Side::Sender)
            })
            .collect();
        Ok(Some((kept, scope)))
    }

    /// Shows one entry; a symlink's target is read when links are kept.
    /// Devices, sockets and fifos are left out, as they are not copied.
    async fn emit(&mut self, name: &str, meta: Meta, path: Option<&str>) -> Result<()> {
        let target = match (meta.kind, path) {
            (Kind::Other | Kind::Node(_), _) => return Ok(()),
            (Kind::Symlink, Some(path)) if self.opts.links => {
                match self.src.read_link(path).await {
                    Ok(target) => Some(target),
                    Err(Error::File(e)) => {
                        self.reporter.file_failed("", &e);
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        (self.show)(Listed {
            name,
            meta,
            target: target.as_deref(),
        });
        Ok(())
    }
}

/// The directories one listing shows, listed `LIST_AHEAD` ahead of the walk
/// in the background where the endpoint can: the walk never waits a round
/// trip per directory. Each is one the walk takes (the rules left out the
/// others already).
struct Ahead {
    dirs: Vec<String>,
    walked: usize,
}

impl Ahead {
    fn start<S: Endpoint>(src: &S, dirs: Vec<String>) -> Ahead {
        let first: Vec<&str> = dirs.iter().take(LIST_AHEAD).map(String::as_str).collect();
        src.list_soon(&first);
        Ahead { dirs, walked: 0 }
    }

    /// One more taken by the walk: the next beyond the window is listed.
    fn walked<S: Endpoint>(&mut self, src: &S) {
        self.walked += 1;
        if let Some(next) = self.dirs.get(self.walked + LIST_AHEAD - 1) {
            src.list_soon(&[next]);
        }
    }
}

/// rsync's order within a directory: everything but directories by name,
/// then the directories by name (byte order, as rsync's `f_name_cmp`).
fn sort_entries<T>(entries: &mut [T], key: impl Fn(&T) -> (&String, Kind)) {
    entries.sort_by(|a, b| {
        let ((name_a, kind_a), (name_b, kind_b)) = (key(a), key(b));
        (kind_a == Kind::Dir, name_a.as_bytes()).cmp(&(kind_b == Kind::Dir, name_b.as_bytes()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::LocalFs;

    fn tree(root: &std::path::Path) {
        for dir in ["a/b/c", "a/z", "m"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        }
        for file in ["a/f", "a/b/g", "zz", "a/b/c/h", "a/0", "B", "a.x"] {
            std::fs::write(root.join(file), b"x").expect("write");
        }
        std::os::unix::fs::symlink("zz", root.join("lnk")).expect("symlink");
    }

    async fn names(sources: &[String], opts: &Options) -> Vec<String> {
        let mut names = Vec::new();
        let mut show = |l: Listed<'_>| {
            let target = l.target.map(|t| format!(" -> {t}")).unwrap_or_default();
            names.push(format!("{}{target}", l.name));
        };
        let mut stats = Stats::default();
        list_sources(
            &LocalFs::default(),
            sources,
            opts,
            &Silent,
            &mut show,
            &mut stats,
        )
        .await
        .expect("lists");
        names
    }

    /// The orders `rsync --list-only` printed for the same trees.
    #[tokio::test]
    async fn lists_in_rsyncs_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("t");
        tree(&t);
        let recursive = Options {
            recursive: true,
            links: true,
            ..Options::default()
        };
        let src = |rel: &str| format!("{}{rel}", t.display());
        let got = names(&[src("/")], &recursive).await;
        assert_eq!(
            got,
            [
                ".",
                "B",
                "a.x",
                "lnk -> zz",
                "zz",
                "a",
                "a/0",
                "a/f",
                "a/b",
                "a/b/g",
                "a/b/c",
                "a/b/c/h",
                "a/z",
                "m"
            ]
        );
        let flat = names(&[src("/")], &Options::default()).await;
        assert_eq!(flat, [".", "B", "a.x", "lnk", "zz", "a", "m"]);
        assert_eq!(names(&[src("")], &Options::default()).await, ["t"]);
        let merged = names(&[src("/m"), src("/a/"), src("/zz")], &recursive).await;
        assert_eq!(
            merged,
            [".", "0", "f", "zz", "b", "b/g", "b/c", "b/c/h", "m", "z"]
        );
    }
}
