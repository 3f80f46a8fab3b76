//! Reads ssh config lines for one host the way OpenSSH's readconf.c does,
//! in one pass: splits each line into a keyword and its arguments, tracks
//! whether the current `Host` or `Match` block applies to the host, and
//! keeps the value each keyword first obtains ([`Params`]). Interpreting
//! the values (tokens, defaults, `none`) is `ssh::config`'s job.
//!
//! - A line is `Keyword value`, `Keyword=value` or `Keyword = value`;
//!   keywords are case-insensitive; arguments are split at blanks, `"..."`
//!   and `'...'` quote, a word starting with `#` ends the line.
//! - First value wins: once a keyword has a value, later lines for it are
//!   read (and checked) but change nothing, whichever block they are in.
//!   `IdentityFile` and the other keywords in [`ACCUMULATING`] collect every
//!   value instead; ProxyJump and ProxyCommand share one value.
//! - `Host` patterns match the alias as typed, case-sensitively. `Match`
//!   takes `all`, `host`, `originalhost`, `user` and `localuser` (each may
//!   be negated with `!`, all must hold); a `Match` with any other
//!   criterion (`exec`, `canonical`, `final`, ...) applies to nothing:
//!   ferry cannot evaluate it, and applying a block to the wrong host is
//!   worse than ignoring it.
//! - An `Include` inside a block that does not apply is read, but nothing
//!   in it applies (readconf.c's SSHCONF_NEVERMATCH); after the included
//!   lines the enclosing block applies again as before.
//! - Values ferry reads are checked on every line, applying or not, as
//!   OpenSSH does: a bad `Port` anywhere in the file is an error.

use std::collections::HashSet;

use super::config::ConfigError;
use super::include::{Line, Origin};
use super::pattern;

/// Keywords whose every applying value counts, in order, instead of the
/// first (readconf.c appends to a list for these).
const ACCUMULATING: &[&str] = &[
    "identityfile",
    "certificatefile",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "sendenv",
    "setenv",
];

/// Keywords ferry reads that take exactly one argument (ProxyJump and
/// ProxyCommand take the rest of the line; the known_hosts files several).
const SINGLE: &[&str] = &[
    "addressfamily",
    "batchmode",
    "compression",
    "connecttimeout",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "port",
    "serveralivecountmax",
    "serveraliveinterval",
    "stricthostkeychecking",
    "user",
];

pub(super) use crate::error::config::LineError;

/// One config line, split.
#[derive(Debug)]
pub(crate) struct Directive<'a> {
    /// Lower-cased.
    pub keyword: String,
    /// As written, for messages.
    pub name: &'a str,
    /// Everything after the keyword (and its `=`) as written; ProxyJump and
    /// ProxyCommand take it whole.
    pub rest: &'a str,
    /// The arguments, unquoted.
    pub args: Vec<String>,
}

/// Splits one line; `None` for a blank or comment line.
pub(crate) fn lex(text: &str) -> Result<Option<Directive<'_>>, LineError> {
    let (keyword, rest) = split_keyword(text.trim());
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    if rest.is_empty() {
        return Err(LineError::MissingArgument(keyword.to_string()));
    }
    Ok(Some(Directive {
        keyword: keyword.to_ascii_lowercase(),
        name: keyword,
        rest,
        args: split_args(rest)?,
    }))
}

/// Splits `Keyword args`, `Keyword=args` or `Keyword = args` (one `=` at most).
pub(crate) fn split_keyword(content: &str) -> (&str, &str) {
    let end = content
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(content.len());
    let (keyword, rest) = content.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (keyword, rest)
}

/// OpenSSH's `argv_split`: words separated by blanks, `"` and `'` quote,
/// a backslash escapes a quote, a backslash or (unquoted) a space; a word
/// that starts with `#` starts a comment.
fn split_args(text: &str) -> Result<Vec<String>, LineError> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(args),
            Some(_) => args.push(one_arg(&mut chars)?),
        }
    }
}

fn one_arg(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<String, LineError> {
    let mut arg = String::new();
    let mut quote = None;
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                let escaped =
                    |n: &char| matches!(n, '\'' | '"' | '\\') || (*n == ' ' && quote.is_none());
                arg.push(chars.next_if(escaped).unwrap_or('\\'));
            }
            (' ' | '\t', None) => return Ok(arg),
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (c, _) => arg.push(c),
        }
    }
    match quote {
        Some(_) => Err(LineError::Quotes),
        None => Ok(arg),
    }
}

/// Checks the arguments of the keywords ferry reads.
fn check(d: &Directive) -> Result<(), LineError> {
    let keyword = d.keyword.as_str();
    match keyword {
        "port" => {
            let value = single(d)?;
            port(value)
                .map(drop)
                .ok_or_else(|| LineError::BadPort(value.to_string()))
        }
        "connecttimeout" | "serveraliveinterval" => {
            let value = single(d)?;
            match value == "none" || seconds(value).is_some() {
                true => Ok(()),
                false => Err(LineError::BadTime {
                    keyword: d.name.to_string(),
                    value: value.to_string(),
                }),
            }
        }
        k if SINGLE.contains(&k) => single(d).map(drop),
        "userknownhostsfile" | "globalknownhostsfile" => files(d),
        "host" | "include" if d.args.iter().any(String::is_empty) => {
            Err(LineError::EmptyArgument(d.name.to_string()))
        }
        _ => Ok(()),
    }
}

/// The one argument of `d`.
fn single<'a>(d: &'a Directive) -> Result<&'a str, LineError> {
    match d.args.as_slice() {
        [one] if !one.is_empty() => Ok(one),
        [] | [_] => Err(LineError::MissingArgument(d.name.to_string())),
        _ => Err(LineError::ExtraArguments(d.name.to_string())),
    }
}

/// A list of files, or `none` alone.
fn files(d: &Directive) -> Result<(), LineError> {
    if d.args.is_empty() {
        return Err(LineError::MissingArgument(d.name.to_string()));
    }
    if d.args.iter().any(String::is_empty) {
        return Err(LineError::EmptyArgument(d.name.to_string()));
    }
    let none = d.args.iter().any(|a| a.eq_ignore_ascii_case("none"));
    match none && d.args.len() > 1 {
        true => Err(LineError::NoneNotAlone(d.name.to_string())),
        false => Ok(()),
    }
}

/// A port number, 1 to 65535 (OpenSSH's `a2port`, without service names).
pub(crate) fn port(value: &str) -> Option<u16> {
    value.parse().ok().filter(|&p| p != 0)
}

/// OpenSSH's `convtime`: seconds, or numbers each followed by a unit
/// (`s`, `m`, `h`, `d`, `w`), as in `90` or `1m30s`.
pub(crate) fn seconds(value: &str) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().ok()?;
        let mut after = rest[digits..].chars();
        let unit = match after.next().map(|c| c.to_ascii_lowercase()) {
            None | Some('s') => 1,
            Some('m') => 60,
            Some('h') => 60 * 60,
            Some('d') => 24 * 60 * 60,
            Some('w') => 7 * 24 * 60 * 60,
            Some(_) => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = after.as_str();
    }
    (total <= i32::MAX as u64).then_some(total)
}

/// An applying line: the value it gave its keyword.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub keyword: String,
    pub args: Vec<String>,
    /// The arguments as written (see [`Directive::rest`]).
    pub rest: String,
    pub origin: Origin,
}

/// The values that apply to one host: for each keyword the first one, or
/// for [`ACCUMULATING`] ones every one, in order.
#[derive(Debug, Default)]
pub(crate) struct Params {
    settings: Vec<Setting>,
    /// The slots (see [`slot`]) that have their value.
    taken: HashSet<String>,
}

impl Params {
    /// The setting of `keyword` (lower-case), if any line gave it one.
    pub(crate) fn get(&self, keyword: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.keyword == keyword)
    }

    /// The first argument of `keyword`'s setting.
    pub(crate) fn value(&self, keyword: &str) -> Option<&str> {
        self.get(keyword)?.args.first().map(String::as_str)
    }

    /// Every setting of an accumulating `keyword`, in order.
    pub(crate) fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Setting> {
        self.settings.iter().filter(move |s| s.keyword == keyword)
    }

    fn keep(&mut self, setting: Setting) {
        if let Some(slot) = slot(&setting.keyword) {
            if !self.taken.insert(slot.to_string()) {
                return;
            }
        }
        self.settings.push(setting);
    }
}

/// The value `keyword` competes for under "first value wins": `None` for
/// the accumulating ones. ProxyJump and ProxyCommand share one (readconf.c
/// ignores either when the other is set); every other keyword has its own.
fn slot(keyword: &str) -> Option<&str> {
    match keyword {
        k if ACCUMULATING.contains(&k) => None,
        "proxycommand" => Some("proxyjump"),
        k => Some(k),
    }
}

/// Whom the lines are read for.
pub(crate) struct Target<'a> {
    /// The host as typed: `Host` and `Match originalhost` patterns match it.
    pub alias: &'a str,
    /// `-l` or `user@`: beats any `User` line, so `Match user` sees it.
    pub user: Option<&'a str>,
    /// The local login name: `Match localuser`, and `Match user` while no
    /// user is known.
    pub local_user: &'a str,
}

/// Walks `lines` (the `-o` lines first, then the config file's) for
/// `target` and returns the values that apply.
pub(crate) fn apply(lines: &[Line], target: &Target) -> Result<Params, ConfigError> {
    let mut walk = Walk {
        target,
        params: Params::default(),
        active: true,
    };
    walk.lines(lines, false)?;
    Ok(walk.params)
}

struct Walk<'a> {
    target: &'a Target<'a>,
    params: Params,
    /// Whether the current block applies (lines before the first `Host`
    /// or `Match` apply to every host).
    active: bool,
}

impl Walk<'_> {
    /// `never_match`: these lines were included from a block that does not
    /// apply, so no block in them applies either.
    fn lines(&mut self, lines: &[Line], never_match: bool) -> Result<(), ConfigError> {
        lines.iter().try_for_each(|l| self.line(l, never_match))
    }

    fn line(&mut self, line: &Line, never_match: bool) -> Result<(), ConfigError> {
        let Some(d) = read(&line.text).map_err(|e| line_error(&line.origin, e))? else {
            return Ok(());
        };
        match d.keyword.as_str() {
            "host" => {
                let patterns = d.args.iter().map(String::as_str);
                self.active = !never_match && pattern::any_matches(self.target.alias, patterns);
            }
            "match" => self.active = !never_match && self.match_applies(&d.args),
            "include" => {
                // readconf.c: an included file's blocks do not change
                // whether the lines after the Include apply.
                let outer = self.active;
                self.lines(&line.included, never_match || !outer)?;
                self.active = outer;
            }
            _ if self.active => self.params.keep(Setting {
                keyword: d.keyword,
                args: d.args,
                rest: d.rest.to_string(),
                origin: line.origin.clone(),
            }),
            _ => {}
        }
        Ok(())
    }

    fn match_applies(&self, args: &[String]) -> bool {
        self.criteria(args).unwrap_or_else(|| {
            tracing::debug!(
                "ssh config: Match {} is not supported, ignoring its block",
                args.join(" ")
            );
            false
        })
    }

    /// readconf.c's `match_cfg_line` for the criteria ferry can evaluate:
    /// whether they all hold; `None` when one is of another kind or lacks
    /// its argument.
    fn criteria(&self, args: &[String]) -> Option<bool> {
        if let [all] = args {
            if all.eq_ignore_ascii_case("all") {
                return Some(true);
            }
        }
        if args.is_empty() {
            return None;
        }
        let mut words = args.iter().map(String::as_str);
        let mut result = true;
        while let Some(word) = words.next() {
            let (negated, word) = match word.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            // Newer OpenSSH also takes `criterion=patterns`.
            let (name, patterns) = match word.split_once('=') {
                Some((name, patterns)) => (name, patterns),
                None => (word, words.next()?),
            };
            result &= self.criterion(&name.to_ascii_lowercase(), patterns)? != negated;
        }
        Some(result)
    }

    fn criterion(&self, name: &str, patterns: &str) -> Option<bool> {
        let target = self.target;
        Some(match name {
            "host" => pattern::list_matches(&self.host_so_far(), patterns, true),
            "originalhost" => pattern::list_matches(target.alias, patterns, true),
            "user" => pattern::list_matches(self.user_so_far(), patterns, false),
            "localuser" => pattern::list_matches(target.local_user, patterns, false),
            _ => return None,
        })
    }

    /// What `Match host` sees: the HostName obtained so far, else the alias.
    fn host_so_far(&self) -> String {
        match self.params.value("hostname") {
            Some(raw) => expand_h(raw, self.target.alias),
            None => self.target.alias.to_string(),
        }
    }

    /// What `Match user` sees: the user obtained so far, else the local one.
    fn user_so_far(&self) -> &str {
        let target = self.target;
        target
            .user
            .or_else(|| self.params.value("user"))
            .unwrap_or(target.local_user)
    }
}

/// Splits and checks one line; `None` for a blank or comment line.
fn read(text: &str) -> Result<Option<Directive<'_>>, LineError> {
    let Some(d) = lex(text)? else {
        return Ok(None);
    };
    check(&d)?;
    Ok(Some(d))
}

/// HostName's `%h` (the alias) and `%%`, as `Match host` sees them. Other
/// tokens are left as written: `ssh::config` refuses them when it reads
/// HostName.
fn expand_h(raw: &str, alias: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('h')) => out.push_str(alias),
            ('%', Some('%')) => out.push('%'),
            _ => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    out
}

/// A bad line as an error naming its file and line, or its `-o` option.
fn line_error(origin: &Origin, source: LineError) -> ConfigError {
    match origin {
        Origin::Option(option) => ConfigError::Option {
            option: option.clone(),
            reason: source.to_string(),
        },
        Origin::File { path, line } => ConfigError::Parse {
            path: path.clone(),
            line: *line,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(text: &str) -> Vec<String> {
        lex(text).expect("lex").expect("not blank").args
    }

    #[test]
    fn lines_split_like_openssh() {
        let d = lex("  PORT=22").expect("lex").expect("a line");
        assert_eq!(
            (d.keyword.as_str(), d.args.as_slice()),
            ("port", &["22".to_string()][..])
        );
        assert_eq!(args("Port = 22"), ["22"]);
        assert_eq!(args("User\tbob # comment"), ["bob"]);
        assert_eq!(args("IdentityFile /a#b"), ["/a#b"]);
        assert_eq!(args("IdentityFile \"/a b\" '/c d'"), ["/a b", "/c d"]);
        assert_eq!(
            args(r#"IdentityFile /a\ b \"q\" 'it''s'"#),
            ["/a b", "\"q\"", "its"]
        );
        assert_eq!(args("Host # nothing"), Vec::<String>::new());
        assert!(lex("").expect("blank").is_none());
        assert!(lex("   # Port 22").expect("comment").is_none());
        assert!(matches!(lex("Port"), Err(LineError::MissingArgument(k)) if k == "Port"));
        assert!(matches!(lex("Port="), Err(LineError::MissingArgument(_))));
        assert!(matches!(lex("User \"bob"), Err(LineError::Quotes)));
    }

    #[test]
    fn values_are_checked_whatever_the_block() {
        let bad = |text: &str| read(text).expect_err(text).to_string();
        assert_eq!(
            bad("Port 0"),
            "Port \"0\" is not a port number (1 to 65535)"
        );
        assert!(bad("Port 22 23").contains("takes one value"));
        assert!(bad("ConnectTimeout soon").contains("is not a time"));
        assert!(bad("UserKnownHostsFile none /x").contains("none must be its only value"));
        assert!(bad("Host \"\"").contains("empty argument"));
        for good in [
            "ConnectTimeout 1m30s",
            "ConnectTimeout none",
            "Port 65535",
            "Frob 1 2",
        ] {
            assert!(read(good).is_ok(), "{good}");
        }
        assert_eq!(seconds("90"), Some(90));
        assert_eq!(seconds("1h2M3s"), Some(3723));
        assert_eq!(seconds("1w"), Some(604_800));
        assert_eq!(seconds("5x"), None);
        assert_eq!(seconds("m"), None);
    }

    fn file_lines(text: &str) -> Vec<Line> {
        text.lines()
            .enumerate()
            .map(|(i, t)| Line {
                text: t.to_string(),
                origin: Origin::File {
                    path: PathBuf::from("cfg"),
                    line: i + 1,
                },
                included: Vec::new(),
            })
            .collect()
    }

    fn params_for(text: &str, alias: &str, user: Option<&str>) -> Params {
        let target = Target {
            alias,
            user,
            local_user: "me",
        };
        apply(&file_lines(text), &target).expect("apply")
    }

    #[test]
    fn first_value_wins_except_for_accumulating_keywords() {
        let text = "Host a\n  Port 1\n  Port 2\n  IdentityFile /k/1\n  ProxyCommand none\n\
                    Host *\n  Port 3\n  IdentityFile /k/2\n  ProxyJump hop\n  User u\n";
        let p = params_for(text, "a", None);
        assert_eq!(p.value("port"), Some("1"));
        assert_eq!(p.value("user"), Some("u"));
        let ids: Vec<&str> = p.all("identityfile").map(|s| s.args[0].as_str()).collect();
        assert_eq!(ids, ["/k/1", "/k/2"]);
        assert!(p.get("proxyjump").is_none(), "ProxyCommand came first");
        assert_eq!(p.get("proxycommand").map(|s| s.rest.as_str()), Some("none"));
        assert_eq!(params_for(text, "b", None).value("port"), Some("3"));
    }

    #[test]
    fn bad_lines_name_their_file_and_line_even_where_nothing_applies() {
        let target = Target {
            alias: "a",
            user: None,
            local_user: "me",
        };
        let err = apply(&file_lines("Host other\n  Port x\n"), &target).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn match_criteria() {
        let text = "Host h\n  HostName %h.Real.example\n\
                    Match host *.real.EXAMPLE\n  Port 1\n\
                    Match originalhost H\n  User fromoriginal\n\
                    Match user fromoriginal\n  BatchMode yes\n\
                    Match !localuser me\n  Compression yes\n\
                    Match user=cli localuser m?\n  IdentitiesOnly yes\n\
                    Match exec true\n  ConnectTimeout 1\n\
                    Match all\n  ServerAliveInterval 2\n";
        let p = params_for(text, "h", None);
        assert_eq!(p.value("port"), Some("1"));
        assert_eq!(p.value("user"), Some("fromoriginal"));
        assert_eq!(p.value("batchmode"), Some("yes"));
        assert_eq!(p.value("compression"), None);
        assert_eq!(p.value("identitiesonly"), None);
        assert_eq!(p.value("connecttimeout"), None, "exec is not evaluated");
        assert_eq!(p.value("serveraliveinterval"), Some("2"));
        // -l is the user `Match user` sees.
        let p = params_for(text, "h", Some("cli"));
        assert_eq!(p.value("batchmode"), None);
        assert_eq!(p.value("identitiesonly"), Some("yes"));
        let p = params_for(text, "other", None);
        assert_eq!(p.value("port"), None);
        assert_eq!(p.value("user"), None);
    }

    #[test]
    fn included_lines_apply_only_under_an_applying_block() {
        let mut lines = file_lines("Host a\n  Include x\n  User after\n");
        lines[1].included =
            file_lines("Port 1\nHost *\n  IdentityFile /k/star\nHost b\n  User inner\n");
        let walk = |alias: &str| {
            let target = Target {
                alias,
                user: None,
                local_user: "me",
            };
            apply(&lines, &target).expect("apply")
        };
        let a = walk("a");
        assert_eq!(a.value("port"), Some("1"));
        assert_eq!(a.value("identityfile"), Some("/k/star"));
        assert_eq!(a.value("user"), Some("after"), "the Host a block resumes");
        let b = walk("b");
        assert_eq!(b.value("user"), None, "Host b inside an inactive block");
        assert_eq!(b.value("identityfile"), None);
    }
}
