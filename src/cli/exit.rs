//! Exit codes: the one place where the outcome of a run becomes the
//! process's status. The library reports what went wrong (an [`Error`] that
//! ended the run, or what failed file by file in [`Stats`]); only here is
//! that given a number.
//!
//! Numbers follow rsync's wherever the meaning is the same, so that scripts
//! written for `rsync -e ssh` read ferry's status unchanged. The table is
//! repeated in the README ("Exit codes"); keep both in step.

use crate::engine::Stats;
use crate::error::{Cause, Error};

/// Process exit status, rsync-compatible where rsync has the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
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
    /// A local file I/O error stopped the run.
    FileIo = 11,
    /// rsync's "error in rsync protocol data stream": the remote side
    /// could not start what the transfer needs (rsync's server exited
    /// first), or sent more than an honest server sends.
    Protocol = 12,
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
    pub(crate) fn code(self) -> i32 {
        self as i32
    }

    /// The status of a run that ended on `error`.
    pub(crate) fn of_error(error: &Error) -> ExitCode {
        match error {
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
                _ => ExitCode::Protocol,
            },
            Error::Protocol { .. } => ExitCode::Protocol,
            Error::Timeout { .. } => ExitCode::Timeout,
            // A file that ended the run: a local one that could not be
            // read or written is rsync's I/O error, any other a file that
            // could not be transferred.
            Error::File(e) => match e.cause {
                Cause::Io(_) => ExitCode::FileIo,
                _ => ExitCode::PartialTransfer,
            },
            // rsync's receiver exits with its "error in file IO" when it
            // cannot make the destination directory or write a file's data.
            Error::Stop(_) => ExitCode::FileIo,
            Error::Interrupted => ExitCode::Interrupted,
        }
    }

    /// The status of a run that went to its end: 0, unless files failed
    /// or `--max-delete` held the deletions back. A file that failed to
    /// transfer outranks a source that could not be selected (rsync's 23
    /// over 3), and either outranks the deletions held back.
    pub(crate) fn of_stats(stats: &Stats) -> ExitCode {
        if stats.files_failed > stats.selection_failures {
            ExitCode::PartialTransfer
        } else if stats.selection_failures > 0 {
            ExitCode::FileSelection
        } else if stats.deletions_held {
            ExitCode::MaxDelete
        } else {
            ExitCode::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_transfer_outranks_a_selection_failure_and_max_delete() {
        let code = |transfer: u64, selection: u64, held: bool| {
            ExitCode::of_stats(&Stats {
                files_failed: transfer + selection,
                selection_failures: selection,
                deletions_held: held,
                ..Stats::default()
            })
        };
        assert_eq!(code(0, 0, false), ExitCode::Ok);
        assert_eq!(code(0, 0, true), ExitCode::MaxDelete);
        assert_eq!(code(0, 2, true), ExitCode::FileSelection);
        assert_eq!(code(1, 2, true), ExitCode::PartialTransfer);
        assert_eq!(code(1, 0, false), ExitCode::PartialTransfer);
    }

    #[test]
    fn a_server_past_the_bounds_is_rsyncs_protocol_error() {
        let past = Error::Protocol {
            host: "h".into(),
            detail: "the server listed more than 4000000 entries in d".into(),
        };
        assert_eq!(ExitCode::of_error(&past).code(), 12);
    }

    #[test]
    fn what_stops_the_run_on_the_destination_is_rsyncs_file_io_error() {
        use crate::error::{DirFailure, FileError, Host};
        let missing = std::io::Error::from_raw_os_error(libc::ENOENT);
        let parent = FileError::io(&Host::Local, "/no/such/dest", missing)
            .into_dir("/no/such/dest", DirFailure::NoParent);
        assert_eq!(ExitCode::of_error(&Error::Stop(parent)).code(), 11);
    }
}
