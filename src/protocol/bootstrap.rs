//! `--remote-ferry upload`: puts this very binary on the server as the
//! helper when the server runs the same OS and architecture, keeps it in a
//! cache directory under a name carrying its version and blake3, and reuses
//! it on later runs. Before it is trusted, the started helper hashes its own
//! file and that hash must equal this binary's.

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::client::HelperClient;
use crate::error::{Error, Result};
use crate::paths::join;
use crate::sftp::Sftp;
use crate::ssh::Connection;

/// Uploads (or finds) this binary in `cache_dir` on the server and starts it
/// as the helper.
pub(crate) async fn upload_helper(
    conn: &Connection,
    sftp: &Sftp,
    cache_dir: &str,
) -> Result<HelperClient> {
    check_platform(conn).await?;
    let exe = std::env::current_exe().map_err(|e| Error::io("the running ferry binary", e))?;
    let exe = exe.to_str().ok_or_else(|| Error::Helper {
        host: conn.host().to_string(),
        detail: "the path of the running ferry binary is not UTF-8".into(),
    })?;
    let (size, hash) = hash_local(exe)?;
    let name = format!(
        "ferry-{}-{}",
        env!("CARGO_PKG_VERSION"),
        &hex::encode(hash)[..16]
    );
    // Absolute: the helper is started by the shell, whose working directory
    // may not be the SFTP session's.
    let cache_dir = sftp.absolute(cache_dir);
    let remote_path = join(&cache_dir, &name);
    let cached = sftp.raw().lstat(remote_path.as_str()).await.ok();
    let regular =
        |attrs: &FileAttributes| attrs.permissions.is_some_and(|p| p & 0o170000 == 0o100000);
    if cached
        .as_ref()
        .is_some_and(|c| regular(&c.attrs) && c.attrs.size == Some(size))
    {
        match start_verified(conn, &remote_path, hash).await {
            Ok(helper) => return Ok(helper),
            Err(e) => {
                tracing::info!("cached helper {remote_path} not usable ({e}); uploading again")
            }
        }
    }
    make_dirs(sftp, &cache_dir).await;
    upload(sftp, exe, &remote_path).await?;
    start_verified(conn, &remote_path, hash).await
}

/// Writes the local file `exe` to a fresh name beside `remote_path`, then
/// renames it into place: a cached helper is whole or absent. Whatever is
/// wrong with it is caught by the helper's hash of itself.
async fn upload(sftp: &Sftp, exe: &str, remote_path: &str) -> Result<()> {
    let data = std::fs::read(exe).map_err(|e| Error::io(exe, e))?;
    let part = format!("{remote_path}.{}.part", std::process::id());
    let raw = sftp.raw();
    let _ = raw.remove(part.as_str()).await;
    let mut attrs = FileAttributes::empty();
    attrs.permissions = Some(0o700);
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
    let handle = raw
        .open(part.as_str(), flags, attrs)
        .await
        .map_err(|e| sftp.error(&part, e))?
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
    done
}

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

/// `uname -sm` on the server must name this binary's OS and architecture.
async fn check_platform(conn: &Connection) -> Result<()> {
    let out = conn.exec("uname -sm", 256).await?;
    let uname = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.succeeded() && platform_matches(&uname) {
        return Ok(());
    }
    Err(Error::Helper {
        host: conn.host().to_string(),
        detail: format!(
            "the server reports `{uname}`, this ferry is built for {} {}; install ferry there and use --remote-ferry PATH",
            std::env::consts::OS,
            std::env::consts::ARCH
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

/// Starts the helper at `path` and has it hash its own file.
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

fn hash_local(path: &str) -> Result<(u64, [u8; 32])> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    crate::hash::hash_whole_file(&file, crate::hash::HashAlgo::Blake3)
        .map_err(|e| Error::io(path, e))
}

/// `mkdir -p` over SFTP; components that exist already are fine, and a real
/// failure shows up when the upload itself fails.
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
