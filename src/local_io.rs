//! Blocking file I/O on this machine, shared by the local endpoint and the
//! helper that runs on a server: where the endpoint's short calls run
//! ([`quick`]), metadata, listings, whole-file installs,
//! reads ahead of a consumer, range copies (reflink/copy_file_range), and
//! the process umask. Changes go through [`confined`]: a [`Place`] below a
//! directory the user named is reached without following a symlink.
//! Everything here returns `io::Result`; the callers name the file in their
//! errors.

pub(crate) mod confined;
pub(crate) mod quick;
pub(crate) mod users;
pub(crate) mod xattrs;

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;

use std::os::unix::ffi::OsStrExt;

use crate::meta::{
    Attrs, CopyRange, Entry, Identity, Inode, Kind, Listing, Meta, Mtime, Owner, OwnerChange,
};
use crate::paths::{from_bytes, os_path};
pub(crate) use confined::{Place, RecentDir, Roots};

pub(crate) fn meta_of(m: &fs::Metadata) -> Meta {
    Meta {
        kind: Kind::of_mode(m.mode(), m.rdev()),
        size: m.len(),
        mtime: Mtime::precise(m.mtime(), m.mtime_nsec() as u32),
        mode: m.mode() & 0o7777,
        owner: Some(Owner {
            uid: m.uid(),
            gid: m.gid(),
        }),
        inode: Some(Inode {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
        }),
    }
}

pub(crate) fn not_found_is_none(r: io::Result<fs::Metadata>) -> io::Result<Option<Meta>> {
    match r {
        Ok(m) => Ok(Some(meta_of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn list_dir(dir: &str) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for item in fs::read_dir(os_path(dir))? {
        let item = item?;
        // Any bytes: the name carries what is not UTF-8 (paths::from_bytes).
        let name = from_bytes(item.file_name().as_bytes()).into_owned();
        let meta = meta_of(&item.metadata()?);
        listing.entries.push(Entry { name, meta });
    }
    listing.entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// Installs a small file in one go, for `LocalFs::put_whole` and the
/// helper's `PutFile`: `partial` is created anew ([`first_mode`]), gets
/// `data`, `attrs` and a sync when asked, and is renamed over `dest`.
/// On failure the partial is removed (nothing in a small file is worth
/// resuming) and `dest` is untouched.
pub(crate) fn install_whole(
    partial: &Place,
    dest: &Place,
    data: &[u8],
    attrs: Attrs,
    sync: bool,
) -> io::Result<()> {
    let written =
        write_whole(partial, data, attrs, sync).and_then(|()| confined::rename(partial, dest));
    if written.is_err() {
        let _ = confined::remove_file(partial);
    }
    written
}

fn write_whole(place: &Place, data: &[u8], attrs: Attrs, sync: bool) -> io::Result<()> {
    // A file of its own: whatever has the name (an old partial, a planted
    // symlink) is removed, not opened.
    let mode = first_mode(attrs);
    let file = match confined::open_write(place, true, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            confined::remove_file(place)?;
            confined::open_write(place, true, mode)?
        }
        opened => opened?,
    };
    finish_file(&file, Some((0, data)), attrs, sync)
}

/// The mode a new file is created with: its own, where the owner it is to
/// have is the one it gets (then, the umask and a default ACL permitting,
/// no chmod follows); owner-only where another owner or group is still to
/// be given (until then, the creator's group must not read it) or a
/// set-id bit would be set before the data is whole. A group is given
/// even when it is the creator's where a set-group-id directory gives its
/// own: then a mode that lets the group do more than others waits too.
fn first_mode(attrs: Attrs) -> u32 {
    let (uid, gid) = creator();
    let ours = attrs.owner.uid.is_none_or(|u| u == uid) && attrs.owner.gid.is_none_or(|g| g == gid);
    let group_only = (attrs.mode >> 3) & !attrs.mode & 0o7 != 0;
    let group_given = attrs.owner.gid.is_some() && group_only;
    match ours && !group_given && attrs.mode & 0o7000 == 0 {
        true => attrs.mode & 0o777,
        false => 0o600,
    }
}

/// The owner and group a file this process creates gets (a directory's
/// set-group-id bit aside).
pub(crate) fn creator() -> (u32, u32) {
    static IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid cannot fail and have no preconditions.
    *IDS.get_or_init(|| unsafe { (libc::geteuid(), libc::getegid()) })
}

/// The last write of an open file, its attributes, and a sync when asked:
/// what every local copy ends with.
pub(crate) fn finish_file(
    file: &File,
    last: Option<(u64, &[u8])>,
    attrs: Attrs,
    sync: bool,
) -> io::Result<()> {
    if let Some((offset, data)) = last {
        file.write_all_at(data, offset)?;
    }
    // What the file already has is not set again: a new one was created
    // with its mode and owner where it could be (two system calls of the
    // nine a small file costs).
    let has = rustix::fs::fstat(file)?;
    let owner = OwnerChange {
        uid: attrs.owner.uid.filter(|&uid| uid != has.st_uid),
        gid: attrs.owner.gid.filter(|&gid| gid != has.st_gid),
    };
    // The owner first: chown clears the setuid and setgid bits.
    let chowned = set_owner_of(file, owner)? && !owner.is_empty();
    let mode = attrs.mode & 0o7777;
    if has.st_mode & 0o7777 != mode || (chowned && mode & 0o6000 != 0) {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    if let Some(mtime) = attrs.mtime {
        set_mtime_of(file, mtime)?;
    }
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// Gives an open file its owner and group. Ok(false) where the change was
/// refused for want of privilege and that refusal is rsync's silent skip
/// ([`OwnerChange::refusal_is_skip`]).
pub(crate) fn set_owner_of(file: &File, change: OwnerChange) -> io::Result<bool> {
    if change.is_empty() {
        return Ok(true);
    }
    let (uid, gid) = ids(change);
    owner_set(change, rustix::fs::fchown(file, uid, gid))
}

/// rustix's pair for chown(2): None keeps the id.
pub(crate) fn ids(change: OwnerChange) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        change.uid.map(rustix::fs::Uid::from_raw_unchecked),
        change.gid.map(rustix::fs::Gid::from_raw_unchecked),
    )
}

/// A chown's result: a refusal (EPERM) of a change rsync would have
/// skipped is Ok(false).
pub(crate) fn owner_set(change: OwnerChange, done: rustix::io::Result<()>) -> io::Result<bool> {
    match done {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::PERM) if change.refusal_is_skip() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Who this process writes as: root, or a user with its groups.
pub(crate) fn identity() -> Identity {
    // SAFETY: geteuid and getegid cannot fail; getgroups writes at most
    // `len` entries into a buffer of that many.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mut groups = vec![egid];
    let len = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if len > 0 {
        let mut more = vec![0 as libc::gid_t; len as usize];
        let got = unsafe { libc::getgroups(len, more.as_mut_ptr()) };
        more.truncate(got.max(0) as usize);
        groups.extend(more);
    }
    Identity {
        root: euid == 0,
        groups: Some(groups),
    }
}

/// Up to `len` bytes of `file` at `offset`: fewer only at end of file.
pub(crate) fn read_at_most(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The modification time of an open file (its access time untouched).
pub(crate) fn set_mtime_of(file: &File, mtime: Mtime) -> io::Result<()> {
    Ok(rustix::fs::futimens(file, &only_mtime(mtime))?)
}

/// utimensat's pair: access time left as it is, modification time set.
fn only_mtime(mtime: Mtime) -> rustix::fs::Timestamps {
    rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: mtime.secs,
            tv_nsec: mtime.subsec_nanos().into(),
        },
    }
}

/// Reads `[start, end)` of `file` in pieces of `chunk` bytes (shorter only
/// at end of file) on a second thread and hands each to `each` with its
/// offset, so copying the next piece out of the page cache overlaps the
/// work on this one: hashing a file costs the slower of the two, not both.
pub(crate) fn read_ahead(
    file: &File,
    start: u64,
    end: u64,
    chunk: usize,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    use std::sync::mpsc::sync_channel;
    const BUFFERS: usize = 3;
    let (full_tx, full) = sync_channel::<io::Result<(u64, Vec<u8>, usize)>>(BUFFERS);
    let (empty_tx, empty) = sync_channel::<Vec<u8>>(BUFFERS);
    let chunk = chunk.min(end.saturating_sub(start) as usize).max(1);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; chunk]);
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut at = start;
            while at < end {
                // Both channels close when the consumer stops early.
                let Ok(mut buf) = empty.recv() else { return };
                let want = ((end - at) as usize).min(chunk);
                let read = read_full_at(file, &mut buf[..want], at);
                let n = *read.as_ref().unwrap_or(&0);
                let stop = !matches!(read, Ok(n) if n == want);
                if full_tx.send(read.map(|n| (at, buf, n))).is_err() || stop {
                    return;
                }
                at += n as u64;
            }
        });
        // Owned here, so that stopping early drops both ends the reader
        // may be waiting on, and it returns.
        let (full, empty_tx) = (full, empty_tx);
        for piece in full {
            let (at, buf, n) = piece?;
            if n > 0 {
                each(at, &buf[..n])?;
            }
            let _ = empty_tx.send(buf);
        }
        Ok(())
    })
}

/// Below this a range is worked through on one thread.
const PARALLEL_FROM: u64 = 64 * 1024 * 1024;
const MOST_THREADS: usize = 4;

/// Runs `work` over consecutive parts of `[start, end)`, cut at multiples of
/// `align` from `start`, on one thread per core (at most four) when the
/// range is large; returns the results in order. Hashing a big file then
/// goes at the speed of all cores, not one.
pub(crate) fn in_parts<T: Send>(
    start: u64,
    end: u64,
    align: u64,
    work: impl Fn(u64, u64) -> io::Result<T> + Sync,
) -> io::Result<Vec<T>> {
    let len = end.saturating_sub(start);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = threads.min(MOST_THREADS) as u64;
    if len < PARALLEL_FROM || parts < 2 || align == 0 || align > len / parts {
        return work(start, end.max(start)).map(|one| vec![one]);
    }
    let step = len.div_ceil(parts).div_ceil(align) * align;
    std::thread::scope(|scope| {
        let work = &work;
        let running: Vec<_> = (0..parts)
            .map(|i| start + i * step)
            .filter(|&from| from < end)
            .map(|from| scope.spawn(move || work(from, (from + step).min(end))))
            .collect();
        running
            .into_iter()
            .map(|part| {
                part.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")))
            })
            .collect()
    })
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Copies `ranges` of the file `from` into the existing file `to` (never
/// created or truncated here, and neither opened through a symlink);
/// returns the bytes copied. The remote helper assembles files with this
/// too.
pub(crate) fn copy_ranges_between(
    from: &Place,
    to: &Place,
    ranges: &[CopyRange],
) -> io::Result<u64> {
    fn named(place: &Place) -> impl Fn(io::Error) -> io::Error + '_ {
        move |e| io::Error::new(e.kind(), format!("{}: {e}", place.name().display()))
    }
    let old = confined::open_existing(from, false).map_err(named(from))?;
    let new = confined::open_existing(to, true).map_err(named(to))?;
    let mut copied = 0;
    for range in ranges {
        copy_range_between(&old, range.from, &new, range.to, range.len).map_err(named(to))?;
        copied += range.len;
    }
    Ok(copied)
}

/// Copies a range between two open files inside the kernel where it can
/// (copy_file_range: reflinks on filesystems that share blocks), else by
/// reading and writing.
pub(crate) fn copy_range_between(
    from: &File,
    mut from_offset: u64,
    to: &File,
    mut to_offset: u64,
    len: u64,
) -> io::Result<()> {
    let end = from_offset + len;
    while from_offset < end {
        let mut off_in = from_offset as libc::loff_t;
        let mut off_out = to_offset as libc::loff_t;
        let want = (end - from_offset).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call and
        // the offsets are valid pointers to local variables.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                want,
                0,
            )
        };
        if n > 0 {
            from_offset += n as u64;
            to_offset += n as u64;
            continue;
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the old file is shorter than expected",
            ));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                return copy_by_reading(from, from_offset, to, to_offset, end - from_offset)
            }
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
    Ok(())
}

pub(crate) fn copy_by_reading(
    from: &File,
    from_offset: u64,
    to: &File,
    to_offset: u64,
    len: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; (len.min(1 << 20)) as usize];
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(buf.len());
        from.read_exact_at(&mut buf[..n], from_offset + done)?;
        to.write_all_at(&buf[..n], to_offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// The process's umask, read once: the kernel offers no way to read it but
/// setting it, which is done straight back.
pub(crate) fn process_umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        // SAFETY: umask cannot fail. The first call comes before the run
        // creates anything, and the value is put back at once.
        unsafe {
            let old = libc::umask(0o022);
            libc::umask(old);
            old as u32
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_ends_with_its_mode_and_owner_whatever_it_was_created_with() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = creator();
        let keep = OwnerChange::default();
        let ours = OwnerChange {
            uid: Some(uid),
            gid: Some(gid),
        };
        let other = OwnerChange {
            uid: Some(4321),
            gid: Some(4322),
        };
        // The umask takes bits from 0o666 (022 and 002 do); a set-id bit is
        // set after the data; another owner is given before the mode.
        let mut cases = vec![
            (0o644, keep),
            (0o666, ours),
            (0o4755, ours),
            (0o2750, keep),
            (0o640, ours),
        ];
        if uid == 0 {
            cases.extend([(0o640, other), (0o6755, other)]);
        }
        for (i, (mode, owner)) in cases.into_iter().enumerate() {
            let (partial, dest) = (
                dir.path().join(format!(".{i}")),
                dir.path().join(i.to_string()),
            );
            let attrs = Attrs {
                mode,
                mtime: None,
                owner,
            };
            let place = confined::Place::path;
            install_whole(&place(&partial), &place(&dest), b"data", attrs, false).unwrap();
            let meta = fs::metadata(&dest).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "case {i}");
            let want = (owner.uid.unwrap_or(uid), owner.gid.unwrap_or(gid));
            assert_eq!((meta.uid(), meta.gid()), want, "case {i}");
            assert_eq!(fs::read(&dest).unwrap(), b"data");
        }
    }

    #[test]
    fn a_new_file_waits_for_its_mode_where_another_group_could_read_it_first() {
        let (uid, gid) = creator();
        let attrs = |mode, gid: Option<u32>| Attrs {
            mode,
            mtime: None,
            owner: OwnerChange {
                uid: Some(uid),
                gid,
            },
        };
        assert_eq!(first_mode(attrs(0o644, Some(gid))), 0o644);
        assert_eq!(first_mode(attrs(0o640, None)), 0o640);
        // A set-group-id directory would give its own group until chown.
        assert_eq!(first_mode(attrs(0o640, Some(gid))), 0o600);
        assert_eq!(first_mode(attrs(0o4755, None)), 0o600);
        assert_eq!(first_mode(attrs(0o644, Some(gid.wrapping_add(1)))), 0o600);
    }

    #[test]
    fn reads_ahead_in_order_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = crate::delta::test_data(1_000_003, 3);
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut got = Vec::new();
        read_ahead(&file, 10, 2_000_000, 65_536, |at, piece| {
            assert_eq!(at, 10 + got.len() as u64, "in order, no gaps");
            got.extend_from_slice(piece);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, &data[10..], "up to the end of the file");
        // An error from the consumer ends the read, without a hang, whether
        // the reader is ahead (waiting for a buffer) or behind.
        for round in 0..200 {
            let mut calls = 0;
            let stopped = read_ahead(&file, 0, 1_000_003, 4096, |_, _| {
                calls += 1;
                if round % 2 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                Err(io::Error::other("enough"))
            });
            assert_eq!(stopped.unwrap_err().to_string(), "enough");
            assert_eq!(calls, 1);
        }
        read_ahead(&file, 500, 500, 4096, |_, _| panic!("nothing to read")).unwrap();
    }

    #[test]
    fn parts_are_aligned_consecutive_and_in_order() {
        let mib = 1024 * 1024;
        let parts = in_parts(7, 200 * mib + 3, mib, |a, b| Ok((a, b))).unwrap();
        assert_eq!(parts.first().map(|p| p.0), Some(7));
        assert_eq!(parts.last().map(|p| p.1), Some(200 * mib + 3));
        for pair in parts.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "no gap, no overlap");
            assert_eq!((pair[0].1 - 7) % mib, 0, "cut at block boundaries");
        }
        let small = in_parts(0, 1000, 10, |a, b| Ok((a, b))).unwrap();
        assert_eq!(small, vec![(0, 1000)]);
        let failed = in_parts(0, 200 * mib, mib, |a, _| {
            if a == 0 {
                Ok(())
            } else {
                Err(io::Error::other("part failed"))
            }
        });
        assert!(std::thread::available_parallelism().unwrap().get() < 2 || failed.is_err());
    }
}
