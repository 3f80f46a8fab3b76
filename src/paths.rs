//! `/`-separated path strings as the endpoints understand them: joining a
//! directory and a name, taking a path apart, and showing a name
//! safely on a terminal. No I/O.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Joins a directory and a name with one `/`, in a string of exactly that
/// length (a plan holds a few per file: `format!` would leave a third of
/// each unused).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        return name.to_string();
    }
    let slash = if dir.ends_with('/') { "" } else { "/" };
    let mut joined = String::with_capacity(dir.len() + slash.len() + name.len());
    joined.push_str(dir);
    joined.push_str(slash);
    joined.push_str(name);
    joined
}

/// The last component of a path, ignoring trailing slashes.
pub(crate) fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The directory part of a path ("." when there is none).
pub(crate) fn parent(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/",
        Some(i) => &trimmed[..i],
        None => ".",
    }
}

/// A path is a string inside ferry, but a Unix name is any bytes. A byte
/// that is not part of valid UTF-8 travels inside a path as one char of the
/// last private-use block, U+10FF00 plus the byte (always 0x80 or more), and
/// so does each byte of a real char of that range: every byte string maps to
/// one string and back (Python's surrogateescape, with chars Rust allows).
const BYTE_BASE: u32 = 0x10FF00;
const FIRST_CARRIED: char = '\u{10FF80}';

/// The path for a name read from the system, bytes that are not UTF-8
/// carried as described at [`BYTE_BASE`].
pub(crate) fn from_bytes(raw: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(raw) {
        if !has_raw_bytes(text) {
            return Cow::Borrowed(text);
        }
    }
    let mut path = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c >= FIRST_CARRIED {
                let mut utf8 = [0; 4];
                c.encode_utf8(&mut utf8)
                    .bytes()
                    .for_each(|b| path.push(carried(b)));
            } else {
                path.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| path.push(carried(b)));
    }
    Cow::Owned(path)
}

fn carried(byte: u8) -> char {
    char::from_u32(BYTE_BASE + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The bytes a path names on the system: [`from_bytes`] undone.
pub(crate) fn to_bytes(path: &str) -> Cow<'_, [u8]> {
    if !has_raw_bytes(path) {
        return Cow::Borrowed(path.as_bytes());
    }
    let mut raw = Vec::with_capacity(path.len());
    for c in path.chars() {
        match c >= FIRST_CARRIED {
            true => raw.push((u32::from(c) - BYTE_BASE) as u8),
            false => raw.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Cow::Owned(raw)
}

/// The path as the system takes it.
pub(crate) fn os_path(path: &str) -> Cow<'_, std::path::Path> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    match to_bytes(path) {
        Cow::Borrowed(raw) => Cow::Borrowed(std::path::Path::new(std::ffi::OsStr::from_bytes(raw))),
        Cow::Owned(raw) => Cow::Owned(std::ffi::OsString::from_vec(raw).into()),
    }
}

/// Whether a path carries bytes that are not UTF-8 (or chars of the range
/// that carries them): a side whose names are strings (SFTP through
/// russh-sftp) cannot take it.
pub(crate) fn has_raw_bytes(path: &str) -> bool {
    path.chars().any(|c| c >= FIRST_CARRIED)
}

/// A file name as it may be printed: control characters (a newline, an
/// escape sequence from a hostile server's listing) become rsync's `\#ooo`
/// octal escapes, so no name can forge a line or drive the terminal.
pub(crate) fn printable(name: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() || c >= FIRST_CARRIED;
    if !name.chars().any(escaped) {
        return Cow::Borrowed(name);
    }
    let mut shown = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c >= FIRST_CARRIED {
            // A byte that is not UTF-8, as rsync shows it.
            let _ = write!(shown, "\\#{:03o}", u32::from(c) - BYTE_BASE);
        } else if c.is_control() {
            // Every control character is below U+00A0, so three octal digits
            // hold it.
            let _ = write!(shown, "\\#{:03o}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_string_goes_there_and_back() {
        let samples: &[&[u8]] = &[
            b"plain.txt",
            b"bad\xff.txt",
            b"\xfe\xfd",
            "caf\u{e9}".as_bytes(),
            "carried already \u{10FF80} \u{10FFFF} \u{10FF7F}".as_bytes(),
            b"\xf4\x8f\xbe\x80",
            b"\xf4\x8f\xbe",
        ];
        for raw in samples {
            let path = from_bytes(raw);
            assert_eq!(to_bytes(&path).as_ref(), *raw, "{path:?}");
        }
        for b in 0..=255u8 {
            let raw = [b'a', b, b'z'];
            assert_eq!(to_bytes(&from_bytes(&raw)).as_ref(), raw);
        }
        assert!(matches!(from_bytes(b"plain"), Cow::Borrowed(_)));
        assert!(!has_raw_bytes(&from_bytes("caf\u{e9}".as_bytes())));
        assert!(has_raw_bytes(&from_bytes(b"bad\xff")));
    }

    #[test]
    fn raw_bytes_and_control_chars_print_as_rsync_escapes() {
        assert_eq!(printable(&from_bytes(b"bad\xff.txt")), "bad\\#377.txt");
        assert_eq!(printable("a\nb"), "a\\#012b");
        assert_eq!(printable(&from_bytes(b"dir\xfe")), "dir\\#376");
    }
}
