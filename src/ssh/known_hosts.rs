//! Host key checking against OpenSSH known_hosts files: parsing (markers,
//! pattern lists, wildcards, negation, hashed names), looking a server's key
//! up, appending newly accepted keys, and printing fingerprints the way
//! OpenSSH does.
//!
//! russh ships a known_hosts check, but it has no wildcards, markers or
//! negation and splits on single spaces, so it would call valid files
//! malformed and miss revocations. A bad line here is skipped (logged at
//! debug level), never fatal, as in OpenSSH.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

/// What the known_hosts files say about a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKeyStatus {
    /// A matching entry with the same key.
    Known,
    /// No entry for this host with this key type.
    Unknown,
    /// An entry for this host with the same key algorithm but another key.
    Changed { file: PathBuf, line: usize },
    /// The key is listed as `@revoked` for this host.
    Revoked { file: PathBuf, line: usize },
}

/// Looks `key` up for `host:port` in `files`, in order.
///
/// Missing or unreadable files are skipped. A revocation beats everything;
/// otherwise any exact match makes the key [`HostKeyStatus::Known`] (OpenSSH
/// allows several keys per host), even if another entry disagrees.
pub(crate) fn check(files: &[PathBuf], host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
    let name = lookup_name(host, port);
    let mut verdict = Verdict::default();
    for file in files {
        let Some(text) = read_known_hosts(file) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            if let Some(entry) = parse_line(line, file, index + 1) {
                verdict.record(&entry, &name, key, file, index + 1);
            }
        }
    }
    verdict.status()
}

/// Appends `key` for `host:port` to `file`, creating the parent directory
/// (mode 0700) and the file (mode 0600) if missing.
pub(crate) fn learn(file: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut out = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    // A file edited by hand may lack its final newline; without one our
    // entry would be glued onto the last line and both would be lost.
    let separator = if ends_with_newline(&mut out)? {
        ""
    } else {
        "\n"
    };
    let line = format!(
        "{separator}{} {}\n",
        lookup_name(host, port),
        key_text(key)?
    );
    // One write: O_APPEND keeps concurrent appenders from interleaving.
    out.write_all(line.as_bytes())?;
    // Trust decisions should survive a crash right after the prompt.
    out.sync_data()
}

/// `SHA256:<base64 without padding>`, exactly as OpenSSH prints it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name OpenSSH writes and looks up: `host` on port 22, else `[host]:port`.
fn lookup_name(host: &str, port: u16) -> String {
    // Host names are case-insensitive; OpenSSH lower-cases before lookup.
    let host = host.to_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `keytype base64`, without the key's comment.
fn key_text(key: &PublicKey) -> io::Result<String> {
    let blob = key.to_bytes().map_err(io::Error::other)?;
    Ok(format!(
        "{} {}",
        key.algorithm().as_str(),
        Base64::encode_string(&blob)
    ))
}

fn ends_with_newline(file: &mut std::fs::File) -> io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn read_known_hosts(file: &Path) -> Option<String> {
    match std::fs::read(file) {
        // Lossy: a stray non-UTF-8 byte should only spoil its own line.
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            // Louder than a bad line: every host in it would look unknown.
            tracing::warn!(
                "cannot read known_hosts file {}: {e}; skipping it",
                file.display()
            );
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

/// One parsed known_hosts line.
struct Entry<'a> {
    marker: Marker,
    patterns: &'a str,
    key: PublicKey,
}

/// Parses `[@marker] patterns keytype base64 [comment]`; `None` for blank,
/// comment and malformed lines.
fn parse_line<'a>(line: &'a str, file: &Path, number: usize) -> Option<Entry<'a>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return malformed(file, number, "unknown marker"),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let (Some(key_type), Some(blob)) = (fields.next(), fields.next()) else {
        return malformed(file, number, "missing key type or key");
    };
    let Ok(key) = russh::keys::parse_public_key_base64(blob) else {
        return malformed(file, number, "key does not decode");
    };
    if key.algorithm().as_str() != key_type {
        return malformed(file, number, "key type does not match the key");
    }
    Some(Entry {
        marker,
        patterns: first,
        key,
    })
}

fn malformed<T>(file: &Path, line: usize, why: &str) -> Option<T> {
    tracing::debug!(file = %file.display(), line, why, "skipping malformed known_hosts line");
    None
}

/// What has been seen so far while scanning the files.
#[derive(Default)]
struct Verdict {
    known: bool,
    changed: Option<(PathBuf, usize)>,
    revoked: Option<(PathBuf, usize)>,
}

impl Verdict {
    fn record(&mut self, entry: &Entry, name: &str, key: &PublicKey, file: &Path, line: usize) {
        // CA lines vouch for certificates, which this check does not handle.
        if entry.marker == Marker::CertAuthority || !hosts_match(entry.patterns, name) {
            return;
        }
        let same_key = entry.key.key_data() == key.key_data();
        let here = || Some((file.to_path_buf(), line));
        match entry.marker {
            Marker::Revoked if same_key => self.revoked = self.revoked.take().or_else(here),
            Marker::None if same_key => self.known = true,
            Marker::None if entry.key.algorithm() == key.algorithm() => {
                self.changed = self.changed.take().or_else(here);
            }
            _ => {}
        }
    }

    fn status(self) -> HostKeyStatus {
        match (self.revoked, self.known, self.changed) {
            (Some((file, line)), _, _) => HostKeyStatus::Revoked { file, line },
            (None, true, _) => HostKeyStatus::Known,
            (None, false, Some((file, line))) => HostKeyStatus::Changed { file, line },
            (None, false, None) => HostKeyStatus::Unknown,
        }
    }
}

/// OpenSSH's pattern-list rule: any matching negated pattern rejects the
/// name outright; otherwise one matching positive pattern accepts it.
fn hosts_match(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if pattern_matches(negated, name) => return false,
            Some(_) => {}
            None => matched |= pattern_matches(pattern, name),
        }
    }
    matched
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("|1|") {
        Some(hashed) => hashed_matches(hashed, name),
        None => glob(pattern.to_lowercase().as_bytes(), name.as_bytes()),
    }
}

/// `|1|salt|hash`: hash is HMAC-SHA1(key = salt, message = name), both base64.
fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Shell-style match where `*` is any run of bytes and `?` any one byte;
/// everything else, `[` and `]` included, is literal (as in OpenSSH).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the `*` swallow one more byte and retry.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIH/1+AI9ACjrAsBamD51H7YzyRLE30YXpU8FPHXJEIvW";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIB5wQeLpvlpdRZIfOLgu/w3Cv8KRhWpea8zCUgu80OSN";
    const KEY_C: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOG85z6+6wlvkLXMuYotaQNCeF+1FG1iqnRF+m7is/Ic";
    const KEY_E: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHU3HOSQvrVjh6OHj/29TRFC8GT/xkziJKbPvOYSfP4jYclyNAxCPqAyArvMbm6uv+TnfVE4BPLnvMec/b6fsMw=";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("test key")
    }

    /// Writes `text` to a known_hosts file in a fresh temp dir.
    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).expect("write known_hosts");
        (dir, path)
    }

    fn status(text: &str, host: &str, port: u16, b64: &str) -> HostKeyStatus {
        let (_dir, path) = file_with(text);
        check(&[path], host, port, &key(b64))
    }

    #[test]
    fn exact_match_and_unknown() {
        let text = format!("example.com ssh-ed25519 {KEY_A} a comment\n");
        assert_eq!(
            status(&text, "example.com", 22, KEY_A),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "EXAMPLE.com", 22, KEY_A),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "other.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        // Another key type for a known host is just unknown, not changed.
        assert_eq!(
            status(&text, "example.com", 22, KEY_E),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn bracketed_port_form() {
        let text =
            format!("[example.com]:2222 ssh-ed25519 {KEY_A}\nplain.com ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&text, "example.com", 2222, KEY_A),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "example.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            status(&text, "plain.com", 2222, KEY_A),
            HostKeyStatus::Unknown
        );
        let explicit22 = format!("[plain.com]:22 ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&explicit22, "plain.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let text = format!("*.example.com,!bad.example.com,db?.corp ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&text, "www.example.com", 22, KEY_A),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "bad.example.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(status(&text, "db1.corp", 22, KEY_A), HostKeyStatus::Known);
        assert_eq!(
            status(&text, "db12.corp", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        let ported = format!("[*.example.com]:* ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&ported, "a.example.com", 2200, KEY_A),
            HostKeyStatus::Known
        );
        assert!(glob(b"a*b*c", b"aXXbYYc") && !glob(b"a*b*c", b"aXXbYY") && glob(b"*", b""));
    }

    /// Hashes `name` the way `ssh-keygen -H` does.
    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).expect("any key length");
        mac.update(name.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!(
            "|1|{}|{}",
            Base64::encode_string(salt),
            Base64::encode_string(&hash)
        )
    }

    #[test]
    fn hashed_entries() {
        let salt = [7u8; 20];
        let text = format!(
            "{} ssh-ed25519 {KEY_A}\n{} ssh-ed25519 {KEY_B}\n",
            hashed("example.com", &salt),
            hashed("[example.com]:2222", &salt)
        );
        assert_eq!(
            status(&text, "example.com", 22, KEY_A),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "example.com", 2222, KEY_B),
            HostKeyStatus::Known
        );
        assert_eq!(
            status(&text, "example.org", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        let garbage = format!("|1|notbase64|x ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&garbage, "example.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn hashed_by_real_ssh_keygen() {
        let text =
            format!("example.com ssh-ed25519 {KEY_A}\n[example.com]:2222 ssh-ed25519 {KEY_B}\n");
        let (_dir, path) = file_with(&text);
        let Ok(out) = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&path)
            .output()
        else {
            return; // ssh-keygen not installed
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hashed = std::fs::read_to_string(&path).expect("read hashed file");
        assert!(
            hashed.starts_with("|1|") && !hashed.contains("example.com"),
            "{hashed}"
        );
        let files = [path];
        assert_eq!(
            check(&files, "example.com", 22, &key(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&files, "example.com", 2222, &key(KEY_B)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&files, "example.net", 22, &key(KEY_A)),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn changed_key_names_file_and_line() {
        let (_dir, path) = file_with(&format!("# comment\n\nexample.com ssh-ed25519 {KEY_A}\n"));
        let got = check(std::slice::from_ref(&path), "example.com", 22, &key(KEY_B));
        assert_eq!(
            got,
            HostKeyStatus::Changed {
                file: path,
                line: 3
            }
        );
    }

    #[test]
    fn known_wins_over_changed_across_files() {
        let (_d1, first) = file_with(&format!("example.com ssh-ed25519 {KEY_A}\n"));
        let (_d2, second) = file_with(&format!("example.com ssh-ed25519 {KEY_B}\n"));
        let missing = PathBuf::from("/nonexistent/known_hosts");
        let files = [missing, first, second];
        assert_eq!(
            check(&files, "example.com", 22, &key(KEY_B)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&files, "example.com", 22, &key(KEY_A)),
            HostKeyStatus::Known
        );
        assert!(matches!(
            check(&files, "example.com", 22, &key(KEY_C)),
            HostKeyStatus::Changed { line: 1, .. }
        ));
    }

    #[test]
    fn revoked_key_is_refused_even_if_also_listed() {
        let text = format!("example.com ssh-ed25519 {KEY_A}\n@revoked * ssh-ed25519 {KEY_A}\n");
        let (_dir, path) = file_with(&text);
        let files = [path.clone()];
        let got = check(&files, "example.com", 22, &key(KEY_A));
        assert_eq!(
            got,
            HostKeyStatus::Revoked {
                file: path.clone(),
                line: 2
            }
        );
        // The revocation is about that key only.
        let got = check(&files, "example.com", 22, &key(KEY_B));
        assert_eq!(
            got,
            HostKeyStatus::Changed {
                file: path,
                line: 1
            }
        );
    }

    #[test]
    fn cert_authority_lines_are_ignored() {
        let text = format!("@cert-authority *.example.com ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            status(&text, "www.example.com", 22, KEY_A),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            status(&text, "www.example.com", 22, KEY_B),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = format!(
            "example.com\nexample.com ssh-ed25519\nexample.com ssh-ed25519 !!notbase64!!\n\
             example.com ssh-rsa {KEY_B}\n@bogus example.com ssh-ed25519 {KEY_B}\n\
             \t example.com \t ssh-ed25519\t{KEY_A}  trailing comment \n"
        );
        assert_eq!(
            status(&text, "example.com", 22, KEY_A),
            HostKeyStatus::Known
        );
        let (_dir, path) = file_with(&text);
        let got = check(std::slice::from_ref(&path), "example.com", 22, &key(KEY_C));
        assert_eq!(
            got,
            HostKeyStatus::Changed {
                file: path,
                line: 6
            }
        );
    }

    #[test]
    fn learn_then_check_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new/.ssh/known_hosts");
        learn(&path, "Example.com", 22, &key(KEY_A)).expect("learn");
        learn(&path, "example.com", 2222, &key(KEY_E)).expect("learn");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!(
                "example.com ssh-ed25519 {KEY_A}\n[example.com]:2222 ecdsa-sha2-nistp256 {KEY_E}\n"
            )
        );
        let files = [path.clone()];
        assert_eq!(
            check(&files, "example.com", 22, &key(KEY_A)),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&files, "example.com", 2222, &key(KEY_E)),
            HostKeyStatus::Known
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);
    }

    #[test]
    fn learn_keeps_a_missing_final_newline_from_gluing_lines() {
        let (_dir, path) = file_with(&format!("other.com ssh-ed25519 {KEY_B}"));
        learn(&path, "example.com", 22, &key(KEY_A)).expect("learn");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.ends_with(&format!("{KEY_B}\nexample.com ssh-ed25519 {KEY_A}\n")),
            "{text}"
        );
        assert_eq!(
            check(std::slice::from_ref(&path), "other.com", 22, &key(KEY_B)),
            HostKeyStatus::Known
        );
    }

    #[test]
    fn learn_with_a_generated_key_and_ssh_keygen_fingerprint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let private = dir.path().join("id");
        let generated = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&private)
            .status();
        let Ok(generated) = generated else {
            return; // ssh-keygen not installed
        };
        assert!(generated.success());
        let public = russh::keys::load_public_key(private.with_extension("pub")).expect("load key");
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(private.with_extension("pub"))
            .output()
            .expect("ssh-keygen -l");
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            listing.split_whitespace().nth(1),
            Some(fingerprint(&public).as_str())
        );
        let kh = dir.path().join("known_hosts");
        learn(&kh, "10.0.0.1", 22, &public).expect("learn");
        assert_eq!(check(&[kh], "10.0.0.1", 22, &public), HostKeyStatus::Known);
    }
}
