//! Parsing of the SRC and DEST arguments into local paths and remote specs.
//!
//! The rules are rsync's and scp's: `[user@]host:path` and `[user@][v6addr]:path`
//! are remote when the colon comes before any slash; `sftp://[user@]host[:port]/path`
//! follows OpenSSH's sftp URIs (the path after the host is relative to the login
//! directory, `//abs` is absolute). Anything else is a local path.

/// Where one command-line argument points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Local(String),
    Remote(RemoteSpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteSpec {
    pub user: Option<String>,
    /// Host name, ssh-config alias or address (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
    /// Path on the server; relative paths are relative to the login directory.
    pub path: String,
}

impl Location {
    pub(crate) fn parse(arg: &str) -> Result<Location, String> {
        if let Some(rest) = arg.strip_prefix("sftp://") {
            return parse_sftp_uri(rest).map(Location::Remote);
        }
        Ok(match parse_scp_form(arg) {
            Some(spec) => Location::Remote(spec),
            None => Location::Local(arg.to_string()),
        })
    }

    pub(crate) fn path(&self) -> &str {
        match self {
            Location::Local(p) => p,
            Location::Remote(r) => &r.path,
        }
    }

    pub(crate) fn remote(&self) -> Option<&RemoteSpec> {
        match self {
            Location::Remote(r) => Some(r),
            Location::Local(_) => None,
        }
    }
}

fn split_user(s: &str) -> (Option<String>, &str) {
    match s.rfind('@') {
        Some(at) => (Some(s[..at].to_string()), &s[at + 1..]),
        None => (None, s),
    }
}

/// `[user@]host:path` or `[user@][addr]:path`; None when the argument is local.
fn parse_scp_form(arg: &str) -> Option<RemoteSpec> {
    let colon = arg.find(':')?;
    let slash = arg.find('/');
    let bracket = arg.find('[');
    if let Some(open) = bracket.filter(|&b| b < colon) {
        let close = arg[open..].find("]:")? + open;
        if slash.is_some_and(|s| s < open) {
            return None;
        }
        let (user, _) = split_user(&arg[..open]);
        return Some(RemoteSpec {
            user,
            host: arg[open + 1..close].to_string(),
            port: None,
            path: non_empty(&arg[close + 2..]),
        });
    }
    if colon == 0 || slash.is_some_and(|s| s < colon) {
        return None;
    }
    let (user, host) = split_user(&arg[..colon]);
    if host.is_empty() {
        return None;
    }
    Some(RemoteSpec {
        user,
        host: host.to_string(),
        port: None,
        path: non_empty(&arg[colon + 1..]),
    })
}

/// `host:` means the login directory, as in scp.
fn non_empty(path: &str) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        path.to_string()
    }
}

/// %XX escapes in sftp URIs, decoded as OpenSSH does; a malformed escape is
/// an error rather than a guess.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_sftp_uri(rest: &str) -> Result<RemoteSpec, String> {
    let bad =
        || format!("invalid sftp URI 'sftp://{rest}': expected sftp://[user@]host[:port]/path");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (user, hostport) = split_user(authority);
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(bad)?;
        let port = inner[close + 1..].strip_prefix(':');
        (&inner[..close], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
        None => None,
    };
    Ok(RemoteSpec {
        user,
        host: host.to_string(),
        port,
        path: non_empty(&percent_decode(path).ok_or_else(bad)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(arg: &str) -> RemoteSpec {
        Location::parse(arg).unwrap().remote().cloned().unwrap()
    }

    #[test]
    fn scp_forms() {
        let r = remote("deploy@web1:/srv/app");
        assert_eq!(r.user.as_deref(), Some("deploy"));
        assert_eq!((r.host.as_str(), r.path.as_str()), ("web1", "/srv/app"));
        let r = remote("web1:relative/dir");
        assert_eq!((r.user, r.path.as_str()), (None, "relative/dir"));
        let r = remote("me@[::1]:/tmp/x");
        assert_eq!((r.host.as_str(), r.path.as_str()), ("::1", "/tmp/x"));
        assert_eq!(remote("host:").path, ".");
    }

    #[test]
    fn local_forms() {
        for arg in ["/abs/a:b", "./x:y", "plain", "dir/sub:file", ":odd"] {
            assert_eq!(Location::parse(arg).unwrap(), Location::Local(arg.into()));
        }
    }

    #[test]
    fn sftp_uris() {
        let r = remote("sftp://u@h:2222/rel/p");
        assert_eq!(r.user.as_deref(), Some("u"));
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("h", Some(2222), "rel/p")
        );
        assert_eq!(remote("sftp://h//abs").path, "/abs");
        assert_eq!(remote("sftp://[::1]:22/x").host, "::1");
        assert_eq!(remote("sftp://h").path, ".");
        assert!(Location::parse("sftp://h:notaport/x").is_err());
        assert_eq!(remote("sftp://h/a%20b").path, "a b");
        assert!(Location::parse("sftp://h/bad%2").is_err());
    }
}
