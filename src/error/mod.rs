//! Error types of the library: what went wrong, naming the host or file.
//!
//! The library knows no exit codes: the CLI maps these errors to rsync's
//! numbers, in one place (`cli::exit`).

use std::io;

use crate::paths::printable;
pub use auth::AuthError;
pub use config::ConfigError;

pub mod auth;
pub mod config;

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
}
