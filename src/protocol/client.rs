//! The client side of the helper protocol, over any byte stream: an SSH exec
//! channel in ferry, an in-memory duplex in tests. Requests go one at a time
//! (the server answers in order), behind a lock so tasks can share it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{Message, MAX_FRAME, VERSION};
use crate::delta::rolling::Signature;
use crate::delta::Piece;
use crate::endpoint::CopyRange;
use crate::hash::BlockHash;

/// A byte stream the helper can run over.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
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

pub struct HelperClient {
    stream: Mutex<Box<dyn Duplex>>,
}

impl HelperClient {
    /// Greets the helper and checks its protocol version.
    pub async fn start(stream: impl Duplex + 'static) -> Result<HelperClient, HelperError> {
        let client = HelperClient {
            stream: Mutex::new(Box::new(stream)),
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
    pub async fn block_hashes(
        &self,
        path: &str,
        start: u64,
        end: u64,
        block: u32,
    ) -> Result<(u64, Vec<BlockHash>), HelperError> {
        let request = Message::HashBlocks {
            path: path.as_bytes().to_vec(),
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
    pub async fn file_hash(&self, path: &str) -> Result<(u64, BlockHash), HelperError> {
        let request = Message::HashFile {
            path: path.as_bytes().to_vec(),
        };
        match self.request(&request).await? {
            Message::FileHash { size, hash } => Ok((size, hash)),
            other => Err(not_answered(other)),
        }
    }

    /// Rolling signature of the file in `block`-byte blocks.
    pub async fn signature(&self, path: &str, block: u32) -> Result<Signature, HelperError> {
        let request = Message::Sign {
            path: path.as_bytes().to_vec(),
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
    pub async fn find_blocks(
        &self,
        path: &str,
        regions: &[(u64, u64)],
        signature: &Signature,
    ) -> Result<Vec<Piece>, HelperError> {
        let request = Message::Match {
            path: path.as_bytes().to_vec(),
            regions: regions.to_vec(),
            signature: signature.clone(),
        };
        match self.request(&request).await? {
            Message::Pieces { pieces } => Ok(pieces),
            other => Err(not_answered(other)),
        }
    }

    /// Copies `ranges` of `from` into the existing file `to`, on the remote.
    pub async fn copy_ranges(
        &self,
        from: &str,
        to: &str,
        ranges: &[CopyRange],
    ) -> Result<(), HelperError> {
        let request = Message::CopyRanges {
            from: from.as_bytes().to_vec(),
            to: to.as_bytes().to_vec(),
            ranges: ranges.to_vec(),
        };
        let expected: u64 = ranges.iter().map(|r| r.len).sum();
        match self.request(&request).await? {
            Message::Copied { bytes } if bytes == expected => Ok(()),
            other => Err(not_answered(other)),
        }
    }

    async fn request(&self, message: &Message) -> Result<Message, HelperError> {
        let channel = |e: std::io::Error| HelperError::Channel(e.to_string());
        let mut stream = self.stream.lock().await;
        let body = message.encode();
        stream
            .write_all(&(body.len() as u32).to_be_bytes())
            .await
            .map_err(channel)?;
        stream.write_all(&body).await.map_err(channel)?;
        stream.flush().await.map_err(channel)?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                HelperError::Channel("it closed the channel".into())
            } else {
                channel(e)
            }
        })?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(HelperError::Channel(format!(
                "a {len}-byte frame is too large"
            )));
        }
        let mut frame = vec![0u8; len];
        stream.read_exact(&mut frame).await.map_err(channel)?;
        Message::decode(&frame).map_err(HelperError::Channel)
    }
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
