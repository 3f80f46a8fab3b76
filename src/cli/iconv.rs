//! `--iconv=LOCAL,REMOTE` (and rsync's `RSYNC_ICONV`): rsync converts file
//! names from each side's charset to UTF-8 on the wire and back, and skips
//! (exit 23) a name not valid in its side's charset. ferry copies names as
//! they are, so it takes `--iconv` only where that conversion changes no
//! name and skips nothing ferry can carry: the same charset on both sides,
//! UTF-8 (ferry's names are UTF-8) or ISO-8859-1 (every byte is a
//! character).
//! `.` (or nothing) names the locale's charset: here this process's, on
//! the server UTF-8, since ferry cannot ask an SFTP server for its locale.
//! Anything else is refused before anything connects.

use std::ffi::CStr;

use super::settings::Direction;
use crate::error::{Error, Result};

/// Checks `--iconv`'s value, or rsync's default for it, `RSYNC_ICONV`.
pub(super) fn check_given(option: Option<&str>, direction: &Direction) -> Result<()> {
    if let Some(spec) = option {
        return check(spec, "--iconv", direction);
    }
    match std::env::var("RSYNC_ICONV") {
        Ok(spec) if !spec.is_empty() => check(&spec, "RSYNC_ICONV", direction),
        _ => Ok(()),
    }
}

/// Checks `spec` (rsync's CONVERT_SPEC) for the transfer `direction`;
/// `given` names where it came from (`--iconv`, `RSYNC_ICONV`).
pub(super) fn check(spec: &str, given: &str, direction: &Direction) -> Result<()> {
    check_with(spec, given, direction, locale_charset)
}

/// [`check`] with the local locale's charset asked of `locale`.
fn check_with(
    spec: &str,
    given: &str,
    direction: &Direction,
    locale: impl Fn() -> String,
) -> Result<()> {
    // rsync: "-" turns conversion off, as --no-iconv does.
    if spec == "-" {
        return Ok(());
    }
    // rsync's remote side gets what follows the comma, or the whole spec.
    let (here, there) = spec.split_once(',').unwrap_or((spec, spec));
    let here = charset(here, &locale);
    let there = match direction {
        // rsync's local transfer runs both sides here.
        Direction::Local => charset(there, &locale),
        // ferry cannot ask an SFTP server for its locale: it takes the
        // server's names to be UTF-8, as they reach it over SFTP.
        _ => charset(there, || SERVER_CHARSET.to_string()),
    };
    if key(&here) != key(&there) {
        return Err(refusal(format!(
            "{given}={spec} would convert them (from {here} to {there})"
        )));
    }
    if !passes_every_name(&here) {
        return Err(refusal(format!(
            "{given}={spec} would skip those not valid in {here}"
        )));
    }
    Ok(())
}

/// The charset ferry takes a server's locale to have.
const SERVER_CHARSET: &str = "UTF-8";

fn refusal(detail: String) -> Error {
    Error::Unsupported(format!("ferry copies file names as they are; {detail}"))
}

/// rsync's empty charset and `.` mean the locale's.
fn names_locale(charset: &str) -> bool {
    charset.is_empty() || charset == "."
}

/// The charset a side of the spec names, the locale's asked for only when
/// needed.
fn charset(named: &str, locale: impl Fn() -> String) -> String {
    match names_locale(named) {
        true => locale(),
        false => named.to_string(),
    }
}

/// A charset name as iconv matches it, near enough: case, dashes and
/// underscores aside (`utf8`, `UTF-8`, `iso_8859-1`), and glibc's other
/// names for ISO-8859-1 taken as that.
fn key(charset: &str) -> String {
    const LATIN1: &[&str] = &[
        "ISO88591:1987",
        "88591",
        "LATIN1",
        "L1",
        "IBM819",
        "CP819",
        "CSISOLATIN1",
        "ISOIR100",
    ];
    let key: String = charset
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match LATIN1.contains(&key.as_str()) {
        true => "ISO88591".to_string(),
        false => key,
    }
}

/// Whether converting a name from `charset` to UTF-8 and back leaves every
/// name ferry can carry (UTF-8) as it is, and refuses none: UTF-8 itself,
/// and ISO-8859-1, whose every byte is a character.
fn passes_every_name(charset: &str) -> bool {
    matches!(key(charset).as_str(), "UTF8" | "ISO88591")
}

/// The charset of this process's locale, as rsync finds it
/// (`setlocale(LC_CTYPE, "")`, then `nl_langinfo(CODESET)`): glibc says
/// `ANSI_X3.4-1968` (ASCII) for the C locale or one not installed.
fn locale_charset() -> String {
    // SAFETY: called while the settings are resolved, before any other
    // thread runs; every pointer is checked for null and copied before
    // the locale is set back to what it was.
    unsafe {
        let current = libc::setlocale(libc::LC_CTYPE, std::ptr::null());
        let saved = (!current.is_null()).then(|| CStr::from_ptr(current).to_owned());
        libc::setlocale(libc::LC_CTYPE, c"".as_ptr());
        let codeset = libc::nl_langinfo(libc::CODESET);
        let name = match codeset.is_null() {
            true => String::new(),
            false => CStr::from_ptr(codeset).to_string_lossy().into_owned(),
        };
        if let Some(saved) = saved {
            libc::setlocale(libc::LC_CTYPE, saved.as_ptr());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit::ExitCode;
    use crate::location::RemoteSpec;

    fn push() -> Direction {
        Direction::Push(RemoteSpec {
            user: None,
            host: "h".into(),
            port: None,
            path: "p".into(),
        })
    }

    fn utf8_locale() -> String {
        "UTF-8".into()
    }

    fn checked(spec: &str, direction: &Direction, locale: &str) -> Result<()> {
        check_with(spec, "--iconv", direction, || locale.to_string())
    }

    #[test]
    fn the_same_charset_on_both_sides_passes() {
        for spec in [
            "utf8,UTF-8",
            "UTF8",
            "utf-8,utf_8",
            "latin1,ISO-8859-1",
            "-",
            // The locale's (UTF-8 here), and UTF-8 taken for the server's.
            ".",
            "utf8,.",
            "utf8,",
        ] {
            assert!(checked(spec, &push(), "UTF-8").is_ok(), "{spec}");
        }
        assert!(checked(".", &Direction::Local, "ISO-8859-1").is_ok());
    }

    #[test]
    fn conversions_and_refusals_are_refused_with_code_4() {
        let cases = [
            ("utf8,iso88591", "UTF-8"),
            ("utf-8-mac,utf-8", "UTF-8"),
            ("ascii,ascii", "UTF-8"),
            // A C locale's ASCII here, UTF-8 taken for the server.
            (".", "ANSI_X3.4-1968"),
            ("latin1,.", "UTF-8"),
        ];
        for (spec, locale) in cases {
            let error = checked(spec, &push(), locale).expect_err(spec);
            assert_eq!(ExitCode::of_error(&error).code(), 4, "{spec}");
            assert!(
                error
                    .to_string()
                    .starts_with("ferry copies file names as they are; --iconv="),
                "{error}"
            );
        }
        assert!(checked(".", &Direction::Local, "ANSI_X3.4-1968").is_err());
    }

    #[test]
    fn the_locale_is_asked_only_for_dot_or_nothing() {
        assert_eq!(charset(".", utf8_locale), "UTF-8");
        assert_eq!(charset("", utf8_locale), "UTF-8");
        assert_eq!(charset("utf8", || unreachable!()), "utf8");
        assert!(!passes_every_name("ANSI_X3.4-1968"));
        assert_eq!(key("CP819"), key("iso-8859-1"));
    }
}
