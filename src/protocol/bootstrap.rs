//! `--remote-ferry upload`: puts this very binary on the server as the
//! helper when the server runs the same OS and architecture, keeps it in a
//! cache directory under a name carrying its version and blake3, and reuses
//! it on later runs.
//!
//! Nothing there runs unchecked. The cache directory must be the user's
//! alone ([`safe_path`]); a cached copy is read back over SFTP and hashed
//! here, and runs only when its hash is this binary's, else it is uploaded
//! afresh and checked again. Once started, the helper also hashes its own
//! file, which must give the same hash.

mod safe_path;

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::client::HelperClient;
use crate::error::{Error, Result};
use crate::hash::{HashAlgo, Hasher};
use crate::meta::Kind;
use crate::paths::join;
use crate::sftp::{is_not_found, Sftp};
use crate::ssh::Connection;

/// The file the cache must hold: this binary.
struct ThisBinary {
    path: String,
    size: u64,
    hash: [u8; 32],
}

/// Uploads (or finds) this binary in `cache_dir` on the server and starts it
/// as the helper.
pub(crate) async fn upload_helper(
    conn: &Connection,
    sftp: &Sftp,
    cache_dir: &str,
) -> Result<HelperClient> {
    let uid = check_platform(conn).await?;
    let exe = this_binary(conn)?;
    let name = format!(
        "ferry-{}-{}",
        env!("CARGO_PKG_VERSION"),
        &hex::encode(exe.hash)[..16]
    );
    // Absolute: the helper is started by the shell, whose working directory
    // may not be the SFTP session's.
    let cache_dir = sftp.absolute(cache_dir);
    make_dirs(sftp, &cache_dir).await;
    let cache_dir = safe_path::check_cache_dir(sftp, &cache_dir, uid).await?;
    let remote_path = join(&cache_dir, &name);
    if !holds(sftp, &remote_path, &exe, uid).await? {
        upload(sftp, &exe.path, &remote_path).await?;
        if !holds(sftp, &remote_path, &exe, uid).await? {
            return Err(Error::Helper {
                host: conn.host().to_string(),
                detail: format!(
                    "{remote_path} differs from this ferry binary right after its upload"
                ),
            });
        }
    }
    start_verified(conn, &remote_path, exe.hash).await
}

fn this_binary(conn: &Connection) -> Result<ThisBinary> {
    let exe = std::env::current_exe().map_err(|e| Error::io("the running ferry binary", e))?;
    let path = exe.to_str().ok_or_else(|| Error::Helper {
        host: conn.host().to_string(),
        detail: "the path of the running ferry binary is not UTF-8".into(),
    })?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let (size, hash) =
        crate::hash::hash_whole_file(&file, HashAlgo::Blake3).map_err(|e| Error::io(path, e))?;
    Ok(ThisBinary {
        path: path.to_string(),
        size,
        hash,
    })
}

/// Whether `remote_path` is this binary, ready to run: a regular file of the
/// user's, runnable by them and writable by no one else (safe_path's rules
/// for a file), whose bytes, read back here, hash to this binary's hash.
/// Anything else is replaced, not refused: the directory is the user's.
async fn holds(sftp: &Sftp, remote_path: &str, exe: &ThisBinary, uid: u32) -> Result<bool> {
    let attrs = match sftp.raw().lstat(remote_path).await {
        Ok(found) => found.attrs,
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => {
            return Err(helper_step(
                sftp,
                "cannot check the cached helper",
                sftp.error(remote_path, e),
            ))
        }
    };
    if !runnable_copy(&attrs, exe.size, uid) {
        tracing::info!("cached helper {remote_path} is not a runnable copy of this binary's size; uploading it again");
        return Ok(false);
    }
    let started = std::time::Instant::now();
    let mut hasher = Hasher::new(HashAlgo::Blake3);
    let read = sftp
        .read_in_order(remote_path, exe.size + 1, |piece| hasher.update(piece))
        .await
        .map_err(|e| helper_step(sftp, "cannot read back the cached helper", e))?;
    let same = read == exe.size && hasher.take() == exe.hash;
    tracing::debug!(elapsed = ?started.elapsed(), same, "read back {remote_path}");
    if !same {
        tracing::info!("cached helper {remote_path} differs from this binary; uploading it again");
    }
    Ok(same)
}

/// A regular file of `size` bytes, the user's, runnable by them and
/// writable by no one else.
fn runnable_copy(attrs: &FileAttributes, size: u64, uid: u32) -> bool {
    let mode = attrs.permissions.unwrap_or(0);
    Kind::of_mode(mode, 0) == Kind::File
        && mode & 0o500 == 0o500
        && mode & 0o022 == 0
        && attrs.uid == Some(uid)
        && attrs.size == Some(size)
}

/// Writes the local file `exe` to a fresh private name beside `remote_path`
/// (created exclusively, 0700), then renames it into place: a cached
/// helper is whole or absent.
async fn upload(sftp: &Sftp, exe: &str, remote_path: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let data = std::fs::read(exe).map_err(|e| Error::io(exe, e))?;
    let part = format!("{remote_path}.{}.part", unique_suffix());
    let raw = sftp.raw();
    let mut attrs = FileAttributes::empty();
    attrs.permissions = Some(0o700);
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
    let uploading = |e| helper_step(sftp, "cannot upload the helper", e);
    let handle = raw
        .open(part.as_str(), flags, attrs)
        .await
        .map_err(|e| uploading(sftp.error(&part, e)))?
        .handle;
    let written = write_all(sftp, &handle, &part, &data).await;
    let closed = raw.close(handle).await.map_err(|e| sftp.error(&part, e));
    let done = match (written, closed) {
        (Ok(()), Ok(_)) => sftp.rename_replace(&part, remote_path).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if done.is_err() {
        let _ = raw.remove(part.as_str()).await;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "uploaded {remote_path}");
    done.map_err(uploading)
}

/// This process's id and the clock's nanoseconds: no other run picks the
/// same name at the same time.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:09}", std::process::id())
}

/// Writes `data` at the start of the open file `handle`, one request at a
/// time: on loopback, 64 writes in flight took three times as long (330 ms
/// against 100 ms for the 18 MB binary).
async fn write_all(sftp: &Sftp, handle: &str, path: &str, data: &[u8]) -> Result<()> {
    let chunk = sftp.write_chunk().max(1) as usize;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let offset = (i * chunk) as u64;
        sftp.raw()
            .write(handle, offset, piece.to_vec())
            .await
            .map_err(|e| sftp.error(path, e))?;
    }
    Ok(())
}

/// A status about one file, met while setting up the helper, is a helper
/// failure (exit code as for one that does not start); a lost connection
/// stays what it is.
fn helper_step(sftp: &Sftp, what: &str, e: Error) -> Error {
    match e {
        Error::File(e) => Error::Helper {
            host: sftp.host().to_string(),
            detail: format!("{what}: {}: {}", e.path, e.cause),
        },
        other => other,
    }
}

/// `uname -sm` on the server must name this binary's OS and architecture;
/// returns the session user's uid (`id -u`, in the same command), which
/// owns what the cache may hold. Asked of the shell, not read from a file
/// ferry creates: the cache directory may exist already, and the shell is
/// where the helper runs, so its uid is the one the helper runs as.
async fn check_platform(conn: &Connection) -> Result<u32> {
    let out = conn.exec("uname -sm; id -u", 256).await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines().map(str::trim);
    let uname = lines.next().unwrap_or_default();
    let uid = lines.next().and_then(|id| id.parse().ok());
    if !platform_matches(uname) {
        return Err(Error::Helper {
            host: conn.host().to_string(),
            detail: format!(
                "the server reports `{uname}`, this ferry is built for {} {}; install ferry there and use --remote-ferry PATH",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        });
    }
    uid.ok_or_else(|| Error::Helper {
        host: conn.host().to_string(),
        detail: format!(
            "`id -u` on the server did not give a user id ({}); use --remote-ferry PATH",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

fn platform_matches(uname: &str) -> bool {
    let mut words = uname.split_whitespace();
    let (Some(os), Some(arch)) = (words.next(), words.next()) else {
        return false;
    };
    let arch = match arch {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        other => other,
    };
    os.eq_ignore_ascii_case(std::env::consts::OS) && arch == std::env::consts::ARCH
}

/// Starts the helper at `path`, whose bytes were checked already, and has
/// it hash its own file too: a second check, cheap, from the side that runs
/// it.
async fn start_verified(conn: &Connection, path: &str, expected: [u8; 32]) -> Result<HelperClient> {
    let helper = HelperClient::open(conn, path).await?;
    let (_, hash) = helper.file_hash(path).await.map_err(|e| Error::Helper {
        host: conn.host().to_string(),
        detail: format!("the uploaded helper could not hash itself: {e}"),
    })?;
    if hash != expected {
        return Err(Error::Helper {
            host: conn.host().to_string(),
            detail: format!("{path} differs from this ferry binary"),
        });
    }
    Ok(helper)
}

/// `mkdir -p` over SFTP, new directories 0700; components that exist
/// already are kept as they are (their check follows), and a real failure
/// shows up when the cache is checked.
async fn make_dirs(sftp: &Sftp, dir: &str) {
    let mut path = String::new();
    for part in dir.split('/') {
        if part.is_empty() {
            path.push('/');
            continue;
        }
        path = join(&path, part);
        if sftp.raw().lstat(path.as_str()).await.is_err() {
            let mut attrs = FileAttributes::empty();
            attrs.permissions = Some(0o700);
            let _ = sftp.raw().mkdir(path.as_str(), attrs).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::platform_matches;

    #[test]
    fn platforms() {
        let here = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
        assert!(platform_matches(&here));
        assert!(!platform_matches("Plan9 mips"));
        assert!(!platform_matches(""));
        if std::env::consts::ARCH == "x86_64" {
            assert!(platform_matches("Linux x86_64") == (std::env::consts::OS == "linux"));
            assert!(!platform_matches("Linux aarch64"));
        }
    }
}
