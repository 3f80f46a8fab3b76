//! `ferry --server`: answers hash, copy, put and file-system requests on
//! stdin/stdout, one at a time and in order, on files of this machine. Runs
//! on the remote end of an SSH exec channel, so it is plain blocking I/O: no
//! runtime, nothing shared.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::serve_fs::Files;
use super::{Message, FIRST_READ, MAX_FRAME, VERSION};
use crate::delta::rolling::{Signature, STRONG_LEN};
use crate::hash::{hash_file_blocks, hash_whole_file, HashAlgo};
use crate::local_io::{Place, RecentDir, Roots};
use crate::meta::CopyRange;
use crate::paths::from_bytes;

/// Bytes read from the client, and replies gathered, per system call: a
/// tree of small files is many small requests and replies, and one write
/// per reply cost a system call here and an SSH packet in sshd each.
const IO_BUFFER: usize = 256 * 1024;

/// Longest a reply waits behind later requests before it is sent.
const REPLY_DELAY: Duration = Duration::from_millis(5);

/// Serves until the client closes the channel; returns the process status.
pub(crate) fn run() -> i32 {
    // The descriptors themselves: stdout's own buffer flushes at every
    // newline byte, which binary replies are full of.
    let streams = io::stdin().as_fd().try_clone_to_owned().and_then(|input| {
        Ok((
            File::from(input),
            io::stdout().as_fd().try_clone_to_owned()?,
        ))
    });
    let served = streams.and_then(|(input, output)| serve(input, File::from(output)));
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferry --server: {e}");
            12
        }
    }
}

/// The request loop over any byte streams (tests use pipes in memory).
/// Replies are gathered while more requests wait whole in the input, and
/// sent before the loop could block on reading.
pub(crate) fn serve(input: impl Read, output: impl Write) -> io::Result<()> {
    let mut input = BufReader::with_capacity(IO_BUFFER, input);
    let mut replies = Replies::new(output);
    let Some(first) = read_frame(&mut input)? else {
        return Ok(());
    };
    match Message::decode(&first) {
        Ok(Message::Hello { version }) if version == VERSION => {
            replies.add(&Message::Hello { version: VERSION })?;
        }
        Ok(Message::Hello { version }) => {
            let message = format!(
                "protocol version mismatch: the remote ferry speaks version {VERSION}, this client {version}; install the same ferry release on both ends"
            );
            replies.add(&Message::Error { message })?;
            return replies.send();
        }
        _ => return Err(io::Error::other("the client did not start with a greeting")),
    }
    let mut files = Files::default();
    // Kept only from one small file to the next among those already
    // received: never across a wait for input, nor past 5 ms, nor past
    // another request (which may rename or remove a directory).
    let mut recent = RecentDir::default();
    loop {
        if replies.held_long() || !whole_frame(input.buffer()) {
            replies.send()?;
            recent.forget();
        }
        let Some(frame) = read_frame(&mut input)? else {
            break;
        };
        let request = Message::decode(&frame);
        if request.as_ref().is_ok_and(may_take_long) {
            replies.send()?;
        }
        if !matches!(request, Ok(Message::PutFile { .. })) {
            recent.forget();
        }
        let reply = match request {
            Ok(Message::Fs(request)) => match files.answer(request) {
                Ok(reply) => Message::FsReply(reply),
                Err(e) => Message::Error {
                    message: e.to_string(),
                },
            },
            Ok(request) => answer(request, &files.roots, &mut recent),
            Err(e) => Message::Error { message: e },
        };
        replies.add(&reply)?;
    }
    replies.send()
}

/// Replies written and not yet sent, since when.
struct Replies<W: Write> {
    output: BufWriter<W>,
    held_since: Option<Instant>,
}

impl<W: Write> Replies<W> {
    fn new(output: W) -> Replies<W> {
        Replies {
            output: BufWriter::with_capacity(IO_BUFFER, output),
            held_since: None,
        }
    }

    fn add(&mut self, reply: &Message) -> io::Result<()> {
        write_frame(&mut self.output, reply)?;
        self.held_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn held_long(&self) -> bool {
        self.held_since
            .is_some_and(|since| since.elapsed() >= REPLY_DELAY)
    }

    fn send(&mut self) -> io::Result<()> {
        if self.held_since.take().is_some() {
            self.output.flush()?;
        }
        Ok(())
    }
}

/// Requests that hash, scan or copy whole files or ranges: the replies
/// before them are sent first rather than held for as long as these take.
fn may_take_long(request: &Message) -> bool {
    !matches!(
        request,
        Message::Fs(_) | Message::PutFile { .. } | Message::GetFile { .. }
    )
}

/// Whether `buffered` holds a whole frame: one can be read without waiting.
fn whole_frame(buffered: &[u8]) -> bool {
    match buffered.first_chunk::<4>() {
        Some(len) => buffered.len() - 4 >= u32::from_be_bytes(*len) as usize,
        None => false,
    }
}

fn answer(request: Message, roots: &Roots, recent: &mut RecentDir) -> Message {
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
            put_file(&partial, &dest, attrs, sync, &data, roots, recent)
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
    recent: &mut RecentDir,
) -> io::Result<Message> {
    let shown = Path::new(std::ffi::OsStr::from_bytes(dest)).display();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{shown}: {e}"));
    let (partial, dest) = roots
        .place_both_near(&from_bytes(partial), &from_bytes(dest), Some(&mut *recent))
        .map_err(named)?;
    let installed = crate::local_io::install_whole(&partial, &dest, data, attrs, sync);
    if installed.is_err() {
        // Walked afresh for the next one: the directory may be gone.
        recent.forget();
    }
    installed.map_err(named)?;
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
    output.write_all(&message.frame())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fs::{FsReply, FsRequest};

    /// Counts the writes that reach it.
    #[derive(Default)]
    struct Counted {
        bytes: Vec<u8>,
        writes: usize,
    }

    impl Write for Counted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn replies_to_requests_waiting_together_go_out_together_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
        let mut input = Message::Hello { version: VERSION }.frame();
        for (i, name) in names.iter().enumerate() {
            if i % 2 == 0 {
                std::fs::write(dir.path().join(name), vec![0; i]).unwrap();
            }
            let path = dir.path().join(name).as_os_str().as_bytes().to_vec();
            let stat = FsRequest::Stat {
                path,
                follow: false,
            };
            input.extend(Message::Fs(stat).frame());
        }
        let mut output = Counted::default();
        serve(&input[..], &mut output).unwrap();
        assert_eq!(output.writes, 1, "one write for the whole batch");
        let mut replies = &output.bytes[..];
        assert_eq!(
            read_frame(&mut replies)
                .unwrap()
                .map(|f| Message::decode(&f)),
            Some(Ok(Message::Hello { version: VERSION }))
        );
        for i in 0..names.len() {
            let frame = read_frame(&mut replies).unwrap().unwrap();
            let Ok(Message::FsReply(FsReply::Stat(meta))) = Message::decode(&frame) else {
                panic!("reply {i}: not a stat");
            };
            assert_eq!(
                meta.map(|m| m.size),
                (i % 2 == 0).then_some(i as u64),
                "reply {i}"
            );
        }
        assert!(replies.is_empty());
    }

    #[test]
    fn a_directory_kept_for_small_files_is_walked_again_after_another_request() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir_all(dest.join("sub")).unwrap();
        let bytes = |p: std::path::PathBuf| p.into_os_string().into_encoded_bytes();
        let put = |name: &str| Message::PutFile {
            partial: bytes(dest.join("sub").join(format!(".{name}.partial"))),
            dest: bytes(dest.join("sub").join(name)),
            owner: Default::default(),
            mode: 0o640,
            mtime: None,
            sync: false,
            data: name.as_bytes().to_vec(),
        };
        let fs = |request: FsRequest| Message::Fs(request);
        let requests = [
            Message::Hello { version: VERSION },
            fs(FsRequest::Confine {
                roots: vec![bytes(dest.clone())],
                dirlinks: false,
            }),
            put("a"),
            put("b"),
            fs(FsRequest::Rename {
                from: bytes(dest.join("sub")),
                to: bytes(dest.join("old")),
            }),
            fs(FsRequest::Mkdir {
                path: bytes(dest.join("sub")),
                mode: 0o755,
            }),
            put("c"),
        ];
        let input: Vec<u8> = requests.iter().flat_map(Message::frame).collect();
        let mut output = Counted::default();
        serve(&input[..], &mut output).unwrap();
        let mut replies = &output.bytes[..];
        while let Some(frame) = read_frame(&mut replies).unwrap() {
            let reply = Message::decode(&frame);
            assert!(!matches!(reply, Ok(Message::Error { .. })), "{reply:?}");
        }
        let names = |at: &str| -> Vec<String> {
            let mut found: Vec<String> = std::fs::read_dir(dest.join(at))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            found
        };
        assert_eq!(names("old"), ["a", "b"]);
        assert_eq!(names("sub"), ["c"]);
        assert_eq!(std::fs::read(dest.join("sub/c")).unwrap(), b"c");
    }

    #[test]
    fn a_frame_is_whole_only_with_all_its_bytes() {
        let frame = Message::Hello { version: VERSION }.frame();
        assert!(whole_frame(&frame));
        assert!(!whole_frame(&frame[..frame.len() - 1]));
        assert!(!whole_frame(&frame[..3]));
        assert!(whole_frame(&[0, 0, 0, 0]));
    }
}
