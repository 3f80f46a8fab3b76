//! Errors grouped by their cause, one line each (issue 18): a destination
//! directory that cannot be made, or in which nothing can be created, is
//! reported once and what the run would put there is skipped without a
//! line each, as rsync's "Skipping any contents from this failed
//! directory"; a full destination, or a destination directory that cannot
//! be made, stops the run after its first error, as rsync's receiver exits
//! (every other file would meet the same). Errors name the user's paths:
//! one met on a working name (`.NAME.ferry-partial`, the temporary name of
//! a link) names the entry it was for.
//!
//! The engine asks [`Blocked::covers`] before it starts an action, and
//! hands every failure of an action through [`Blocked::failed`] (or, for a
//! directory it makes, [`Blocked::dir_failed`]), which says whether it is
//! reported. Everything skipped still counts as failed (exit 23). The
//! directory's own times and mode, refused for the same reason, are not a
//! line of their own either.

use std::collections::HashSet;
use std::sync::Mutex;

use super::backup::normal;
use crate::endpoint::parent;
use crate::error::{Cause, DirFailure, Error, FileError, Host, Problem, Result};

/// What became of one failure.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Report it (the error as shown).
    Report(FileError),
    /// Its cause was reported already: count it, say nothing.
    Quiet,
    /// It stops the run: [`Blocked::stop`] says why, once the actions in
    /// flight are done.
    Stop,
}

/// The destination's directories that failed, and what stops the run.
#[derive(Debug, Default)]
pub(crate) struct Blocked {
    /// The destination side: errors on the other side are the source's,
    /// which say nothing of the destination's directories.
    host: Host,
    /// The destination directory the user named (its parents too, with
    /// `--mkpath`): failing to make it stops the run.
    root: String,
    failed: Mutex<Failed>,
}

#[derive(Debug, Default)]
struct Failed {
    /// Directories not made: nothing below them is tried.
    not_made: HashSet<String>,
    /// Directories nothing can be created in: their entries are not tried.
    unwritable: HashSet<String>,
    /// What stops the run, once met.
    stop: Option<FileError>,
}

impl Blocked {
    /// For a run into `root` on `host`.
    pub(crate) fn new(host: &Host, root: &str) -> Blocked {
        Blocked {
            host: host.clone(),
            root: normal(root).to_string(),
            failed: Mutex::default(),
        }
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Failed> {
        // A panic elsewhere cannot leave these sets half-changed.
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an action on `dest` is not to be tried: the run stops, or a
    /// directory it would go in failed.
    pub(crate) fn covers(&self, dest: &str) -> bool {
        let failed = self.failed();
        failed.stop.is_some() || failed.covers(normal(dest))
    }

    /// Whether the run stops.
    pub(crate) fn stopping(&self) -> bool {
        self.failed().stop.is_some()
    }

    /// What stops the run, if anything does (taken).
    pub(crate) fn stop(&self) -> Option<FileError> {
        self.failed().stop.take()
    }

    /// The run's end when something stops it: the error that did.
    pub(crate) fn check(&self) -> Result<()> {
        match self.stop() {
            Some(e) => Err(Error::Stop(e)),
            None => Ok(()),
        }
    }

    /// Whether `path` is not to be made or touched (as [`Blocked::covers`]),
    /// noted as not made if so: what would go below it is skipped too.
    pub(crate) fn skips(&self, path: &str) -> bool {
        let path = normal(path);
        let mut failed = self.failed();
        let covered = failed.stop.is_some() || failed.covers(path);
        if covered {
            failed.not_made.insert(path.to_string());
        }
        covered
    }

    /// The failure `e` of the action on `dest` (not the making of a
    /// directory): a full destination stops the run; a working name in a
    /// directory where nothing can be created blames the directory; the
    /// rest names `dest`.
    pub(crate) fn failed_at(&self, dest: &str, e: FileError) -> Verdict {
        let dest = normal(dest);
        let mut failed = self.failed();
        if failed.stop.is_some() || failed.covers(dest) {
            return Verdict::Quiet;
        }
        if e.host != self.host {
            return Verdict::Report(e);
        }
        // A directory reported as refusing new entries refuses its own
        // times and mode for the same reason (its owner, a read-only
        // mount): one cause, one line.
        let same_refusal = matches!(e.problem(), Problem::Denied | Problem::ReadOnly);
        if same_refusal && failed.unwritable.contains(dest) {
            return Verdict::Quiet;
        }
        if matches!(e.cause, Cause::NoSpace { .. }) || e.problem() == Problem::NoSpace {
            failed.stop = Some(named(e, dest));
            return Verdict::Stop;
        }
        let dir = parent(dest);
        let on_working_name = normal(&e.path) != dest && parent(&e.path) == dir;
        let creating = matches!(
            e.cause,
            Cause::Dir {
                failure: DirFailure::NotWritable,
                ..
            }
        );
        let blames_dir = match e.problem() {
            Problem::Denied | Problem::ReadOnly | Problem::NotFound => creating || on_working_name,
            // Tagged where a create was refused ([`crate::endpoint::create_in`]).
            Problem::Failure => creating,
            _ => false,
        };
        match blames_dir {
            true => {
                failed.unwritable.insert(dir.to_string());
                Verdict::Report(e.into_dir(dir, DirFailure::NotWritable))
            }
            false => Verdict::Report(named(e, dest)),
        }
    }

    /// Making the directory `dir` failed with `e`: the destination itself
    /// (or, with `--mkpath`, a parent of it) stops the run, as rsync's
    /// receiver exits; one whose parent refuses new entries blames the
    /// parent; any other is reported as not made. Nothing below it is tried.
    pub(crate) fn dir_failed(&self, dir: &str, e: FileError) -> Verdict {
        let dir = normal(dir);
        let mut failed = self.failed();
        let covered = failed.stop.is_some() || failed.covers(dir);
        failed.not_made.insert(dir.to_string());
        if covered {
            return Verdict::Quiet;
        }
        if e.host != self.host {
            return Verdict::Report(e);
        }
        let holds_root = self.root == dir || self.root.starts_with(&format!("{dir}/"));
        if holds_root || e.problem() == Problem::NoSpace {
            let failure = match e.problem() {
                Problem::NotFound => DirFailure::NoParent,
                _ => DirFailure::Destination,
            };
            failed.stop = Some(e.into_dir(dir, failure));
            return Verdict::Stop;
        }
        match e.problem() {
            Problem::Denied | Problem::ReadOnly | Problem::Failure => {
                let above = parent(dir);
                failed.unwritable.insert(above.to_string());
                Verdict::Report(e.into_dir(above, DirFailure::NotWritable))
            }
            _ => Verdict::Report(e.into_dir(dir, DirFailure::NotMade)),
        }
    }
}

impl Failed {
    /// Whether `path` is a directory not made, or below one, or right in a
    /// directory nothing can be created in.
    fn covers(&self, path: &str) -> bool {
        if self.unwritable.contains(parent(path)) {
            return true;
        }
        let mut at = path;
        loop {
            if self.not_made.contains(at) {
                return true;
            }
            let up = parent(at);
            if up == at || up == "." || up == "/" {
                return self.not_made.contains(up);
            }
            at = up;
        }
    }
}

/// The error named by `dest`, the entry the user knows, when it was met on
/// a working name beside it.
fn named(mut e: FileError, dest: &str) -> FileError {
    if normal(&e.path) != dest && parent(&e.path) == parent(dest) {
        e.path = dest.to_string();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_error(path: &str, errno: i32) -> FileError {
        FileError::io(&Host::Local, path, io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn a_directory_nothing_can_be_created_in_is_reported_once() {
        let blocked = Blocked::new(&Host::Local, "/d");
        let first = blocked.failed_at("/d/ro/a", io_error("/d/ro/.a.ferry-partial", libc::EACCES));
        let Verdict::Report(shown) = first else {
            panic!("not reported: {first:?}");
        };
        assert_eq!(shown.path, "/d/ro");
        assert!(
            shown.to_string().contains("skipping its contents"),
            "{shown}"
        );
        assert!(blocked.covers("/d/ro/b"));
        assert!(
            !blocked.covers("/d/ro/sub/c"),
            "an existing subdirectory may be writable"
        );
        let second = blocked.failed_at("/d/ro/b", io_error("/d/ro/.b.ferry-partial", libc::EACCES));
        assert!(matches!(second, Verdict::Quiet));
        let times = blocked.failed_at("/d/ro", io_error("/d/ro", libc::EPERM));
        assert!(matches!(times, Verdict::Quiet), "its times: the same cause");
    }

    #[test]
    fn a_directory_not_made_covers_everything_below_it() {
        let blocked = Blocked::new(&Host::Local, "/d");
        let made = blocked.dir_failed("/d/x", io_error("/d/x", libc::EMLINK));
        assert!(matches!(made, Verdict::Report(_)), "{made:?}");
        assert!(blocked.covers("/d/x/y/z"));
        assert!(blocked.covers("/d/x"));
        assert!(!blocked.covers("/d/xy"));
        assert!(matches!(
            blocked.dir_failed("/d/x/y", io_error("/d/x/y", libc::ENOENT)),
            Verdict::Quiet
        ));
    }

    #[test]
    fn a_subdirectory_refused_blames_its_parent() {
        let blocked = Blocked::new(&Host::Local, "/d/");
        let Verdict::Report(shown) = blocked.dir_failed("/d/sub", io_error("/d/sub", libc::EACCES))
        else {
            panic!("not reported");
        };
        assert_eq!(shown.path, "/d");
        assert!(blocked.covers("/d/f"));
        assert!(blocked.covers("/d/sub/g"));
    }

    #[test]
    fn the_destination_not_made_or_a_full_disk_stops_the_run() {
        let blocked = Blocked::new(&Host::Local, "/no/such/dest/");
        let made = blocked.dir_failed("/no/such/dest/", io_error("/no/such/dest/", libc::ENOENT));
        assert!(matches!(made, Verdict::Stop));
        let why = blocked.stop().expect("a stop");
        assert!(why.to_string().contains("--mkpath"), "{why}");

        let full = Blocked::new(&Host::Local, "/d");
        let wrote = full.failed_at("/d/a", io_error("/d/.a.ferry-partial", libc::ENOSPC));
        assert!(matches!(wrote, Verdict::Stop));
        assert!(full.covers("/d/b"));
        assert!(matches!(
            full.failed_at("/d/b", io_error("/d/b", libc::ENOSPC)),
            Verdict::Quiet
        ));
        assert_eq!(full.stop().expect("a stop").path, "/d/a");
    }

    #[test]
    fn the_sources_errors_are_not_the_destinations() {
        let blocked = Blocked::new(&Host::remote("h"), "/d");
        let read = blocked.failed_at("/d/a", io_error("src/a", libc::EACCES));
        assert!(matches!(read, Verdict::Report(e) if e.path == "src/a"));
        assert!(!blocked.covers("/d/b"));
    }
}
