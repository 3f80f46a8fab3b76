//! Short blocking file-system calls (metadata, a small file read or
//! written whole, a rename), run where they are asked for while the file
//! system answers quickly, on tokio's blocking pool while it does not.
//!
//! A hand-off to the blocking pool costs two thread wake-ups (the pool's
//! thread, then the runtime's): tens of microseconds of CPU on a busy
//! machine, more than the open, read and fstat of a small file from the
//! page cache. A tree of 100,000 small files spent a third of its time
//! there (13-16 s against 9.9 s in place, measured). rsync makes every such
//! call in place. A call that takes longer than [`SLOW`] (a cold disk, a
//! network file system) sends the calls of the next [`BACK_OFF`] to the
//! pool, so that a slow file system never holds up the connection for long.
//!
//! Reads and writes of large files' chunks never come here: on the pool
//! they overlap the encryption on the runtime's thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A call this long makes the file system slow for a while.
const SLOW: Duration = Duration::from_millis(5);

/// How long calls go to the pool after a slow one.
const BACK_OFF: Duration = Duration::from_secs(1);

/// When the file system was last slow: calls go to the pool until then.
struct Pace {
    /// Microseconds since [`epoch`].
    slow_until: AtomicU64,
}

/// This process's file systems, all taken together.
static PACE: Pace = Pace {
    slow_until: AtomicU64::new(0),
};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_since_epoch(at: Instant) -> u64 {
    at.duration_since(epoch()).as_micros() as u64
}

/// Runs `call` in place, or on the blocking pool after a slow one; `None`
/// if it panicked there.
pub(crate) async fn run<T, F>(call: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    PACE.run(call).await
}

impl Pace {
    async fn run<T, F>(&self, call: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let started = Instant::now();
        if micros_since_epoch(started) < self.slow_until.load(Ordering::Relaxed) {
            return tokio::task::spawn_blocking(call).await.ok();
        }
        let out = call();
        let ended = Instant::now();
        if ended.duration_since(started) > SLOW {
            let until = micros_since_epoch(ended + BACK_OFF);
            self.slow_until.store(until, Ordering::Relaxed);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_call_sends_the_next_ones_to_the_pool() {
        let pace = Pace {
            slow_until: AtomicU64::new(0),
        };
        let here = std::thread::current().id();
        let first = pace.run(move || std::thread::current().id() == here).await;
        assert_eq!(first, Some(true), "a quick file system is called in place");
        pace.run(|| std::thread::sleep(SLOW * 3)).await;
        let after = pace.run(move || std::thread::current().id() == here).await;
        assert_eq!(after, Some(false), "after a slow call, on the pool");
    }
}
