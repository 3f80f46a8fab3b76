//! Where the files that filter rules name are. A directory of the source
//! is given by its path from the transfer root ("" for the root, "a/b"),
//! which climbs above the root with leading ".." components, or by an
//! absolute path. Paths are cleaned as rsync cleans them (`clean_fname`):
//! textually, so "a/../b" is "b" whatever "a" is.

/// `path` without empty or "." components, and without the ".." that a
/// component before them cancels. A relative result may start with "..",
/// and is "" for the root; at "/" a ".." stays at "/".
pub(crate) fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            _ => parts.push(part),
        }
    }
    match absolute {
        true => format!("/{}", parts.join("/")),
        false => parts.join("/"),
    }
}

/// `name` taken from the directory `dir`; an absolute `name` stays as it is.
pub(crate) fn resolve(dir: &str, name: &str) -> String {
    match name.starts_with('/') || dir.is_empty() {
        true => clean(name),
        false => clean(&format!("{dir}/{name}")),
    }
}

/// The directory part ("" when none, "/" at the top) and the last
/// component of a cleaned path.
pub(crate) fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// How many levels above the transfer root a cleaned relative path climbs
/// first, and what follows.
fn climbs(path: &str) -> (usize, &str) {
    let mut rest = path;
    let mut levels = 0;
    while let Some(after) = rest.strip_prefix("..") {
        match after {
            "" => return (levels + 1, ""),
            _ if after.starts_with('/') => {
                levels += 1;
                rest = &after[1..];
            }
            _ => break,
        }
    }
    (levels, rest)
}

/// The cleaned absolute `path` from the transfer root at `root_abs`.
pub(crate) fn from_root(path: &str, root_abs: &str) -> String {
    let parts = |p: &'_ str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (target, root) = (parts(path), parts(root_abs));
    let common = target.iter().zip(&root).take_while(|(a, b)| a == b).count();
    let mut out = vec!["..".to_string(); root.len() - common];
    out.extend(target[common..].iter().cloned());
    out.join("/")
}

/// A directory `levels` above the transfer root at `root_abs`: its
/// absolute path, and the path from it down to the root.
pub(crate) fn above_root(root_abs: &str, levels: usize) -> (String, String) {
    let parts: Vec<&str> = root_abs.split('/').filter(|c| !c.is_empty()).collect();
    let cut = parts.len().saturating_sub(levels);
    (
        format!("/{}", parts[..cut].join("/")),
        parts[cut..].join("/"),
    )
}

/// rsync's scan for a per-directory file named with a path: when `start`
/// is a parent of `dir` (the directory the rule takes effect in, inside the
/// transfer), the directories from `start` down to `dir`'s parent, top
/// first; nothing otherwise. Above the root they are given as "..",
/// "../..", and so on.
pub(crate) fn scan_dirs(start: &str, dir: &str) -> Vec<String> {
    let (levels, rest) = climbs(start);
    let within: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    let prefixes = |from: usize| -> Vec<String> {
        (from..within.len())
            .map(|n| within[..n].join("/"))
            .collect()
    };
    if levels > 0 {
        if !rest.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<String> = (1..=levels)
            .rev()
            .map(|n| vec![".."; n].join("/"))
            .collect();
        out.extend(prefixes(0));
        return out;
    }
    let start: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    match start.len() < within.len() && within.starts_with(&start) {
        true => prefixes(start.len()),
        false => Vec::new(),
    }
}

/// How many levels above the transfer root a directory from [`scan_dirs`]
/// is (0 inside the transfer).
pub(crate) fn levels_above(dir: &str) -> usize {
    climbs(dir).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_textually() {
        assert_eq!(clean("a/./b//c/"), "a/b/c");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("../.."), "../..");
        assert_eq!(clean("/a/../../b"), "/b");
        assert_eq!(clean("."), "");
        assert_eq!(clean("/"), "/");
        assert_eq!(resolve("a/b", "../x"), "a/x");
        assert_eq!(resolve("a", "/etc/x"), "/etc/x");
        assert_eq!(resolve("", "x"), "x");
        assert_eq!(split("a/b/c"), ("a/b", "c"));
        assert_eq!(split("/c"), ("/", "c"));
        assert_eq!(split("c"), ("", "c"));
    }

    #[test]
    fn absolute_paths_seen_from_the_root() {
        assert_eq!(from_root("/t/src/a", "/t/src"), "a");
        assert_eq!(from_root("/t", "/t/src"), "..");
        assert_eq!(from_root("/", "/t/src"), "../..");
        assert_eq!(from_root("/t/other", "/t/src"), "../other");
        assert_eq!(above_root("/tmp/t/src", 2), ("/tmp".into(), "t/src".into()));
        assert_eq!(
            above_root("/tmp/t/src", 3),
            ("/".into(), "tmp/t/src".into())
        );
    }

    /// Checked against rsync 3.5.0 (`--debug=FILTER2` lists the files
    /// read): `-f': ../.rules' mid/src/` reads mid/.rules before
    /// mid/src/.rules; `-f': sub/.rules'` and `-f': ./.rules'` scan
    /// nothing.
    #[test]
    fn scans_run_from_a_parent_down_to_the_directorys_parent() {
        assert_eq!(scan_dirs("../..", ""), ["../..", ".."]);
        assert_eq!(scan_dirs("..", "src"), ["..", ""]);
        assert_eq!(scan_dirs("", "a/b"), ["", "a"]);
        assert_eq!(scan_dirs("a", "a/b/c"), ["a", "a/b"]);
        assert!(scan_dirs("", "").is_empty(), "the directory itself");
        assert!(scan_dirs("sub", "").is_empty(), "below it");
        assert!(scan_dirs("../other", "").is_empty(), "beside it");
        assert!(scan_dirs("b", "a/c").is_empty());
        assert_eq!(levels_above("../.."), 2);
        assert_eq!(levels_above("a"), 0);
    }
}
