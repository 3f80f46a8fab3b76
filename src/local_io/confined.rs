//! Local changes that a symlink swapped in during a run cannot take
//! elsewhere. The directories the user named (the destination, a backup or
//! temp directory) are [`Roots`], trusted as given: they and the
//! directories above them may be symlinks the user chose, resolved once,
//! the first time a change lands below the root. Below a root,
//! every directory is opened from its parent's descriptor without
//! following a symlink (`O_PATH|O_DIRECTORY|O_NOFOLLOW`), and the change
//! itself is the `*at` call on the last one ([`Place`]), so another user
//! who replaces a directory of the destination with a symlink to elsewhere
//! makes that change fail, naming the symlink, rather than land outside.
//! A path under no root keeps the kernel's resolution of it as given.
//!
//! `-K` (`--keep-dirlinks`) asks for symlinks to directories to be
//! followed: then one whose target stays below its root is, as the engine
//! checked when it planned.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::meta::{Mtime, Node, OwnerChange};
use crate::paths::{from_bytes, os_path};

/// Symlinks a `-K` walk follows for one path, as the kernel's limit.
const MOST_LINKS: u32 = 40;

/// Where a path is below the roots: the innermost root, the directories
/// between it and the last component, and that component.
type Below<'r, 'p> = (&'r Root, Vec<&'p str>, &'p str);

/// The directories below which no symlink is followed.
#[derive(Debug, Default)]
pub(crate) struct Roots {
    roots: Vec<Root>,
    /// `-K`: a symlink to a directory that stays below its root is followed.
    dirlinks: bool,
}

#[derive(Debug)]
struct Root {
    /// As the user gave it: opened as the kernel resolves it.
    path: String,
    absolute: bool,
    /// Its components, without `.` and empty ones (`..` stay).
    parts: Vec<String>,
    /// The root once opened, kept for the run: every change below it
    /// starts here rather than opening it again.
    opened: OnceLock<Arc<OwnedFd>>,
}

impl Root {
    fn new(path: &str) -> Root {
        Root {
            path: path.to_string(),
            absolute: path.starts_with('/'),
            parts: components(path).map(str::to_string).collect(),
            opened: OnceLock::new(),
        }
    }

    /// The root's directory, opened the first time it is there.
    fn open(&self) -> io::Result<Arc<OwnedFd>> {
        if let Some(dir) = self.opened.get() {
            return Ok(dir.clone());
        }
        // As the kernel resolves it: the user chose it.
        let flags = dir_flags() - OFlags::NOFOLLOW;
        let dir = Arc::new(rustix::fs::openat(
            CWD,
            &*os_path(&self.path),
            flags,
            Mode::empty(),
        )?);
        Ok(self.opened.get_or_init(|| dir).clone())
    }

    /// The components of `path` below this root, when it is one of its
    /// paths (not above or beside it by a `..`).
    fn below<'p>(&self, path: &'p str) -> Option<Vec<&'p str>> {
        if path.starts_with('/') != self.absolute {
            return None;
        }
        let mut parts = components(path);
        for part in &self.parts {
            (parts.next()? == part.as_str()).then_some(())?;
        }
        let rest: Vec<&str> = parts.collect();
        stays_below(&rest).then_some(rest)
    }
}

/// The components of a path that name something: no `.`, no empty ones.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

/// Whether `parts` never climb above where they start.
fn stays_below(parts: &[&str]) -> bool {
    let mut depth = 0usize;
    parts.iter().all(|part| match *part {
        ".." => depth.checked_sub(1).map(|d| depth = d).is_some(),
        _ => {
            depth += 1;
            true
        }
    })
}

impl Roots {
    /// `roots` as the user named them, the destination first; one inside
    /// an earlier one is left out, so that what is below the earlier one
    /// is never opened by path. With `dirlinks` (`-K`), symlinks to
    /// directories below a root are followed.
    pub(crate) fn new(roots: impl IntoIterator<Item = String>, dirlinks: bool) -> Roots {
        let mut kept: Vec<Root> = Vec::new();
        for root in roots {
            if !kept.iter().any(|outer| outer.below(&root).is_some()) {
                kept.push(Root::new(&root));
            }
        }
        Roots {
            roots: kept,
            dirlinks,
        }
    }

    /// Where a change of `path` lands: below a root, the directory that
    /// holds its last component, reached without following a symlink; the
    /// root itself and paths under no root, the path as given.
    pub(crate) fn place(&self, path: &str) -> io::Result<Place> {
        self.place_found(path, self.below(path), None)
    }

    /// [`Roots::place`] of two paths, walked once when they are in the
    /// same directory (a partial file and the name it is renamed to).
    pub(crate) fn place_both(&self, one: &str, other: &str) -> io::Result<(Place, Place)> {
        self.place_both_near(one, other, None)
    }

    /// [`Roots::place_both`], starting from `recent`'s directory when the
    /// two are in it, and leaving theirs there for the next change.
    pub(crate) fn place_both_near(
        &self,
        one: &str,
        other: &str,
        mut recent: Option<&mut RecentDir>,
    ) -> io::Result<(Place, Place)> {
        let (found_one, found_other) = (self.below(one), self.below(other));
        let same_dir = match (&found_one, &found_other) {
            (Some((a, dirs_a, _)), Some((b, dirs_b, _))) => {
                std::ptr::eq(*a, *b) && dirs_a == dirs_b
            }
            _ => false,
        };
        let first = self.place_found(one, found_one, recent.as_deref_mut())?;
        let second = match (&first.walk, found_other) {
            (Some(walk), Some((_, _, name))) if same_dir => Place {
                name: os_path(name).into_owned(),
                walk: Some(walk.clone()),
            },
            (_, found) => self.place_found(other, found, recent)?,
        };
        Ok((first, second))
    }

    /// The place of `path`, found ([`Roots::below`]) below a root or not;
    /// its directory taken from `recent` when it is the one kept there.
    fn place_found(
        &self,
        path: &str,
        found: Option<Below<'_, '_>>,
        recent: Option<&mut RecentDir>,
    ) -> io::Result<Place> {
        let Some((root, dirs, name)) = found else {
            return Ok(Place::path(os_path(path)));
        };
        let kept = recent
            .as_ref()
            .and_then(|recent| recent.walk_to(root, &dirs));
        let walk = match kept {
            Some(walk) => walk,
            None => {
                let mut walk = Walk::open(root, self.dirlinks)?;
                walk.enter(dirs.iter().map(|d| d.to_string()))?;
                if let Some(recent) = recent {
                    recent.keep(root, &dirs, &walk);
                }
                walk
            }
        };
        Ok(Place {
            name: os_path(name).into_owned(),
            walk: Some(walk),
        })
    }

    /// The innermost root `path` is below, the directories between them
    /// and the last component; None for a root itself and a path under none.
    fn below<'p>(&self, path: &'p str) -> Option<Below<'_, 'p>> {
        let (root, below) = self
            .roots
            .iter()
            .filter_map(|root| Some((root, root.below(path)?)))
            .max_by_key(|(root, _)| root.parts.len())?;
        let (name, dirs) = below.split_last()?;
        Some((root, dirs.to_vec(), name))
    }

    /// Sets the mode of `path` itself, never of what a symlink swapped in
    /// there points to; with `-K`, a symlink to a directory below the root
    /// as that directory (as chmod would, through it).
    pub(crate) fn set_mode(&self, path: &str, mode: u32) -> io::Result<()> {
        let mut place = self.place(path)?;
        let Some(walk) = place.walk.as_mut() else {
            return std::fs::set_permissions(os_path(path), mode_bits(mode));
        };
        let mode = Mode::from_raw_mode(mode);
        if chmod_entry(walk.dir(), &place.name, mode)? {
            return Ok(());
        }
        if !walk.dirlinks {
            return Err(symlink_here("sets no mode through it"));
        }
        walk.enter([place.name.to_string_lossy().into_owned()])?;
        match chmod_entry(walk.dir(), Path::new("."), mode)? {
            true => Ok(()),
            false => Err(Errno::LOOP.into()),
        }
    }
}

/// The directory the last change was placed in, kept for the next one in
/// the same directory: the walk from the root (a system call a level) is
/// then not made again. Whoever keeps one bounds its life: a directory
/// swapped for a symlink after the walk is not followed (the descriptor
/// is the directory walked to), but a change through a kept one lands in
/// that directory wherever it was moved meanwhile, as a change already
/// under way does. The helper keeps one only while it answers the small
/// files it has already received, one after another.
#[derive(Debug, Default)]
pub(crate) struct RecentDir {
    /// The root (by address: the roots live as long as the run) and the
    /// directories below it, as walked.
    kept: Option<(usize, Vec<String>, Walk)>,
}

impl RecentDir {
    pub(crate) fn forget(&mut self) {
        self.kept = None;
    }

    fn walk_to(&self, root: &Root, dirs: &[&str]) -> Option<Walk> {
        let (at, walked, walk) = self.kept.as_ref()?;
        let same = *at == std::ptr::from_ref(root) as usize && walked.iter().eq(dirs);
        same.then(|| walk.clone())
    }

    fn keep(&mut self, root: &Root, dirs: &[&str], walk: &Walk) {
        let dirs = dirs.iter().map(|d| d.to_string()).collect();
        self.kept = Some((std::ptr::from_ref(root) as usize, dirs, walk.clone()));
    }
}

fn mode_bits(mode: u32) -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(mode)
}

/// A directory reached from a root one component at a time, each opened
/// from the one before without following a symlink. Only the last one is
/// held (a deep tree must not cost a descriptor per level in every change
/// in flight), so `..` opens the parent of that one, counted so that it
/// never climbs above the root; a directory moved elsewhere between two
/// steps would shift where the count stops, which only a `..` met below it
/// (in a `-K` symlink's target) could use.
#[derive(Debug, Clone)]
struct Walk {
    dir: Arc<OwnedFd>,
    /// Levels below the root.
    depth: usize,
    /// The path walked so far, for messages.
    walked: String,
    dirlinks: bool,
    links: u32,
}

impl Walk {
    fn open(root: &Root, dirlinks: bool) -> io::Result<Walk> {
        Ok(Walk {
            dir: root.open()?,
            depth: 0,
            walked: root.path.trim_end_matches('/').to_string(),
            dirlinks,
            links: 0,
        })
    }

    fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Goes down through `parts` (with `..` back up, never above the root).
    fn enter(&mut self, parts: impl IntoIterator<Item = String>) -> io::Result<()> {
        let mut todo: VecDeque<String> = parts.into_iter().collect();
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                self.up()?;
                continue;
            }
            self.walked = crate::paths::join(&self.walked, &part);
            match rustix::fs::openat(self.dir(), &*os_path(&part), dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    self.dir = Arc::new(fd);
                    self.depth += 1;
                }
                Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                    let target = self.symlink_in_the_way(&part, e)?;
                    let parts = components(&target).map(str::to_string);
                    for part in parts.rev() {
                        todo.push_front(part);
                    }
                    self.walked = crate::paths::parent(&self.walked).to_string();
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn up(&mut self) -> io::Result<()> {
        if self.depth == 0 {
            let walked = crate::paths::printable(&self.walked);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{walked}: a symlink leads out of the directory ferry writes to, \
                     which it never follows"
                ),
            ));
        }
        self.dir = Arc::new(rustix::fs::openat(
            self.dir(),
            "..",
            dir_flags(),
            Mode::empty(),
        )?);
        self.depth -= 1;
        self.walked = crate::paths::parent(&self.walked).to_string();
        Ok(())
    }

    /// A component that is not a directory: the open's error unless it is
    /// a symlink; with `-K` the symlink's target (relative, to follow),
    /// otherwise an error saying the directory was replaced.
    fn symlink_in_the_way(&mut self, part: &str, error: Errno) -> io::Result<String> {
        let stat = rustix::fs::statat(self.dir(), &*os_path(part), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
            return Err(error.into());
        }
        let target = rustix::fs::readlinkat(self.dir(), &*os_path(part), Vec::new())?;
        let target = from_bytes(target.as_bytes()).into_owned();
        self.links += 1;
        if !self.dirlinks || target.starts_with('/') || self.links > MOST_LINKS {
            return Err(io::Error::new(
                io::Error::from(error).kind(),
                format!(
                    "{} is a symlink where a directory was (replaced during the run?); \
                     ferry follows no symlink below the directory it writes to",
                    crate::paths::printable(&self.walked)
                ),
            ));
        }
        Ok(target)
    }
}

/// A directory below a root, opened only to be walked through or changed
/// in: no read permission needed, as with a path.
fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Where one change lands: `name` in a directory reached by a [`Walk`], or,
/// without one, `name` as a whole path resolved by the kernel.
#[derive(Debug)]
pub(crate) struct Place {
    walk: Option<Walk>,
    name: PathBuf,
}

impl Place {
    /// `path` as the kernel resolves it (every component but the last
    /// followed when it is a symlink): for what ferry was not told to keep
    /// confined, such as the helper's paths on a server.
    pub(crate) fn path(path: impl AsRef<Path>) -> Place {
        Place {
            walk: None,
            name: path.as_ref().to_path_buf(),
        }
    }

    /// The last component, or the whole path when there is no walk.
    pub(crate) fn name(&self) -> &Path {
        &self.name
    }

    fn dir(&self) -> BorrowedFd<'_> {
        self.walk.as_ref().map_or(CWD, Walk::dir)
    }

    fn is_symlink(&self) -> bool {
        rustix::fs::statat(self.dir(), &self.name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    }
}

/// Opens the file at `place` for reading and writing, never through a
/// symlink: created with `mode` when missing (only then with `create_new`).
pub(crate) fn open_write(place: &Place, create_new: bool, mode: u32) -> io::Result<File> {
    let mut flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if create_new {
        flags |= OFlags::EXCL;
    }
    open(place, flags, mode)
}

/// Opens the existing file at `place`, never through a symlink, to read
/// or (`write`) to write without truncating.
pub(crate) fn open_existing(place: &Place, write: bool) -> io::Result<File> {
    let access = if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    open(place, access | OFlags::NOFOLLOW | OFlags::CLOEXEC, 0)
}

/// The entry at `place` itself (a symlink too, never its target), as a
/// descriptor that can name it but not read or write it (`O_PATH`).
pub(crate) fn open_entry(place: &Place) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        place.dir(),
        &place.name,
        flags,
        Mode::empty(),
    )?)
}

fn open(place: &Place, flags: OFlags, mode: u32) -> io::Result<File> {
    let fd = rustix::fs::openat(place.dir(), &place.name, flags, Mode::from_raw_mode(mode))?;
    Ok(File::from(fd))
}

pub(crate) fn remove_file(place: &Place) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(
        place.dir(),
        &place.name,
        AtFlags::empty(),
    )?)
}

/// Removes an empty directory (a symlink in its place is not one).
pub(crate) fn remove_dir(place: &Place) -> io::Result<()> {
    match rustix::fs::unlinkat(place.dir(), &place.name, AtFlags::REMOVEDIR) {
        Err(Errno::NOTDIR) if place.walk.is_some() && place.is_symlink() => {
            Err(symlink_here("removes no directory through it"))
        }
        done => Ok(done?),
    }
}

/// The error of a change refused because its entry is a symlink that is
/// not supposed to be there; `refusal` says what ferry does not do.
fn symlink_here(refusal: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a symlink stands here (replaced during the run?); ferry {refusal}"),
    )
}

pub(crate) fn mkdir(place: &Place, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        place.dir(),
        &place.name,
        Mode::from_raw_mode(mode),
    )?)
}

pub(crate) fn symlink(target: &str, place: &Place) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(
        &*os_path(target),
        place.dir(),
        &place.name,
    )?)
}

/// Makes a fifo, socket or device node.
pub(crate) fn make_node(place: &Place, node: Node, mode: u32) -> io::Result<()> {
    let file_type = FileType::from_raw_mode(node.kind.type_bits());
    Ok(rustix::fs::mknodat(
        place.dir(),
        &place.name,
        file_type,
        Mode::from_raw_mode(mode & 0o7777),
        node.rdev,
    )?)
}

pub(crate) fn rename(from: &Place, to: &Place) -> io::Result<()> {
    Ok(rustix::fs::renameat(
        from.dir(),
        &from.name,
        to.dir(),
        &to.name,
    )?)
}

/// Makes `to` another name of `from` itself (a symlink, not its target).
pub(crate) fn hard_link(from: &Place, to: &Place) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        from.dir(),
        &from.name,
        to.dir(),
        &to.name,
        AtFlags::empty(),
    )?)
}

/// Sets the modification time of the entry itself (a symlink's own), its
/// access time untouched.
pub(crate) fn set_mtime(place: &Place, mtime: Mtime) -> io::Result<()> {
    let times = super::only_mtime(mtime);
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    Ok(rustix::fs::utimensat(
        place.dir(),
        &place.name,
        &times,
        nofollow,
    )?)
}

/// Gives the entry itself (a symlink's own, never its target) its owner
/// and group; Ok(false) where rsync would have skipped a refused change
/// ([`OwnerChange::refusal_is_skip`]).
pub(crate) fn set_owner(place: &Place, change: OwnerChange) -> io::Result<bool> {
    if change.is_empty() {
        return Ok(true);
    }
    let (uid, gid) = super::ids(change);
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    let done = rustix::fs::chownat(place.dir(), &place.name, uid, gid, nofollow);
    super::owner_set(change, done)
}

/// Makes the entries of the directory holding `place` durable (after a
/// rename into it).
pub(crate) fn sync_dir(place: &Place) -> io::Result<()> {
    let dir = match &place.walk {
        // A descriptor opened with O_PATH cannot be synced: open it again.
        Some(walk) => rustix::fs::openat(
            walk.dir(),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?,
        None => File::open(crate::paths::parent(&place.name.to_string_lossy()))?.into(),
    };
    Ok(rustix::fs::fsync(dir)?)
}

/// chmod of `name` in `dir` itself; Ok(false), and nothing changed, when
/// it is a symlink. It is opened first without following one (O_PATH, which
/// needs no permission on the entry, as chmod by path needs none); fchmod
/// refuses such a descriptor, but its name under /proc is the entry itself,
/// whatever is at its path by then (glibc's fchmodat(AT_SYMLINK_NOFOLLOW)
/// does the same). Without /proc it is opened again to read, and fchmod'ed.
fn chmod_entry(dir: BorrowedFd<'_>, name: &Path, mode: Mode) -> io::Result<bool> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let entry = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&entry)?;
    if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
        return Ok(false);
    }
    let by_proc = format!("/proc/self/fd/{}", entry.as_raw_fd());
    match rustix::fs::chmodat(CWD, by_proc.as_str(), mode, AtFlags::empty()) {
        Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
            let readable = rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty())?;
            rustix::fs::fchmod(readable, mode)?;
        }
        done => done?,
    }
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{symlink as make_link, MetadataExt};

    /// Everything under `dir`: each path with its kind, mode, mtime and
    /// contents (a symlink's target).
    pub(crate) fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, i64, i64, Vec<u8>)> {
        let mut found = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(at) = todo.pop() {
            let meta = std::fs::symlink_metadata(&at).unwrap();
            let body = if meta.is_dir() {
                todo.extend(std::fs::read_dir(&at).unwrap().map(|e| e.unwrap().path()));
                Vec::new()
            } else if meta.is_symlink() {
                std::fs::read_link(&at).unwrap().into_os_string().into_vec()
            } else {
                std::fs::read(&at).unwrap()
            };
            found.push((at, meta.mode(), meta.mtime(), meta.mtime_nsec(), body));
        }
        found.sort();
        found
    }

    use std::os::unix::ffi::OsStringExt;

    /// A destination whose `sub` was swapped for a symlink to `outside`.
    pub(crate) struct Swapped {
        pub _tmp: tempfile::TempDir,
        pub dest: String,
        pub outside: PathBuf,
    }

    pub(crate) fn swapped() -> Swapped {
        let tmp = tempfile::tempdir().unwrap();
        let (dest, outside) = (tmp.path().join("dest"), tmp.path().join("outside"));
        std::fs::create_dir_all(dest.join("sub")).unwrap();
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("victim"), b"precious").unwrap();
        std::fs::write(dest.join("mine"), b"mine").unwrap();
        std::fs::rename(dest.join("sub"), dest.join("sub.old")).unwrap();
        make_link(&outside, dest.join("sub")).unwrap();
        Swapped {
            dest: dest.to_str().unwrap().to_string(),
            outside,
            _tmp: tmp,
        }
    }

    #[test]
    fn nothing_goes_through_a_swapped_directory() {
        let s = swapped();
        let before = snapshot(&s.outside);
        let roots = Roots::new([s.dest.clone()], false);
        let at = |name: &str| format!("{}/{name}", s.dest);
        let place = |name: &str| roots.place(&at(name));
        let refused = place("sub/victim").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("sub is a symlink where a directory was"),
            "{refused}"
        );
        assert!(roots.set_mode(&at("sub/victim"), 0o777).is_err());
        assert!(roots.set_mode(&at("sub/dir"), 0o777).is_err());
        assert!(place("sub/dir/deeper").is_err());
        // Through the root, what is right in it works.
        let mine = place("mine").unwrap();
        rename(&mine, &place("moved").unwrap()).unwrap();
        assert_eq!(snapshot(&s.outside), before);
    }

    #[test]
    fn a_kept_directory_is_the_one_walked_never_a_symlink_swapped_in_after() {
        let tmp = tempfile::tempdir().unwrap();
        let (dest, outside) = (tmp.path().join("dest"), tmp.path().join("outside"));
        std::fs::create_dir_all(dest.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let before = snapshot(&outside);
        let roots = Roots::new([dest.to_str().unwrap().to_string()], false);
        let at = |name: &str| format!("{}/sub/{name}", dest.display());
        let mut recent = RecentDir::default();
        let put = |name: &str, recent: &mut RecentDir| -> io::Result<()> {
            let partial = format!(".{name}.partial");
            let (partial, dest) = roots.place_both_near(&at(&partial), &at(name), Some(recent))?;
            drop(open_write(&partial, true, 0o600)?);
            rename(&partial, &dest)
        };
        put("a", &mut recent).unwrap();
        std::fs::rename(dest.join("sub"), dest.join("moved")).unwrap();
        make_link(&outside, dest.join("sub")).unwrap();
        // Kept: the directory walked to, wherever it went; never the link.
        put("b", &mut recent).unwrap();
        assert!(dest.join("moved/a").is_file() && dest.join("moved/b").is_file());
        assert_eq!(snapshot(&outside), before);
        // Forgotten: walked again, and the link is refused.
        recent.forget();
        assert!(put("c", &mut recent).is_err());
        assert_eq!(snapshot(&outside), before);
    }

    #[test]
    fn a_symlink_as_the_last_component_is_changed_itself_never_followed() {
        let s = swapped();
        let before = snapshot(&s.outside);
        let roots = Roots::new([s.dest.clone()], false);
        let link = format!("{}/sub", s.dest);
        let err = roots.set_mode(&link, 0o700).unwrap_err();
        assert!(err.to_string().contains("sets no mode through it"), "{err}");
        let err = remove_dir(&roots.place(&link).unwrap()).unwrap_err();
        assert!(err.to_string().contains("removes no directory"), "{err}");
        let mtime = Mtime::precise(1_000_000, 5);
        set_mtime(&roots.place(&link).unwrap(), mtime).unwrap();
        assert_eq!(std::fs::symlink_metadata(&link).unwrap().mtime(), 1_000_000);
        assert_eq!(snapshot(&s.outside), before);
    }

    #[test]
    fn the_root_and_paths_under_no_root_are_taken_as_given() {
        let s = swapped();
        // A root given through the symlink the user chose: followed.
        let roots = Roots::new([format!("{}/sub", s.dest)], false);
        roots
            .set_mode(&format!("{}/sub/victim", s.dest), 0o640)
            .unwrap();
        let victim = std::fs::metadata(s.outside.join("victim")).unwrap();
        assert_eq!(victim.mode() & 0o777, 0o640);
        // Under no root (and above a root by `..`): as the kernel resolves it.
        let none = Roots::new([format!("{}/sub.old", s.dest)], false);
        let by_dots = format!("{}/sub.old/../sub/victim", s.dest);
        none.set_mode(&by_dots, 0o600).unwrap();
        let victim = std::fs::metadata(s.outside.join("victim")).unwrap();
        assert_eq!(victim.mode() & 0o777, 0o600);
    }

    #[test]
    fn keep_dirlinks_follows_links_that_stay_below_the_root_only() {
        let s = swapped();
        let before = snapshot(&s.outside);
        make_link("sub.old", format!("{}/kept", s.dest)).unwrap();
        make_link("../..", format!("{}/sub.old/up", s.dest)).unwrap();
        let roots = Roots::new([s.dest.clone()], true);
        let kept = roots.place(&format!("{}/kept/f", s.dest)).unwrap();
        open_write(&kept, true, 0o644).unwrap();
        assert!(Path::new(&s.dest).join("sub.old/f").is_file());
        roots.set_mode(&format!("{}/kept", s.dest), 0o750).unwrap();
        let dir = std::fs::metadata(format!("{}/sub.old", s.dest)).unwrap();
        assert_eq!(dir.mode() & 0o777, 0o750);
        // Absolute, or out by `..`: refused.
        assert!(roots.place(&format!("{}/sub/victim", s.dest)).is_err());
        let out = roots.place(&format!("{}/kept/up/x", s.dest)).unwrap_err();
        assert!(out.to_string().contains("leads out"), "{out}");
        assert_eq!(snapshot(&s.outside), before);
    }

    #[test]
    fn a_root_inside_an_earlier_one_is_left_out() {
        let named = ["d", "d/bk", "d/../bk", "/abs", "d/.", ".", "/abs/t"];
        let roots = Roots::new(named.map(String::from), false);
        let kept: Vec<&str> = roots.roots.iter().map(|r| r.path.as_str()).collect();
        // The destination stays a root of its own inside a later one.
        assert_eq!(kept, ["d", "d/../bk", "/abs", "."]);
    }

    #[test]
    fn two_names_in_one_directory_share_its_walk_and_stay_confined() {
        let s = swapped();
        let before = snapshot(&s.outside);
        let roots = Roots::new([s.dest.clone()], false);
        let at = |name: &str| format!("{}/{name}", s.dest);
        std::fs::write(at("sub.old/partial"), b"new").unwrap();
        let (from, to) = roots
            .place_both(&at("sub.old/partial"), &at("sub.old/file"))
            .unwrap();
        let shared = |p: &Place| p.walk.as_ref().map(|w| Arc::as_ptr(&w.dir));
        assert_eq!(shared(&from), shared(&to));
        rename(&from, &to).unwrap();
        assert_eq!(std::fs::read(at("sub.old/file")).unwrap(), b"new");
        // In different directories, each is walked: through the swapped
        // one, refused.
        let (mine, there) = roots.place_both(&at("mine"), &at("sub.old/mine")).unwrap();
        assert_ne!(shared(&mine), shared(&there));
        assert!(roots.place_both(&at("mine"), &at("sub/victim")).is_err());
        assert!(roots.place_both(&at("sub/victim"), &at("sub/x")).is_err());
        assert_eq!(snapshot(&s.outside), before);
    }

    #[test]
    fn a_root_is_resolved_once_and_kept_for_the_run() {
        let tmp = tempfile::tempdir().unwrap();
        let (dest, elsewhere) = (tmp.path().join("dest"), tmp.path().join("elsewhere"));
        std::fs::create_dir_all(&elsewhere).unwrap();
        let roots = Roots::new([dest.to_str().unwrap().to_string()], false);
        let at = |name: &str| format!("{}/{name}", dest.display());
        // Not there yet: nothing kept, and found once made.
        assert!(roots
            .place(&at("a"))
            .and_then(|p| open_write(&p, true, 0o600))
            .is_err());
        std::fs::create_dir(&dest).unwrap();
        open_write(&roots.place(&at("a")).unwrap(), true, 0o600).unwrap();
        // Swapped for a symlink during the run: the changes go on in the
        // directory first resolved, never through the new symlink.
        std::fs::rename(&dest, tmp.path().join("moved")).unwrap();
        make_link(&elsewhere, &dest).unwrap();
        open_write(&roots.place(&at("b")).unwrap(), true, 0o600).unwrap();
        assert!(tmp.path().join("moved/b").is_file());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
