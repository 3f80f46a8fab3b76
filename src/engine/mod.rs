//! The sync engine: one code path for push, pull and local copies, generic
//! over the two endpoints. It plans (walk and decide, in `plan`), then carries
//! the plan out (`transfer` for files), reporting through a [`Reporter`].
//!
//! Errors on one file are reported and counted and the run goes on; errors
//! that end the connection end the run (ripgrep's per-file error policy).

pub(crate) mod backup;
pub(crate) mod basis;
mod blocked;
pub(crate) mod bounds;
pub(crate) mod compare;
mod copy;
pub(crate) mod delete;
pub(crate) mod hard_links;
mod idmap;
mod in_order;
pub(crate) mod links;
pub(crate) mod list;
pub(crate) mod lock;
pub(crate) mod moved;
pub(crate) mod nodes;
pub(crate) mod owners;
pub(crate) mod partial;
pub(crate) mod plan;
pub(crate) mod select;
pub(crate) mod staging;
pub(crate) mod tidy;
pub(crate) mod transfer;
mod unchanged;
pub(crate) mod xattrs;

use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::sync::{Notify, Semaphore};

use crate::endpoint::{join, Endpoint, Features, Kind, Listing, Meta, Mtime, Pipeline, Unnameable};
use crate::error::{Error, FileError, Result};
use crate::report::{Changes, Item, ItemKind, Mention, Outcome, Phase, Reporter, TimeChange};
use backup::{Backups, How};
use blocked::{Blocked, Verdict};
use in_order::InOrder;
use plan::{Action, Planner, SmallFiles, SourceArg};
use staging::{Noting, Places};
use transfer::{FileJob, Transferred};

/// Resolved sync settings (rsync's meanings).
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub recursive: bool,
    /// `-d`: directories are made without their contents (`dir/`: one
    /// level of them).
    pub dirs: bool,
    /// `--mkpath`: the destination's missing parent directories are made.
    pub mkpath: bool,
    /// `-R`: sources keep their paths under the destination.
    pub relative: bool,
    /// Without `--no-implied-dirs`: the directories above a kept path come
    /// with the source's attributes.
    pub implied_dirs: bool,
    /// `-m`: source directories with no file below them are left out.
    pub prune_empty_dirs: bool,
    /// `-x` (1): a source directory on another file system than the top of
    /// its tree is copied empty, and `--delete` stays out of destination
    /// directories on another file system; `-xx` (2): the source's mount
    /// points are left out altogether.
    pub one_file_system: u8,
    pub links: bool,
    /// `-L`, `-k`, `--copy-unsafe-links`, `--safe-links`, `--munge-links`.
    pub links_policy: links::LinkPolicy,
    /// `-K`: a symlink to a directory in the destination, where the source
    /// has a directory, is kept and filled (only one that stays inside the
    /// destination).
    pub keep_dirlinks: bool,
    /// `-H`: a source file's names that share its inode share one in the
    /// destination too.
    pub hard_links: bool,
    /// `--devices`: device nodes are made (where the receiving side may).
    pub devices: bool,
    /// `--specials`: fifos and sockets are made.
    pub specials: bool,
    pub perms: bool,
    pub times: bool,
    /// `-o`, `-g`, `--numeric-ids`: the owners and groups entries get.
    pub owners: owners::Owners,
    /// `-X`, `-A`: which extended attributes and ACLs are kept (the
    /// namespaces once [`xattrs::check`]ed).
    pub xattrs: crate::meta::XattrScope,
    /// What the entries' attributes are and how they differ, once
    /// [`xattrs::compare`]d (the `a` and `x` columns of their lines).
    pub xattrs_found: std::sync::Arc<xattrs::Compared>,
    /// `-S`: runs of zeros in a file written fresh become holes.
    pub sparse: bool,
    pub dry_run: bool,
    pub checksum: bool,
    /// Which entries are looked at and which are current (`--existing`,
    /// `-u`, `--size-only`, `--modify-window`...).
    pub select: select::Selection,
    /// Build changed files from the old destination where it matches
    /// (off with `--whole-file`).
    pub delta: bool,
    /// Rewrite existing destination files directly, without a partial.
    pub inplace: bool,
    /// `--append`, `--append-verify`: a file the destination has at the
    /// source's size or longer is left alone; a shorter one is completed
    /// in place (`inplace` is set too), its existing part checked against
    /// the source block by block rather than trusted.
    pub append: bool,
    /// `--chmod`: the rules that change source modes as they are read.
    pub chmod: Option<std::sync::Arc<crate::mode::Chmod>>,
    /// `-E`: without `--perms`, a file's executability follows the source.
    pub executability: bool,
    /// Sync every new file to disk before its rename (files that replace an
    /// old one always are).
    pub fsync: bool,
    /// Files in flight at once (at least one).
    pub jobs: usize,
    /// `-O`: directories keep the time of their last change.
    pub omit_dir_times: bool,
    /// `-J`: symlinks keep the time they were made at.
    pub omit_link_times: bool,
    /// Remove what the destination has and the source does not.
    pub delete: bool,
    /// `--remove-source-files`: each source file or symlink goes once its
    /// copy is in place and checked.
    pub remove_source_files: bool,
    /// The destination paths whose source `--remove-source-files` removed
    /// in this run, shared by the attempts of a run that reconnects: a
    /// later attempt's `--delete` must not take them for extraneous.
    pub moved: Option<std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>>,
    /// `--force`: a non-empty directory in the way of a file or link is
    /// removed with its contents (as with `--delete`).
    pub force: bool,
    /// Delete nothing when more than this would go.
    pub max_delete: Option<u64>,
    /// rsync's filter rules (`--exclude`, `--filter`, ...): what the walk
    /// leaves out, and what `--delete` spares. Default: no rules.
    pub filter: std::sync::Arc<crate::filter::Filter>,
    /// `--files-from`: only these paths of the one source directory, each
    /// keeping its path under the destination.
    pub files_from: Option<std::sync::Arc<crate::filter::FilesFrom>>,
    /// `-b`, `--backup-dir`, `--suffix`: what is replaced or deleted is
    /// kept (None: it is not).
    pub backup: Option<backup::Backup>,
    /// `--partial-dir`, `-T`, `--delay-updates`: where files are written
    /// before they take their place, and when they take it.
    pub staging: staging::Staging,
    /// `--link-dest`, `--copy-dest`, `--compare-dest`: the directories on
    /// the destination side a missing file may be taken from.
    pub alt_dests: Option<std::sync::Arc<basis::AltDests>>,
}

impl Options {
    /// Notes that the source of `dest` was removed (`--remove-source-files`).
    fn note_moved(&self, dest: &str) {
        if let Some(Ok(mut moved)) = self.moved.as_ref().map(|m| m.lock()) {
            moved.insert(dest.trim_end_matches('/').to_string());
        }
    }

    /// Whether the source of `dest` was removed earlier in this run.
    pub(crate) fn was_moved(&self, dest: &str) -> bool {
        self.moved
            .as_ref()
            .and_then(|m| m.lock().ok())
            .is_some_and(|moved| moved.contains(dest.trim_end_matches('/')))
    }
}

/// Totals of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub files_sent: u64,
    pub files_resumed: u64,
    /// Files built from the old destination plus changed blocks.
    pub files_delta: u64,
    /// Files hard-linked from a `--link-dest` DIR.
    pub files_linked: u64,
    /// Files copied from a `--link-dest`, `--copy-dest` or
    /// `--compare-dest` DIR inside the destination side.
    pub files_copied: u64,
    pub files_skipped: u64,
    /// Files that failed, whatever failed (their errors were reported).
    pub files_failed: u64,
    /// Of `files_failed`, the sources that could not be selected (rsync's
    /// file-selection errors): kept apart because they say less about the
    /// run than a file that failed to transfer.
    pub selection_failures: u64,
    /// Whether `--max-delete` held back the deletions.
    pub deletions_held: bool,
    /// Files and directories deleted (`--delete`).
    pub deleted: u64,
    /// Entries the destination did not have: files, directories, links.
    pub created: u64,
    /// The sizes of the files copied, whole or otherwise.
    pub bytes_transferred_files: u64,
    /// File data bytes written to the destination.
    pub bytes_sent: u64,
    /// Bytes of verified partials that did not need sending.
    pub bytes_reused: u64,
    pub elapsed: Duration,
    /// Times the run reconnected after losing the connection.
    pub reconnects: u32,
    /// Bytes of the SSH connection's stream, each way, every attempt's
    /// (0 for a local copy).
    pub wire_sent: u64,
    pub wire_received: u64,
    /// What the source holds (filters applied): what `--stats` calls the
    /// number of files and the total file size.
    pub source: SourceCounts,
    /// Time spent walking the trees and deciding what to do.
    pub planning: Duration,
}

/// Entries of the source the run looked at, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceCounts {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// The sizes of the regular files.
    pub bytes: u64,
}

impl Stats {
    /// One file failed; its error was reported.
    fn record_failure(&mut self) {
        self.files_failed += 1;
    }

    /// Files copied, whole or otherwise.
    pub(crate) fn files_done(&self) -> u64 {
        self.files_sent + self.files_resumed + self.files_delta
    }

    /// Adds one attempt of a run that reconnects. Data moved adds up; which
    /// files failed, and how many were up to date, is the last attempt's
    /// word (without the files earlier attempts copied: `done_before`).
    pub(crate) fn add_attempt(&mut self, attempt: &Stats, done_before: u64) {
        self.files_sent += attempt.files_sent;
        self.files_resumed += attempt.files_resumed;
        self.files_delta += attempt.files_delta;
        self.files_linked += attempt.files_linked;
        self.files_copied += attempt.files_copied;
        self.bytes_sent += attempt.bytes_sent;
        self.bytes_reused += attempt.bytes_reused;
        self.files_skipped = attempt.files_skipped.saturating_sub(done_before);
        self.files_failed = attempt.files_failed;
        self.selection_failures = attempt.selection_failures;
        self.deletions_held = attempt.deletions_held;
        self.deleted += attempt.deleted;
        self.created += attempt.created;
        self.source = attempt.source;
        self.planning += attempt.planning;
        self.bytes_transferred_files += attempt.bytes_transferred_files;
    }
}

/// Brings `dest` on `dst` up to date with `sources` on `src`, counting into
/// `stats` as the work completes, so that a run cut short by a lost connection still says what it did. The destination is
/// locked for the run ([`lock`]), except for a dry run; the lock is taken
/// while planning looks around, which only reads.
pub(crate) async fn sync_into<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    sources: &[String],
    dest: &str,
    opts: &Options,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let started = Instant::now();
    reporter.phase(Phase::Listing);
    // -X and -A first: their helpers, once started, describe every entry
    // and make every change, and so say who writes (owners::prepare).
    let with_scope;
    let opts = match opts.xattrs.wanted() {
        true => {
            let xattrs = xattrs::check(src, dst, opts.xattrs).await?;
            with_scope = Options {
                xattrs,
                ..opts.clone()
            };
            &with_scope
        }
        false => opts,
    };
    let args: Vec<SourceArg> = sources.iter().map(|s| SourceArg::new(s)).collect();
    // The plan looks at the destination first: across a far link that
    // round trip goes beside the owners' questions.
    dst.stat_soon(dest);
    list_tops_soon(src, dst, &args, dest, opts);
    let opts = &owners::prepare(src, dst, dest, opts, reporter).await?;
    if opts.checksum {
        start_helper(src, dst).await?;
    }
    if opts.hard_links {
        hard_links::check_source(src).await?;
    }
    // The files found up to date, whose partials in a partial directory
    // go (rsync removes them).
    let noting = Noting::new(
        reporter,
        opts.staging.wants_current_files() && !opts.dry_run,
    );
    let mut planner = Planner::new(src, dst, opts, &noting);
    let (many_small, planning_over) = (Notify::new(), Notify::new());
    if !opts.dry_run {
        planner.small_files = Some(SmallFiles {
            largest: Pipeline::between(src, dst).chunk as u64,
            enough: SMALL_FILES_FOR_HELPER,
            tell: &many_small,
            seen: 0,
        });
    }
    let run = async {
        let (lock, planned) = tokio::join!(
            async {
                match opts.dry_run {
                    true => Ok(None),
                    false => lock::Lock::take(dst, dest).await,
                }
            },
            planner.plan(&args, dest)
        );
        planning_over.notify_one();
        stats.planning += started.elapsed();
        let lock = lock?;
        let lock_dir = lock.as_ref().map(|lock| lock.dir().to_string());
        let mut dir_changed = lock_dir
            .as_deref()
            .is_some_and(|dir| changes_dir(&planner.actions, dir));
        let touched = std::sync::atomic::AtomicBool::new(false);
        let work = async {
            planned?;
            let places = Places::new(opts, dst.label(), dest, &planner.actions);
            let current = noting.take();
            let done = carry_out(src, dst, planner, opts, &places, &current, reporter, stats).await;
            if lock_dir.as_deref().is_some_and(|dir| places.touched(dir)) {
                touched.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            done
        };
        match lock {
            None => work.await,
            Some(mut lock) => {
                let result = tokio::select! {
                    result = work => result,
                    never = lock.keep_fresh(dst) => match never {},
                };
                dir_changed |= touched.load(std::sync::atomic::Ordering::Relaxed);
                lock.release(dst, dir_changed).await;
                result
            }
        }
    };
    let (result, ()) = tokio::join!(
        run,
        start_helpers_early(src, dst, &many_small, &planning_over)
    );
    stats.elapsed += started.elapsed();
    result
}

/// Starts the helpers once the plan holds many new small files, while it
/// is still being made: on loopback their start (a session, a login
/// shell, a process: about 0.2 s) was the first 0.2 s of transfers, which
/// SFTP carried at a fraction of the helper's pace. Polled beside the whole
/// run, not spawned: the transfers that wait for the helper wait for this.
async fn start_helpers_early<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    many_small: &Notify,
    planning_over: &Notify,
) {
    // Seen only once the plan is made (or failed), it gains nothing over
    // the start carry_out makes.
    tokio::select! {
        biased;
        () = planning_over.notified() => return,
        () = many_small.notified() => {}
    }
    let (on_src, on_dst) = tokio::join!(src.start_helper_early(), dst.start_helper_early());
    for failed in [on_src, on_dst].into_iter().filter_map(Result::err) {
        tracing::info!("the helper's early start failed (tried again when needed): {failed}");
    }
}

/// Starts listing the directories the walk begins with, on both sides,
/// while the owners are asked about: across a far link the destination's
/// first listing (open, read) is then two round trips off the plan. A guess
/// that misses (the destination is a file, or absent) lists nothing the
/// walk takes, and costs no more than a refused request.
fn list_tops_soon<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    args: &[SourceArg],
    dest: &str,
    opts: &Options,
) {
    if !opts.recursive || opts.files_from.is_some() || opts.relative {
        return;
    }
    for arg in args {
        let path = arg.path.trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        let target = match arg.contents_only {
            true => dest.to_string(),
            false => crate::endpoint::join(dest, crate::endpoint::base_name(path)),
        };
        src.list_soon(&[path]);
        dst.list_soon(&[target.as_str()]);
    }
}

/// Whether any action makes, replaces or removes an entry right inside
/// `dir` (the lock's directory: the destination's parent).
fn changes_dir(actions: &[Action], dir: &str) -> bool {
    let inside = |path: &str| crate::endpoint::parent(path) == dir;
    actions.iter().any(|action| match action {
        Action::File(job) => inside(&job.paths.dest),
        Action::HardLink(link) => inside(&link.dest),
        Action::Dir { dest, exists, .. } => !exists && inside(dest),
        Action::Symlink { dest, .. } | Action::Node { dest, .. } => inside(dest),
        Action::Attrs { .. } | Action::RemoveSource { .. } => false,
    })
}

/// Everything after planning: helpers, the transfers, the counts.
/// `current` are the files found up to date (with `--partial-dir`).
#[allow(clippy::too_many_arguments)]
async fn carry_out<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    mut planner: Planner<'_, S, D>,
    opts: &Options,
    places: &Places,
    current: &[String],
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    tracing::debug!(actions = planner.actions.len(), "planned");
    if planner
        .actions
        .iter()
        .any(|a| matches!(a, Action::HardLink(_)))
    {
        hard_links::check_destination(dst).await?;
    }
    if planner
        .actions
        .iter()
        .any(|a| matches!(a, Action::Node { .. }))
    {
        nodes::check_destination(dst).await?;
    }
    if !opts.dry_run {
        places.check(dst).await?;
        places.place(&mut planner.actions);
        let errors = places.locate(dst, &mut planner.actions, current).await?;
        planner.errors.extend(errors);
    }
    let small = Pipeline::between(src, dst).chunk as u64;
    let hashes = !opts.dry_run && planner.actions.iter().any(may_hash);
    if hashes {
        start_helper(src, dst).await?;
    }
    // Many new small files and nothing to hash: the remote side's helper,
    // once started, takes or gives them as a stream instead of three round
    // trips each; until then, and without it, they go over SFTP.
    let helper_for_small_files = !opts.dry_run
        && !hashes
        && planner
            .actions
            .iter()
            .filter(|a| is_small_file(a, small))
            .count()
            >= SMALL_FILES_FOR_HELPER;
    for error in &planner.errors {
        reporter.file_failed("", error);
        stats.record_failure();
    }
    stats.files_skipped = planner.up_to_date;
    stats.source = planner.seen;
    let extraneous = planner.extraneous;
    let kept = planner.kept;
    let actions = planner.actions;
    let with_found;
    let opts = match opts.xattrs.wanted() {
        true => {
            let found =
                xattrs::compare(src, dst, &kept, opts, &places.blocked, reporter, stats).await?;
            with_found = Options {
                xattrs_found: std::sync::Arc::new(found),
                ..opts.clone()
            };
            &with_found
        }
        false => opts,
    };
    let (files, bytes) = actions.iter().fold((0, 0), |(n, b), a| match a {
        Action::File(job) => (n + 1, b + job.source_meta.size),
        _ => (n, b),
    });
    reporter.planned(files, bytes);
    reporter.phase(Phase::Transferring);
    let delayed = if opts.dry_run {
        dry_run(src, dst, &actions, opts, reporter).await?;
        Vec::new()
    } else if helper_for_small_files {
        let ((), (), executed) = tokio::join!(
            start_helper_beside(src),
            start_helper_beside(dst),
            execute(src, dst, &actions, opts, places, reporter, stats)
        );
        executed?
    } else {
        execute(src, dst, &actions, opts, places, reporter, stats).await?
    };
    places.blocked.check()?;
    if !opts.dry_run {
        install_delayed(src, dst, &delayed, opts, places, reporter, stats).await?;
        places.blocked.check()?;
        make_hard_links(src, dst, &actions, opts, places, reporter, stats).await?;
        places.finish(dst).await?;
    }
    let blocked = &places.blocked;
    xattrs::apply(dst, &kept, &actions, opts, blocked, reporter, stats).await?;
    let backups = places.backups.as_ref();
    if opts.delete {
        reporter.phase(Phase::Deleting);
    }
    delete::delete_extraneous(dst, extraneous, opts, backups, reporter, stats).await?;
    for line in backups.map(Backups::take_lines).unwrap_or_default() {
        reporter.mention(Mention::Backup, &line);
    }
    // Last: deleting from a directory changes its time too.
    if !opts.dry_run {
        reporter.phase(Phase::Attributes);
        set_dir_attrs(dst, &actions, opts, blocked, reporter, stats).await?;
    }
    tracing::debug!("done");
    Ok(())
}

/// `-H`: the later names of each group, linked to their leaders now that
/// every transfer is done, up to `opts.jobs` at once. A name found linked
/// already reads as unchanged.
async fn make_hard_links<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    actions: &[Action],
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let links = actions.iter().filter_map(|action| match action {
        Action::HardLink(link) => Some((action, link)),
        _ => None,
    });
    let mut making = futures::stream::iter(links)
        .map(|(action, link)| async move {
            let made = hard_links::make(dst, link, opts, places).await;
            let made = match made {
                Ok(linked) if opts.remove_source_files => {
                    let removed = moved::remove_source(
                        src,
                        dst,
                        &link.source,
                        &link.dest,
                        &link.source_meta,
                        &opts.links_policy,
                    )
                    .await;
                    removed.map(|()| linked)
                }
                other => other,
            };
            (action, made)
        })
        .buffered(opts.jobs.max(1));
    while let Some((action, made)) = making.next().await {
        if let Ok(hard_links::Linked::Already) = made {
            // As rsync's `-ii`: `hf          name`.
            stats.files_skipped += 1;
            reporter.finished(&Item {
                changes: Changes::default(),
                outcome: Outcome::Skipped,
                ..item_of(action, opts)
            });
            continue;
        }
        let outcome = made.map(|_| done(Outcome::Created));
        finish(
            item_of(action, opts),
            outcome,
            &places.blocked,
            reporter,
            stats,
        )?;
    }
    Ok(())
}

/// Starts an endpoint's helper while files already move; whatever stops
/// it, they keep going over SFTP (a lost connection ends the run through
/// the transfers themselves).
async fn start_helper_beside<E: Endpoint>(endpoint: &E) {
    if let Err(e) = endpoint.start_helper().await {
        tracing::info!("small files go over SFTP: {e}");
    }
}

async fn start_helper<S: Endpoint, D: Endpoint>(src: &S, dst: &D) -> Result<()> {
    tokio::try_join!(src.start_helper(), dst.start_helper()).map(drop)
}

/// New small files, past which starting the destination's helper (one more
/// SSH session, a process) pays for itself.
const SMALL_FILES_FOR_HELPER: usize = 256;

/// A small file whose data crosses (not one a basis DIR gives: linked or
/// copied there, it is no request of the helper's).
fn is_small_file(action: &Action, small: u64) -> bool {
    matches!(action, Action::File(job) if job.source_meta.size <= small)
        && from_basis(action).is_none()
}

/// Whether an action may hash files: a delta against an old file, the
/// check of a partial, the end-to-end check of either. A new file is sent
/// whole and needs none.
fn may_hash(action: &Action) -> bool {
    let builds_on_old = |job: &FileJob| match &job.basis {
        Some(basis) => basis.how == basis::Use::Delta,
        None => job.existing().is_some(),
    };
    matches!(action, Action::File(job) if builds_on_old(job) || job.partial().is_some())
}

/// A dry run reports what the actions would do. The symlinks' targets are
/// read, as a real run reads them, for the lines that show them (`%L`).
async fn dry_run<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    actions: &[Action],
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<()> {
    for action in actions {
        if matches!(
            action,
            Action::Dir { exists: true, .. } | Action::RemoveSource { .. }
        ) {
            continue;
        }
        let target = match link_target(src, dst, action).await {
            Err(e) if e.is_fatal() => return Err(e),
            found => found.ok().flatten(),
        };
        let mut item = item_of(action, opts);
        item.outcome = match from_basis(action) {
            Some(outcome) => outcome,
            None if item.outcome == Outcome::Attributes => item.outcome,
            None => Outcome::WouldSend,
        };
        reporter.finished(&Item {
            target: target.as_deref(),
            ..item
        });
    }
    Ok(())
}

/// What an action that takes its entry from a `--link-dest` (`--copy-dest`)
/// DIR reports, in a dry run as in a real one where the link works.
fn from_basis(action: &Action) -> Option<Outcome> {
    let how = match action {
        Action::File(job) => job.basis.as_ref().map(|b| b.how),
        Action::Symlink { alt, .. } => alt.as_ref().map(|b| b.how),
        Action::Dir { alt: Some(_), .. } => return Some(Outcome::Copied),
        _ => None,
    };
    match how? {
        basis::Use::Link => Some(Outcome::Linked),
        basis::Use::Copy => Some(Outcome::Copied),
        basis::Use::Delta => None,
    }
}

/// Where a symlink the action makes or touches points: the source's link
/// for a copy, the destination's (the same) for a change of time alone.
async fn link_target<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    action: &Action,
) -> Result<Option<String>> {
    match action {
        Action::Symlink { source, .. } => src.read_link(source).await.map(Some),
        Action::Attrs {
            dest,
            kind: Kind::Symlink,
            ..
        } => dst.read_link(dest).await.map(Some),
        _ => Ok(None),
    }
}

/// The report of an action before it runs: what it concerns and how that
/// differs from what the destination has.
fn item_of<'a>(action: &'a Action, opts: &Options) -> Item<'a> {
    let mut item = item_without_attributes(action, opts);
    if !item.changes.created {
        (item.changes.acl, item.changes.xattrs) = opts.xattrs_found.columns(item.path);
    }
    item
}

/// [`item_of`] but for the `a` and `x` columns.
fn item_without_attributes<'a>(action: &'a Action, opts: &Options) -> Item<'a> {
    match action {
        Action::File(job) => Item {
            size: job.source_meta.size,
            changes: changes_of(job, opts),
            meta: Some(job.source_meta),
            source: Some(&job.source),
            ..Item::new(&job.paths.dest, ItemKind::File, Outcome::Sent)
        },
        Action::Dir {
            dest,
            exists,
            meta,
            alt,
            ..
        } => Item {
            changes: match (alt, meta) {
                (Some(alt), Some(meta)) => dir_changes(meta, alt, opts),
                _ => Changes {
                    created: !exists,
                    ..Changes::default()
                },
            },
            meta: *meta,
            ..Item::new(dest, ItemKind::Dir, Outcome::Created)
        },
        Action::Symlink {
            source,
            dest,
            meta,
            alt,
            ..
        } => Item {
            changes: Changes {
                // One from a basis DIR is itemized against it, unchanged.
                created: alt.is_none(),
                ..Changes::default()
            },
            meta: Some(*meta),
            source: Some(source),
            ..Item::new(dest, ItemKind::Symlink, Outcome::Created)
        },
        Action::Attrs {
            dest,
            kind,
            mode,
            mtime,
            owner,
            source_meta,
            ..
        } => Item {
            meta: Some(*source_meta),
            changes: Changes {
                perms: mode.is_some(),
                time: match mtime {
                    Some(_) => TimeChange::Preserved,
                    None => TimeChange::Same,
                },
                ..Changes::default()
            }
            .with_owner(*owner),
            ..Item::new(dest, item_kind(*kind), Outcome::Attributes)
        },
        Action::RemoveSource { dest, meta, .. } => {
            Item::new(dest, item_kind(meta.kind), Outcome::Skipped)
        }
        Action::Node { source, dest, meta } => Item {
            changes: Changes {
                created: true,
                ..Changes::default()
            },
            meta: Some(*meta),
            source: Some(source),
            ..Item::new(dest, item_kind(meta.kind), Outcome::Created)
        },
        Action::HardLink(link) => Item {
            size: link.source_meta.size,
            changes: Changes {
                created: !link.had_file(),
                ..Changes::default()
            },
            meta: Some(link.source_meta),
            source: Some(&link.source),
            hard_link: Some(&link.leader),
            ..Item::new(&link.dest, ItemKind::File, Outcome::Created)
        },
    }
}

/// How a new directory differs from a `--link-dest` (and co.) DIR's
/// directory at its path, which rsync itemizes it against.
fn dir_changes(meta: &Meta, alt: &Meta, opts: &Options) -> Changes {
    let time = match dir_times(opts) && !alt.mtime.same(&meta.mtime) {
        true => TimeChange::Preserved,
        false => TimeChange::Same,
    };
    Changes {
        time,
        perms: opts.perms && alt.mode & 0o7777 != meta.mode & 0o7777,
        ..Changes::default()
    }
}

/// How a file to be sent differs from the destination's old one, or, for
/// a file the destination lacks, from the basis DIR's file it comes from
/// (rsync itemizes against that).
fn changes_of(job: &FileJob, opts: &Options) -> Changes {
    let existing = job.existing().filter(|m| m.kind == Kind::File);
    let Some(old) = existing.or(job.basis.as_ref().map(|b| b.meta)) else {
        return Changes {
            created: true,
            ..Changes::default()
        };
    };
    let new = &job.source_meta;
    // A link or local copy of an equal file gets no new time.
    let from_basis = job
        .basis
        .as_ref()
        .is_some_and(|b| b.how != basis::Use::Delta);
    let time = match (opts.times, old.mtime.same(&new.mtime)) {
        (true, true) => TimeChange::Same,
        (true, false) => TimeChange::Preserved,
        (false, _) if from_basis => TimeChange::Same,
        (false, _) => TimeChange::Now,
    };
    Changes {
        created: false,
        checksum: opts.checksum && old.size == new.size,
        size: old.size != new.size,
        time,
        perms: opts.perms && old.mode != new.mode,
        ..Changes::default()
    }
    .with_owner(opts.owners.change(new.owner, old.owner))
}

/// Bytes of file data all transfers together may hold in memory, as the
/// sum of each file's reservation (its size, at most its pipeline: about
/// 17 MiB over SFTP, 68 requests of 255 KiB, twice as many to a far
/// server): many small files beside at most two large ones (one to a far
/// server).
const MEMORY_BUDGET: u64 = 48 << 20;

/// Carries out the plan: first the missing directories, then files, links
/// and attributes with up to `opts.jobs` in flight, each file reserving
/// its share of [`MEMORY_BUDGET`] first. The directories' attributes come
/// after `--delete` ([`set_dir_attrs`]). Returns the files whose finished
/// partials wait for the end of the run (`--delay-updates`).
async fn execute<'a, S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    actions: &'a [Action],
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<Vec<&'a FileJob>> {
    make_dirs(dst, actions, opts, places, reporter, stats).await?;
    let budget = Semaphore::new(kib(MEMORY_BUDGET) as usize);
    let io = Pipeline::between(src, dst);
    // Small files cost round trips, not bandwidth: each session of a far
    // server takes as many in flight as one would.
    let sessions = src.features().sessions.max(dst.features().sessions);
    let in_flight = opts.jobs.max(1) * sessions.max(1);
    let mut running = FuturesUnordered::new();
    let mut delayed = Vec::new();
    let mut order = InOrder::new();
    let blocked = &places.blocked;
    let mut skipped = 0;
    let mut take = |action: &'a Action, done: Result<Transferred>, target: Option<String>| {
        if let (Action::File(job), Ok(Transferred { delayed: true, .. })) = (action, &done) {
            delayed.push(job);
        }
        finish(
            with_target(action, opts, &target),
            done,
            blocked,
            reporter,
            stats,
        )
    };
    let started = actions
        .iter()
        .filter(|action| !matches!(action, Action::Dir { .. } | Action::HardLink(_)));
    let mut seq = 0;
    for action in started {
        // A directory that failed, or a full destination, was reported
        // once: what would go there is not tried (it counts as failed).
        if blocked.stopping() {
            break;
        }
        if creates(action).is_some_and(|dest| blocked.covers(dest)) {
            skipped += 1;
            continue;
        }
        while running.len() >= in_flight {
            if let Some((seq, ran)) = running.next().await {
                for (action, done, target) in order.arrived(seq, ran) {
                    take(action, done, target)?;
                }
            }
        }
        let ctx = Ctx {
            opts,
            places,
            reporter,
            budget: &budget,
            io,
        };
        running.push(run_action(src, dst, action, ctx).map(move |ran| (seq, ran)));
        seq += 1;
    }
    // Those in flight finish even when the run stops: each that meets the
    // full disk removes its partial.
    while let Some((seq, ran)) = running.next().await {
        for (action, done, target) in order.arrived(seq, ran) {
            take(action, done, target)?;
        }
    }
    stats.files_failed += skipped;
    Ok(delayed)
}

/// The entry an action makes in the destination, if it makes one (a
/// failed directory's entries are not tried).
fn creates(action: &Action) -> Option<&str> {
    match action {
        Action::File(job) => Some(&job.paths.dest),
        Action::HardLink(link) => Some(&link.dest),
        Action::Dir { dest, .. } | Action::Symlink { dest, .. } | Action::Node { dest, .. } => {
            Some(dest)
        }
        Action::Attrs { .. } | Action::RemoveSource { .. } => None,
    }
}

/// `--delay-updates`: the files whose partials wait are renamed into place
/// now, after every transfer, as rsync's receiver renames them at the end
/// (one that fails is reported and the others go on; a run that ended
/// early renames none, and the next one finds them finished). Their
/// sources go only now with `--remove-source-files`.
async fn install_delayed<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    delayed: &[&FileJob],
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    // In order, as the plan has them: renames take about the same time
    // each, so none holds up the next for long.
    let mut installing = futures::stream::iter(delayed)
        .map(|&job| install_one(src, dst, job, opts, places))
        .buffered(opts.jobs.max(1));
    while let Some((job, done)) = installing.next().await {
        absorb(done, &job.paths.dest, &places.blocked, reporter, stats)?;
    }
    Ok(())
}

async fn install_one<'j, S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &'j FileJob,
    opts: &Options,
    places: &Places,
) -> (&'j FileJob, Result<()>) {
    let mut done = transfer::install(dst, job, opts, places, true).await;
    if done.is_ok() && opts.remove_source_files {
        done = remove_source(src, dst, job, opts).await;
    }
    (job, done)
}

/// `--remove-source-files`: the source of a file now in place goes, noted
/// so that `--delete` across a reconnect spares its copy.
async fn remove_source<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
) -> Result<()> {
    let removed = moved::after_copy(src, dst, job).await;
    if removed.is_ok() {
        opts.note_moved(&job.paths.dest);
    }
    removed
}

/// An action's report with the symlink target it made, if any.
fn with_target<'a>(action: &'a Action, opts: &Options, target: &'a Option<String>) -> Item<'a> {
    Item {
        target: target.as_deref(),
        ..item_of(action, opts)
    }
}

/// Makes the missing directories before any file starts, so that no file
/// waits on its directory: one level of depth at a time (a parent before
/// its children), up to `jobs` requests in flight within a level.
async fn make_dirs<D: Endpoint>(
    dst: &D,
    actions: &[Action],
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let jobs = opts.jobs;
    let missing: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Dir { exists: false, .. }))
        .collect();
    let depth = |dir: &Action| match dir {
        Action::Dir { dest, .. } => dest.trim_end_matches('/').matches('/').count(),
        _ => 0,
    };
    let mut levels: Vec<usize> = missing.iter().map(|d| depth(d)).collect();
    levels.sort_unstable();
    levels.dedup();
    let blocked = &places.blocked;
    for level in levels {
        // In order (each takes about one round trip): the lines come as
        // the plan has them. Below a directory that failed none is tried.
        let level: Vec<&Action> = missing
            .iter()
            .filter(|d| depth(d) == level)
            .filter(|d| !creates(d).is_some_and(|dest| blocked.skips(dest)))
            .copied()
            .collect();
        let mut making = futures::stream::iter(level)
            .map(|dir| make_dir(dst, dir, places))
            .buffered(jobs.max(1));
        while let Some((dir, made)) = making.next().await {
            match made {
                Err(Error::File(e)) => dir_failed(dir, e, blocked, reporter, stats),
                made => finish(item_of(dir, opts), made, blocked, reporter, stats)?,
            }
        }
        // The destination itself not made: every file would fail alike.
        blocked.check()?;
    }
    Ok(())
}

/// A directory that could not be made: reported, or blamed on its parent
/// once ([`Blocked::dir_failed`]).
fn dir_failed(
    dir: &Action,
    e: FileError,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) {
    stats.record_failure();
    let path = creates(dir).unwrap_or_default();
    if let Verdict::Report(shown) = blocked.dir_failed(path, e) {
        reporter.file_failed(path, &shown);
    }
}

fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).min(u32::MAX as u64) as u32
}

fn done(outcome: Outcome) -> Transferred {
    Transferred {
        outcome,
        sent: 0,
        reused: 0,
        delayed: false,
        verified: None,
    }
}

async fn make_dir<'a, D: Endpoint>(
    dst: &D,
    dir: &'a Action,
    places: &Places,
) -> (&'a Action, Result<Transferred>) {
    let Action::Dir {
        dest,
        meta,
        replaces,
        alt,
        ..
    } = dir
    else {
        return (dir, Ok(done(Outcome::Skipped)));
    };
    // The destination side's umask applies, as to rsync's mkdir; the owner
    // may write into it until its attributes are set at the end.
    let mode = meta.map_or(0o777, |m| m.mode & 0o777 | 0o700);
    let made = async {
        if *replaces {
            remove_or_back_up(dst, dest, places).await?;
        }
        dst.mkdir(dest, mode).await
    };
    // One a DIR has is reported as rsync does: against that one.
    let outcome = match alt {
        Some(_) => Outcome::Copied,
        None => Outcome::Created,
    };
    (dir, made.await.map(|_| done(outcome)))
}

/// A file, link or directory in the way of a new directory: removed, or
/// with `--backup` kept as a backup (a file or link).
async fn remove_or_back_up<D: Endpoint>(dst: &D, path: &str, places: &Places) -> Result<()> {
    let Some(backups) = &places.backups else {
        return dst.remove_file(path).await;
    };
    let Some(old) = dst.lstat(path).await? else {
        return Ok(());
    };
    match backups.keep(dst, path, &old, How::Rename).await? {
        backup::Kept::Moved => Ok(()),
        _ => dst.remove_file(path).await,
    }
}

/// What every action of a run shares.
#[derive(Clone, Copy)]
struct Ctx<'r> {
    opts: &'r Options,
    places: &'r Places,
    reporter: &'r dyn Reporter,
    budget: &'r Semaphore,
    io: Pipeline,
}

/// One action other than making a directory; returns it with its result
/// and, for a symlink, where it points (which the lines of `-i` and `-v`
/// show).
async fn run_action<'a, S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    action: &'a Action,
    ctx: Ctx<'_>,
) -> (&'a Action, Result<Transferred>, Option<String>) {
    let Ctx {
        opts,
        places,
        reporter,
        budget,
        io,
    } = ctx;
    let mut target = None;
    let result = match action {
        Action::File(job) => {
            let share = job.source_meta.size.min(io.memory()).min(MEMORY_BUDGET);
            // The semaphore is never closed: an error cannot happen here.
            let _reserved = budget.acquire_many(kib(share)).await.ok();
            let copied = transfer::transfer(src, dst, job, opts, places, reporter).await;
            match copied {
                // A delayed file's source goes once it is in place.
                Ok(done) if opts.remove_source_files && !done.delayed => {
                    remove_source(src, dst, job, opts).await.map(|()| done)
                }
                other => other,
            }
        }
        Action::Symlink {
            source,
            dest,
            meta,
            set_time,
            alt,
        } => {
            let mtime = set_time.then_some(meta.mtime);
            let made = match alt {
                Some(alt) => {
                    symlink_from_basis(src, dst, (source, dest), alt, (mtime, meta.owner), ctx)
                        .await
                }
                None => copy_symlink(src, dst, source, dest, (mtime, meta.owner), opts, places)
                    .await
                    .map(|target| (target, Outcome::Created)),
            };
            match made {
                Ok((made, outcome)) => {
                    target = Some(made);
                    match opts.remove_source_files {
                        true => {
                            let links = &opts.links_policy;
                            let removed =
                                moved::remove_source(src, dst, source, dest, meta, links).await;
                            if removed.is_ok() {
                                opts.note_moved(dest);
                            }
                            removed.map(|()| done(outcome))
                        }
                        false => Ok(done(outcome)),
                    }
                }
                Err(e) => Err(e),
            }
        }
        Action::RemoveSource { source, dest, meta } => {
            let removed =
                moved::remove_source(src, dst, source, dest, meta, &opts.links_policy).await;
            if removed.is_ok() {
                opts.note_moved(dest);
            }
            removed.map(|()| done(Outcome::Skipped))
        }
        Action::Attrs {
            dest,
            mode,
            mtime,
            owner,
            set_id_mode,
            ..
        } => {
            let set = async {
                // The owner first: chown clears the set-id bits the mode
                // has, which are then set again.
                dst.set_owner(dest, *owner).await?;
                let mode = mode.or(*set_id_mode);
                set_attrs(dst, dest, mode, *mtime).await
            };
            let set = set.await;
            if set.is_ok() {
                // Only for the line: a link that cannot be read is shown
                // without its target.
                target = link_target(src, dst, action).await.ok().flatten();
            }
            set.map(|()| done(Outcome::Attributes))
        }
        Action::Node { dest, meta, .. } => nodes::make(dst, dest, meta, opts, places)
            .await
            .map(|()| done(Outcome::Created)),
        Action::Dir { .. } | Action::HardLink(_) => Ok(done(Outcome::Skipped)),
    };
    (action, result, target)
}

/// A symlink a `--link-dest` DIR has as the source has it: hard-linked
/// from there (rsync links symlinks too), or, where the destination cannot
/// link or with `--copy-dest`, made anew and reported as copied.
async fn symlink_from_basis<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    (source, dest): (&str, &str),
    alt: &basis::LinkBasis,
    made_with: (Option<Mtime>, Option<crate::meta::Owner>),
    ctx: Ctx<'_>,
) -> Result<(String, Outcome)> {
    if alt.how == basis::Use::Link && basis::linked(dst, &alt.path, dest, ctx.reporter).await? {
        return Ok((alt.target.clone(), Outcome::Linked));
    }
    let made = copy_symlink(src, dst, source, dest, made_with, ctx.opts, ctx.places).await?;
    Ok((made, Outcome::Copied))
}

/// Takes in one action's result: counts it and reports it, or, for an
/// error that ends the connection, ends the run.
fn finish(
    mut item: Item<'_>,
    done: Result<Transferred>,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let Some(done) = absorb(done, item.path, blocked, reporter, stats)? else {
        return Ok(());
    };
    match done.outcome {
        Outcome::Sent => stats.files_sent += 1,
        Outcome::Resumed => stats.files_resumed += 1,
        Outcome::Delta => stats.files_delta += 1,
        Outcome::Linked if item.kind == ItemKind::File => stats.files_linked += 1,
        Outcome::Copied if item.kind == ItemKind::File => stats.files_copied += 1,
        _ => {}
    }
    if item.changes.created && done.outcome != Outcome::Skipped {
        stats.created += 1;
    }
    if done.outcome == Outcome::Skipped {
        return Ok(());
    }
    stats.bytes_sent += done.sent;
    stats.bytes_reused += done.reused;
    let moved_data = !matches!(
        done.outcome,
        Outcome::Attributes | Outcome::Linked | Outcome::Copied
    );
    stats.bytes_transferred_files += match item.kind {
        ItemKind::File if moved_data => item.size,
        _ => 0,
    };
    item.outcome = done.outcome;
    item.sent = done.sent;
    item.reused = done.reused;
    if done.outcome == Outcome::Resumed {
        item.resumed_from = done.reused;
    }
    item.verified = done.verified;
    reporter.finished(&item);
    Ok(())
}

/// The per-file error policy: an error that ends the connection ends the
/// run; any other is counted, and reported unless its cause was already
/// (a failed directory, a full destination: [`Blocked::failed_at`]), and
/// the run goes on, or, once the destination is full, winds down.
fn absorb<T>(
    result: Result<T>,
    path: &str,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::File(e)) => {
            stats.record_failure();
            if let Verdict::Report(shown) = blocked.failed_at(path, e) {
                reporter.file_failed(path, &shown);
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Directory times and permissions go last, once every file is in place:
/// writing into a directory would change its mtime again, and a read-only
/// mode would block the writes. Among directories the order does not
/// matter (setting a child's attributes changes nothing in its parent), so
/// up to `opts.jobs` go at once: one at a time, 1,000 directories cost
/// 1,000 round trips.
async fn set_dir_attrs<D: Endpoint>(
    dst: &D,
    actions: &[Action],
    opts: &Options,
    blocked: &Blocked,
    reporter: &dyn Reporter,
    stats: &mut Stats,
) -> Result<()> {
    let dirs = actions.iter().filter_map(|action| match action {
        Action::Dir {
            dest,
            meta: Some(meta),
            exists,
            ..
        } => {
            let owner_added = !exists && meta.mode & 0o700 != 0o700;
            let wanted = opts.perms || dir_times(opts) || owner_added || opts.owners.wanted();
            // One not made was reported already.
            (wanted && !blocked.covers(dest)).then_some((dest, meta, *exists))
        }
        _ => None,
    });
    // In order, each about one round trip: errors come as the plan has them.
    let mut setting = futures::stream::iter(dirs)
        .map(|(dest, meta, exists)| set_dir_attr(dst, dest, meta, exists, opts))
        .buffered(opts.jobs.max(1));
    while let Some((dir, set)) = setting.next().await {
        absorb(set, dir, blocked, reporter, stats)?;
    }
    Ok(())
}

/// Whether directories get the source's times (`--times` without `-O`).
fn dir_times(opts: &Options) -> bool {
    opts.times && !opts.omit_dir_times
}

async fn set_dir_attr<'a, D: Endpoint>(
    dst: &D,
    dir: &'a str,
    meta: &Meta,
    exists: bool,
    opts: &Options,
) -> (&'a str, Result<()>) {
    // The owner first: chown may clear a set-id bit the mode then sets.
    // Where the mode set has none, a directory ferry made (no look at its
    // owner first) takes all three at once: one round trip, not two.
    if opts.perms && !exists && meta.mode & 0o6000 == 0 {
        let (owned, rest) = tokio::join!(
            set_dir_owner(dst, dir, meta, exists, opts),
            set_dir_mode_and_time(dst, dir, meta, exists, opts)
        );
        return (dir, owned.and(rest));
    }
    if let Err(e) = set_dir_owner(dst, dir, meta, exists, opts).await {
        return (dir, Err(e));
    }
    (
        dir,
        set_dir_mode_and_time(dst, dir, meta, exists, opts).await,
    )
}

/// A directory's permissions (or, without `--perms`, the owner's bits
/// taken back from a new one) and time, at once.
async fn set_dir_mode_and_time<D: Endpoint>(
    dst: &D,
    dir: &str,
    meta: &Meta,
    exists: bool,
    opts: &Options,
) -> Result<()> {
    let (moded, timed) = tokio::join!(
        async {
            match (opts.perms, exists) {
                (true, _) => dst.set_mode(dir, meta.mode).await,
                (false, false) => take_back_owner_bits(dst, dir, meta.mode).await,
                (false, true) => Ok(()),
            }
        },
        async {
            if dir_times(opts) {
                dst.set_mtime(dir, meta.mtime).await
            } else {
                Ok(())
            }
        }
    );
    moded.and(timed)
}

/// A directory's owner and group: one ferry made is whoever's writes; an
/// existing one is looked at again (the plan reported what differed).
async fn set_dir_owner<D: Endpoint>(
    dst: &D,
    dir: &str,
    meta: &Meta,
    exists: bool,
    opts: &Options,
) -> Result<()> {
    if !opts.owners.wanted() {
        return Ok(());
    }
    let old = match exists {
        true => match dst.lstat(dir).await? {
            Some(old) => old.owner,
            None => return Ok(()),
        },
        false => None,
    };
    let change = opts.owners.change(meta.owner, old);
    dst.set_owner(dir, change).await.map(drop)
}

fn item_kind(kind: Kind) -> ItemKind {
    match kind {
        Kind::Dir => ItemKind::Dir,
        Kind::Symlink => ItemKind::Symlink,
        Kind::Node(node) if node.kind.is_device() => ItemKind::Device,
        Kind::Node(_) => ItemKind::Special,
        _ => ItemKind::File,
    }
}

/// Sets what is given of an entry's permissions and time, at once.
async fn set_attrs<D: Endpoint>(
    dst: &D,
    path: &str,
    mode: Option<u32>,
    mtime: Option<Mtime>,
) -> Result<()> {
    let (moded, timed) = tokio::join!(
        async {
            match mode {
                Some(mode) => dst.set_mode(path, mode).await,
                None => Ok(()),
            }
        },
        async {
            match mtime {
                Some(mtime) => dst.set_mtime(path, mtime).await,
                None => Ok(()),
            }
        }
    );
    moded.and(timed)
}

/// A new directory without `--perms` keeps what mkdir gave it (the
/// source's mode under the destination side's umask, and the setgid bit
/// it inherited, as with rsync), less the owner bits it was made with only
/// so that ferry could fill it.
async fn take_back_owner_bits<D: Endpoint>(dst: &D, dir: &str, source_mode: u32) -> Result<()> {
    if source_mode & 0o700 == 0o700 {
        return Ok(());
    }
    let Some(made) = dst.lstat(dir).await?.filter(|m| m.kind == Kind::Dir) else {
        return Ok(());
    };
    let mode = made.mode & (source_mode | 0o7077);
    match mode == made.mode {
        true => Ok(()),
        false => dst.set_mode(dir, mode).await,
    }
}

/// Readies `dest` (holding `old`) for an entry made under a temporary
/// name and renamed over it, and returns that name: a directory in the
/// way goes (with `--force` or `--delete`), an old file or link is kept
/// as a backup where asked (keeping its name until the rename), and
/// whatever an earlier run left under the temporary name is removed.
async fn make_way_for<D: Endpoint>(
    dst: &D,
    dest: &str,
    old: Option<&Meta>,
    opts: &Options,
    places: &Places,
) -> Result<String> {
    let backups = places.backups.as_ref();
    match old {
        Some(m) if m.kind == Kind::Dir => {
            delete::make_way(dst, dest, opts.delete || opts.force, backups).await?
        }
        Some(m) => {
            if let Some(backups) = backups {
                backups.keep(dst, dest, m, How::Link).await?;
            }
        }
        None => {}
    }
    let name = crate::endpoint::base_name(dest);
    let temp = crate::endpoint::join(crate::endpoint::parent(dest), &partial::partial_name(name));
    if dst.lstat(&temp).await?.is_some() {
        dst.remove_file(&temp).await?;
    }
    Ok(temp)
}

/// Whether `endpoint` offers what `has` asks of its [`Features`], starting
/// its helper for it first where it does not yet (a remote side may offer
/// more once the helper runs).
async fn offers<E: Endpoint>(endpoint: &E, has: fn(&Features) -> bool) -> Result<bool> {
    if !has(&endpoint.features()) {
        endpoint.start_helper().await?;
    }
    Ok(has(&endpoint.features()))
}

/// Creates the link under a temporary name and renames it over the
/// destination, so an existing link or file is replaced in one step.
/// Returns where the link points.
async fn copy_symlink<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &str,
    dest: &str,
    (mtime, owner): (Option<Mtime>, Option<crate::meta::Owner>),
    opts: &Options,
    places: &Places,
) -> Result<String> {
    let target = opts.links_policy.target(src.read_link(source).await?);
    let old = dst.lstat(dest).await?;
    let temp = make_way_for(dst, dest, old.as_ref(), opts, places).await?;
    dst.symlink(&target, &temp).await?;
    if dst.features().link_owners {
        let change = opts.owners.change(owner, None);
        dst.set_owner(&temp, change).await?;
    }
    if let Some(mtime) = mtime {
        dst.set_mtime(&temp, mtime).await?;
    }
    dst.rename(&temp, dest).await?;
    Ok(target)
}

/// The entries of `dir` on `endpoint` it could not name, each an error of
/// its own (the run goes on with their neighbours and exits 23).
pub(crate) fn unnamed_errors<'a, E: Endpoint>(
    endpoint: &'a E,
    dir: &'a str,
    listing: &'a Listing,
) -> impl Iterator<Item = FileError> + 'a {
    listing.unnamed.iter().map(move |unnamed| {
        let message = match unnamed.why {
            Unnameable::NotUtf8 => "the server gives a name that is not valid UTF-8, which ferry \
                                    cannot address over SFTP yet; rename or exclude it"
                .to_string(),
            Unnameable::TooLong { len, limit } => format!(
                "the server gives a name of {len} bytes, more than the {limit} ferry takes \
                 for one name (a broken or hostile server?); skipped"
            ),
        };
        FileError::refused(endpoint.label(), join(dir, &unnamed.shown), message)
    })
}
