//! `ferry --man` and `ferry --completions SHELL`: the man page and shell
//! completion scripts, generated from the same clap definitions that parse
//! the flags, so they cannot drift from them. README's "Install" section
//! says where to put them.

use super::exit::ExitCode;

/// Prints `--help`'s text.
pub(super) fn help() -> i32 {
    match super::args::command().print_long_help() {
        Ok(()) => 0,
        Err(_) => ExitCode::FileIo.code(),
    }
}

/// Prints the man page or a completion script on stdout; the exit status.
pub(super) fn print(man: bool, completions: Option<clap_complete::Shell>) -> i32 {
    let mut command = super::args::command();
    let mut out = std::io::stdout();
    if man {
        match clap_mangen::Man::new(command.clone()).render(&mut out) {
            // `ferry --man | head` is not an error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("ferry: writing the man page: {e}");
                return ExitCode::FileIo.code();
            }
            _ => {}
        }
    }
    if let Some(shell) = completions {
        clap_complete::generate(shell, &mut command, "ferry", &mut out);
    }
    0
}
