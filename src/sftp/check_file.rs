//! `check-file-name` (draft-ietf-secsh-filexfer-extensions section 3):
//! the server hashes a byte range of one of its files, whole or in blocks.
//! ProFTPD's mod_sftp answers it in SFTP v3 without listing it in its
//! VERSION reply, and OpenSSH does not have it, so ferry asks once
//! ([`Sftp::offers_check_file`]) and then uses it as a hashing tier: a
//! verified resume, an end-to-end check and block comparisons on a server
//! that has neither a shell nor the helper.
//!
//! Request: `string name, string hash-algorithms, uint64 start, uint64
//! length (0: to the end), uint32 block-size (0: one hash of the range,
//! else at least 256)`. Reply: SSH_FXP_EXTENDED_REPLY with `string
//! algorithm-used`, then the hashes back to back. ProFTPD refuses a start
//! at or past the end of the file, and hashes a block past the end as the
//! bytes that are there (none): callers ask only for what the file holds.

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{Packet, StatusCode};

use super::{put_string, Sftp};
use crate::error::{FileError, Result};
use crate::paths::to_bytes;

const CHECK_FILE_NAME: &str = "check-file-name";

/// The one algorithm ferry asks for: what its shell tier and local side
/// also compute, and what every server with the extension offers.
const ALGORITHM: &str = "sha256";
const HASH_LEN: usize = 32;

/// The smallest block the draft allows.
pub(crate) const MIN_BLOCK: u64 = 256;

impl Sftp {
    /// Whether the server answers `check-file-name`: a request for the
    /// session's directory draws "unsupported" from a server without it,
    /// and any other answer (an error about a directory, most likely) from
    /// one that has it.
    pub(crate) async fn offers_check_file(&self) -> bool {
        let payload = request(".", 0, 1, 0);
        match self.raw().extended(CHECK_FILE_NAME, payload).await {
            Ok(Packet::Status(s)) => s.status_code != StatusCode::OpUnsupported,
            Ok(Packet::ExtendedReply(_)) => true,
            _ => false,
        }
    }

    /// SHA-256 of each `block` bytes of `[start, start + len)` of `path`
    /// (the last block shorter), or of the whole range when `block` is 0,
    /// computed by the server. `len` 0 means to the end of the file.
    pub(crate) async fn check_file(
        &self,
        path: &str,
        start: u64,
        len: u64,
        block: u32,
    ) -> Result<Vec<[u8; HASH_LEN]>> {
        let payload = request(path, start, len, block);
        let reply = self.raw().extended(CHECK_FILE_NAME, payload).await;
        let data = match reply {
            Ok(Packet::ExtendedReply(reply)) => reply.data,
            Ok(Packet::Status(s)) => return Err(self.error(path, SftpError::Status(s))),
            Ok(_) => return Err(self.error(path, SftpError::UnexpectedPacket)),
            Err(e) => return Err(self.error(path, e)),
        };
        let expected = match (block, len) {
            (0, _) => Some(1),
            (_, 0) => None,
            (block, len) => Some(len.div_ceil(block as u64)),
        };
        parse_reply(&data, expected).ok_or_else(|| {
            let what = "the server's check-file reply is not the SHA-256 hashes asked for";
            FileError::refused(self.label(), path, what).into()
        })
    }
}

fn request(path: &str, start: u64, len: u64, block: u32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(40 + path.len());
    put_string(&mut payload, &to_bytes(path));
    put_string(&mut payload, ALGORITHM.as_bytes());
    payload.extend_from_slice(&start.to_be_bytes());
    payload.extend_from_slice(&len.to_be_bytes());
    payload.extend_from_slice(&block.to_be_bytes());
    payload
}

/// The hashes of a reply: its algorithm must be SHA-256 and its hashes
/// whole, and as many as `expected` when the count is known (a whole-range
/// request: exactly one).
fn parse_reply(data: &[u8], expected: Option<u64>) -> Option<Vec<[u8; HASH_LEN]>> {
    let (name_len, rest) = data.split_first_chunk::<4>()?;
    let name_len = u32::from_be_bytes(*name_len) as usize;
    let (name, hashes) = rest.split_at_checked(name_len)?;
    if name != ALGORITHM.as_bytes() || hashes.len() % HASH_LEN != 0 {
        return None;
    }
    let count = (hashes.len() / HASH_LEN) as u64;
    if expected.is_some_and(|n| n != count) || count == 0 {
        return None;
    }
    let hashes = hashes.chunks_exact(HASH_LEN);
    Some(
        hashes
            .map(|h| h.try_into().unwrap_or([0; HASH_LEN]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(name: &str, hashes: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        put_string(&mut data, name.as_bytes());
        data.extend_from_slice(hashes);
        data
    }

    #[test]
    fn a_reply_holds_the_hashes_asked_for_or_is_refused() {
        let two = [[1u8; 32], [2u8; 32]].concat();
        assert_eq!(
            parse_reply(&reply("sha256", &two), Some(2)),
            Some(vec![[1u8; 32], [2u8; 32]])
        );
        assert_eq!(
            parse_reply(&reply("sha256", &two), None).map(|h| h.len()),
            Some(2)
        );
        // Another algorithm, a torn hash, a wrong count, nothing at all.
        assert_eq!(parse_reply(&reply("md5", &two), Some(2)), None);
        assert_eq!(parse_reply(&reply("sha256", &two[..40]), None), None);
        assert_eq!(parse_reply(&reply("sha256", &two), Some(3)), None);
        assert_eq!(parse_reply(&reply("sha256", &[]), None), None);
        assert_eq!(parse_reply(&[0, 0, 1], None), None);
        assert_eq!(parse_reply(&[0, 0, 0, 200, b's'], None), None);
    }

    #[test]
    fn the_request_is_as_the_draft_lays_it_out() {
        let r = request("f", 5, 7, 256);
        assert_eq!(&r[..5], &[0, 0, 0, 1, b'f']);
        assert_eq!(&r[5..15], &[0, 0, 0, 6, b's', b'h', b'a', b'2', b'5', b'6']);
        assert_eq!(&r[15..23], &5u64.to_be_bytes());
        assert_eq!(&r[23..31], &7u64.to_be_bytes());
        assert_eq!(&r[31..], &256u32.to_be_bytes());
    }
}
