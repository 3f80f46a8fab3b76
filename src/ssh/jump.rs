//! ProxyJump (`ssh -J`): reading the list of jump hosts and resolving it
//! into the hosts to dial, in order, each through the ssh config under its
//! own name. `ssh::Connection::open` then connects to the first and tunnels
//! each next connection through the one before.
//!
//! This follows what OpenSSH does for `ProxyJump a,b,c` to a target: it
//! runs `ssh [-l user] [-p port] -J a,b -F config -W target c`, so
//! - the last jump host `c` is resolved with only its own `user@` and
//!   `:port` from the list (not the target's options, `-o`, `-i` or `-C`),
//!   and the rest of the list as its ProxyJump;
//! - a jump host with nothing before it in the list (here `a`) is resolved
//!   with its own config's ProxyJump, which may lead on to further hosts:
//!   this recursion is followed, and a loop (the same host reached again
//!   with the same settings) is an error instead of OpenSSH's endless
//!   chain of ssh processes;
//! - at most [`MAX_HOPS`] jump hosts in all.
//!
//! Each jump host's key is checked against its own known_hosts files under
//! its own name, with its own StrictHostKeyChecking. One connect timeout,
//! the target's ConnectTimeout (else `--timeout`), bounds the whole chain;
//! a jump host's own ConnectTimeout is not used (OpenSSH gives each of its
//! ssh processes its own).

use super::config::{ConfigError, HostConfig, Overrides};

/// More jump hosts than this is taken for a loop in ssh config.
pub(crate) const MAX_HOPS: usize = 16;

/// One `[user@]host[:port]` or `ssh://[user@]host[:port]` of a ProxyJump list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// As written, to pass the rest of a list on.
    pub text: String,
}

/// Parses a ProxyJump value: `None` for `none`, else the hosts in order.
pub(crate) fn parse_list(value: &str) -> Result<Option<Vec<JumpSpec>>, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if value.is_empty() {
        return Err("an empty ProxyJump; give [user@]host[:port] or none".into());
    }
    value
        .split(',')
        .map(parse_one)
        .collect::<Result<_, _>>()
        .map(Some)
}

fn parse_one(text: &str) -> Result<JumpSpec, String> {
    let bad = |why: &str| {
        format!(
            "jump host {text:?}: {why}; expected [user@]host[:port] or ssh://[user@]host[:port]"
        )
    };
    let text = text.trim();
    let rest = match text.strip_prefix("ssh://") {
        Some(rest) => rest.strip_suffix('/').unwrap_or(rest),
        None => text,
    };
    if rest.contains('/') {
        return Err(bad("a jump host takes no path"));
    }
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((user, hp)) if !user.is_empty() => (Some(user.to_string()), hp),
        Some(_) => return Err(bad("empty user name")),
        None => (None, rest),
    };
    let (host, port) = split_host_port(host_port).ok_or_else(|| bad("bad host or port"))?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("no host name"));
    }
    Ok(JumpSpec {
        user,
        host,
        port,
        text: text.to_string(),
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// A host resolved through ssh config, with the ProxyJump list in effect
/// for it (already token-expanded; `None` when there is none or `none`).
pub(crate) type Resolved = (HostConfig, Option<String>);

/// What identifies a resolution: the same key resolves the same way, so
/// meeting it again below itself is a loop.
type Key = (String, Option<String>, Option<u16>, Option<String>);

/// The jump hosts to dial for a host whose ProxyJump is `proxy_jump`, first
/// to dial first. `resolve` resolves a jump host through ssh config;
/// `target` identifies the host itself when its resolution depends on
/// nothing but the key (so a config that jumps back to it is a loop).
pub(crate) fn route(
    target_alias: &str,
    target: Option<Key>,
    proxy_jump: Option<&str>,
    resolve: &mut dyn FnMut(&str, &Overrides) -> Result<Resolved, ConfigError>,
) -> Result<Vec<HostConfig>, ConfigError> {
    let mut path: Vec<Key> = target.into_iter().collect();
    let mut hops = Vec::new();
    if let Some(value) = proxy_jump {
        hops_for(target_alias, value, &mut path, &mut hops, resolve)?;
    }
    Ok(hops)
}

pub(crate) fn key(alias: &str, overrides: &Overrides) -> Key {
    (
        alias.to_string(),
        overrides.user.clone(),
        overrides.port,
        overrides.proxy_jump.clone(),
    )
}

fn hops_for(
    for_host: &str,
    value: &str,
    path: &mut Vec<Key>,
    hops: &mut Vec<HostConfig>,
    resolve: &mut dyn FnMut(&str, &Overrides) -> Result<Resolved, ConfigError>,
) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::ProxyJump {
        host: for_host.to_string(),
        value: value.to_string(),
        reason,
    };
    // Each level below adds at least one hop. Checked before going down:
    // a ProxyJump that names a new host every time (`ProxyJump j%h`) is
    // never a loop of equal keys, and would recurse until the stack ends.
    if path.len() > MAX_HOPS {
        return Err(bad(format!(
            "more than {MAX_HOPS} jump hosts; is there a loop in ssh config?"
        )));
    }
    let Some(specs) = parse_list(value).map_err(bad)? else {
        return Ok(());
    };
    let Some((last, before)) = specs.split_last() else {
        return Ok(());
    };
    let rest: Vec<&str> = before.iter().map(|s| s.text.as_str()).collect();
    let overrides = Overrides {
        user: last.user.clone(),
        port: last.port,
        proxy_jump: (!rest.is_empty()).then(|| rest.join(",")),
        ..Overrides::default()
    };
    let key = key(&last.host, &overrides);
    if path.contains(&key) {
        let names: Vec<&str> = path.iter().map(|k| k.0.as_str()).collect();
        return Err(bad(format!(
            "jump host loop: {} -> {}; give one of them ProxyJump none in ssh config",
            names.join(" -> "),
            last.host
        )));
    }
    let (hop, hop_jump) = resolve(&last.host, &overrides)?;
    if let Some(hop_jump) = hop_jump {
        path.push(key);
        hops_for(&last.host, &hop_jump, path, hops, resolve)?;
        path.pop();
    }
    if hops.len() >= MAX_HOPS {
        return Err(bad(format!(
            "more than {MAX_HOPS} jump hosts; is there a loop in ssh config?"
        )));
    }
    hops.push(hop);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(user: Option<&str>, host: &str, port: Option<u16>, text: &str) -> JumpSpec {
        JumpSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            text: text.to_string(),
        }
    }

    #[test]
    fn parses_every_form_of_jump_host() {
        let list = parse_list("a,me@b:2200,ssh://you@c:23,ssh://d/,[::1]:24,u@[fe80::1]")
            .unwrap()
            .unwrap();
        assert_eq!(
            list,
            vec![
                spec(None, "a", None, "a"),
                spec(Some("me"), "b", Some(2200), "me@b:2200"),
                spec(Some("you"), "c", Some(23), "ssh://you@c:23"),
                spec(None, "d", None, "ssh://d/"),
                spec(None, "::1", Some(24), "[::1]:24"),
                spec(Some("u"), "fe80::1", None, "u@[fe80::1]"),
            ]
        );
        assert_eq!(parse_list("None").unwrap(), None);
    }

    #[test]
    fn rejects_malformed_jump_hosts() {
        for bad in [
            "",
            "a,,b",
            "host:0",
            "host:port",
            "ssh://h/path",
            "@h",
            "[::1",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} should be refused");
        }
    }

    /// A fake ssh config: alias -> (its ProxyJump from config).
    fn resolver<'a>(
        config: &'static [(&'static str, Option<&'static str>)],
        calls: &'a mut Vec<(String, Overrides)>,
    ) -> impl FnMut(&str, &Overrides) -> Result<Resolved, ConfigError> + 'a {
        let table: HashMap<&str, Option<&str>> = config.iter().copied().collect();
        move |alias: &str, overrides: &Overrides| {
            calls.push((alias.to_string(), overrides.clone()));
            let jump = match &overrides.proxy_jump {
                Some(given) => Some(given.clone()),
                None => table.get(alias).copied().flatten().map(str::to_string),
            };
            let mut cfg = test_host(alias);
            cfg.user = overrides.user.clone().unwrap_or_else(|| "local".into());
            cfg.port = overrides.port.unwrap_or(22);
            Ok((cfg, jump))
        }
    }

    fn test_host(alias: &str) -> HostConfig {
        HostConfig::new(alias, alias, 22, "local")
    }

    fn aliases(hops: &[HostConfig]) -> Vec<&str> {
        hops.iter().map(|h| h.alias.as_str()).collect()
    }

    #[test]
    fn a_flat_chain_is_dialled_in_order_with_its_own_users_and_ports() {
        let mut calls = Vec::new();
        let mut resolve = resolver(&[], &mut calls);
        let hops = route("t", None, Some("a,u@b:2200,c"), &mut resolve).unwrap();
        assert_eq!(aliases(&hops), ["a", "b", "c"]);
        assert_eq!((hops[1].user.as_str(), hops[1].port), ("u", 2200));
        drop(resolve);
        // c is told to jump through a,b; b through a; a has no list.
        let told: Vec<Option<String>> = calls.iter().map(|(_, o)| o.proxy_jump.clone()).collect();
        assert_eq!(told, [Some("a,u@b:2200".into()), Some("a".into()), None]);
    }

    #[test]
    fn the_first_jump_hosts_own_proxy_jump_is_followed() {
        let mut calls = Vec::new();
        let mut resolve = resolver(&[("a", Some("outer")), ("outer", Some("none"))], &mut calls);
        let hops = route("t", None, Some("a,b"), &mut resolve).unwrap();
        assert_eq!(aliases(&hops), ["outer", "a", "b"]);
    }

    #[test]
    fn loops_through_config_are_refused() {
        let mut calls = Vec::new();
        let mut resolve = resolver(&[("a", Some("b")), ("b", Some("a"))], &mut calls);
        let err = route("t", None, Some("a"), &mut resolve).unwrap_err();
        assert!(
            err.to_string().contains("jump host loop: a -> b -> a"),
            "{err}"
        );

        // A host whose config jumps through itself (Host * ProxyJump x).
        let mut calls = Vec::new();
        let mut resolve = resolver(&[("x", Some("x"))], &mut calls);
        let target = key("x", &Overrides::default());
        let err = route("x", Some(target), Some("x"), &mut resolve).unwrap_err();
        assert!(err.to_string().contains("jump host loop: x -> x"), "{err}");
    }

    #[test]
    fn the_same_host_twice_in_an_explicit_list_is_no_loop() {
        let mut calls = Vec::new();
        let mut resolve = resolver(&[], &mut calls);
        let hops = route("t", None, Some("a,a"), &mut resolve).unwrap();
        assert_eq!(aliases(&hops), ["a", "a"]);
    }

    #[test]
    fn too_many_hops_are_refused() {
        let list: Vec<String> = (0..=MAX_HOPS).map(|i| format!("h{i}")).collect();
        let mut calls = Vec::new();
        let mut resolve = resolver(&[], &mut calls);
        let err = route("t", None, Some(&list.join(",")), &mut resolve).unwrap_err();
        assert!(err.to_string().contains("more than 16 jump hosts"), "{err}");
    }
}
