//! The bound on silence (`--timeout`), and a clean end when the server's
//! side of the session goes away.
//!
//! [`SilenceBound`] wraps the SFTP stream. Its reads fail once requests are
//! waiting and no byte of any reply has come for the limit; the failed read
//! ends the SFTP session, which wakes every waiting request at once.
//! Matching the request ids of whole packets each way (every SFTP request
//! gets exactly one reply, with its id) tells a waiting session from an
//! idle one, and a reply whose id answers no request leaves the request
//! it should have answered waiting, so an idle session is
//! never timed out, and a deep pipeline on a slow link is not either: the
//! clock restarts with every reply, not with every request.
//!
//! However the session ends (the limit, or the server's sftp-server
//! exiting), [`SessionState::end`] runs before russh-sftp sees the end: it
//! makes requests sent from then on fail at once (russh-sftp would
//! otherwise leave a request sent in that moment waiting for its own
//! timeout), and fails the write that may be stuck waiting for window on a
//! channel nobody reads any more.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use russh_sftp::client::RawSftpSession;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How an SFTP session stands, shared by its stream and its `Sftp`.
#[derive(Default)]
pub(super) struct SessionState {
    went_silent: AtomicBool,
    ended: AtomicBool,
    session: OnceLock<Weak<RawSftpSession>>,
}

impl SessionState {
    /// The session the stream belongs to, once it exists.
    pub(super) fn attach(&self, session: &Arc<RawSftpSession>) {
        let _ = self.session.set(Arc::downgrade(session));
    }

    /// Whether the session was ended by the silence limit.
    pub(super) fn went_silent(&self) -> bool {
        self.went_silent.load(Ordering::Relaxed)
    }

    /// Whether the session is over, for whatever reason.
    pub(super) fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        if let Some(session) = self.session.get().and_then(Weak::upgrade) {
            session.set_timeout(0);
        }
    }
}

/// Splits a byte stream into SFTP packets (u32 big-endian length, then the
/// body), counts the packets that ended and keeps what each one answers
/// ([`Exchange`]).
#[derive(Debug, Default)]
struct PacketCounter {
    header: [u8; 4],
    header_len: usize,
    body_left: usize,
    /// The type byte and request id at the start of the current body.
    head: [u8; 5],
    head_len: usize,
    ended: u64,
    /// The exchanges of the packets that ended, for the caller to take.
    exchanges: Vec<Exchange>,
}

/// What a packet belongs to: the request id it asks or answers, or the
/// version handshake (INIT and VERSION carry a version where the others
/// carry an id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Exchange {
    Handshake,
    Request(u32),
}

const SSH_FXP_INIT: u8 = 1;
const SSH_FXP_VERSION: u8 = 2;

impl PacketCounter {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                let keep = n.min(self.head.len() - self.head_len);
                self.head[self.head_len..self.head_len + keep].copy_from_slice(&bytes[..keep]);
                self.head_len += keep;
                self.body_left -= n;
                bytes = &bytes[n..];
                if self.body_left == 0 {
                    self.end_packet();
                }
                continue;
            }
            let n = (4 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 4 {
                self.header_len = 0;
                self.head_len = 0;
                self.body_left = u32::from_be_bytes(self.header) as usize;
                if self.body_left == 0 {
                    self.end_packet();
                }
            }
        }
    }

    fn end_packet(&mut self) {
        self.ended += 1;
        let [kind, id @ ..] = self.head;
        let exchange = match kind {
            _ if self.head_len < self.head.len() => return,
            SSH_FXP_INIT | SSH_FXP_VERSION => Exchange::Handshake,
            _ => Exchange::Request(u32::from_be_bytes(id)),
        };
        self.exchanges.push(exchange);
    }
}

/// `inner` with reads that fail after `limit` of silence while a request
/// waits, reporting how the session ends to `state`.
pub(super) struct SilenceBound<S> {
    inner: S,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    sent: PacketCounter,
    received: PacketCounter,
    /// The requests sent and not answered yet. A reply whose id is not
    /// among them answers nothing: counting it as an answer would let a
    /// server that mangles one reply's id leave its request waiting, never
    /// timed out, for as long as the backstop (issue 16's fuzzing found it).
    unanswered: HashSet<Exchange>,
    state: Arc<SessionState>,
    /// A write waiting for the channel, to be failed should the session end.
    stuck_writer: Option<Waker>,
}

impl<S> SilenceBound<S> {
    pub(super) fn new(inner: S, limit: Duration, state: Arc<SessionState>) -> Self {
        SilenceBound {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            sent: PacketCounter::default(),
            received: PacketCounter::default(),
            unanswered: HashSet::new(),
            state,
            stuck_writer: None,
        }
    }

    fn end(&mut self) {
        self.state.end();
        if let Some(writer) = self.stuck_writer.take() {
            writer.wake();
        }
    }

    fn waiting(&self) -> bool {
        !self.unanswered.is_empty()
    }

    fn note_sent(&mut self, data: &[u8]) {
        self.sent.feed(data);
        self.unanswered.extend(self.sent.exchanges.drain(..));
    }

    fn note_received(&mut self, data: &[u8]) {
        self.received.feed(data);
        for exchange in self.received.exchanges.drain(..) {
            self.unanswered.remove(&exchange);
        }
    }

    fn restart_clock(&mut self) {
        let at = Instant::now() + self.limit;
        self.deadline.as_mut().reset(at);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SilenceBound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if got.is_empty() && buf.remaining() > 0 {
                    this.end();
                } else {
                    this.note_received(got);
                    this.restart_clock();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                // Polled on every wait, so that the timer wakes this task.
                while this.deadline.as_mut().poll(cx).is_ready() {
                    if this.waiting() {
                        this.state.went_silent.store(true, Ordering::Relaxed);
                        this.end();
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no reply for {} s", this.limit.as_secs()),
                        )));
                    }
                    this.restart_clock();
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => {
                this.end();
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SilenceBound<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.state.ended() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let was_waiting = this.waiting();
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        match written {
            Poll::Ready(Ok(n)) => {
                this.note_sent(&data[..n]);
                // Silence counts from the first request after an idle spell.
                if !was_waiting && this.waiting() {
                    this.restart_clock();
                }
            }
            Poll::Pending => this.stuck_writer = Some(cx.waker().clone()),
            Poll::Ready(Err(_)) => {}
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn counts_packets_split_anywhere() {
        let stream: Vec<u8> = [packet(b"abc"), packet(b""), packet(&[7; 300])].concat();
        for step in [1, 2, 3, 5, 64, 1000] {
            let mut counter = PacketCounter::default();
            for piece in stream.chunks(step) {
                counter.feed(piece);
            }
            assert_eq!(counter.ended, 3, "step {step}");
        }
    }

    /// An SSH_FXP_STAT request, and the SSH_FXP_ATTRS reply to it.
    fn request(id: u32) -> Vec<u8> {
        packet(&[&[17u8][..], &id.to_be_bytes(), b"path"].concat())
    }

    fn reply(id: u32) -> Vec<u8> {
        packet(&[&[105u8][..], &id.to_be_bytes(), &[0; 4]].concat())
    }

    /// A 200 ms bound on one end of a pipe, the other end, and the state.
    fn bounded_pipe() -> (
        Duration,
        SilenceBound<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<SessionState>,
    ) {
        let limit = Duration::from_millis(200);
        let (near, far) = tokio::io::duplex(1024);
        let state = Arc::new(SessionState::default());
        let bound = SilenceBound::new(near, limit, state.clone());
        (limit, bound, far, state)
    }

    /// Found by the SFTP reply fuzzing (issue 16): one bit flipped in a
    /// reply's id made it answer a request long done; counted as an answer,
    /// it left the real request waiting with the session taken for idle,
    /// for ten minutes instead of `--timeout`.
    #[tokio::test]
    async fn a_reply_with_another_id_answers_nothing() {
        let (_, mut bound, mut far, state) = bounded_pipe();
        let mut buf = [0u8; 64];
        bound.write_all(&request(42)).await.unwrap();
        far.write_all(&reply(43)).await.unwrap();
        assert!(bound.read(&mut buf).await.unwrap() > 0);
        let err = bound.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(state.went_silent());
    }

    #[tokio::test]
    async fn a_waiting_request_times_out_and_an_idle_session_does_not() {
        let (limit, mut bound, mut far, state) = bounded_pipe();
        let mut buf = [0u8; 16];

        // Idle for three limits: nothing is waiting, no timeout.
        let idle = tokio::time::timeout(limit * 3, bound.read(&mut buf)).await;
        assert!(idle.is_err(), "an idle session must not time out");

        // Two requests answered within the limit each, longer than it in all.
        for id in 0..2 {
            bound.write_all(&request(id)).await.unwrap();
            tokio::time::sleep(limit * 3 / 4).await;
            far.write_all(&reply(id)).await.unwrap();
            let n = bound.read(&mut buf).await.unwrap();
            assert!(n > 0);
        }
        assert!(!state.went_silent() && !state.ended());

        // A request never answered: the read fails after the limit.
        bound.write_all(&packet(b"unanswered")).await.unwrap();
        let started = std::time::Instant::now();
        let err = bound.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit * 9 / 10);
        assert!(state.went_silent() && state.ended());
        // Nothing more goes out on an ended session.
        let refused = bound.write_all(&packet(b"late")).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::BrokenPipe);
    }

    /// Reads from a pipe; writes wait forever, as on a channel whose window
    /// never opens again.
    struct WindowShut(tokio::io::DuplexStream);

    impl AsyncRead for WindowShut {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for WindowShut {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_servers_end_fails_a_write_stuck_on_a_shut_window() {
        let (near, far) = tokio::io::duplex(64);
        let state = Arc::new(SessionState::default());
        let bound = SilenceBound::new(WindowShut(near), Duration::from_secs(60), state.clone());
        let (mut reader, mut writer) = tokio::io::split(bound);
        let stuck = tokio::spawn(async move { writer.write_all(&packet(b"1234")).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!stuck.is_finished());
        drop(far);
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
        assert!(state.ended() && !state.went_silent());
        let result = tokio::time::timeout(Duration::from_secs(5), stuck).await;
        let write = result.expect("the stuck write was never woken").unwrap();
        assert_eq!(write.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
