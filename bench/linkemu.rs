//! linkemu: one emulated far link (bandwidth and delay, shared by every
//! connection) in front of a local TCP server, for the benchmarks
//! (bench/wan.sh). The kernel here has no netem, and bench/proxy.py (Python
//! asyncio) cannot carry 1 Gbit/s once a delay is on.
//!
//! Usage:
//!   linkemu --target-port P --rtt-ms R --rate-mbit M [--listen-port 0]
//!           [--port-file FILE] [--report FILE] [--idle-timeout 30]
//!           [--queue-bytes Q] [--window-bytes W]
//!   linkemu --selftest --rtt-ms R --rate-mbit M [--bytes N] [--connections K]
//!           [--queue-bytes Q] [--window-bytes W]
//!
//! What it owns: a listener on 127.0.0.1 (port --listen-port; 0 = any free
//! port, written to --port-file once listening, temp file + rename, as
//! bench/proxy.py does) and, for every connection it accepts, one connection
//! to 127.0.0.1:P. Nothing else: no files but the port file and the report.
//!
//! The model. There is ONE link, and every connection crosses it (unlike
//! bench/proxy.py, where each connection had a link of its own). Each
//! direction (up = client -> server, down = server -> client) is a single
//! bottleneck of M Mbit/s (0 = no rate limit) followed by a one-way delay of
//! R/2 ms. The emulator reads up to 256 KiB at a time from a socket; such a
//! chunk enters the bottleneck queue of its direction and leaves the link at
//!
//!   max(its arrival, end of the previous chunk's serialization) + size/rate + R/2
//!
//! where "previous chunk" is the previous chunk of any connection in that
//! direction. So several TCP connections through it share the bandwidth as
//! on a real link: opening more connections buys no more than the rate.
//! Chunks are released in batches by the tokio timer (about 1 ms of
//! granularity; the release times are absolute, so the lateness of one
//! release does not accumulate into the rate).
//!
//! Bounded queue: each direction holds at most Q bytes between the read and
//! the write (bottleneck queue and delay line together; default one
//! bandwidth-delay product, rate x R, plus 1 MiB, and at least 256 KiB;
//! 65 MiB with a delay and no rate limit).
//! When it is full the emulator stops reading from the sockets (a read chunk
//! waits for room), so TCP flow control pushes back on the senders as a full
//! router queue would, and memory stays bounded (Q per direction plus one
//! chunk per connection and direction).
//!
//! Window limit (--window-bytes W, default 0 = off): at most W bytes of one
//! connection and direction are in flight at a time, counted from the read
//! until the chunk has left the link and its "acknowledgement" has travelled
//! back (R/2 after it left). This models a TCP window limit, e.g. a receive
//! buffer of at most W bytes (Linux's default net.ipv4.tcp_rmem maximum is
//! 6 MiB): one connection then carries at most about W per round trip, while
//! the link is still shared. Off by default: the loopback sockets on both
//! sides have windows of their own, which this does not remove.
//!
//! Byte counts as bench/proxy.py: the TCP payload of each connection in
//! both directions, as read. On SIGUSR1 (with --report FILE) the emulator
//! waits until no connection is open (at most --idle-timeout seconds), then
//! writes FILE atomically and resets the counters:
//!
//!   total <up> <down> <connections> <still_open>
//!   conn <id> <up> <down>          (one line per connection since the last reset)
//!
//! TCP_NODELAY is set on both sockets of every connection, so that small SSH
//! packets are not held back by the emulator.
//!
//! --selftest measures the emulator itself on this machine: an in-process
//! sink, the emulator in front of it, and K client connections through it.
//! It prints the round trip of a one-byte ping-pong, the one-way time of the
//! first byte, and the throughput of N bytes (default 2 GiB) split over the K
//! connections (they share the link, so the sum should be about the rate).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Largest read from a socket: one chunk on the link.
const CHUNK: usize = 256 * 1024;
/// How much earlier than a chunk's due time the delivery timer is set.
const TIMER_LEAD: Duration = Duration::from_micros(800);

#[derive(Clone, Debug)]
struct Opts {
    target_port: u16,
    listen_port: u16,
    port_file: Option<String>,
    report: Option<String>,
    idle_timeout: f64,
    rtt_ms: f64,
    rate_mbit: f64,
    queue_bytes: Option<usize>,
    window_bytes: usize,
    selftest: bool,
    bytes: u64,
    connections: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: linkemu --target-port P --rtt-ms R --rate-mbit M [--listen-port 0] \
         [--port-file FILE] [--report FILE] [--idle-timeout S] [--queue-bytes Q] \
         [--window-bytes W]\n       linkemu --selftest --rtt-ms R --rate-mbit M \
         [--bytes N] [--connections K] [--queue-bytes Q] [--window-bytes W]\n\
         (see the doc comment of bench/linkemu.rs)"
    );
    std::process::exit(2)
}

fn parse_args() -> Opts {
    let mut o = Opts {
        target_port: 0,
        listen_port: 0,
        port_file: None,
        report: None,
        idle_timeout: 30.0,
        rtt_ms: 0.0,
        rate_mbit: 0.0,
        queue_bytes: None,
        window_bytes: 0,
        selftest: false,
        bytes: 2 << 30,
        connections: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if name == "--selftest" {
            o.selftest = true;
            continue;
        }
        if name == "-h" || name == "--help" {
            usage();
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => {
                eprintln!("linkemu: {name} needs a value");
                usage()
            }
        };
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> T {
            v.parse().unwrap_or_else(|_| {
                eprintln!("linkemu: bad value for {name}: {v}");
                usage()
            })
        }
        match name.as_str() {
            "--target-port" => o.target_port = num(&name, &value),
            "--listen-port" => o.listen_port = num(&name, &value),
            "--port-file" => o.port_file = Some(value),
            "--report" => o.report = Some(value),
            "--idle-timeout" => o.idle_timeout = num(&name, &value),
            "--rtt-ms" => o.rtt_ms = num(&name, &value),
            "--rate-mbit" => o.rate_mbit = num(&name, &value),
            "--queue-bytes" => o.queue_bytes = Some(num(&name, &value)),
            "--window-bytes" => o.window_bytes = num(&name, &value),
            "--bytes" => o.bytes = num(&name, &value),
            "--connections" => o.connections = num(&name, &value),
            _ => {
                eprintln!("linkemu: unknown argument: {a}");
                usage()
            }
        }
    }
    if o.rtt_ms < 0.0 || o.rate_mbit < 0.0 || o.connections == 0 {
        usage();
    }
    if !o.selftest && o.target_port == 0 {
        eprintln!("linkemu: --target-port is required");
        usage();
    }
    o
}

/// The link's parameters, shared by both directions.
struct Model {
    /// Bytes per second; None = no rate limit.
    rate: Option<f64>,
    /// One-way delay.
    delay: Duration,
    queue_bytes: usize,
    window_bytes: usize,
}

impl Model {
    fn new(o: &Opts) -> Model {
        let rate = (o.rate_mbit > 0.0).then(|| o.rate_mbit * 1e6 / 8.0);
        // With no rate limit there is no bandwidth-delay product: a delay
        // line of 64 MiB then (about 5 Gbit/s at 100 ms).
        let bdp = match rate {
            Some(r) => r * o.rtt_ms / 1000.0,
            None if o.rtt_ms > 0.0 => (64 << 20) as f64,
            None => 0.0,
        };
        let queue = o.queue_bytes.unwrap_or(bdp as usize + (1 << 20));
        Model {
            rate,
            delay: Duration::from_secs_f64(o.rtt_ms / 2000.0),
            queue_bytes: queue.max(CHUNK),
            window_bytes: o.window_bytes,
        }
    }
}

/// One direction of the link: a bottleneck and a delay line, shared by
/// every connection.
struct Direction {
    /// End of the serialization of the last chunk that entered.
    free_at: Mutex<Instant>,
    /// Room in the queue, in bytes.
    room: Arc<Semaphore>,
}

impl Direction {
    fn new(m: &Model) -> Direction {
        Direction {
            free_at: Mutex::new(Instant::now()),
            room: Arc::new(Semaphore::new(m.queue_bytes)),
        }
    }

    /// The chunk of `n` bytes enters the bottleneck now: when it leaves the link.
    fn enter(&self, m: &Model, n: usize) -> Instant {
        let now = Instant::now();
        let mut free_at = self.free_at.lock().unwrap();
        let start = (*free_at).max(now);
        let ser = m
            .rate
            .map_or(Duration::ZERO, |r| Duration::from_secs_f64(n as f64 / r));
        *free_at = start + ser;
        *free_at + m.delay
    }
}

struct Link {
    model: Model,
    up: Direction,
    down: Direction,
}

impl Link {
    fn new(o: &Opts) -> Link {
        let model = Model::new(o);
        Link {
            up: Direction::new(&model),
            down: Direction::new(&model),
            model,
        }
    }
}

/// `n` permits of a semaphore, given back when dropped (also when a
/// connection is torn down with chunks still queued).
struct Held {
    sem: Arc<Semaphore>,
    n: usize,
}

impl Held {
    async fn take(sem: &Arc<Semaphore>, n: usize) -> Held {
        sem.acquire_many(n as u32)
            .await
            .expect("semaphore never closed")
            .forget();
        Held {
            sem: sem.clone(),
            n,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.sem.add_permits(self.n);
    }
}

/// Bytes in flight in the emulator, on their way out.
struct Chunk {
    due: Instant,
    data: Vec<u8>,
    _room: Held,
    window: Option<Held>,
}

/// One connection's counters.
struct Conn {
    id: u64,
    up: AtomicU64,
    down: AtomicU64,
    open: AtomicBool,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    conns: Vec<Arc<Conn>>,
}

/// Reads from `r` and queues on the link; `tx` gets None at end of file.
async fn read_side(
    mut r: OwnedReadHalf,
    link: &Link,
    dir: &Direction,
    count: &AtomicU64,
    tx: mpsc::UnboundedSender<Option<Chunk>>,
) -> io::Result<()> {
    let m = &link.model;
    let window = (m.window_bytes > 0).then(|| Arc::new(Semaphore::new(m.window_bytes)));
    let max_read = if m.window_bytes > 0 {
        CHUNK.min(m.window_bytes)
    } else {
        CHUNK
    };
    let mut buf = vec![0u8; max_read];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            let _ = tx.send(None);
            return Ok(());
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        // A small read gets a buffer of its size; a big one takes the read
        // buffer along (memory follows the bytes queued, not the reads).
        let data = if n < max_read / 4 {
            buf[..n].to_vec()
        } else {
            let mut d = std::mem::replace(&mut buf, vec![0u8; max_read]);
            d.truncate(n);
            d
        };
        let window = match &window {
            Some(w) => Some(Held::take(w, n).await),
            None => None,
        };
        let room = Held::take(&dir.room, n).await;
        let due = dir.enter(m, n);
        if tx
            .send(Some(Chunk {
                due,
                data,
                _room: room,
                window,
            }))
            .is_err()
        {
            return Ok(()); // the writing side is gone (and said why)
        }
    }
}

/// Writes every chunk to `w` when it is due; shuts `w` down at end of file.
async fn write_side(
    mut w: OwnedWriteHalf,
    delay: Duration,
    mut rx: mpsc::UnboundedReceiver<Option<Chunk>>,
) -> io::Result<()> {
    while let Some(item) = rx.recv().await {
        let Some(chunk) = item else {
            let _ = w.shutdown().await;
            return Ok(());
        };
        // tokio's timer fires on the first millisecond tick at or after a
        // deadline, plus the wake-up: aiming TIMER_LEAD early centres the
        // release on the due time instead of about 1.3 ms after it.
        if chunk.due > Instant::now() + TIMER_LEAD {
            tokio::time::sleep_until(chunk.due - TIMER_LEAD).await;
        }
        w.write_all(&chunk.data).await?;
        if let Some(win) = chunk.window {
            // The "acknowledgement" travels back before the window opens.
            let back = chunk.due + delay;
            tokio::spawn(async move {
                tokio::time::sleep_until(back).await;
                drop(win);
            });
        }
    }
    Ok(())
}

async fn direction(
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
    link: Arc<Link>,
    up: bool,
    conn: Arc<Conn>,
) -> io::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let dir = if up { &link.up } else { &link.down };
    let count = if up { &conn.up } else { &conn.down };
    let reader = read_side(r, &link, dir, count, tx);
    let writer = write_side(w, link.model.delay, rx);
    tokio::try_join!(reader, writer).map(|_| ())
}

async fn handle(client: TcpStream, target: SocketAddr, link: Arc<Link>, conn: Arc<Conn>) {
    let server = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "linkemu: connection {}: cannot reach {target}: {e}",
                conn.id
            );
            conn.open.store(false, Ordering::Relaxed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let mut up = tokio::spawn(direction(cr, sw, link.clone(), true, conn.clone()));
    let mut down = tokio::spawn(direction(sr, cw, link, false, conn.clone()));
    // Either direction failing (a reset, a closed socket) ends both, which
    // closes both sockets; a clean end of file waits for the other side.
    let failed = |r: &Result<io::Result<()>, tokio::task::JoinError>| !matches!(r, Ok(Ok(())));
    tokio::select! {
        r = &mut up => if failed(&r) { down.abort(); } else { let _ = down.await; },
        r = &mut down => if failed(&r) { up.abort(); } else { let _ = up.await; },
    }
    conn.open.store(false, Ordering::Relaxed);
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    link: Arc<Link>,
    reg: Arc<Mutex<Registry>>,
) {
    loop {
        let (client, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("linkemu: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let conn = {
            let mut reg = reg.lock().unwrap();
            reg.next_id += 1;
            let conn = Arc::new(Conn {
                id: reg.next_id,
                up: AtomicU64::new(0),
                down: AtomicU64::new(0),
                open: AtomicBool::new(true),
            });
            reg.conns.push(conn.clone());
            conn
        };
        tokio::spawn(handle(client, target, link.clone(), conn));
    }
}

fn write_atomically(path: &str, text: &str) -> io::Result<()> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The SIGUSR1 report: waits for the open connections to end (at most
/// `idle_timeout`), writes the counts, resets them.
async fn dump(reg: &Mutex<Registry>, path: &str, idle_timeout: f64) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(idle_timeout);
    loop {
        let open = reg
            .lock()
            .unwrap()
            .conns
            .iter()
            .any(|c| c.open.load(Ordering::Relaxed));
        if !open || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = {
        let mut reg = reg.lock().unwrap();
        let sum = |f: fn(&Conn) -> u64| reg.conns.iter().map(|c| f(c)).sum::<u64>();
        let up = sum(|c| c.up.load(Ordering::Relaxed));
        let down = sum(|c| c.down.load(Ordering::Relaxed));
        let still_open = reg
            .conns
            .iter()
            .filter(|c| c.open.load(Ordering::Relaxed))
            .count();
        let mut text = format!("total {up} {down} {} {still_open}\n", reg.conns.len());
        for c in &reg.conns {
            text += &format!(
                "conn {} {} {}\n",
                c.id,
                c.up.load(Ordering::Relaxed),
                c.down.load(Ordering::Relaxed)
            );
        }
        reg.conns.retain(|c| c.open.load(Ordering::Relaxed));
        for c in &reg.conns {
            c.up.store(0, Ordering::Relaxed);
            c.down.store(0, Ordering::Relaxed);
        }
        text
    };
    write_atomically(path, &text)
}

async fn run(o: Opts) -> io::Result<()> {
    let link = Arc::new(Link::new(&o));
    let listener = TcpListener::bind(("127.0.0.1", o.listen_port)).await?;
    let port = listener.local_addr()?.port();
    let reg = Arc::new(Mutex::new(Registry::default()));
    if let Some(report) = o.report.clone() {
        let reg = reg.clone();
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
        let idle = o.idle_timeout;
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                if let Err(e) = dump(&reg, &report, idle).await {
                    eprintln!("linkemu: cannot write {report}: {e}");
                }
            }
        });
    }
    if let Some(pf) = &o.port_file {
        write_atomically(pf, &format!("{port}\n"))?;
    }
    eprintln!(
        "linkemu: 127.0.0.1:{port} -> 127.0.0.1:{}, rtt {} ms, rate {} Mbit/s, queue {} bytes, window {}",
        o.target_port,
        o.rtt_ms,
        if o.rate_mbit > 0.0 { o.rate_mbit.to_string() } else { "unlimited".into() },
        link.model.queue_bytes,
        if o.window_bytes > 0 { format!("{} bytes", o.window_bytes) } else { "off".into() },
    );
    let target = SocketAddr::from(([127, 0, 0, 1], o.target_port));
    serve(listener, target, link, reg).await;
    Ok(())
}

// ------------------------------------------------------------------ selftest

/// The sink: answers the first byte of a connection with one byte, then
/// counts everything else; returns (one-way time of the first byte, bytes
/// after it, time of the last byte).
async fn sink_conn(mut s: TcpStream, t0: Instant) -> io::Result<(Duration, u64, Instant)> {
    s.set_nodelay(true)?;
    let mut one = [0u8; 1];
    s.read_exact(&mut one).await?;
    let first = Instant::now();
    s.write_all(&one).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut last = Instant::now();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        last = Instant::now();
    }
    Ok((first - t0, total, last))
}

async fn selftest(o: Opts) -> io::Result<()> {
    let sink = TcpListener::bind("127.0.0.1:0").await?;
    let sink_addr = sink.local_addr()?;
    let emu = TcpListener::bind("127.0.0.1:0").await?;
    let emu_addr = emu.local_addr()?;
    let link = Arc::new(Link::new(&o));
    println!(
        "selftest: rtt {} ms, rate {} Mbit/s, queue {} bytes, window {}, {} bytes over {} connection(s)",
        o.rtt_ms,
        if o.rate_mbit > 0.0 { o.rate_mbit.to_string() } else { "unlimited".into() },
        link.model.queue_bytes,
        if o.window_bytes > 0 { format!("{} bytes", o.window_bytes) } else { "off".into() },
        o.bytes,
        o.connections
    );
    let reg = Arc::new(Mutex::new(Registry::default()));
    tokio::spawn(serve(emu, sink_addr, link, reg));

    let k = o.connections;
    let mut clients = Vec::new();
    let mut sinks = Vec::new();
    let mut rtts = Vec::new();
    for i in 0..k {
        let mut c = TcpStream::connect(emu_addr).await?;
        c.set_nodelay(true)?;
        let (s, _) = sink.accept().await?;
        // Ping: one byte up (its one-way time measured by the sink), one back.
        let t0 = Instant::now();
        let sink_task = tokio::spawn(sink_conn(s, t0));
        c.write_all(&[i as u8]).await?;
        let mut one = [0u8; 1];
        c.read_exact(&mut one).await?;
        rtts.push(t0.elapsed());
        clients.push(c);
        sinks.push(sink_task);
    }
    let share = o.bytes / k as u64;
    let start = Instant::now();
    let mut senders = Vec::new();
    for mut c in clients {
        senders.push(tokio::spawn(async move {
            let buf = vec![0x5au8; CHUNK];
            let mut left = share;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                c.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            c.shutdown().await?;
            io::Result::Ok(())
        }));
    }
    for s in senders {
        s.await.expect("sender task")?;
    }
    let mut total = 0u64;
    let mut end = start;
    let mut firsts = Vec::new();
    for s in sinks {
        let (first, n, last) = s.await.expect("sink task")?;
        firsts.push(first);
        total += n;
        end = end.max(last);
    }
    let secs = (end - start).as_secs_f64();
    let mb = total as f64 / secs / 1e6;
    let rate = o.rate_mbit * 1e6 / 8.0 / 1e6;
    println!(
        "first byte one-way: {:.1} ms, ping-pong round trip {:.1} ms (expected {:.1} and {:.1})",
        firsts[0].as_secs_f64() * 1000.0,
        rtts[0].as_secs_f64() * 1000.0,
        o.rtt_ms / 2.0,
        o.rtt_ms
    );
    println!(
        "throughput: {total} bytes in {secs:.2} s = {mb:.1} MB/s ({:.1} MiB/s){}",
        total as f64 / secs / (1 << 20) as f64,
        if rate > 0.0 {
            format!(", {:.0} % of {rate:.1} MB/s", 100.0 * mb / rate)
        } else {
            String::new()
        }
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let o = parse_args();
    let r = if o.selftest {
        selftest(o).await
    } else {
        run(o).await
    };
    if let Err(e) = r {
        eprintln!("linkemu: {e}");
        std::process::exit(1);
    }
}
