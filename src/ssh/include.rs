//! Reads an ssh config file into lines, following its `Include`s the way
//! OpenSSH's readconf.c does, and remembers where every line came from (a
//! file and line number, or an `-o` option) for error messages.
//!
//! - each argument of `Include` is a path or a glob(7) pattern; `~` is the
//!   home directory, and a relative path is under `~/.ssh` (ferry reads
//!   user configs only); matches are read in lexical order, no match is no
//!   error;
//! - the included lines hang under their `Include` line ([`Line::included`]):
//!   whether they apply depends on the block around the `Include`, which
//!   `ssh::readconf` decides. Like OpenSSH, files are read even under a
//!   block that does not apply (nothing in them applies then);
//! - nesting is limited to 16 levels, as in OpenSSH.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::config::ConfigError;
use super::readconf::lex;

/// OpenSSH's READCONF_MAX_DEPTH.
const MAX_DEPTH: usize = 16;

/// One config line and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub text: String,
    pub origin: Origin,
    /// For an `Include` line: the lines of the files it names, in order,
    /// their own `Include`s expanded likewise. Empty for other lines.
    pub included: Vec<Line>,
}

/// Where a config line came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An `ssh -o` option, as given.
    Option(String),
    /// A line of a config file (1-based).
    File { path: PathBuf, line: usize },
}

/// The lines of `text` (read from `path`), every `Include` expanded;
/// `home` anchors `~` and relative paths.
pub(crate) fn expand(path: &Path, text: &str, home: &Path) -> Result<Vec<Line>, ConfigError> {
    expand_at(path, text, home, 0)
}

fn expand_at(path: &Path, text: &str, home: &Path, depth: usize) -> Result<Vec<Line>, ConfigError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        // A line that does not split is left for `ssh::readconf` to report.
        let included = match lex(raw) {
            Ok(Some(d)) if d.keyword == "include" => include(&d.args, (path, line), home, depth)?,
            _ => Vec::new(),
        };
        lines.push(Line {
            text: raw.to_string(),
            origin: Origin::File {
                path: path.to_path_buf(),
                line,
            },
            included,
        });
    }
    Ok(lines)
}

/// The lines of the files one `Include` line (`at`: its file and line
/// number) names.
fn include(
    patterns: &[String],
    at: (&Path, usize),
    home: &Path,
    depth: usize,
) -> Result<Vec<Line>, ConfigError> {
    if depth + 1 >= MAX_DEPTH {
        return Err(ConfigError::Include {
            path: at.0.to_path_buf(),
            line: at.1,
            reason: format!("more than {MAX_DEPTH} nested Includes; is a file including itself?"),
        });
    }
    let mut lines = Vec::new();
    for pattern in patterns {
        for file in glob(&include_path(pattern, home)) {
            let text = match fs::read_to_string(&file) {
                Ok(text) => text,
                // Gone between listing and reading: as if it never matched.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path: file, source }),
            };
            lines.extend(expand_at(&file, &text, home, depth + 1)?);
        }
    }
    Ok(lines)
}

/// `~` and `~/x` are under the home directory; other relative paths are
/// under `~/.ssh`, as for OpenSSH's user configuration.
fn include_path(pattern: &str, home: &Path) -> PathBuf {
    if pattern == "~" {
        return home.to_path_buf();
    }
    if let Some(rest) = pattern.strip_prefix("~/") {
        return home.join(rest);
    }
    let path = Path::new(pattern);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        home.join(".ssh").join(path)
    }
}

// ---- glob(7) ----

/// The existing paths matching `pattern` (`*`, `?` and `[...]` within one
/// path component), sorted. As in glob(3), a wildcard does not match a
/// leading `.` of a name. A pattern without wildcards names itself.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str().to_string_lossy();
        if !has_wildcard(&part) {
            for path in &mut found {
                path.push(component);
            }
            continue;
        }
        found = found
            .iter()
            .flat_map(|dir| matching_entries(dir, &part))
            .collect();
    }
    found.retain(|p| p.exists());
    found.sort();
    found
}

fn has_wildcard(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

fn matching_entries(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let listing = if dir.as_os_str().is_empty() {
        fs::read_dir(".")
    } else {
        fs::read_dir(dir)
    };
    let Ok(entries) = listing else {
        return Vec::new();
    };
    let pattern: Vec<char> = pattern.chars().collect();
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let hidden_ok = !name.starts_with('.') || pattern.first() == Some(&'.');
            let chars: Vec<char> = name.chars().collect();
            (hidden_ok && fnmatch(&pattern, &chars)).then(|| dir.join(&name))
        })
        .collect()
}

/// fnmatch(3) without flags, on one path component.
fn fnmatch(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|skip| fnmatch(rest, &name[skip..])),
        Some(('?', rest)) => !name.is_empty() && fnmatch(rest, &name[1..]),
        Some(('[', rest)) => match (name.split_first(), bracket(rest)) {
            (Some((&c, name_rest)), Some((set, after))) => {
                set.matches(c) && fnmatch(after, name_rest)
            }
            // An unclosed bracket is a literal '['.
            (Some((&'[', name_rest)), None) => fnmatch(rest, name_rest),
            _ => false,
        },
        Some(('\\', [escaped, rest @ ..])) => {
            name.first() == Some(escaped) && fnmatch(rest, &name[1..])
        }
        Some((c, rest)) => name.first() == Some(c) && fnmatch(rest, &name[1..]),
    }
}

/// A `[...]` set: its ranges and whether it is negated.
struct CharSet {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharSet {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Parses the set after a `[`; returns it and the pattern after its `]`.
fn bracket(pattern: &[char]) -> Option<(CharSet, &[char])> {
    let (negated, mut rest) = match pattern.split_first() {
        Some(('!' | '^', rest)) => (true, rest),
        _ => (false, pattern),
    };
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        match rest {
            [']', after @ ..] if !first => return Some((CharSet { negated, ranges }, after)),
            [lo, '-', hi, after @ ..] if *hi != ']' => {
                ranges.push((*lo, *hi));
                rest = after;
            }
            [c, after @ ..] => {
                ranges.push((*c, *c));
                rest = after;
            }
            [] => return None,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        fnmatch(&p, &n)
    }

    #[test]
    fn fnmatch_wildcards_sets_and_escapes() {
        assert!(m("*.conf", "a.conf"));
        assert!(m("*", ""));
        assert!(!m("*.conf", "a.con"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[]]", "]"));
        assert!(m("[", "["));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
    }

    #[test]
    fn glob_lists_sorted_matches_and_skips_hidden_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.txt"] {
            fs::write(dir.path().join(name), "").expect("write");
        }
        fs::create_dir(dir.path().join("sub1")).expect("mkdir");
        fs::write(dir.path().join("sub1/x.conf"), "").expect("write");
        let found = glob(&dir.path().join("*.conf"));
        assert_eq!(
            found,
            vec![dir.path().join("a.conf"), dir.path().join("b.conf")]
        );
        assert_eq!(
            glob(&dir.path().join("sub?/*.conf")),
            vec![dir.path().join("sub1/x.conf")]
        );
        assert!(glob(&dir.path().join("none-*")).is_empty());
        assert!(glob(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn include_paths_are_under_home_ssh_unless_absolute_or_tilde() {
        let home = Path::new("/h");
        assert_eq!(
            include_path("conf.d/*", home),
            PathBuf::from("/h/.ssh/conf.d/*")
        );
        assert_eq!(include_path("~/other", home), PathBuf::from("/h/other"));
        assert_eq!(include_path("/etc/x", home), PathBuf::from("/etc/x"));
    }
}
