//! Reads an ssh config file into lines the way OpenSSH sees them, with every
//! `Include` replaced by the files it names, so that the rest of
//! `ssh::config` (and ssh2-config under it) never meets an `Include`.
//!
//! ssh2-config's own `Include` handling differs from OpenSSH's in ways that
//! change results: it reads relative paths under `$HOME/.ssh` only through
//! its own home lookup, bypasses the fixes `config::prepare` makes (first
//! value wins within a block, accumulating `IdentityFile`, `Match`), and
//! after an included file the rest of the enclosing `Host` block is applied
//! to the last host of the included file. So inclusion happens here, as
//! OpenSSH's readconf.c does it:
//!
//! - each argument is a path or a glob(7) pattern; `~` is the home
//!   directory, and a relative path is under `~/.ssh` (ferry reads user
//!   configs only); matches are read in lexical order, no match is no error;
//! - an `Include` inside a `Host` or `Match` block applies only when that
//!   block applies to the host being resolved (OpenSSH reads the file but
//!   lets nothing in it match); since that depends on the host, the lines
//!   are built per host alias;
//! - after the included lines, the enclosing block's header is repeated, so
//!   the lines that follow the `Include` keep applying to the enclosing block;
//! - nesting is limited to 16 levels, as in OpenSSH.
//!
//! Every line remembers where it came from (a file and line number, or an
//! `-o` option) for error messages.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ssh2_config::HostClause;

use super::config::ConfigError;

/// OpenSSH's READCONF_MAX_DEPTH.
const MAX_DEPTH: usize = 16;

/// One config line and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub text: String,
    pub origin: Origin,
}

/// Where a config line came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An `ssh -o` option, as given.
    Option(String),
    /// A line of a config file (1-based).
    File { path: PathBuf, line: usize },
}

/// What inclusion needs to know besides the file.
pub(crate) struct Context<'a> {
    /// The host alias being resolved (as typed): `Host` patterns match it.
    pub alias: &'a str,
    pub home: &'a Path,
    /// Turns a `Match` line into the `Host` line it is treated as.
    pub translate_match: &'a dyn Fn(&str, usize) -> String,
}

/// The lines of `text` (read from `path`) with every applicable `Include`
/// expanded.
pub(crate) fn expand(path: &Path, text: &str, ctx: &Context) -> Result<Vec<Line>, ConfigError> {
    let mut out = Vec::new();
    expand_into(path, text, ctx, 0, &mut out)?;
    Ok(out)
}

fn expand_into(
    path: &Path,
    text: &str,
    ctx: &Context,
    depth: usize,
    out: &mut Vec<Line>,
) -> Result<(), ConfigError> {
    // The header of the block being read: `None` before the first one,
    // where everything applies.
    let mut header: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: index + 1,
        };
        let content = raw.split('#').next().unwrap_or_default().trim();
        let (keyword, args) = split_keyword(content);
        match keyword.to_ascii_lowercase().as_str() {
            "host" | "match" => header = Some(content.to_string()),
            "include" => {
                include(args, header.as_deref(), &origin, ctx, depth, out)?;
                continue;
            }
            _ => {}
        }
        out.push(Line {
            text: raw.to_string(),
            origin,
        });
    }
    Ok(())
}

/// Expands one `Include` line found under `header`.
fn include(
    args: &str,
    header: Option<&str>,
    origin: &Origin,
    ctx: &Context,
    depth: usize,
    out: &mut Vec<Line>,
) -> Result<(), ConfigError> {
    // The Include line itself becomes blank, keeping the line count.
    out.push(Line {
        text: String::new(),
        origin: origin.clone(),
    });
    if args.is_empty() {
        return Err(include_error(origin, "Include needs a file name".into()));
    }
    if !header.is_none_or(|h| block_applies(h, origin, ctx)) {
        return Ok(());
    }
    if depth + 1 >= MAX_DEPTH {
        return Err(include_error(
            origin,
            format!("more than {MAX_DEPTH} nested Includes; is a file including itself?"),
        ));
    }
    for pattern in args.split_whitespace() {
        for file in glob(&include_path(pattern, ctx.home)) {
            let text = match fs::read_to_string(&file) {
                Ok(text) => text,
                // Gone between listing and reading: as if it never matched.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path: file, source }),
            };
            expand_into(&file, &text, ctx, depth + 1, out)?;
        }
    }
    // Lines after the Include belong to the enclosing block again.
    out.push(Line {
        text: header.unwrap_or("Host *").to_string(),
        origin: origin.clone(),
    });
    Ok(())
}

fn include_error(origin: &Origin, reason: String) -> ConfigError {
    match origin {
        Origin::File { path, line } => ConfigError::Include {
            path: path.clone(),
            line: *line,
            reason,
        },
        Origin::Option(option) => ConfigError::Option {
            option: option.clone(),
            reason,
        },
    }
}

/// Whether the block opened by `header` (a `Host` or `Match` line) applies
/// to the alias being resolved.
fn block_applies(header: &str, origin: &Origin, ctx: &Context) -> bool {
    let (keyword, args) = split_keyword(header);
    let host_line = if keyword.eq_ignore_ascii_case("match") {
        let line = match origin {
            Origin::File { line, .. } => *line,
            Origin::Option(_) => 0,
        };
        (ctx.translate_match)(args, line)
    } else {
        header.to_string()
    };
    host_matches(split_keyword(&host_line).1, ctx.alias)
}

/// OpenSSH's `Host` rule: some pattern matches and no negated one does.
/// Matching is ssh2-config's, as for every other block.
pub(crate) fn host_matches(patterns: &str, alias: &str) -> bool {
    let mut matched = false;
    for word in patterns.split_whitespace() {
        let (negated, pattern) = match word.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        if HostClause::new(pattern.to_string(), negated).intersects(alias) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
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

/// Splits `Keyword args`, `Keyword=args` or `Keyword = args`.
pub(crate) fn split_keyword(content: &str) -> (&str, &str) {
    let end = content
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(content.len());
    let (keyword, rest) = content.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (keyword, rest)
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

    #[test]
    fn host_patterns_match_like_openssh() {
        assert!(host_matches("web* !web9", "web1"));
        assert!(!host_matches("web* !web9", "web9"));
        assert!(!host_matches("!web9", "other"));
        assert!(host_matches("*", "x"));
    }
}
