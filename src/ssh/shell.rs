//! The shell hashing tier: where no ferry helper runs but the server gives a
//! POSIX shell with GNU coreutils, block hashes come from `split --filter`
//! feeding each block to `b3sum` (blake3) or `sha256sum`. Detected once per
//! connection. File names reach the shell only inside single quotes
//! (`shell_quote`), whatever they contain; numbers are formatted by ferry.

use std::sync::Arc;

use super::{shell_quote, Connection};
use crate::error::{Error, FileError, Host, Result};
use crate::hash::{BlockHash, HashAlgo};

/// Most hash lines one command may print: bounds memory on a hostile server.
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

pub(crate) struct ShellHasher {
    conn: Arc<Connection>,
    algo: HashAlgo,
    tool: &'static str,
}

impl ShellHasher {
    /// Probes the remote shell: `split --filter` and `sha256sum` must answer
    /// a known input correctly; `b3sum` is preferred when it does too.
    pub(crate) async fn detect(conn: Arc<Connection>) -> Result<Option<ShellHasher>> {
        let probe = "printf x | split -b 1 --filter=sha256sum - && \
                     { command -v b3sum >/dev/null 2>&1 && printf x | split -b 1 --filter=b3sum - || true; }";
        let out = conn.exec(probe, 4096).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let sha = format!(
            "{}  -",
            hex::encode(crate::hash::block_hash(HashAlgo::Sha256, b"x"))
        );
        if !out.succeeded() || lines.next() != Some(sha.as_str()) {
            return Ok(None);
        }
        let b3 = format!(
            "{}  -",
            hex::encode(crate::hash::block_hash(HashAlgo::Blake3, b"x"))
        );
        let (algo, tool) = if lines.next() == Some(b3.as_str()) {
            (HashAlgo::Blake3, "b3sum")
        } else {
            (HashAlgo::Sha256, "sha256sum")
        };
        Ok(Some(ShellHasher { conn, algo, tool }))
    }

    pub(crate) fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// Hashes of `block`-byte blocks of `[start, end)`; fewer at end of file.
    pub(crate) async fn block_hashes(
        &self,
        path: &str,
        start: u64,
        end: u64,
        block: u64,
    ) -> Result<Vec<BlockHash>> {
        if end <= start {
            return Ok(Vec::new());
        }
        let command = format!(
            "test -r {q} || exit 3; tail -c +{from} -- {q} | head -c {len} | split -b {block} --filter={tool} -",
            q = shell_quote(path),
            from = start + 1,
            len = end - start,
            tool = self.tool,
        );
        let hashes = self.run(path, &command).await?;
        let most = (end - start).div_ceil(block) as usize;
        if hashes.len() > most {
            return Err(self.bad(path, "more block hashes than blocks"));
        }
        Ok(hashes)
    }

    pub(crate) async fn file_hash(&self, path: &str) -> Result<BlockHash> {
        let command = format!("{} < {}", self.tool, shell_quote(path));
        let hashes = self.run(path, &command).await?;
        match hashes.as_slice() {
            [one] => Ok(*one),
            _ => Err(self.bad(path, "expected one hash")),
        }
    }

    async fn run(&self, path: &str, command: &str) -> Result<Vec<BlockHash>> {
        let out = self.conn.exec(command, MAX_OUTPUT).await?;
        if !out.succeeded() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = format!("remote hashing failed ({}): {}", self.tool, stderr.trim());
            return Err(self.failed(path, message));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| parse_line(line).ok_or_else(|| self.bad(path, "unreadable hash line")))
            .collect()
    }

    fn bad(&self, path: &str, why: &str) -> Error {
        let message = format!("the remote {} gave an unexpected answer: {why}", self.tool);
        self.failed(path, message)
    }

    /// The remote shell's refusal to hash `path`: that file's alone.
    fn failed(&self, path: &str, message: String) -> Error {
        FileError::server(&Host::remote(self.conn.alias()), path, message).into()
    }
}

/// `<64 hex digits>  -` as sha256sum and b3sum print for stdin.
fn parse_line(line: &str) -> Option<BlockHash> {
    let hex_part = line.strip_suffix("  -")?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lines_parse_strictly() {
        let h = crate::hash::block_hash(HashAlgo::Sha256, b"x");
        assert_eq!(parse_line(&format!("{}  -", hex::encode(h))), Some(h));
        assert_eq!(parse_line(&format!("{}  file", hex::encode(h))), None);
        assert_eq!(parse_line("zz  -"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn quoting_keeps_every_name_one_literal_word() {
        for name in ["a b", "it's", "$(touch x)", "-rf", "a\nb", "`id`;ls", "'"] {
            let quoted = shell_quote(name);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), name, "{quoted}");
        }
    }
}
