//! An SSH server inside ferry, on loopback only. `ferry demo` syncs into it
//! on a machine with no server set up, and tests use it where they need a
//! server OpenSSH cannot imitate: one that lies in its replies, or drops the
//! link after a set number of bytes.
//!
//! It lets in one client key, serves SFTP over this machine's files
//! ([`sftp::LocalSftp`], or any service a test plugs in) and, when asked,
//! answers `ferry --server` with the hashing helper in process. Every other
//! exec request is refused, so clients see an SFTP-only server.

pub mod sftp;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use russh::keys::ssh_key::{private::Ed25519Keypair, LineEnding};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Serves one SFTP session on the channel it is given.
pub type SftpService = Arc<dyn Fn(ChannelStream<Msg>) -> BoxFuture<'static, ()> + Send + Sync>;

/// What the server lets in and serves.
pub struct ServerOptions {
    /// The one public key that may log in (any user name).
    pub client_key: PublicKey,
    /// Where SFTP sessions start: relative paths are relative to it.
    pub base: PathBuf,
    /// Answer `... --server` exec requests with ferry's hashing helper.
    pub helper: bool,
    /// Serves SFTP sessions; `None` serves `base` honestly with [`sftp::LocalSftp`].
    pub sftp: Option<SftpService>,
}

/// A running server; it stops accepting connections when dropped.
pub struct EmbeddedServer {
    addr: SocketAddr,
    host_key: PublicKey,
    cut_next: Arc<Mutex<Option<u64>>>,
    received: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A fresh Ed25519 key, for this server's host key and throwaway clients.
pub fn throwaway_key() -> io::Result<PrivateKey> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

impl EmbeddedServer {
    /// Listens on 127.0.0.1 (a free port) and serves in the background.
    pub async fn start(options: ServerOptions) -> io::Result<EmbeddedServer> {
        let host_key = throwaway_key()?;
        let public = host_key.public_key().clone();
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            auth_rejection_time: Duration::ZERO,
            auth_rejection_time_initial: Some(Duration::ZERO),
            window_size: 16 * 1024 * 1024,
            maximum_packet_size: 256 * 1024,
            nodelay: true,
            ..Default::default()
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let cut_next = Arc::new(Mutex::new(None));
        let received = Arc::new(AtomicU64::new(0));
        let mut options = options;
        let shared = Arc::new(Shared {
            sftp: options.sftp.take().unwrap_or_else(|| {
                let base = options.base.clone();
                Arc::new(move |stream| {
                    let session = sftp::LocalSftp::new(base.clone());
                    Box::pin(russh_sftp::server::run(stream, session))
                })
            }),
            options,
        });
        let counters = Counters {
            cut_next: cut_next.clone(),
            received: received.clone(),
        };
        let accept = tokio::spawn(accept_loop(listener, config, shared, counters));
        Ok(EmbeddedServer {
            addr,
            host_key: public,
            cut_next,
            received,
            accept,
        })
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Bytes received from clients so far, SSH framing and all: what
    /// crossed the wire toward the server.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Its host key (fresh for every server), for a client's known_hosts.
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// The next connection is dropped once the client has sent `bytes`
    /// bytes: a link that fails mid-copy, on cue.
    pub fn cut_next_connection_after(&self, bytes: u64) {
        if let Ok(mut next) = self.cut_next.lock() {
            *next = Some(bytes);
        }
    }

    /// Writes what an OpenSSH-style client needs to reach this server as
    /// `alias`: the client's key, a known_hosts line and an ssh config.
    /// Returns the config's path.
    pub fn write_client_files(
        &self,
        dir: &Path,
        alias: &str,
        client_key: &PrivateKey,
    ) -> io::Result<PathBuf> {
        let invalid = |e: russh::keys::ssh_key::Error| io::Error::other(e.to_string());
        let identity = dir.join("client_key");
        let text = client_key.to_openssh(LineEnding::LF).map_err(invalid)?;
        write_private(&identity, text.as_bytes())?;
        let known_hosts = dir.join("known_hosts");
        let host_line = self.host_key.to_openssh().map_err(invalid)?;
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{} {host_line}\n", self.port()),
        )?;
        let config = dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User ferry\n  \
                 IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 StrictHostKeyChecking yes\n",
                self.port(),
                identity.display(),
                known_hosts.display()
            ),
        )?;
        Ok(config)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

struct Shared {
    options: ServerOptions,
    sftp: SftpService,
}

/// What the accept loop shares with the server's owner.
struct Counters {
    cut_next: Arc<Mutex<Option<u64>>>,
    received: Arc<AtomicU64>,
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    counters: Counters,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let budget = counters
            .cut_next
            .lock()
            .ok()
            .and_then(|mut next| next.take());
        let stream = CutAfter {
            inner: tcp,
            left: budget.unwrap_or(u64::MAX),
            received: counters.received.clone(),
        };
        let connection = Connection {
            shared: shared.clone(),
            channels: HashMap::new(),
        };
        let config = config.clone();
        tokio::spawn(async move {
            match russh::server::run_stream(config, stream, connection).await {
                Ok(session) => {
                    if let Err(e) = session.await {
                        tracing::debug!("embedded server: session ended: {e}");
                    }
                }
                Err(e) => tracing::debug!("embedded server: handshake failed: {e}"),
            }
        });
    }
}

/// One client connection's state.
struct Connection {
    shared: Arc<Shared>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Connection {
    fn admits(&self, key: &PublicKey) -> Auth {
        if key.key_data() == self.shared.options.client_key.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.admits(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.admits(key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.remove(&id) {
            Some(channel) if name == "sftp" => {
                session.channel_success(id)?;
                tokio::spawn((self.shared.sftp)(channel.into_stream()));
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let wants_helper = data.ends_with(b" --server") && self.shared.options.helper;
        match self.channels.remove(&id) {
            Some(channel) if wants_helper => {
                session.channel_success(id)?;
                serve_helper(channel);
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }
}

/// Runs ferry's blocking helper loop on a thread of its own, reading and
/// writing the channel through the runtime.
fn serve_helper(channel: Channel<Msg>) {
    let runtime = tokio::runtime::Handle::current();
    let (reader, writer) = tokio::io::split(channel.into_stream());
    tokio::task::spawn_blocking(move || {
        let input = Blocking {
            runtime: runtime.clone(),
            inner: reader,
        };
        let output = Blocking {
            runtime,
            inner: writer,
        };
        if let Err(e) = crate::protocol::server::serve(input, output) {
            tracing::debug!("embedded server: helper ended: {e}");
        }
    });
}

/// A blocking face for one half of an async stream, for code on a
/// blocking thread.
struct Blocking<T> {
    runtime: tokio::runtime::Handle,
    inner: T,
}

impl<T: AsyncRead + Unpin> Read for Blocking<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.runtime.block_on(self.inner.read(buf))
    }
}

impl<T: AsyncWrite + Unpin> Write for Blocking<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.runtime.block_on(self.inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.runtime.block_on(self.inner.flush())
    }
}

/// A TCP stream that counts what the client sends, and fails once it has
/// sent `left` more bytes.
struct CutAfter {
    inner: TcpStream,
    left: u64,
    received: Arc<AtomicU64>,
}

impl AsyncRead for CutAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "cut on cue",
            )));
        }
        let left = usize::try_from(self.left).unwrap_or(usize::MAX);
        let n = if left >= buf.remaining() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            buf.filled().len() - before
        } else {
            // Near the cut: read no more than is left, through a small copy.
            let mut near = vec![0; left];
            let mut limited = ReadBuf::new(&mut near);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
            buf.put_slice(limited.filled());
            limited.filled().len()
        };
        self.left -= n as u64;
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for CutAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
