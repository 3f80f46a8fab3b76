//! SFTP operations over one channel: extension discovery, request sizing from
//! `limits@openssh.com`, the OpenSSH extensions ferry relies on, the quirks of
//! servers that answer plain requests unlike OpenSSH, and the mapping of SFTP
//! failures onto ferry's errors.
//!
//! Built on russh-sftp's `RawSftpSession` rather than its `File`: every request
//! method takes `&self`, so many reads or writes can be in flight at once (the
//! pipelining lives in `endpoint::remote`), where `File` keeps only 16 small
//! requests in flight and flushes with an fsync.

mod check_file;
mod read_back;
mod silence;

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, Packet, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, FileError, Host, Result, Status};
use crate::ssh::{Connection, SftpChannel};

pub(crate) use check_file::MIN_BLOCK as CHECK_FILE_MIN_BLOCK;

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
const LIMITS: &str = "limits@openssh.com";
const COPY_DATA: &str = "copy-data";
const LSETSTAT: &str = "lsetstat@openssh.com";
const HARDLINK: &str = "hardlink@openssh.com";
const HOME_DIRECTORY: &str = "home-directory";
/// The draft's version-select list, which ProFTPD's mod_sftp names in its
/// version 3 reply and OpenSSH's sftp-server never does.
const VERSIONS: &str = "versions";

/// Largest read or write ferry sends when the server states no limit: what
/// OpenSSH's sftp-server accepts, and what SFTP v3 servers must handle at least
/// in practice is 32 KiB, so unknown servers get the conservative size.
const DEFAULT_CHUNK: u32 = 32 * 1024;
const MAX_CHUNK: u32 = 255 * 1024;

/// How long one request may wait for its own reply while others are
/// answered: at least ten minutes.
fn backstop_secs(silence_secs: u64) -> u64 {
    silence_secs.saturating_mul(10).max(600)
}

/// What the server offers beyond plain SFTP v3.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extensions {
    pub posix_rename: bool,
    pub fsync: bool,
    pub copy_data: bool,
    /// SETSTAT that does not follow a final symlink (OpenSSH 8.0+).
    pub lsetstat: bool,
    /// link(2) on the server (OpenSSH 5.7+): backups that keep the old
    /// file's name in place until its replacement is renamed over it.
    pub hardlink: bool,
    /// The session user's home directory by name (OpenSSH 8.9+).
    pub home_directory: bool,
}

/// Where the server answers plain SFTP requests unlike OpenSSH's
/// sftp-server, so that sending them as usual would do harm.
///
/// Both are ProFTPD's mod_sftp (1.3.8, and its source still in 2026), known
/// by the `versions` extension it lists; another server that lists it pays
/// an extra request per lstat, rename and symlink read, nothing more.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quirks {
    /// LSTAT, RENAME, posix-rename and RMDIR act on what a final symlink
    /// points at, when it points at something (ProFTPD canonicalizes their
    /// paths with `dir_best_path`): LSTAT describes the target, a rename
    /// moves or replaces the target and leaves the link. READDIR, READLINK
    /// and REMOVE see the link itself.
    pub follows_final_symlinks: bool,
    /// READLINK answers a relative target joined to the directory of the
    /// link as the request named it, and cleaned (`a/b/up -> ../t` reads
    /// `a/t`); an absolute one as it is.
    pub readlink_joins_relative: bool,
    /// Several SFTP sessions on one connection mix up their data: mod_sftp
    /// keeps one buffer of a partly read request for all channels
    /// (proftpd/proftpd#1897), seen here as sessions that hang and a
    /// connection that drops. Such a server gets one session.
    pub one_session: bool,
    /// New files get the umask of the server's process, as its
    /// `/proc/self/status` tells it: not ProFTPD's, which applies the
    /// `Umask` of its configuration (per directory) itself.
    pub process_umask: bool,
}

impl Quirks {
    /// The quirks of a server whose version reply lists the extensions
    /// `listed` says it does.
    fn of(listed: impl Fn(&str) -> bool) -> Quirks {
        let proftpd = listed(VERSIONS);
        Quirks {
            follows_final_symlinks: proftpd,
            readlink_joins_relative: proftpd,
            one_session: proftpd,
            process_umask: !proftpd,
        }
    }
}

/// An SFTP session on one SSH channel, shared by all tasks of a run.
pub(crate) struct Sftp {
    raw: Arc<RawSftpSession>,
    host: String,
    /// The host again, as per-file errors carry it.
    label: Host,
    extensions: Extensions,
    quirks: Quirks,
    read_chunk: u32,
    write_chunk: u32,
    timeout_secs: u64,
    /// Whether the session ended, and how.
    state: Arc<silence::SessionState>,
    /// The session's working directory, which relative paths are resolved
    /// against (not always the login directory: `sftp-server -d`).
    cwd: String,
    /// One permit per handle open on the server.
    handles: Arc<Semaphore>,
    /// See [`Sftp::round_trip`].
    round_trip: Duration,
}

/// Most handles ferry keeps open at once on one server. OpenSSH's handles
/// are 4-byte indexes, and russh-sftp decodes a handle as UTF-8 text,
/// lossily: from index 128 on, the handle it sends back names no file and
/// every request on it fails. The server reuses free indexes, so keeping
/// fewer than 128 open keeps every index below 128.
pub(crate) const MAX_HANDLES: usize = 100;

impl Sftp {
    /// Opens the SFTP session of `conn`: the `sftp` subsystem, or
    /// sftp-server run through `--rsync-path`'s wrapper.
    pub(crate) async fn open(conn: &Connection) -> Result<Sftp> {
        Sftp::open_on(conn, conn.sftp_channel().await?).await
    }

    /// [`Sftp::open`] on a channel [`Connection::sftp_channel`] opened.
    pub(crate) async fn open_on(conn: &Connection, (stream, wrapped): SftpChannel) -> Result<Sftp> {
        let timeout = conn.request_timeout().as_secs().max(1);
        let started = Sftp::start(stream, conn.host(), conn.alias(), timeout).await;
        started.map_err(|e| match wrapped {
            Some(command) if !conn.is_closed() => Error::RemoteSide {
                host: conn.host().to_string(),
                detail: format!("the SFTP server started as `{command}` did not answer: {e}"),
                status: None,
            },
            _ => conn.lost_or(e),
        })
    }

    /// Runs the SFTP handshake on `stream` and asks for the server's limits.
    /// The session ends once requests wait `silence_secs` with no reply.
    /// `host` names the server in messages about the session, `alias` (as
    /// the user typed it) the paths on it.
    pub(crate) async fn start<S>(
        stream: S,
        host: &str,
        alias: &str,
        silence_secs: u64,
    ) -> Result<Sftp>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = Arc::new(silence::SessionState::default());
        let limit = Duration::from_secs(silence_secs);
        let stream = silence::SilenceBound::new(stream, limit, state.clone());
        let raw = Arc::new(RawSftpSession::new(stream));
        state.attach(&raw);
        // russh-sftp's own clock runs per request from when it is queued, so
        // it would cut a deep pipeline on a slow link: it is only a backstop
        // for a server that answers everything but one request.
        raw.set_timeout(backstop_secs(silence_secs));
        let asked = Instant::now();
        let version = raw.init().await.map_err(|e| Error::SftpRefused {
            host: host.to_string(),
            detail: format!("SFTP handshake failed: {e}"),
        })?;
        let has = |name: &str| version.extensions.contains_key(name);
        let extensions = Extensions {
            posix_rename: has(POSIX_RENAME),
            fsync: has(FSYNC),
            copy_data: has(COPY_DATA),
            lsetstat: has(LSETSTAT),
            hardlink: has(HARDLINK),
            home_directory: has(HOME_DIRECTORY),
        };
        let quirks = Quirks::of(has);
        let first_trip = asked.elapsed();
        let asked = Instant::now();
        // Both questions in one round trip.
        let (limits, cwd) = tokio::join!(
            async {
                match has(LIMITS) {
                    true => raw.limits().await.ok(),
                    false => None,
                }
            },
            raw.realpath(".")
        );
        // The shorter of two: a server process just started may be slow to
        // answer its first request.
        let round_trip = first_trip.min(asked.elapsed());
        let (read_chunk, write_chunk) = match limits {
            Some(limits) => (
                clamp_chunk(limits.max_read_len),
                clamp_chunk(limits.max_write_len),
            ),
            None => (DEFAULT_CHUNK, DEFAULT_CHUNK),
        };
        let cwd = cwd
            .ok()
            .and_then(|name| name.files.into_iter().next())
            .map_or_else(|| ".".into(), |f| f.filename);
        tracing::debug!(
            host,
            ?extensions,
            ?quirks,
            read_chunk,
            write_chunk,
            cwd,
            ?round_trip,
            "sftp session ready"
        );
        Ok(Sftp {
            raw,
            host: host.to_string(),
            label: Host::remote(alias),
            extensions,
            quirks,
            read_chunk,
            write_chunk,
            timeout_secs: silence_secs,
            state,
            cwd,
            handles: Arc::new(Semaphore::new(MAX_HANDLES)),
            round_trip,
        })
    }

    /// How long the server took to answer a request as the session
    /// started: the link's round trip, near enough.
    pub(crate) fn round_trip(&self) -> Duration {
        self.round_trip
    }

    /// One more measure of the round trip: how long a `realpath` of the
    /// session's directory takes.
    pub(crate) async fn time_round_trip(&self) -> Duration {
        let asked = Instant::now();
        let _ = self.raw.realpath(".").await;
        asked.elapsed()
    }

    /// Waits for room for one more open handle; the permit is to be held
    /// until the handle is closed. (None cannot happen: the semaphore is
    /// never closed.)
    pub(crate) async fn handle_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.handles.clone().acquire_owned().await.ok()
    }

    /// How many more handles may be opened now.
    pub(crate) fn free_handles(&self) -> usize {
        self.handles.available_permits()
    }

    /// Room for one more open handle, if there is some now.
    pub(crate) fn handle_slot_now(&self) -> Option<OwnedSemaphorePermit> {
        self.handles.clone().try_acquire_owned().ok()
    }

    pub(crate) fn raw(&self) -> &Arc<RawSftpSession> {
        &self.raw
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The host as per-file errors name it.
    pub(crate) fn label(&self) -> &Host {
        &self.label
    }

    /// `path` as an absolute path, for programs run on the server (helper,
    /// shell), whose working directory may differ from this session's.
    pub(crate) fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            crate::paths::join(&self.cwd, path)
        }
    }

    /// The session user's home directory as the server names it: the
    /// `home-directory` extension where offered (an empty name asks for the
    /// session's own user), else the directory the session started in, the
    /// home directory unless the server was told otherwise (`sftp-server -d`).
    pub(crate) async fn home_directory(&self) -> String {
        if self.extensions.home_directory {
            let mut payload = Vec::with_capacity(4);
            put_string(&mut payload, b"");
            if let Ok(Packet::Name(name)) = self.raw.extended(HOME_DIRECTORY, payload).await {
                if let Some(home) = name.files.into_iter().next() {
                    return home.filename;
                }
            }
        }
        self.cwd.clone()
    }

    pub(crate) fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub(crate) fn quirks(&self) -> Quirks {
        self.quirks
    }

    pub(crate) fn read_chunk(&self) -> u32 {
        self.read_chunk
    }

    pub(crate) fn write_chunk(&self) -> u32 {
        self.write_chunk
    }

    /// Renames `from` over `to`, replacing `to` atomically where the server
    /// offers posix-rename. Plain SFTP RENAME refuses an existing target, so
    /// without the extension the old file is moved aside first and removed only
    /// once the new one is in place: never a moment with neither.
    pub(crate) async fn rename_replace(&self, from: &str, to: &str) -> Result<()> {
        if self.extensions.posix_rename {
            let mut payload = Vec::with_capacity(8 + from.len() + to.len());
            put_string(&mut payload, from.as_bytes());
            put_string(&mut payload, to.as_bytes());
            let reply = self.raw.extended(POSIX_RENAME, payload).await;
            return self.status_reply(reply, to);
        }
        match self.raw.rename(from, to).await {
            Ok(_) => Ok(()),
            Err(SftpError::Status(_)) => {
                let aside = format!("{to}.ferry-old");
                self.raw
                    .rename(to, aside.as_str())
                    .await
                    .map_err(|e| self.error(to, e))?;
                if let Err(e) = self.raw.rename(from, to).await {
                    let _ = self.raw.rename(aside.as_str(), to).await;
                    return Err(self.error(to, e));
                }
                let _ = self.raw.remove(aside).await;
                Ok(())
            }
            Err(e) => Err(self.error(to, e)),
        }
    }

    /// hardlink@openssh.com: `to` becomes another name of the file `from`
    /// (a symlink itself, not what it points to, as link(2) makes it).
    pub(crate) async fn hard_link(&self, from: &str, to: &str) -> Result<()> {
        let mut payload = Vec::with_capacity(8 + from.len() + to.len());
        put_string(&mut payload, from.as_bytes());
        put_string(&mut payload, to.as_bytes());
        let reply = self.raw.extended(HARDLINK, payload).await;
        self.status_reply(reply, to)
    }

    /// copy-data (OpenSSH 9.0+): the server copies `len` bytes from one open
    /// handle to another, nothing crosses the network. Ok(false) when the
    /// server refuses the request although it advertised it.
    pub(crate) async fn copy_data(
        &self,
        from: &str,
        from_offset: u64,
        len: u64,
        to: &str,
        to_offset: u64,
        path: &str,
    ) -> Result<bool> {
        let mut payload = Vec::with_capacity(64);
        put_string(&mut payload, from.as_bytes());
        payload.extend_from_slice(&from_offset.to_be_bytes());
        payload.extend_from_slice(&len.to_be_bytes());
        put_string(&mut payload, to.as_bytes());
        payload.extend_from_slice(&to_offset.to_be_bytes());
        let reply = self.raw.extended(COPY_DATA, payload).await;
        match reply {
            // Advertised but refused (OpenSSH's sftp-server -P copy-data):
            // the caller copies another way.
            Ok(Packet::Status(s))
                if matches!(
                    s.status_code,
                    StatusCode::PermissionDenied | StatusCode::OpUnsupported
                ) =>
            {
                tracing::info!(
                    "{}: the server refused copy-data: {}",
                    self.host,
                    s.error_message
                );
                Ok(false)
            }
            reply => self.status_reply(reply, path).map(|()| true),
        }
    }

    /// Sets `attrs` of `path` itself, a symlink included: lsetstat where the
    /// server offers it, else plain SETSTAT, which follows a final symlink
    /// (callers that may meet one check [`Extensions::lsetstat`] first).
    pub(crate) async fn set_attrs(&self, path: &str, attrs: FileAttributes) -> Result<()> {
        self.set_attrs_raw(path, attrs)
            .await
            .map_err(|e| self.error(path, e))
    }

    /// [`Sftp::set_attrs`] with the server's answer as it came, for a
    /// caller that tells one refusal from another.
    pub(crate) async fn set_attrs_raw(
        &self,
        path: &str,
        attrs: FileAttributes,
    ) -> std::result::Result<(), SftpError> {
        if !self.extensions.lsetstat {
            return self.raw.setstat(path, attrs).await.map(drop);
        }
        let encoded = russh_sftp::ser::to_bytes(&attrs)
            .map_err(|e| SftpError::Limited(format!("cannot encode attributes: {e}")))?;
        let mut payload = Vec::with_capacity(8 + path.len() + encoded.len());
        put_string(&mut payload, path.as_bytes());
        payload.extend_from_slice(&encoded);
        match self.raw.extended(LSETSTAT, payload).await? {
            Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(s) => Err(SftpError::Status(s)),
            _ => Err(SftpError::UnexpectedPacket),
        }
    }

    /// fsync@openssh.com on an open handle; a no-op where it is not offered.
    pub(crate) async fn fsync(&self, handle: &str, path: &str) -> Result<()> {
        if !self.extensions.fsync {
            return Ok(());
        }
        self.raw
            .fsync(handle)
            .await
            .map(drop)
            .map_err(|e| self.error(path, e))
    }

    fn status_reply(&self, reply: Result<Packet, SftpError>, path: &str) -> Result<()> {
        match reply {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => Err(self.error(path, SftpError::Status(s))),
            Ok(_) => Err(self.error(path, SftpError::UnexpectedPacket)),
            Err(e) => Err(self.error(path, e)),
        }
    }

    /// Maps an SFTP failure on `path`: a status from the server concerns that
    /// file only; anything else means the session itself is gone.
    pub(crate) fn error(&self, path: &str, e: SftpError) -> Error {
        match e {
            SftpError::Status(_) | SftpError::Limited(_) => {}
            _ if self.state.went_silent() => {
                return Error::Timeout {
                    host: self.host.clone(),
                    secs: self.timeout_secs,
                }
            }
            _ if self.state.ended() => {
                return Error::ConnectionLost {
                    host: self.host.clone(),
                    detail: "the server ended the SFTP session".into(),
                }
            }
            _ => {}
        }
        let timeout_secs = backstop_secs(self.timeout_secs);
        match e {
            SftpError::Status(status) => {
                let code = status_code(status.status_code);
                FileError::status(&self.label, path, code, status_message(&status)).into()
            }
            SftpError::Limited(msg) => FileError::server(&self.label, path, msg).into(),
            SftpError::Timeout => Error::Timeout {
                host: self.host.clone(),
                secs: timeout_secs,
            },
            other => Error::ConnectionLost {
                host: self.host.clone(),
                detail: other.to_string(),
            },
        }
    }
}

/// An SFTP status code as the library's errors tell them apart.
fn status_code(code: StatusCode) -> Status {
    match code {
        StatusCode::NoSuchFile => Status::NoSuchFile,
        StatusCode::PermissionDenied => Status::PermissionDenied,
        StatusCode::Failure => Status::Failure,
        _ => Status::Other,
    }
}

fn status_message(status: &russh_sftp::protocol::Status) -> String {
    let code = match status.status_code {
        StatusCode::NoSuchFile => "no such file or directory",
        StatusCode::PermissionDenied => "permission denied",
        StatusCode::Eof => "unexpected end of file",
        StatusCode::OpUnsupported => "operation not supported by the server",
        _ => "failed",
    };
    if status.error_message.is_empty() || status.error_message.eq_ignore_ascii_case(code) {
        code.to_string()
    } else {
        format!("{code} ({})", status.error_message)
    }
}

/// Whether an SFTP error says the path does not exist.
pub(crate) fn is_not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

fn clamp_chunk(limit: u64) -> u32 {
    if limit == 0 {
        DEFAULT_CHUNK
    } else {
        limit.min(MAX_CHUNK as u64) as u32
    }
}

/// SSH wire string: u32 big-endian length, then the bytes.
fn put_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s);
}
