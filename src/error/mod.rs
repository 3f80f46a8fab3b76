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

    /// One entry's error that every other would meet too: the destination
    /// directory cannot be made (its parent is missing), or the destination
    /// is full. The run stops there, as rsync's receiver exits (its "error
    /// in file IO").
    #[error("{0}")]
    Stop(FileError),

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
    /// The server refused an operation on the file: the helper's or the
    /// remote shell's answer.
    #[error("{0}")]
    Server(String),
    /// The server refused an SFTP request on the file: its status, kept
    /// with the words shown, since the code says what kind of failure it
    /// was ([`FileError::problem`]).
    #[error("{message}")]
    Status { code: Status, message: String },
    /// ferry refuses to handle the file: its name, its kind, or contents
    /// that changed or did not arrive whole.
    #[error("{0}")]
    Refused(String),
    /// A directory of the destination failed, and with it whatever the
    /// run would have put in it (reported once, as rsync's "Skipping any
    /// contents from this failed directory").
    #[error("{}", dir_failed(*.failure, cause))]
    Dir {
        failure: DirFailure,
        cause: Box<Cause>,
    },
    /// A file's data could not be written for want of room (or, over SFTP,
    /// with the generic failure a full disk gives): what became of its
    /// partial is said, since a full disk is the user's to free.
    #[error("write failed: {}; {fate}", no_space(cause))]
    NoSpace { cause: Box<Cause>, fate: Fate },
}

/// An SFTP status code, as far as messages and the grouping of errors
/// tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    NoSuchFile,
    PermissionDenied,
    /// `SSH_FX_FAILURE`: OpenSSH's sftp-server sends it for every errno
    /// without an SFTP code of its own: ENOSPC, EDQUOT, EFBIG, EROFS...
    Failure,
    Other,
}

/// What kind of failure a [`FileError`] is, whichever side it happened on:
/// what decides whether it concerns the file alone, its directory, or the
/// whole destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    NotFound,
    Denied,
    ReadOnly,
    /// ENOSPC, EDQUOT, EFBIG: the destination (or the user's share of it)
    /// is full.
    NoSpace,
    /// SFTP's generic failure ([`Status::Failure`]): on a write, a full
    /// disk or quota most of the time.
    Failure,
    Other,
}

/// How a directory failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirFailure {
    /// It could not be made.
    NotMade,
    /// The destination itself could not be made: its parent is missing.
    NoParent,
    /// The destination itself could not be made, for another reason.
    Destination,
    /// Nothing can be created in it (its mode, a read-only mount, it is
    /// gone).
    NotWritable,
}

/// What became of a file's partial after its data could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    Removed,
    /// It could not be removed either (why).
    Kept(String),
    /// `--inplace`: the file itself, left as far as it was written.
    InPlace,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Removed => write!(f, "partial removed"),
            Fate::Kept(why) => write!(f, "its partial could not be removed ({why})"),
            Fate::InPlace => write!(f, "the file is left as far as it was written (--inplace)"),
        }
    }
}

/// The words of a [`Cause::Dir`].
fn dir_failed(failure: DirFailure, cause: &Cause) -> String {
    let hint = match cause.problem() {
        Problem::Failure => " (a read-only file system, or no space left or quota exceeded?)",
        _ => "",
    };
    match failure {
        DirFailure::NotMade => {
            format!("mkdir failed: {cause}{hint}; skipping any contents from this failed directory")
        }
        DirFailure::Destination => format!("mkdir failed: {cause}{hint}"),
        DirFailure::NoParent => {
            format!("mkdir failed: {cause} (its parent is missing; --mkpath makes it)")
        }
        DirFailure::NotWritable => {
            format!("cannot create entries in this directory: {cause}{hint}; skipping its contents")
        }
    }
}

/// The words of a [`Cause::NoSpace`]: SFTP's bare "failure" says what it
/// usually means.
fn no_space(cause: &Cause) -> String {
    match cause.problem() {
        Problem::Failure => {
            format!("no space left on device or quota exceeded? (the server says only: {cause})")
        }
        _ => cause.to_string(),
    }
}

impl Cause {
    /// What kind of failure this is ([`Problem`]).
    pub(crate) fn problem(&self) -> Problem {
        match self {
            Cause::Io(e) => problem_of_errno(e.raw_os_error()),
            // The helper answers with the I/O error's words, which end in
            // its number: `No space left on device (os error 28)`.
            Cause::Server(message) => problem_of_errno(os_error_in(message)),
            Cause::Status { code, .. } => match code {
                Status::NoSuchFile => Problem::NotFound,
                Status::PermissionDenied => Problem::Denied,
                Status::Failure => Problem::Failure,
                Status::Other => Problem::Other,
            },
            Cause::Dir { cause, .. } => cause.problem(),
            Cause::NoSpace { .. } => Problem::NoSpace,
            Cause::Refused(_) => Problem::Other,
        }
    }
}

fn problem_of_errno(errno: Option<i32>) -> Problem {
    match errno {
        Some(libc::ENOENT | libc::ENOTDIR) => Problem::NotFound,
        Some(libc::EACCES | libc::EPERM) => Problem::Denied,
        Some(libc::EROFS) => Problem::ReadOnly,
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Problem::NoSpace,
        _ => Problem::Other,
    }
}

/// The number in a message's trailing `(os error N)`, as Rust's I/O errors
/// end.
fn os_error_in(message: &str) -> Option<i32> {
    let (_, tail) = message.rsplit_once("(os error ")?;
    tail.strip_suffix(')')?.parse().ok()
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

    /// An SFTP request the server refused with `code`, in `message`.
    pub(crate) fn status(
        host: &Host,
        path: impl Into<String>,
        code: Status,
        message: impl Into<String>,
    ) -> FileError {
        let message = message.into();
        FileError::new(host, path, Cause::Status { code, message })
    }

    /// `dir` failed as `failure` says, for this error's cause (the cause
    /// within, for an error about a directory already).
    pub(crate) fn into_dir(self, dir: impl Into<String>, failure: DirFailure) -> FileError {
        let cause = match self.cause {
            Cause::Dir { cause, .. } => cause,
            cause => Box::new(cause),
        };
        FileError {
            host: self.host,
            path: dir.into(),
            cause: Cause::Dir { failure, cause },
        }
    }

    /// What kind of failure this is ([`Problem`]).
    pub(crate) fn problem(&self) -> Problem {
        self.cause.problem()
    }

    pub(crate) fn new(host: &Host, path: impl Into<String>, cause: Cause) -> FileError {
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

    #[test]
    fn a_failure_says_what_kind_it_is_on_either_side() {
        let errno = |n| Cause::Io(io::Error::from_raw_os_error(n)).problem();
        assert_eq!(errno(libc::ENOSPC), Problem::NoSpace);
        assert_eq!(errno(libc::EDQUOT), Problem::NoSpace);
        assert_eq!(errno(libc::EROFS), Problem::ReadOnly);
        assert_eq!(errno(libc::EACCES), Problem::Denied);
        let helper = Cause::Server("No space left on device (os error 28)".into());
        assert_eq!(helper.problem(), Problem::NoSpace);
        assert_eq!(
            Cause::Server("odd (os error x)".into()).problem(),
            Problem::Other
        );
        let failure = FileError::status(&Host::remote("h"), "d/a", Status::Failure, "failed");
        assert_eq!(failure.problem(), Problem::Failure);
        assert_eq!(failure.to_string(), "h:d/a: failed");
    }

    #[test]
    fn a_write_without_room_says_what_it_usually_means_and_what_was_removed() {
        let failure = Cause::Status {
            code: Status::Failure,
            message: "failed (Failure)".into(),
        };
        let e = FileError::new(
            &Host::remote("h"),
            "d/mid.bin",
            Cause::NoSpace {
                cause: Box::new(failure),
                fate: Fate::Removed,
            },
        );
        assert_eq!(
            e.to_string(),
            "h:d/mid.bin: write failed: no space left on device or quota exceeded? \
             (the server says only: failed (Failure)); partial removed"
        );
        let denied = FileError::io(
            &Host::Local,
            "d/.a.ferry-partial",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        let dir = denied.into_dir("d", DirFailure::NotWritable);
        assert_eq!(dir.problem(), Problem::Denied);
        assert!(
            dir.to_string()
                .starts_with("d: cannot create entries in this directory: "),
            "{dir}"
        );
    }
}
