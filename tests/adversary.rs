//! A server that lies: ferry's embedded SSH server (russh plus russh-sftp),
//! with SFTP replies a test tampers with where OpenSSH never would. Unsafe
//! names are refused and never written outside the destination, sizes that
//! lie never end in a wrong file reported as done, and short reads and
//! replies out of order still give byte-identical copies.
mod common;

use common::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry::embedded::sftp::LocalSftp;
use ferry::embedded::{throwaway_key, EmbeddedServer, ServerOptions, SftpService};
use russh_sftp::protocol::{
    Attrs, Data, File as NameEntry, FileAttributes, Handle, Name, OpenFlags, Packet, Status,
    Version,
};
use russh_sftp::server::{Handler, StatusReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(60);

/// An embedded server over a temp directory, and a client set up for it.
struct Served {
    _runtime: tokio::runtime::Runtime,
    server: EmbeddedServer,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Served {
    /// `sftp` makes the SFTP service from the server's base directory
    /// (`None`: the honest one).
    fn start(sftp: impl FnOnce(PathBuf) -> Option<SftpService>) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let client = throwaway_key().expect("client key");
        let options = ServerOptions {
            client_key: client.public_key().clone(),
            base: dir.path().to_path_buf(),
            helper: true,
            sftp: sftp(dir.path().to_path_buf()),
        };
        let server = runtime
            .block_on(EmbeddedServer::start(options))
            .expect("start the embedded server");
        let config = server
            .write_client_files(dir.path(), "liar", &client)
            .expect("client files");
        for sub in ["local", "remote", "outside", "home"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Served {
            _runtime: runtime,
            server,
            dir,
            config,
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// How ferry's messages name this server.
    fn host(&self) -> String {
        format!("[127.0.0.1]:{}", self.server.port())
    }

    fn spec(&self, remote: &Path) -> String {
        format!("liar:{}", remote.display())
    }

    fn ferry(&self) -> FerryCmd {
        let mut cmd = FerryCmd::bare(&self.path("home"));
        cmd.arg("--ssh-config").arg(&self.config);
        cmd
    }

    /// `ferry FLAGS local/ liar:remote`.
    fn push(&self, flags: &[&str], local: &Path, remote: &Path) -> Output {
        self.ferry()
            .args(flags)
            .arg(format!("{}/", local.display()))
            .arg(self.spec(remote))
            .run(TIMEOUT)
    }

    /// `ferry FLAGS liar:remote/ local`.
    fn pull(&self, flags: &[&str], remote: &Path, local: &Path) -> Output {
        self.pull_cmd(flags, remote, local).run(TIMEOUT)
    }

    /// The command [`Served::pull`] runs.
    fn pull_cmd(&self, flags: &[&str], remote: &Path, local: &Path) -> FerryCmd {
        let mut cmd = self.ferry();
        cmd.args(flags)
            .arg(format!("{}/", self.spec(remote)))
            .arg(local);
        cmd
    }
}

/// What a [`Liar`] changes in the honest server's replies.
#[derive(Clone, Default)]
struct Lies {
    /// Extra names added to every directory listing.
    names: Vec<String>,
    /// Sizes reported for files of these names, whatever they hold.
    sizes: HashMap<String, u64>,
    /// Most bytes one READ reply carries.
    short_reads: Option<usize>,
    /// A directory whose listing never ends.
    endless: Option<Endless>,
    /// Symlink targets reported for links of these names.
    link_targets: HashMap<String, String>,
    /// Files of these names grow by 1,000 bytes before every read of them.
    grows: Vec<String>,
}

/// A directory (by its name) whose READDIR never says EOF: each reply
/// holds `per_reply` fresh names of `name_len` bytes.
#[derive(Clone)]
struct Endless {
    dir: String,
    name_len: usize,
    per_reply: usize,
}

/// The honest server with [`Lies`] told on top.
struct Liar {
    honest: LocalSftp,
    lies: Lies,
    base: PathBuf,
    /// Open handles and the paths they were opened by.
    paths: HashMap<String, String>,
    /// Directory handles whose listing never ends.
    endless: std::collections::HashSet<String>,
    /// Names handed out by endless listings so far.
    listed: u64,
}

impl Liar {
    fn service(lies: Lies, base: PathBuf) -> SftpService {
        Arc::new(move |stream| {
            let liar = Liar {
                honest: LocalSftp::new(base.clone()),
                lies: lies.clone(),
                base: base.clone(),
                paths: HashMap::new(),
                endless: Default::default(),
                listed: 0,
            };
            Box::pin(russh_sftp::server::run(stream, liar))
        })
    }

    fn resize(&self, name: &str, attrs: &mut FileAttributes) {
        if let Some(&size) = self.lies.sizes.get(base_name(name)) {
            attrs.size = Some(size);
        }
    }

    /// A reply of fresh names that ends nothing.
    fn more_names(&mut self, id: u32, endless: &Endless) -> Name {
        let files = (0..endless.per_reply)
            .map(|_| {
                self.listed += 1;
                let mut filename = format!("{:08}", self.listed);
                filename.extend(std::iter::repeat_n('x', endless.name_len.saturating_sub(8)));
                NameEntry {
                    filename,
                    longname: String::new(),
                    attrs: FileAttributes::empty(),
                }
            })
            .collect();
        Name { id, files }
    }

    /// A file that grows with every read of it: 1,000 more bytes.
    fn grow(&self, handle: &str) {
        let Some(path) = self.paths.get(handle) else {
            return;
        };
        if self.lies.grows.iter().any(|name| name == base_name(path)) {
            use std::io::Write;
            let mut file = fs::OpenOptions::new()
                .append(true)
                .open(self.base.join(path))
                .expect("open the growing file");
            file.write_all(&[b'+'; 1000]).expect("grow the file");
        }
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Handler for Liar {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        self.honest.unimplemented()
    }

    async fn init(
        &mut self,
        version: u32,
        extensions: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        self.honest.init(version, extensions).await
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        let handle = self
            .honest
            .open(id, filename.clone(), pflags, attrs)
            .await?;
        self.paths.insert(handle.handle.clone(), filename);
        Ok(handle)
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        self.paths.remove(&handle);
        self.honest.close(id, handle).await
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let len = match self.lies.short_reads {
            Some(most) => len.min(most as u32),
            None => len,
        };
        self.grow(&handle);
        self.honest.read(id, handle, offset, len).await
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        self.honest.write(id, handle, offset, data).await
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let mut attrs = self.honest.lstat(id, path.clone()).await?;
        self.resize(&path, &mut attrs.attrs);
        Ok(attrs)
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let mut attrs = self.honest.stat(id, path.clone()).await?;
        self.resize(&path, &mut attrs.attrs);
        Ok(attrs)
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let path = self.paths.get(&handle).cloned().unwrap_or_default();
        let mut attrs = self.honest.fstat(id, handle).await?;
        self.resize(&path, &mut attrs.attrs);
        Ok(attrs)
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        self.honest.setstat(id, path, attrs).await
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        self.honest.fsetstat(id, handle, attrs).await
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let endless = self.lies.endless.as_ref();
        let without_end = endless.is_some_and(|e| e.dir == base_name(&path));
        let handle = self.honest.opendir(id, path).await?;
        self.paths.insert(handle.handle.clone(), String::new());
        if without_end {
            self.endless.insert(handle.handle.clone());
        }
        Ok(handle)
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        if let Some(endless) = self.lies.endless.clone() {
            if self.endless.contains(&handle) {
                return Ok(self.more_names(id, &endless));
            }
        }
        let first = self.paths.remove(&handle).is_some();
        let mut reply = match self.honest.readdir(id, handle).await {
            Ok(reply) => reply,
            Err(end) if !first || self.lies.names.is_empty() => return Err(end),
            Err(_) => Name { id, files: vec![] },
        };
        for file in &mut reply.files {
            self.resize(&file.filename.clone(), &mut file.attrs);
        }
        if first {
            let attrs = FileAttributes {
                size: Some(5),
                permissions: Some(0o100644),
                mtime: Some(1_600_000_000),
                atime: Some(1_600_000_000),
                ..Default::default()
            };
            for name in &self.lies.names {
                reply
                    .files
                    .push(NameEntry::new(name.clone(), attrs.clone()));
            }
        }
        Ok(reply)
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        self.honest.remove(id, filename).await
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        self.honest.mkdir(id, path, attrs).await
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        self.honest.rmdir(id, path).await
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        self.honest.realpath(id, path).await
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        self.honest.rename(id, oldpath, newpath).await
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        match self.lies.link_targets.get(base_name(&path)) {
            Some(target) => Ok(Name {
                id,
                files: vec![NameEntry::dummy(target.clone())],
            }),
            None => self.honest.readlink(id, path).await,
        }
    }

    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, StatusReply> {
        self.honest.symlink(id, linkpath, targetpath).await
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, StatusReply> {
        self.honest.extended(id, request, data).await
    }
}

/// The honest server on an in-memory pipe, for a service that stands
/// between it and the client: the halves to read its replies from and to
/// write requests to.
async fn honest_behind_a_pipe(
    base: PathBuf,
) -> (
    tokio::io::ReadHalf<tokio::io::DuplexStream>,
    tokio::io::WriteHalf<tokio::io::DuplexStream>,
) {
    let (ours, server_side) = tokio::io::duplex(4 << 20);
    russh_sftp::server::run(server_side, LocalSftp::new(base)).await;
    tokio::io::split(ours)
}

/// Serves SFTP honestly but hands the replies back in reverse order, in
/// batches: a reply is held until every request sent so far has its reply.
fn out_of_order(base: PathBuf) -> SftpService {
    Arc::new(move |channel| {
        let base = base.clone();
        Box::pin(async move {
            let (mut from_server, mut to_server) = honest_behind_a_pipe(base).await;
            let (mut from_client, mut to_client) = tokio::io::split(channel);
            let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counted = asked.clone();
            let requests = tokio::spawn(async move {
                while let Some(packet) = read_packet(&mut from_client).await {
                    // Counted before the server can answer it.
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if to_server.write_all(&packet).await.is_err() {
                        break;
                    }
                }
            });
            let mut held: Vec<Vec<u8>> = Vec::new();
            let mut answered = 0u64;
            while let Some(packet) = read_packet(&mut from_server).await {
                held.push(packet);
                let open = asked.load(std::sync::atomic::Ordering::SeqCst) - answered;
                if held.len() as u64 >= open {
                    answered += held.len() as u64;
                    for reply in held.drain(..).rev() {
                        if to_client.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                }
            }
            requests.abort();
        })
    })
}

/// Serves SFTP honestly, except that every READDIR is answered with a
/// NAME reply that promises three names and holds none: a packet
/// russh-sftp cannot decode, which ends the session.
fn malformed_listing(base: PathBuf) -> SftpService {
    Arc::new(move |channel| {
        let base = base.clone();
        Box::pin(async move {
            let (mut from_server, mut to_server) = honest_behind_a_pipe(base).await;
            let (mut from_client, to_client) = tokio::io::split(channel);
            let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
            let replies = to_client.clone();
            let answers = tokio::spawn(async move {
                while let Some(packet) = read_packet(&mut from_server).await {
                    if replies.lock().await.write_all(&packet).await.is_err() {
                        break;
                    }
                }
            });
            const READDIR: u8 = 12;
            const NAME: u8 = 104;
            while let Some(packet) = read_packet(&mut from_client).await {
                if packet.get(4) != Some(&READDIR) {
                    if to_server.write_all(&packet).await.is_err() {
                        break;
                    }
                    continue;
                }
                let mut broken = 9u32.to_be_bytes().to_vec();
                broken.push(NAME);
                broken.extend_from_slice(&packet[5..9]); // the request's id
                broken.extend_from_slice(&3u32.to_be_bytes());
                if to_client.lock().await.write_all(&broken).await.is_err() {
                    break;
                }
            }
            answers.abort();
        })
    })
}

/// One SFTP packet with its length prefix, or `None` at the end.
async fn read_packet(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut packet = vec![0u8; 4 + u32::from_be_bytes(len) as usize];
    packet[..4].copy_from_slice(&len);
    stream.read_exact(&mut packet[4..]).await.ok()?;
    Some(packet)
}

/// A tree with a file larger than one request, a few small ones, and a
/// subdirectory.
fn sample_tree(root: &Path) {
    write_file(
        &root.join("big.bin"),
        &random_bytes(3 * MIB as usize + 777, 7),
    );
    for i in 0..20 {
        write_file(
            &root.join(format!("small/{i:02}.txt")),
            format!("file {i}\n").as_bytes(),
        );
    }
    write_file(&root.join("sub/deeper/leaf.bin"), &random_bytes(70_000, 8));
}

/// The honest embedded server carries push, pull and a delta through its
/// in-process helper.
#[test]
fn the_embedded_server_round_trips_a_tree() {
    let served = Served::start(|_| None);
    let src = served.path("local/src");
    sample_tree(&src);
    let remote = served.path("remote/dest");
    served.push(&["-a"], &src, &remote).assert_ok();
    assert_trees_identical(&src, &remote);

    // A few changed blocks go through the helper's hashing.
    let mut big = fs::read(src.join("big.bin")).unwrap();
    big[1_000_000..1_000_100].fill(0xAB);
    write_file(&src.join("big.bin"), &big);
    let earlier = std::time::SystemTime::now() - Duration::from_secs(100);
    fs::File::options()
        .write(true)
        .open(src.join("big.bin"))
        .and_then(|f| f.set_modified(earlier))
        .unwrap();
    let out = served.push(&["-a", "-v", "--remote-hash", "helper"], &src, &remote);
    out.assert_ok();
    assert!(out.stderr.contains("helper"), "{out}");
    assert!(out.stdout.contains("1 by delta"), "{out}");
    assert_trees_identical(&src, &remote);

    let back = served.path("local/back");
    served.pull(&["-a"], &remote, &back).assert_ok();
    assert_trees_identical(&src, &back);
}

/// Names no directory can hold (`..` in a path, `/`, an absolute path) are
/// refused with the directory named; nothing lands outside the destination.
#[test]
fn unsafe_names_in_a_listing_are_refused() {
    let outside = tempfile::tempdir().expect("temp dir");
    let planted = outside.path().join("planted");
    let lies = Lies {
        names: vec![
            "../escape".into(),
            planted.display().to_string(),
            "a/b".into(),
        ],
        ..Lies::default()
    };
    let served = Served::start(|base| Some(Liar::service(lies, base)));
    let src = served.path("remote/src");
    sample_tree(&src);
    let dest = served.path("local/dest");
    let out = served.pull(&["-a"], &src, &dest);
    out.assert_code(23);
    out.assert_stderr_contains("unsafe file name");
    assert!(!planted.exists(), "{out}");
    assert!(!served.path("local/escape").exists(), "{out}");
    assert_dir_empty(outside.path());
    assert!(!dest.join("a").exists(), "{out}");
}

/// A server that answers every read with at most 1,000 bytes, as SFTP
/// allows: ferry asks again for the rest, on pull and when it verifies a
/// partial it resumes on push.
#[test]
fn short_reads_still_give_whole_files() {
    let lies = Lies {
        short_reads: Some(1000),
        ..Lies::default()
    };
    let served = Served::start(|base| Some(Liar::service(lies, base)));
    let src = served.path("remote/src");
    sample_tree(&src);
    let dest = served.path("local/dest");
    served.pull(&["-a"], &src, &dest).assert_ok();
    assert_trees_identical(&src, &dest);

    // A push that resumes a partial reads it back to verify it.
    let local = served.path("local/push");
    sample_tree(&local);
    let remote = served.path("remote/push");
    let big = fs::read(local.join("big.bin")).unwrap();
    write_file(&partial_path(&remote, "big.bin"), &big[..2 * MIB as usize]);
    served
        .push(&["-a", "--remote-hash", "read"], &local, &remote)
        .assert_ok();
    assert_trees_identical(&local, &remote);
}

/// Replies handed back in reverse order, many at a time: every request
/// still gets its own answer.
#[test]
fn replies_out_of_order_still_give_identical_trees() {
    let served = Served::start(|base| Some(out_of_order(base)));
    let local = served.path("local/src");
    sample_tree(&local);
    let remote = served.path("remote/dest");
    served
        .push(&["-a", "--remote-hash", "off"], &local, &remote)
        .assert_ok();
    assert_trees_identical(&local, &remote);
    let back = served.path("local/back");
    served.pull(&["-a"], &remote, &back).assert_ok();
    assert_trees_identical(&local, &back);
}

/// Sizes that lie, both ways, on pull: a file said to be longer than it is
/// and one said to be shorter. Neither may end as a wrong file reported as
/// copied: each either fails (exit 23, named) or arrives whole.
#[test]
fn sizes_that_lie_never_end_in_a_wrong_file() {
    let longer = random_bytes(300_000, 11);
    let shorter = random_bytes(2 * MIB as usize, 12);
    let lies = Lies {
        sizes: HashMap::from([
            ("said-longer.bin".to_string(), longer.len() as u64 + 4096),
            ("said-shorter.bin".to_string(), 1000),
        ]),
        ..Lies::default()
    };
    let served = Served::start(|base| Some(Liar::service(lies, base)));
    let src = served.path("remote/src");
    write_file(&src.join("said-longer.bin"), &longer);
    write_file(&src.join("said-shorter.bin"), &shorter);
    write_file(&src.join("honest.txt"), b"as it is");
    let dest = served.path("local/dest");
    let out = served.pull(&["-a"], &src, &dest);
    assert_eq!(fs::read(dest.join("honest.txt")).unwrap(), b"as it is");
    for (name, real) in [("said-longer.bin", &longer), ("said-shorter.bin", &shorter)] {
        match fs::read(dest.join(name)) {
            Ok(got) => assert!(&got == real, "{name} arrived wrong\n{out}"),
            Err(_) => {
                assert_eq!(out.code, 23, "{out}");
                out.assert_stderr_contains(name);
            }
        }
    }
}

/// Names with control characters are legal file names: they arrive as they
/// are, and nothing ferry prints carries them raw to the terminal.
#[test]
fn control_characters_in_names_never_reach_the_terminal_raw() {
    let served = Served::start(|_| None);
    let src = served.path("remote/src");
    let hostile = "title\u{1b}]0;pwned\u{7}\u{1b}[2Jclear\rback";
    write_file(&src.join(hostile), b"escape sequences");
    write_file(&src.join("plain.txt"), b"plain");
    let dest = served.path("local/dest");
    let out = served.pull(&["-a", "-v"], &src, &dest);
    out.assert_ok();
    assert_trees_identical(&src, &dest);
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(printed.contains("plain.txt"), "{out}");
    assert!(
        !printed.contains('\u{1b}') && !printed.contains('\u{7}') && !printed.contains('\r'),
        "raw control characters printed: {printed:?}"
    );
}

/// The largest resident set process `pid` reaches until it exits, in KiB:
/// its VmHWM, read every 10 ms while it lasts (at most `limit`).
fn peak_rss_kib(pid: u32, limit: Duration) -> u64 {
    let deadline = std::time::Instant::now() + limit;
    let mut peak = 0;
    while std::time::Instant::now() < deadline {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            break;
        };
        // A process that has exited (a zombie) shows no memory lines.
        let Some(hwm) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) else {
            break;
        };
        peak = hwm
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(peak);
        std::thread::sleep(Duration::from_millis(10));
    }
    peak
}

/// A server whose directory `dir` lists without end: READDIR never says
/// EOF, every reply holds `per_reply` fresh names of `name_len` bytes.
fn endless_server(dir: &str, name_len: usize, per_reply: usize) -> Served {
    let endless = Endless {
        dir: dir.into(),
        name_len,
        per_reply,
    };
    let lies = Lies {
        endless: Some(endless),
        ..Lies::default()
    };
    Served::start(|base| Some(Liar::service(lies, base)))
}

/// Runs `cmd`, which a listing bound must stop (exit 12) in bounded
/// memory: its peak resident set stays under 1 GiB, and is printed.
#[track_caller]
fn stopped_by_a_bound(cmd: &mut FerryCmd, what: &str) -> Output {
    let mut peak = 0;
    let out = cmd.run_and(TIMEOUT, |pid| peak = peak_rss_kib(pid, TIMEOUT));
    out.assert_code(12);
    out.assert_stderr_contains("refusing to go on (a broken or hostile server?)");
    eprintln!(
        "{what}: exit 12 after {:.1?}, peak RSS {} MiB",
        out.elapsed,
        peak / 1024
    );
    assert!(peak > 0, "no memory figure read\n{out}");
    assert!(peak < 1024 * 1024, "peak RSS {} MiB\n{out}", peak / 1024);
    out
}

/// A server whose listing never ends makes ferry stop with exit 12 and a
/// message naming the host, the directory and the bound, in bounded time
/// and memory. Short names meet the bound on entries (4,000,000:
/// `MAX_LISTED_ENTRIES` in src/endpoint/remote/limits.rs).
#[test]
fn a_listing_without_end_stops_the_run_with_exit_12() {
    let served = endless_server("src", 8, 10_000);
    let src = served.path("remote/src");
    sample_tree(&src);
    let dest = served.path("local/dest");
    let mut pull = served.pull_cmd(&["-a"], &src, &dest);
    let out = stopped_by_a_bound(&mut pull, "endless listing of short names");
    out.assert_stderr_contains(&format!(
        "{}: the server listed more than 4000000 entries in {}",
        served.host(),
        src.display()
    ));
}

/// Long names without end meet the bound on bytes of names (256 MiB)
/// first. Here the endless directory is an extraneous one that a push's
/// `--delete` lists after the transfers: the run stops there, the files
/// it has done stay, nothing is deleted.
#[test]
fn a_listing_of_long_names_without_end_keeps_the_files_done() {
    let served = endless_server("old", 4000, 60);
    let local = served.path("local/src");
    sample_tree(&local);
    let remote = served.path("remote/dest");
    write_file(&remote.join("old/stale.txt"), b"stale");
    let mut push = served.ferry();
    push.args(["-a", "--delete"])
        .arg(format!("{}/", local.display()))
        .arg(served.spec(&remote));
    let out = stopped_by_a_bound(&mut push, "endless listing of long names");
    out.assert_stderr_contains(&format!(
        "the server listed more than 256 MiB of names in {}",
        remote.join("old").display()
    ));
    for done in ["small", "sub"] {
        assert_trees_identical(&local.join(done), &remote.join(done));
    }
    let big = fs::read(remote.join("big.bin")).unwrap_or_default();
    assert!(big == fs::read(local.join("big.bin")).unwrap(), "{out}");
    let stale = remote.join("old/stale.txt");
    assert!(stale.exists(), "deleted after all\n{out}");
}

/// A name longer than any file system holds (5,000 bytes) and a symlink
/// target longer than any system makes (80,000 bytes) each fail alone,
/// named (exit 23); their neighbours arrive.
#[test]
fn an_over_long_name_or_link_target_fails_alone() {
    let lies = Lies {
        names: vec!["n".repeat(5000)],
        link_targets: HashMap::from([("far.link".to_string(), "a/".repeat(40_000))]),
        ..Lies::default()
    };
    let served = Served::start(|base| Some(Liar::service(lies, base)));
    let src = served.path("remote/src");
    sample_tree(&src);
    std::os::unix::fs::symlink("small/00.txt", src.join("near.link")).unwrap();
    std::os::unix::fs::symlink("small/01.txt", src.join("far.link")).unwrap();
    let dest = served.path("local/dest");
    let out = served.pull(&["-a"], &src, &dest);
    out.assert_code(23);
    out.assert_stderr_contains(&format!("{}/nnnnn", src.display()));
    out.assert_stderr_contains("the server gives a name of 5000 bytes, more than the 4096");
    out.assert_stderr_contains(
        "far.link: the server gives a symlink target of 80000 bytes, more than the 65536",
    );
    assert_eq!(
        fs::read_link(dest.join("near.link")).unwrap(),
        Path::new("small/00.txt")
    );
    assert!(dest.join("far.link").symlink_metadata().is_err(), "{out}");
    for name in ["big.bin", "small/07.txt", "sub/deeper/leaf.bin"] {
        assert!(
            fs::read(src.join(name)).unwrap() == fs::read(dest.join(name)).unwrap(),
            "{name} differs\n{out}"
        );
    }
}

/// A reply russh-sftp cannot decode makes it log a warning of its own:
/// without `FERRY_LOG` that line stays off stderr (ferry reports the lost
/// session in its own words); with `FERRY_LOG=debug` it is there.
#[test]
fn a_malformed_reply_is_logged_only_when_asked() {
    let served = Served::start(|base| Some(malformed_listing(base)));
    let src = served.path("remote/src");
    sample_tree(&src);
    let quiet = served
        .pull_cmd(&["-a", "--retries", "0"], &src, &served.path("local/quiet"))
        .env_remove("FERRY_LOG")
        .run(TIMEOUT);
    quiet.assert_code(10);
    assert!(
        !quiet.stderr.contains("russh_sftp") && !quiet.stderr.contains("WARN"),
        "a third-party log line on stderr\n{quiet}"
    );
    let asked = served
        .pull_cmd(&["-a", "--retries", "0"], &src, &served.path("local/asked"))
        .env("FERRY_LOG", "debug")
        .run(TIMEOUT);
    asked.assert_code(10);
    assert!(asked.stderr.contains("WARN russh_sftp::client"), "{asked}");
}

/// A file that grows while it is pulled (by 1,000 bytes before every read
/// the server answers) is read to the size it had when planned, as a push
/// reads a local one: its copy stops there, and the file fails as changed
/// while it was being copied (exit 23), not installed. A small one read
/// whole fails alike; a steady neighbour arrives.
#[test]
fn a_file_growing_while_pulled_is_read_to_its_planned_size() {
    let lies = Lies {
        grows: vec!["growing.log".into(), "growing.txt".into()],
        ..Lies::default()
    };
    let served = Served::start(|base| Some(Liar::service(lies, base)));
    let src = served.path("remote/src");
    let log = random_bytes(3 * MIB as usize + 5, 21);
    write_file(&src.join("growing.log"), &log);
    write_file(&src.join("growing.txt"), b"small and growing");
    write_file(&src.join("steady.txt"), b"steady");
    let dest = served.path("local/dest");
    let out = served.pull(&["-a"], &src, &dest);
    out.assert_code(23);
    for name in ["growing.log", "growing.txt"] {
        out.assert_stderr_contains(&format!(
            "{name}: the file changed while it was being copied"
        ));
        assert!(!dest.join(name).exists(), "{name} installed\n{out}");
    }
    let grown = fs::metadata(src.join("growing.log")).unwrap().len();
    assert!(grown > log.len() as u64, "the file did not grow\n{out}");
    let partial = fs::read(partial_path(&dest, "growing.log")).unwrap();
    assert_eq!(
        partial.len(),
        log.len(),
        "copied past the planned size\n{out}"
    );
    assert!(
        partial == log,
        "the copy differs from what was planned\n{out}"
    );
    assert_eq!(fs::read(dest.join("steady.txt")).unwrap(), b"steady");
}

/// Decisions drawn one at a time from [`random_bytes`]: the same seed
/// tampers the same way on every machine.
struct Dice {
    bytes: Vec<u8>,
    next: usize,
}

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice {
            bytes: random_bytes(1 << 16, seed),
            next: 0,
        }
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        let at = self.next % (self.bytes.len() - 4);
        self.next += 4;
        let word = u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap());
        word as usize % n.max(1)
    }
}

/// One SFTP reply (length prefix, type, id, payload) changed as a hostile
/// or broken server might: bits flipped, a length or count inside set
/// huge, the payload cut (the prefix kept true, or not), garbage, the
/// reply dropped or sent twice, its type changed.
fn tamper(dice: &mut Dice, mut packet: Vec<u8>) -> Vec<Vec<u8>> {
    let body = packet.len().max(5) - 4;
    let how = dice.below(8);
    // On the test's stderr: what a failing run did.
    eprintln!("tampering with a reply of type {}: way {how}", packet[4]);
    match how {
        0 => {
            let at = 4 + dice.below(body);
            let bit = dice.below(8);
            eprintln!("bit {bit} of byte {at} of {}", packet.len());
            packet[at] ^= 1 << bit;
        }
        1 if packet.len() >= 13 => {
            let at = 9 + dice.below(packet.len() - 12);
            let huge = [u32::MAX, 0x8000_0000, 0x00ff_ffff][dice.below(3)];
            packet[at..at + 4].copy_from_slice(&huge.to_be_bytes());
        }
        2 => {
            packet.truncate(4 + dice.below(body));
            let len = (packet.len() - 4) as u32;
            packet[..4].copy_from_slice(&len.to_be_bytes());
        }
        3 => packet[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]),
        4 => {
            let garbage = random_bytes(dice.below(64), dice.below(1 << 30) as u64);
            packet.truncate(9.min(packet.len()));
            packet.extend_from_slice(&garbage);
            let len = (packet.len() - 4) as u32;
            packet[..4].copy_from_slice(&len.to_be_bytes());
        }
        5 => return Vec::new(),
        6 => return vec![packet.clone(), packet],
        _ => packet[4] = dice.below(256) as u8,
    }
    vec![packet]
}

/// Serves SFTP honestly, but the reply numbered `first` (and after it,
/// each with a small chance) is tampered with ([`tamper`]).
fn tampering(base: PathBuf, seed: u64) -> SftpService {
    Arc::new(move |channel| {
        let base = base.clone();
        Box::pin(async move {
            let (mut from_server, mut to_server) = honest_behind_a_pipe(base).await;
            let (mut from_client, mut to_client) = tokio::io::split(channel);
            let requests = tokio::spawn(async move {
                while let Some(packet) = read_packet(&mut from_client).await {
                    if to_server.write_all(&packet).await.is_err() {
                        break;
                    }
                }
            });
            let mut dice = Dice::new(seed);
            let first = dice.below(48);
            let mut index = 0;
            while let Some(packet) = read_packet(&mut from_server).await {
                let replies = match index == first || (index > first && dice.below(100) < 3) {
                    true => tamper(&mut dice, packet),
                    false => vec![packet],
                };
                index += 1;
                for reply in replies {
                    if to_client.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            }
            requests.abort();
        })
    })
}

/// A number from the environment (decimal or 0x-hex), else `default`.
fn env_number(name: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|e| panic!("{name}={text}: {e}"))
}

/// SFTP replies mutated by a seeded generator, a pull or a push a run:
/// every run ends within its timeout with an exit code (an error, or 0
/// where the change did not matter), never a panic, and nothing is
/// written beside the destination but its lock. `FERRY_FUZZ_SFTP_RUNS` and
/// `FERRY_FUZZ_SEED` make a longer run.
#[test]
fn mutated_sftp_replies_end_in_an_exit_code_never_a_hang_or_panic() {
    let runs = env_number("FERRY_FUZZ_SFTP_RUNS", 12);
    let seed = env_number("FERRY_FUZZ_SEED", 0x00F3_2217_5EED);
    let mut codes: HashMap<i32, u32> = HashMap::new();
    for run in 0..runs {
        let run_seed = seed.wrapping_add(run);
        let served = Served::start(|base| Some(tampering(base, run_seed)));
        let flags = ["-a", "--timeout", "3", "--retries", "0"];
        eprintln!("run {run}: FERRY_FUZZ_SEED={run_seed:#x} FERRY_FUZZ_SFTP_RUNS=1 repeats it");
        let (out, parent) = match run_seed % 2 {
            0 => {
                let src = served.path("remote/src");
                small_tree(&src);
                let dest = served.path("local/dest");
                (served.pull(&flags, &src, &dest), served.path("local"))
            }
            _ => {
                let src = served.path("local/src");
                small_tree(&src);
                let dest = served.path("remote/dest");
                (served.push(&flags, &src, &dest), served.path("remote"))
            }
        };
        let context = format!("run {run} (FERRY_FUZZ_SEED={run_seed:#x} for this run)\n{out}");
        assert!(!out.stderr.contains("panicked"), "{context}");
        assert!(
            out.code < 101 || (out.code > 101 && out.code < 128),
            "{context}"
        );
        let beside: Vec<_> = fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // The lock of a run whose connection broke stays (the next
            // run takes it over): ferry's own, and the only one allowed.
            .filter(|name| !["dest", "src", ".dest.ferry-lock"].contains(&name.as_str()))
            .collect();
        assert!(
            beside.is_empty(),
            "written beside the destination: {beside:?}\n{context}"
        );
        assert_dir_empty(&served.path("outside"));
        *codes.entry(out.code).or_default() += 1;
    }
    eprintln!("mutated SFTP replies: {runs} runs, exit codes {codes:?}");
}

/// A few small files and one of several SFTP reads, in two directories.
fn small_tree(root: &Path) {
    write_file(&root.join("big.bin"), &random_bytes(300_000, 21));
    for i in 0..6 {
        write_file(
            &root.join(format!("d/{i}.txt")),
            format!("file {i}\n").as_bytes(),
        );
    }
}
