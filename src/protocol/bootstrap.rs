//! `--remote-ferry upload`: puts this very binary on the server as the
//! helper when the server runs the same OS and architecture, keeps it in a
//! cache directory under a name carrying its version and blake3, and reuses
//! it on later runs. Before it is trusted, the started helper hashes its own
//! file and that hash must equal this binary's.

use std::sync::Arc;

use super::client::HelperClient;
use crate::endpoint::remote::RemoteHashing;
use crate::endpoint::{join, Endpoint, Kind, LocalFs, RemoteFs};
use crate::engine::{self, Options};
use crate::error::{Error, Result};
use crate::report::Silent;
use crate::sftp::Sftp;
use crate::ssh::Connection;

/// Uploads (or finds) this binary in `cache_dir` on the server and starts it
/// as the helper.
pub async fn upload_helper(
    conn: &Arc<Connection>,
    sftp: &Arc<Sftp>,
    cache_dir: &str,
) -> Result<HelperClient> {
    let fail = |detail: String| Error::Helper {
        host: conn.host().to_string(),
        detail,
    };
    check_platform(conn).await?;
    let exe = std::env::current_exe().map_err(|e| Error::io("the running ferry binary", e))?;
    let exe = exe
        .to_str()
        .ok_or_else(|| fail("the path of the running ferry binary is not UTF-8".into()))?
        .to_string();
    let (size, hash) = hash_local(&exe)?;
    let name = format!(
        "ferry-{}-{}",
        env!("CARGO_PKG_VERSION"),
        &hex::encode(hash)[..16]
    );
    // Absolute: the helper is started by the shell, whose working directory
    // may not be the SFTP session's.
    let cache_dir = sftp.absolute(cache_dir);
    let remote_path = join(&cache_dir, &name);
    let fs = RemoteFs::new(sftp.clone(), RemoteHashing::Off);

    let cached = fs.lstat(&remote_path).await?;
    if cached.is_some_and(|m| m.kind == Kind::File && m.size == size) {
        match start_verified(conn, &remote_path, hash).await {
            Ok(helper) => return Ok(helper),
            Err(e) => {
                tracing::info!("cached helper {remote_path} not usable ({e}); uploading again")
            }
        }
    }
    if cached.is_some() {
        // Whatever is there failed the check: never let the quick check of
        // the upload below keep it.
        let _ = fs.remove_file(&remote_path).await;
    }
    make_dirs(&fs, &cache_dir).await;
    let stats = engine::sync(
        &LocalFs,
        &fs,
        &[exe],
        &remote_path,
        &Options::default(),
        &Silent,
    )
    .await?;
    if stats.files_failed > 0 {
        return Err(fail(format!(
            "could not upload the helper to {remote_path}"
        )));
    }
    fs.set_mode(&remote_path, 0o700).await?;
    start_verified(conn, &remote_path, hash).await
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
    let helper = conn.helper(path).await?;
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
async fn make_dirs(fs: &RemoteFs, dir: &str) {
    let mut path = String::new();
    for part in dir.split('/') {
        if part.is_empty() {
            path.push('/');
            continue;
        }
        path = join(&path, part);
        if fs.lstat(&path).await.ok().flatten().is_none() {
            let _ = fs.mkdir(&path, 0o700).await;
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
