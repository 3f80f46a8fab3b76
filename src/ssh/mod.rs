//! SSH connections: resolve the host through ssh config, connect with a
//! timeout (through ProxyJump hosts when configured), check the host key
//! against known_hosts before anything else happens, authenticate in
//! OpenSSH's order, and open the SFTP channel.

pub(crate) mod auth;
pub(crate) mod config;
mod dial;
mod include;
pub(crate) mod jump;
pub(crate) mod known_hosts;
pub(crate) mod meter;
pub(crate) mod options;
mod pattern;
mod readconf;
pub(crate) mod rsh;
pub(crate) mod shell;
pub(crate) mod wrapper;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::PublicKey;
use russh::{cipher, compression, Channel, ChannelMsg, ChannelStream, Preferred};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::report::PromptGuard;
use config::{AddressFamily, HostConfig, StrictHostKeyChecking};
use dial::{dial, establish, on_jump_host, open_tunnel, Clock, Tunnel};
use known_hosts::HostKeyStatus;
use wrapper::Wrapper;

/// Connection-level settings that do not come from ssh config.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    /// Whether prompts (passwords, passphrases, unknown host keys) may be shown.
    pub interactive: bool,
    /// Clears the progress bars off the terminal while a prompt is shown.
    pub prompts: PromptGuard,
    /// Bound on TCP connect plus SSH handshake, when ssh config sets none.
    pub connect_timeout: Duration,
    /// Bound on each SFTP request.
    pub request_timeout: Duration,
    /// Counts the bytes of the TCP connection (to the first hop) and holds
    /// them to `--bwlimit`; None for neither.
    pub meter: Option<Arc<meter::Meter>>,
    /// `--rsync-path`'s wrapper: every program ferry runs on the server
    /// (SFTP included) is started through it.
    pub wrapper: Option<Wrapper>,
}

/// What a remote command printed and how it ended.
#[derive(Debug, Default)]
pub(crate) struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// None when the server reported no status (killed by a signal).
    pub status: Option<u32>,
    /// stdout went past the limit and was cut.
    pub truncated: bool,
}

impl ExecOutput {
    pub(crate) fn succeeded(&self) -> bool {
        self.status == Some(0) && !self.truncated
    }
}

/// An authenticated SSH connection.
pub(crate) struct Connection {
    handle: Handle<HostKeyCheck>,
    /// The jump hosts' connections, first dialled first: this connection
    /// runs through a channel of the last one, so they live as long as it.
    jumps: Vec<Handle<HostKeyCheck>>,
    /// What the user typed ([`Connection::alias`]).
    alias: String,
    /// `host` or `[host]:port` as OpenSSH names it (known_hosts, connection
    /// messages).
    host: String,
    request_timeout: Duration,
    /// Commands running at once ([`Connection::exec`]): OpenSSH allows ten
    /// sessions per connection (MaxSessions), and SFTP and the helper hold
    /// one each; one more channel is refused, not queued.
    exec_slots: tokio::sync::Semaphore,
    wrapper: Option<Wrapper>,
    /// Whether the server is this machine: a loopback address or
    /// `localhost`, reached directly (no jump host).
    on_this_machine: bool,
    /// How to dial the same server again ([`Connection::another`]); None on
    /// a connection that is itself another.
    redial: Option<Redial>,
    /// The other connections dialled from this one, closed with it.
    companions: Mutex<Vec<Arc<Connection>>>,
    /// Set once [`Connection::close`] is called: one still being dialled
    /// then is closed as soon as it is up.
    closing: std::sync::atomic::AtomicBool,
}

/// What [`Connection::another`] dials with: the host's settings, and the
/// host key the first connection accepted, which the others must present.
struct Redial {
    cfg: HostConfig,
    opts: ConnectOptions,
    host_key: PublicKey,
}

/// A channel with an SFTP server at its other end, and the command that
/// started it where `--rsync-path`'s wrapper did.
pub(crate) type SftpChannel = (ChannelStream<Msg>, Option<String>);

/// Why a channel request failed when the server said no.
const REFUSED: &str = "the server refused to run it";

/// Exec channels open at once on one connection.
const EXEC_SLOTS: usize = 6;

/// Exec channels left however many SFTP sessions a run opens.
const MIN_EXEC_SLOTS: usize = 2;

/// SFTP sessions beyond the first that fit beside the first, the helper
/// and every exec slot within OpenSSH's default `MaxSessions` (10): the
/// ones after these take an exec slot each before they open.
pub(crate) const FREE_SESSIONS: usize = 10 - 1 - 1 - EXEC_SLOTS;

/// SFTP sessions beyond the first that fit within OpenSSH's default
/// `MaxSessions` once they have taken every exec slot they may: more
/// (`--streams`) open only after these, and a server at its limit refuses
/// them rather than a command.
pub(crate) const FITTING_SESSIONS: usize = FREE_SESSIONS + EXEC_SLOTS - MIN_EXEC_SLOTS;

/// For the server at the end of a chain (not a jump host): the host key to
/// insist on, and where the accepted one is kept.
struct KeyCheck {
    pinned: Option<PublicKey>,
    accepted: Arc<Mutex<Option<PublicKey>>>,
}

/// russh's client handler: all it does is decide on the host key.
struct HostKeyCheck {
    cfg: Arc<HostConfig>,
    interactive: bool,
    prompts: PromptGuard,
    /// Why the key was refused, for the error message after russh gives up.
    refusal: Arc<Mutex<Option<String>>>,
    /// The only key to accept, without looking at known_hosts: the one the
    /// first connection to the same server accepted.
    pinned: Option<PublicKey>,
    /// The key accepted, once it is.
    accepted: Arc<Mutex<Option<PublicKey>>>,
    /// Dropped with the handler, that is when russh's session task ends
    /// however it ends: what tells a tunnel that its jump host is gone.
    _session: tokio::sync::oneshot::Sender<()>,
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
        let decided = match &self.pinned {
            Some(pinned) if pinned.key_data() == key.key_data() => Ok(()),
            Some(_) => Err(format!(
                "another connection to {} was offered a host key other than the first's ({})",
                host_port_name(&self.cfg.host_name, self.cfg.port),
                known_hosts::fingerprint(key)
            )),
            None => self.decide(key).await,
        };
        match decided {
            Ok(()) => {
                if let Ok(mut accepted) = self.accepted.lock() {
                    *accepted = Some(key.clone());
                }
                Ok(true)
            }
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
                let prompts = self.prompts.clone();
                tokio::task::spawn_blocking(move || prompts.hold(|| ask_yes_no(&question)))
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
                self.prompts.hold(|| {
                    eprintln!(
                        "Warning: Permanently added '{name}' ({algorithm}) to the list of known hosts."
                    )
                });
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
pub(crate) fn shell_quote(word: &str) -> String {
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
/// an error for packets larger than a TCP segment's maximum), keepalives,
/// and compression only when asked for.
fn client_config(cfg: &HostConfig, silence: Duration) -> client::Config {
    let mut preferred = Preferred {
        compression: compression_order(cfg.compression).into(),
        ..Preferred::default()
    };
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

/// OpenSSH's proposals: with `Compression yes`, zlib@openssh.com (which
/// starts after authentication), then zlib, then none for a server without
/// either; otherwise none alone, so the server cannot turn it on.
fn compression_order(on: bool) -> Vec<compression::Name> {
    if on {
        vec![
            compression::ZLIB_LEGACY,
            compression::ZLIB,
            compression::NONE,
        ]
    } else {
        vec![compression::NONE]
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

/// `localhost`, or an address of the loopback network.
fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    /// Connects, verifies the host key and authenticates; through the jump
    /// hosts first when `cfg` has them. One connect timeout bounds the
    /// whole chain, each host's TCP connect, handshake and (unless a person
    /// is being asked) authentication alike.
    pub(crate) async fn open(cfg: HostConfig, opts: &ConnectOptions) -> Result<Connection> {
        let (mut conn, host_key) = Connection::dial_chain(&cfg, opts, None).await?;
        conn.redial = host_key.map(|host_key| Redial {
            cfg,
            opts: opts.clone(),
            host_key,
        });
        Ok(conn)
    }

    /// Another connection to the same server, for more TCP windows across
    /// a far link: never interactive (BatchMode: a key that needs a
    /// passphrase or a password is not tried), and the server must present
    /// the host key this one accepted. Closed with this one.
    pub(crate) async fn another(&self) -> Result<Arc<Connection>> {
        let Some(redial) = &self.redial else {
            return Err(Error::Connect {
                host: self.host.clone(),
                reason: "only the first connection dials another".into(),
            });
        };
        let mut cfg = redial.cfg.clone();
        cfg.batch_mode = true;
        for hop in &mut cfg.jump_hosts {
            hop.batch_mode = true;
        }
        let opts = ConnectOptions {
            interactive: false,
            ..redial.opts.clone()
        };
        let pinned = Some(redial.host_key.clone());
        let (other, _) = Connection::dial_chain(&cfg, &opts, pinned).await?;
        let other = Arc::new(other);
        if let Ok(mut companions) = self.companions.lock() {
            if !self.closing.load(std::sync::atomic::Ordering::SeqCst) {
                companions.push(other.clone());
                return Ok(other);
            }
        }
        other.close().await;
        Err(Error::ConnectionLost {
            host: self.host.clone(),
            detail: "the run ended while another connection was dialled".into(),
        })
    }

    /// Dials `cfg` (through its jump hosts), the server's host key
    /// `pinned` if given; returns the connection and the key it accepted.
    async fn dial_chain(
        cfg: &HostConfig,
        opts: &ConnectOptions,
        pinned: Option<PublicKey>,
    ) -> Result<(Connection, Option<PublicKey>)> {
        let host = host_port_name(&cfg.host_name, cfg.port);
        let mut clock = Clock::new(cfg.connect_timeout.unwrap_or(opts.connect_timeout));
        let mut jumps: Vec<Handle<HostKeyCheck>> = Vec::new();
        let mut tunnel: Option<Tunnel> = None;
        for (i, hop) in cfg.jump_hosts.iter().enumerate() {
            let next = cfg.jump_hosts.get(i + 1).unwrap_or(cfg);
            let (hop_handle, hop_ended) = match tunnel.take() {
                None => dial(hop, opts, &mut clock, None).await,
                Some(stream) => establish(hop, stream, opts, &mut clock, None).await,
            }
            .map_err(|e| on_jump_host(e, hop))?;
            tunnel = Some(open_tunnel(&hop_handle, hop_ended, hop, next, &clock).await?);
            jumps.push(hop_handle);
        }
        let accepted = Arc::new(Mutex::new(None));
        let check = KeyCheck {
            pinned,
            accepted: accepted.clone(),
        };
        let (handle, _) = match tunnel {
            None => dial(cfg, opts, &mut clock, Some(check)).await?,
            Some(stream) => establish(cfg, stream, opts, &mut clock, Some(check)).await?,
        };
        if jumps.is_empty() {
            tracing::info!("authenticated to {host} as {}", cfg.user);
        } else {
            let via: Vec<&str> = cfg.jump_hosts.iter().map(|h| h.alias.as_str()).collect();
            tracing::info!(
                "authenticated to {host} as {} via {}",
                cfg.user,
                via.join(", ")
            );
        }
        let on_this_machine = jumps.is_empty() && is_loopback_name(&cfg.host_name);
        let conn = Connection {
            on_this_machine,
            handle,
            jumps,
            alias: cfg.alias.clone(),
            host,
            request_timeout: opts.request_timeout,
            exec_slots: tokio::sync::Semaphore::new(EXEC_SLOTS),
            wrapper: opts.wrapper.clone(),
            redial: None,
            companions: Mutex::new(Vec::new()),
            closing: false.into(),
        };
        let host_key = accepted.lock().ok().and_then(|mut key| key.take());
        Ok((conn, host_key))
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// An exec slot for one more SFTP session to take before it opens
    /// ([`FITTING_SESSIONS`] - [`FREE_SESSIONS`] of them at most, which
    /// leaves [`MIN_EXEC_SLOTS`]): OpenSSH's `MaxSessions` (10 by default)
    /// counts sessions and exec channels together, and a refused exec
    /// channel would read as a lost connection. Waits for a running
    /// command to end when all are in use. Once the session has opened,
    /// `forget` the permit; dropping it gives the slot back.
    pub(crate) async fn exec_slot_for_sftp(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.exec_slots.acquire().await.ok()
    }

    /// Whether the server is this machine, reached without a jump host.
    pub(crate) fn on_this_machine(&self) -> bool {
        self.on_this_machine
    }

    /// The host as the user named it (an ssh config alias, a name or an
    /// address): what a path on it is shown with in messages, `lab:/path`
    /// as typed, not the address it resolved to.
    pub(crate) fn alias(&self) -> &str {
        &self.alias
    }

    /// How long one request may wait for its reply (`--timeout`).
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// One round trip of the connection itself: a keepalive answered.
    pub(crate) async fn time_round_trip(&self) -> Duration {
        let asked = std::time::Instant::now();
        let _ = self.handle.send_ping().await;
        asked.elapsed()
    }

    /// Says goodbye to the server; dropping the handle alone leaves the
    /// connection to be torn down later by russh's background task.
    pub(crate) async fn close(&self) {
        let companions = match self.companions.lock() {
            Ok(mut companions) => {
                self.closing
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                std::mem::take(&mut *companions)
            }
            Err(_) => Vec::new(),
        };
        for companion in companions {
            Box::pin(companion.close()).await;
        }
        let handles = std::iter::once(&self.handle).chain(self.jumps.iter().rev());
        for handle in handles {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }

    /// Runs `command` through the remote user's shell and collects what it
    /// prints (at most `limit` bytes of stdout) and its exit status. Every
    /// message of the channel is read, stderr included, so it cannot stall
    /// the connection.
    pub(crate) async fn exec(&self, command: &str, limit: usize) -> Result<ExecOutput> {
        let lost = |e: russh::Error| Error::ConnectionLost {
            host: self.host.clone(),
            detail: e.to_string(),
        };
        let command = match &self.wrapper {
            Some(wrapper) => wrapper.shell(command),
            None => command.to_string(),
        };
        // Never closed: the permit is always granted in time.
        let _slot = self.exec_slots.acquire().await.ok();
        let mut channel = self.handle.channel_open_session().await.map_err(lost)?;
        channel.exec(true, command.as_str()).await.map_err(lost)?;
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

    /// `command` as the server runs it: through `--rsync-path`'s wrapper
    /// when one is set.
    pub(crate) fn wrapped(&self, command: String) -> String {
        match &self.wrapper {
            Some(wrapper) => wrapper.program(&command),
            None => command,
        }
    }

    /// Runs `command` as given on a new exec channel and waits until the
    /// server has started it; `refused` makes the error from why it did not.
    pub(crate) async fn exec_channel(
        &self,
        command: &str,
        refused: impl Fn(&str) -> Error,
    ) -> Result<ChannelStream<Msg>> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(self.lost())?;
        channel.exec(true, command).await.map_err(self.lost())?;
        self.started(&mut channel, refused).await?;
        Ok(channel.into_stream())
    }

    /// Opens the channel an SFTP session runs on: the `sftp` subsystem, or
    /// sftp-server run through `--rsync-path`'s wrapper (then the command
    /// it ran is returned too). It waits for the server's answer so that a
    /// refusal is reported as such rather than as a failed SFTP handshake.
    pub(crate) async fn sftp_channel(&self) -> Result<SftpChannel> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(self.lost())?;
        let wrapped = match &self.wrapper {
            Some(wrapper) => Some(self.exec_sftp_server(&mut channel, wrapper).await?),
            None => {
                self.subsystem_sftp(&mut channel).await?;
                None
            }
        };
        Ok((channel.into_stream(), wrapped))
    }

    /// Whether the SSH connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    async fn subsystem_sftp(&self, channel: &mut Channel<Msg>) -> Result<()> {
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(self.lost())?;
        let refused = |why: &str| Error::SftpRefused {
            host: self.host.clone(),
            detail: match why {
                REFUSED => "subsystem request denied".into(),
                _ => "channel closed before the sftp subsystem started".into(),
            },
        };
        self.started(channel, refused).await
    }

    /// Runs sftp-server through `wrapper` on `channel` (found by a probe
    /// through the wrapper first); returns the command it ran.
    async fn exec_sftp_server(
        &self,
        channel: &mut Channel<Msg>,
        wrapper: &Wrapper,
    ) -> Result<String> {
        let probe = self.exec(&Wrapper::probe(), 4096).await?;
        let Some(server) = Wrapper::found(&probe) else {
            let said = String::from_utf8_lossy(&probe.stderr);
            return Err(Error::RemoteSide {
                host: self.host.clone(),
                detail: format!(
                    "--rsync-path: no sftp-server could be started through `{}` (exit {}): {}",
                    wrapper.text(),
                    probe.status.map_or("none".into(), |s| s.to_string()),
                    said.trim()
                ),
                status: probe.status,
            });
        };
        let command = wrapper.program(&shell_quote(&server));
        channel
            .exec(true, command.as_str())
            .await
            .map_err(self.lost())?;
        let refused = |why: &str| Error::RemoteSide {
            host: self.host.clone(),
            detail: format!("the SFTP server `{command}`: {why}"),
            status: None,
        };
        self.started(channel, refused).await?;
        Ok(command)
    }

    /// Waits for the server's answer to a channel's exec or subsystem
    /// request; `refused` makes the error from why it did not start.
    async fn started(
        &self,
        channel: &mut Channel<Msg>,
        refused: impl Fn(&str) -> Error,
    ) -> Result<()> {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => return Err(refused(REFUSED)),
                Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => {
                    return Err(self.lost_or(refused("the channel closed")))
                }
                Some(_) => continue,
            }
        }
    }

    /// How a failed channel request is reported: the connection is gone.
    fn lost(&self) -> impl Fn(russh::Error) -> Error + '_ {
        |e| Error::ConnectionLost {
            host: self.host.clone(),
            detail: e.to_string(),
        }
    }

    /// `error`, unless the connection itself is gone: then that is what
    /// happened (and a reconnect may fix it), not a refusal by the server.
    pub(crate) fn lost_or(&self, error: Error) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;
    use client::Handler;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::{PrivateKey, PublicKeyOrCertificate};

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    /// A check that insists on `pinned`, with no known_hosts file at all
    /// and StrictHostKeyChecking yes: anything it accepts, it accepted
    /// without them.
    fn pinned_check(pinned: PublicKey) -> HostKeyCheck {
        let mut cfg = HostConfig::new("far", "192.0.2.1", 22, "me");
        cfg.user_known_hosts_files.clear();
        cfg.global_known_hosts_files.clear();
        cfg.strict_host_key_checking = StrictHostKeyChecking::Yes;
        HostKeyCheck {
            cfg: Arc::new(cfg),
            interactive: false,
            prompts: PromptGuard::default(),
            refusal: Arc::new(Mutex::new(None)),
            pinned: Some(pinned),
            accepted: Arc::new(Mutex::new(None)),
            _session: oneshot::channel().0,
        }
    }

    fn offered(key: PublicKey) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::PublicKey {
            key,
            hash_alg: None,
        }
    }

    #[tokio::test]
    async fn another_connection_accepts_only_the_first_ones_host_key() {
        let mut same = pinned_check(key(1));
        assert!(same.check_server_key(&offered(key(1))).await.unwrap());
        let accepted = same.accepted.lock().unwrap().clone();
        assert_eq!(
            accepted.map(|k| k.key_data().clone()),
            Some(key(1).key_data().clone())
        );

        let mut other = pinned_check(key(1));
        assert!(!other.check_server_key(&offered(key(2))).await.unwrap());
        let refusal = other.refusal.lock().unwrap().clone().unwrap_or_default();
        assert!(refusal.contains("other than the first's"), "{refusal}");
        assert!(other.accepted.lock().unwrap().is_none());
    }
}
