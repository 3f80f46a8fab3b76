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
    _server: EmbeddedServer,
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
            _server: server,
            dir,
            config,
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
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
        self.ferry()
            .args(flags)
            .arg(format!("{}/", self.spec(remote)))
            .arg(local)
            .run(TIMEOUT)
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
}

/// The honest server with [`Lies`] told on top.
struct Liar {
    honest: LocalSftp,
    lies: Lies,
    paths: HashMap<String, String>,
}

impl Liar {
    fn service(lies: Lies, base: PathBuf) -> SftpService {
        Arc::new(move |stream| {
            let liar = Liar {
                honest: LocalSftp::new(base.clone()),
                lies: lies.clone(),
                paths: HashMap::new(),
            };
            Box::pin(russh_sftp::server::run(stream, liar))
        })
    }

    fn resize(&self, name: &str, attrs: &mut FileAttributes) {
        let base = name.rsplit('/').next().unwrap_or(name);
        if let Some(&size) = self.lies.sizes.get(base) {
            attrs.size = Some(size);
        }
    }
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
        let handle = self.honest.opendir(id, path).await?;
        self.paths.insert(handle.handle.clone(), String::new());
        Ok(handle)
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
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
        self.honest.readlink(id, path).await
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

/// Serves SFTP honestly but hands the replies back in reverse order, in
/// batches: a reply is held until every request sent so far has its reply.
fn out_of_order(base: PathBuf) -> SftpService {
    Arc::new(move |channel| {
        let base = base.clone();
        Box::pin(async move {
            let (ours, server_side) = tokio::io::duplex(4 << 20);
            russh_sftp::server::run(server_side, LocalSftp::new(base)).await;
            let (mut from_client, mut to_client) = tokio::io::split(channel);
            let (mut from_server, mut to_server) = tokio::io::split(ours);
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
