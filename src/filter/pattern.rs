//! One filter pattern and the wildcard matcher behind it, with rsync's
//! meanings ("PATTERN MATCHING RULES" in rsync(1)): `*` within a path
//! component, `**` across components, `?`, `[...]` classes, backslash
//! escapes, a leading `/` anchoring at the transfer root, a trailing `/`
//! matching directories only, and a pattern without a (non-trailing) `/` or
//! `**` matching the last component at any depth. Written here rather than
//! taken from a glob crate because those differ from rsync exactly where
//! rules depend on it (`**`, unanchored `a/b`, literal backslashes).

/// A compiled pattern. Paths it is matched against are relative to the
/// transfer root, `/`-separated, without a leading `/`.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// The pattern without its leading `/` (see `anchored`) and its
    /// trailing `/` (see `dir_only`).
    text: Box<[u8]>,
    anchored: bool,
    dir_only: bool,
    /// Holds `*`, `?` or `[`. Without them the pattern is compared as it
    /// is, backslashes included (rsync escapes only in wildcard patterns).
    wild: bool,
    /// Holds `**`, which matches across `/`.
    wild2: bool,
    /// Starts with `**`: it may then also match at the root (`**/x` is `x`).
    wild2_prefix: bool,
    /// Ends with `***`: the directory itself matches too (`dir/***`).
    wild3_suffix: bool,
    /// Slashes in the pattern, the anchoring one included, the trailing
    /// one not.
    slashes: usize,
    /// An anchored pattern read in a per-directory file above the transfer
    /// root: the path from that directory down to the root, which the
    /// matched path is taken to start with (rsync matches such rules
    /// against absolute paths).
    above: Option<Box<[u8]>>,
}

/// Where in the path a pattern may start matching.
enum Start {
    /// At the start of the (possibly shortened) path only.
    Front,
    /// At the last `n` components (`a/b` matches `x/a/b`).
    Trailing(usize),
    /// At the start and after every `/` (an unanchored infix `**`).
    AnySlash,
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Pattern {
        let mut text = pattern.as_bytes();
        let dir_only = text.len() > 1 && text.ends_with(b"/");
        if dir_only {
            text = &text[..text.len() - 1];
        }
        let slashes = text.iter().filter(|&&c| c == b'/').count();
        let wild = text.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
        let star2 = text.windows(2).position(|w| w == b"**");
        let wild2 = wild && star2.is_some();
        let anchored = text.first() == Some(&b'/');
        if anchored {
            text = &text[1..];
        }
        Pattern {
            anchored,
            dir_only,
            wild,
            wild2,
            wild2_prefix: wild2 && star2 == Some(0),
            wild3_suffix: wild2 && text.ends_with(b"***"),
            slashes,
            text: text.into(),
            above: None,
        }
    }

    /// An anchored pattern (`/...`) from a per-directory file in a parent
    /// of the transfer root, `above` being the path from that parent down
    /// to the root ("src" for a file in the parent of `src/`): "/src/a"
    /// then matches the transfer's "a".
    pub(crate) fn anchored_above(pattern: &str, above: &str) -> Pattern {
        let mut compiled = Pattern::new(pattern);
        let above = above.trim_matches('/');
        if compiled.anchored && !above.is_empty() {
            compiled.above = Some(above.as_bytes().into());
        }
        compiled
    }

    /// Whether `path` (of a directory when `is_dir`) matches.
    pub(crate) fn matches(&self, path: &str, is_dir: bool) -> bool {
        let path = path.trim_start_matches('/').as_bytes();
        if path.is_empty() || (self.dir_only && !is_dir) {
            return false;
        }
        let prefixed;
        let path = match &self.above {
            Some(above) => {
                prefixed = [above, &b"/"[..], path].concat();
                &prefixed[..]
            }
            None => path,
        };
        let whole_path = self.slashes > 0 || self.wild2;
        let mut subject: Vec<u8> = Vec::with_capacity(path.len() + 2);
        if !whole_path {
            let last = path.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
            subject.extend_from_slice(&path[last..]);
        } else {
            if self.wild2_prefix {
                // "**/x" also matches a top-level "x".
                subject.push(b'/');
            }
            subject.extend_from_slice(path);
        }
        if is_dir && self.wild3_suffix {
            // "dir/***" matches "dir" itself as "dir/".
            subject.push(b'/');
        }
        let start = if self.anchored {
            Start::Front
        } else if self.slashes > 0 && !self.wild2 {
            Start::Trailing(self.slashes + 1)
        } else if self.wild2 && !self.wild2_prefix {
            Start::AnySlash
        } else {
            Start::Front
        };
        let try_at = |from: usize| match self.wild {
            true => wildmatch(&self.text, &subject[from..]),
            false => *self.text == subject[from..],
        };
        match start {
            Start::Front => try_at(0),
            Start::Trailing(n) => try_at(trailing_components(&subject, n)),
            Start::AnySlash => {
                try_at(0) || (0..subject.len()).any(|i| subject[i] == b'/' && try_at(i + 1))
            }
        }
    }
}

/// Where the last `n` components of `path` begin (0 when it has fewer).
fn trailing_components(path: &[u8], n: usize) -> usize {
    let mut seen = 0;
    for (i, &c) in path.iter().enumerate().rev() {
        if c == b'/' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// Whether the whole of `text` matches the wildcard pattern.
pub(crate) fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    dowild(pattern, text) == Wild::Match
}

/// Results of matching a pattern's rest against a text's rest. The two
/// aborts cut the search short: no later start can match either (a `*`
/// ran out of text, or a single `*` met a `/` that only `**` could cross),
/// which keeps patterns with many stars from taking exponential time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wild {
    Match,
    NoMatch,
    AbortAll,
    AbortToStarStar,
}

fn dowild(p: &[u8], t: &[u8]) -> Wild {
    let (mut pi, mut ti) = (0, 0);
    while pi < p.len() {
        if ti == t.len() && p[pi] != b'*' {
            return Wild::NoMatch;
        }
        match p[pi] {
            b'\\' => {
                pi += 1;
                if p.get(pi) != Some(&t[ti]) {
                    return Wild::NoMatch;
                }
            }
            b'?' if t[ti] == b'/' => return Wild::NoMatch,
            b'?' => {}
            b'*' => return star(p, pi, t, ti),
            b'[' => match class(p, pi + 1, t[ti]) {
                Ok((true, end)) if t[ti] != b'/' => pi = end,
                Ok(_) => return Wild::NoMatch,
                Err(abort) => return abort,
            },
            c if c != t[ti] => return Wild::NoMatch,
            _ => {}
        }
        pi += 1;
        ti += 1;
    }
    match ti == t.len() {
        true => Wild::Match,
        false => Wild::NoMatch,
    }
}

/// A `*` or `**` at `p[pi]`, to match against `t[ti..]`.
fn star(p: &[u8], mut pi: usize, t: &[u8], mut ti: usize) -> Wild {
    pi += 1;
    let double = p.get(pi) == Some(&b'*');
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    if pi == p.len() {
        // A trailing "**" takes everything, a trailing "*" only what has
        // no more "/".
        return match double || !t[ti..].contains(&b'/') {
            true => Wild::Match,
            false => Wild::NoMatch,
        };
    }
    while ti < t.len() {
        match dowild(&p[pi..], &t[ti..]) {
            Wild::NoMatch if !double && t[ti] == b'/' => return Wild::AbortToStarStar,
            Wild::NoMatch => {}
            Wild::AbortToStarStar if double => {}
            other => return other,
        }
        ti += 1;
    }
    Wild::AbortAll
}

/// A character class starting after the `[` at `p[start]`: whether `c`
/// is in it, and the index of its closing `]`. A class the pattern never
/// closes, or a malformed `[:name:]`, ends the whole match.
fn class(p: &[u8], start: usize, c: u8) -> Result<(bool, usize), Wild> {
    let mut i = start;
    let negated = matches!(p.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    // The previous literal, for ranges ("a-z"); None after a range or a
    // named class, where a '-' is literal again.
    let mut prev: Option<u8> = None;
    let mut first = true;
    loop {
        let Some(&ch) = p.get(i) else {
            return Err(Wild::AbortAll);
        };
        if ch == b']' && !first {
            break;
        }
        first = false;
        match ch {
            b'\\' => {
                i += 1;
                let &lit = p.get(i).ok_or(Wild::AbortAll)?;
                matched |= c == lit;
                prev = Some(lit);
            }
            b'-' if prev.is_some() && p.get(i + 1).is_some_and(|&n| n != b']') => {
                i += 1;
                let mut hi = p[i];
                if hi == b'\\' {
                    i += 1;
                    hi = *p.get(i).ok_or(Wild::AbortAll)?;
                }
                let lo = prev.unwrap_or(0);
                matched |= lo <= c && c <= hi;
                prev = None;
            }
            b'[' if p.get(i + 1) == Some(&b':') => match named_class(p, i + 2) {
                Some((name, end)) => {
                    matched |= in_named_class(name, c).ok_or(Wild::AbortAll)?;
                    i = end;
                    prev = None;
                }
                // No ":]": the '[' is an ordinary member.
                None => {
                    matched |= c == b'[';
                    prev = Some(b'[');
                }
            },
            _ => {
                matched |= c == ch;
                prev = Some(ch);
            }
        }
        i += 1;
    }
    Ok((matched != negated, i))
}

/// The name of a `[:name:]` starting at `p[start]`, and the index of its
/// closing `]`; None when it is not closed by `:]`.
fn named_class(p: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let close = start + p[start..].iter().position(|&c| c == b']')?;
    if close < start + 1 || p[close - 1] != b':' {
        return None;
    }
    Some((&p[start..close - 1], close))
}

/// Whether `c` is in the POSIX class `name` (ASCII, as in the C locale);
/// None for a name POSIX does not have.
fn in_named_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern).matches(path, false)
    }

    fn dir(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern).matches(path, true)
    }

    #[test]
    fn wildcards_as_rsync_defines_them() {
        assert!(wildmatch(b"*.o", b"main.o"));
        assert!(!wildmatch(b"*.o", b"src/main.o"), "* stops at /");
        assert!(wildmatch(b"**.o", b"src/main.o"), "** crosses /");
        assert!(wildmatch(b"a?c", b"abc"));
        assert!(!wildmatch(b"a?c", b"a/c"), "? is not /");
        assert!(wildmatch(b"[a-c]x", b"bx"));
        assert!(!wildmatch(b"[!a-c]x", b"bx"));
        assert!(wildmatch(b"[^a-c]x", b"dx"));
        assert!(wildmatch(b"[]]", b"]"), "a leading ] is a member");
        assert!(wildmatch(b"[a-]", b"-"), "a trailing - is a member");
        assert!(wildmatch(b"[[:digit:]]*", b"7up"));
        assert!(!wildmatch(b"[[:upper:]]*", b"lower"));
        assert!(
            !wildmatch(b"[[:bogus:]]", b"x"),
            "unknown classes match nothing"
        );
        assert!(!wildmatch(b"a[/]b", b"a/b"), "classes never match /");
        assert!(wildmatch(b"\\*", b"*"));
        assert!(!wildmatch(b"\\*", b"x"));
        assert!(
            !wildmatch(b"[ab", b"a"),
            "an unclosed class matches nothing"
        );
        assert!(wildmatch(b"a*b*c*d", b"axxbyyczzd"));
        assert!(!wildmatch(b"*a*a*a*a*a*a*a*a*b", &[b'a'; 40]));
    }

    #[test]
    fn patterns_without_a_slash_match_the_last_component() {
        assert!(m("*.o", "main.o"));
        assert!(m("*.o", "deep/down/main.o"));
        assert!(m("foo", "x/y/foo"));
        assert!(!m("foo", "x/foo/y"));
        assert!(!m("foo", "xfoo"));
    }

    /// rsync(1): "foo/bar would match the last 2 elements of the path".
    #[test]
    fn unanchored_patterns_with_a_slash_match_trailing_components() {
        assert!(m("foo/bar", "foo/bar"));
        assert!(m("foo/bar", "x/foo/bar"));
        assert!(!m("foo/bar", "xfoo/bar"));
        assert!(!m("foo/bar", "foo/bar/x"));
        assert!(m("foo/*/bar", "foo/x/bar"));
        assert!(m("foo/*/bar", "a/foo/x/bar"));
        assert!(!m("foo/*/bar", "foo/x/y/bar"));
    }

    #[test]
    fn a_leading_slash_anchors_at_the_root() {
        assert!(m("/foo", "foo"));
        assert!(!m("/foo", "x/foo"));
        assert!(m("/foo/bar", "foo/bar"));
        assert!(!m("/foo/bar", "x/foo/bar"));
        assert!(m("/*.c", "main.c"));
        assert!(!m("/*.c", "src/main.c"));
    }

    /// rsync(1)'s examples: "- /foo/**/bar would exclude any file/directory
    /// named bar that was two or more levels below a top-level directory
    /// named foo (note that /foo/bar is not excluded by this)".
    #[test]
    fn double_stars_cross_directories() {
        assert!(m("/foo/**/bar", "foo/x/bar"));
        assert!(m("/foo/**/bar", "foo/x/y/bar"));
        assert!(!m("/foo/**/bar", "foo/bar"));
        assert!(m("/foo/**", "foo/a/b"));
        assert!(!m("/foo/**", "x/foo/a"));
        assert!(m("foo/**", "x/foo/a/b"), "unanchored ** tries every /");
        assert!(m("**/bar", "bar"), "a leading ** also matches at the root");
        assert!(m("**/bar", "a/b/bar"));
        assert!(m("a**z", "a/b/z"));
    }

    #[test]
    fn a_trailing_slash_matches_directories_only() {
        assert!(dir("cache/", "cache"));
        assert!(dir("cache/", "a/cache"));
        assert!(!m("cache/", "cache"));
        assert!(dir("*/", "anything"));
        assert!(!m("*/", "file"));
    }

    #[test]
    fn triple_star_matches_the_directory_and_its_contents() {
        assert!(dir("/dir/***", "dir"));
        assert!(m("/dir/***", "dir/a"));
        assert!(m("/dir/***", "dir/a/b"));
        assert!(!m("/dir/***", "dir"), "as a file, dir is not dir/");
        assert!(!m("/dir/***", "other/a"));
    }

    /// Checked against rsync 3.5.0: "- /src/a/b" in the .rules of the
    /// parent of `src/` (read with `-f': /.rules'`) excludes the transfer's
    /// a/b; "- /a/x" there matches nothing.
    #[test]
    fn patterns_from_above_the_root_see_the_path_down_to_it() {
        let p = Pattern::anchored_above("/src/a/b", "src");
        assert!(p.matches("a/b", true));
        assert!(!p.matches("b", true));
        let q = Pattern::anchored_above("/a/x", "src");
        assert!(!q.matches("a/x", false));
        let deep = Pattern::anchored_above("/t/*/a", "t/src");
        assert!(deep.matches("a", false));
        let loose = Pattern::anchored_above("a/x", "src");
        assert!(loose.matches("a/x", false), "unanchored patterns ignore it");
    }

    #[test]
    fn backslashes_escape_only_in_wildcard_patterns() {
        assert!(m("foo\\bar", "foo\\bar"), "literal pattern: backslash kept");
        assert!(m("foo\\*", "foo*"));
        assert!(!m("foo\\*", "food"));
        assert!(m("foo\\\\bar*", "foo\\barx"));
    }
}
