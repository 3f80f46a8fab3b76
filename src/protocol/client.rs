//! The client side of the helper protocol, over any byte stream: an SSH exec
//! channel in ferry, an in-memory duplex in tests. Many tasks share one
//! client and may each have a request in flight: requests are queued as
//! whole frames, a writer task sends those waiting together in one write,
//! and since the server answers in order, a reader task hands each reply
//! to the oldest request still waiting.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;

use super::fs::{FsReply, FsRequest};
use super::{Message, FIRST_READ, MAX_FRAME, VERSION};
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::error::Error;
use crate::hash::BlockHash;
use crate::meta::{Attrs, CopyRange};
use crate::paths::to_bytes;
use crate::ssh::{shell_quote, Connection};

/// A byte stream the helper can run over.
pub(crate) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HelperError {
    /// No greeting came back: the command is missing or failed to start.
    #[error("the remote helper did not start: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Version(String),
    /// The helper answered, but could not do this request (a missing file).
    #[error("{0}")]
    Request(String),
    /// The channel broke or the helper spoke nonsense.
    #[error("the remote helper's channel failed: {0}")]
    Channel(String),
}

type Reply = Result<Message, HelperError>;

/// Requests written and not yet answered, oldest first; once the channel
/// broke, why.
#[derive(Default)]
struct Waiting {
    replies: VecDeque<oneshot::Sender<Reply>>,
    broken: Option<String>,
}

impl Waiting {
    fn fail_all(&mut self, why: String) {
        for waiter in self.replies.drain(..) {
            let _ = waiter.send(Err(HelperError::Channel(why.clone())));
        }
        self.broken.get_or_insert(why);
    }
}

type Shared = Arc<std::sync::Mutex<Waiting>>;

fn lock(waiting: &Shared) -> std::sync::MutexGuard<'_, Waiting> {
    // A panic while holding this lock leaves the queue consistent.
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) struct HelperClient {
    /// Whole frames for the writer task ([`write_requests`]), sent under
    /// `waiting`'s lock so that the queue's order is the frames' order.
    frames: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    waiting: Shared,
    /// KiB of requests sent and not yet answered.
    unanswered: tokio::sync::Semaphore,
}

/// Most KiB of requests in flight at once. Past about the SSH channel's
/// window (OpenSSH: 2 MiB), russh holds back every channel's output until
/// the server adjusts the window, a round trip at a time; a little below
/// it, the stream flows. Across a far link this is the stream's pace: at
/// 100 ms, 1 MiB a round trip is 10 MB/s.
const UNANSWERED_KIB: u32 = 1792;

/// Bytes of queued requests the writer gathers into one write: one SSH
/// packet for many small requests rather than one each.
const GATHER: usize = 64 * 1024;

impl HelperClient {
    /// Starts `remote_ferry --server` on an exec channel of `conn` and
    /// greets it.
    pub(crate) async fn open(conn: &Connection, remote_ferry: &str) -> Result<HelperClient, Error> {
        let command = conn.wrapped(format!("{} --server", shell_quote(remote_ferry)));
        let failed = |detail: &str| Error::Helper {
            host: conn.host().to_string(),
            detail: format!(
                "cannot use the remote helper `{command}`: {detail}; install ferry on the server, \
                 point --remote-ferry at it, or choose --remote-hash read or off"
            ),
        };
        let stream = conn.exec_channel(&command, |why| failed(why)).await?;
        match tokio::time::timeout(conn.request_timeout(), HelperClient::start(stream)).await {
            Ok(Ok(helper)) => Ok(helper),
            Ok(Err(e)) => Err(failed(&e.to_string())),
            Err(_) => Err(failed("no greeting within the timeout")),
        }
    }

    /// Greets the helper and checks its protocol version.
    pub(crate) async fn start(stream: impl Duplex + 'static) -> Result<HelperClient, HelperError> {
        let stream: Box<dyn Duplex> = Box::new(stream);
        let (reader, writer) = tokio::io::split(stream);
        let waiting = Shared::default();
        let (frames, queued) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(read_replies(reader, waiting.clone()));
        tokio::spawn(write_requests(writer, queued, waiting.clone()));
        let client = HelperClient {
            frames,
            waiting,
            unanswered: tokio::sync::Semaphore::new(UNANSWERED_KIB as usize),
        };
        let reply = client
            .request(&Message::Hello { version: VERSION })
            .await
            .map_err(|e| match e {
                HelperError::Channel(why) => HelperError::Unavailable(why),
                other => other,
            })?;
        match reply {
            Message::Hello { version } if version == VERSION => Ok(client),
            Message::Hello { version } => Err(HelperError::Version(format!(
                "protocol version mismatch: the remote ferry speaks version {version}, this one {VERSION}"
            ))),
            Message::Error { message } => Err(HelperError::Version(message)),
            other => Err(HelperError::Channel(format!("unexpected greeting {other:?}"))),
        }
    }

    /// The file's size and blake3 of each `block` of `[start, end)`.
    pub(crate) async fn block_hashes(
        &self,
        path: &str,
        start: u64,
        end: u64,
        block: u32,
    ) -> Result<(u64, Vec<BlockHash>), HelperError> {
        let request = Message::HashBlocks {
            path: to_bytes(path).into_owned(),
            start,
            end,
            block,
        };
        match self.request(&request).await? {
            Message::Hashes { size, hashes } => Ok((size, hashes)),
            other => Err(not_answered(other)),
        }
    }

    /// The file's size and whole-content blake3.
    pub(crate) async fn file_hash(&self, path: &str) -> Result<(u64, BlockHash), HelperError> {
        let request = Message::HashFile {
            path: to_bytes(path).into_owned(),
        };
        match self.request(&request).await? {
            Message::FileHash { size, hash } => Ok((size, hash)),
            other => Err(not_answered(other)),
        }
    }

    /// Rolling signature of the file in `block`-byte blocks.
    pub(crate) async fn signature(&self, path: &str, block: u32) -> Result<Signature, HelperError> {
        let request = Message::Sign {
            path: to_bytes(path).into_owned(),
            block,
        };
        match self.request(&request).await? {
            Message::Signature {
                block,
                weak,
                strong,
            } if weak.len() == strong.len() => Ok(Signature {
                block,
                weak,
                strong,
            }),
            other => Err(not_answered(other)),
        }
    }

    /// Scans `regions` of the helper's file for blocks of an old file.
    pub(crate) async fn find_blocks(
        &self,
        path: &str,
        regions: &[(u64, u64)],
        signature: &Signature,
    ) -> Result<Vec<Piece>, HelperError> {
        let request = Message::Match {
            path: to_bytes(path).into_owned(),
            regions: regions.to_vec(),
            signature: signature.clone(),
        };
        match self.request(&request).await? {
            Message::Pieces { pieces } => Ok(pieces),
            other => Err(not_answered(other)),
        }
    }

    /// Copies `ranges` of `from` into the existing file `to`, on the remote.
    pub(crate) async fn copy_ranges(
        &self,
        from: &str,
        to: &str,
        ranges: &[CopyRange],
    ) -> Result<(), HelperError> {
        let request = Message::CopyRanges {
            from: to_bytes(from).into_owned(),
            to: to_bytes(to).into_owned(),
            ranges: ranges.to_vec(),
        };
        let expected: u64 = ranges.iter().map(|r| r.len).sum();
        match self.request(&request).await? {
            Message::Copied { bytes } if bytes == expected => Ok(()),
            other => Err(not_answered(other)),
        }
    }

    /// Writes `data` as the whole file `dest` on the remote, through its
    /// partial name, with `mode`, `mtime` and a sync when asked.
    pub(crate) async fn put_file(
        &self,
        partial: &str,
        dest: &str,
        data: &[u8],
        attrs: Attrs,
        sync: bool,
    ) -> Result<(), HelperError> {
        let request = Message::PutFile {
            partial: to_bytes(partial).into_owned(),
            dest: to_bytes(dest).into_owned(),
            owner: attrs.owner,
            mode: attrs.mode,
            mtime: attrs.mtime,
            sync,
            data: data.to_vec(),
        };
        match self.request(&request).await? {
            Message::Copied { bytes } if bytes == data.len() as u64 => Ok(()),
            other => Err(not_answered(other)),
        }
    }

    /// Whether a request carrying `len` bytes would be written at once,
    /// not held until earlier requests are answered.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        let kib = (len.div_ceil(1024) + 1).min(UNANSWERED_KIB as usize);
        self.unanswered.available_permits() >= kib
    }

    /// A small remote file's bytes, with its size and mtime as they were
    /// once it was read.
    pub(crate) async fn get_file(&self, path: &str) -> Result<(Vec<u8>, u64, i64), HelperError> {
        let request = Message::GetFile {
            path: to_bytes(path).into_owned(),
        };
        match self.request(&request).await? {
            Message::FileData { size, mtime, data } => Ok((data, size, mtime)),
            other => Err(not_answered(other)),
        }
    }

    /// Carries out a file-system request on the remote ([`super::fs`]).
    pub(crate) async fn fs(&self, request: FsRequest) -> Result<FsReply, HelperError> {
        match self.request(&Message::Fs(request)).await? {
            Message::FsReply(reply) => Ok(reply),
            other => Err(not_answered(other)),
        }
    }

    async fn request(&self, message: &Message) -> Result<Message, HelperError> {
        let frame = message.frame();
        let (tx, rx) = oneshot::channel();
        let kib = (frame.len().div_ceil(1024) as u32).min(UNANSWERED_KIB);
        // Never closed; held until the reply is in.
        let _sent = self.unanswered.acquire_many(kib).await.ok();
        {
            let mut waiting = lock(&self.waiting);
            if let Some(why) = &waiting.broken {
                return Err(HelperError::Channel(why.clone()));
            }
            if self.frames.send(frame).is_err() {
                let why = "the request writer stopped".to_string();
                waiting.fail_all(why.clone());
                return Err(HelperError::Channel(why));
            }
            waiting.replies.push_back(tx);
        }
        rx.await
            .unwrap_or_else(|_| Err(HelperError::Channel("the reply was lost".into())))
    }
}

/// Writes the queued frames in order, those waiting together in one write,
/// until the client is dropped or a write fails (then every request
/// waiting, and any later one, fails: the stream is out of step).
async fn write_requests(
    mut writer: WriteHalf<Box<dyn Duplex>>,
    mut frames: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    waiting: Shared,
) {
    while let Some(mut out) = frames.recv().await {
        while out.len() < GATHER {
            let Ok(next) = frames.try_recv() else { break };
            out.extend_from_slice(&next);
        }
        let written = async {
            writer.write_all(&out).await?;
            writer.flush().await
        };
        if let Err(e) = written.await {
            lock(&waiting).fail_all(e.to_string());
            return;
        }
    }
}

/// Hands each reply to the oldest waiting request, until the channel ends;
/// then every request still waiting, and any later one, fails.
async fn read_replies(mut reader: ReadHalf<Box<dyn Duplex>>, waiting: Shared) {
    let why = loop {
        let reply = match read_reply(&mut reader).await {
            Ok(frame) => Message::decode(&frame).map_err(HelperError::Channel),
            Err(why) => break why,
        };
        let Some(waiter) = lock(&waiting).replies.pop_front() else {
            break "the helper answered a request never made".to_string();
        };
        // The request may have been dropped meanwhile: its reply goes nowhere.
        let _ = waiter.send(reply);
    };
    lock(&waiting).fail_all(why);
}

async fn read_reply(reader: &mut ReadHalf<Box<dyn Duplex>>) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "it closed the channel".to_string()
        } else {
            e.to_string()
        }
    })?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!("a {len}-byte frame is too large"));
    }
    // Grown as the bytes arrive: a length that lies costs nothing.
    let mut frame = Vec::with_capacity(len.min(FIRST_READ));
    (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut frame)
        .await
        .map_err(|e| e.to_string())?;
    if frame.len() < len {
        return Err(format!(
            "it closed the channel after {} of a {len}-byte frame",
            frame.len()
        ));
    }
    Ok(frame)
}

/// What a reply other than the expected one means: the helper could not do
/// the request (its error), or it spoke out of turn.
fn not_answered(reply: Message) -> HelperError {
    match reply {
        Message::Error { message } => HelperError::Request(message),
        other => HelperError::Channel(format!("unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real server loop on a thread, wired to the returned client
    /// end through in-memory pipes.
    fn spawn_server() -> tokio::io::DuplexStream {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_end);
        // The bridges bind to the current runtime, so they are made here.
        let input = tokio_util::io::SyncIoBridge::new(server_read);
        let output = tokio_util::io::SyncIoBridge::new(server_write);
        std::thread::spawn(move || super::super::server::serve(input, output));
        client_end
    }

    async fn connected() -> HelperClient {
        HelperClient::start(spawn_server()).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_match_local_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let client = connected().await;
        let p = path.to_str().unwrap();
        let (size, hashes) = client.block_hashes(p, 100, 20_000, 4096).await.unwrap();
        assert_eq!(size, 10_000);
        let expected: Vec<_> = data[100..]
            .chunks(4096)
            .map(|c| *blake3::hash(c).as_bytes())
            .collect();
        assert_eq!(hashes, expected);
        let sig = client.signature(p, 1000).await.unwrap();
        assert_eq!(sig, Signature::of(&data, 1000));
        // Large enough to be signed in parts on several threads.
        let big_path = dir.path().join("big");
        let big = crate::delta::test_data(70 * 1024 * 1024 + 5, 12);
        std::fs::write(&big_path, &big).unwrap();
        let big_sig = client
            .signature(big_path.to_str().unwrap(), 65536)
            .await
            .unwrap();
        assert_eq!(big_sig, Signature::of(&big, 65536));
        let (_, whole) = client.file_hash(p).await.unwrap();
        assert_eq!(whole, *blake3::hash(&data).as_bytes());
        let missing = client.file_hash("/no/such/file").await;
        assert!(matches!(missing, Err(HelperError::Request(m)) if m.contains("/no/such/file")));
    }

    /// The file-system requests carry names as bytes: a directory and a
    /// file whose names are not UTF-8 are made, written, listed, read,
    /// renamed and removed through them; a file's handle goes away on close.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn file_system_requests_take_any_bytes() {
        use crate::protocol::fs::{FsReply, FsRequest, OpenHow};
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().as_os_str().as_bytes().to_vec();
        let at = |name: &[u8]| [root.as_slice(), b"/", name].concat();
        let client = connected().await;
        let call = |request| client.fs(request);
        let made = call(FsRequest::Mkdir {
            path: at(b"d\xfe"),
            mode: 0o755,
        });
        assert_eq!(made.await.unwrap(), FsReply::Done);
        let opened = call(FsRequest::Open {
            path: at(b"d\xfe/f\xff"),
            how: OpenHow::CreateNew,
            mode: 0o600,
        });
        let FsReply::Handle(handle) = opened.await.unwrap() else {
            panic!("no handle")
        };
        let written = [(0, b"hello ".to_vec()), (6, b"world".to_vec())].map(|(offset, data)| {
            call(FsRequest::Write {
                handle,
                offset,
                data,
            })
        });
        for reply in futures::future::join_all(written).await {
            assert_eq!(reply.unwrap(), FsReply::Done);
        }
        let read = call(FsRequest::Read {
            handle,
            offset: 6,
            len: 100,
        });
        assert_eq!(read.await.unwrap(), FsReply::Data(b"world".to_vec()));
        let closed = call(FsRequest::Close {
            handle,
            owner: Default::default(),
            mode: Some(0o640),
            mtime: Some(crate::meta::Mtime::precise(1_000_000, 123_456_789)),
            sync: true,
        });
        assert_eq!(closed.await.unwrap(), FsReply::Done);
        let again = call(FsRequest::Read {
            handle,
            offset: 0,
            len: 1,
        });
        assert!(
            matches!(again.await, Err(HelperError::Request(m)) if m.contains("no such open file"))
        );

        let listed = call(FsRequest::List { dir: at(b"d\xfe") }).await.unwrap();
        let FsReply::Entries(entries) = listed else {
            panic!("no entries")
        };
        assert_eq!(entries.len(), 1);
        let (name, meta) = &entries[0];
        assert_eq!(name, b"f\xff");
        // The helper lists times to the nanosecond.
        assert_eq!(
            (meta.size, meta.mode, meta.mtime),
            (
                11,
                0o640,
                crate::meta::Mtime::precise(1_000_000, 123_456_789)
            )
        );
        let renamed = call(FsRequest::Rename {
            from: at(b"d\xfe/f\xff"),
            to: at(b"d\xfe/g\xfd"),
        });
        assert_eq!(renamed.await.unwrap(), FsReply::Done);
        let gone = call(FsRequest::Stat {
            path: at(b"d\xfe/f\xff"),
            follow: false,
        });
        assert_eq!(gone.await.unwrap(), FsReply::Stat(None));
        let on_disk = dir.path().join(std::ffi::OsStr::from_bytes(b"d\xfe/g\xfd"));
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello world");
        let removed = call(FsRequest::RemoveFile {
            path: at(b"d\xfe/g\xfd"),
        });
        assert_eq!(removed.await.unwrap(), FsReply::Done);
        let rmdir = call(FsRequest::RemoveDir { path: at(b"d\xfe") });
        assert_eq!(rmdir.await.unwrap(), FsReply::Done);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Once confined to a destination, the helper writes nothing through a
    /// directory swapped for a symlink to elsewhere: not a whole file, not
    /// ranges, not a new directory. Outside its roots, and beside the
    /// symlink, it works as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_confined_helper_writes_nothing_through_a_symlink() {
        use crate::protocol::fs::{FsReply, FsRequest};
        let dir = tempfile::tempdir().unwrap();
        let (dest, outside) = (dir.path().join("dest"), dir.path().join("outside"));
        std::fs::create_dir_all(dest.join("real")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("swapped")).unwrap();
        let at = |rel: &str| format!("{}/{rel}", dest.display());
        let client = connected().await;
        let confine = FsRequest::Confine {
            roots: vec![dest.to_str().unwrap().as_bytes().to_vec()],
            dirlinks: false,
        };
        assert_eq!(client.fs(confine).await.unwrap(), FsReply::Done);
        let attrs = Attrs {
            mode: 0o644,
            mtime: None,
            owner: Default::default(),
        };
        let put = |rel: &'static str| {
            let (partial, dest) = (at(&format!("{rel}.p")), at(rel));
            let client = &client;
            async move { client.put_file(&partial, &dest, b"new", attrs, false).await }
        };
        put("real/f").await.unwrap();
        assert_eq!(std::fs::read(dest.join("real/f")).unwrap(), b"new");
        assert!(put("swapped/victim").await.is_err());
        assert!(put("swapped/fresh").await.is_err());
        let ranges = [CopyRange {
            from: 0,
            to: 0,
            len: 3,
        }];
        let copied = client
            .copy_ranges(&at("real/f"), &at("swapped/victim"), &ranges)
            .await;
        assert!(copied.is_err());
        let made = client.fs(FsRequest::Mkdir {
            path: at("swapped/new").into_bytes(),
            mode: 0o755,
        });
        assert!(made.await.is_err());
        let names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "nothing new outside");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_ranges_into_an_existing_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&old, &data).unwrap();
        std::fs::write(&new, vec![b'x'; 20_000]).unwrap();
        let client = connected().await;
        let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
        let ranges = [
            CopyRange {
                from: 90_000,
                to: 0,
                len: 10_000,
            },
            CopyRange {
                from: 0,
                to: 10_005,
                len: 5,
            },
        ];
        client.copy_ranges(o, n, &ranges).await.unwrap();
        let got = std::fs::read(&new).unwrap();
        assert_eq!(&got[..10_000], &data[90_000..]);
        assert_eq!(&got[10_000..10_005], &[b'x'; 5][..], "bytes between stay");
        assert_eq!(&got[10_005..10_010], &data[..5]);
        assert_eq!(got.len(), 20_000, "neither truncated nor extended");
        // Reading past the old file's end is an error, not zeros.
        let past_end = [CopyRange {
            from: 99_990,
            to: 0,
            len: 20,
        }];
        let short = client.copy_ranges(o, n, &past_end).await;
        assert!(matches!(short, Err(HelperError::Request(m)) if m.contains("shorter")));
        // The target must exist: the helper never creates files.
        let gone = dir.path().join("gone");
        let missing = client.copy_ranges(o, gone.to_str().unwrap(), &ranges).await;
        assert!(matches!(missing, Err(HelperError::Request(m)) if m.contains("gone")));
        assert!(!gone.exists());
    }

    /// Many puts in flight at once, each answered in turn: every file lands
    /// whole with its mode and mtime, and a failing one (its directory is
    /// missing) fails alone, leaving no partial.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_many_files_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let client = connected().await;
        let root = dir.path().to_str().unwrap();
        let attrs = Attrs {
            mode: 0o640,
            mtime: Some(crate::meta::Mtime::secs(1_000_000_000)),
            owner: Default::default(),
        };
        let puts = (0..200).map(|i| {
            let (client, data) = (&client, vec![i as u8; i * 10]);
            let dest = if i == 77 {
                format!("{root}/missing/f{i}")
            } else {
                format!("{root}/f{i}")
            };
            let partial = format!("{dest}.partial");
            async move {
                client
                    .put_file(&partial, &dest, &data, attrs, i % 2 == 0)
                    .await
            }
        });
        let results = futures::future::join_all(puts).await;
        for (i, result) in results.iter().enumerate() {
            if i == 77 {
                assert!(matches!(result, Err(HelperError::Request(m)) if m.contains("missing")));
                continue;
            }
            assert!(result.is_ok(), "file {i}: {result:?}");
            let path = dir.path().join(format!("f{i}"));
            assert_eq!(std::fs::read(&path).unwrap(), vec![i as u8; i * 10]);
            let meta = std::fs::metadata(&path).unwrap();
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            assert_eq!(meta.permissions().mode() & 0o777, 0o640);
            assert_eq!(meta.mtime(), 1_000_000_000);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(left.is_empty(), "partials left: {left:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gets_whole_files_with_their_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        std::fs::write(&path, b"small file").unwrap();
        let client = connected().await;
        let (data, size, mtime) = client.get_file(path.to_str().unwrap()).await.unwrap();
        assert_eq!(data, b"small file");
        assert_eq!(size, 10);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(mtime, std::fs::metadata(&path).unwrap().mtime());
        let missing = client.get_file("/no/such/file").await;
        assert!(matches!(missing, Err(HelperError::Request(m)) if m.contains("/no/such/file")));
    }

    #[tokio::test]
    async fn a_silent_peer_is_unavailable_not_a_hang() {
        let (client_end, server_end) = tokio::io::duplex(64);
        drop(server_end);
        let result = HelperClient::start(client_end).await;
        assert!(matches!(result, Err(HelperError::Unavailable(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_mismatch_is_named() {
        let mut client_end = spawn_server();
        let body = Message::Hello { version: 999 }.encode();
        client_end
            .write_all(&(body.len() as u32).to_be_bytes())
            .await
            .unwrap();
        client_end.write_all(&body).await.unwrap();
        let mut len = [0u8; 4];
        client_end.read_exact(&mut len).await.unwrap();
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        client_end.read_exact(&mut frame).await.unwrap();
        match Message::decode(&frame).unwrap() {
            Message::Error { message } => {
                assert!(message.contains("version"), "{message}");
                assert!(message.contains("999"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
