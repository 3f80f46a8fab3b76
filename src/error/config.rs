//! Why an ssh config could not be read for a host: the detailed error of
//! `ssh::config` and `ssh::readconf`, defined here so that the run's error
//! can carry it without this layer importing the SSH code.

use std::io;
use std::path::PathBuf;

/// What is wrong with one config line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    #[error("{0} has no value")]
    MissingArgument(String),
    #[error("{0} takes one value, this line has more")]
    ExtraArguments(String),
    #[error("{0} has an empty argument")]
    EmptyArgument(String),
    #[error("a quote is not closed")]
    Quotes,
    #[error("Port {0:?} is not a port number (1 to 65535)")]
    BadPort(String),
    #[error("{keyword} {value:?} is not a time (seconds, or with units like 1m30s, or none)")]
    BadTime { keyword: String, value: String },
    #[error("{0} none must be its only value")]
    NoneNotAlone(String),
}

/// Why a host alias could not be resolved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read ssh config {}: {source}; check the path (given with -F?) and its permissions", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("ssh config {}, line {line}: {source}; fix or remove that line", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        source: LineError,
    },

    #[error("ssh config {}, line {line}: {reason}", path.display())]
    Include {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("ssh config {}: {keyword} {value:?} for host {host} is not valid, expected {expected}; fix that line", path.display())]
    BadValue {
        path: PathBuf,
        host: String,
        keyword: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("ssh config {}: {keyword} {value:?} for host {host} uses the %-token %{token}, which ferry does not support there; {keyword} allows {allowed}", path.display())]
    BadToken {
        path: PathBuf,
        host: String,
        keyword: &'static str,
        value: String,
        token: char,
        allowed: &'static str,
    },

    #[error("-o {option}: {reason}")]
    Option { option: String, reason: String },

    #[error("{origin}: ProxyCommand {command:?} for host {host} is not supported: ferry connects by itself and runs no proxy command; use ProxyJump (ssh -J) for jump hosts, or set ProxyCommand none")]
    ProxyCommand {
        origin: String,
        host: String,
        command: String,
    },

    #[error("ProxyJump {value:?} for host {host}: {reason}")]
    ProxyJump {
        host: String,
        value: String,
        reason: String,
    },

    #[error("-e/--rsh {command:?}: {reason}")]
    Rsh { command: String, reason: String },

    #[error("cannot determine the home directory (HOME is unset and the user has no passwd entry); set HOME")]
    NoHome,
}
