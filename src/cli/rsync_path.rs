//! `--rsync-path=PROGRAM`: rsync runs PROGRAM on the server as its remote
//! side. ferry needs no rsync there, so the value means something to it
//! only as the way the remote side is started: `sudo rsync`, `env X=1
//! rsync` or `cd /srv && /usr/bin/rsync` put a wrapper (shell text) before
//! the program, and ferry starts its own remote side through that wrapper
//! (`ssh::wrapper`). A lone `rsync` (or a path to one) says only where
//! rsync is, and changes nothing. A value that does not end in rsync names
//! another program, which ferry cannot run in rsync's place: refused
//! before anything connects.

use crate::error::{Error, Result};
use crate::ssh::wrapper::Wrapper;

/// The wrapper `value` puts before rsync, None for none.
pub(super) fn wrapper(value: &str) -> Result<Option<Wrapper>> {
    let text = value.trim_end();
    let (before, program) = match text.rfind(char::is_whitespace) {
        Some(at) => text.split_at(at),
        None => ("", text),
    };
    let program = program.trim_start();
    if program != "rsync" && !program.ends_with("/rsync") {
        return Err(refused(
            value,
            "it would run another program than rsync, and ferry runs its own remote side",
        ));
    }
    let before = before.trim();
    // A pipe or `&` would cut the program off from the connection.
    let cut_off = |op: char| before.ends_with(op) && !before.ends_with(&format!("{op}{op}"));
    if cut_off('|') || cut_off('&') {
        return Err(refused(
            value,
            "rsync would not be what the connection runs",
        ));
    }
    Ok((!before.is_empty()).then(|| Wrapper::new(before)))
}

fn refused(value: &str, why: &str) -> Error {
    Error::Unsupported(format!(
        "--rsync-path={value}: {why}; ferry takes a value ending in rsync, with a \
         wrapper before it (`sudo rsync`), and starts its remote side (sftp-server, \
         its helper) through that wrapper"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit::ExitCode;

    fn text(value: &str) -> Option<String> {
        wrapper(value).expect(value).map(|w| w.text().to_string())
    }

    #[test]
    fn the_text_before_rsync_is_the_wrapper() {
        assert_eq!(text("sudo rsync").as_deref(), Some("sudo"));
        assert_eq!(
            text("/usr/bin/sudo -n /usr/bin/rsync ").as_deref(),
            Some("/usr/bin/sudo -n")
        );
        assert_eq!(text("env FOO=1 rsync").as_deref(), Some("env FOO=1"));
        assert_eq!(text("cd /srv && rsync").as_deref(), Some("cd /srv &&"));
        assert_eq!(text("rsync"), None);
        assert_eq!(text("/opt/bin/rsync"), None);
    }

    #[test]
    fn other_programs_are_refused_with_code_4() {
        for value in [
            "/opt/rsync-3.2",
            "sudo rsync --fake-super",
            "openrsync",
            "",
            "cat | rsync",
            "sleep 1 & rsync",
            "sudo 'rsync'",
        ] {
            let error = wrapper(value).expect_err(value);
            assert_eq!(ExitCode::of_error(&error).code(), 4, "{value}");
        }
    }
}
