//! Error types of the library, at two levels: a [`FileError`] is one file
//! that went wrong (the engine reports it and goes on with the others), an
//! [`Error`] is what ends a run or the step it was in (a lost connection, a
//! bad option), or a `FileError` passed up through `?`.
//!
//! A per-file error keeps its path as its endpoint names it and the host it
//! is on apart; the `host:` label is added when it is displayed.
//!
//! The library knows no exit codes: the CLI maps these errors to rsync's
//! numbers, in one place (`cli::exit`).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::paths::printable;
pub(crate) use auth::AuthError;
pub(crate) use config::ConfigError;

pub(crate) mod auth;
pub(crate) mod config;

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What ends a run, or the step it was in, each message naming the host or
/// file involved; or, as [`Error::File`], one file's error on its way up
/// through `?` to where the per-file policy reports it and goes on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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

    /// The server sent more than any honest server sends (a directory
    /// listing past ferry's bounds): rsync's "error in rsync protocol data
    /// stream". It ends the run, as a lost connection does: what else the
    /// server says cannot be trusted either, and going on would meet the
    /// same in every directory, each costing the bound in memory and time.
    #[error("{host}: {detail}")]
    Protocol { host: String, detail: String },

    #[error("connection to {host} lost: {detail}")]
    ConnectionLost { host: String, detail: String },

    #[error("{host}: no reply within {secs} s; the link or the server stalled")]
    Timeout { host: String, secs: u64 },

    /// One file went wrong: the engine reports it and goes on with the
    /// other files; where the file is the run's own (a list of files, the
    /// running binary), it ends the run.
    #[error(transparent)]
    File(#[from] FileError),

    #[error("interrupted by signal")]
    Interrupted,
}

impl Error {
    /// An I/O error on a local file, named as this machine names it.
    pub(crate) fn io(path: impl Into<String>, source: io::Error) -> Self {
        Error::File(FileError::io(&Host::Local, path, source))
    }

    /// Whether this error ends the whole run, rather than only the file it
    /// happened to: a broken connection cannot be worked around file by file.
    pub(crate) fn is_fatal(&self) -> bool {
        !matches!(self, Error::File(_))
    }
}

/// The host a file is on, as messages name it: a remote path comes after
/// `host:`, as on the command line; a local one stands alone. Cheap to
/// clone, as every per-file error carries one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Host {
    #[default]
    Local,
    Remote(Arc<str>),
}

impl Host {
    pub(crate) fn remote(name: &str) -> Host {
        Host::Remote(name.into())
    }

    /// The machine in a sentence: the host's name, or "this machine".
    pub(crate) fn machine(&self) -> &str {
        match self {
            Host::Local => "this machine",
            Host::Remote(name) => name,
        }
    }
}

/// The label before a path: `host:`, or nothing for this machine.
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Local => Ok(()),
            Host::Remote(name) => write!(f, "{name}:"),
        }
    }
}

/// One file that could not be handled; the run goes on with the others.
/// It holds the path as its endpoint names it, without the host: the host
/// is added when the error is shown (`host:path: cause`), so that code
/// relating the error to other paths never parses it out of a message.
#[derive(Debug, thiserror::Error)]
#[error("{host}{}: {cause}", printable(path))]
pub(crate) struct FileError {
    pub host: Host,
    pub path: String,
    #[source]
    pub cause: Cause,
}

/// What went wrong with one file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    /// An I/O error on this machine.
    #[error(transparent)]
    Io(io::Error),
    /// The server refused an operation on the file: an SFTP status, or the
    /// helper's or the remote shell's answer.
    #[error("{0}")]
    Server(String),
    /// ferry refuses to handle the file: its name, its kind, or contents
    /// that changed or did not arrive whole.
    #[error("{0}")]
    Refused(String),
}

impl FileError {
    pub(crate) fn io(host: &Host, path: impl Into<String>, source: io::Error) -> FileError {
        FileError::new(host, path, Cause::Io(source))
    }

    pub(crate) fn server(
        host: &Host,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> FileError {
        FileError::new(host, path, Cause::Server(message.into()))
    }

    pub(crate) fn refused(
        host: &Host,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> FileError {
        FileError::new(host, path, Cause::Refused(message.into()))
    }

    fn new(host: &Host, path: impl Into<String>, cause: Cause) -> FileError {
        FileError {
            host: host.clone(),
            path: path.into(),
            cause,
        }
    }

    /// The file as messages name it: its path, after its host when remote.
    pub(crate) fn subject(&self) -> String {
        format!("{}{}", self.host, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_shows_its_host_before_the_path_it_keeps_apart() {
        let remote = FileError::server(&Host::remote("backup"), "data/a\nb", "permission denied");
        assert_eq!(
            remote.to_string(),
            "backup:data/a\\#012b: permission denied"
        );
        assert_eq!(remote.path, "data/a\nb");
        assert_eq!(remote.subject(), "backup:data/a\nb");
        let missing = io::Error::new(io::ErrorKind::NotFound, "no such file or directory");
        let local: Error = FileError::io(&Host::Local, "a.txt", missing).into();
        assert_eq!(local.to_string(), "a.txt: no such file or directory");
        assert!(!local.is_fatal());
        assert!(Error::Interrupted.is_fatal());
    }
}
