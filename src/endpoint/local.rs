//! The local filesystem as an endpoint. Chunks of large files, hashes and
//! range copies run on tokio's blocking pool, beside the SSH connection's
//! task; short calls (metadata, small files whole, renames) run in place
//! while the file system answers quickly ([`crate::local_io::quick`]).
//!
//! As a destination it is confined to the directories the user named
//! ([`LocalFs::confined_to`]): every change below them (writes, renames,
//! links, modes, times, removals, new directories, the lock) reaches its
//! directory without following a symlink ([`crate::local_io::confined`]),
//! so a directory swapped for a symlink during the run fails the change
//! instead of taking it elsewhere. Reads follow symlinks as they always did.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::ahead::Ahead;
use super::hashes::{Answer, Hashes};
use super::{
    Attrs, CopyRange, Endpoint, Features, FileHandle, Hashing, Identity, Listing, Meta, Mtime,
    Node, OwnerChange, WriteMode, XattrScope, Xattrs,
};
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::error::{Error, Host, Result};
use crate::hash::{hash_file_blocks, hash_whole_file, BlockHash, HashAlgo};
use crate::local_io::{confined, quick, xattrs};
use crate::local_io::{
    copy_ranges_between, finish_file, install_whole, list_dir, not_found_is_none, process_umask,
    read_at_most, Roots,
};
use crate::paths::{from_bytes, os_path};

/// 256 KiB keeps syscalls few without holding much memory per file.
const CHUNK: usize = 256 * 1024;

/// This machine's files. The default follows symlinks wherever the kernel
/// does (a source, or a destination of a test).
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalFs {
    roots: Arc<Roots>,
    /// Listings started ahead of the walk ([`Endpoint::list_soon`]), made
    /// on the blocking pool while the walk plans the directories before
    /// them: on two cores, the walk's system calls then run beside its
    /// own work rather than in it.
    listing_ahead: Arc<Ahead<Listing>>,
}

impl LocalFs {
    /// A destination whose changes below `roots` (the directories the user
    /// named: the destination, an absolute backup, partial or temp
    /// directory) never follow a symlink; with `dirlinks` (`-K`) but one to
    /// a directory below its root. `roots` themselves, the directories above
    /// them, and paths under none of them are taken as given.
    pub(crate) fn confined_to(roots: impl IntoIterator<Item = String>, dirlinks: bool) -> LocalFs {
        LocalFs {
            roots: Arc::new(Roots::new(roots, dirlinks)),
            listing_ahead: Arc::default(),
        }
    }

    /// Runs `change` on the place of `path` on the blocking pool.
    async fn change<T, F>(&self, path: &str, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&confined::Place) -> io::Result<T> + Send + 'static,
    {
        let (roots, p) = (self.roots.clone(), path.to_string());
        blocking(path, move || change(&roots.place(&p)?)).await
    }

    /// Runs `change` on the places of `from` and `to` (named in errors).
    async fn change_two<F>(&self, from: &str, to: &str, change: F) -> Result<()>
    where
        F: FnOnce(&confined::Place, &confined::Place) -> io::Result<()> + Send + 'static,
    {
        let (roots, f, t) = (self.roots.clone(), from.to_string(), to.to_string());
        blocking(to, move || {
            let (from, to) = roots.place_both(&f, &t)?;
            change(&from, &to)
        })
        .await
    }
}

pub(crate) struct LocalFile {
    file: Arc<File>,
    path: Arc<str>,
}

/// A short blocking call (metadata, a small file read or written whole, a
/// rename): in place while the file system is quick
/// ([`crate::local_io::quick`]).
async fn blocking<T, F>(path: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match quick::run(f).await {
        Some(result) => result.map_err(|e| Error::io(path, e)),
        None => Err(Error::io(
            path,
            io::Error::other("the file system call panicked"),
        )),
    }
}

/// A blocking call with a file's data (a chunk of a large file, a whole
/// file hashed or copied): on the pool, beside the encryption on the
/// runtime's thread.
async fn on_pool<T, F>(path: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| Error::io(path, e)),
        Err(join) => Err(Error::io(path, io::Error::other(join.to_string()))),
    }
}

impl Endpoint for LocalFs {
    type File = LocalFile;

    fn label(&self) -> &Host {
        &Host::Local
    }

    fn features(&self) -> Features {
        Features {
            sessions: 1,
            chunk: CHUNK,
            depth: 4,
            hard_links: true,
            copies_ranges: true,
            copies_within: false,
            link_times: true,
            owners: true,
            link_owners: true,
            raw_byte_names: true,
            inodes: true,
            device_numbers: true,
            makes_nodes: true,
            may_make_devices: crate::local_io::creator().0 == 0,
            xattrs: true,
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_string();
        }
        match std::env::current_dir() {
            Ok(cwd) => super::join(&cwd.to_string_lossy(), path),
            Err(_) => path.to_string(),
        }
    }

    async fn lstat(&self, path: &str) -> Result<Option<Meta>> {
        let p = path.to_string();
        blocking(path, move || {
            not_found_is_none(fs::symlink_metadata(os_path(&p)))
        })
        .await
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        let p = path.to_string();
        blocking(path, move || not_found_is_none(fs::metadata(os_path(&p)))).await
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        if let Some(listing) = self.listing_ahead.take(dir).await {
            return Ok(listing);
        }
        let p = dir.to_string();
        blocking(dir, move || list_dir(&p)).await
    }

    fn list_soon(&self, dirs: &[&str]) {
        let list = |dir: &str| list_dir(dir).map_err(|e| Error::io(dir, e));
        self.listing_ahead.start_blocking(dirs, list);
    }

    async fn open_read(&self, path: &str) -> Result<LocalFile> {
        let p = path.to_string();
        let file = blocking(path, move || File::open(os_path(&p))).await?;
        Ok(LocalFile {
            file: Arc::new(file),
            path: path.into(),
        })
    }

    /// Open, read, fstat and close in one call ([`blocking`]: in place
    /// while the file system is quick), not four. The stamp is the open
    /// file's own (what was read, through a symlink followed as the open
    /// did).
    async fn read_whole(&self, path: &str, len: u64) -> Result<super::Whole> {
        let p = path.to_string();
        blocking(path, move || {
            let file = File::open(os_path(&p))?;
            let data = read_at_most(&file, 0, len as usize)?;
            let now = file.metadata()?;
            Ok(super::Whole {
                data: Bytes::from(data),
                stamp: Some((now.len(), crate::local_io::meta_of(&now).mtime)),
            })
        })
        .await
    }

    async fn open_write(&self, path: &str, how: WriteMode, mode: u32) -> Result<LocalFile> {
        // Never through a symlink: a partial resumed by name could have been
        // swapped for one since it was planned.
        let create_new = how == WriteMode::CreateNew;
        let file = self
            .change(path, move |place| {
                confined::open_write(place, create_new, mode)
            })
            .await?;
        Ok(LocalFile {
            file: Arc::new(file),
            path: path.into(),
        })
    }

    async fn put_whole(
        &self,
        partial: &str,
        dest: &str,
        data: Bytes,
        attrs: Attrs,
        sync: bool,
    ) -> Result<()> {
        // One trip to the blocking pool, not three; the directory is synced
        // only with the file (a new file's rename needs no more than rsync
        // gives it).
        self.change_two(partial, dest, move |partial, dest| {
            install_whole(partial, dest, &data, attrs, sync)?;
            if sync {
                confined::sync_dir(dest)?;
            }
            Ok(())
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.change_two(from, to, |from, to| {
            confined::rename(from, to)?;
            confined::sync_dir(to)
        })
        .await
    }

    async fn hard_link(&self, from: &str, to: &str) -> Result<()> {
        // linkat without AT_SYMLINK_FOLLOW: a symlink gets a second name,
        // not its target.
        self.change_two(from, to, confined::hard_link).await
    }

    async fn set_mtime(&self, path: &str, mtime: Mtime) -> Result<()> {
        self.change(path, move |place| confined::set_mtime(place, mtime))
            .await
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        let (roots, p) = (self.roots.clone(), path.to_string());
        blocking(path, move || roots.set_mode(&p, mode)).await
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        self.change(path, confined::remove_file).await
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        self.change(path, confined::remove_dir).await
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        self.change(path, move |place| confined::mkdir(place, mode))
            .await
    }

    async fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let target = target.to_string();
        self.change(path, move |place| confined::symlink(&target, place))
            .await
    }

    async fn make_node(&self, path: &str, node: Node, mode: u32) -> Result<()> {
        self.change(path, move |place| confined::make_node(place, node, mode))
            .await
    }

    async fn set_owner(&self, path: &str, change: OwnerChange) -> Result<bool> {
        self.change(path, move |place| confined::set_owner(place, change))
            .await
    }

    async fn xattrs(&self, path: &str, scope: XattrScope) -> Result<Xattrs> {
        let p = path.to_string();
        blocking(path, move || xattrs::read(&os_path(&p), scope)).await
    }

    async fn set_xattrs(&self, path: &str, want: &Xattrs, scope: XattrScope) -> Result<()> {
        let want = want.clone();
        self.change(path, move |place| {
            xattrs::write(place, &want, scope).map(drop)
        })
        .await
    }

    async fn id_names(&self) -> Result<super::IdNames> {
        Ok(super::IdNames::System)
    }

    async fn identity(&self, _dir: Option<&str>) -> Result<Identity> {
        Ok(crate::local_io::identity())
    }

    async fn umask(&self, _dir: &str) -> Result<u32> {
        Ok(process_umask())
    }

    async fn file_system(&self, dir: &str) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let p = dir.to_string();
        blocking(dir, move || fs::metadata(os_path(&p)).map(|m| m.dev())).await
    }

    fn hashes(&self) -> &dyn Hashes {
        &LocalHashes
    }

    async fn copy_ranges(&self, from: &str, to: &str, ranges: &[CopyRange]) -> Result<()> {
        // Whole files' worth of data: a thread of its own.
        let (roots, f, t, ranges) = (
            self.roots.clone(),
            from.to_string(),
            to.to_string(),
            ranges.to_vec(),
        );
        on_pool(to, move || {
            copy_ranges_between(&roots.place(&f)?, &roots.place(&t)?, &ranges).map(|_| ())
        })
        .await
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        let p = path.to_string();
        let target = blocking(path, move || fs::read_link(os_path(&p))).await?;
        Ok(from_bytes(target.as_os_str().as_bytes()).into_owned())
    }
}

impl FileHandle for LocalFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let file = self.file.clone();
        on_pool(&self.path, move || {
            read_at_most(&file, offset, len).map(Bytes::from)
        })
        .await
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        let file = self.file.clone();
        on_pool(&self.path, move || file.write_all_at(&data, offset)).await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let file = self.file.clone();
        on_pool(&self.path, move || file.set_len(len)).await
    }

    async fn close(self, sync: bool) -> Result<()> {
        let file = self.file;
        on_pool(
            &self.path,
            move || if sync { file.sync_all() } else { Ok(()) },
        )
        .await
    }

    async fn finish(self, last: Option<(u64, Bytes)>, attrs: Attrs, sync: bool) -> Result<()> {
        let file = self.file;
        on_pool(&self.path, move || {
            let last = last.as_ref().map(|(offset, data)| (*offset, &data[..]));
            finish_file(&file, last, attrs, sync)
        })
        .await
    }
}

/// Hashing next to the data: this machine's files, read on the blocking
/// pool, any algorithm.
pub(crate) struct LocalHashes;

impl Hashes for LocalHashes {
    fn name(&self) -> &'static str {
        "local"
    }

    fn hashing(&self) -> Hashing {
        Hashing::AtTheData
    }

    fn block_hashes<'a>(
        &'a self,
        path: &'a str,
        start: u64,
        end: u64,
        block: u64,
        algo: HashAlgo,
    ) -> Answer<'a, Vec<BlockHash>> {
        let p = path.to_string();
        Box::pin(on_pool(path, move || {
            let file = File::open(os_path(&p))?;
            hash_file_blocks(&file, start, end, block, algo).map(|(_, hashes)| Some(hashes))
        }))
    }

    fn file_hash<'a>(&'a self, path: &'a str, algo: HashAlgo) -> Answer<'a, BlockHash> {
        let p = path.to_string();
        Box::pin(on_pool(path, move || {
            hash_whole_file(&File::open(os_path(&p))?, algo).map(|(_, hash)| Some(hash))
        }))
    }

    fn links<'a>(&'a self, path: &'a str) -> Answer<'a, u64> {
        use std::os::unix::fs::MetadataExt;
        let p = path.to_string();
        Box::pin(on_pool(path, move || {
            Ok(Some(std::fs::symlink_metadata(os_path(&p))?.nlink()))
        }))
    }

    fn signature<'a>(&'a self, path: &'a str, block: u32) -> Answer<'a, Signature> {
        let p = path.to_string();
        Box::pin(on_pool(path, move || {
            let file = File::open(os_path(&p))?;
            let size = file.metadata()?.len();
            crate::delta::sign_file_blocking(&file, size, block).map(Some)
        }))
    }

    fn find_blocks<'a>(
        &'a self,
        path: &'a str,
        regions: &'a [(u64, u64)],
        signature: &'a Signature,
    ) -> Answer<'a, Vec<Piece>> {
        let (p, regions, signature) = (path.to_string(), regions.to_vec(), signature.clone());
        Box::pin(on_pool(path, move || {
            crate::delta::scan_regions_blocking(&File::open(os_path(&p))?, &regions, &signature)
                .map(Some)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symlink planted under a partial's name (after planning looked) is
    /// replaced, never written through: both ways a partial is made.
    #[tokio::test]
    async fn a_fresh_partial_never_writes_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let partial = dir.path().join(".f.ferry-partial");
        let name = partial.display().to_string();

        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let file = crate::endpoint::create_fresh(&LocalFs::default(), &name)
            .await
            .unwrap();
        file.write_at(0, Bytes::from_static(b"new data"))
            .await
            .unwrap();
        file.close(false).await.unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&partial).unwrap().is_file());

        fs::remove_file(&partial).unwrap();
        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let attrs = Attrs {
            mode: 0o644,
            mtime: None,
            owner: Default::default(),
        };
        let dest = dir.path().join("f");
        let place = confined::Place::path;
        install_whole(&place(&partial), &place(&dest), b"whole", attrs, false).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }

    #[tokio::test]
    async fn a_listing_started_ahead_is_taken_once_and_a_failed_one_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let (here, later) = (dir.path().join("here"), dir.path().join("later"));
        fs::create_dir(&here).unwrap();
        fs::write(here.join("a"), b"a").unwrap();
        let (here, later) = (here.display().to_string(), later.display().to_string());
        let local = LocalFs::default();
        // In this order: once `here` is in, `later` was tried (and failed).
        local.list_soon(&[&later, &here]);
        let names = |listing: Listing| -> Vec<String> {
            listing.entries.into_iter().map(|e| e.name).collect()
        };
        assert_eq!(names(local.list(&here).await.unwrap()), ["a"]);
        // Missing when started: listed afresh when asked for.
        fs::create_dir(&later).unwrap();
        fs::write(format!("{later}/b"), b"b").unwrap();
        assert_eq!(names(local.list(&later).await.unwrap()), ["b"]);
        // Taken once: a second listing is made afresh.
        fs::write(format!("{here}/c"), b"c").unwrap();
        assert_eq!(names(local.list(&here).await.unwrap()), ["a", "c"]);
    }

    #[tokio::test]
    async fn a_resumed_partial_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let partial = dir.path().join(".f.ferry-partial");
        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let opened = LocalFs::default()
            .open_write(&partial.display().to_string(), WriteMode::Keep, 0o600)
            .await;
        assert!(opened.is_err(), "opened through the symlink");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    /// Every change through a destination confined to DEST fails where a
    /// directory of it was swapped for a symlink to elsewhere, and leaves
    /// that elsewhere as it was, byte for byte and mode for mode.
    #[tokio::test]
    async fn a_confined_destination_changes_nothing_through_a_swapped_directory() {
        use crate::local_io::confined::tests::{snapshot, swapped};
        let s = swapped();
        let before = snapshot(&s.outside);
        let fs = LocalFs::confined_to([s.dest.clone()], false);
        let at = |name: &str| format!("{}/{name}", s.dest);
        let attrs = Attrs {
            mode: 0o644,
            mtime: None,
            owner: Default::default(),
        };
        let data = Bytes::from_static(b"new");
        let keep = WriteMode::Keep;
        let results = [
            fs.remove_file(&at("sub/victim")).await,
            fs.set_mode(&at("sub/victim"), 0o777).await,
            fs.set_mtime(&at("sub/victim"), Mtime::secs(1)).await,
            fs.open_write(&at("sub/victim"), keep, 0o644)
                .await
                .map(drop),
            fs.open_write(&at("sub/new"), keep, 0o644).await.map(drop),
            fs.mkdir(&at("sub/newdir"), 0o755).await,
            fs.remove_dir(&at("sub/dir")).await,
            fs.rename(&at("mine"), &at("sub/victim")).await,
            fs.rename(&at("sub/victim"), &at("stolen")).await,
            fs.hard_link(&at("mine"), &at("sub/linked")).await,
            fs.symlink("mine", &at("sub/link")).await,
            fs.put_whole(&at("sub/.p"), &at("sub/victim"), data, attrs, true)
                .await,
            crate::endpoint::write_small(&fs, &at("sub/victim"), b"new").await,
            fs.copy_ranges(&at("mine"), &at("sub/victim"), &[]).await,
        ];
        for (i, result) in results.iter().enumerate() {
            let err = result
                .as_ref()
                .expect_err(&format!("change {i} went through"));
            assert!(!err.is_fatal(), "{err}");
            assert!(
                err.to_string()
                    .contains("is a symlink where a directory was"),
                "{err}"
            );
        }
        assert_eq!(snapshot(&s.outside), before);
        assert_eq!(fs::read(at("mine")).unwrap(), b"mine");
    }
}
