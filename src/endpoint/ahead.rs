//! Answers started ahead of being asked for (listings, stats), kept by
//! path until the walk gets there: what [`super::Endpoint::list_soon`] and
//! [`super::Endpoint::stat_soon`] start.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::Result;

/// Answers started ahead, by path; what is never asked for is dropped with
/// the endpoint.
pub(crate) struct Ahead<T> {
    started: Mutex<HashMap<String, oneshot::Receiver<Result<T>>>>,
}

impl<T> Default for Ahead<T> {
    fn default() -> Self {
        Ahead {
            started: Mutex::default(),
        }
    }
}

impl<T> std::fmt::Debug for Ahead<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = self.started.lock().map_or(0, |started| started.len());
        f.debug_struct("Ahead").field("started", &started).finish()
    }
}

impl<T: Send + 'static> Ahead<T> {
    /// Starts `answer` for `path` as a task of its own, unless one was
    /// started already.
    pub(crate) fn start(
        &self,
        path: &str,
        answer: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) {
        let Some(tx) = self.expect([path]).pop() else {
            return;
        };
        tokio::spawn(async move {
            let _ = tx.1.send(answer.await);
        });
    }

    /// Starts `answer` for each of `paths` not started yet, one after the
    /// other on the blocking pool: a local file system's answers, made
    /// beside the walk that will ask for them.
    pub(crate) fn start_blocking(
        &self,
        paths: &[&str],
        answer: impl Fn(&str) -> Result<T> + Send + 'static,
    ) {
        let todo = self.expect(paths.iter().copied());
        if todo.is_empty() {
            return;
        }
        tokio::task::spawn_blocking(move || {
            for (path, tx) in todo {
                let _ = tx.send(answer(&path));
            }
        });
    }

    /// Where the answers for those of `paths` not started yet go.
    fn expect<'p>(
        &self,
        paths: impl IntoIterator<Item = &'p str>,
    ) -> Vec<(String, oneshot::Sender<Result<T>>)> {
        let Ok(mut started) = self.started.lock() else {
            return Vec::new();
        };
        let mut todo = Vec::new();
        for path in paths {
            if started.contains_key(path) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            started.insert(path.to_string(), rx);
            todo.push((path.to_string(), tx));
        }
        todo
    }

    /// The answer started for `path`, once in, if it succeeded: one that
    /// failed is asked again (it may have been asked before the entry was
    /// there: a guess made before planning).
    pub(crate) async fn take(&self, path: &str) -> Option<T> {
        let answer = self.started.lock().ok()?.remove(path)?;
        answer.await.ok()?.ok()
    }
}
