//! Error types of the library and the exit codes they map to.
//!
//! Exit codes follow rsync's numbers wherever the meaning is the same, so that
//! scripts written for `rsync -e ssh` read ferry's status unchanged. The table is
//! repeated in the README; keep both in step.

use std::io;

use crate::paths::printable;
pub use auth::AuthError;
pub use config::ConfigError;

pub mod auth;
pub mod config;

/// Process exit status, rsync-compatible where rsync has the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    /// Syntax or usage error.
    Usage = 1,
    /// Errors selecting input/output files or directories.
    FileSelection = 3,
    /// An action ferry (like an rsync without the feature) cannot do.
    Unsupported = 4,
    /// The SFTP protocol could not be started.
    ProtocolStart = 5,
    /// The connection broke during the transfer.
    ConnectionLost = 10,
    /// The remote side could not start what the transfer needs (rsync's
    /// "error in rsync protocol data stream": its server exited first).
    RemoteSide = 12,
    /// A local file I/O error stopped the run.
    FileIo = 11,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted = 20,
    /// Some files could not be transferred.
    PartialTransfer = 23,
    /// --max-delete stopped the deletions.
    MaxDelete = 25,
    /// I/O silence longer than allowed.
    Timeout = 30,
    /// The remote command (through `--rsync-path`'s wrapper) could not be
    /// run: the remote shell's status, which rsync exits with.
    CommandFailed = 126,
    /// The remote command (through `--rsync-path`'s wrapper) was not found.
    CommandNotFound = 127,
    /// Could not connect, authenticate, or verify the host key.
    Connect = 255,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ferry, each message naming the host or file
/// involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("{0}")]
    FileSelection(String),

    /// Something asked for that ferry does not do (rsync's code 4).
    #[error("{0}")]
    Unsupported(String),

    #[error(transparent)]
    SshConfig(#[from] ConfigError),

    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },

    #[error("{0}")]
    HostKey(String),

    #[error(transparent)]
    Auth(#[from] AuthError),

    #[error("{host}: the server refused the SFTP subsystem ({detail}); ferry needs SFTP enabled on the server (`Subsystem sftp` in sshd_config)")]
    SftpRefused { host: String, detail: String },

    #[error("{host}: {detail}")]
    Helper { host: String, detail: String },

    /// What the transfer needs from the server before it begins failed
    /// there: the SFTP server started as `--rsync-path` says, or a remote
    /// `--files-from` list (rsync's server exits then, code 12).
    /// `status`: how the remote command ended, when one was run.
    #[error("{host}: {detail}")]
    RemoteSide {
        host: String,
        detail: String,
        status: Option<u32>,
    },

    #[error("connection to {host} lost: {detail}")]
    ConnectionLost { host: String, detail: String },

    #[error("{host}: no reply within {secs} s; the link or the server stalled")]
    Timeout { host: String, secs: u64 },

    /// An I/O error on one file; the run goes on with the other files.
    #[error("{}: {source}", printable(path))]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },

    /// The SFTP server refused an operation on one file.
    #[error("{}: {message}", printable(path))]
    Remote { path: String, message: String },

    /// A file whose name or contents ferry refuses to handle.
    #[error("{}: {message}", printable(path))]
    Refused { path: String, message: String },

    #[error("interrupted by signal")]
    Interrupted,
}

impl Error {
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The file a per-file error is about, as it names it (with its host
    /// when remote).
    pub fn subject(&self) -> Option<&str> {
        match self {
            Error::Io { path, .. } | Error::Remote { path, .. } | Error::Refused { path, .. } => {
                Some(path)
            }
            _ => None,
        }
    }

    /// Whether this error ends the whole run, rather than only the file it
    /// happened to: a broken connection cannot be worked around file by file.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::Io { .. } | Error::Remote { .. } | Error::Refused { .. }
        )
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::FileSelection(_) => ExitCode::FileSelection,
            Error::Unsupported(_) => ExitCode::Unsupported,
            Error::SshConfig(_) => ExitCode::Usage,
            Error::Connect { .. } | Error::HostKey(_) | Error::Auth(_) => ExitCode::Connect,
            Error::SftpRefused { .. } | Error::Helper { .. } => ExitCode::ProtocolStart,
            Error::ConnectionLost { .. } => ExitCode::ConnectionLost,
            // rsync exits with the remote shell's status; ferry where it
            // names a command that could not run.
            Error::RemoteSide { status, .. } => match status {
                Some(126) => ExitCode::CommandFailed,
                Some(127) => ExitCode::CommandNotFound,
                _ => ExitCode::RemoteSide,
            },
            Error::Timeout { .. } => ExitCode::Timeout,
            Error::Io { .. } => ExitCode::FileIo,
            Error::Remote { .. } | Error::Refused { .. } => ExitCode::PartialTransfer,
            Error::Interrupted => ExitCode::Interrupted,
        }
    }
}
