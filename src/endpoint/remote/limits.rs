//! Bounds on what a server says about its files, in one place: entries and
//! bytes of names per directory listing, the length of one name, the length
//! of a symlink target. An honest server stays far inside them; a broken or
//! hostile one (a listing that never ends, names of megabytes) meets a clear
//! error instead of growing ferry's memory without end, or keeping a run
//! busy forever where `--timeout` cannot help because the server is never
//! silent. docs/RELIABILITY.md lists them.
//!
//! A listing past its bounds ends the run ([`Error::Protocol`]); one name
//! or symlink target too long fails that entry alone.

use crate::endpoint::{Entry, Listing, Meta, Unnameable, Unnamed};
use crate::error::{Error, FileError, Host, Result};
use crate::paths::printable;

/// Entries one directory listing may hold. Large directories met in
/// practice (mail spools, caches, image dumps) hold hundreds of thousands;
/// four million is well past them, and still a bound on memory: about
/// 90 bytes an entry here (the entry, its name, the list), so some 360 MB
/// at the bound (354 MiB peak measured by the adversary test). Against
/// OpenSSH, which sends 100 names a reply, reaching it takes 40,000
/// replies.
pub(crate) const MAX_LISTED_ENTRIES: u64 = 4_000_000;

/// Bytes of names one directory listing may hold: 64 bytes a name at the
/// entry bound, where real names average well under 32. It stops a server
/// that lists long names with no end before the entry bound does.
pub(crate) const MAX_LISTED_NAME_BYTES: u64 = 256 * 1024 * 1024;

/// Longest name of one directory entry ferry takes from a server. File
/// systems allow 255 bytes (Linux, the BSDs, macOS; NTFS 255 UTF-16
/// units, up to 765 bytes of UTF-8; OpenZFS with long names 1,023):
/// 4,096 is well above every one, so a server on any system passes.
pub(crate) const MAX_NAME_BYTES: usize = 4096;

/// Longest symlink target ferry takes from a server. Linux refuses targets
/// of 4,096 bytes and more (PATH_MAX), macOS past 1,024; Windows paths run
/// to 32,767 UTF-16 units. 64 KiB is above all of them.
pub(crate) const MAX_LINK_TARGET_BYTES: usize = 64 * 1024;

/// How much of an over-long name an error shows.
const SHOWN_BYTES: usize = 80;

/// A listing as the server's replies arrive, kept within the bounds.
pub(super) struct Gathering<'a> {
    host: &'a str,
    label: &'a Host,
    dir: &'a str,
    listing: Listing,
    /// Names the server listed, `.` and `..` included.
    names: u64,
    name_bytes: u64,
}

impl<'a> Gathering<'a> {
    /// An empty listing of `dir` on `host` (`label`: the same, as per-file
    /// errors name it).
    pub(super) fn new(host: &'a str, label: &'a Host, dir: &'a str) -> Gathering<'a> {
        Gathering {
            host,
            label,
            dir,
            listing: Listing::default(),
            names: 0,
            name_bytes: 0,
        }
    }

    /// Takes one name the server listed. Every name counts toward the
    /// bounds, `.` and `..` too (a server repeating them forever holds no
    /// memory but would never end): past a bound, the run ends. A name no
    /// directory holds refuses the whole listing; one too long, or
    /// `mangled` (not UTF-8 over SFTP), fails alone.
    pub(super) fn take(&mut self, name: String, meta: Meta, mangled: bool) -> Result<()> {
        self.names += 1;
        self.name_bytes += name.len() as u64;
        self.within_bounds()?;
        if name == "." || name == ".." {
            return Ok(());
        }
        check_entry_name(self.label, self.dir, &name)?;
        if name.len() > MAX_NAME_BYTES {
            let why = Unnameable::TooLong {
                len: name.len(),
                limit: MAX_NAME_BYTES,
            };
            self.listing.unnamed.push(Unnamed {
                shown: shortened(&name),
                why,
            });
        } else if mangled {
            self.listing.unnamed.push(Unnamed {
                shown: printable(&name).into_owned(),
                why: Unnameable::NotUtf8,
            });
        } else {
            self.listing.entries.push(Entry { name, meta });
        }
        Ok(())
    }

    fn within_bounds(&self) -> Result<()> {
        let past = if self.names > MAX_LISTED_ENTRIES {
            format!("more than {MAX_LISTED_ENTRIES} entries")
        } else if self.name_bytes > MAX_LISTED_NAME_BYTES {
            format!("more than {} MiB of names", MAX_LISTED_NAME_BYTES >> 20)
        } else {
            return Ok(());
        };
        Err(Error::Protocol {
            host: self.host.to_string(),
            detail: format!(
                "the server listed {past} in {}; refusing to go on (a broken or hostile server?)",
                printable(self.dir)
            ),
        })
    }

    /// The listing, sorted by name.
    pub(super) fn finish(self) -> Listing {
        let mut listing = self.listing;
        listing.entries.sort_by(|a, b| a.name.cmp(&b.name));
        listing
    }
}

/// A name a server may legitimately return inside a directory: anything else
/// could make ferry write outside the tree it was asked to write.
fn check_entry_name(label: &Host, dir: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        let message = "the server listed an unsafe file name; refusing it";
        let shown = match name.len() > MAX_NAME_BYTES {
            true => shortened(name),
            false => format!("{name:?}"),
        };
        return Err(FileError::refused(label, format!("{dir}/{shown}"), message).into());
    }
    Ok(())
}

/// The start of an over-long name, printable, marked as cut.
fn shortened(name: &str) -> String {
    let mut end = SHOWN_BYTES.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", printable(&name[..end]))
}

/// `target`, the symlink target the server gave for `path`, unless it is
/// longer than any system makes one: then that link fails alone.
pub(super) fn link_target(label: &Host, path: &str, target: String) -> Result<String> {
    if target.len() <= MAX_LINK_TARGET_BYTES {
        return Ok(target);
    }
    let message = format!(
        "the server gives a symlink target of {} bytes, more than the {MAX_LINK_TARGET_BYTES} \
         ferry takes (a broken or hostile server?); skipped",
        target.len()
    );
    Err(FileError::refused(label, path, message).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::endpoint::{Kind, Mtime};

    fn meta() -> Meta {
        Meta {
            kind: Kind::File,
            size: 1,
            mtime: Mtime::secs(0),
            mode: 0o644,
            owner: None,
            inode: None,
        }
    }

    #[test]
    fn an_over_long_name_fails_alone_and_its_neighbours_stay() {
        let label = Host::remote("h");
        let mut gathering = Gathering::new("h", &label, "d");
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for name in ["b", long.as_str(), ".", "a", ".."] {
            gathering.take(name.to_string(), meta(), false).unwrap();
        }
        let listing = gathering.finish();
        let names: Vec<_> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(listing.unnamed.len(), 1);
        assert!(listing.unnamed[0].shown.len() < 100);
        let longest = "y".repeat(MAX_NAME_BYTES);
        let mut gathering = Gathering::new("h", &label, "d");
        gathering.take(longest, meta(), false).unwrap();
        assert_eq!(
            gathering.finish().entries.len(),
            1,
            "the bound itself passes"
        );
    }

    #[test]
    fn a_listing_past_its_bounds_ends_the_run_naming_host_and_directory() {
        let label = Host::remote("h");
        let mut gathering = Gathering::new("h", &label, "dir");
        gathering.names = MAX_LISTED_ENTRIES - 1;
        gathering.take(".".into(), meta(), false).unwrap();
        let past = gathering.take(".".into(), meta(), false).unwrap_err();
        assert!(past.is_fatal());
        let message = past.to_string();
        assert!(message.starts_with("h: the server listed more than 4000000 entries in dir"));

        let mut gathering = Gathering::new("h", &label, "dir");
        gathering.name_bytes = MAX_LISTED_NAME_BYTES - 3;
        gathering.take("abc".into(), meta(), false).unwrap();
        let past = gathering.take("d".into(), meta(), false).unwrap_err();
        assert!(past.to_string().contains("more than 256 MiB of names"));
    }

    #[test]
    fn an_over_long_link_target_fails_that_link() {
        let label = Host::remote("h");
        let fits = "t".repeat(MAX_LINK_TARGET_BYTES);
        assert_eq!(link_target(&label, "l", fits.clone()).unwrap(), fits);
        let over = link_target(&label, "l", fits + "t").unwrap_err();
        assert!(!over.is_fatal());
        assert!(over
            .to_string()
            .starts_with("h:l: the server gives a symlink target"));
    }
}
