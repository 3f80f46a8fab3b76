//! The local filesystem as an endpoint. Blocking std::fs calls run on tokio's
//! blocking pool so they never stall the SSH connection's task.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::sync::Arc;

use bytes::Bytes;

use super::{Attrs, CopyRange, Endpoint, FileHandle, Listing, Meta, Mtime, WriteMode};
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::error::{Error, Result};
use crate::hash::{hash_file_blocks, hash_whole_file, BlockHash, HashAlgo};
use crate::local_io::{
    copy_ranges_between, finish_file, install_whole, list_dir, not_found_is_none, process_umask,
    set_mtime_nofollow, sync_parent,
};

/// 256 KiB keeps syscalls few without holding much memory per file.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Default)]
pub struct LocalFs;

pub struct LocalFile {
    file: Arc<File>,
    path: Arc<str>,
}

async fn blocking<T, F>(path: &str, f: F) -> Result<T>
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

    fn label(&self) -> &str {
        ""
    }

    fn chunk_size(&self) -> usize {
        CHUNK
    }

    fn requests_in_flight(&self) -> usize {
        4
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
        blocking(path, move || not_found_is_none(fs::symlink_metadata(p))).await
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        let p = path.to_string();
        blocking(path, move || not_found_is_none(fs::metadata(p))).await
    }

    async fn list(&self, dir: &str) -> Result<Listing> {
        let p = dir.to_string();
        blocking(dir, move || list_dir(&p)).await
    }

    async fn open_read(&self, path: &str) -> Result<LocalFile> {
        let p = path.to_string();
        let file = blocking(path, move || File::open(p)).await?;
        Ok(LocalFile {
            file: Arc::new(file),
            path: path.into(),
        })
    }

    async fn open_write(&self, path: &str, how: WriteMode, mode: u32) -> Result<LocalFile> {
        let p = path.to_string();
        let file = blocking(path, move || {
            OpenOptions::new()
                .write(true)
                .read(true)
                .create(true)
                .create_new(how == WriteMode::CreateNew)
                .mode(mode)
                // A partial resumed by name could have been swapped for a
                // symlink since it was planned: never write through one.
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
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
        let (p, d) = (partial.to_string(), dest.to_string());
        // One trip to the blocking pool, not three; the directory is synced
        // only with the file (a new file's rename needs no more than rsync
        // gives it).
        blocking(dest, move || {
            install_whole(p.as_ref(), d.as_ref(), &data, attrs, sync)?;
            if sync {
                sync_parent(&d)?;
            }
            Ok(())
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (f, t) = (from.to_string(), to.to_string());
        blocking(to, move || {
            fs::rename(&f, &t)?;
            sync_parent(&t)
        })
        .await
    }

    async fn hard_link(&self, from: &str, to: &str) -> Result<bool> {
        let (f, t) = (from.to_string(), to.to_string());
        // link(2) through std: linkat without AT_SYMLINK_FOLLOW, so a
        // symlink gets a second name, not its target.
        blocking(to, move || fs::hard_link(&f, &t)).await?;
        Ok(true)
    }

    async fn set_mtime(&self, path: &str, mtime: Mtime) -> Result<()> {
        let p = path.to_string();
        blocking(path, move || set_mtime_nofollow(&p, mtime)).await
    }

    async fn set_mode(&self, path: &str, mode: u32) -> Result<()> {
        let p = path.to_string();
        blocking(path, move || {
            fs::set_permissions(p, fs::Permissions::from_mode(mode))
        })
        .await
    }

    async fn remove_file(&self, path: &str) -> Result<()> {
        let p = path.to_string();
        blocking(path, move || fs::remove_file(p)).await
    }

    async fn remove_dir(&self, path: &str) -> Result<()> {
        let p = path.to_string();
        blocking(path, move || fs::remove_dir(p)).await
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Result<()> {
        let p = path.to_string();
        blocking(path, move || fs::DirBuilder::new().mode(mode).create(p)).await
    }

    async fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let (t, p) = (target.to_string(), path.to_string());
        blocking(path, move || std::os::unix::fs::symlink(t, p)).await
    }

    async fn umask(&self, _dir: &str) -> Result<u32> {
        Ok(process_umask())
    }

    async fn file_system(&self, dir: &str) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let p = dir.to_string();
        blocking(dir, move || fs::metadata(p).map(|m| m.dev())).await
    }

    async fn block_hashes(
        &self,
        path: &str,
        start: u64,
        end: u64,
        block: u64,
        algo: HashAlgo,
    ) -> Result<Vec<BlockHash>> {
        let p = path.to_string();
        blocking(path, move || {
            let file = File::open(p)?;
            hash_file_blocks(&file, start, end, block, algo).map(|(_, hashes)| hashes)
        })
        .await
    }

    async fn file_hash(&self, path: &str, algo: HashAlgo) -> Result<BlockHash> {
        let p = path.to_string();
        blocking(path, move || {
            hash_whole_file(&File::open(p)?, algo).map(|(_, hash)| hash)
        })
        .await
    }

    async fn find_blocks(
        &self,
        path: &str,
        regions: &[(u64, u64)],
        signature: &Signature,
    ) -> Result<Option<Vec<Piece>>> {
        let (p, regions, signature) = (path.to_string(), regions.to_vec(), signature.clone());
        blocking(path, move || {
            crate::delta::scan_regions_blocking(&File::open(p)?, &regions, &signature).map(Some)
        })
        .await
    }

    fn copies_ranges(&self) -> bool {
        true
    }

    async fn copy_ranges(&self, from: &str, to: &str, ranges: &[CopyRange]) -> Result<()> {
        let (old, new, ranges) = (from.to_string(), to.to_string(), ranges.to_vec());
        blocking(to, move || {
            copy_ranges_between(old.as_ref(), new.as_ref(), &ranges).map(|_| ())
        })
        .await
    }

    async fn read_link(&self, path: &str) -> Result<String> {
        let p = path.to_string();
        let target = blocking(path, move || fs::read_link(p)).await?;
        target
            .into_os_string()
            .into_string()
            .map_err(|raw| Error::Refused {
                path: path.to_string(),
                message: format!("symlink target {raw:?} is not valid UTF-8"),
            })
    }
}

impl FileHandle for LocalFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let file = self.file.clone();
        blocking(&self.path, move || {
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
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        let file = self.file.clone();
        blocking(&self.path, move || file.write_all_at(&data, offset)).await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let file = self.file.clone();
        blocking(&self.path, move || file.set_len(len)).await
    }

    async fn close(self, sync: bool) -> Result<()> {
        let file = self.file;
        blocking(
            &self.path,
            move || if sync { file.sync_all() } else { Ok(()) },
        )
        .await
    }

    async fn finish(self, last: Option<(u64, Bytes)>, attrs: Attrs, sync: bool) -> Result<()> {
        let file = self.file;
        blocking(&self.path, move || {
            let last = last.as_ref().map(|(offset, data)| (*offset, &data[..]));
            finish_file(&file, last, attrs, sync)
        })
        .await
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
        let file = crate::endpoint::create_fresh(&LocalFs, &name)
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
        };
        let dest = dir.path().join("f");
        install_whole(&partial, &dest, b"whole", attrs, false).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }

    #[tokio::test]
    async fn a_resumed_partial_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let partial = dir.path().join(".f.ferry-partial");
        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let opened = LocalFs
            .open_write(&partial.display().to_string(), WriteMode::Keep, 0o600)
            .await;
        assert!(opened.is_err(), "opened through the symlink");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }
}
