//! `ferry --server`: answers hash, copy, put and file-system requests on
//! stdin/stdout, one at a time and in order, on files of this machine. Runs
//! on the remote end of an SSH exec channel, so it is plain blocking I/O: no
//! runtime, nothing shared.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::serve_fs::Files;
use super::{Message, FIRST_READ, MAX_FRAME, VERSION};
use crate::delta::rolling::{Signature, STRONG_LEN};
use crate::hash::{hash_file_blocks, hash_whole_file, HashAlgo};
use crate::local_io::{Place, Roots};
use crate::meta::CopyRange;
use crate::paths::from_bytes;

/// Serves until the client closes the channel; returns the process status.
pub(crate) fn run() -> i32 {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    match serve(stdin, stdout) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferry --server: {e}");
            12
        }
    }
}

/// The request loop over any byte streams (tests use pipes in memory).
pub(crate) fn serve(mut input: impl Read, mut output: impl Write) -> io::Result<()> {
    let Some(first) = read_frame(&mut input)? else {
        return Ok(());
    };
    match Message::decode(&first) {
        Ok(Message::Hello { version }) if version == VERSION => {
            write_frame(&mut output, &Message::Hello { version: VERSION })?;
        }
        Ok(Message::Hello { version }) => {
            let message = format!(
                "protocol version mismatch: the remote ferry speaks version {VERSION}, this client {version}; install the same ferry release on both ends"
            );
            return write_frame(&mut output, &Message::Error { message });
        }
        _ => return Err(io::Error::other("the client did not start with a greeting")),
    }
    let mut files = Files::default();
    while let Some(frame) = read_frame(&mut input)? {
        let reply = match Message::decode(&frame) {
            Ok(Message::Fs(request)) => match files.answer(request) {
                Ok(reply) => Message::FsReply(reply),
                Err(e) => Message::Error {
                    message: e.to_string(),
                },
            },
            Ok(request) => answer(request, &files.roots),
            Err(e) => Message::Error { message: e },
        };
        write_frame(&mut output, &reply)?;
    }
    Ok(())
}

fn answer(request: Message, roots: &Roots) -> Message {
    let result = match request {
        Message::HashBlocks {
            path,
            start,
            end,
            block,
        } => hash_blocks(&path, start, end, block),
        Message::HashFile { path } => hash_file(&path),
        Message::Sign { path, block } => sign(&path, block),
        Message::Match {
            path,
            regions,
            signature,
        } => find_blocks(&path, &regions, &signature),
        Message::CopyRanges { from, to, ranges } => copy_ranges(&from, &to, &ranges, roots),
        Message::PutFile {
            partial,
            dest,
            owner,
            mode,
            mtime,
            sync,
            data,
        } => {
            let attrs = crate::meta::Attrs { mode, mtime, owner };
            put_file(&partial, &dest, attrs, sync, &data, roots)
        }
        Message::GetFile { path } => get_file(&path),
        other => Err(io::Error::other(format!("unexpected request {other:?}"))),
    };
    result.unwrap_or_else(|e| Message::Error {
        message: e.to_string(),
    })
}

fn open(path: &[u8]) -> io::Result<(File, u64)> {
    let path = Path::new(std::ffi::OsStr::from_bytes(path));
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

fn hash_blocks(path: &[u8], start: u64, end: u64, block: u32) -> io::Result<Message> {
    if block == 0 {
        return Err(io::Error::other("block size 0"));
    }
    let (file, size) = open(path)?;
    let count = end.min(size).saturating_sub(start).div_ceil(block as u64);
    if count as usize * 32 + 64 > MAX_FRAME {
        return Err(io::Error::other("too many blocks for one reply"));
    }
    let (size, hashes) = hash_file_blocks(&file, start, end, block as u64, HashAlgo::Blake3)?;
    Ok(Message::Hashes { size, hashes })
}

fn sign(path: &[u8], block: u32) -> io::Result<Message> {
    if block == 0 {
        return Err(io::Error::other("block size 0"));
    }
    let (file, size) = open(path)?;
    if (size / block as u64) as usize * (4 + STRONG_LEN) + 64 > MAX_FRAME {
        return Err(io::Error::other(
            "signature too large for one reply; use a larger block",
        ));
    }
    let signature = crate::delta::sign_file_blocking(&file, size, block)?;
    Ok(Message::Signature {
        block,
        weak: signature.weak,
        strong: signature.strong,
    })
}

fn find_blocks(path: &[u8], regions: &[(u64, u64)], signature: &Signature) -> io::Result<Message> {
    let (file, _) = open(path)?;
    let pieces = crate::delta::scan_regions_blocking(&file, regions, signature)?;
    if pieces.len() * 25 + 64 > MAX_FRAME {
        return Err(io::Error::other("too many pieces for one reply"));
    }
    Ok(Message::Pieces { pieces })
}

/// Reads `from` wherever it is; writes `to` only where confinement allows.
fn copy_ranges(from: &[u8], to: &[u8], ranges: &[CopyRange], roots: &Roots) -> io::Result<Message> {
    let from = Place::path(Path::new(std::ffi::OsStr::from_bytes(from)));
    let to = roots.place(&from_bytes(to))?;
    let bytes = crate::local_io::copy_ranges_between(&from, &to, ranges)?;
    Ok(Message::Copied { bytes })
}

/// Writes a small file whole under its partial name and renames it into
/// place (`local_io::install_whole`).
fn put_file(
    partial: &[u8],
    dest: &[u8],
    attrs: crate::meta::Attrs,
    sync: bool,
    data: &[u8],
    roots: &Roots,
) -> io::Result<Message> {
    let shown = Path::new(std::ffi::OsStr::from_bytes(dest)).display();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{shown}: {e}"));
    let partial = roots.place(&from_bytes(partial)).map_err(named)?;
    let dest = roots.place(&from_bytes(dest)).map_err(named)?;
    crate::local_io::install_whole(&partial, &dest, data, attrs, sync).map_err(named)?;
    Ok(Message::Copied {
        bytes: data.len() as u64,
    })
}

/// Reads a small file whole; its size and mtime come from after the read,
/// so that the client sees a file that changed while it was read.
fn get_file(path: &[u8]) -> io::Result<Message> {
    use std::os::unix::fs::MetadataExt;
    let (mut file, size) = open(path)?;
    if size as usize + 64 > MAX_FRAME {
        return Err(io::Error::other("file too large for one reply"));
    }
    let mut data = Vec::with_capacity(size as usize);
    Read::by_ref(&mut file)
        .take((MAX_FRAME - 64) as u64)
        .read_to_end(&mut data)?;
    let meta = file.metadata()?;
    Ok(Message::FileData {
        size: meta.len(),
        mtime: meta.mtime(),
        data,
    })
}

fn hash_file(path: &[u8]) -> io::Result<Message> {
    let (file, _) = open(path)?;
    let (size, hash) = hash_whole_file(&file, HashAlgo::Blake3)?;
    Ok(Message::FileHash { size, hash })
}

/// Reads one frame; None at a clean end of input.
pub(crate) fn read_frame(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {len} bytes is too large"
        )));
    }
    // Grown as the bytes arrive: a length that lies costs nothing.
    let mut frame = Vec::with_capacity(len.min(FIRST_READ));
    input.take(len as u64).read_to_end(&mut frame)?;
    if frame.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ends after {} of its {len} bytes", frame.len()),
        ));
    }
    Ok(Some(frame))
}

fn write_frame(output: &mut impl Write, message: &Message) -> io::Result<()> {
    let body = message.encode();
    output.write_all(&(body.len() as u32).to_be_bytes())?;
    output.write_all(&body)?;
    output.flush()
}
