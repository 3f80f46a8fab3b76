//! One run per destination at a time: a lock file beside the destination,
//! `.NAME.ferry-lock` (NAME the destination's last component), made with
//! exclusive create so that two runs cannot both hold it.
//!
//! Two runs writing the same partials would interleave their writes, and
//! one could rename a partial the other is still writing into. A run that
//! finds the lock held stops before planning, with a message saying who
//! holds it. A lock left by a run that died is taken over: at once when its
//! process is gone from this machine, otherwise once the holder stopped
//! refreshing it (it touches the lock every [`REFRESH`]) for [`STALE`]. A
//! lock that names no holder (a run cut between creating it and writing
//! it) is taken over once [`UNNAMED_GRACE`] old, or at once by the process
//! that made it.
//! Where no lock can be made (a directory the user may not write), the run
//! goes on without one, as rsync always does.
//!
//! Making and removing the lock changes its directory's modification
//! time, which rsync would leave alone: a run that changed nothing else
//! there sets it back to what it was (to the second over SFTP, which
//! carries no more; a change another process made there meanwhile would
//! lose its time too).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::partial::record_fields;
use crate::endpoint::{
    self, base_name, join, parent, Attrs, Endpoint, FileHandle, Mtime, WriteMode,
};
use crate::error::{Error, Result};

const LOCK_SUFFIX: &str = ".ferry-lock";
const HEADER: &str = "ferry lock v1";

/// How often a holder touches its lock.
pub(crate) const REFRESH: Duration = Duration::from_secs(10);
/// A lock untouched this long belongs to a run that is gone.
pub(crate) const STALE: Duration = Duration::from_secs(60);
/// A lock with no holder written in it, this old, was abandoned half made:
/// its maker writes the holder one round trip after creating it.
pub(crate) const UNNAMED_GRACE: Duration = Duration::from_secs(2);

/// Locks this process made and has not released: a run that reconnects
/// meets its own lock, possibly with no holder written in it yet.
static MADE_HERE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn made_here(path: &str) -> bool {
    MADE_HERE
        .lock()
        .is_ok_and(|made| made.iter().any(|p| p == path))
}

fn note_made(path: &str, made: bool) {
    if let Ok(mut list) = MADE_HERE.lock() {
        list.retain(|p| p != path);
        if made {
            list.push(path.to_string());
        }
    }
}

/// Whether `name` is a lock (never copied as content, never deleted).
pub(crate) fn is_lock_file(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(LOCK_SUFFIX)
}

/// Where the lock for `dest` lives: beside it, so that it is the same path
/// whether `dest` exists yet or not.
pub(crate) fn lock_path(dest: &str) -> String {
    let trimmed = dest.trim_end_matches('/');
    match (dest, trimmed, base_name(trimmed)) {
        // The login directory, "/", ".", "..": no parent to name; inside.
        ("", _, _) => LOCK_SUFFIX.to_string(),
        (_, "", _) => format!("/{LOCK_SUFFIX}"),
        (_, _, "." | "..") => join(trimmed, LOCK_SUFFIX),
        (_, _, name) => join(parent(trimmed), &format!(".{name}{LOCK_SUFFIX}")),
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub host: String,
    pub pid: u32,
    pub started: u64,
}

impl Holder {
    fn me() -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            started: now_secs(),
        }
    }

    pub(crate) fn encode(&self) -> String {
        format!(
            "{HEADER}\nhost {}\npid {}\nstarted {}\n",
            self.host, self.pid, self.started
        )
    }

    /// The holder a lock file names; None for anything else.
    pub(crate) fn decode(text: &str) -> Option<Holder> {
        let (mut host, mut pid, mut started) = (None, None, None);
        for field in record_fields(text, HEADER)? {
            match field {
                ("host", v) => host = Some(v.to_string()),
                ("pid", v) => pid = v.parse().ok(),
                ("started", v) => started = v.parse().ok(),
                _ => {}
            }
        }
        Some(Holder {
            host: host?,
            pid: pid?,
            started: started?,
        })
    }

    fn is_me(&self) -> bool {
        self.pid == std::process::id() && self.host == host_name()
    }

    /// A process of this machine that no longer exists.
    fn is_dead_here(&self) -> bool {
        if self.host != host_name() {
            return false;
        }
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(self.pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        !alive
    }
}

/// A held lock; [`Lock::release`] removes it. `F` is the destination's
/// file handle type: the holder is written into the lock while the run
/// starts, not before ([`Lock::keep_fresh`]).
pub(crate) struct Lock<F> {
    path: String,
    unwritten: Option<F>,
    /// The lock's directory's time before the lock was made.
    dir_time: Option<Mtime>,
}

impl<F: FileHandle> Lock<F> {
    /// Takes the lock for `dest` on `dst`: `Ok(None)` when no lock can be
    /// made there (the run goes on without one), an error naming the holder
    /// when another run has it.
    pub(crate) async fn take<D: Endpoint<File = F>>(
        dst: &D,
        dest: &str,
    ) -> Result<Option<Lock<F>>> {
        let path = lock_path(dest);
        let dir_time = dst.lstat(parent(&path)).await?.map(|m| m.mtime);
        for _ in 0..2 {
            match dst.open_write(&path, WriteMode::CreateNew, 0o600).await {
                Ok(file) => {
                    note_made(&path, true);
                    return Ok(Some(Lock {
                        path,
                        unwritten: Some(file),
                        dir_time,
                    }));
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    let Some(found) = dst.lstat(&path).await? else {
                        // Not there, yet not creatable: no lock here.
                        tracing::info!("{e}: running without a lock");
                        return Ok(None);
                    };
                    let holder = read_holder(dst, &path).await;
                    let age = SystemTime::now()
                        .duration_since(
                            UNIX_EPOCH + Duration::from_secs(found.mtime.secs.max(0) as u64),
                        )
                        .unwrap_or_default();
                    // A run that reconnects finds its own lock.
                    let abandoned = age > STALE
                        || made_here(&path)
                        || match &holder {
                            Some(h) => h.is_dead_here() || h.is_me(),
                            None => age > UNNAMED_GRACE,
                        };
                    if !abandoned {
                        return Err(held(dst, &path, holder));
                    }
                    tracing::info!(path, "taking over an abandoned lock");
                    let _ = dst.remove_file(&path).await;
                }
            }
        }
        Err(held(dst, &path, read_holder(dst, &path).await))
    }

    /// Writes the holder into the lock (beside the run's first requests,
    /// sparing it a round trip before them), then marks the lock as still
    /// held every [`REFRESH`], for as long as it is polled.
    pub(crate) async fn keep_fresh<D: Endpoint>(&mut self, dst: &D) -> std::convert::Infallible {
        if let Some(file) = self.unwritten.take() {
            let holder = Holder::me().encode().into_bytes();
            let attrs = Attrs {
                mode: 0o600,
                mtime: None,
                owner: Default::default(),
            };
            let _ = file.finish(Some((0, holder.into())), attrs, false).await;
        }
        loop {
            tokio::time::sleep(REFRESH).await;
            let _ = dst
                .set_mtime(&self.path, Mtime::secs(now_secs() as i64))
                .await;
        }
    }

    /// Removes the lock; unless the run itself changed the lock's
    /// directory (`dir_changed`), its time goes back to what it was.
    pub(crate) async fn release<D: Endpoint>(self, dst: &D, dir_changed: bool) {
        if dst.remove_file(&self.path).await.is_err() {
            return;
        }
        note_made(&self.path, false);
        // A lock inside the destination ("/", "."): the run sets that
        // directory's time itself, or rsync would have changed it too.
        let inside = base_name(&self.path) == LOCK_SUFFIX;
        if let Some(time) = self.dir_time.filter(|_| !dir_changed && !inside) {
            let _ = dst.set_mtime(parent(&self.path), time).await;
        }
    }

    /// The directory the lock is in.
    pub(crate) fn dir(&self) -> &str {
        parent(&self.path)
    }
}

async fn read_holder<D: Endpoint>(dst: &D, path: &str) -> Option<Holder> {
    let bytes = endpoint::read_small(dst, path).await.ok()?;
    Holder::decode(std::str::from_utf8(&bytes).ok()?)
}

fn held<D: Endpoint>(dst: &D, path: &str, holder: Option<Holder>) -> Error {
    let who = match holder {
        Some(h) => format!(
            "ferry pid {} on {}, started {}",
            h.pid,
            h.host,
            ago(now_secs().saturating_sub(h.started))
        ),
        None => "another ferry run (or one cut while it took the lock: a lock with no \
                 holder in it is taken over 2 s after it was made)"
            .to_string(),
    };
    Error::FileSelection(format!(
        "{}{path}: the destination is being synced by {who}; run again once it is done, \
         or remove this lock file if no such run exists",
        dst.label()
    ))
}

/// How long ago, in the largest unit that fits: `40 s ago`, `12 min ago`,
/// `3 h ago`, `2 days ago`.
fn ago(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7_200 => format!("{} min ago", secs / 60),
        7_200..172_800 => format!("{} h ago", secs / 3_600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown".into()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_holders_age_reads_in_the_largest_unit() {
        assert_eq!(super::ago(5), "5 s ago");
        assert_eq!(super::ago(600), "10 min ago");
        assert_eq!(super::ago(3 * 3_600 + 5), "3 h ago");
        assert_eq!(super::ago(3 * 86_400), "3 days ago");
    }

    use super::*;
    use crate::endpoint::LocalFs;

    #[test]
    fn the_lock_sits_beside_the_destination() {
        assert_eq!(lock_path("/backup/data"), "/backup/.data.ferry-lock");
        assert_eq!(lock_path("/backup/data/"), "/backup/.data.ferry-lock");
        assert_eq!(lock_path("data"), ".data.ferry-lock");
        assert_eq!(lock_path("/"), "/.ferry-lock");
        assert_eq!(lock_path(""), ".ferry-lock");
        assert_eq!(lock_path("."), ".ferry-lock");
        assert_eq!(lock_path("../x/.."), "../x/../.ferry-lock");
        assert!(is_lock_file(".data.ferry-lock"));
        assert!(!is_lock_file("data.ferry-lock"));
    }

    #[test]
    fn a_holder_round_trips() {
        let me = Holder::me();
        assert_eq!(Holder::decode(&me.encode()), Some(me));
        assert_eq!(Holder::decode("something else"), None);
    }

    #[tokio::test]
    async fn a_lock_held_by_a_live_run_is_refused_until_stale() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest").display().to_string();
        // A live process here (init), and a run on another machine.
        let here = Holder {
            pid: 1,
            ..Holder::me()
        };
        let elsewhere = Holder {
            host: "elsewhere.example".into(),
            ..Holder::me()
        };
        for holder in [here, elsewhere] {
            let path = lock_path(&dest);
            std::fs::write(&path, holder.encode()).unwrap();
            let refused = Lock::take(&LocalFs::default(), &dest)
                .await
                .err()
                .expect("refused");
            let message = refused.to_string();
            assert!(
                message.contains(&format!("pid {} on {}", holder.pid, holder.host)),
                "{message}"
            );
            // rsync's file-selection error (exit 3, in the CLI).
            assert!(
                matches!(refused, crate::error::Error::FileSelection(_)),
                "{refused:?}"
            );
            // Untouched for longer than STALE: abandoned.
            let old = SystemTime::now() - STALE - Duration::from_secs(5);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
            let lock = Lock::take(&LocalFs::default(), &dest)
                .await
                .unwrap()
                .expect("taken over");
            lock.release(&LocalFs::default(), true).await;
        }
    }

    #[tokio::test]
    async fn a_lock_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest").display().to_string();
        let dead = Holder {
            pid: u32::MAX / 2,
            ..Holder::me()
        };
        std::fs::write(lock_path(&dest), dead.encode()).unwrap();
        let mut lock = Lock::take(&LocalFs::default(), &dest)
            .await
            .unwrap()
            .expect("taken over");
        // The holder is written once the run starts.
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            lock.keep_fresh(&LocalFs::default()),
        )
        .await;
        let now = std::fs::read_to_string(lock_path(&dest)).unwrap();
        assert_eq!(
            Holder::decode(&now).map(|h| h.pid),
            Some(std::process::id())
        );
        lock.release(&LocalFs::default(), true).await;
        assert!(!std::path::Path::new(&lock_path(&dest)).exists());
    }

    #[tokio::test]
    async fn the_lock_leaves_its_directory_as_it_found_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest").display().to_string();
        let old = SystemTime::UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
        let set_old = || {
            std::fs::File::open(dir.path())
                .unwrap()
                .set_modified(old)
                .unwrap()
        };
        let time = || std::fs::metadata(dir.path()).unwrap().modified().unwrap();
        set_old();
        let lock = Lock::take(&LocalFs::default(), &dest)
            .await
            .unwrap()
            .expect("taken");
        assert_ne!(time(), old, "making the lock changed the directory");
        lock.release(&LocalFs::default(), false).await;
        assert_eq!(time(), old);
        // A run that changed the directory itself keeps the new time.
        set_old();
        let lock = Lock::take(&LocalFs::default(), &dest)
            .await
            .unwrap()
            .expect("taken");
        lock.release(&LocalFs::default(), true).await;
        assert_ne!(time(), old);
    }
}
