//! Resolves a host alias the way `ssh` does: reads the ssh config file
//! (`~/.ssh/config`, or the file given with `-F`; `-F none` reads none)
//! with its `Include`s, applies `-o` options as if they came first, applies
//! OpenSSH's "first obtained value wins" rule, expands `~` and `%` tokens,
//! and merges command-line overrides into one [`HostConfig`] that the
//! connection, host-key and authentication code work from. ProxyJump hosts
//! are resolved here too, each under its own name (see `ssh::jump`).
//!
//! Reading the lines is `ssh::include`'s job (files and `Include`s) and
//! `ssh::readconf`'s (which blocks apply, first value wins); this module
//! turns the values that apply into settings: defaults, `none`, `yes`/`no`
//! and the other value sets, tokens and `~`, and the command line's say.
//!
//! `%` tokens are expanded where OpenSSH expands them: `HostName` takes
//! `%h` (the alias); `ProxyJump` takes `%h %n %p %r` (OpenSSH expands them
//! as part of the proxy command it builds); `IdentityFile`,
//! `UserKnownHostsFile`, `GlobalKnownHostsFile` and `IdentityAgent` (and
//! `-i` files) take `%% %C %d %h %i %k %L %l %n %p %r %u`, and `~`.
//! `${VAR}` is not supported (nor `%j` of newer OpenSSH: refused with a
//! message, never left as text).

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::include::{self, Line, Origin};
use super::jump;
use super::options::{self, Verdict};
use super::readconf::{self, Params, Setting, Target};

/// How to treat a server whose host key is not (or not correctly) in known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictHostKeyChecking {
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

/// Where the ssh-agent is (`IdentityAgent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdentityAgent {
    /// The socket named by this environment variable (`SSH_AUTH_SOCK` by
    /// default, or `IdentityAgent $VAR`), read when authenticating.
    Environment(String),
    /// `IdentityAgent none`: no agent.
    None,
    /// A socket path, `~` and tokens expanded.
    Socket(PathBuf),
}

/// Which addresses of a host name to connect to (`AddressFamily`, `ssh -4/-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressFamily {
    Any,
    Inet,
    Inet6,
}

/// Values given on the command line; each beats the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    /// `-p PORT` or the port of a `user@host:port` spec.
    pub port: Option<u16>,
    /// `-l USER` or the user of a `user@host` spec.
    pub user: Option<String>,
    /// `-i FILE`; tried before the config's identity files.
    pub identity: Option<PathBuf>,
    /// `ssh -J`: jump hosts (`[user@]host[:port]`, comma-separated), beating
    /// the config's ProxyJump and ProxyCommand; `none` disables both.
    pub proxy_jump: Option<String>,
    /// `ssh -o` lines (`Key=Value` or `Key Value`), in command-line order.
    /// They are applied as if they came before the config file, so they win
    /// by "first value wins"; keywords ferry cannot honour are refused
    /// (see `ssh::options`).
    pub options: Vec<String>,
    /// `ssh -C` / rsync's `-z`: compress the SSH transport. `false` leaves
    /// it to the config's `Compression`.
    pub compression: bool,
}

/// Everything needed to connect to and authenticate with one host.
#[derive(Debug, Clone)]
pub(crate) struct HostConfig {
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
    pub identity_agent: IdentityAgent,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub global_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub batch_mode: bool,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
    pub server_alive_count_max: u32,
    /// `Compression yes` or `-C`: offer zlib compression to the server.
    pub compression: bool,
    pub address_family: AddressFamily,
    /// The ProxyJump hosts, resolved, in the order they are dialled: the
    /// first directly, each next one through the one before, and this host
    /// through the last. Empty for a direct connection. The chain is flat:
    /// the hosts here have no `jump_hosts` of their own.
    pub jump_hosts: Vec<HostConfig>,
}

impl HostConfig {
    /// A direct connection to `host_name:port` as `user` with OpenSSH's
    /// defaults and no files (no identity or known_hosts files), for
    /// callers that build a config without ssh config, such as tests.
    #[cfg(test)]
    pub(crate) fn new(alias: &str, host_name: &str, port: u16, user: &str) -> HostConfig {
        HostConfig {
            alias: alias.to_string(),
            host_name: host_name.to_string(),
            port,
            user: user.to_string(),
            identity_files: Vec::new(),
            identities_only: false,
            identity_agent: IdentityAgent::Environment(AUTH_SOCK.to_string()),
            user_known_hosts_files: Vec::new(),
            global_known_hosts_files: Vec::new(),
            strict_host_key_checking: StrictHostKeyChecking::Ask,
            batch_mode: false,
            connect_timeout: None,
            server_alive_interval: None,
            server_alive_count_max: 3,
            compression: false,
            address_family: AddressFamily::Any,
            jump_hosts: Vec::new(),
        }
    }
}

const AUTH_SOCK: &str = "SSH_AUTH_SOCK";

pub(crate) use crate::error::config::ConfigError;

/// Facts about the local side, passed in so tests need not touch the
/// process environment.
#[derive(Debug, Clone)]
struct Local {
    home: PathBuf,
    user: String,
}

/// Resolves `alias` through the ssh config, with its jump hosts.
///
/// `config_path`: `Some(file)` = use only that file (like `ssh -F`), error if
/// unreadable, `none` for no file; `None` = `~/.ssh/config` if it exists,
/// else defaults.
pub(crate) fn resolve(
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

/// [`resolve`] with the home directory and login name given rather than
/// taken from the process, for tests that must not read the user's files.
#[cfg(test)]
pub(crate) fn resolve_as(
    alias: &str,
    config_path: Option<&Path>,
    overrides: &Overrides,
    home: &Path,
    user: &str,
) -> Result<HostConfig, ConfigError> {
    let local = Local {
        home: home.to_path_buf(),
        user: user.to_string(),
    };
    resolve_in(alias, config_path, overrides, &local)
}

fn resolve_in(
    alias: &str,
    config_path: Option<&Path>,
    overrides: &Overrides,
    local: &Local,
) -> Result<HostConfig, ConfigError> {
    let (mut cfg, proxy_jump) = resolve_host(alias, config_path, overrides, local)?;
    // The target's own settings decide its resolution only when no -o or
    // -i takes part; then meeting it again among its jump hosts is a loop.
    let plain = overrides.options.is_empty() && overrides.identity.is_none();
    let target = plain.then(|| jump::key(alias, overrides));
    let mut resolve_hop =
        |hop: &str, hop_overrides: &Overrides| resolve_host(hop, config_path, hop_overrides, local);
    cfg.jump_hosts = jump::route(alias, target, proxy_jump.as_deref(), &mut resolve_hop)?;
    Ok(cfg)
}

/// Resolves one host, without following its ProxyJump: returns its
/// settings and the ProxyJump list in effect for it.
fn resolve_host(
    alias: &str,
    config_path: Option<&Path>,
    overrides: &Overrides,
    local: &Local,
) -> Result<jump::Resolved, ConfigError> {
    let options = option_lines(&overrides.options)?;
    let target = Target {
        alias,
        user: overrides.user.as_deref(),
        local_user: &local.user,
    };
    let loaded = load(config_path, local, &target, options)?;
    let params = &loaded.params;
    let mut ctx = Expand {
        path: &loaded.path,
        alias,
        host_name: String::new(),
        port: overrides
            .port
            .or_else(|| params.value("port").and_then(readconf::port))
            .unwrap_or(22),
        user: overrides
            .user
            .clone()
            .or_else(|| params.value("user").map(str::to_string)),
        local,
    };
    ctx.host_name = host_name(params, &ctx)?;
    ctx.user = Some(ctx.user.clone().unwrap_or_else(|| local.user.clone()));
    let cfg = host_config(overrides, params, &ctx)?;
    let proxy_jump = proxy_jump(overrides, params, &ctx)?;
    Ok((cfg, proxy_jump))
}

/// The settings of one host from the values that apply to it; `ctx`
/// already has its name, port and user.
fn host_config(
    overrides: &Overrides,
    params: &Params,
    ctx: &Expand,
) -> Result<HostConfig, ConfigError> {
    Ok(HostConfig {
        alias: ctx.alias.to_string(),
        host_name: ctx.host_name.clone(),
        port: ctx.port,
        user: ctx.user.clone().unwrap_or_default(),
        identity_files: identity_files(overrides, params, ctx)?,
        identities_only: ctx.flag(params, "identitiesonly", "IdentitiesOnly")?,
        identity_agent: ctx.identity_agent(params)?,
        user_known_hosts_files: ctx.known_hosts(params, "userknownhostsfile", USER_KNOWN)?,
        global_known_hosts_files: ctx.known_hosts(params, "globalknownhostsfile", GLOBAL_KNOWN)?,
        strict_host_key_checking: ctx.strict(params)?,
        batch_mode: ctx.flag(params, "batchmode", "BatchMode")?,
        connect_timeout: duration(params, "connecttimeout"),
        server_alive_interval: duration(params, "serveraliveinterval"),
        server_alive_count_max: ctx.count_max(params)?,
        compression: overrides.compression || ctx.flag(params, "compression", "Compression")?,
        address_family: ctx.address_family(params)?,
        jump_hosts: Vec::new(),
    })
}

/// `-i` first, then every `IdentityFile` that applies, expanded, each once.
fn identity_files(
    overrides: &Overrides,
    params: &Params,
    ctx: &Expand,
) -> Result<Vec<PathBuf>, ConfigError> {
    // As in OpenSSH, `-i` files get the same expansion as IdentityFile lines.
    let given = overrides
        .identity
        .iter()
        .map(|p| p.to_string_lossy().into_owned());
    let mut files = Vec::new();
    for raw in given.chain(identity_lines(params)) {
        push_unique(&mut files, ctx.path("IdentityFile", &raw)?);
    }
    Ok(files)
}

/// The raw `IdentityFile` values that apply, in order.
fn identity_lines(params: &Params) -> impl Iterator<Item = String> + '_ {
    params
        .all("identityfile")
        .filter_map(|s| s.args.first().cloned())
}

/// ConnectTimeout, ServerAliveInterval: `none` and 0 mean none.
fn duration(params: &Params, keyword: &str) -> Option<Duration> {
    let seconds = params.value(keyword).and_then(readconf::seconds)?;
    (seconds != 0).then(|| Duration::from_secs(seconds))
}

/// The `-o` lines ferry applies, as config lines (the others are ignored
/// or refused by `ssh::options`).
fn option_lines(options: &[String]) -> Result<Vec<Line>, ConfigError> {
    let mut lines = Vec::new();
    for option in options {
        if let Verdict::Apply(text) = options::check(option)? {
            lines.push(Line {
                text,
                origin: Origin::Option(option.clone()),
                included: Vec::new(),
            });
        }
    }
    Ok(lines)
}

/// The ProxyJump list in effect: `-J`, else whichever of the config's
/// ProxyJump and ProxyCommand came first.
fn proxy_jump(
    overrides: &Overrides,
    params: &Params,
    ctx: &Expand,
) -> Result<Option<String>, ConfigError> {
    let raw = match (&overrides.proxy_jump, proxy_setting(params)) {
        (Some(given), _) => given.clone(),
        (None, None) => return Ok(None),
        (None, Some(s)) if s.keyword == "proxycommand" => return proxy_command(s, ctx),
        // readconf.c's parse_jump: a `#` ends the list.
        (None, Some(s)) => s.rest.split('#').next().unwrap_or_default().to_string(),
    };
    if raw.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    ctx.tokens("ProxyJump", raw.trim(), Tokens::Proxy).map(Some)
}

/// ProxyJump or ProxyCommand, whichever applies (they share one value).
fn proxy_setting(params: &Params) -> Option<&Setting> {
    params
        .get("proxyjump")
        .or_else(|| params.get("proxycommand"))
}

/// A ProxyCommand other than `none` is refused rather than ignored:
/// connecting directly instead would reach another network path than the
/// user set up.
fn proxy_command(setting: &Setting, ctx: &Expand) -> Result<Option<String>, ConfigError> {
    if let [none] = setting.args.as_slice() {
        if none.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
    }
    Err(ConfigError::ProxyCommand {
        origin: describe_origin(&setting.origin),
        host: ctx.alias.to_string(),
        command: setting.rest.clone(),
    })
}

fn describe_origin(origin: &Origin) -> String {
    match origin {
        Origin::Option(option) => format!("-o {option}"),
        Origin::File { path, line } => format!("ssh config {}, line {line}", path.display()),
    }
}

const USER_KNOWN: &[&str] = &["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
const GLOBAL_KNOWN: &[&str] = &["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// A config read for one host: the values that apply to it, and the
/// file's path for messages.
struct Loaded {
    path: PathBuf,
    params: Params,
}

/// Reads the config file with its `Include`s, puts the `-o` lines before
/// it, and walks them for `target`.
fn load(
    config_path: Option<&Path>,
    local: &Local,
    target: &Target,
    options: Vec<Line>,
) -> Result<Loaded, ConfigError> {
    let path = match config_path {
        Some(p) => p.to_path_buf(),
        None => local.home.join(".ssh").join("config"),
    };
    let mut lines = options;
    if let Some(text) = read_config(&path, config_path.is_none())? {
        lines.extend(include::expand(&path, &text, &local.home)?);
    }
    let params = readconf::apply(&lines, target)?;
    Ok(Loaded { path, params })
}

/// The file's text; `None` for `-F none`, and for the implicit default
/// file when it does not exist.
fn read_config(path: &Path, implicit: bool) -> Result<Option<String>, ConfigError> {
    if !implicit && path == Path::new("none") {
        return Ok(None);
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if implicit && e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn push_unique(list: &mut Vec<PathBuf>, path: PathBuf) {
    if !list.contains(&path) {
        list.push(path);
    }
}

/// Which `%` tokens a keyword accepts (ssh_config(5), TOKENS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokens {
    /// HostName: `%%` and `%h` (the alias).
    HostName,
    /// ProxyJump: `%% %h %n %p %r`.
    Proxy,
    /// File options and IdentityAgent.
    Files,
}

impl Tokens {
    fn allowed(self) -> &'static str {
        match self {
            Tokens::HostName => "%% and %h",
            Tokens::Proxy => "%% %h %n %p %r",
            Tokens::Files => "%% %C %d %h %i %k %L %l %n %p %r %u",
        }
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
        let expanded = self.tokens(keyword, raw, Tokens::Files)?;
        Ok(expand_tilde(&expanded, &self.local.home))
    }

    fn tokens(&self, keyword: &'static str, raw: &str, set: Tokens) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let token = chars.next().unwrap_or('%');
            match self.token(token, set) {
                Some(value) => out.push_str(&value),
                None => return Err(self.bad_token(keyword, raw, token, set)),
            }
        }
        Ok(out)
    }

    fn token(&self, token: char, set: Tokens) -> Option<String> {
        match (token, set) {
            ('%', _) => Some("%".to_string()),
            ('h', Tokens::HostName) => Some(self.alias.to_string()),
            (_, Tokens::HostName) => None,
            ('h', _) => Some(self.host_name.clone()),
            // OpenSSH expands these to the name exactly as typed.
            ('n', _) => Some(self.alias.to_string()),
            ('p', _) => Some(self.port.to_string()),
            ('r', _) => self.user.clone(),
            (_, Tokens::Proxy) => None,
            ('k', _) => Some(self.alias.to_string()),
            ('C', _) => Some(self.connection_hash()),
            ('u', _) => Some(self.local.user.clone()),
            ('d', _) => Some(self.local.home.to_string_lossy().into_owned()),
            // SAFETY: getuid cannot fail and has no preconditions.
            ('i', _) => Some(unsafe { libc::getuid() }.to_string()),
            ('l', _) => local_host_name(),
            ('L', _) => {
                local_host_name().map(|h| h.split('.').next().unwrap_or_default().to_string())
            }
            _ => None,
        }
    }

    /// `%C`: OpenSSH's hash of `%l%h%p%r`, in hex.
    fn connection_hash(&self) -> String {
        use sha1::{Digest, Sha1};
        let mut hash = Sha1::new();
        hash.update(local_host_name().unwrap_or_default());
        hash.update(&self.host_name);
        hash.update(self.port.to_string());
        hash.update(self.user.as_deref().unwrap_or_default());
        hex::encode(hash.finalize())
    }

    fn bad_token(&self, keyword: &'static str, raw: &str, token: char, set: Tokens) -> ConfigError {
        ConfigError::BadToken {
            path: self.path.to_path_buf(),
            host: self.alias.to_string(),
            keyword,
            value: raw.to_string(),
            token,
            allowed: set.allowed(),
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

    fn flag(&self, params: &Params, key: &str, keyword: &'static str) -> Result<bool, ConfigError> {
        let Some(value) = params.value(key) else {
            return Ok(false);
        };
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(self.bad_value(keyword, value, "yes or no")),
        }
    }

    fn strict(&self, params: &Params) -> Result<StrictHostKeyChecking, ConfigError> {
        let Some(value) = params.value("stricthostkeychecking") else {
            return Ok(StrictHostKeyChecking::Ask);
        };
        StrictHostKeyChecking::parse(value).ok_or_else(|| {
            self.bad_value("StrictHostKeyChecking", value, "yes, accept-new, no or ask")
        })
    }

    fn count_max(&self, params: &Params) -> Result<u32, ConfigError> {
        let Some(value) = params.value("serveralivecountmax") else {
            return Ok(3);
        };
        value
            .parse()
            .map_err(|_| self.bad_value("ServerAliveCountMax", value, "a whole number"))
    }

    /// `none`, `SSH_AUTH_SOCK`, `$VAR` (a variable naming the socket), or
    /// a socket path with `~` and tokens.
    fn identity_agent(&self, params: &Params) -> Result<IdentityAgent, ConfigError> {
        let Some(value) = params.value("identityagent") else {
            return Ok(IdentityAgent::Environment(AUTH_SOCK.to_string()));
        };
        if value.eq_ignore_ascii_case("none") {
            return Ok(IdentityAgent::None);
        }
        if value == AUTH_SOCK {
            return Ok(IdentityAgent::Environment(AUTH_SOCK.to_string()));
        }
        if let Some(var) = value.strip_prefix('$') {
            let var = var.trim_start_matches('{').trim_end_matches('}');
            if var.is_empty() {
                return Err(self.bad_value("IdentityAgent", value, "none, a path or $VARIABLE"));
            }
            return Ok(IdentityAgent::Environment(var.to_string()));
        }
        Ok(IdentityAgent::Socket(self.path("IdentityAgent", value)?))
    }

    fn address_family(&self, params: &Params) -> Result<AddressFamily, ConfigError> {
        let Some(value) = params.value("addressfamily") else {
            return Ok(AddressFamily::Any);
        };
        match value.to_ascii_lowercase().as_str() {
            "any" => Ok(AddressFamily::Any),
            "inet" => Ok(AddressFamily::Inet),
            "inet6" => Ok(AddressFamily::Inet6),
            _ => Err(self.bad_value("AddressFamily", value, "any, inet or inet6")),
        }
    }

    /// `UserKnownHostsFile` / `GlobalKnownHostsFile`: several files, or `none`.
    fn known_hosts(
        &self,
        params: &Params,
        key: &str,
        defaults: &[&str],
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let keyword = if key.starts_with("user") {
            "UserKnownHostsFile"
        } else {
            "GlobalKnownHostsFile"
        };
        let values: Vec<&str> = match params.get(key) {
            // readconf.c allows `none` only alone.
            Some(s) if s.args.iter().any(|a| a.eq_ignore_ascii_case("none")) => {
                return Ok(Vec::new())
            }
            Some(s) => s.args.iter().map(String::as_str).collect(),
            None => defaults.to_vec(),
        };
        values.iter().map(|raw| self.path(keyword, raw)).collect()
    }
}

/// OpenSSH lower-cases the final name (DNS and known_hosts lookups are
/// case-insensitive), whether it came from HostName or the alias.
fn host_name(params: &Params, ctx: &Expand) -> Result<String, ConfigError> {
    let name = match params.value("hostname") {
        Some(raw) => ctx.tokens("HostName", raw, Tokens::HostName)?,
        None => ctx.alias.to_string(),
    };
    Ok(name.to_lowercase())
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
    use std::collections::HashMap;
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
            ..Overrides::default()
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

    fn ssh_dash_g(config: &Path, alias: &str) -> Option<HashMap<String, String>> {
        ssh_dash_g_with(config, alias, &[])
    }

    /// `ssh -G`'s settings by name (see `dash_g`).
    fn ssh_dash_g_with(
        config: &Path,
        alias: &str,
        args: &[&str],
    ) -> Option<HashMap<String, String>> {
        super::dash_g::dash_g(config, alias, args, None).map(|out| out.into_iter().collect())
    }

    // ---- Include ----

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn include_reads_relative_globs_under_home_ssh_in_order() {
        let f = fixture("Include conf.d/*.conf\nHost x\n  User outer\n  Port 3003\n");
        write(
            &f.home(".ssh/conf.d/20-b.conf"),
            "Host x\n  Port 2002\n  User b\n",
        );
        write(&f.home(".ssh/conf.d/10-a.conf"), "Host x\n  Port 1001\n");
        write(&f.home(".ssh/conf.d/30-c.txt"), "Host x\n  Port 9\n");
        let cfg = f.resolve("x");
        assert_eq!((cfg.port, cfg.user.as_str()), (1001, "b"));
        // No match is no error, as in OpenSSH.
        let g = fixture("Include nothing-here/*\nHost y\n  Port 7\n");
        assert_eq!(g.resolve("y").port, 7);
    }

    #[test]
    fn include_inside_a_host_block_applies_only_there() {
        let f = fixture("");
        let web = f.dir.path().join("web.conf");
        write(
            &web,
            "Port 2222\nIdentityFile /k/web\nHost other\n  User fromother\n",
        );
        let text = format!(
            "Host web\n  Include {}\n  User webuser\nHost *\n  Port 9\n",
            web.display()
        );
        write(&f.config, &text);
        let cfg = f.resolve("web");
        assert_eq!((cfg.port, cfg.user.as_str()), (2222, "webuser"));
        assert_eq!(cfg.identity_files, vec![PathBuf::from("/k/web")]);
        // For another host the block does not apply, so neither does
        // anything in the file it includes.
        let other = f.resolve("other");
        assert_eq!((other.port, other.user.as_str()), (9, "localuser"));
        assert!(other.identity_files.is_empty());

        let mut f = f;
        f.local.user = local_user().expect("login name");
        for alias in ["web", "other"] {
            let Some(ssh) = ssh_dash_g(&f.config, alias) else {
                return; // ssh not installed
            };
            let cfg = f.resolve(alias);
            assert_eq!(ssh.get("port"), Some(&cfg.port.to_string()), "{alias}");
            assert_eq!(ssh.get("user"), Some(&cfg.user), "{alias}");
        }
    }

    #[test]
    fn include_errors_name_the_included_file_and_line() {
        let f = fixture("");
        let bad = f.dir.path().join("bad.conf");
        write(&bad, "Host a\n  Port notanumber\n");
        write(&f.config, &format!("Host *\n  Include {}\n", bad.display()));
        let err = resolve_in("a", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { path, line: 2, .. } if path == &bad),
            "{err:?}"
        );

        let looped = f.dir.path().join("loop.conf");
        write(&looped, &format!("Include {}\n", looped.display()));
        write(&f.config, &format!("Include {}\n", looped.display()));
        let err = resolve_in("a", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(err.to_string().contains("nested Includes"), "{err}");
    }

    #[test]
    fn dash_f_none_reads_no_file() {
        let f = fixture("");
        let cfg = resolve_in(
            "h",
            Some(Path::new("none")),
            &Overrides::default(),
            &f.local,
        )
        .expect("resolve");
        assert_eq!(cfg.port, 22);
    }

    // ---- -o options ----

    fn with_options(options: &[&str]) -> Overrides {
        Overrides {
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Overrides::default()
        }
    }

    #[test]
    fn dash_o_options_come_before_the_config_file() {
        let f = fixture(
            "Port 1000\nHost h\n  Port 2022\n  User cfguser\n  StrictHostKeyChecking yes\n  \
             IdentityFile /k/cfg\n  Compression no\n",
        );
        let overrides = with_options(&[
            "Port=3033",
            "StrictHostKeyChecking no",
            "IdentityFile=/k/opt",
            "LogLevel=ERROR",
            "Compression=yes",
        ]);
        let cfg = f.resolve_with("h", &overrides);
        assert_eq!((cfg.port, cfg.user.as_str()), (3033, "cfguser"));
        assert_eq!(cfg.strict_host_key_checking, StrictHostKeyChecking::No);
        assert_eq!(
            cfg.identity_files,
            vec![PathBuf::from("/k/opt"), PathBuf::from("/k/cfg")]
        );
        assert!(cfg.compression);
        // -p beats -o Port, as in ssh.
        let port = Overrides {
            port: Some(4044),
            ..overrides
        };
        assert_eq!(f.resolve_with("h", &port).port, 4044);

        let mut f = f;
        f.local.user = local_user().expect("login name");
        let Some(ssh) = ssh_dash_g_with(&f.config, "h", &["-o", "Port=3033"]) else {
            return; // ssh not installed
        };
        assert_eq!(ssh.get("port").map(String::as_str), Some("3033"));
    }

    #[test]
    fn dash_o_errors_name_the_option() {
        let f = fixture("Host h\n  Port 22\n");
        let err = |options: &[&str]| {
            resolve_in("h", Some(&f.config), &with_options(options), &f.local)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["LocalForward=8080:localhost:80"]),
            "-o LocalForward=8080:localhost:80: ferry does not support LocalForward (it does not run ssh)"
        );
        assert!(
            err(&["Port=abc"]).starts_with("-o Port=abc: "),
            "{}",
            err(&["Port=abc"])
        );
        assert!(err(&["Bogus=1"]).contains("unknown ssh option"));
        assert!(err(&["StrictHostKeyChecking=maybe"]).contains("StrictHostKeyChecking"));
    }

    // ---- ProxyJump and ProxyCommand ----

    const JUMPS: &str =
        "Host target\n  HostName Target.Internal\n  ProxyJump hopuser@hop1:2201,hop2\n\
        Host hop1\n  HostName 10.0.0.1\n  User h1\n  Port 1111\n\
        Host hop2\n  HostName 10.0.0.2\n  Port 2202\n  UserKnownHostsFile /kh/hop2\n\
        Host tok\n  HostName real.example\n  User u\n  Port 2200\n  ProxyJump %r@%h-jump\n\
        Host pc\n  ProxyCommand nc %h %p\n\
        Host pcnone\n  ProxyCommand none\n  ProxyJump hop1\n\
        Host jumpfirst\n  ProxyJump hop1\n  ProxyCommand nc %h %p\n\
        Host commandfirst\n  ProxyCommand ssh -W %h:%p hop1\n  ProxyJump hop1\n";

    fn hops(cfg: &HostConfig) -> Vec<(String, String, u16, String)> {
        cfg.jump_hosts
            .iter()
            .map(|h| (h.alias.clone(), h.host_name.clone(), h.port, h.user.clone()))
            .collect()
    }

    fn hop(alias: &str, host: &str, port: u16, user: &str) -> (String, String, u16, String) {
        (alias.into(), host.into(), port, user.into())
    }

    #[test]
    fn proxy_jump_hosts_are_resolved_under_their_own_names() {
        let f = fixture(JUMPS);
        let cfg = f.resolve("target");
        assert_eq!(
            hops(&cfg),
            [
                hop("hop1", "10.0.0.1", 2201, "hopuser"),
                hop("hop2", "10.0.0.2", 2202, "localuser")
            ]
        );
        assert_eq!(
            cfg.jump_hosts[1].user_known_hosts_files,
            [PathBuf::from("/kh/hop2")]
        );
        assert!(cfg.jump_hosts.iter().all(|h| h.jump_hosts.is_empty()));
        // -J beats the config; none disables it.
        let given = |jump: &str| Overrides {
            proxy_jump: Some(jump.to_string()),
            ..Overrides::default()
        };
        assert_eq!(
            hops(&f.resolve_with("target", &given("hop2"))),
            [hop("hop2", "10.0.0.2", 2202, "localuser")]
        );
        assert!(f
            .resolve_with("target", &given("none"))
            .jump_hosts
            .is_empty());
        assert!(f
            .resolve_with("target", &with_options(&["ProxyJump=none"]))
            .jump_hosts
            .is_empty());
        // OpenSSH expands %r %h (and %n %p) in ProxyJump, as part of the
        // proxy command it builds from it (it refuses `:%p`, not a number).
        assert_eq!(
            hops(&f.resolve("tok")),
            [hop("real.example-jump", "real.example-jump", 22, "u")]
        );
    }

    #[test]
    fn proxy_command_is_refused_unless_none_or_overridden() {
        let f = fixture(JUMPS);
        let err = resolve_in("pc", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 18") && text.contains("ProxyCommand \"nc %h %p\""),
            "{text}"
        );
        assert!(text.contains("use ProxyJump"), "{text}");
        // First of ProxyJump and ProxyCommand wins, as in OpenSSH.
        assert!(f.resolve("pcnone").jump_hosts.is_empty());
        assert_eq!(hops(&f.resolve("jumpfirst")).len(), 1);
        assert!(resolve_in(
            "commandfirst",
            Some(&f.config),
            &Overrides::default(),
            &f.local
        )
        .is_err());
        // -J, or -o ProxyCommand=none, comes before the config's ProxyCommand.
        let jump = Overrides {
            proxy_jump: Some("hop1".into()),
            ..Overrides::default()
        };
        assert_eq!(hops(&f.resolve_with("pc", &jump)).len(), 1);
        assert!(f
            .resolve_with("pc", &with_options(&["ProxyCommand=none"]))
            .jump_hosts
            .is_empty());
        let err = resolve_in(
            "h",
            Some(&f.config),
            &with_options(&["ProxyCommand=nc %h %p"]),
            &f.local,
        );
        assert!(err.unwrap_err().to_string().contains("use ProxyJump"));
    }

    #[test]
    fn proxy_jump_agrees_with_ssh_dash_g() {
        let f = fixture(JUMPS);
        for (alias, args) in [
            ("target", vec![]),
            ("target", vec!["-J", "a,b"]),
            ("pcnone", vec![]),
        ] {
            let Some(ssh) = ssh_dash_g_with(&f.config, alias, &args) else {
                return; // ssh not installed
            };
            let cfg = f.resolve_with(
                alias,
                &Overrides {
                    proxy_jump: args.get(1).map(|s| s.to_string()),
                    ..Overrides::default()
                },
            );
            let ours: Vec<&str> = cfg.jump_hosts.iter().map(|h| h.alias.as_str()).collect();
            let theirs: Vec<String> = ssh
                .get("proxyjump")
                .map(|v| {
                    v.split(',')
                        .map(|h| {
                            h.rsplit('@')
                                .next()
                                .unwrap_or(h)
                                .split(':')
                                .next()
                                .unwrap_or(h)
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(ours, theirs, "{alias} {args:?}");
        }
    }

    // ---- IdentityAgent, Compression, AddressFamily ----

    #[test]
    fn identity_agent_values() {
        let f = fixture(
            "Host none\n  IdentityAgent none\nHost env\n  IdentityAgent SSH_AUTH_SOCK\n\
             Host var\n  IdentityAgent $MY_AGENT\nHost path\n  IdentityAgent ~/agent.%r.%h.sock\n  \
             User deploy\n",
        );
        assert_eq!(f.resolve("none").identity_agent, IdentityAgent::None);
        let default = IdentityAgent::Environment("SSH_AUTH_SOCK".into());
        assert_eq!(f.resolve("env").identity_agent, default);
        assert_eq!(f.resolve("unset").identity_agent, default);
        assert_eq!(
            f.resolve("var").identity_agent,
            IdentityAgent::Environment("MY_AGENT".into())
        );
        assert_eq!(
            f.resolve("path").identity_agent,
            IdentityAgent::Socket(f.home("agent.deploy.path.sock"))
        );
        let given = f.resolve_with("none", &with_options(&["IdentityAgent=/run/a.sock"]));
        assert_eq!(
            given.identity_agent,
            IdentityAgent::Socket(PathBuf::from("/run/a.sock"))
        );
    }

    #[test]
    fn compression_from_config_or_command_line() {
        let f = fixture("Host on\n  Compression Yes\nHost off\n  Compression no\n");
        assert!(f.resolve("on").compression);
        assert!(!f.resolve("off").compression);
        assert!(!f.resolve("other").compression);
        let dash_c = Overrides {
            compression: true,
            ..Overrides::default()
        };
        assert!(f.resolve_with("off", &dash_c).compression);
    }

    #[test]
    fn address_family_values() {
        let f = fixture("Host four\n  AddressFamily inet\nHost bad\n  AddressFamily ipx\n");
        assert_eq!(f.resolve("four").address_family, AddressFamily::Inet);
        assert_eq!(f.resolve("x").address_family, AddressFamily::Any);
        let six = f.resolve_with("x", &with_options(&["AddressFamily=inet6"]));
        assert_eq!(six.address_family, AddressFamily::Inet6);
        assert!(resolve_in("bad", Some(&f.config), &Overrides::default(), &f.local).is_err());
    }

    #[test]
    fn connection_hash_token_and_tokens_in_dash_i_agree_with_ssh() {
        let mut f = fixture(
            "Host h\n  HostName Some.Host\n  User bob\n  Port 2200\n  UserKnownHostsFile /kh/%C\n",
        );
        f.local.user = local_user().expect("login name");
        let given = Overrides {
            identity: Some(PathBuf::from("/i/%h.%p.%r")),
            ..Overrides::default()
        };
        let cfg = f.resolve_with("h", &given);
        assert_eq!(cfg.identity_files, [PathBuf::from("/i/some.host.2200.bob")]);
        let Some(ssh) = ssh_dash_g(&f.config, "h") else {
            return; // ssh not installed
        };
        let ours = cfg.user_known_hosts_files[0].display().to_string();
        assert_eq!(ssh.get("userknownhostsfile"), Some(&ours));
        assert_eq!(ours.len(), "/kh/".len() + 40, "{ours}");
    }

    #[test]
    fn tokens_are_refused_where_openssh_has_none() {
        let f = fixture("Host a\n  HostName %p.example\nHost b\n  ProxyJump %u@j\n");
        let err = resolve_in("a", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadToken { token: 'p', .. }),
            "{err:?}"
        );
        let err = resolve_in("b", Some(&f.config), &Overrides::default(), &f.local).unwrap_err();
        assert!(err.to_string().contains("allows %% %h %n %p %r"), "{err}");
    }
}

#[cfg(test)]
mod dash_g;
