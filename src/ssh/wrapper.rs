//! The remote side started through a wrapper (`--rsync-path="sudo rsync"`):
//! where rsync would run `WRAPPER rsync --server ...` through the remote
//! shell, ferry runs its own remote programs through the same wrapper:
//! OpenSSH's `sftp-server` (a subsystem cannot be wrapped, so it is found
//! by probing where systems install it and run as a command), the
//! `ferry --server` helper, and the shell commands of the hashing tier.
//! The wrapper is shell text, given to the remote shell as rsync gives it.

use super::{shell_quote, ExecOutput};

/// Where OpenSSH's sftp-server is installed, tried in order; `command -v`
/// last, for a system that has it on the PATH.
const SFTP_SERVERS: &[&str] = &[
    "/usr/lib/openssh/sftp-server",     // Debian, Ubuntu
    "/usr/libexec/openssh/sftp-server", // Fedora, RHEL, SUSE
    "/usr/lib/ssh/sftp-server",         // Arch
    "/usr/libexec/sftp-server",         // macOS, FreeBSD, OpenBSD
    "/usr/lib/misc/sftp-server",        // Gentoo
    "/usr/local/libexec/sftp-server",   // OpenSSH built from source
];

/// The text before `rsync` in an `--rsync-path` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wrapper(String);

impl Wrapper {
    pub(crate) fn new(text: &str) -> Wrapper {
        Wrapper(text.trim().to_string())
    }

    pub(crate) fn text(&self) -> &str {
        &self.0
    }

    /// A shell command line run by `sh` under the wrapper (a wrapper such
    /// as `sudo` runs one program, and the hashing commands are pipelines).
    pub(crate) fn shell(&self, command: &str) -> String {
        format!("{} sh -c {}", self.0, shell_quote(command))
    }

    /// One program (its words already quoted) run under the wrapper.
    pub(crate) fn program(&self, command: &str) -> String {
        format!("{} {command}", self.0)
    }

    /// The shell command that prints where sftp-server is (run through
    /// [`Wrapper::shell`]: a wrapper that cannot run says so here, before
    /// the SFTP session, with what it printed).
    pub(crate) fn probe() -> String {
        let places: Vec<String> = SFTP_SERVERS.iter().map(|p| shell_quote(p)).collect();
        format!(
            "for p in {}; do if [ -x \"$p\" ]; then echo \"$p\"; exit 0; fi; done; \
             command -v sftp-server || exit 127",
            places.join(" ")
        )
    }

    /// The sftp-server path the probe found: one absolute path, nothing
    /// else (a server that runs everything as SFTP answers with binary).
    pub(crate) fn found(out: &ExecOutput) -> Option<String> {
        let text = std::str::from_utf8(&out.stdout).ok()?;
        let path = text.trim_end_matches('\n');
        let plausible = path.starts_with('/') && !path.contains(['\n', '\0']);
        (out.succeeded() && plausible).then(|| path.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_run_under_the_wrapper() {
        let w = Wrapper::new(" sudo -n ");
        assert_eq!(w.text(), "sudo -n");
        assert_eq!(w.shell("uname -sm"), "sudo -n sh -c 'uname -sm'");
        assert_eq!(w.program("'ferry' --server"), "sudo -n 'ferry' --server");
    }

    #[test]
    fn the_probe_answer_is_one_absolute_path() {
        let answer = |stdout: &[u8], status| ExecOutput {
            stdout: stdout.to_vec(),
            status: Some(status),
            ..ExecOutput::default()
        };
        let found = Wrapper::found(&answer(b"/usr/lib/openssh/sftp-server\n", 0));
        assert_eq!(found.as_deref(), Some("/usr/lib/openssh/sftp-server"));
        assert_eq!(Wrapper::found(&answer(b"/a\n/b\n", 0)), None);
        assert_eq!(Wrapper::found(&answer(b"\0\0\0\x05\x02", 0)), None);
        assert_eq!(
            Wrapper::found(&answer(b"/usr/bin/sftp-server\n", 127)),
            None
        );
        assert!(Wrapper::probe().contains("'/usr/libexec/openssh/sftp-server'"));
    }
}
