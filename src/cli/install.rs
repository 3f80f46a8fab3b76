//! `--help`, `ferry --man` and `ferry --completions SHELL`: the help, man
//! page and shell completion scripts, generated from the same clap
//! definitions that parse the flags, so they cannot drift from them. What
//! comes after the options (the forms of a command line, examples, `ferry
//! demo`, the exit codes) is written once here for both the help and the
//! man page. README's "Install" section says where to put them.

use std::io::Write;

use super::exit::ExitCode;

/// The three forms of a command line, as `Usage:` shows them.
const FORMS: [(&str, &str); 3] = [
    ("SRC... [USER@]HOST:DEST", "push"),
    ("[USER@]HOST:SRC... DEST", "pull"),
    (
        "SRC... DEST",
        "local (a source alone is listed, as rsync does)",
    ),
];

/// Command lines worth copying, with what each does.
const EXAMPLES: [(&str, &str); 6] = [
    (
        "ferry -a src/ backup@nas:src/",
        "push src's contents (a trailing / as in rsync)",
    ),
    ("ferry -a nas:/var/log/app/ logs/", "pull, into logs/"),
    (
        "ferry -a --delete src/ nas:mirror/",
        "mirror: delete what src lacks, once all is copied",
    ),
    (
        "ferry -an --delete src/ nas:mirror/",
        "the same, dry run: list what would change",
    ),
    (
        "ferry -a --exclude '*.tmp' src sftp://nas:2222/srv/",
        "an sftp:// URL with a port",
    ),
    (
        "ferry -a --json src/ nas:dst/ | tail -n 1",
        "a script's summary: counts, exit code",
    ),
];

/// The exit codes ferry uses, with rsync's numbers where the meaning is the
/// same (README's "Exit codes" has the long form; a test checks both).
fn exit_codes() -> [(String, &'static str); 14] {
    let code = |c: ExitCode| c.code().to_string();
    [
        (code(ExitCode::Ok), "success"),
        (
            code(ExitCode::Usage),
            "usage error: a bad option or argument (nothing was done)",
        ),
        (
            code(ExitCode::FileSelection),
            "a source is missing, or another ferry run holds the destination",
        ),
        (
            code(ExitCode::Unsupported),
            "something asked for that ferry cannot do there (refused before writing)",
        ),
        (code(ExitCode::ProtocolStart), "the server refused SFTP"),
        (
            code(ExitCode::ConnectionLost),
            "the connection broke and --retries did not help (rerun to resume)",
        ),
        (
            code(ExitCode::FileIo),
            "a local file I/O error stopped the run",
        ),
        (
            code(ExitCode::Protocol),
            "the remote side could not start what the run needs",
        ),
        (
            code(ExitCode::Interrupted),
            "interrupted (SIGINT, SIGTERM); partials are kept",
        ),
        (
            code(ExitCode::PartialTransfer),
            "some files failed, the others were copied",
        ),
        (
            code(ExitCode::MaxDelete),
            "--max-delete held the deletions back (none were made)",
        ),
        (
            code(ExitCode::Timeout),
            "the server stopped answering for --timeout seconds",
        ),
        (
            format!(
                "{}, {}",
                code(ExitCode::CommandFailed),
                code(ExitCode::CommandNotFound)
            ),
            "the --rsync-path wrapper could not run",
        ),
        (
            code(ExitCode::Connect),
            "could not connect, log in or verify the host key",
        ),
    ]
}

/// Where to begin: the demo (in builds that have its server).
fn demo_line() -> Option<&'static str> {
    match cfg!(feature = "embedded") {
        true => Some(
            "`ferry demo` syncs a sample tree into an SSH server inside ferry, on this \
             machine, and narrates each step.",
        ),
        false => None,
    }
}

const SEE_ALSO: &str = "docs/RSYNC.md: every rsync option and what ferry does with it; \
                        docs/JSON.md: --json's lines. rsync(1), ssh_config(5).";

/// `Usage:`'s text: the three forms, aligned under clap's `Usage: `.
pub(super) fn usage() -> String {
    let forms: Vec<String> = FORMS
        .iter()
        .map(|(paths, what)| format!("ferry [OPTIONS] {paths:<26} {what}"))
        .collect();
    forms.join("\n       ")
}

/// What `--help` prints after the options.
pub(super) fn after_help() -> String {
    let mut text = String::from("Examples:\n");
    for (line, what) in EXAMPLES {
        text.push_str(&format!("  {line}\n      {what}\n"));
    }
    if let Some(demo) = demo_line() {
        text.push_str(&format!("\nNew to ferry? {}\n", demo.replace('`', "")));
    }
    text.push_str("\nExit codes (rsync's numbers where the meaning is the same):\n");
    for (code, what) in exit_codes() {
        text.push_str(&format!("  {code:>8}  {what}\n"));
    }
    text.push_str(&format!("\nSee also {}", SEE_ALSO));
    text
}

/// Prints `--help`'s text (rsync's `-h` alone).
pub(super) fn help() -> i32 {
    match super::args::command().print_help() {
        Ok(()) => 0,
        Err(_) => ExitCode::FileIo.code(),
    }
}

/// Prints the man page or a completion script on stdout; the exit status.
pub(super) fn print(man: bool, completions: Option<clap_complete::Shell>) -> i32 {
    let mut command = super::args::command();
    let mut out = std::io::stdout();
    if man {
        match man_page(command.clone(), &mut out) {
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

/// clap_mangen's sections, with the synopsis as `Usage:` has it and
/// EXAMPLES, EXIT STATUS and SEE ALSO after the options.
fn man_page(command: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command);
    man.render_title(out)?;
    man.render_name_section(out)?;
    let mut roff = String::from(".SH SYNOPSIS\n");
    for (paths, what) in FORMS {
        roff.push_str(&format!(
            ".TP\n\\fBferry\\fR [\\fIOPTIONS\\fR] {}\n{}\n",
            escape(paths),
            escape(what)
        ));
    }
    out.write_all(roff.as_bytes())?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    out.write_all(extra_sections().as_bytes())?;
    man.render_version_section(out)
}

/// EXAMPLES, the demo, EXIT STATUS and SEE ALSO in roff.
fn extra_sections() -> String {
    let mut roff = String::from(".SH EXAMPLES\n");
    for (line, what) in EXAMPLES {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(line),
            escape(what)
        ));
    }
    if let Some(demo) = demo_line() {
        roff.push_str(&format!(".PP\n{}\n", escape(&demo.replace('`', ""))));
    }
    roff.push_str(".SH \"EXIT STATUS\"\nrsync's numbers where the meaning is the same.\n");
    for (code, what) in exit_codes() {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(&code),
            escape(what)
        ));
    }
    roff.push_str(&format!(".SH \"SEE ALSO\"\n{}\n", escape(SEE_ALSO)));
    roff
}

/// Text for a roff line: backslashes and hyphens as roff wants them, and
/// no control character at the start.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's exit-code table and the help's list name the same codes.
    #[test]
    fn the_help_lists_the_exit_codes_the_readme_does() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Exit codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has an Exit codes section");
        let mut documented: Vec<String> = table
            .lines()
            .filter_map(|line| line.strip_prefix("| "))
            .filter_map(|line| line.split(" |").next())
            .filter(|cell| cell.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        let mut listed: Vec<String> = exit_codes().into_iter().map(|(code, _)| code).collect();
        documented.sort();
        listed.sort();
        assert_eq!(documented, listed);
    }

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(escape("-a src/"), "\\-a src/");
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("a\\b"), "a\\eb");
    }
}
