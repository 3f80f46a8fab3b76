//! The byte stream under SSH, metered: counts what crosses the socket each
//! way (`--stats`' "Total bytes sent/received", `--json`'s wire bytes) and,
//! with `--bwlimit`, holds each direction to a rate. Limiting here, below
//! SSH, holds everything to it: SFTP data, hashes, the helper's streams.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Totals shared by every connection of a run, and the rate limit.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    sent: AtomicU64,
    received: AtomicU64,
    /// Bytes per second each way; None for no limit.
    limit: Option<u64>,
}

impl Meter {
    pub(crate) fn new(limit: Option<u64>) -> Arc<Meter> {
        Arc::new(Meter {
            limit: limit.filter(|rate| *rate > 0),
            ..Meter::default()
        })
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// One direction's pacing: when the next byte may go, and the wait for it.
struct Pace {
    next: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            next: None,
            sleep: None,
        }
    }

    /// Ready when the bytes moved so far are paid for.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(sleep) = &mut self.sleep {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        Poll::Ready(())
    }

    /// Books `bytes` at `rate`: the next transfer waits until they would
    /// have gone at that rate.
    fn book(&mut self, bytes: usize, rate: u64) {
        let now = Instant::now();
        // Idle time earns no credit beyond a moment's burst.
        let start = self.next.filter(|next| *next > now).unwrap_or(now);
        let next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        self.next = Some(next);
        if next > now + Duration::from_millis(5) {
            self.sleep = Some(Box::pin(tokio::time::sleep_until(next)));
        }
    }
}

/// `inner`, counted into the meter and paced to its limit.
pub(crate) struct Metered<S> {
    inner: S,
    meter: Arc<Meter>,
    reading: Pace,
    writing: Pace,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S, meter: Arc<Meter>) -> Metered<S> {
        Metered {
            inner,
            meter,
            reading: Pace::new(),
            writing: Pace::new(),
        }
    }

    /// The most one read or write may move under the limit: a tenth of a
    /// second's worth keeps the pace smooth (and at least one SSH packet).
    fn slice(&self, wanted: usize) -> usize {
        match self.meter.limit {
            Some(rate) => wanted.min((rate / 10).max(1024) as usize),
            None => wanted,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reading.poll_ready(cx).is_pending() {
            return Poll::Pending;
        }
        let room = this.slice(buf.remaining());
        let mut limited = buf.take(room);
        let polled = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        if let Poll::Ready(Ok(())) = polled {
            // SAFETY: `limited` is a view of `buf`'s unfilled part; its
            // first `n` bytes were just initialised and filled by the read.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            this.meter.received.fetch_add(n as u64, Ordering::Relaxed);
            if let Some(rate) = this.meter.limit {
                this.reading.book(n, rate);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.writing.poll_ready(cx).is_pending() {
            return Poll::Pending;
        }
        let room = this.slice(buf.len());
        let polled = Pin::new(&mut this.inner).poll_write(cx, &buf[..room]);
        if let Poll::Ready(Ok(n)) = polled {
            this.meter.sent.fetch_add(n as u64, Ordering::Relaxed);
            if let Some(rate) = this.meter.limit {
                this.writing.book(n, rate);
            }
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_both_ways() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let meter = Meter::new(None);
        let mut metered = Metered::new(near, meter.clone());
        metered.write_all(&[7; 3000]).await.expect("write");
        far.write_all(&[1; 1234]).await.expect("write far");
        let mut back = vec![0; 1234];
        metered.read_exact(&mut back).await.expect("read");
        assert_eq!((meter.sent(), meter.received()), (3000, 1234));
        assert!(back.iter().all(|b| *b == 1));
    }

    #[tokio::test(start_paused = true)]
    async fn holds_writes_to_the_limit() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let meter = Meter::new(Some(100_000));
        let mut metered = Metered::new(near, meter.clone());
        let started = Instant::now();
        metered.write_all(&vec![0; 300_000]).await.expect("write");
        // Paused time advances only through the pacing sleeps.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(2_900), "took {took:?}");
        assert!(took <= Duration::from_millis(3_100), "took {took:?}");
        let mut all = Vec::new();
        drop(metered);
        far.read_to_end(&mut all).await.expect("read");
        assert_eq!(all.len(), 300_000);
    }
}
