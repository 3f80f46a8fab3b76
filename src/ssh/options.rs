//! `ssh -o` options: which keywords ferry honours, which it accepts and
//! ignores, and which it refuses.
//!
//! OpenSSH applies `-o` lines as if they came before the config file, so by
//! "first value obtained wins" they beat it; `ssh::config` does exactly
//! that with the lines [`check`] lets through. ferry does not run ssh, so a
//! keyword is only worth accepting when ferry reads it itself, or when
//! ignoring it cannot change what is transferred or whom ferry trusts
//! (logging, connection sharing, terminal and X11 settings, ...). Anything
//! else is refused with a message naming it, rather than silently dropped.
//!
//! - Honoured: AddressFamily, BatchMode, Compression, ConnectTimeout,
//!   GlobalKnownHostsFile, HostName, IdentitiesOnly, IdentityAgent,
//!   IdentityFile, Port, ProxyCommand (`none` only), ProxyJump,
//!   ServerAliveCountMax, ServerAliveInterval, StrictHostKeyChecking, User,
//!   UserKnownHostsFile.
//! - Accepted and ignored: AddKeysToAgent, CheckHostIP, ConnectionAttempts,
//!   ControlMaster, ControlPath, ControlPersist, EscapeChar,
//!   ExitOnForwardFailure, FingerprintHash, ForwardAgent, ForwardX11,
//!   ForwardX11Timeout, ForwardX11Trusted, GSSAPIDelegateCredentials,
//!   HashKnownHosts, IPQoS, LogLevel, LogVerbose,
//!   NoHostAuthenticationForLocalhost, NumberOfPasswordPrompts,
//!   PermitLocalCommand, RekeyLimit, RequestTTY, SendEnv, SetEnv, StdinNull,
//!   SyslogFacility, TCPKeepAlive, UpdateHostKeys, UseKeychain,
//!   VerifyHostKeyDNS, VisualHostKey.
//! - Refused: everything else (forwardings, commands, algorithm lists,
//!   authentication-method switches, HostKeyAlias, CertificateFile, ...).
//!
//! `-o` applies to the host being connected to, not to its jump hosts
//! (OpenSSH does not pass it on to them either).

use super::config::ConfigError;
use super::readconf::split_keyword;

/// Keywords ferry reads from ssh config, in OpenSSH's spelling.
const HONOURED: &[&str] = &[
    "AddressFamily",
    "BatchMode",
    "Compression",
    "ConnectTimeout",
    "GlobalKnownHostsFile",
    "HostName",
    "IdentitiesOnly",
    "IdentityAgent",
    "IdentityFile",
    "Port",
    "ProxyCommand",
    "ProxyJump",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "StrictHostKeyChecking",
    "User",
    "UserKnownHostsFile",
];

/// Keywords accepted and ignored: they tune or log ssh's own session
/// (terminal, X11, agent forwarding, connection sharing, logging), or make
/// ssh more lenient where ferry stays strict (CheckHostIP,
/// VerifyHostKeyDNS, NoHostAuthenticationForLocalhost). None changes what
/// ferry transfers or which host keys it accepts.
const IGNORED: &[&str] = &[
    "AddKeysToAgent",
    "CheckHostIP",
    "ConnectionAttempts",
    "ControlMaster",
    "ControlPath",
    "ControlPersist",
    "EscapeChar",
    "ExitOnForwardFailure",
    "FingerprintHash",
    "ForwardAgent",
    "ForwardX11",
    "ForwardX11Timeout",
    "ForwardX11Trusted",
    "GSSAPIDelegateCredentials",
    "HashKnownHosts",
    "IPQoS",
    "LogLevel",
    "LogVerbose",
    "NoHostAuthenticationForLocalhost",
    "NumberOfPasswordPrompts",
    "PermitLocalCommand",
    "RekeyLimit",
    "RequestTTY",
    "SendEnv",
    "SetEnv",
    "StdinNull",
    "SyslogFacility",
    "TCPKeepAlive",
    "UpdateHostKeys",
    "UseKeychain",
    "VerifyHostKeyDNS",
    "VisualHostKey",
];

/// Keywords refused with a specific reason; every other known keyword gets
/// the generic one.
const REFUSED: &[(&str, &str)] = &[
    (
        "ProxyCommand",
        "it connects by itself and runs no proxy command; use ProxyJump (-J) instead",
    ),
    (
        "Ciphers",
        "it chooses its own algorithms and cannot be limited to a list",
    ),
    (
        "MACs",
        "it chooses its own algorithms and cannot be limited to a list",
    ),
    (
        "KexAlgorithms",
        "it chooses its own algorithms and cannot be limited to a list",
    ),
    (
        "HostKeyAlgorithms",
        "it chooses its own algorithms and cannot be limited to a list",
    ),
    (
        "PasswordAuthentication",
        "it cannot switch authentication methods off one by one; BatchMode yes stops every prompt",
    ),
    (
        "KbdInteractiveAuthentication",
        "it cannot switch authentication methods off one by one; BatchMode yes stops every prompt",
    ),
    (
        "PubkeyAuthentication",
        "it cannot switch authentication methods off one by one; BatchMode yes stops every prompt",
    ),
    (
        "PreferredAuthentications",
        "it uses OpenSSH's default order; BatchMode yes stops every prompt",
    ),
];

/// Other keywords OpenSSH knows, refused because ferry cannot honour them.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "BindAddress",
    "BindInterface",
    "CanonicalDomains",
    "CanonicalizeFallbackLocal",
    "CanonicalizeHostname",
    "CanonicalizeMaxDots",
    "CanonicalizePermittedCNAMEs",
    "CASignatureAlgorithms",
    "CertificateFile",
    "ClearAllForwardings",
    "DynamicForward",
    "EnableEscapeCommandline",
    "EnableSSHKeysign",
    "ForkAfterAuthentication",
    "GatewayPorts",
    "GSSAPIAuthentication",
    "HostbasedAcceptedAlgorithms",
    "HostbasedAuthentication",
    "HostKeyAlias",
    "Host",
    "IgnoreUnknown",
    "Include",
    "KbdInteractiveDevices",
    "KnownHostsCommand",
    "LocalCommand",
    "LocalForward",
    "Match",
    "PermitRemoteOpen",
    "PKCS11Provider",
    "ProxyUseFdpass",
    "PubkeyAcceptedAlgorithms",
    "PubkeyAcceptedKeyTypes",
    "RemoteCommand",
    "RemoteForward",
    "RequiredRSASize",
    "RevokedHostKeys",
    "SecurityKeyProvider",
    "SessionType",
    "StreamLocalBindMask",
    "StreamLocalBindUnlink",
    "Tag",
    "Tunnel",
    "TunnelDevice",
    "XAuthLocation",
];

/// What to do with one `-o` line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Apply it, as this config line (`Keyword value`).
    Apply(String),
    /// Accept it and do nothing.
    Ignore,
}

/// Checks one `-o` option (`Key=Value` or `Key Value`).
pub(crate) fn check(option: &str) -> Result<Verdict, ConfigError> {
    let refuse = |reason: String| ConfigError::Option {
        option: option.to_string(),
        reason,
    };
    let (keyword, value) = split_keyword(option.trim());
    if keyword.is_empty() {
        return Err(refuse("an ssh option is Keyword=value".into()));
    }
    if value.is_empty() {
        return Err(refuse(format!("{keyword} needs a value (Keyword=value)")));
    }
    if let Some(name) = find(HONOURED, keyword) {
        if name == "ProxyCommand" && !value.eq_ignore_ascii_case("none") {
            return Err(unsupported(option, name));
        }
        return Ok(Verdict::Apply(format!("{name} {value}")));
    }
    if let Some(name) = find(IGNORED, keyword) {
        tracing::debug!("ssh option -o {option}: {name} has no effect on ferry, ignored");
        return Ok(Verdict::Ignore);
    }
    let known = REFUSED.iter().map(|(name, _)| *name);
    match known
        .chain(KNOWN_UNSUPPORTED.iter().copied())
        .find(|n| n.eq_ignore_ascii_case(keyword))
    {
        Some(name) => Err(unsupported(option, name)),
        None => Err(refuse(format!(
            "unknown ssh option {keyword:?}; check its spelling (see man ssh_config)"
        ))),
    }
}

fn find(list: &[&'static str], keyword: &str) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(keyword))
}

fn unsupported(option: &str, name: &str) -> ConfigError {
    let why = REFUSED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
        .unwrap_or("it does not run ssh");
    ConfigError::Option {
        option: option.to_string(),
        reason: format!("ferry does not support {name} ({why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(option: &str) -> String {
        check(option).expect_err(option).to_string()
    }

    #[test]
    fn honoured_keywords_become_config_lines_in_canonical_spelling() {
        assert_eq!(
            check("stricthostkeychecking=yes").unwrap(),
            Verdict::Apply("StrictHostKeyChecking yes".into())
        );
        assert_eq!(
            check("Port 2222").unwrap(),
            Verdict::Apply("Port 2222".into())
        );
        assert_eq!(
            check("UserKnownHostsFile = /dev/null").unwrap(),
            Verdict::Apply("UserKnownHostsFile /dev/null".into())
        );
        assert_eq!(
            check("ProxyCommand=none").unwrap(),
            Verdict::Apply("ProxyCommand none".into())
        );
    }

    #[test]
    fn harmless_keywords_are_ignored() {
        for option in ["LogLevel=ERROR", "ControlMaster auto", "ForwardX11=no"] {
            assert_eq!(check(option).unwrap(), Verdict::Ignore, "{option}");
        }
    }

    #[test]
    fn refused_keywords_name_the_option() {
        assert_eq!(
            message("LocalForward=8080:localhost:80"),
            "-o LocalForward=8080:localhost:80: ferry does not support LocalForward (it does not run ssh)"
        );
        assert!(message("ProxyCommand=nc %h %p").contains("use ProxyJump"));
        assert!(message("ciphers=aes128-ctr").contains("ferry does not support Ciphers"));
        assert!(message("PasswordAuthentication=no").contains("BatchMode yes"));
        assert!(message("Frobnicate=yes").contains("unknown ssh option \"Frobnicate\""));
        assert!(message("Port").contains("needs a value"));
    }
}
