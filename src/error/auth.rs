//! Why authentication to a host did not succeed, with what was tried: the
//! detailed error of `ssh::auth`, defined here so that the run's error can
//! carry it without this layer importing the SSH code.

use std::io;

/// Why authentication did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// Every method was tried or skipped; `tried` lists each attempt with its
    /// outcome, `skipped` the methods not attempted and why.
    #[error("permission denied for {user}@{host}: {}", describe(tried, skipped))]
    Failed {
        user: String,
        host: String,
        tried: Vec<String>,
        skipped: Vec<String>,
    },

    /// The server hung up mid-way, typically after too many attempts.
    #[error("{host} closed the connection during authentication ({}); the server may allow only a few attempts (MaxAuthTries): pick the key with -i or IdentitiesOnly yes", describe(tried, &[]))]
    Disconnected { host: String, tried: Vec<String> },

    /// The SSH connection failed while authenticating.
    #[error(
        "connection to {host} failed during authentication: {source}; check the network and retry"
    )]
    Ssh {
        host: String,
        #[source]
        source: russh::Error,
    },

    /// Reading a passphrase or password from the terminal failed.
    #[error("cannot read from the terminal while authenticating to {host}: {source}; run without a terminal to skip passwords, use ssh-agent, or set SSH_ASKPASS and SSH_ASKPASS_REQUIRE=force to ask with a program")]
    Terminal {
        host: String,
        #[source]
        source: io::Error,
    },

    /// Authenticating to a jump host (ProxyJump) failed.
    #[error("jump host {hop}: {source}")]
    JumpHost {
        hop: String,
        #[source]
        source: Box<AuthError>,
    },

    /// The SSH_ASKPASS program could not be run or gave an unusable answer.
    #[error("cannot ask with the SSH_ASKPASS program {program} while authenticating to {host}: {source}; fix SSH_ASKPASS, or set SSH_ASKPASS_REQUIRE=never to not use it")]
    Askpass {
        host: String,
        program: String,
        #[source]
        source: io::Error,
    },
}

fn describe(tried: &[String], skipped: &[String]) -> String {
    let mut text = if tried.is_empty() {
        "nothing could be tried".to_string()
    } else {
        format!("tried {}", tried.join(", "))
    };
    for note in skipped {
        text.push_str("; ");
        text.push_str(note);
    }
    text
}

impl AuthError {
    /// Whether the connection broke (or the server hung up) rather than the
    /// server turning every credential down.
    pub(crate) fn is_network(&self) -> bool {
        match self {
            AuthError::JumpHost { source, .. } => source.is_network(),
            _ => matches!(self, AuthError::Disconnected { .. } | AuthError::Ssh { .. }),
        }
    }
}
