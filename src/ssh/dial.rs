//! Reaching one host: a TCP connection (or a channel through the jump host
//! before it), the SSH handshake with its host-key decision, and
//! authentication, all within the one deadline that bounds the whole chain.
//! Errors about a jump host are reworded to name it, keeping their kind
//! (and so their exit code and whether a reconnect may retry them).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::meter::Metered;
use super::*;

/// Resolves (with an error) when a host's SSH session has ended.
pub(super) type SessionEnded = oneshot::Receiver<()>;

/// The connect timeout of a whole chain: one deadline for every TCP
/// connect, handshake and authentication on the way. Time a person spends
/// at a prompt does not count.
pub(super) struct Clock {
    limit: Duration,
    deadline: Instant,
}

impl Clock {
    pub(super) fn new(limit: Duration) -> Clock {
        Clock {
            limit,
            deadline: Instant::now() + limit,
        }
    }

    fn pause(&mut self, spent: Duration) {
        self.deadline += spent;
    }

    fn timed_out(&self, what: &str) -> String {
        format!(
            "{what} within {} s (ConnectTimeout, else --timeout)",
            self.limit.as_secs()
        )
    }
}

/// Connects to `cfg` over TCP, then sets up SSH on that connection.
pub(super) async fn dial(
    cfg: &HostConfig,
    opts: &ConnectOptions,
    clock: &mut Clock,
    check: Option<KeyCheck>,
) -> Result<(Handle<HostKeyCheck>, SessionEnded)> {
    let tcp = connect_tcp(cfg, clock).await?;
    match &opts.meter {
        Some(meter) => establish(cfg, Metered::new(tcp, meter.clone()), opts, clock, check).await,
        None => establish(cfg, tcp, opts, clock, check).await,
    }
}

/// Tries the host's addresses in turn (only those of `AddressFamily`).
async fn connect_tcp(cfg: &HostConfig, clock: &Clock) -> Result<tokio::net::TcpStream> {
    let connect_error = |reason: String| Error::Connect {
        host: host_port_name(&cfg.host_name, cfg.port),
        reason,
    };
    let attempt = async {
        let found = tokio::net::lookup_host((cfg.host_name.as_str(), cfg.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", cfg.host_name))?;
        let addresses: Vec<SocketAddr> = found
            .filter(|a| family_allows(cfg.address_family, a))
            .collect();
        let mut last = format!(
            "{} has no address of AddressFamily {:?}",
            cfg.host_name, cfg.address_family
        );
        for address in addresses {
            match tokio::net::TcpStream::connect(address).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    };
    let tcp = tokio::time::timeout_at(clock.deadline, attempt)
        .await
        .map_err(|_| connect_error(clock.timed_out("no answer")))?
        .map_err(connect_error)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

fn family_allows(family: AddressFamily, address: &SocketAddr) -> bool {
    match family {
        AddressFamily::Any => true,
        AddressFamily::Inet => address.is_ipv4(),
        AddressFamily::Inet6 => address.is_ipv6(),
    }
}

/// What is read from the server at once: the SSH packets in it.
const READ_BUFFER: usize = 64 * 1024;

/// The SSH handshake (host key checked against `cfg`'s known_hosts) and
/// authentication over `stream`. Also returns what tells when the session
/// has ended. `check`: the host key to insist on instead of known_hosts,
/// and where to keep the key accepted.
pub(super) async fn establish<S>(
    cfg: &HostConfig,
    stream: S,
    opts: &ConnectOptions,
    clock: &mut Clock,
    check: Option<KeyCheck>,
) -> Result<(Handle<HostKeyCheck>, SessionEnded)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let host = host_port_name(&cfg.host_name, cfg.port);
    let connect_error = |reason: String| Error::Connect {
        host: host.clone(),
        reason,
    };
    let cfg = Arc::new(cfg.clone());
    let refusal = Arc::new(Mutex::new(None));
    let (session, ended) = oneshot::channel();
    let KeyCheck { pinned, accepted } = check.unwrap_or(KeyCheck {
        pinned: None,
        accepted: Arc::new(Mutex::new(None)),
    });
    let handler = HostKeyCheck {
        cfg: cfg.clone(),
        interactive: opts.interactive,
        prompts: opts.prompts.clone(),
        refusal: refusal.clone(),
        pinned,
        accepted,
        _session: session,
    };
    let config = Arc::new(client_config(&cfg, opts.request_timeout));
    // russh reads each packet's length, then its body, straight from the
    // stream: two reads per packet, a syscall each when unbuffered, and a
    // tree's small files are hundreds of thousands of small replies.
    // Writes go through as they are.
    let stream = tokio::io::BufReader::with_capacity(READ_BUFFER, stream);
    let handshake = client::connect_stream(config, stream, handler);
    let refused = || refusal.lock().ok().and_then(|mut r| r.take());
    let mut handle = match tokio::time::timeout_at(clock.deadline, handshake).await {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            return Err(match refused() {
                Some(message) => Error::HostKey(message),
                None => connect_error(format!("SSH handshake failed: {e}")),
            })
        }
        Err(_) => return Err(connect_error(clock.timed_out("no SSH handshake"))),
    };
    let auth_opts = auth::AuthOptions {
        interactive: opts.interactive && !cfg.batch_mode,
        prompts: opts.prompts.clone(),
    };
    if auth_opts.interactive {
        // A person may take their time at a prompt.
        let started = Instant::now();
        auth::authenticate(&mut handle, &cfg, &auth_opts).await?;
        clock.pause(started.elapsed());
    } else {
        let authenticating = auth::authenticate(&mut handle, &cfg, &auth_opts);
        tokio::time::timeout_at(clock.deadline, authenticating)
            .await
            .map_err(|_| connect_error(clock.timed_out("authentication did not finish")))??;
    }
    Ok((handle, ended))
}

/// Opens a direct-tcpip channel through `hop` to `next` (the next jump
/// host, or the target): what `ssh -W` does for OpenSSH's ProxyJump.
pub(super) async fn open_tunnel(
    handle: &Handle<HostKeyCheck>,
    hop_ended: SessionEnded,
    hop: &HostConfig,
    next: &HostConfig,
    clock: &Clock,
) -> Result<Tunnel> {
    let to = host_port_name(&next.host_name, next.port);
    let opening = handle.channel_open_direct_tcpip(
        next.host_name.as_str(),
        u32::from(next.port),
        "127.0.0.1",
        0,
    );
    let failed = |reason: String| Error::Connect {
        host: to.clone(),
        reason: format!("through jump host {}: {reason}", hop.alias),
    };
    let channel = tokio::time::timeout_at(clock.deadline, opening)
        .await
        .map_err(|_| failed(clock.timed_out("no tunnel")))?
        .map_err(|e| {
            failed(format!(
                "it could not open a connection to {to} ({e}); check that the jump host \
                 allows TCP forwarding (AllowTcpForwarding) and can reach that address"
            ))
        })?;
    Ok(Tunnel {
        stream: channel.into_stream(),
        hop_ended,
        hop: hop.alias.clone(),
    })
}

/// A connection through a jump host: a channel of the jump host's session
/// that fails as soon as that session ends. russh's channel writer waits
/// for window space without noticing that its session is gone, so without
/// this a connection through a jump host whose link dropped would hang
/// until the silence bound instead of failing at once (and reconnecting).
pub(super) struct Tunnel {
    stream: ChannelStream<client::Msg>,
    hop_ended: SessionEnded,
    hop: String,
}

impl Tunnel {
    /// An error once the jump host's session has ended.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match Pin::new(&mut self.hop_ended).poll(cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(_) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the connection to jump host {} ended", self.hop),
            )),
        }
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Data the jump host already delivered is still read first.
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if read.is_pending() {
            self.check(cx)?;
        }
        read
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Rewords an error met while reaching jump host `hop` so that it names
/// the hop, keeping its kind.
pub(super) fn on_jump_host(error: Error, hop: &HostConfig) -> Error {
    let name = format!("jump host {}", hop.alias);
    match error {
        Error::Connect { host, reason } => Error::Connect {
            host: format!("{name} ({host})"),
            reason,
        },
        Error::HostKey(message) => Error::HostKey(format!("{name}: {message}")),
        Error::Auth(source) => Error::Auth(auth::AuthError::JumpHost {
            hop: hop.alias.clone(),
            source: Box::new(source),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_host_errors_name_the_hop_and_keep_their_kind() {
        let hop = HostConfig::new("bastion", "10.0.0.1", 22, "me");
        let connect = Error::Connect {
            host: "10.0.0.1".into(),
            reason: "refused".into(),
        };
        let reworded = on_jump_host(connect, &hop);
        assert!(matches!(reworded, Error::Connect { .. }));
        assert_eq!(
            reworded.to_string(),
            "cannot connect to jump host bastion (10.0.0.1): refused"
        );
        let key = on_jump_host(Error::HostKey("host key verification failed".into()), &hop);
        assert_eq!(
            key.to_string(),
            "jump host bastion: host key verification failed"
        );
        let auth = on_jump_host(
            Error::Auth(auth::AuthError::Disconnected {
                host: "10.0.0.1".into(),
                tried: Vec::new(),
            }),
            &hop,
        );
        assert!(
            auth.to_string()
                .starts_with("jump host bastion: 10.0.0.1 closed"),
            "{auth}"
        );
        assert!(matches!(&auth, Error::Auth(e) if e.is_network()));
    }

    #[test]
    fn compression_is_offered_only_when_asked() {
        let names = |on| -> Vec<String> {
            compression_order(on)
                .iter()
                .map(|n| n.as_ref().to_string())
                .collect()
        };
        assert_eq!(names(true), ["zlib@openssh.com", "zlib", "none"]);
        assert_eq!(names(false), ["none"]);
        let mut cfg = HostConfig::new("h", "h", 22, "me");
        cfg.compression = true;
        let config = client_config(&cfg, Duration::from_secs(60));
        assert_eq!(config.preferred.compression[0].as_ref(), "zlib@openssh.com");
    }

    #[test]
    fn address_family_filters_addresses() {
        let v4: SocketAddr = "127.0.0.1:22".parse().expect("v4");
        let v6: SocketAddr = "[::1]:22".parse().expect("v6");
        assert!(family_allows(AddressFamily::Inet, &v4));
        assert!(!family_allows(AddressFamily::Inet, &v6));
        assert!(family_allows(AddressFamily::Inet6, &v6));
        assert!(family_allows(AddressFamily::Any, &v6));
    }
}
