//! `/`-separated path strings as the endpoints understand them: joining a
//! directory and a name, taking a path apart, and showing a name
//! safely on a terminal. No I/O.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Joins a directory and a name with one `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The last component of a path, ignoring trailing slashes.
pub fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The directory part of a path ("." when there is none).
pub fn parent(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/",
        Some(i) => &trimmed[..i],
        None => ".",
    }
}

/// A file name as it may be printed: control characters (a newline, an
/// escape sequence from a hostile server's listing) become rsync's `\#ooo`
/// octal escapes, so no name can forge a line or drive the terminal.
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return Cow::Borrowed(name);
    }
    let mut shown = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            // Every control character is below U+00A0, so three octal digits
            // hold it.
            let _ = write!(shown, "\\#{:03o}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// A name that is not valid UTF-8 as it may be printed: what is valid as
/// [`printable`] shows it, every other byte as rsync's `\#ooo` escape.
pub fn printable_bytes(name: &[u8]) -> String {
    let mut shown = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        shown.push_str(&printable(chunk.valid()));
        for byte in chunk.invalid() {
            let _ = write!(shown, "\\#{byte:03o}");
        }
    }
    shown
}
