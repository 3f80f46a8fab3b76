//! The sync engine: one code path for push, pull and local copies, generic
//! over the two endpoints. It plans (walk and decide, in `plan`), then carries
//! the plan out (`transfer` for files), reporting through a [`Reporter`].
//!
//! Errors on one file are reported and counted and the run goes on; errors
//! that end the connection end the run (ripgrep's per-file error policy).

pub mod partial;
pub mod plan;
pub mod transfer;

use std::time::{Duration, Instant};

use crate::endpoint::{Endpoint, Kind};
use crate::error::{Error, ExitCode, Result};
use crate::report::{Outcome, Reporter};
use plan::{Action, Planner, SourceArg};

/// Resolved sync settings (rsync's meanings).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub recursive: bool,
    pub links: bool,
    pub perms: bool,
    pub times: bool,
    pub dry_run: bool,
    pub checksum: bool,
    /// Build changed files from the old destination where it matches
    /// (off with `--whole-file`).
    pub delta: bool,
    /// Rewrite existing destination files directly, without a partial.
    pub inplace: bool,
    /// Applied to the source's permissions for new files without `--perms`.
    pub umask: u32,
}

/// Totals of one run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub files_sent: u64,
    pub files_resumed: u64,
    /// Files built from the old destination plus changed blocks.
    pub files_delta: u64,
    pub files_skipped: u64,
    pub files_failed: u64,
    /// File data bytes written to the destination.
    pub bytes_sent: u64,
    /// Bytes of verified partials that did not need sending.
    pub bytes_reused: u64,
    pub elapsed: Duration,
    /// Exit code the per-file failures call for (0 when there were none).
    pub failure_code: Option<ExitCode>,
}

impl Stats {
    fn record_failure(&mut self, error: &Error) {
        self.files_failed += 1;
        let code = match error {
            Error::FileSelection(_) => ExitCode::FileSelection,
            _ => ExitCode::PartialTransfer,
        };
        // Any partial-transfer failure outranks file-selection errors.
        if self.failure_code != Some(ExitCode::PartialTransfer) {
            self.failure_code = Some(code);
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        self.failure_code.unwrap_or(ExitCode::Ok)
    }
}

/// Brings `dest` on `dst` up to date with `sources` on `src`.
pub async fn sync<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    sources: &[String],
    dest: &str,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Stats> {
    let started = Instant::now();
    let mut stats = Stats::default();
    let args: Vec<SourceArg> = sources.iter().map(|s| SourceArg::new(s)).collect();
    let mut planner = Planner::new(src, dst, opts, reporter);
    planner.plan(&args, dest).await?;
    for error in &planner.errors {
        reporter.file_failed("", error);
        stats.record_failure(error);
    }
    stats.files_skipped = planner.up_to_date;
    let actions = planner.actions;
    let (files, bytes) = actions.iter().fold((0, 0), |(n, b), a| match a {
        Action::File(job) => (n + 1, b + job.source_meta.size),
        _ => (n, b),
    });
    reporter.planned(files, bytes);
    if opts.dry_run {
        dry_run(&actions, reporter);
    } else {
        execute(src, dst, &actions, opts, reporter, &mut stats).await?;
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn dry_run(actions: &[Action], reporter: &dyn Reporter) {
    for action in actions {
        match action {
            Action::Dir {
                dest,
                exists: false,
                ..
            } => reporter.note(&format!("{dest}/")),
            Action::File(job) => reporter.file_finished(&job.paths.dest, Outcome::WouldSend),
            Action::Symlink { dest, .. } => reporter.note(dest),
            _ => {}
        }
    }
}

async fn execute<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    actions: &[Action],
    opts: &Options,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    for action in actions {
        let (path, outcome) = match action {
            Action::Dir { dest, exists, .. } => {
                let made = if *exists {
                    Ok(Outcome::Skipped)
                } else {
                    // Writable for us until its attributes are set at the end.
                    dst.mkdir(dest, 0o755).await.map(|_| Outcome::Created)
                };
                (dest, made)
            }
            Action::File(job) => (
                &job.paths.dest,
                transfer::transfer(src, dst, job, opts, reporter, stats).await,
            ),
            Action::Symlink { source, dest } => (dest, copy_symlink(src, dst, source, dest).await),
            Action::Mode { dest, mode } => (
                dest,
                dst.set_mode(dest, *mode).await.map(|_| Outcome::Created),
            ),
        };
        if let Some(outcome) = absorb(outcome, path, reporter, stats)? {
            match outcome {
                Outcome::Sent => stats.files_sent += 1,
                Outcome::Resumed => stats.files_resumed += 1,
                Outcome::Delta => stats.files_delta += 1,
                _ => {}
            }
            reporter.file_finished(path, outcome);
        }
    }
    set_dir_attrs(dst, actions, opts, reporter, stats).await
}

/// The per-file error policy: an error that ends the connection ends the
/// run; any other is reported, counted, and the run goes on.
fn absorb<T>(
    result: Result<T>,
    path: &str,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            reporter.file_failed(path, &e);
            stats.record_failure(&e);
            Ok(None)
        }
    }
}

/// Directory times and permissions go last, deepest first: writing into a
/// directory would change its mtime again, and a read-only mode would block
/// the writes.
async fn set_dir_attrs<D: Endpoint>(
    dst: &D,
    actions: &[Action],
    opts: &Options,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    for action in actions.iter().rev() {
        let Action::Dir {
            dest,
            meta: Some(meta),
            ..
        } = action
        else {
            continue;
        };
        let mut result = Ok(());
        if opts.perms {
            result = dst.set_mode(dest, meta.mode).await;
        }
        if opts.times && result.is_ok() {
            result = dst.set_mtime(dest, meta.mtime).await;
        }
        absorb(result, dest, reporter, stats)?;
    }
    Ok(())
}

/// Creates the link under a temporary name and renames it over the
/// destination, so an existing link or file is replaced in one step.
async fn copy_symlink<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &str,
    dest: &str,
) -> Result<Outcome> {
    let target = src.read_link(source).await?;
    if dst.lstat(dest).await?.map(|m| m.kind) == Some(Kind::Dir) {
        return Err(Error::Refused {
            path: format!("{}{dest}", dst.label()),
            message: "a directory is in the way of a symlink; not replaced".into(),
        });
    }
    let name = crate::endpoint::base_name(dest);
    let temp = crate::endpoint::join(crate::endpoint::parent(dest), &partial::partial_name(name));
    if dst.lstat(&temp).await?.is_some() {
        dst.remove_file(&temp).await?;
    }
    dst.symlink(&target, &temp).await?;
    dst.rename(&temp, dest).await?;
    Ok(Outcome::Created)
}
