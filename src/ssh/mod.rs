//! SSH connections: resolve the host through ssh config, connect with a
//! timeout, check the host key against known_hosts before anything else
//! happens, authenticate in OpenSSH's order, and open the SFTP channel.

pub mod auth;
pub mod config;
pub mod known_hosts;
pub mod shell;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::PublicKey;
use russh::{cipher, ChannelMsg, Preferred};

use crate::error::{Error, Result};
use crate::protocol::client::HelperClient;
use crate::sftp::Sftp;
use config::{HostConfig, StrictHostKeyChecking};
use known_hosts::HostKeyStatus;

/// Connection-level settings that do not come from ssh config.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Whether prompts (passwords, passphrases, unknown host keys) may be shown.
    pub interactive: bool,
    /// Bound on TCP connect plus SSH handshake, when ssh config sets none.
    pub connect_timeout: Duration,
    /// Bound on each SFTP request.
    pub request_timeout: Duration,
}

/// What a remote command printed and how it ended.
#[derive(Debug, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// None when the server reported no status (killed by a signal).
    pub status: Option<u32>,
    /// stdout went past the limit and was cut.
    pub truncated: bool,
}

impl ExecOutput {
    pub fn succeeded(&self) -> bool {
        self.status == Some(0) && !self.truncated
    }
}

/// An authenticated SSH connection.
pub struct Connection {
    handle: Handle<HostKeyCheck>,
    host: String,
    request_timeout: Duration,
}

/// russh's client handler: all it does is decide on the host key.
struct HostKeyCheck {
    cfg: Arc<HostConfig>,
    interactive: bool,
    /// Why the key was refused, for the error message after russh gives up.
    refusal: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.refuse(
                "the server presented a host certificate, which ferry does not check yet".into(),
            );
            return Ok(false);
        };
        match self.decide(key).await {
            Ok(()) => Ok(true),
            Err(message) => {
                self.refuse(message);
                Ok(false)
            }
        }
    }
}

impl HostKeyCheck {
    fn refuse(&self, message: String) {
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(message);
        }
    }

    async fn decide(&self, key: &PublicKey) -> std::result::Result<(), String> {
        let cfg = &self.cfg;
        let files: Vec<PathBuf> = cfg
            .user_known_hosts_files
            .iter()
            .chain(cfg.global_known_hosts_files.iter())
            .cloned()
            .collect();
        let name = host_port_name(&cfg.host_name, cfg.port);
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = key.algorithm().to_string().to_uppercase();
        match known_hosts::check(&files, &cfg.host_name, cfg.port, key) {
            HostKeyStatus::Known => Ok(()),
            HostKeyStatus::Changed { file, line } => Err(format!(
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 The host key for {name} has changed: someone may be intercepting the \
                 connection, or the server was reinstalled.\n\
                 The {algorithm} key the server sent has fingerprint {fingerprint}.\n\
                 Offending key in {}:{line}. Nothing was transferred.\n\
                 If the change is expected, remove the old key with: ssh-keygen -R '{name}' -f {}",
                file.display(),
                file.display()
            )),
            HostKeyStatus::Revoked { file, line } => Err(format!(
                "the host key of {name} ({fingerprint}) is marked @revoked in {}:{line}; refusing to connect",
                file.display()
            )),
            HostKeyStatus::Unknown => {
                self.unknown_host(&name, &algorithm, &fingerprint, key)
                    .await
            }
        }
    }

    async fn unknown_host(
        &self,
        name: &str,
        algorithm: &str,
        fingerprint: &str,
        key: &PublicKey,
    ) -> std::result::Result<(), String> {
        let cfg = &self.cfg;
        let accept = match cfg.strict_host_key_checking {
            StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => true,
            StrictHostKeyChecking::Ask if self.interactive => {
                let question = format!(
                    "The authenticity of host '{name}' can't be established.\n\
                     {algorithm} key fingerprint is {fingerprint}.\n\
                     Are you sure you want to continue connecting (yes/no)? "
                );
                // The prompt blocks; the connection's task must not.
                tokio::task::spawn_blocking(move || ask_yes_no(&question))
                    .await
                    .unwrap_or(false)
            }
            _ => false,
        };
        if !accept {
            return Err(format!(
                "host key verification failed: the authenticity of host '{name}' can't be established.\n\
                 Its {algorithm} key fingerprint is {fingerprint}, and it is in no known_hosts file.\n\
                 Check the fingerprint with the server's administrator, then record it with \
                 `ssh-keyscan -p {} {} >> ~/.ssh/known_hosts` (or connect once with ssh), \
                 or set StrictHostKeyChecking accept-new in ssh config.",
                cfg.port, cfg.host_name
            ));
        }
        if let Some(file) = cfg.user_known_hosts_files.first() {
            if let Err(e) = known_hosts::learn(file, &cfg.host_name, cfg.port, key) {
                tracing::warn!(
                    "could not record the host key of {name} in {}: {e}",
                    file.display()
                );
            } else {
                eprintln!(
                    "Warning: Permanently added '{name}' ({algorithm}) to the list of known hosts."
                );
            }
        }
        Ok(())
    }
}

fn ask_yes_no(question: &str) -> bool {
    use std::io::Write;
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("yes")
}

/// Quotes a word for a POSIX shell: whatever it contains, the remote shell
/// sees one literal argument.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The name OpenSSH uses for a host in messages and known_hosts.
fn host_port_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Transport settings: aes-gcm where the CPU has AES instructions (it cuts the
/// client's CPU by two thirds there), a 16 MiB window for links with latency,
/// 64 KiB packets (256 KiB measured no faster on loopback, and russh logs
/// an error for packets larger than a TCP segment's maximum), and keepalives.
fn client_config(cfg: &HostConfig, silence: Duration) -> client::Config {
    let mut preferred = Preferred::default();
    if has_aes_instructions() {
        let gcm = [cipher::AES_128_GCM, cipher::AES_256_GCM];
        let rest = preferred
            .cipher
            .iter()
            .filter(|c| !gcm.contains(c))
            .copied();
        let ciphers: Vec<_> = gcm.into_iter().chain(rest).collect();
        preferred.cipher = ciphers.into();
    }
    client::Config {
        preferred,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        nodelay: true,
        keepalive_interval: Some(keepalive_interval(cfg, silence)),
        keepalive_max: cfg.server_alive_count_max as usize,
        ..Default::default()
    }
}

/// ServerAliveInterval from ssh config, or else a third of the `--timeout`
/// (at most 15 s): unlike OpenSSH, which sends none by default, ferry runs
/// unattended and must notice a dead link (ServerAliveCountMax unanswered
/// keepalives end the connection).
fn keepalive_interval(cfg: &HostConfig, silence: Duration) -> Duration {
    cfg.server_alive_interval
        .unwrap_or_else(|| (silence / 3).clamp(Duration::from_secs(1), Duration::from_secs(15)))
}

fn has_aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

impl Connection {
    /// Connects, verifies the host key and authenticates.
    pub async fn open(cfg: HostConfig, opts: &ConnectOptions) -> Result<Connection> {
        let host = host_port_name(&cfg.host_name, cfg.port);
        let limit = cfg.connect_timeout.unwrap_or(opts.connect_timeout);
        let connect_error = |reason: String| Error::Connect {
            host: host.clone(),
            reason,
        };
        let tcp = tokio::time::timeout(
            limit,
            tokio::net::TcpStream::connect((cfg.host_name.as_str(), cfg.port)),
        )
        .await
        .map_err(|_| connect_error(format!("no answer within {} s", limit.as_secs())))?
        .map_err(|e| connect_error(e.to_string()))?;
        let _ = tcp.set_nodelay(true);

        let cfg = Arc::new(cfg);
        let refusal = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck {
            cfg: cfg.clone(),
            interactive: opts.interactive,
            refusal: refusal.clone(),
        };
        let config = Arc::new(client_config(&cfg, opts.request_timeout));
        let handshake =
            tokio::time::timeout(limit, client::connect_stream(config, tcp, handler)).await;
        let refused = || refusal.lock().ok().and_then(|mut r| r.take());
        let mut handle = match handshake {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                return Err(match refused() {
                    Some(message) => Error::HostKey(message),
                    None => connect_error(format!("SSH handshake failed: {e}")),
                })
            }
            Err(_) => {
                return Err(connect_error(format!(
                    "SSH handshake timed out after {} s",
                    limit.as_secs()
                )))
            }
        };
        let auth_opts = auth::AuthOptions {
            interactive: opts.interactive && !cfg.batch_mode,
        };
        if auth_opts.interactive {
            // A person may take their time at a prompt.
            auth::authenticate(&mut handle, &cfg, &auth_opts).await?;
        } else {
            tokio::time::timeout(limit, auth::authenticate(&mut handle, &cfg, &auth_opts))
                .await
                .map_err(|_| {
                    connect_error(format!(
                        "authentication timed out after {} s",
                        limit.as_secs()
                    ))
                })??;
        }
        tracing::info!("authenticated to {host} as {}", cfg.user);
        Ok(Connection {
            handle,
            host,
            request_timeout: opts.request_timeout,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Says goodbye to the server; dropping the handle alone leaves the
    /// connection to be torn down later by russh's background task.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Runs `command` through the remote user's shell and collects what it
    /// prints (at most `limit` bytes of stdout) and its exit status. Every
    /// message of the channel is read, stderr included, so it cannot stall
    /// the connection.
    pub async fn exec(&self, command: &str, limit: usize) -> Result<ExecOutput> {
        let lost = |e: russh::Error| Error::ConnectionLost {
            host: self.host.clone(),
            detail: e.to_string(),
        };
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel.exec(true, command).await.map_err(lost)?;
        let mut out = ExecOutput::default();
        let collect = async {
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } if out.stdout.len() + data.len() <= limit => {
                        out.stdout.extend_from_slice(&data)
                    }
                    ChannelMsg::Data { .. } => out.truncated = true,
                    ChannelMsg::ExtendedData { data, .. } if out.stderr.len() < 4096 => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::Failure => break,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(self.request_timeout * 10, collect)
            .await
            .map_err(|_| Error::Timeout {
                host: self.host.clone(),
                secs: self.request_timeout.as_secs() * 10,
            })?;
        Ok(out)
    }

    /// Starts `remote_ferry --server` on an exec channel and greets it.
    pub async fn helper(&self, remote_ferry: &str) -> Result<HelperClient> {
        let command = format!("{} --server", shell_quote(remote_ferry));
        let failed = |detail: String| Error::Helper {
            host: self.host.clone(),
            detail: format!(
                "cannot use the remote helper `{command}`: {detail}; install ferry on the server, \
                 point --remote-ferry at it, or choose --remote-hash read or off"
            ),
        };
        let lost = |e: russh::Error| Error::ConnectionLost {
            host: self.host.clone(),
            detail: e.to_string(),
        };
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel.exec(true, command.as_str()).await.map_err(lost)?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(failed("the server refused to run it".into()))
                }
                Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => {
                    return Err(self.lost_or(failed("the channel closed".into())))
                }
                Some(_) => continue,
            }
        }
        let greeting = HelperClient::start(channel.into_stream());
        match tokio::time::timeout(self.request_timeout, greeting).await {
            Ok(Ok(helper)) => Ok(helper),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed("no greeting within the timeout".into())),
        }
    }

    /// Opens the SFTP subsystem, waiting for the server's answer so that a
    /// refusal is reported as such rather than as a failed SFTP handshake.
    pub async fn sftp(&self) -> Result<Sftp> {
        let lost = |e: russh::Error| Error::ConnectionLost {
            host: self.host.clone(),
            detail: e.to_string(),
        };
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(lost)?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(Error::SftpRefused {
                        host: self.host.clone(),
                        detail: "subsystem request denied".into(),
                    })
                }
                Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => {
                    return Err(self.lost_or(Error::SftpRefused {
                        host: self.host.clone(),
                        detail: "channel closed before the sftp subsystem started".into(),
                    }))
                }
                Some(_) => continue,
            }
        }
        Sftp::start(
            channel.into_stream(),
            &self.host,
            self.request_timeout.as_secs().max(1),
        )
        .await
        .map_err(|e| self.lost_or(e))
    }

    /// `error`, unless the connection itself is gone: then that is what
    /// happened (and a reconnect may fix it), not a refusal by the server.
    fn lost_or(&self, error: Error) -> Error {
        if self.handle.is_closed() {
            Error::ConnectionLost {
                host: self.host.clone(),
                detail: error.to_string(),
            }
        } else {
            error
        }
    }
}
