//! Reading a file from its start, in order, with many requests in flight,
//! for a file that is checked here rather than copied (the uploaded
//! helper, hashed before it runs): the engine's reads by range belong to
//! the endpoint layer, above this one.

use futures::stream::{self, StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::Sftp;
use crate::error::Result;

/// Reads in flight at once, as OpenSSH's `sftp` keeps: on loopback the
/// depth hardly matters, on a link with latency it sets the throughput.
const READS_IN_FLIGHT: usize = 64;

impl Sftp {
    /// Reads `path` from its start until its end or `limit` bytes, whichever
    /// comes first, handing each piece to `each` in file order. Returns how
    /// many bytes it read: a caller that expects `n` bytes asks for `n + 1`
    /// to learn that the file is not longer.
    pub(crate) async fn read_in_order(
        &self,
        path: &str,
        limit: u64,
        mut each: impl FnMut(&[u8]),
    ) -> Result<u64> {
        let _slot = self.handle_slot().await;
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| self.error(path, e))?
            .handle;
        let read = self.read_handle(&handle, path, limit, &mut each).await;
        // Only read: a failed close loses nothing.
        let _ = self.raw.close(handle).await;
        read
    }

    async fn read_handle(
        &self,
        handle: &str,
        path: &str,
        limit: u64,
        each: &mut impl FnMut(&[u8]),
    ) -> Result<u64> {
        let chunk = u64::from(self.read_chunk.max(1));
        let ranges = (0..limit.div_ceil(chunk)).map(|i| {
            let offset = i * chunk;
            (offset, chunk.min(limit - offset) as u32)
        });
        let mut pieces = stream::iter(ranges)
            .map(|(offset, len)| self.read_range(handle, path, offset, len))
            .buffered(READS_IN_FLIGHT);
        let mut total = 0;
        while let Some((piece, asked)) = pieces.try_next().await? {
            each(&piece);
            total += piece.len() as u64;
            if piece.len() < asked as usize {
                // The end of the file: the requests still in flight past it
                // are answered and their replies dropped.
                break;
            }
        }
        Ok(total)
    }

    /// `len` bytes at `offset`, fewer only at the end of the file: a server
    /// may answer short before it, so the rest is asked for again.
    async fn read_range(
        &self,
        handle: &str,
        path: &str,
        offset: u64,
        len: u32,
    ) -> Result<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        while out.len() < len as usize {
            let want = len - out.len() as u32;
            match self.raw.read(handle, offset + out.len() as u64, want).await {
                Ok(data) if data.data.is_empty() => break,
                Ok(data) if out.is_empty() && data.data.len() == len as usize => {
                    return Ok((data.data, len))
                }
                Ok(data) => {
                    let take = data.data.len().min(want as usize);
                    out.extend_from_slice(&data.data[..take]);
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => return Err(self.error(path, e)),
            }
        }
        Ok((out, len))
    }
}
