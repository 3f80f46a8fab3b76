//! What both endpoints, the wire protocol and the reports say about a file:
//! its kind, size, time and mode, one directory entry, the attributes a
//! copied file gets, and a range to copy between two files. Plain values, no
//! I/O: every layer above may use them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// A fifo, socket or device node (rsync's specials and devices).
    Node(Node),
    Other,
}

/// A fifo, socket or device node: its type, and for a device its number
/// (0 where the endpoint cannot tell: SFTP v3 carries none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub rdev: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl NodeKind {
    /// The `st_mode` file type bits.
    pub(crate) fn type_bits(self) -> u32 {
        match self {
            NodeKind::Fifo => 0o010_000,
            NodeKind::CharDevice => 0o020_000,
            NodeKind::BlockDevice => 0o060_000,
            NodeKind::Socket => 0o140_000,
        }
    }

    /// A device node (rsync's `--devices`), not a special (`--specials`).
    pub(crate) fn is_device(self) -> bool {
        matches!(self, NodeKind::CharDevice | NodeKind::BlockDevice)
    }

    fn of_type_bits(bits: u32) -> Option<NodeKind> {
        [
            NodeKind::Fifo,
            NodeKind::Socket,
            NodeKind::CharDevice,
            NodeKind::BlockDevice,
        ]
        .into_iter()
        .find(|k| k.type_bits() == bits)
    }
}

impl Kind {
    /// The kind a POSIX `st_mode` (as SFTP carries it) gives, with the
    /// device number `rdev` for a device node.
    pub(crate) fn of_mode(mode: u32, rdev: u64) -> Kind {
        let bits = mode & 0o170_000;
        match bits {
            0o040_000 => Kind::Dir,
            0o100_000 => Kind::File,
            0o120_000 => Kind::Symlink,
            _ => match NodeKind::of_type_bits(bits) {
                Some(kind) => Kind::Node(Node {
                    kind,
                    rdev: if kind.is_device() { rdev } else { 0 },
                }),
                None => Kind::Other,
            },
        }
    }
}

/// A modification time: whole seconds, and nanoseconds where the endpoint
/// carries them (local files have them; SFTP v3 carries whole seconds only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mtime {
    pub secs: i64,
    /// None: the endpoint knows whole seconds only.
    pub nanos: Option<u32>,
}

impl Mtime {
    /// A time known to the second only.
    pub(crate) const fn secs(secs: i64) -> Mtime {
        Mtime { secs, nanos: None }
    }

    pub(crate) const fn precise(secs: i64, nanos: u32) -> Mtime {
        Mtime {
            secs,
            nanos: Some(nanos),
        }
    }

    /// Whether two times are equal at the best resolution both carry:
    /// nanoseconds when both sides have them, else whole seconds.
    pub(crate) fn same(&self, other: &Mtime) -> bool {
        match (self.nanos, other.nanos) {
            (Some(a), Some(b)) => self.secs == other.secs && a == b,
            _ => self.secs == other.secs,
        }
    }

    /// Nanoseconds past the second, 0 where unknown.
    pub(crate) fn subsec_nanos(&self) -> u32 {
        self.nanos.unwrap_or(0)
    }
}

/// What the engine needs to know about a path, as lstat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub mtime: Mtime,
    /// Permission bits (0o7777).
    pub mode: u32,
    /// Numeric owner and group, where the endpoint carries them (local
    /// files, SFTP v3, the helper).
    pub owner: Option<Owner>,
    /// Which inode holds the data, where the endpoint can tell (local
    /// files, the helper; SFTP v3 cannot): how hard links are found.
    pub inode: Option<Inode>,
}

/// Numeric user and group ids, as lstat and SFTP v3 carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Where an entry's data lives: the same `dev` and `ino` are the same file
/// under two names (hard links); `nlink` is how many names it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Inode {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub meta: Meta,
}

/// A directory's entries, sorted by name, and the entries the endpoint
/// could not name: each of those fails alone, never its neighbours.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
    pub unnamed: Vec<Unnamed>,
}

/// An entry a listing shows but ferry cannot take by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unnamed {
    /// The entry as it may be printed (shortened when too long).
    pub shown: String,
    pub why: Unnameable,
}

/// Why a listed entry cannot be taken by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unnameable {
    /// Over SFTP, a name that is not UTF-8: russh-sftp hands it over
    /// mangled, so it cannot be addressed again.
    NotUtf8,
    /// A name of `len` bytes from a server, more than the `limit` ferry
    /// takes for one name.
    TooLong { len: usize, limit: usize },
}

/// How a file is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// Create if missing, keep existing contents (resume, in-place).
    Keep,
    /// Create, failing when the file exists (a lock).
    CreateNew,
}

/// `len` bytes at offset `from` of one file go to offset `to` of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyRange {
    pub from: u64,
    pub to: u64,
    pub len: u64,
}

/// The attributes a copied file gets before it is renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub mode: u32,
    /// None keeps the time of the write (no `--times`).
    pub mtime: Option<Mtime>,
    /// Set first: chown clears the setuid and setgid bits, which the mode
    /// then sets again.
    pub owner: OwnerChange,
}

/// The owner and group an entry is to get (`-o`, `-g`): each None where
/// it keeps what it has. chown(2) takes -1 for "unchanged"; SFTP v3 carries
/// both ids at once, so the same -1 goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OwnerChange {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl OwnerChange {
    /// What chown(2) leaves as it is.
    pub(crate) const KEEP: u32 = u32::MAX;

    pub(crate) fn is_empty(&self) -> bool {
        self.uid.is_none() && self.gid.is_none()
    }

    /// The pair chown(2) and SFTP take, -1 for what is kept.
    pub(crate) fn ids(&self) -> (u32, u32) {
        (
            self.uid.unwrap_or(Self::KEEP),
            self.gid.unwrap_or(Self::KEEP),
        )
    }

    /// Whether a refusal for want of privilege is rsync's silent skip
    /// rather than an error: a change of group alone, which rsync makes
    /// only to a group the receiving user belongs to. Where that cannot be
    /// known beforehand (over SFTP), it is tried, and a refusal is that
    /// skip. An owner is changed only by root, where nothing is refused.
    pub(crate) fn refusal_is_skip(&self) -> bool {
        self.uid.is_none()
    }
}

/// An entry's extended attributes: names and values, sorted by name. POSIX
/// ACLs are among them as Linux keeps them, the values of
/// [`ACL_ACCESS`] and [`ACL_DEFAULT`].
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The xattr holding a file's access ACL (beyond its mode bits).
pub(crate) const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The xattr holding a directory's default ACL, which new entries inherit.
pub(crate) const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Which extended attributes a run copies, as rsync's `-X` and `-A` do
/// (xattrs.c `rsync_xal_get`): with `-X`, the `user.` namespace, and every
/// namespace but `system.` where both sides run as root; with `-A`, the
/// ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct XattrScope {
    /// `-X`.
    pub xattrs: bool,
    /// `-A`.
    pub acls: bool,
    /// `-X` takes `trusted.` and `security.` too (both sides are root).
    pub all_namespaces: bool,
}

impl XattrScope {
    /// Whether a run copies anything of the kind at all.
    pub(crate) fn wanted(&self) -> bool {
        self.xattrs || self.acls
    }

    /// Whether the attribute `name` is copied.
    pub(crate) fn covers(&self, name: &[u8]) -> bool {
        if is_acl(name) {
            return self.acls;
        }
        self.xattrs
            && match self.all_namespaces {
                true => !name.starts_with(b"system."),
                false => name.starts_with(b"user."),
            }
    }

    /// The scope as one byte (the helper protocol).
    pub(crate) fn bits(&self) -> u8 {
        u8::from(self.xattrs) | u8::from(self.acls) << 1 | u8::from(self.all_namespaces) << 2
    }

    pub(crate) fn of_bits(bits: u8) -> XattrScope {
        XattrScope {
            xattrs: bits & 1 != 0,
            acls: bits & 2 != 0,
            all_namespaces: bits & 4 != 0,
        }
    }
}

/// Whether an xattr is one of the ACLs.
pub(crate) fn is_acl(name: &[u8]) -> bool {
    name == ACL_ACCESS || name == ACL_DEFAULT
}

/// Which ids a name lookup is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Of {
    Users,
    Groups,
}

/// Who writes on a side (the receiving one): what owners and groups it
/// may give.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Identity {
    /// Runs as root: may give any owner and group.
    pub root: bool,
    /// The groups it belongs to, where they can be known (locally; not
    /// over SFTP, which cannot list them).
    pub groups: Option<Vec<u32>>,
}

impl Identity {
    /// Whether it may give `gid` (None: cannot tell, so it is tried).
    pub(crate) fn may_give_group(&self, gid: u32) -> bool {
        self.root || self.groups.as_ref().is_none_or(|g| g.contains(&gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_names_its_kind_and_a_device_keeps_its_number() {
        assert_eq!(Kind::of_mode(0o100_644, 9), Kind::File);
        assert_eq!(Kind::of_mode(0o040_755, 0), Kind::Dir);
        let device = Kind::of_mode(0o020_600, 0x103);
        let node = |kind, rdev| Kind::Node(Node { kind, rdev });
        assert_eq!(device, node(NodeKind::CharDevice, 0x103));
        assert_eq!(Kind::of_mode(0o060_600, 7), node(NodeKind::BlockDevice, 7));
        // A fifo or socket has no number, whatever lstat says.
        assert_eq!(Kind::of_mode(0o010_644, 7), node(NodeKind::Fifo, 0));
        assert_eq!(Kind::of_mode(0o140_755, 7), node(NodeKind::Socket, 0));
        assert_eq!(Kind::of_mode(0o170_000, 0), Kind::Other);
    }

    #[test]
    fn an_xattr_scope_covers_what_rsync_copies() {
        let x = XattrScope {
            xattrs: true,
            ..XattrScope::default()
        };
        assert!(x.covers(b"user.a") && !x.covers(b"trusted.a") && !x.covers(ACL_ACCESS));
        let root = XattrScope {
            all_namespaces: true,
            ..x
        };
        assert!(root.covers(b"trusted.a") && root.covers(b"security.capability"));
        assert!(!root.covers(b"system.nfs4_acl") && !root.covers(ACL_DEFAULT));
        let acls = XattrScope {
            acls: true,
            ..XattrScope::default()
        };
        assert!(acls.covers(ACL_ACCESS) && acls.covers(ACL_DEFAULT) && !acls.covers(b"user.a"));
        for scope in [x, root, acls] {
            assert_eq!(XattrScope::of_bits(scope.bits()), scope);
        }
    }
}
