//! `--usermap`, `--groupmap` and `--chown` as rsync reads them (uidlist.c
//! `parse_name_map`): comma-separated `FROM:TO` pairs, the first that
//! matches an id wins. FROM is a number, a range `LOW-HIGH`, a name, or a
//! wildcard pattern matched against the source's name (`*` also matches an
//! id that has none); TO is a name the receiving side knows, or a number.
//! `--chown=USER:GROUP` is `--usermap=*:USER --groupmap=*:GROUP`.

/// One map's rules, as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct IdMap {
    pub rules: Vec<(Match, String)>,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// An id, or ids from the first to the second.
    Ids(u32, u32),
    /// A name, exactly.
    Name(String),
    /// A wildcard pattern (`*`, `?`, `[`) against the name, `""` where the
    /// id has none.
    Wild(String),
}

impl Match {
    pub(crate) fn matches(&self, id: u32, name: &str) -> bool {
        match self {
            Match::Ids(low, high) => (*low..=*high).contains(&id),
            Match::Name(wanted) => wanted == name,
            Match::Wild(pattern) => crate::filter::wildmatch(pattern.as_bytes(), name.as_bytes()),
        }
    }
}

impl IdMap {
    /// rsync's syntax; `what` names the option in errors (`usermap`).
    pub(crate) fn parse(text: &str, what: &str) -> Result<IdMap, String> {
        let mut rules = Vec::new();
        for pair in text.split(',') {
            let Some((from, to)) = pair.split_once(':') else {
                return Err(format!("No colon found in --{what}: {pair}"));
            };
            if to.is_empty() {
                return Err(format!("No name found after colon --{what}: {pair}"));
            }
            rules.push((Self::from(from, what, pair)?, to.to_string()));
        }
        Ok(IdMap { rules })
    }

    fn from(from: &str, what: &str, pair: &str) -> Result<Match, String> {
        if from.starts_with(|c: char| c.is_ascii_digit()) {
            let invalid = || format!("Invalid number in --{what}: {pair}");
            let number = |n: &str| n.parse::<u32>().map_err(|_| invalid());
            return match from.split_once('-') {
                Some((low, high)) => Ok(Match::Ids(number(low)?, number(high)?)),
                None => number(from).map(|id| Match::Ids(id, id)),
            };
        }
        match from.contains(['*', '?', '[']) {
            true => Ok(Match::Wild(from.to_string())),
            false => Ok(Match::Name(from.to_string())),
        }
    }

    /// `--chown=USER:GROUP`: the user map and the group map it stands for
    /// (None for a part left empty).
    pub(crate) fn chown(text: &str) -> (Option<IdMap>, Option<IdMap>) {
        let (user, group) = text.split_once(':').unwrap_or((text, ""));
        let all = |to: &str| {
            (!to.is_empty()).then(|| IdMap {
                rules: vec![(Match::Wild("*".into()), to.to_string())],
            })
        };
        (all(user), all(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsyncs_syntax() {
        let map = IdMap::parse("0-99:nobody,wheel:root,*ob*:7,4242:alice", "usermap").unwrap();
        let r = &map.rules;
        assert_eq!(r[0], (Match::Ids(0, 99), "nobody".into()));
        assert_eq!(r[1], (Match::Name("wheel".into()), "root".into()));
        assert_eq!(r[2], (Match::Wild("*ob*".into()), "7".into()));
        assert_eq!(r[3], (Match::Ids(4242, 4242), "alice".into()));
        assert!(r[0].0.matches(99, "x") && !r[0].0.matches(100, "x"));
        assert!(r[2].0.matches(5, "bob") && !r[2].0.matches(5, "alice"));
        let err = |text| IdMap::parse(text, "groupmap").unwrap_err();
        assert_eq!(err("a"), "No colon found in --groupmap: a");
        assert_eq!(err("a:"), "No name found after colon --groupmap: a:");
        assert_eq!(err("1x:a"), "Invalid number in --groupmap: 1x:a");
        assert_eq!(err("1-2-3:a"), "Invalid number in --groupmap: 1-2-3:a");
    }

    #[test]
    fn chown_is_both_maps_of_everything() {
        let (user, group) = IdMap::chown("alice:staff");
        assert!(user.unwrap().rules[0].0.matches(4242, ""));
        assert_eq!(group.unwrap().rules[0].1, "staff");
        assert_eq!(IdMap::chown(":staff").0, None);
        assert_eq!(IdMap::chown("alice").1, None);
    }
}
