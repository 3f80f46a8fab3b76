//! The helper protocol: how ferry talks to `ferry --server` running on the
//! remote over an SSH exec channel, to hash file ranges where the data lives
//! instead of reading it over the network, and to assemble a new file from
//! ranges of an old one there, and to send or receive small files whole,
//! many in flight, instead of three SFTP round trips each. The data of larger files
//! moves over SFTP.
//!
//! Framing: every message is `u32` big-endian length, then that many bytes:
//! one type byte and the body. Integers are big-endian; strings and paths are
//! `u32` length plus bytes. The client speaks first with `Hello`; a server of
//! another protocol version answers `Error` naming both versions, so a
//! mismatch is a clear message, never a hang. The server answers requests in
//! the order they came, so a client may send many before reading replies.

pub(crate) mod bootstrap;
pub(crate) mod client;
pub(crate) mod fs;
mod serve_fs;
pub(crate) mod server;

use crate::delta::rolling::{Signature, STRONG_LEN};
use crate::delta::Piece;
use crate::meta::{CopyRange, Mtime};
use fs::{FsReply, FsRequest};

/// Bumped on any incompatible change to the messages below.
pub(crate) const VERSION: u32 = 7;
const MAGIC: &[u8] = b"ferry-helper";
/// Largest frame either side accepts: hash lists for 1 GiB at 4 KiB blocks.
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;
/// What a frame's buffer holds before its bytes arrive: it grows with
/// them, so a length prefix that lies allocates nothing it claims.
pub(crate) const FIRST_READ: usize = 64 * 1024;

/// The messages of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Hello {
        version: u32,
    },
    /// blake3 of each `block`-byte block of `[start, end)` of `path`.
    HashBlocks {
        path: Vec<u8>,
        start: u64,
        end: u64,
        block: u32,
    },
    /// The file's size and the blake3 hashes asked for (shorter at EOF).
    Hashes {
        size: u64,
        hashes: Vec<[u8; 32]>,
    },
    /// blake3 of the whole file.
    HashFile {
        path: Vec<u8>,
    },
    FileHash {
        size: u64,
        hash: [u8; 32],
    },
    Error {
        message: String,
    },
    /// Rolling signature of `path` in `block`-byte blocks.
    Sign {
        path: Vec<u8>,
        block: u32,
    },
    Signature {
        block: u32,
        weak: Vec<u32>,
        strong: Vec<[u8; STRONG_LEN]>,
    },
    /// Scan `regions` of `path` for the blocks of an old file whose
    /// signature this carries.
    Match {
        path: Vec<u8>,
        regions: Vec<(u64, u64)>,
        signature: Signature,
    },
    /// What the scan found, covering the regions in order.
    Pieces {
        pieces: Vec<Piece>,
    },
    /// Copy ranges of the file `from` into the existing file `to`:
    /// assembling a new file from an old one where the data lives.
    CopyRanges {
        from: Vec<u8>,
        to: Vec<u8>,
        ranges: Vec<CopyRange>,
    },
    /// The bytes copied: all of them, or the reply is an `Error`.
    Copied {
        bytes: u64,
    },
    /// Write `data` as the whole file `partial` (created 0600), give it
    /// `mode` and `mtime`, sync it when asked, and rename it over `dest`.
    /// Answered by `Copied` with the length, or `Error` (the partial is then
    /// removed: there is nothing in a small file worth resuming).
    PutFile {
        partial: Vec<u8>,
        dest: Vec<u8>,
        /// Set before the mode: chown clears set-id bits.
        owner: crate::meta::OwnerChange,
        mode: u32,
        mtime: Option<Mtime>,
        sync: bool,
        data: Vec<u8>,
    },
    /// Read the whole file `path` (small enough for one reply).
    GetFile {
        path: Vec<u8>,
    },
    /// A file's bytes, with its size and mtime as they were once it was
    /// read (a file that changed meanwhile shows it there).
    FileData {
        size: u64,
        mtime: i64,
        data: Vec<u8>,
    },
    /// A file-system operation by byte names ([`fs`]).
    Fs(FsRequest),
    /// What a successful [`Message::Fs`] returns.
    FsReply(FsReply),
}

const HELLO: u8 = 1;
const HASH_BLOCKS: u8 = 2;
const HASHES: u8 = 3;
const HASH_FILE: u8 = 4;
const FILE_HASH: u8 = 5;
const ERROR: u8 = 6;
const SIGN: u8 = 7;
const SIGNATURE: u8 = 8;
const MATCH: u8 = 9;
const PIECES: u8 = 10;
const COPY_RANGES: u8 = 11;
const COPIED: u8 = 12;
const PUT_FILE: u8 = 13;
const GET_FILE: u8 = 14;
const FILE_DATA: u8 = 15;
const FS: u8 = 16;
const FS_REPLY: u8 = 17;

impl Message {
    /// The frame body (type byte and fields), without the length prefix.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.frame().split_off(4)
    }

    /// The message after its 4-byte length, as it goes on the stream, in
    /// one buffer sized for it.
    pub(crate) fn frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.size_hint());
        out.extend_from_slice(&[0; 4]);
        self.encode_into(&mut out);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// About how many bytes the encoding takes: the data it carries, and
    /// room for names and numbers.
    fn size_hint(&self) -> usize {
        let data = match self {
            Message::PutFile { data, .. }
            | Message::FileData { data, .. }
            | Message::Fs(fs::FsRequest::Write { data, .. })
            | Message::FsReply(fs::FsReply::Data(data)) => data.len(),
            _ => 0,
        };
        data + 256
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello { version } => {
                out.push(HELLO);
                put_bytes(out, MAGIC);
                out.extend_from_slice(&version.to_be_bytes());
            }
            Message::HashBlocks {
                path,
                start,
                end,
                block,
            } => {
                out.push(HASH_BLOCKS);
                put_bytes(out, path);
                out.extend_from_slice(&start.to_be_bytes());
                out.extend_from_slice(&end.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Message::Hashes { size, hashes } => {
                out.push(HASHES);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
                hashes.iter().for_each(|h| out.extend_from_slice(h));
            }
            Message::HashFile { path } => {
                out.push(HASH_FILE);
                put_bytes(out, path);
            }
            Message::FileHash { size, hash } => {
                out.push(FILE_HASH);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(hash);
            }
            Message::Error { message } => {
                out.push(ERROR);
                put_bytes(out, message.as_bytes());
            }
            Message::Sign { path, block } => {
                out.push(SIGN);
                put_bytes(out, path);
                out.extend_from_slice(&block.to_be_bytes());
            }
            Message::Signature {
                block,
                weak,
                strong,
            } => {
                out.push(SIGNATURE);
                put_signature(out, *block, weak, strong);
            }
            Message::Match {
                path,
                regions,
                signature,
            } => {
                out.push(MATCH);
                put_bytes(out, path);
                out.extend_from_slice(&(regions.len() as u32).to_be_bytes());
                for (start, end) in regions {
                    out.extend_from_slice(&start.to_be_bytes());
                    out.extend_from_slice(&end.to_be_bytes());
                }
                put_signature(out, signature.block, &signature.weak, &signature.strong);
            }
            Message::Pieces { pieces } => {
                out.push(PIECES);
                out.extend_from_slice(&(pieces.len() as u32).to_be_bytes());
                for piece in pieces {
                    let (kind, offset, from, len) = match *piece {
                        Piece::Send { offset, len } => (0u8, offset, 0, len),
                        Piece::Reuse { offset, from, len } => (1u8, offset, from, len),
                    };
                    out.push(kind);
                    for n in [offset, from, len] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Message::CopyRanges { from, to, ranges } => {
                out.push(COPY_RANGES);
                put_bytes(out, from);
                put_bytes(out, to);
                out.extend_from_slice(&(ranges.len() as u32).to_be_bytes());
                for range in ranges {
                    for n in [range.from, range.to, range.len] {
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                }
            }
            Message::Copied { bytes } => {
                out.push(COPIED);
                out.extend_from_slice(&bytes.to_be_bytes());
            }
            Message::PutFile {
                partial,
                dest,
                owner,
                mode,
                mtime,
                sync,
                data,
            } => {
                out.push(PUT_FILE);
                put_bytes(out, partial);
                put_bytes(out, dest);
                fs::put_owner(out, owner);
                out.extend_from_slice(&mode.to_be_bytes());
                put_mtime(out, *mtime);
                out.push(u8::from(*sync));
                put_bytes(out, data);
            }
            Message::GetFile { path } => {
                out.push(GET_FILE);
                put_bytes(out, path);
            }
            Message::FileData { size, mtime, data } => {
                out.push(FILE_DATA);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&mtime.to_be_bytes());
                put_bytes(out, data);
            }
            Message::Fs(request) => {
                out.push(FS);
                request.encode_into(out);
            }
            Message::FsReply(reply) => {
                out.push(FS_REPLY);
                reply.encode_into(out);
            }
        }
    }

    pub(crate) fn decode(frame: &[u8]) -> Result<Message, String> {
        let mut r = Reader { buf: frame };
        let message = match r.u8()? {
            HELLO => {
                if r.bytes()? != MAGIC {
                    return Err("not a ferry helper greeting".into());
                }
                Message::Hello { version: r.u32()? }
            }
            HASH_BLOCKS => Message::HashBlocks {
                path: r.bytes()?.to_vec(),
                start: r.u64()?,
                end: r.u64()?,
                block: r.u32()?,
            },
            HASHES => {
                let size = r.u64()?;
                let count = r.u32()? as usize;
                let hashes = (0..count).map(|_| r.hash()).collect::<Result<_, _>>()?;
                Message::Hashes { size, hashes }
            }
            HASH_FILE => Message::HashFile {
                path: r.bytes()?.to_vec(),
            },
            FILE_HASH => Message::FileHash {
                size: r.u64()?,
                hash: r.hash()?,
            },
            ERROR => Message::Error {
                message: String::from_utf8_lossy(r.bytes()?).into_owned(),
            },
            SIGN => Message::Sign {
                path: r.bytes()?.to_vec(),
                block: r.u32()?,
            },
            SIGNATURE => {
                let signature = r.signature()?;
                Message::Signature {
                    block: signature.block,
                    weak: signature.weak,
                    strong: signature.strong,
                }
            }
            MATCH => {
                let path = r.bytes()?.to_vec();
                let count = r.u32()? as usize;
                let regions = (0..count)
                    .map(|_| Ok((r.u64()?, r.u64()?)))
                    .collect::<Result<_, String>>()?;
                Message::Match {
                    path,
                    regions,
                    signature: r.signature()?,
                }
            }
            PIECES => {
                let count = r.u32()? as usize;
                let pieces = (0..count)
                    .map(|_| {
                        let kind = r.u8()?;
                        let (offset, from, len) = (r.u64()?, r.u64()?, r.u64()?);
                        match kind {
                            0 => Ok(Piece::Send { offset, len }),
                            1 => Ok(Piece::Reuse { offset, from, len }),
                            other => Err(format!("unknown piece kind {other}")),
                        }
                    })
                    .collect::<Result<_, String>>()?;
                Message::Pieces { pieces }
            }
            COPY_RANGES => {
                let (from, to) = (r.bytes()?.to_vec(), r.bytes()?.to_vec());
                let count = r.u32()? as usize;
                let ranges = (0..count)
                    .map(|_| {
                        let (from, to, len) = (r.u64()?, r.u64()?, r.u64()?);
                        Ok(CopyRange { from, to, len })
                    })
                    .collect::<Result<_, String>>()?;
                Message::CopyRanges { from, to, ranges }
            }
            COPIED => Message::Copied { bytes: r.u64()? },
            PUT_FILE => {
                let (partial, dest) = (r.bytes()?.to_vec(), r.bytes()?.to_vec());
                let owner = fs::owner(&mut r)?;
                let mode = r.u32()?;
                let mtime = r.mtime()?;
                Message::PutFile {
                    partial,
                    dest,
                    owner,
                    mode,
                    mtime,
                    sync: r.u8()? != 0,
                    data: r.bytes()?.to_vec(),
                }
            }
            GET_FILE => Message::GetFile {
                path: r.bytes()?.to_vec(),
            },
            FILE_DATA => Message::FileData {
                size: r.u64()?,
                mtime: r.u64()? as i64,
                data: r.bytes()?.to_vec(),
            },
            FS => Message::Fs(FsRequest::decode(&mut r)?),
            FS_REPLY => Message::FsReply(FsReply::decode(&mut r)?),
            other => return Err(format!("unknown message type {other}")),
        };
        if !r.buf.is_empty() {
            return Err("trailing bytes after a message".into());
        }
        Ok(message)
    }
}

fn put_signature(out: &mut Vec<u8>, block: u32, weak: &[u32], strong: &[[u8; STRONG_LEN]]) {
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(&(weak.len() as u32).to_be_bytes());
    for (w, s) in weak.iter().zip(strong) {
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(s);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A time as far as it is known: a byte saying how far (0 not at all, 1
/// whole seconds, 2 nanoseconds), the seconds, the nanoseconds.
pub(crate) fn put_mtime(out: &mut Vec<u8>, mtime: Option<Mtime>) {
    let known = match mtime {
        None => 0u8,
        Some(Mtime { nanos: None, .. }) => 1,
        Some(Mtime { nanos: Some(_), .. }) => 2,
    };
    let mtime = mtime.unwrap_or_default();
    out.push(known);
    out.extend_from_slice(&(mtime.secs as u64).to_be_bytes());
    out.extend_from_slice(&mtime.subsec_nanos().to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("message ends early".into());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// What [`put_mtime`] wrote.
    fn mtime(&mut self) -> Result<Option<Mtime>, String> {
        let (known, secs, nanos) = (self.u8()?, self.u64()? as i64, self.u32()?);
        match known {
            0 => Ok(None),
            1 => Ok(Some(Mtime::secs(secs))),
            2 if nanos < 1_000_000_000 => Ok(Some(Mtime::precise(secs, nanos))),
            _ => Err("a time that is no time".into()),
        }
    }

    fn signature(&mut self) -> Result<Signature, String> {
        let block = self.u32()?;
        let count = self.u32()? as usize;
        let mut signature = Signature {
            block,
            ..Signature::default()
        };
        for _ in 0..count {
            signature.weak.push(self.u32()?);
            let mut s = [0u8; STRONG_LEN];
            s.copy_from_slice(self.take(STRONG_LEN)?);
            signature.strong.push(s);
        }
        Ok(signature)
    }

    fn hash(&mut self) -> Result<[u8; 32], String> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let messages = [
            Message::Hello { version: VERSION },
            Message::HashBlocks {
                path: b"dir/a b\n$(x)".to_vec(),
                start: 5,
                end: 1 << 40,
                block: 4096,
            },
            Message::Hashes {
                size: 9,
                hashes: vec![[7; 32], [9; 32]],
            },
            Message::HashFile {
                path: vec![0xff, 0],
            },
            Message::FileHash {
                size: 1,
                hash: [3; 32],
            },
            Message::Error {
                message: "no such file".into(),
            },
            Message::Sign {
                path: b"x".to_vec(),
                block: 65536,
            },
            Message::Signature {
                block: 4096,
                weak: vec![1, 2],
                strong: vec![[5; STRONG_LEN], [6; STRONG_LEN]],
            },
            Message::Match {
                path: b"new".to_vec(),
                regions: vec![(0, 10), (100, 1 << 33)],
                signature: Signature {
                    block: 8,
                    weak: vec![3],
                    strong: vec![[4; STRONG_LEN]],
                },
            },
            Message::Pieces {
                pieces: vec![
                    Piece::Send { offset: 0, len: 5 },
                    Piece::Reuse {
                        offset: 5,
                        from: 80,
                        len: 8,
                    },
                ],
            },
            Message::CopyRanges {
                from: b"old".to_vec(),
                to: b".new.ferry-partial".to_vec(),
                ranges: vec![
                    CopyRange {
                        from: 0,
                        to: 100,
                        len: 1 << 30,
                    },
                    CopyRange {
                        from: 7,
                        to: 0,
                        len: 1,
                    },
                ],
            },
            Message::Copied { bytes: 1 << 35 },
            Message::PutFile {
                partial: b"d/.f.ferry-partial".to_vec(),
                dest: b"d/f".to_vec(),
                owner: crate::meta::OwnerChange {
                    uid: Some(4242),
                    gid: None,
                },
                mode: 0o644,
                mtime: Some(Mtime::precise(-5, 999_999_999)),
                sync: true,
                data: vec![1, 2, 3],
            },
            Message::GetFile {
                path: b"a b/c".to_vec(),
            },
            Message::FileData {
                size: 3,
                mtime: -1,
                data: vec![9, 8, 7],
            },
            Message::PutFile {
                partial: b".e.ferry-partial".to_vec(),
                dest: b"e".to_vec(),
                owner: Default::default(),
                mode: 0o600,
                mtime: None,
                sync: false,
                data: Vec::new(),
            },
            Message::Fs(fs::FsRequest::Open {
                path: b"d\xfe/f".to_vec(),
                how: fs::OpenHow::CreateNew,
                mode: 0o600,
            }),
            Message::Fs(fs::FsRequest::Close {
                handle: 7,
                owner: crate::meta::OwnerChange {
                    uid: None,
                    gid: Some(0),
                },
                mode: Some(0o644),
                mtime: Some(Mtime::secs(-3)),
                sync: true,
            }),
            Message::Fs(fs::FsRequest::Write {
                handle: 1,
                offset: 1 << 40,
                data: vec![0, 1],
            }),
            Message::Fs(fs::FsRequest::Rename {
                from: b"a".to_vec(),
                to: b"b\xff".to_vec(),
            }),
            Message::FsReply(fs::FsReply::Stat(None)),
            Message::FsReply(fs::FsReply::Entries(vec![(
                b"n\xff".to_vec(),
                crate::meta::Meta {
                    kind: crate::meta::Kind::Symlink,
                    size: 5,
                    mtime: crate::meta::Mtime::secs(-2),
                    mode: 0o777,
                    owner: Some(crate::meta::Owner { uid: 7, gid: 70000 }),
                    inode: Some(crate::meta::Inode {
                        dev: 1 << 40,
                        ino: 3,
                        nlink: 2,
                    }),
                },
            )])),
            Message::FsReply(fs::FsReply::Stat(Some(crate::meta::Meta {
                kind: crate::meta::Kind::of_mode(0o020_644, (1 << 8) | 3),
                size: 0,
                mtime: crate::meta::Mtime::secs(1),
                mode: 0o644,
                owner: None,
                inode: None,
            }))),
            Message::Fs(fs::FsRequest::MakeNode {
                path: b"fifo".to_vec(),
                mode: 0o010_600,
                rdev: 0,
            }),
            Message::FsReply(fs::FsReply::Handle(9)),
        ];
        for m in messages {
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
        // A listing that claims more entries than its bytes could hold.
        let lie = [FS_REPLY, 2, 0xff, 0xff, 0xff, 0xff];
        assert!(Message::decode(&lie).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[HASHES, 0, 0]).is_err());
        assert!(Message::decode(&[99]).is_err());
        let mut hello = Message::Hello { version: 1 }.encode();
        hello.push(0);
        assert!(Message::decode(&hello).is_err());
    }
}
