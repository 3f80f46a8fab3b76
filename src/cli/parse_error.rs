//! A command line clap cannot read: `--help` and `--version` print as
//! clap prints them; an option ferry does not know is named in ferry's own
//! words (an rsync option with docs/RSYNC.md's row for it, see
//! [`super::unsupported`]); anything else keeps clap's message and tips.
//! All are rsync's usage error, exit 1, and with `--json` the last line on
//! stdout is still the summary scripts read.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::exit::ExitCode;
use super::json::JsonReporter;
use crate::engine::Stats;
use crate::error::Error;

/// Reports `error` as its kind asks; the exit status. `json`: `--json`
/// was on the command line (clap could not say, having stopped).
pub(super) fn report(error: clap::Error, json: bool) -> i32 {
    if !error.use_stderr() {
        // --help, --version: not failures, and not for JSON.
        let _ = error.print();
        return 0;
    }
    let usage = match unknown_option(&error) {
        Some(message) => {
            eprintln!("ferry: {message}");
            Error::Usage(message)
        }
        None => {
            let _ = error.print();
            Error::Usage(first_line(&error))
        }
    };
    let code = ExitCode::of_error(&usage).code();
    if json {
        JsonReporter::new("").summary(&Stats::default(), code, Some(&usage));
    }
    code
}

/// Whether `--json` is among `args` (before a `--`, after which all are
/// paths), for an error clap raised before it could read the flags.
pub(super) fn json_asked<I, T>(args: I) -> bool
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    args.into_iter()
        .map(Into::into)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// ferry's message for an option clap does not know; None for other errors.
fn unknown_option(error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(option)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    if let Some(refusal) = super::unsupported::message(option) {
        return Some(refusal);
    }
    // clap's guess, when it begins as the option does (clap offers
    // `--log-file` for `--bogus-flag`) and --help shows it (`--stderr` is
    // not a misspelt `--server`).
    let guess = match error.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(near))
            if near.get(..4) == option.get(..4) && shown_in_help(near) =>
        {
            format!(" (did you mean {near}?)")
        }
        _ => String::new(),
    };
    Some(format!(
        "unknown option {option}{guess}; ferry --help lists them"
    ))
}

/// Whether `--help` shows the long option `name` (`--recursive`).
fn shown_in_help(name: &str) -> bool {
    let long = name.trim_start_matches("--");
    super::args::command()
        .get_arguments()
        .any(|arg| arg.get_long() == Some(long) && !arg.is_hide_set())
}

/// clap's message without its `error: ` and its tips, for the JSON summary.
fn first_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Args;

    fn message(line: &[&str]) -> Option<String> {
        let error = Args::parse_from_iter(std::iter::once("ferry").chain(line.iter().copied()))
            .expect_err("a usage error");
        unknown_option(&error)
    }

    #[test]
    fn rsync_options_point_at_the_page_and_others_are_unknown() {
        let fuzzy = message(&["-avy", "a", "b"]).expect("ferry's message");
        assert!(fuzzy.starts_with("-y is an rsync option ferry does not support"));
        let debug = message(&["a", "--debug=all", "b"]).expect("ferry's message");
        assert!(debug.starts_with("--debug is an rsync option"), "{debug}");
        assert_eq!(
            message(&["--bogus", "a", "b"]).as_deref(),
            Some("unknown option --bogus; ferry --help lists them")
        );
        assert_eq!(
            message(&["--recurse", "a", "b"]).as_deref(),
            Some("unknown option --recurse (did you mean --recursive?); ferry --help lists them")
        );
        // A hidden option is no guess.
        let stderr = message(&["--stderrr", "a", "b"]).expect("ferry's message");
        assert!(!stderr.contains("--server"), "{stderr}");
        // Other errors keep clap's words.
        assert_eq!(message(&["--jobs", "0", "a", "b"]), None);
    }

    #[test]
    fn json_is_seen_before_a_double_dash_only() {
        assert!(json_asked(["ferry", "--bogus", "--json"]));
        assert!(!json_asked(["ferry", "--", "--json"]));
        assert!(!json_asked(["ferry", "--jsonx"]));
    }
}
