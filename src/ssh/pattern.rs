//! OpenSSH's host-pattern matching (match.c): `*` matches any run of
//! characters, `?` exactly one, everything else itself; a `!pattern` that
//! matches rejects the name outright, and otherwise some plain pattern has
//! to match. `Host` lines and `Match host`/`originalhost`/`user`/`localuser`
//! all use this one matcher; they differ in where the patterns come from
//! (separate words, or one comma-separated list) and in letter case.

/// match.c's `match_pattern`: whether all of `name` matches `pattern`,
/// case-sensitively. Runs the pattern as an NFA, as OpenSSH does, so that
/// patterns with many `*` cannot take exponential time.
pub(crate) fn matches(name: &str, pattern: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let mut states = vec![false; pattern.len() + 1];
    states[0] = true;
    skip_stars(&mut states, &pattern);
    for c in name.chars() {
        let mut next = vec![false; pattern.len() + 1];
        for (i, &p) in pattern.iter().enumerate() {
            if !states[i] {
                continue;
            }
            match p {
                '*' => next[i] = true,
                '?' => next[i + 1] = true,
                p if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        skip_stars(&mut next, &pattern);
        if !next.contains(&true) {
            return false;
        }
        states = next;
    }
    states[pattern.len()]
}

/// A `*` may match nothing: a state before one also reaches the state after it.
fn skip_stars(states: &mut [bool], pattern: &[char]) {
    for (i, &p) in pattern.iter().enumerate() {
        if states[i] && p == '*' {
            states[i + 1] = true;
        }
    }
}

/// Some pattern matches `name` and no negated (`!`) one does.
pub(crate) fn any_matches<'a>(name: &str, patterns: impl IntoIterator<Item = &'a str>) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if matches(name, negated) => return false,
            Some(_) => {}
            None => matched |= matches(name, pattern),
        }
    }
    matched
}

/// match.c's `match_pattern_list`: `list` is comma-separated. With
/// `fold_case` both sides are lower-cased first (`match_hostname`, used
/// for `Match host` and `Match originalhost`); user names are compared as
/// they are.
pub(crate) fn list_matches(name: &str, list: &str, fold_case: bool) -> bool {
    if fold_case {
        let list = list.to_ascii_lowercase();
        any_matches(&name.to_ascii_lowercase(), list.split(','))
    } else {
        any_matches(name, list.split(','))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        assert!(matches("web01", "web??"));
        assert!(!matches("web1", "web??"));
        assert!(matches("a.prod", "*.prod"));
        assert!(matches("", "*"));
        assert!(matches("abc", "a*c"));
        assert!(matches("ac", "a*c"));
        assert!(!matches("abd", "a*c"));
        assert!(!matches("WEB01", "web??"), "case-sensitive");
        assert!(matches("", ""));
        assert!(!matches("x", ""));
        let many = "*a".repeat(40) + "b";
        assert!(!matches(&"a".repeat(60), &many), "no blow-up");
    }

    #[test]
    fn negation_rejects_and_lists_split_on_commas() {
        assert!(any_matches("web1", ["web*", "!web9"]));
        assert!(!any_matches("web9", ["web*", "!web9"]));
        assert!(!any_matches("other", ["!web9"]));
        assert!(list_matches("db", "web*,db", false));
        assert!(!list_matches("db", "*,!db", false));
        assert!(list_matches("Web1", "WEB*", true));
        assert!(!list_matches("Alice", "alice", false));
    }
}
