//! Resolves a host alias the way `ssh` does: reads the ssh config file
//! (`~/.ssh/config`, or the file given with `-F`), applies OpenSSH's
//! "first obtained value wins" rule, expands `~` and `%` tokens, and
//! merges command-line overrides into one [`HostConfig`] that the
//! connection, host-key and authentication code work from.
//!
//! Parsing is done by `ssh2-config`; this module fixes the places where
//! that crate differs from OpenSSH (see [`prepare`]) and interprets the
//! options it does not model (`UserKnownHostsFile`, `StrictHostKeyChecking`,
//! `IdentitiesOnly`, `BatchMode`, ...).

use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{Host, HostParams, ParseRule, SshConfig, SshParserError};

/// How to treat a server whose host key is not (or not correctly) in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// Refuse unknown and changed keys.
    Yes,
    /// Add unknown keys to known_hosts, refuse changed keys.
    AcceptNew,
    /// Add unknown keys, and connect (with a warning) even when the key changed.
    No,
    /// OpenSSH's default: ask the user about unknown keys. Behaves like
    /// [`StrictHostKeyChecking::Yes`] when there is no terminal to ask on.
    Ask,
}

impl StrictHostKeyChecking {
    /// Parses the values OpenSSH's readconf.c accepts, case-insensitively.
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(Self::Yes),
            "accept-new" => Some(Self::AcceptNew),
            "no" | "off" | "false" => Some(Self::No),
            "ask" => Some(Self::Ask),
            _ => None,
        }
    }
}

/// Values given on the command line; each beats the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `-p PORT` or the port of a `user@host:port` spec.
    pub port: Option<u16>,
    /// `-l USER` or the user of a `user@host` spec.
    pub user: Option<String>,
    /// `-i FILE`; tried before the config's identity files.
    pub identity: Option<PathBuf>,
}

/// Everything needed to connect to and authenticate with one host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// What the user typed.
    pub alias: String,
    /// `HostName` (with `%h` expanded) or the alias, lower-cased like OpenSSH does.
    pub host_name: String,
    /// Override > config > 22.
    pub port: u16,
    /// Override > config > local login name.
    pub user: String,
    /// The override first, then every matching `IdentityFile`, expanded.
    /// Empty means "use the default keys".
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub global_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub batch_mode: bool,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
    pub server_alive_count_max: u32,
}

/// Why a host alias could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read ssh config {}: {source}; check the path (given with -F?) and its permissions", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("ssh config {}, line {line}: {source}; fix or remove that line", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        source: SshParserError,
    },

    #[error("ssh config {}: {keyword} {value:?} for host {host} is not valid, expected {expected}; fix that line", path.display())]
    BadValue {
        path: PathBuf,
        host: String,
        keyword: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("ssh config {}: {keyword} {value:?} for host {host} uses an unsupported %-token %{token}; use one of %% %d %h %i %k %L %l %n %p %r %u", path.display())]
    BadToken {
        path: PathBuf,
        host: String,
        keyword: &'static str,
        value: String,
        token: char,
    },

    #[error("cannot determine the home directory (HOME is unset and the user has no passwd entry); set HOME")]
    NoHome,
}

/// Keyword that [`prepare`] gives each `IdentityFile` line, suffixed with the
/// line number, so ssh2-config keeps every one of them (as an unknown field)
/// instead of letting the last line of a block overwrite the others.
const IDENTITY_KEY: &str = "ferry-identityfile-";

/// Keywords OpenSSH accumulates instead of applying "first value wins".
const ACCUMULATING: &[&str] = &[
    "include",
    "certificatefile",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "sendenv",
    "setenv",
];

/// Facts about the local side, passed in so tests need not touch the
/// process environment.
#[derive(Debug, Clone)]
struct Local {
    home: PathBuf,
    user: String,
}

/// Resolves `alias` through the ssh config.
///
/// `config_path`: `Some(file)` = use only that file (like `ssh -F`), error if
/// unreadable; `None` = `~/.ssh/config` if it exists, else defaults.
pub fn resolve(
    alias: &str,
    config_path: Option<&Path>,
    overrides: &Overrides,
) -> Result<HostConfig, ConfigError> {
    let local = Local {
        home: home_dir().ok_or(ConfigError::NoHome)?,
        user: local_user().unwrap_or_default(),
    };
    resolve_in(alias, config_path, overrides, &local)
}

fn resolve_in(
    alias: &str,
    config_path: Option<&Path>,
    overrides: &Overrides,
    local: &Local,
) -> Result<HostConfig, ConfigError> {
    let (path, config) = load(config_path, local)?;
    // OpenSSH (checked against 9.2's `ssh -G`) matches Host patterns
    // case-sensitively against the name as typed.
    let params = config.query(alias);
    let mut ctx = Expand {
        path: &path,
        alias,
        host_name: String::new(),
        port: overrides.port.or(params.port).unwrap_or(22),
        user: overrides.user.clone().or(params.user.clone()),
        local,
    };
    ctx.host_name = host_name(&params, &ctx)?;
    let user = ctx.user.clone().unwrap_or_else(|| local.user.clone());
    ctx.user = Some(user.clone());
    let mut identity_files: Vec<PathBuf> = overrides.identity.iter().cloned().collect();
    for raw in identity_lines(&config, alias) {
        push_unique(&mut identity_files, ctx.path("IdentityFile", &raw)?);
    }
    Ok(HostConfig {
        alias: alias.to_string(),
        host_name: ctx.host_name.clone(),
        port: ctx.port,
        user,
        identity_files,
        identities_only: ctx.flag(&params, "identitiesonly", "IdentitiesOnly")?,
        user_known_hosts_files: ctx.known_hosts(&params, "userknownhostsfile", USER_KNOWN)?,
        global_known_hosts_files: ctx.known_hosts(&params, "globalknownhostsfile", GLOBAL_KNOWN)?,
        strict_host_key_checking: ctx.strict(&params)?,
        batch_mode: ctx.flag(&params, "batchmode", "BatchMode")?,
        connect_timeout: params.connect_timeout.filter(|d| !d.is_zero()),
        server_alive_interval: params.server_alive_interval.filter(|d| !d.is_zero()),
        server_alive_count_max: ctx.count_max(&params)?,
    })
}

const USER_KNOWN: &[&str] = &["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
const GLOBAL_KNOWN: &[&str] = &["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// Reads and parses the config file; returns the path used (for messages)
/// and the parsed config (empty when there is no file).
fn load(config_path: Option<&Path>, local: &Local) -> Result<(PathBuf, SshConfig), ConfigError> {
    let path = match config_path {
        Some(p) => p.to_path_buf(),
        None => local.home.join(".ssh").join("config"),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // Only the implicit default file may be absent.
        Err(e) if config_path.is_none() && e.kind() == io::ErrorKind::NotFound => {
            return Ok((path, SshConfig::default()));
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let prepared = prepare(&text);
    match parse(&prepared) {
        Ok(config) => Ok((path, config)),
        Err(source) => {
            let line = failing_line(&prepared);
            Err(ConfigError::Parse { path, line, source })
        }
    }
}

fn parse(text: &str) -> Result<SshConfig, SshParserError> {
    let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    SshConfig::default().parse(&mut BufReader::new(text.as_bytes()), rules)
}

/// ssh2-config's errors carry no line number; the parser stops at the first
/// bad line, so the shortest failing prefix ends on it. Only runs on the
/// error path, and config files are small.
fn failing_line(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    (1..=lines.len())
        .find(|&n| parse(&lines[..n].join("\n")).is_err())
        .unwrap_or(lines.len())
}

/// Rewrites the config text, line for line (so line numbers stay valid), to
/// fix where ssh2-config differs from OpenSSH:
/// - a keyword repeated inside one block: OpenSSH keeps the first value,
///   ssh2-config the last, so later repeats are blanked;
/// - `IdentityFile` accumulates in OpenSSH, so each line gets its own
///   keyword (see [`IDENTITY_KEY`]) and is collected by [`identity_lines`];
/// - `Match` is unknown to ssh2-config, which would then apply the block's
///   options to the preceding `Host`; see [`translate_match`].
fn prepare(text: &str) -> String {
    let mut seen = HashSet::new();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| prepare_line(line, i + 1, &mut seen))
        .collect();
    lines.join("\n")
}

fn prepare_line(line: &str, number: usize, seen: &mut HashSet<String>) -> String {
    // ssh2-config also cuts a line at the first '#'.
    let content = line.split('#').next().unwrap_or_default().trim();
    if content.is_empty() {
        return String::new();
    }
    let (keyword, args) = split_keyword(content);
    let keyword = keyword.to_ascii_lowercase();
    match keyword.as_str() {
        "host" => {
            seen.clear();
            content.to_string()
        }
        "match" => {
            seen.clear();
            translate_match(args, number)
        }
        "identityfile" => format!("{IDENTITY_KEY}{number} {args}"),
        k if ACCUMULATING.contains(&k) => content.to_string(),
        _ if seen.insert(keyword.clone()) => content.to_string(),
        _ => String::new(),
    }
}

/// Splits `Keyword args`, `Keyword=args` or `Keyword = args` the way
/// ssh2-config's tokenizer does.
fn split_keyword(content: &str) -> (&str, &str) {
    let end = content
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(content.len());
    let (keyword, rest) = content.split_at(end);
    let rest = rest.trim_start().trim_start_matches('=').trim();
    (keyword, rest)
}

/// `Match all` applies to every host; `Match originalhost P` is a `Host P`.
/// Other criteria (exec, user, canonical, ...) cannot be evaluated here, so
/// the block is turned into one that matches nothing: ignoring it is safer
/// than applying it to the wrong host.
fn translate_match(args: &str, number: usize) -> String {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [all] if all.eq_ignore_ascii_case("all") => "Host *".to_string(),
        [criterion, patterns] if criterion.eq_ignore_ascii_case("originalhost") => {
            format!("Host {}", patterns.replace(',', " "))
        }
        _ => {
            tracing::debug!(
                line = number,
                "ssh config: Match {args} is not supported, ignoring its block"
            );
            "Host !*".to_string()
        }
    }
}

/// The raw `IdentityFile` values of every block matching `name`, in file order.
fn identity_lines(config: &SshConfig, name: &str) -> Vec<String> {
    config
        .intersecting_hosts(name)
        .flat_map(host_identity_lines)
        .collect()
}

fn host_identity_lines(host: &Host) -> Vec<String> {
    let mut numbered: Vec<(usize, &Vec<String>)> = host
        .params
        .ignored_fields
        .iter()
        .filter_map(|(key, args)| Some((key.strip_prefix(IDENTITY_KEY)?.parse().ok()?, args)))
        .collect();
    numbered.sort_by_key(|(line, _)| *line);
    let mut out: Vec<String> = numbered.into_iter().flat_map(|(_, a)| a.clone()).collect();
    // Files pulled in by `Include` bypass `prepare`, so ssh2-config parsed
    // their IdentityFile itself (already ~-expanded).
    let included = host.params.identity_file.iter().flatten();
    out.extend(included.map(|p| p.to_string_lossy().into_owned()));
    out
}

fn push_unique(list: &mut Vec<PathBuf>, path: PathBuf) {
    if !list.contains(&path) {
        list.push(path);
    }
}

/// The values `%` tokens and `~` expand to for one host.
struct Expand<'a> {
    path: &'a Path,
    alias: &'a str,
    host_name: String,
    port: u16,
    user: Option<String>,
    local: &'a Local,
}

impl Expand<'_> {
    /// Expands `~` and the `%` tokens OpenSSH allows in file options.
    fn path(&self, keyword: &'static str, raw: &str) -> Result<PathBuf, ConfigError> {
        let expanded = self.tokens(keyword, raw, true)?;
        Ok(expand_tilde(&expanded, &self.local.home))
    }

    fn tokens(&self, keyword: &'static str, raw: &str, all: bool) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let token = chars.next().unwrap_or('%');
            match self.token(token, all) {
                Some(value) => out.push_str(&value),
                None => return Err(self.bad_token(keyword, raw, token)),
            }
        }
        Ok(out)
    }

    /// `all == false` is HostName, where OpenSSH only allows `%h` and `%%`.
    fn token(&self, token: char, all: bool) -> Option<String> {
        match token {
            '%' => Some("%".to_string()),
            'h' if !all => Some(self.alias.to_string()),
            _ if !all => None,
            'h' => Some(self.host_name.clone()),
            // OpenSSH expands these to the name exactly as typed.
            'n' | 'k' => Some(self.alias.to_string()),
            'p' => Some(self.port.to_string()),
            'r' => self.user.clone(),
            'u' => Some(self.local.user.clone()),
            'd' => Some(self.local.home.to_string_lossy().into_owned()),
            // SAFETY: getuid cannot fail and has no preconditions.
            'i' => Some(unsafe { libc::getuid() }.to_string()),
            'l' => local_host_name(),
            'L' => local_host_name().map(|h| h.split('.').next().unwrap_or_default().to_string()),
            _ => None,
        }
    }

    fn bad_token(&self, keyword: &'static str, raw: &str, token: char) -> ConfigError {
        ConfigError::BadToken {
            path: self.path.to_path_buf(),
            host: self.alias.to_string(),
            keyword,
            value: raw.to_string(),
            token,
        }
    }

    fn bad_value(&self, keyword: &'static str, value: &str, expected: &'static str) -> ConfigError {
        ConfigError::BadValue {
            path: self.path.to_path_buf(),
            host: self.alias.to_string(),
            keyword,
            value: value.to_string(),
            expected,
        }
    }

    fn flag(
        &self,
        params: &HostParams,
        key: &str,
        keyword: &'static str,
    ) -> Result<bool, ConfigError> {
        let Some(value) = first_value(params, key) else {
            return Ok(false);
        };
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(self.bad_value(keyword, value, "yes or no")),
        }
    }

    fn strict(&self, params: &HostParams) -> Result<StrictHostKeyChecking, ConfigError> {
        let Some(value) = first_value(params, "stricthostkeychecking") else {
            return Ok(StrictHostKeyChecking::Ask);
        };
        StrictHostKeyChecking::parse(value).ok_or_else(|| {
            self.bad_value("StrictHostKeyChecking", value, "yes, accept-new, no or ask")
        })
    }

    fn count_max(&self, params: &HostParams) -> Result<u32, ConfigError> {
        let Some(value) = first_value(params, "serveralivecountmax") else {
            return Ok(3);
        };
        value
            .parse()
            .map_err(|_| self.bad_value("ServerAliveCountMax", value, "a whole number"))
    }

    /// `UserKnownHostsFile` / `GlobalKnownHostsFile`: several files, or `none`.
    fn known_hosts(
        &self,
        params: &HostParams,
        key: &str,
        defaults: &[&str],
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let keyword = if key.starts_with("user") {
            "UserKnownHostsFile"
        } else {
            "GlobalKnownHostsFile"
        };
        let values: Vec<String> = match field(params, key) {
            Some(v) if v.iter().any(|s| s.eq_ignore_ascii_case("none")) => return Ok(Vec::new()),
            // A quoted value arrives as one string; split it like OpenSSH does.
            Some(v) => v
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_string)
                .collect(),
            None => defaults.iter().map(|s| s.to_string()).collect(),
        };
        values.iter().map(|raw| self.path(keyword, raw)).collect()
    }
}

/// OpenSSH lower-cases the final name (DNS and known_hosts lookups are
/// case-insensitive), whether it came from HostName or the alias.
fn host_name(params: &HostParams, ctx: &Expand) -> Result<String, ConfigError> {
    let name = match &params.host_name {
        Some(raw) => ctx.tokens("HostName", raw, false)?,
        None => ctx.alias.to_string(),
    };
    Ok(name.to_lowercase())
}

/// Options ssh2-config does not model land, lower-cased, in one of these maps.
fn field<'a>(params: &'a HostParams, key: &str) -> Option<&'a Vec<String>> {
    params
        .unsupported_fields
        .get(key)
        .or_else(|| params.ignored_fields.get(key))
        .filter(|v| !v.is_empty())
}

fn first_value<'a>(params: &'a HostParams, key: &str) -> Option<&'a str> {
    field(params, key)
        .and_then(|v| v.first())
        .map(String::as_str)
}

fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        return home.to_path_buf();
    }
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(path),
    }
}

/// `$HOME`, or the home directory in the passwd database.
pub(crate) fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => passwd_entry().map(|(_, dir)| dir),
    }
}

/// The login name of the current uid (what OpenSSH uses), else `$USER`/`$LOGNAME`.
pub(crate) fn local_user() -> Option<String> {
    passwd_entry()
        .map(|(name, _)| name)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.is_empty())
}

/// Name and home directory of the current uid, via the reentrant getpwuid_r.
fn passwd_entry() -> Option<(String, PathBuf)> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain old data; all-zero is a valid value that
        // getpwuid_r overwrites.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call, and
        // buf's length is passed alongside it.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success both fields point to NUL-terminated strings in buf.
        let (name, dir) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        let dir = PathBuf::from(OsStr::from_bytes(dir.to_bytes()));
        return Some((name.to_string_lossy().into_owned(), dir));
    }
}

fn local_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length, which is passed in.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use tempfile::TempDir;

    /// A temp home with the given config written to `config`.
    struct Fixture {
        dir: TempDir,
        local: Local,
        config: PathBuf,
    }

    fn fixture(text: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        std::fs::write(&config, text).expect("write config");
        let local = Local {
            home: dir.path().join("home"),
            user: "localuser".to_string(),
        };
        Fixture { dir, local, config }
    }

    impl Fixture {
        fn resolve(&self, alias: &str) -> HostConfig {
            self.resolve_with(alias, &Overrides::default())
        }

        fn resolve_with(&self, alias: &str, overrides: &Overrides) -> HostConfig {
            resolve_in(alias, Some(&self.config), overrides, &self.local).expect("resolve")
        }

        fn home(&self, rel: &str) -> PathBuf {
            self.local.home.join(rel)
        }
    }

    #[test]
    fn defaults_without_any_config() {
        let f = fixture("");
        let cfg =
            resolve_in("Example.COM", None, &Overrides::default(), &f.local).expect("resolve");
        assert_eq!(cfg.alias, "Example.COM");
        assert_eq!(cfg.host_name, "example.com");
        assert_eq!(cfg.port, 22);
        assert_eq!(cfg.user, "localuser");
        assert!(cfg.identity_files.is_empty());
        assert!(!cfg.identities_only && !cfg.batch_mode);
        assert_eq!(
            cfg.user_known_hosts_files,
            vec![f.home(".ssh/known_hosts"), f.home(".ssh/known_hosts2")]
        );
        assert_eq!(
            cfg.global_known_hosts_files,
            vec![
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts2")
            ]
        );
        assert_eq!(cfg.strict_host_key_checking, StrictHostKeyChecking::Ask);
        assert_eq!(cfg.connect_timeout, None);
        assert_eq!(cfg.server_alive_interval, None);
        assert_eq!(cfg.server_alive_count_max, 3);
    }

    #[test]
    fn default_config_file_in_home_is_read() {
        let f = fixture("");
        std::fs::create_dir_all(f.home(".ssh")).expect("mkdir");
        std::fs::write(f.home(".ssh/config"), "Host box\n  User fromhome\n").expect("write");
        let cfg = resolve_in("box", None, &Overrides::default(), &f.local).expect("resolve");
        assert_eq!(cfg.user, "fromhome");
    }

    #[test]
    fn host_name_user_port_and_identity_file() {
        let f = fixture(
            "Host web\n  HostName %h.internal.Example.com\n  User deploy\n  Port 2222\n  \
             IdentityFile ~/.ssh/%h_%p_%r_%u_%n\n  IdentityFile %d/other\n  ConnectTimeout 7\n  \
             ServerAliveInterval 15\n  ServerAliveCountMax 5\n",
        );
        let cfg = f.resolve("web");
        assert_eq!(cfg.host_name, "web.internal.example.com");
        assert_eq!(cfg.user, "deploy");
        assert_eq!(cfg.port, 2222);
        let expected = f.home(".ssh/web.internal.example.com_2222_deploy_localuser_web");
        assert_eq!(cfg.identity_files, vec![expected, f.home("other")]);
        assert_eq!(cfg.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(cfg.server_alive_interval, Some(Duration::from_secs(15)));
        assert_eq!(cfg.server_alive_count_max, 5);
    }

    #[test]
    fn wildcard_question_mark_and_negation() {
        let f = fixture(
            "Host *.prod !db.prod\n  User produser\nHost web?\n  User webuser\n\
             Host db.prod\n  User dbuser\nHost *\n  User fallback\n",
        );
        assert_eq!(f.resolve("api.prod").user, "produser");
        assert_eq!(f.resolve("db.prod").user, "dbuser");
        assert_eq!(f.resolve("web1").user, "webuser");
        assert_eq!(f.resolve("web12").user, "fallback");
    }

    #[test]
    fn first_value_wins_across_and_within_blocks() {
        let f = fixture(
            "Host app\n  Port 1111\n  Port 2222\n  StrictHostKeyChecking no\n  \
             StrictHostKeyChecking yes\nHost *\n  Port 3333\n  User late\n  \
             StrictHostKeyChecking accept-new\n",
        );
        let cfg = f.resolve("app");
        assert_eq!(cfg.port, 1111);
        assert_eq!(cfg.user, "late");
        assert_eq!(cfg.strict_host_key_checking, StrictHostKeyChecking::No);
        assert_eq!(f.resolve("other").port, 3333);
    }

    #[test]
    fn identity_files_accumulate_in_order_with_override_first() {
        let f = fixture("Host a\n  IdentityFile /k/one\n  IdentityFile /k/two\nHost *\n  IdentityFile /k/three\n");
        let overrides = Overrides {
            identity: Some(PathBuf::from("/cli/key")),
            ..Overrides::default()
        };
        let cfg = f.resolve_with("a", &overrides);
        let expected: Vec<PathBuf> = ["/cli/key", "/k/one", "/k/two", "/k/three"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(cfg.identity_files, expected);
    }

    #[test]
    fn known_hosts_files_several_tilde_and_none() {
        let f = fixture(
            "Host multi\n  UserKnownHostsFile ~/kh1 /abs/kh2 ~/.ssh/kh_%h\n  \
             GlobalKnownHostsFile /etc/g1\nHost off\n  UserKnownHostsFile none\n",
        );
        let cfg = f.resolve("multi");
        assert_eq!(
            cfg.user_known_hosts_files,
            vec![
                f.home("kh1"),
                PathBuf::from("/abs/kh2"),
                f.home(".ssh/kh_multi")
            ]
        );
        assert_eq!(cfg.global_known_hosts_files, vec![PathBuf::from("/etc/g1")]);
        assert!(f.resolve("off").user_known_hosts_files.is_empty());
    }

    #[test]
    fn strict_host_key_checking_values() {
        let f = fixture(
            "Host y\n  StrictHostKeyChecking yes\nHost n\n  StrictHostKeyChecking no\n\
             Host an\n  StrictHostKeyChecking accept-new\nHost a\n  StrictHostKeyChecking ask\n\
             Host o\n  StrictHostKeyChecking off\n",
        );
        assert_eq!(
            f.resolve("y").strict_host_key_checking,
            StrictHostKeyChecking::Yes
        );
        assert_eq!(
            f.resolve("n").strict_host_key_checking,
            StrictHostKeyChecking::No
        );
        assert_eq!(
            f.resolve("an").strict_host_key_checking,
            StrictHostKeyChecking::AcceptNew
        );
        assert_eq!(
            f.resolve("a").strict_host_key_checking,
            StrictHostKeyChecking::Ask
        );
        assert_eq!(
            f.resolve("o").strict_host_key_checking,
            StrictHostKeyChecking::No
        );
        assert_eq!(
            f.resolve("zz").strict_host_key_checking,
            StrictHostKeyChecking::Ask
        );
    }

    #[test]
    fn boolean_options() {
        let f = fixture("Host b\n  IdentitiesOnly yes\n  BatchMode yes\n");
        let cfg = f.resolve("b");
        assert!(cfg.identities_only);
        assert!(cfg.batch_mode);
    }

    #[test]
    fn overrides_beat_config() {
        let f = fixture("Host h\n  User cfguser\n  Port 2022\n");
        let overrides = Overrides {
            port: Some(4444),
            user: Some("cliuser".to_string()),
            identity: None,
        };
        let cfg = f.resolve_with("h", &overrides);
        assert_eq!((cfg.port, cfg.user.as_str()), (4444, "cliuser"));
    }

    #[test]
    fn missing_explicit_config_is_an_error() {
        let f = fixture("");
        let missing = f.dir.path().join("nope");
        let err = resolve_in("h", Some(&missing), &Overrides::default(), &f.local).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");
        // The public entry point behaves the same.
        assert!(resolve("h", Some(&missing), &Overrides::default()).is_err());
    }

    #[test]
    fn parse_error_names_file_and_line() {
        let f = fixture("Host a\n  User x\n  Port notanumber\n");
        let err = resolve_in("a", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_option() {
        let f = fixture("Host a\n  StrictHostKeyChecking maybe\nHost b\n  IdentityFile /k/%Z\n");
        let err = resolve_in("a", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(
            err.to_string().contains("StrictHostKeyChecking \"maybe\""),
            "{err}"
        );
        let err = resolve_in("b", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadToken { token: 'Z', .. }),
            "{err:?}"
        );
    }

    #[test]
    fn match_blocks_do_not_leak_into_the_previous_host() {
        let f = fixture(
            "Host a\n  User auser\nMatch exec \"true\"\n  Port 9999\nMatch all\n  Port 2020\n\
             Match originalhost b\n  User buser\n",
        );
        let a = f.resolve("a");
        assert_eq!((a.user.as_str(), a.port), ("auser", 2020));
        assert_eq!(f.resolve("b").user, "buser");
    }

    /// Cross-checks against the real client when it is installed.
    #[test]
    fn agrees_with_ssh_dash_g() {
        let text = "Host web?? !web99\n  HostName %h.Example.com\n  User deploy\n  User other\n\
                    Host *\n  Port 2200\n  UserKnownHostsFile /tmp/kh1 /tmp/kh2\n  \
                    StrictHostKeyChecking accept-new\n";
        let mut f = fixture(text);
        // ssh -G reports the real login name when no User applies.
        f.local.user = local_user().expect("login name");
        for alias in ["web01", "WEB01", "web99"] {
            let Some(ssh) = ssh_dash_g(&f.config, alias) else {
                return; // ssh not installed
            };
            let cfg = f.resolve(alias);
            assert_eq!(ssh.get("hostname"), Some(&cfg.host_name), "{alias}");
            assert_eq!(ssh.get("port"), Some(&cfg.port.to_string()), "{alias}");
            assert_eq!(ssh.get("user"), Some(&cfg.user), "{alias}");
            let known: Vec<String> = cfg
                .user_known_hosts_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            assert_eq!(
                ssh.get("userknownhostsfile"),
                Some(&known.join(" ")),
                "{alias}"
            );
            assert_eq!(
                ssh.get("stricthostkeychecking").map(String::as_str),
                Some("accept-new")
            );
        }
    }

    fn ssh_dash_g(config: &Path, alias: &str) -> Option<std::collections::HashMap<String, String>> {
        let out = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(config)
            .arg(alias)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "ssh -G failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pairs = text.lines().filter_map(|l| l.split_once(' '));
        Some(pairs.map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}
