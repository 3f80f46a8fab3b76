//! Fuzz targets for the helper protocol: messages (file-system requests
//! and replies among them) decoded from mutated frames, and frames read
//! from a stream whose length prefix lies.

use super::{drive, mutate, sample_or_mutant, Rng, Run};
use crate::delta::rolling::{Signature, STRONG_LEN};
use crate::delta::Piece;
use crate::meta::{CopyRange, Kind, Meta, Mtime, XattrScope, Xattrs};
use crate::protocol::fs::{FsReply, FsRequest, OpenHow};
use crate::protocol::server::read_frame;
use crate::protocol::{Message, MAX_FRAME};

/// Most items in a generated list: enough to cross buffer sizes, small
/// enough to stay fast.
const MOST: usize = 6;

fn list<T>(rng: &mut Rng, mut item: impl FnMut(&mut Rng) -> T) -> Vec<T> {
    (0..rng.below(MOST + 1)).map(|_| item(rng)).collect()
}

fn hash(rng: &mut Rng) -> [u8; 32] {
    std::array::from_fn(|_| rng.next() as u8)
}

fn strong(rng: &mut Rng) -> [u8; STRONG_LEN] {
    std::array::from_fn(|_| rng.next() as u8)
}

fn path(rng: &mut Rng) -> Vec<u8> {
    rng.bytes(24)
}

fn signature(rng: &mut Rng) -> Signature {
    let count = rng.below(MOST + 1);
    Signature {
        block: rng.next() as u32,
        weak: (0..count).map(|_| rng.next() as u32).collect(),
        strong: (0..count).map(|_| strong(rng)).collect(),
    }
}

fn piece(rng: &mut Rng) -> Piece {
    match rng.chance(50) {
        true => Piece::Send {
            offset: rng.next(),
            len: rng.next(),
        },
        false => Piece::Reuse {
            offset: rng.next(),
            from: rng.next(),
            len: rng.next(),
        },
    }
}

/// A listing's metadata as the protocol carries it: seconds only, the
/// permission bits only.
fn meta(rng: &mut Rng) -> Meta {
    Meta {
        kind: *rng.pick(&[Kind::File, Kind::Dir, Kind::Symlink, Kind::Other]),
        size: rng.next(),
        mtime: mtime(rng),
        mode: rng.next() as u32 & 0o7777,
        owner: None,
        inode: None,
    }
}

fn xattrs(rng: &mut Rng) -> Xattrs {
    list(rng, |r| (path(r), r.bytes(16)))
}

fn owner_change(rng: &mut Rng) -> crate::meta::OwnerChange {
    crate::meta::OwnerChange {
        uid: maybe(rng, |r| r.next() as u32),
        gid: maybe(rng, |r| r.next() as u32),
    }
}

fn maybe<T>(rng: &mut Rng, value: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    rng.chance(50).then(|| value(rng))
}

/// Any file-system request, with random fields.
fn fs_request(rng: &mut Rng) -> FsRequest {
    let (a, b) = (path(rng), path(rng));
    let (n, wide) = (rng.next() as u32, rng.next());
    match rng.below(21) {
        19 => FsRequest::ReadXattrs {
            path: a,
            scope: XattrScope::of_bits(n as u8 & 7),
        },
        20 => FsRequest::WriteXattrs {
            path: a,
            want: xattrs(rng),
            scope: XattrScope::of_bits(n as u8 & 7),
        },
        17 => FsRequest::SetOwner {
            path: a,
            owner: owner_change(rng),
        },
        0 => FsRequest::Confine {
            roots: list(rng, path),
            dirlinks: rng.chance(50),
        },
        1 => FsRequest::Stat {
            path: a,
            follow: rng.chance(50),
        },
        2 => FsRequest::List { dir: a },
        3 => FsRequest::ReadLink { path: a },
        4 => FsRequest::RealPath { path: a },
        5 => FsRequest::Mkdir { path: a, mode: n },
        6 => FsRequest::RemoveDir { path: a },
        7 => FsRequest::RemoveFile { path: a },
        8 => FsRequest::Rename { from: a, to: b },
        9 => FsRequest::Symlink { target: a, path: b },
        10 => FsRequest::HardLink { from: a, to: b },
        11 => FsRequest::SetMode { path: a, mode: n },
        12 => FsRequest::SetMtime {
            path: a,
            mtime: mtime(rng),
        },
        13 => FsRequest::Open {
            path: a,
            how: *rng.pick(&[OpenHow::Read, OpenHow::Write, OpenHow::CreateNew]),
            mode: n,
        },
        14 => FsRequest::Read {
            handle: n,
            offset: wide,
            len: rng.next() as u32,
        },
        15 => FsRequest::Write {
            handle: n,
            offset: wide,
            data: rng.bytes(64),
        },
        16 => FsRequest::SetLen {
            handle: n,
            len: wide,
        },
        _ => FsRequest::Close {
            handle: n,
            owner: owner_change(rng),
            mode: maybe(rng, |r| r.next() as u32),
            mtime: maybe(rng, mtime),
            sync: rng.chance(50),
        },
    }
}

/// A time in whole seconds or to the nanosecond.
fn mtime(rng: &mut Rng) -> Mtime {
    let secs = rng.next() as i64;
    match rng.chance(50) {
        true => Mtime::secs(secs),
        false => Mtime::precise(secs, (rng.next() % 1_000_000_000) as u32),
    }
}

fn fs_reply(rng: &mut Rng) -> FsReply {
    match rng.below(8) {
        7 => FsReply::Xattrs(xattrs(rng)),
        6 => FsReply::NotPermitted,
        0 => FsReply::Done,
        1 => FsReply::Stat(maybe(rng, meta)),
        2 => FsReply::Entries(list(rng, |r| (path(r), meta(r)))),
        3 => FsReply::Name(path(rng)),
        4 => FsReply::Handle(rng.next() as u32),
        _ => FsReply::Data(rng.bytes(64)),
    }
}

/// Any message, with random fields.
pub(super) fn message(rng: &mut Rng) -> Message {
    let (a, b) = (path(rng), path(rng));
    let (n, wide, wide2) = (rng.next() as u32, rng.next(), rng.next());
    match rng.below(19) {
        0 => Message::Hello { version: n },
        1 => Message::HashBlocks {
            path: a,
            start: wide,
            end: wide2,
            block: n,
        },
        2 => Message::Hashes {
            size: wide,
            hashes: list(rng, hash),
        },
        3 => Message::HashFile { path: a },
        4 => Message::FileHash {
            size: wide,
            hash: hash(rng),
        },
        5 => Message::Error {
            message: String::from_utf8_lossy(&a).into_owned(),
        },
        6 => Message::Sign { path: a, block: n },
        7 => {
            let signature = signature(rng);
            Message::Signature {
                block: signature.block,
                weak: signature.weak,
                strong: signature.strong,
            }
        }
        8 => Message::Match {
            path: a,
            regions: list(rng, |r| (r.next(), r.next())),
            signature: signature(rng),
        },
        9 => Message::Pieces {
            pieces: list(rng, piece),
        },
        10 => Message::CopyRanges {
            from: a,
            to: b,
            ranges: list(rng, |r| CopyRange {
                from: r.next(),
                to: r.next(),
                len: r.next(),
            }),
        },
        11 => Message::Copied { bytes: wide },
        12 => Message::PutFile {
            partial: a,
            dest: b,
            owner: owner_change(rng),
            mode: n,
            mtime: maybe(rng, mtime),
            sync: rng.chance(50),
            data: rng.bytes(64),
        },
        13 => Message::GetFile { path: a },
        14 => Message::FileData {
            size: wide,
            mtime: wide2 as i64,
            data: rng.bytes(64),
        },
        15 | 16 => Message::Fs(fs_request(rng)),
        _ => Message::FsReply(fs_reply(rng)),
    }
}

/// `Send` pieces carry no `from` on the wire.
fn as_sent(message: Message) -> Message {
    match message {
        Message::Pieces { pieces } => Message::Pieces {
            pieces: pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Send { offset, len } => Piece::Send { offset, len },
                    reuse => reuse,
                })
                .collect(),
        },
        other => other,
    }
}

/// Decoding takes at most a few times the frame: copies of its strings,
/// lossy text, lists grown by doubling.
fn decode_limit(len: usize) -> usize {
    8 * len + 64 * 1024
}

fn valid_frames(rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..8).map(|_| message(rng).encode()).collect()
}

/// Every generated message comes back as it was sent.
#[test]
fn helper_messages_round_trip() {
    let run = Run::from_env();
    drive(
        "helper_messages_round_trip",
        run,
        |rng| {
            let sent = as_sent(message(rng));
            let frame = sent.encode();
            assert_eq!(Message::decode(&frame).as_ref(), Ok(&sent));
            frame
        },
        |_| {},
        |_| usize::MAX,
    );
}

/// Mutated frames decode to a message or an error, never a panic, and a
/// count or length that lies allocates nothing near what it claims.
#[test]
fn mutated_helper_frames_are_errors_not_panics() {
    drive(
        "mutated_helper_frames",
        Run::from_env(),
        |rng| {
            let seeds = valid_frames(rng);
            sample_or_mutant(rng, &seeds)
        },
        |frame| {
            let _ = Message::decode(frame);
        },
        decode_limit,
    );
}

/// Frames read from a stream whose length prefix is mutated with the rest:
/// a prefix larger than [`MAX_FRAME`] is refused, and one that claims more
/// than the stream holds is an error, allocating only what arrived.
#[test]
fn mutated_helper_streams_are_errors_not_panics() {
    drive(
        "mutated_helper_streams",
        Run::from_env(),
        |rng| {
            let mut stream = Vec::new();
            for _ in 0..=rng.below(3) {
                let body = message(rng).encode();
                stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
                stream.extend_from_slice(&body);
            }
            mutate(rng, stream, &[])
        },
        |stream| {
            let mut input = stream;
            while let Ok(Some(frame)) = read_frame(&mut input) {
                assert!(frame.len() <= MAX_FRAME);
                let _ = Message::decode(&frame);
            }
        },
        decode_limit,
    );
}

/// Found by `mutated_helper_streams`: a 4-byte prefix claiming 16 MiB made
/// the reader allocate 16 MiB before a byte of the frame had come.
#[test]
fn regression_a_lying_frame_length_allocates_only_what_arrives() {
    let mut stream = (MAX_FRAME as u32).to_be_bytes().to_vec();
    stream.extend_from_slice(&[1; 10]);
    let (result, peak) = super::watch::largest_allocation(|| read_frame(&mut &stream[..]));
    let error = result.expect_err("a frame shorter than its length");
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(peak < 1024 * 1024, "allocated {peak} bytes");
}
