//! Executing one file copy: resume from a verified partial, pipelined copy of
//! the rest, attributes, a synced close where an old file is at stake, and
//! the atomic rename into place.

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::backup::How;
use super::basis::{Basis, Use};
use super::compare;
use super::partial::{self, Paths, Sidecar};
use super::staging::Places;
use super::Options;
use crate::delta::{self, Piece};
use crate::endpoint::{
    self, hashes, Attrs, CopyRange, Endpoint, FileHandle, Hashing, Kind, Meta, Pipeline, WriteMode,
    SPREAD_FROM,
};
use crate::error::{Cause, Error, Fate, FileError, Host, Problem, Result};
use crate::meta::OwnerChange;
use crate::report::{FileStep, Outcome, Reporter, Verified};

/// One file to bring up to date.
#[derive(Debug, Clone)]
pub(crate) struct FileJob {
    pub source: String,
    pub source_meta: Meta,
    pub paths: Paths,
    /// The destination as it is now, if any ([`FileJob::existing`]).
    /// Boxed, as `partial`: a plan holds a job per file to copy, and a
    /// fresh copy's jobs have neither (80 bytes each saved).
    pub existing: Option<Box<Meta>>,
    /// A partial left by an earlier run, if any ([`FileJob::partial`]).
    pub partial: Option<Box<Meta>>,
    /// A partial's sidecar is there (it may outlive its partial when a run
    /// stopped right after the rename).
    pub sidecar: bool,
    /// Where the destination lacks the file, a `--link-dest`,
    /// `--copy-dest` or `--compare-dest` DIR's file it comes from.
    pub basis: Option<Box<Basis>>,
}

impl FileJob {
    /// The destination as it is now, if any.
    pub(crate) fn existing(&self) -> Option<Meta> {
        self.existing.as_deref().copied()
    }

    /// A partial left by an earlier run, if any.
    pub(crate) fn partial(&self) -> Option<Meta> {
        self.partial.as_deref().copied()
    }

    /// The file a delta builds on, with its metadata: the old destination,
    /// else a DIR's file chosen as the basis.
    pub(crate) fn old(&self) -> Option<(&str, Meta)> {
        if let Some(old) = self.existing().filter(|m| m.kind == Kind::File) {
            return Some((&self.paths.dest, old));
        }
        match &self.basis {
            Some(basis) if basis.how == Use::Delta => Some((&basis.path, basis.meta)),
            _ => None,
        }
    }
}

/// What one file's transfer did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transferred {
    pub outcome: Outcome,
    /// File data bytes that crossed from the source.
    pub sent: u64,
    /// Bytes taken from what the destination already had.
    pub reused: u64,
    /// `--delay-updates`: the finished partial waits to be renamed into
    /// place at the end of the run ([`install`]).
    pub delayed: bool,
    /// How the copy was found equal to the source, if it was.
    pub verified: Option<Verified>,
}

/// How the partial came to hold the new file.
#[derive(Debug, Clone, Copy, Default)]
struct Filled {
    /// Bytes taken from what the destination side already had.
    reused: u64,
    /// Bytes that crossed from the source.
    sent: u64,
    /// Built from an old destination or a partial rather than copied whole:
    /// what the end-to-end check exists for.
    assembled: bool,
    by_delta: bool,
    /// A resume sidecar was written beside the partial.
    wrote_sidecar: bool,
    /// Permissions and times were set on the open file.
    attrs_set: bool,
    /// How the result was found equal to the source, if it was.
    verified: Option<Verified>,
    /// The old destination already held the source's content and was
    /// kept, its attributes set where it is ([`keep_as_is`]): no partial.
    kept_old: bool,
}

/// Copies one file; returns how it went. The destination is replaced only by
/// a complete copy (synced first when it replaces an old file), and, when
/// both sides can hash, only by one whose content equals the source's. A
/// file whose data found no room on the destination leaves no partial
/// there ([`out_of_room`]).
pub(crate) async fn transfer<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
) -> Result<Transferred> {
    let in_place = writes_in_place(job, opts);
    match transfer_file(src, dst, job, opts, places, reporter).await {
        Err(Error::File(e)) if is_out_of_room(dst, job, &e) => {
            Err(out_of_room(dst, job, in_place, e).await)
        }
        done => done,
    }
}

/// `--inplace` on a file the destination has as a file: rewritten where
/// it lies, no partial.
fn writes_in_place(job: &FileJob, opts: &Options) -> bool {
    opts.inplace && job.existing().is_some_and(|m| m.kind == Kind::File)
}

/// Whether `e` says the destination had no room for the file's data: no
/// space, quota or file size limit here or through the helper, or, over
/// SFTP, the generic failure on a write to its partial or sidecar (which
/// is what OpenSSH's sftp-server answers for all three; a failure to
/// create the partial is its directory's, [`endpoint::create_in`]).
fn is_out_of_room<D: Endpoint>(dst: &D, job: &FileJob, e: &FileError) -> bool {
    if &e.host != dst.label() || matches!(e.cause, Cause::Dir { .. }) {
        return false;
    }
    let paths = &job.paths;
    let working = [&paths.partial(), &paths.meta(), &paths.dest];
    match e.problem() {
        Problem::NoSpace => true,
        Problem::Failure => working.iter().any(|p| **p == e.path),
        _ => false,
    }
}

/// The error of a file whose data found no room, named by the file: its
/// partial is removed (with its sidecar), as rsync removes its temporary
/// file. On a full disk a partial only keeps the disk full, and resuming
/// it needs room the disk has not got; the next run, once there is room,
/// sends the file again. An `--inplace` file is the file itself: left as
/// far as it was written. A connection lost meanwhile is the error then
/// (the partial stays, for the reconnected run to check).
async fn out_of_room<D: Endpoint>(dst: &D, job: &FileJob, in_place: bool, e: FileError) -> Error {
    let fate = match in_place {
        true => Fate::InPlace,
        false => {
            let (partial, sidecar) = (job.paths.partial(), job.paths.meta());
            let (partial, _) = tokio::join!(dst.remove_file(&partial), dst.remove_file(&sidecar));
            match partial {
                Ok(()) => Fate::Removed,
                Err(Error::File(gone)) if gone.problem() == Problem::NotFound => Fate::Removed,
                Err(Error::File(kept)) => Fate::Kept(kept.to_string()),
                Err(fatal) => return fatal,
            }
        }
    };
    let cause = Cause::NoSpace {
        cause: Box::new(e.cause),
        fate,
    };
    FileError::new(&e.host, job.paths.dest.as_str(), cause).into()
}

async fn transfer_file<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
    reporter: &dyn Reporter,
) -> Result<Transferred> {
    // First what may fail the file for certain, before anything (the
    // umask probe) leaves a trace in its directory.
    clear_a_directory(dst, job, opts, places, Stage::Before).await?;
    if let Some(basis) = job.basis.as_ref().filter(|b| b.how != Use::Delta) {
        return super::basis::make_from(dst, job, basis, opts, places, reporter).await;
    }
    let attrs = attrs_for(dst, job, opts).await?;
    let in_place = writes_in_place(job, opts);
    if !in_place {
        places.prepare(dst, job).await?;
    }
    if goes_whole_at_once(src, dst, job, opts, places) {
        return put_small(src, dst, job, opts, places, attrs, reporter).await;
    }
    if let (true, Some(backups), Some(old)) = (in_place, &places.backups, &job.existing()) {
        // The file itself is about to change: its backup is a copy.
        backups.keep_copy(dst, &job.paths.dest, old).await?;
    }
    let handle = src.open_read(&job.source).await?;
    let source = SourceFile {
        file: &handle,
        meta: job.source_meta,
        host: src.label().clone(),
        path: &job.source,
        dest: &job.paths.dest,
    };
    let filled = if in_place {
        patch_in_place(src, dst, &source, job, opts.delta, reporter).await
    } else {
        let keep = may_keep_as_is(job, opts, places, attrs);
        fill_and_check(src, dst, &source, job, opts, attrs, keep, reporter).await
    };
    let filled = match filled {
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => {
            handle.close(false).await?;
            return Err(e);
        }
        Ok(filled) => filled,
    };
    let in_place = in_place || filled.kept_old;
    let written = if in_place {
        &job.paths.dest
    } else {
        &job.paths.partial()
    };
    // Independent requests, one round trip: a small file's cost is its
    // round trips.
    let (closed, unchanged, attrs) = tokio::join!(
        handle.close(false),
        check_source_unchanged(src, job),
        async {
            if filled.attrs_set {
                Ok(())
            } else {
                apply_attrs(dst, written, attrs).await
            }
        }
    );
    closed?;
    unchanged?;
    attrs?;
    let delayed = !in_place && places.delays();
    if !in_place && !delayed {
        install(dst, job, opts, places, filled.wrote_sidecar || job.sidecar).await?;
    }
    let outcome = match filled {
        Filled { reused: 0, .. } => Outcome::Sent,
        Filled { by_delta: true, .. } => Outcome::Delta,
        _ => Outcome::Resumed,
    };
    Ok(Transferred {
        outcome,
        sent: filled.sent,
        reused: filled.reused,
        delayed,
        verified: filled.verified,
    })
}

/// Puts the finished partial in place: what is in the way goes (a
/// directory) or is backed up (`--backup`), then the rename. The sidecar
/// goes with the rename, in the same round trip: should the rename fail, a
/// partial without one is verified whole on resume.
pub(super) async fn install<D: Endpoint>(
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
    drop_sidecar: bool,
) -> Result<()> {
    clear_a_directory(dst, job, opts, places, Stage::Installing).await?;
    keep_old(dst, job, places).await?;
    // -X, -A: the file arrives with its attributes, as rsync's temporary
    // file does: never a moment without the ACL that restricts it.
    super::xattrs::give(dst, &job.paths.partial(), &job.paths.dest, opts).await?;
    let (renamed, _) = tokio::join!(places.rename_into_place(dst, job), async {
        if drop_sidecar {
            let _ = dst.remove_file(&job.paths.meta()).await;
        }
    });
    renamed
}

/// `--backup`: the old file or symlink about to be replaced is linked to
/// its backup name, its own name left for the rename to replace.
async fn keep_old<D: Endpoint>(dst: &D, job: &FileJob, places: &Places) -> Result<()> {
    match (&places.backups, job.existing()) {
        (Some(backups), Some(old)) if places.keeps_old(job) => {
            backups.keep(dst, &job.paths.dest, &old, How::Link).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A file that fits in one request, with no old version to build it from,
/// is read whole and installed in one step ([`Endpoint::put_whole`]): a
/// partial left of it is not worth checking, it is simply overwritten.
/// Not when something must happen between the write and the rename (a
/// backup of the old version, a rename delayed to the end, `-X`/`-A`'s
/// attributes) or the rename may fail for good (from a temp dir on another
/// file system).
fn goes_whole_at_once<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
) -> bool {
    let in_place = writes_in_place(job, opts);
    let staged =
        places.keeps_old(job) || places.delays() || places.in_temp_dir(job) || opts.xattrs.wanted();
    job.source_meta.size <= Pipeline::between(src, dst).chunk as u64
        && !(in_place || staged)
        && !delta_worth_trying(src, dst, job, opts)
}

/// The whole-at-once copy: read (with the source's size and mtime after the
/// read, to refuse a file that changed meanwhile), install.
async fn put_small<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
    attrs: Attrs,
    reporter: &dyn Reporter,
) -> Result<Transferred> {
    let size = job.source_meta.size;
    reporter.file_started(&job.paths.dest, size, 0);
    let whole = src.read_whole(&job.source, size).await?;
    let unchanged = whole
        .stamp
        .is_some_and(|(now, mtime)| now == size && mtime.same(&job.source_meta.mtime));
    if !unchanged {
        return Err(changed_while_read(src, job));
    }
    let data = whole.data;
    if (data.len() as u64) < size {
        return Err(shrank(src.label(), &job.source, size));
    }
    if data.len() as u64 > size {
        // The helper reads to the end, and found more than the size the
        // file has before and after: it changed in between.
        return Err(changed_while_read(src, job));
    }
    let sync = sync_before_rename(job, opts);
    clear_a_directory(dst, job, opts, places, Stage::Installing).await?;
    // A new file and a rename: refused only by the directory.
    dst.put_whole(&job.paths.partial(), &job.paths.dest, data, attrs, sync)
        .await
        .map_err(|e| endpoint::refused_by_dir(e, false))?;
    reporter.bytes_done(&job.paths.dest, size);
    if job.sidecar {
        let _ = dst.remove_file(&job.paths.meta()).await;
    }
    Ok(Transferred {
        outcome: Outcome::Sent,
        sent: size,
        reused: 0,
        delayed: false,
        verified: None,
    })
}

/// When a directory where the file goes is removed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before anything is copied.
    Before,
    /// Just before the file takes its place.
    Installing,
}

/// A directory where the file goes is removed as rsync removes it
/// ([`super::delete::make_way`]): an empty one before the copy starts (a
/// non-empty one then fails the file before anything is written), and
/// with `--delete` or `--force`, contents and all, only once its
/// replacement is complete. With `--backup` its contents are kept as
/// backups, before the copy (as rsync): beside them they keep the
/// directory, which then fails the file before anything is copied.
async fn clear_a_directory<D: Endpoint>(
    dst: &D,
    job: &FileJob,
    opts: &Options,
    places: &Places,
    stage: Stage,
) -> Result<()> {
    let recursive = opts.delete || opts.force;
    let backups = places.backups.as_ref();
    let now = match stage {
        Stage::Before => !recursive || backups.is_some(),
        Stage::Installing => recursive && backups.is_none(),
    };
    match job.existing().map(|m| m.kind) {
        Some(Kind::Dir) if now => {
            super::delete::make_way(dst, &job.paths.dest, recursive, backups).await
        }
        _ => Ok(()),
    }
}

/// Whether the partial is synced to disk before it is renamed into place:
/// always when it replaces an old file, which a crash must not cost; for a
/// new file only with `--fsync`, as rsync does (a crash can then lose only
/// the new copy, which the next run sees as missing or short, since file
/// systems such as ext4 and XFS persist a size only with its data, and
/// sends again).
fn sync_before_rename(job: &FileJob, opts: &Options) -> bool {
    opts.fsync || job.existing().is_some()
}

/// Fills the partial the cheapest safe way, then checks an assembled result
/// end to end; a mismatch is sent again whole, once, and a second mismatch
/// is an error: never a silent success. With `keep`, an old destination
/// found equal to the source is kept instead ([`keep_as_is`]).
#[allow(clippy::too_many_arguments)]
async fn fill_and_check<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    opts: &Options,
    attrs: Attrs,
    keep: bool,
    reporter: &dyn Reporter,
) -> Result<Filled> {
    let io = Pipeline::between(src, dst);
    let keep = keep.then_some(attrs);
    let by_delta = if delta_worth_trying(src, dst, job, opts) && can_assemble(dst, job) {
        fill_by_delta::<S, D>(src, dst, source, job, keep, io, reporter).await?
    } else {
        None
    };
    let (filled, matches) = match by_delta {
        Some(checked) => checked,
        None => {
            let checkable = can_check_end_to_end(src, dst);
            let filled =
                fill_partial::<S, D>(dst, source, job, opts, attrs, io, checkable, reporter)
                    .await?;
            if !filled.assembled || !checkable {
                return Ok(filled);
            }
            reporter.file_step(&job.paths.dest, FileStep::Checking, 0);
            (filled, matches_end_to_end(src, dst, job).await?)
        }
    };
    let verified = Some(Verified::Hashes(checked_by(src, dst)));
    if matches {
        return Ok(Filled { verified, ..filled });
    }
    tracing::warn!(
        "{}: the assembled copy does not match the source end to end; sending it whole",
        job.paths.dest
    );
    let fresh = FileJob {
        partial: None,
        ..job.clone()
    };
    let again = fill_partial::<S, D>(dst, source, &fresh, opts, attrs, io, true, reporter).await?;
    reporter.file_step(&job.paths.dest, FileStep::Checking, 0);
    if !matches_end_to_end(src, dst, job).await? {
        let message = "the copy still differs from the source after a full resend; not installed";
        return Err(FileError::refused(dst.label(), job.paths.dest.as_str(), message).into());
    }
    Ok(Filled {
        sent: filled.sent + again.sent,
        verified,
        ..again
    })
}

/// `--inplace`: the destination itself is rewritten, as rsync does when asked:
/// no partial, no copy inside the server, so it works where copy-data does
/// not, at the price of a half-updated file if the run is cut. With hashing,
/// only blocks that differ at the same offset are written (moved content is
/// not searched for: copying within a file being rewritten could read bytes
/// already overwritten); without, the whole file is. The end-to-end check
/// applies as for any assembled file.
async fn patch_in_place<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    use_delta: bool,
    reporter: &dyn Reporter,
) -> Result<Filled> {
    let io = Pipeline::between(src, dst);
    let size = job.source_meta.size;
    let old_size = job.existing().map(|m| m.size).unwrap_or(0);
    let algo = hashes::common_algorithm(src, dst).filter(|_| can_check_end_to_end(src, dst));
    let delta = match algo {
        Some(algo)
            if use_delta
                && size > 0
                && old_size > 0
                && src.hashes().hashing() == Hashing::AtTheData =>
        {
            let dest = &job.paths.dest;
            reporter.file_step(dest, FileStep::Hashing, size);
            let hashed = |n| reporter.step_done(dest, n);
            compare::compare(src, &job.source, size, dst, dest, old_size, algo, &hashed).await?
        }
        _ => delta::Delta {
            pieces: vec![Piece::Send {
                offset: 0,
                len: size,
            }],
            send_bytes: size,
            reuse_bytes: 0,
            source_hashes: Vec::new(),
        },
    };
    reporter.file_started(&job.paths.dest, size, delta.reuse_bytes);
    let sends: Vec<_> = delta
        .pieces
        .iter()
        .filter_map(|p| match *p {
            Piece::Send { offset, len } => Some(offset..offset + len),
            Piece::Reuse { .. } => None,
        })
        .collect();
    write_in_place::<S, D>(dst, source, job, &sends, io, reporter).await?;
    let filled = Filled {
        reused: delta.reuse_bytes,
        sent: delta.send_bytes,
        assembled: delta.reuse_bytes > 0,
        by_delta: delta.reuse_bytes > 0,
        wrote_sidecar: false,
        attrs_set: false,
        verified: algo.map(|_| Verified::Hashes(checked_by(src, dst))),
        kept_old: false,
    };
    let in_place = FileJob {
        paths: Paths::placed(
            job.paths.dest.clone(),
            job.paths.dest.clone(),
            job.paths.meta(),
        ),
        ..job.clone()
    };
    if algo.is_some() {
        reporter.file_step(&job.paths.dest, FileStep::Checking, 0);
    }
    let matches = match algo {
        None => true,
        // The comparison hashed the source already: only this side reads.
        Some(algo) if !delta.source_hashes.is_empty() => {
            holds_hashes(dst, &job.paths.dest, size, algo, &delta.source_hashes).await?
        }
        Some(_) => matches_end_to_end(src, dst, &in_place).await?,
    };
    if matches {
        return Ok(filled);
    }
    tracing::warn!(
        "{}: patched in place but differs from the source; rewriting it whole",
        job.paths.dest
    );
    let whole = std::iter::once(0..size).collect::<Vec<_>>();
    write_in_place::<S, D>(dst, source, job, &whole, io, reporter).await?;
    if !matches_end_to_end(src, dst, &in_place).await? {
        let message = "the file still differs from the source after rewriting it";
        return Err(FileError::refused(dst.label(), job.paths.dest.as_str(), message).into());
    }
    Ok(Filled {
        sent: filled.sent + size,
        ..filled
    })
}

/// Writes `ranges` of the source into the destination file itself, then
/// cuts it to the source's size and syncs it.
async fn write_in_place<S: Endpoint, D: Endpoint>(
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    ranges: &[std::ops::Range<u64>],
    io: Pipeline,
    reporter: &dyn Reporter,
) -> Result<()> {
    let out = dst
        .open_write(&job.paths.dest, WriteMode::Keep, 0o600)
        .await?;
    let mut written = Ok(());
    for range in ranges {
        written = copy_range::<S, D>(source, &out, range.clone(), io, reporter).await;
        if written.is_err() {
            break;
        }
    }
    if written.is_ok() {
        written = out.set_len(job.source_meta.size).await;
    }
    match written {
        Ok(()) => out.close(true).await,
        Err(e) => {
            if !e.is_fatal() {
                let _ = out.close(false).await;
            }
            Err(e)
        }
    }
}

/// A delta pays off when the old destination is a file to build from and the
/// source's hashes are cheap (hashing a remote source by reading it would
/// cost the transfer it is meant to save).
fn delta_worth_trying<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
    opts: &Options,
) -> bool {
    opts.delta
        && job.partial().is_none_or(|p| p.size == 0)
        && job.old().is_some_and(|(_, old)| old.size > 0)
        && job.source_meta.size > 0
        && job.source_meta.size >= src.hashes().smallest_delta()
        && job.source_meta.size >= dst.hashes().smallest_delta()
        && src.hashes().hashing() == Hashing::AtTheData
        && dst.hashes().hashing() != Hashing::Off
}

/// Whether the destination can build a file from its old version (copying
/// within itself): where it cannot, a delta would send every byte anyway,
/// so the comparison is not made.
fn can_assemble<D: Endpoint>(dst: &D, job: &FileJob) -> bool {
    let features = dst.features();
    if features.copies_ranges || features.copies_within {
        return true;
    }
    tracing::info!(
        "{}: the server cannot copy data within itself (no copy-data); sending the whole file",
        job.paths.dest
    );
    false
}

/// The tier that hashed the remote side's file in an end-to-end check (the
/// destination's, or the source's on a pull): what `-v` names.
fn checked_by<S: Endpoint, D: Endpoint>(src: &S, dst: &D) -> &'static str {
    match dst.label() {
        Host::Local => src.hashes().name(),
        _ => dst.hashes().name(),
    }
}

fn can_check_end_to_end<S: Endpoint, D: Endpoint>(src: &S, dst: &D) -> bool {
    src.hashes().hashing() != Hashing::Off
        && dst.hashes().hashing() != Hashing::Off
        && hashes::common_algorithm(src, dst).is_some()
}

async fn matches_end_to_end<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    job: &FileJob,
) -> Result<bool> {
    let algo = hashes::common_algorithm(src, dst).unwrap_or_default();
    let partial = job.paths.partial();
    let (ours, theirs) = tokio::join!(
        hashes::file_hash(src, &job.source, algo),
        hashes::file_hash(dst, &partial, algo)
    );
    Ok(ours? == theirs?)
}

/// Builds the partial from the old destination where it matches and from
/// the source elsewhere, and says whether it matches the source end to end.
/// None when the destination side cannot copy within itself (an SFTP server
/// without copy-data or the helper): sending the whole file is then the
/// safe choice. With `keep` (the attributes the file ends with), an old
/// destination equal to the source throughout is kept where [`keep_as_is`]
/// may.
async fn fill_by_delta<S: Endpoint, D: Endpoint>(
    src: &S,
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    keep: Option<Attrs>,
    io: Pipeline,
    reporter: &dyn Reporter,
) -> Result<Option<(Filled, bool)>> {
    let Some((old, old_meta)) = job.old() else {
        return Ok(None);
    };
    let (old_size, size) = (old_meta.size, job.source_meta.size);
    let Some(algo) = hashes::common_algorithm(src, dst) else {
        return Ok(None);
    };
    let phase = Phase::start(&job.paths.dest);
    let dest = &job.paths.dest;
    reporter.file_step(dest, FileStep::Hashing, size);
    let hashed = |n| reporter.step_done(dest, n);
    let mut delta =
        compare::compare(src, &job.source, size, dst, old, old_size, algo, &hashed).await?;
    let phase = phase.done("compared block hashes");
    delta = compare::find_moved(src, &job.source, dst, old, old_size, delta).await?;
    let phase = phase.done("looked for moved blocks");
    tracing::info!(
        path = %job.paths.dest,
        reuse = delta.reuse_bytes,
        send = delta.send_bytes,
        "delta"
    );
    if delta.reuse_bytes == 0 {
        return Ok(None);
    }
    if let Some(attrs) = keep.filter(|_| delta.is_identity(old_size, size)) {
        if let Some(kept) = keep_as_is(dst, job, attrs, algo, &delta, reporter).await? {
            phase.done("kept the old file, equal to the source");
            return Ok(Some((kept, true)));
        }
    }
    let out = endpoint::create_in(dst, &job.paths.partial()).await?;
    reporter.file_started(&job.paths.dest, size, delta.reuse_bytes);
    let built = assemble::<S, D>(dst, source, job, &out, &delta, io, reporter).await;
    let phase = phase.done("assembled");
    if let Err(e) = &built {
        if e.is_fatal() {
            return built.map(|_| None);
        }
    }
    if !matches!(built, Ok(true)) {
        let _ = out.close(false).await;
        built?;
        tracing::info!(
            "{}: the server cannot copy data within itself (no copy-data); sending the whole file",
            job.paths.dest
        );
        return Ok(None);
    }
    // The sync and the check both wait on the server's disk: overlap them.
    reporter.file_step(dest, FileStep::Checking, 0);
    let partial = job.paths.partial();
    let (closed, matches) = tokio::join!(
        out.close(true),
        holds_hashes(dst, &partial, size, algo, &delta.source_hashes)
    );
    phase.done("synced and checked end to end");
    closed?;
    let filled = Filled {
        reused: delta.reuse_bytes,
        sent: delta.send_bytes,
        assembled: true,
        by_delta: true,
        ..Filled::default()
    };
    Ok(Some((filled, matches?)))
}

/// Whether an old destination found equal to the source may be kept where
/// it is rather than rebuilt beside itself and renamed over, leaving what
/// the rebuilt file would be: the same content, mode, time and owner. Not
/// where the run keeps a backup of what it replaces (`--backup`), renames
/// at the end (`--delay-updates`), copies extended attributes or ACLs
/// (the old file's own would stay), writes sparse files, leaves the time
/// alone (a new file would get the present one), or cannot be sure who
/// would own a new file: each id given by the change, or, for the user
/// id, a writer that is not root, who may set times only on its own files.
fn may_keep_as_is(job: &FileJob, opts: &Options, places: &Places, attrs: Attrs) -> bool {
    let owner_settled =
        attrs.owner.gid.is_some() && (attrs.owner.uid.is_some() || !opts.owners.writer_is_root());
    job.existing().is_some_and(|m| m.kind == Kind::File)
        && job.basis.is_none()
        && job.partial().is_none()
        && !job.sidecar
        && places.backups.is_none()
        && !places.delays()
        && !opts.xattrs.wanted()
        && !opts.sparse
        && attrs.mtime.is_some()
        && owner_settled
}

/// Keeps the old destination, found equal to the source block for block:
/// its owner, mode and time set where it is, then its blocks hashed again
/// (a change made meanwhile must not end with the source's time, which
/// would make the next run take it as up to date). Only a file with no
/// other name: its times and mode would change under that name too, and
/// rsync would have replaced it. None, with nothing of it changed but
/// perhaps its attributes: it is rebuilt as any other file.
async fn keep_as_is<D: Endpoint>(
    dst: &D,
    job: &FileJob,
    attrs: Attrs,
    algo: crate::hash::HashAlgo,
    delta: &delta::Delta,
    reporter: &dyn Reporter,
) -> Result<Option<Filled>> {
    let dest = &job.paths.dest;
    let usable = |done: Result<bool>| match done {
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            tracing::debug!(path = %dest, "not kept: {e}");
            Ok(false)
        }
        Ok(done) => Ok(done),
    };
    let one_name = dst.hashes().links(dest).await.map(|n| n == Some(1));
    if !usable(one_name)? || !usable(dst.set_owner(dest, attrs.owner).await)? {
        return Ok(None);
    }
    let set = apply_attrs(
        dst,
        dest,
        Attrs {
            owner: OwnerChange::default(),
            ..attrs
        },
    )
    .await;
    if !usable(set.map(|()| true))? {
        return Ok(None);
    }
    let size = job.source_meta.size;
    reporter.file_started(dest, size, size);
    reporter.file_step(dest, FileStep::Checking, 0);
    if !holds_hashes(dst, dest, size, algo, &delta.source_hashes).await? {
        // Changed meanwhile: its old time back, so that the next run looks
        // at it again should this one fail to replace it.
        if let Some(old) = job.existing() {
            let _ = dst.set_mtime(dest, old.mtime).await;
        }
        return Ok(None);
    }
    Ok(Some(Filled {
        reused: size,
        assembled: true,
        by_delta: true,
        attrs_set: true,
        kept_old: true,
        ..Filled::default()
    }))
}

/// Times the steps of one file for `-vvv`: where a slow delta spends it.
struct Phase<'a> {
    path: &'a str,
    since: std::time::Instant,
}

impl<'a> Phase<'a> {
    fn start(path: &'a str) -> Phase<'a> {
        Phase {
            path,
            since: std::time::Instant::now(),
        }
    }

    fn done(self, what: &str) -> Phase<'a> {
        tracing::debug!(path = %self.path, ms = self.since.elapsed().as_millis(), "{what}");
        Phase::start(self.path)
    }
}

/// Whether the file at `path` holds exactly `size` bytes whose `COARSE`
/// blocks hash to `hashes`: an end-to-end check against hashes the
/// comparison already took of the source, so only this side reads the file.
async fn holds_hashes<D: Endpoint>(
    dst: &D,
    path: &str,
    size: u64,
    algo: crate::hash::HashAlgo,
    hashes: &[crate::hash::BlockHash],
) -> Result<bool> {
    let (meta, found) = tokio::join!(
        dst.lstat(path),
        hashes::block_hashes(dst, path, 0, size, delta::COARSE, algo)
    );
    Ok(meta?.is_some_and(|m| m.size == size) && found? == hashes)
}

/// Writes the pieces: reused ranges copied inside the destination, the rest
/// from the source. Ok(false) when a copy inside is not possible.
async fn assemble<S: Endpoint, D: Endpoint>(
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    out: &D::File,
    delta: &delta::Delta,
    io: Pipeline,
    reporter: &dyn Reporter,
) -> Result<bool> {
    // The old destination, or the basis DIR's file that stands in for it.
    let old_path = job.old().map_or(job.paths.dest.as_str(), |(path, _)| path);
    if dst.features().copies_ranges {
        let (mut reuse, mut send) = (Vec::new(), Vec::new());
        for piece in &delta.pieces {
            match *piece {
                Piece::Reuse { offset, from, len } => reuse.push(CopyRange {
                    from,
                    to: offset,
                    len,
                }),
                Piece::Send { offset, len } => send.push(offset..offset + len),
            }
        }
        let send_all = async {
            for range in send {
                copy_range::<S, D>(source, out, range, io, reporter).await?;
            }
            Ok(())
        };
        // Disjoint ranges of one file: the copy inside and the sending overlap.
        let partial = job.paths.partial();
        tokio::try_join!(dst.copy_ranges(old_path, &partial, &reuse), send_all)?;
        return Ok(true);
    }
    if !dst.features().copies_within {
        return Ok(false);
    }
    let old = dst.open_read(old_path).await?;
    let built = assemble_piecewise::<S, D>(dst, source, &old, out, delta, io, reporter).await;
    match built {
        Err(e) if e.is_fatal() => Err(e),
        built => {
            old.close(false).await?;
            built
        }
    }
}

/// Writes the pieces in order, each reused range with its own copy request
/// (SFTP copy-data). Ok(false) when the server cannot copy within itself.
async fn assemble_piecewise<S: Endpoint, D: Endpoint>(
    dst: &D,
    source: &SourceFile<'_, S::File>,
    old: &D::File,
    out: &D::File,
    delta: &delta::Delta,
    io: Pipeline,
    reporter: &dyn Reporter,
) -> Result<bool> {
    for piece in &delta.pieces {
        match *piece {
            Piece::Reuse { offset, from, len } => {
                if !dst.copy_within(old, from, out, offset, len).await? {
                    return Ok(false);
                }
            }
            Piece::Send { offset, len } => {
                copy_range::<S, D>(source, out, offset..offset + len, io, reporter).await?;
            }
        }
    }
    Ok(true)
}

/// An open source file with what is known about it.
pub(crate) struct SourceFile<'a, F> {
    pub file: &'a F,
    pub meta: Meta,
    /// Its host and path, for messages.
    pub host: Host,
    pub path: &'a str,
    /// Where it goes on the destination: the name progress is reported under.
    pub dest: &'a str,
}

impl<F: FileHandle> SourceFile<'_, F> {
    pub(crate) fn shrank(&self, expected_end: u64) -> Error {
        shrank(&self.host, self.path, expected_end)
    }
}

/// Opens the partial, fills it, and closes it with its attributes set
/// (synced when [`sync_before_rename`] says so). `checked_after`: the result
/// will be checked end to end, so a resume may take the sidecar's word for
/// the partial's head; otherwise the whole partial is compared here.
#[allow(clippy::too_many_arguments)]
async fn fill_partial<S: Endpoint, D: Endpoint>(
    dst: &D,
    source: &SourceFile<'_, S::File>,
    job: &FileJob,
    opts: &Options,
    attrs: Attrs,
    io: Pipeline,
    checked_after: bool,
    reporter: &dyn Reporter,
) -> Result<Filled> {
    let out = if job.partial().is_some_and(|p| p.size > 0) {
        dst.open_write(&job.paths.partial(), WriteMode::Keep, 0o600)
            .await?
    } else {
        endpoint::create_in(dst, &job.paths.partial()).await?
    };
    let writing = Writing {
        io,
        checked_after,
        sparse: opts.sparse,
    };
    match write_partial::<S, D>(dst, source, &out, job, writing, reporter).await {
        Ok(written) => {
            let last_len = written
                .last
                .as_ref()
                .map_or(0, |(_, data)| data.len() as u64);
            out.finish(written.last, attrs, sync_before_rename(job, opts))
                .await?;
            reporter.bytes_done(&job.paths.dest, last_len);
            let (resume_from, rewritten) = (written.resume_from, written.rewritten);
            Ok(Filled {
                reused: resume_from - rewritten,
                sent: job.source_meta.size - resume_from + rewritten,
                assembled: resume_from > 0,
                by_delta: false,
                wrote_sidecar: written.wrote_sidecar,
                attrs_set: true,
                verified: written.read_back.then_some(Verified::ReadBack),
                kept_old: false,
            })
        }
        Err(e) => {
            // On a dead connection a close would only wait for its timeout.
            if !e.is_fatal() {
                let _ = out.close(false).await;
            }
            Err(e)
        }
    }
}

/// What [`write_partial`] did.
struct Written {
    resume_from: u64,
    /// A resumed partial was compared with the source whole, not only its
    /// last write window.
    read_back: bool,
    /// Bytes of the old partial rewritten by the repair.
    rewritten: u64,
    wrote_sidecar: bool,
    /// What is left to write when it fits in one request: read, not yet
    /// written, so that it goes out with the requests that close the file.
    last: Option<(u64, Bytes)>,
}

/// How [`write_partial`] writes.
#[derive(Debug, Clone, Copy)]
struct Writing {
    io: Pipeline,
    /// The whole file's hash is checked after the copy.
    checked_after: bool,
    /// `-S`: zeros become holes where the partial is fresh.
    sparse: bool,
}

/// Fills the open partial: repairs what an earlier run left (when resuming),
/// records the sidecar, then copies the rest, or reads it when it is a
/// single request's worth.
async fn write_partial<S: Endpoint, D: Endpoint>(
    dst: &D,
    source: &SourceFile<'_, S::File>,
    out: &D::File,
    job: &FileJob,
    writing: Writing,
    reporter: &dyn Reporter,
) -> Result<Written> {
    let Writing {
        io,
        checked_after,
        sparse,
    } = writing;
    let size = job.source_meta.size;
    let mut resume_from = 0;
    let mut rewritten = 0;
    let mut read_back = false;
    if let Some(partial) = job.partial().filter(|p| p.size > 0) {
        let dest = &job.paths.dest;
        // A sidecar is a claim about bytes ferry cannot see: it spares
        // comparing the partial's head only when the whole file's hash is
        // checked after the copy. Without that check the whole partial is
        // compared with the source here (read back from the destination),
        // which costs no more than sending it again.
        let sidecar = match checked_after {
            true => partial::read_sidecar(dst, &job.paths.meta()).await,
            false => None,
        };
        let len = partial.size.min(size);
        let head = partial::unchecked_head(len, sidecar, &job.source_meta);
        reporter.file_step(dest, FileStep::Verifying { partial: len }, len - head);
        let checked = |n| reporter.step_done(dest, n);
        let repair =
            partial::repair::<S, D>(source, out, partial.size, sidecar, io, &checked).await?;
        // What was rewritten crossed the wire: it counts as sent.
        reporter.file_started(dest, size, repair.good_len - repair.rewritten);
        reporter.bytes_done(dest, repair.rewritten);
        tracing::info!(
            path = %job.paths.dest,
            partial = partial.size,
            checked = repair.checked,
            rewritten = repair.rewritten,
            "verified partial"
        );
        resume_from = repair.good_len;
        rewritten = repair.rewritten;
        read_back = repair.checked == repair.good_len;
        if partial.size > size {
            out.set_len(size).await?;
        }
    } else {
        reporter.file_started(&job.paths.dest, size, 0);
    }

    // The sidecar must describe the source before any byte beyond the
    // verified length lands in the partial, so that a crash at any later
    // point leaves a truthful record. A file that fits in one write window
    // needs none: a resume without a sidecar verifies the whole partial,
    // which is no more than the window would cover, and a small file is
    // spared three round trips. A sidecar already there is rewritten all the
    // same, so that none ever describes an older source.
    let needs_sidecar = size - resume_from > io.write_window() || job.sidecar;
    let record = async { Ok(needs_sidecar && write_sidecar(dst, job, io.write_window()).await?) };
    let left = size - resume_from;
    // A fresh partial has no sidecar before this one: a crash before it
    // lands leaves none, and the resume verifies the whole partial. So the
    // record goes out beside the data, sparing its round trips (four over
    // SFTP: open, write, close, and the wait) before the first byte.
    let fresh = !job.sidecar && job.partial().is_none_or(|p| p.size == 0);
    // -S: holes only in a partial created empty, where what is not written
    // reads as zeros; a resumed one may hold old bytes there.
    let sparse = sparse && fresh;
    let rest = async {
        if left > 0 && left <= io.chunk as u64 {
            let data = source.file.read_last(resume_from, left as usize).await?;
            if (data.len() as u64) < left {
                return Err(source.shrank(size));
            }
            Ok(Some((resume_from, data)))
        } else {
            let range = resume_from..size;
            if copy_range_with::<S, D>(source, out, range, io, reporter, sparse).await? {
                out.set_len(size).await?;
            }
            Ok(None)
        }
    };
    let (wrote_sidecar, last) = if fresh {
        tokio::try_join!(record, rest)?
    } else {
        let wrote = record.await?;
        (wrote, rest.await?)
    };
    Ok(Written {
        resume_from,
        read_back,
        rewritten,
        wrote_sidecar,
        last,
    })
}

/// Records what the partial is being copied from; false when that failed
/// (a later resume then verifies the whole partial), unless for want of
/// room: the partial's data would find none either, and the file fails
/// at once ([`is_out_of_room`]), not after a warning of its own.
async fn write_sidecar<D: Endpoint>(dst: &D, job: &FileJob, window: u64) -> Result<bool> {
    let sidecar = Sidecar {
        source_size: job.source_meta.size,
        source_mtime: job.source_meta.mtime,
        window,
    };
    match endpoint::write_small(dst, &job.paths.meta(), sidecar.encode().as_bytes()).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_fatal() => Err(e),
        Err(Error::File(e)) if is_out_of_room(dst, job, &e) => Err(e.into()),
        Err(e) => {
            tracing::warn!("{e}: resuming this file later will verify the whole partial");
            Ok(false)
        }
    }
}

/// Copies `range` with reads and writes pipelined: `io.read_depth` reads and
/// `io.write_depth` writes in flight, so memory stays bounded whatever the
/// file size.
pub(super) async fn copy_range<S: Endpoint, D: Endpoint>(
    source: &SourceFile<'_, S::File>,
    out: &D::File,
    range: std::ops::Range<u64>,
    io: Pipeline,
    reporter: &dyn Reporter,
) -> Result<()> {
    copy_range_with::<S, D>(source, out, range, io, reporter, false)
        .await
        .map(drop)
}

/// [`copy_range`]; with `sparse` (`-S`, into a file written fresh), a
/// chunk of zeros is not written, which leaves a hole. Returns whether one
/// was left out: the file must then be extended to its size.
async fn copy_range_with<S: Endpoint, D: Endpoint>(
    source: &SourceFile<'_, S::File>,
    out: &D::File,
    range: std::ops::Range<u64>,
    io: Pipeline,
    reporter: &dyn Reporter,
    sparse: bool,
) -> Result<bool> {
    let (to, chunk) = (range.end, io.chunk);
    let bytes = range.end - range.start;
    if bytes >= SPREAD_FROM {
        tokio::join!(source.file.spread(bytes), out.spread(bytes));
    }
    let holes = std::sync::atomic::AtomicBool::new(false);
    let holes = &holes;
    stream::iter(range.step_by(chunk))
        .map(|offset| async move {
            let len = (to - offset).min(chunk as u64) as usize;
            let data = if offset + len as u64 == source.meta.size {
                source.file.read_last(offset, len).await?
            } else {
                source.file.read_at(offset, len).await?
            };
            if data.len() < len {
                return Err(source.shrank(offset + len as u64));
            }
            Ok((offset, data))
        })
        .buffered(io.read_depth)
        .map_ok(|(offset, data)| async move {
            let n = data.len() as u64;
            if sparse && data.iter().all(|&b| b == 0) {
                holes.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(n);
            }
            out.write_at(offset, data).await.map(|_| n)
        })
        // In order: a write starts only once the one `write_depth` before
        // it is done, so that whatever a cut leaves, all below the
        // partial's length less the sidecar's window was written. Writes
        // spread over several sessions finish out of order, and unordered
        // a lagging one would leave a hole further back than that.
        .try_buffered(io.write_depth)
        .try_for_each(|n| {
            reporter.bytes_done(source.dest, n);
            futures::future::ready(Ok(()))
        })
        .await?;
    Ok(holes.load(std::sync::atomic::Ordering::Relaxed))
}

fn shrank(host: &Host, path: &str, expected_end: u64) -> Error {
    let message =
        format!("the file shrank while it was read (it ended before byte {expected_end})");
    FileError::refused(host, path, message).into()
}

/// A source that changed while it was read may have been copied torn: refuse
/// to install it. The partial stays; its sidecar no longer matches the source,
/// so the next run verifies all of it.
async fn check_source_unchanged<S: Endpoint>(src: &S, job: &FileJob) -> Result<()> {
    // What was read, through a symlink followed (-L) as the open did.
    let now = src.stat(&job.source).await?;
    match now {
        Some(m) if m.size == job.source_meta.size && m.mtime.same(&job.source_meta.mtime) => Ok(()),
        _ => Err(changed_while_read(src, job)),
    }
}

fn changed_while_read<S: Endpoint>(src: &S, job: &FileJob) -> Error {
    let message = "the file changed while it was being copied; not installed, run again";
    FileError::refused(src.label(), job.source.as_str(), message).into()
}

/// Permissions and times go on the partial before the rename, so the file
/// appears at its final name complete in every respect.
pub(super) async fn apply_attrs<D: Endpoint>(dst: &D, path: &str, attrs: Attrs) -> Result<()> {
    // The owner first: chown clears the set-id bits the mode then sets.
    dst.set_owner(path, attrs.owner).await?;
    let (moded, timed) = tokio::join!(dst.set_mode(path, attrs.mode), async {
        match attrs.mtime {
            Some(mtime) => dst.set_mtime(path, mtime).await,
            None => Ok(()),
        }
    });
    moded.and(timed)
}

/// The attributes the copy ends with, as rsync's receiver gives them
/// ([`crate::mode::dest_mode`]): without `--perms` an existing file keeps
/// its mode and a new one gets the source's masked by the destination
/// side's umask, never its setuid, setgid or sticky bit.
pub(super) async fn attrs_for<D: Endpoint>(
    dst: &D,
    job: &FileJob,
    opts: &Options,
) -> Result<Attrs> {
    let existing = job
        .existing()
        .filter(|m| m.kind == Kind::File)
        .map(|m| m.mode);
    let umask = match (opts.perms, existing) {
        (false, None) => dst.umask(crate::endpoint::parent(&job.paths.dest)).await?,
        _ => 0,
    };
    let mode = crate::mode::dest_mode(
        job.source_meta.mode,
        existing,
        true,
        opts.perms,
        opts.executability,
        umask,
    );
    // A partial is a file of ferry's own; a file patched in place keeps
    // what it had where nothing differs.
    let in_place = writes_in_place(job, opts);
    let old = job.existing().filter(|_| in_place).and_then(|m| m.owner);
    Ok(Attrs {
        mode,
        mtime: opts.times.then_some(job.source_meta.mtime),
        owner: opts.owners.change(job.source_meta.owner, old),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::LocalFs;
    use crate::hash::HashAlgo;

    #[tokio::test]
    async fn the_end_to_end_check_wants_every_block_and_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = delta::test_data(3 * delta::COARSE as usize + 10, 1);
        let hashes: Vec<_> = data
            .chunks(delta::COARSE as usize)
            .map(|c| crate::hash::block_hash(HashAlgo::Blake3, c))
            .collect();
        let p = path.to_str().unwrap();
        let size = data.len() as u64;
        let local = LocalFs::default();
        let check = || holds_hashes(&local, p, size, HashAlgo::Blake3, &hashes);
        std::fs::write(&path, &data).unwrap();
        assert!(check().await.unwrap());
        let mut flipped = data.clone();
        flipped[2 * delta::COARSE as usize + 7] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(!check().await.unwrap(), "one byte differs");
        let mut longer = data.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(!check().await.unwrap(), "a byte past the end");
        std::fs::write(&path, &data[..data.len() - 1]).unwrap();
        assert!(!check().await.unwrap(), "a byte short");
    }
}
