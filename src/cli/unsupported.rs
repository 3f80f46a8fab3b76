//! rsync's options that ferry does not take, answered with what
//! docs/RSYNC.md says about each, so that a script moved from `rsync -e
//! ssh` learns what ferry does instead rather than reading clap's tip.
//!
//! The page is compiled in and its tables read when such an option comes
//! up: the message and the page cannot disagree, and a refused option the
//! page has no row for is a failing test (below), not a vague error.

/// docs/RSYNC.md, as the tests check it against the binary.
const PAGE: &str = include_str!("../../docs/RSYNC.md");

/// A row of the page that calls an option **no**.
#[derive(Debug, PartialEq, Eq)]
struct Refusal<'p> {
    /// The option as the row's first cell spells it (`-y, --fuzzy`,
    /// `--debug=FLAGS`): what a reader finds on the page.
    shown: &'p str,
    /// The row's notes, in Markdown; empty when the row has none.
    note: &'p str,
}

/// The message for `option` (`--fuzzy`, `-y`: as given, without a value)
/// when the page says ferry does not support it; None for an option rsync
/// does not have, or one the page calls supported.
pub(crate) fn message(option: &str) -> Option<String> {
    let row = refusal(option)?;
    let mut message = format!(
        "{option} is an rsync option ferry does not support: see docs/RSYNC.md, \"{}\"",
        plain(row.shown)
    );
    if !row.note.is_empty() {
        message.push_str(&format!(" ({})", plain(row.note)));
    }
    Some(message)
}

/// The **no** row naming `option`.
fn refusal(option: &str) -> Option<Refusal<'static>> {
    let tables = PAGE.split("## The options").nth(1)?;
    let tables = tables.split("## Options ferry has").next()?;
    tables
        .lines()
        .filter(|line| line.starts_with("| `"))
        .find_map(|line| row_refusing(line, option))
}

/// `line`'s refusal if it is a **no** row with `option` among its names.
fn row_refusing<'p>(line: &'p str, option: &str) -> Option<Refusal<'p>> {
    let cells: Vec<&str> = line.split(" | ").collect();
    let [names, "no", note] = cells.as_slice() else {
        return None;
    };
    // The names are the cell's code spans, some holding two (`-y, --fuzzy`).
    let shown = names.split('`').skip(1).step_by(2).find(|span| {
        span.split(", ")
            .any(|name| name.split('=').next() == Some(option))
    })?;
    Some(Refusal {
        shown,
        note: note.trim_end_matches('|').trim(),
    })
}

/// Markdown as a terminal shows it: no code quotes, links as their text.
fn plain(markdown: &str) -> String {
    let text = markdown.replace('`', "").replace("\\|", "|");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // `[text](target)` → `text`.
    while let Some(open) = rest.find('[') {
        let link = rest[open..]
            .find("](")
            .and_then(|mid| Some((mid, rest[open + mid..].find(')')? + mid)));
        let Some((mid, close)) = link else { break };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::Args;

    /// rsync's options, from options.c (see the file's header).
    const RSYNC_OPTIONS: &str = include_str!("rsync_options.txt");

    /// Each name of the list with a value when the option takes one.
    fn rsync_options() -> Vec<(String, bool)> {
        let names: Vec<(String, bool)> = RSYNC_OPTIONS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .flat_map(|line| {
                let value = line.ends_with("=ARG");
                line.trim_end_matches("=ARG")
                    .split(", ")
                    .map(move |name| (name.to_string(), value))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(names.len() > 250, "rsync has more options: {}", names.len());
        names
    }

    /// What ferry's parser says to `option` on a command line of its own.
    fn parse(option: &str, value: bool) -> Result<(), clap::Error> {
        let mut line = vec!["ferry".to_string()];
        match (value, option.starts_with("--")) {
            (true, true) => line.push(format!("{option}=1")),
            (true, false) => line.extend([option.to_string(), "1".to_string()]),
            (false, _) => line.push(option.to_string()),
        }
        line.extend(["src/".to_string(), "dest".to_string()]);
        Args::parse_from_iter(line).map(|_| ())
    }

    /// Every rsync option is read by ferry, or refused with the page's row:
    /// none gets clap's generic "unexpected argument".
    #[test]
    fn every_rsync_option_is_accepted_or_refused_with_its_row() {
        let mut wrong = Vec::new();
        for (option, value) in rsync_options() {
            let Err(error) = parse(&option, value) else {
                continue;
            };
            match error.kind() {
                // --help and --version are ferry's too.
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {}
                clap::error::ErrorKind::UnknownArgument => match message(&option) {
                    Some(text) if text.starts_with(&format!("{option} is an rsync option")) => {}
                    _ => wrong.push(format!("{option}: no **no** row in docs/RSYNC.md")),
                },
                other => wrong.push(format!("{option}: {other:?}: {error}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_message_quotes_the_row_and_its_note_as_plain_text() {
        let fuzzy = message("--fuzzy").expect("a row");
        assert!(fuzzy.starts_with(
            "--fuzzy is an rsync option ferry does not support: see docs/RSYNC.md, \"-y, --fuzzy\""
        ));
        assert!(message("-y").expect("a row").contains("\"-y, --fuzzy\""));
        let debug = message("--debug").expect("a row");
        assert!(debug.contains("\"--debug=FLAGS\" (use -vv, -vvv, or FERRY_LOG=debug"));
        assert!(!debug.contains('`'));
        // Supported ones and strangers have no refusal.
        assert_eq!(message("--recursive"), None);
        assert_eq!(message("--no-such-option"), None);
    }

    #[test]
    fn links_read_as_their_text() {
        assert_eq!(
            plain("see `-x` ([RELIABILITY.md](RELIABILITY.md#a)) or [b](c)."),
            "see -x (RELIABILITY.md) or b."
        );
        assert_eq!(plain("`--stderr=e\\|a`"), "--stderr=e|a");
    }
}
