//! The shell hashing tier: where no ferry helper runs but the server gives a
//! POSIX shell with GNU coreutils. A range's block hashes come from one
//! `python3` or `perl` process (sha256), where the server has one, else from
//! `split --filter` feeding each block to `b3sum` (blake3) or `sha256sum`
//! (two processes per block: 25 s for 1 GiB). Whole-file hashes come from
//! `b3sum` or `sha256sum`. Detected once per connection, each way probed on
//! a known input. File names reach the shell only inside single quotes
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
    blocks: Blocks,
}

/// How the remote shell hashes the blocks of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocks {
    /// One `python3` per range, hashlib's sha256: a process per range, not
    /// per block (1 GiB: 16 processes instead of 2,048).
    Python,
    /// One `perl` per range, Digest::SHA (core Perl, not in every minimal
    /// install).
    Perl,
    /// `split --filter`: a shell and a hashing process per block, what
    /// every GNU userland has.
    Split,
}

/// Prints the sha256 of each `B`-byte block of each range `[S, E)` of `P`
/// (argv: P B S1 E1 S2 E2 ...) as sha256sum prints for stdin, and a line
/// `.` after each range's; seeks for all but a first range at 0, so that
/// the probe can read a pipe. No single quote: it is one quoted shell word.
const PYTHON: &str = r#"import sys,hashlib
p,b,r=sys.argv[1],int(sys.argv[2]),sys.argv[3:]
f=open(p,"rb")
for i in range(0,len(r),2):
 s,e=int(r[i]),int(r[i+1])
 if s or i:f.seek(s)
 n=e-s
 while n>0:
  d=f.read(min(b,n))
  if not d:break
  n-=len(d)
  sys.stdout.write(hashlib.sha256(d).hexdigest()+"  -\n")
 sys.stdout.write(".\n")"#;

/// The same in Perl.
const PERL: &str = r#"my($p,$b,@r)=@ARGV;open(my $f,"<",$p) or exit 3;binmode $f;
for(my $i=0;$i<@r;$i+=2){my($s,$e)=@r[$i,$i+1];if($s||$i){seek($f,$s,0) or exit 3}my $n=$e-$s;
while($n>0){my $x=read($f,my $d,$b<$n?$b:$n);last unless $x;$n-=$x;print sha256_hex($d),"  -\n"}print ".\n"}"#;

/// Ranges hashed by one command at most: bounds its length (two numbers
/// each) well below any system's argument limit.
const RANGES_PER_COMMAND: usize = 256;

impl Blocks {
    /// The command that hashes each of `ranges` of `path` in `block`-byte
    /// blocks (with `tool`, for `split`), each range's hashes followed by
    /// a line `.`.
    fn command(self, tool: &str, path: &str, ranges: &[(u64, u64)], block: u64) -> String {
        let q = shell_quote(path);
        let numbers: String = ranges.iter().map(|(s, e)| format!(" {s} {e}")).collect();
        match self {
            Blocks::Python => format!("python3 -c {} {q} {block}{numbers}", shell_quote(PYTHON)),
            Blocks::Perl => format!(
                "perl -MDigest::SHA=sha256_hex -e {} -- {q} {block}{numbers}",
                shell_quote(PERL)
            ),
            Blocks::Split => {
                let each: Vec<String> = ranges
                    .iter()
                    .map(|(start, end)| {
                        format!(
                            "tail -c +{} -- {q} | head -c {} | split -b {block} --filter={tool} - && echo .",
                            start + 1,
                            end - start,
                        )
                    })
                    .collect();
                format!("{{ {}; }}", each.join(" && "))
            }
        }
    }
}

/// The probe's input, and what every way must print for it.
const PROBE_INPUT: &str = "printf x |";

/// Whether `out` is the one hash line of "x" in `algo`, with the range's
/// end.
fn answers_x(out: &super::ExecOutput, algo: HashAlgo) -> bool {
    let expected = format!(
        "{}  -\n.\n",
        hex::encode(crate::hash::block_hash(algo, b"x"))
    );
    out.succeeded() && out.stdout == expected.as_bytes()
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
        // One process per range beats b3sum's speed: 2,048 processes for
        // 1 GiB cost more than hashing it (sha256 then, for both sides).
        for blocks in [Blocks::Python, Blocks::Perl] {
            let probe = format!(
                "{PROBE_INPUT} {}",
                blocks.command(tool, "/dev/stdin", &[(0, 1)], 1)
            );
            if answers_x(&conn.exec(&probe, 4096).await?, HashAlgo::Sha256) {
                tracing::debug!(?blocks, "block hashes in one process per range");
                let (algo, tool) = (HashAlgo::Sha256, "sha256sum");
                return Ok(Some(ShellHasher {
                    conn,
                    algo,
                    tool,
                    blocks,
                }));
            }
        }
        let blocks = Blocks::Split;
        Ok(Some(ShellHasher {
            conn,
            algo,
            tool,
            blocks,
        }))
    }

    pub(crate) fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// Hashes of `block`-byte blocks of each of `ranges` (fewer at end of
    /// file), in as few commands as [`RANGES_PER_COMMAND`] allows.
    pub(crate) async fn block_hashes(
        &self,
        path: &str,
        ranges: &[(u64, u64)],
        block: u64,
    ) -> Result<Vec<Vec<BlockHash>>> {
        let mut hashes = Vec::with_capacity(ranges.len());
        for batch in ranges.chunks(RANGES_PER_COMMAND) {
            hashes.extend(self.block_hashes_of(path, batch, block).await?);
        }
        Ok(hashes)
    }

    async fn block_hashes_of(
        &self,
        path: &str,
        ranges: &[(u64, u64)],
        block: u64,
    ) -> Result<Vec<Vec<BlockHash>>> {
        let command = format!(
            "test -r {} || exit 3; {}",
            shell_quote(path),
            self.blocks.command(self.tool, path, ranges, block)
        );
        let out = self.output(path, &command).await?;
        let text = String::from_utf8_lossy(&out);
        let mut lines = text.lines();
        let mut hashes = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            let most = end.saturating_sub(*start).div_ceil(block) as usize;
            let mut range = Vec::new();
            loop {
                match lines.next() {
                    Some(".") => break,
                    Some(line) if range.len() < most => range.push(
                        parse_line(line).ok_or_else(|| self.bad(path, "unreadable hash line"))?,
                    ),
                    Some(_) => return Err(self.bad(path, "more block hashes than blocks")),
                    None => return Err(self.bad(path, "fewer ranges than asked for")),
                }
            }
            hashes.push(range);
        }
        if lines.next().is_some() {
            return Err(self.bad(path, "more ranges than asked for"));
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

    /// The link count of `path` as GNU `stat` prints it; None where the
    /// command fails or answers something else (not GNU, not there).
    pub(crate) async fn links(&self, path: &str) -> Result<Option<u64>> {
        let command = format!("stat -c %h -- {}", shell_quote(path));
        let out = self.conn.exec(&command, 64).await?;
        if !out.succeeded() {
            return Ok(None);
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
    }

    async fn run(&self, path: &str, command: &str) -> Result<Vec<BlockHash>> {
        let out = self.output(path, command).await?;
        String::from_utf8_lossy(&out)
            .lines()
            .map(|line| parse_line(line).ok_or_else(|| self.bad(path, "unreadable hash line")))
            .collect()
    }

    /// What `command` printed, or why it failed.
    async fn output(&self, path: &str, command: &str) -> Result<Vec<u8>> {
        let out = self.conn.exec(command, MAX_OUTPUT).await?;
        if !out.succeeded() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = format!("remote hashing failed ({}): {}", self.tool, stderr.trim());
            return Err(self.failed(path, message));
        }
        Ok(out.stdout)
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

    /// Every way of hashing blocks, run by this machine's shell on a file
    /// with an awkward name: the hashes of each range are this crate's own,
    /// the last block short, nothing past the end, each range's closed by
    /// `.`, several ranges in any order in one command; the probe's form (a
    /// pipe as the file) answers "x".
    #[test]
    fn each_way_hashes_the_blocks_of_ranges() {
        use crate::hash::block_hash;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("-it's a file");
        let data = crate::delta::test_data(10_000, 9);
        std::fs::write(&path, &data).unwrap();
        let path = path.to_str().unwrap();
        let sh = |command: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
                .unwrap();
            assert!(out.status.success(), "{command}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let hashes_of = |start: u64, end: u64, block: u64| -> String {
            let blocks = data[start as usize..end as usize].chunks(block as usize);
            let lines: String = blocks
                .map(|c| format!("{}  -\n", hex::encode(block_hash(HashAlgo::Sha256, c))))
                .collect();
            lines + ".\n"
        };
        for blocks in [Blocks::Python, Blocks::Perl, Blocks::Split] {
            for (ranges, block) in [
                (vec![(0, 10_000)], 4096),
                (vec![(4096, 9_000)], 1024),
                (vec![(0, 1)], 1),
                // Several at once, out of order, one empty, one to the end.
                (
                    vec![(8192, 10_000), (0, 4096), (5000, 5000), (9_000, 10_000)],
                    4096,
                ),
            ] {
                let printed = sh(&blocks.command("sha256sum", path, &ranges, block));
                let expected: String = ranges
                    .iter()
                    .map(|&(start, end)| hashes_of(start, end, block))
                    .collect();
                assert_eq!(printed, expected, "{blocks:?} {ranges:?} by {block}");
            }
            let probe = sh(&format!(
                "{PROBE_INPUT} {}",
                blocks.command("sha256sum", "/dev/stdin", &[(0, 1)], 1)
            ));
            let x = block_hash(HashAlgo::Sha256, b"x");
            assert_eq!(probe, format!("{}  -\n.\n", hex::encode(x)), "{blocks:?}");
        }
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
