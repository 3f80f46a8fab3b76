//! Which file system a path is on, for `-x/--one-file-system` on a side
//! that cannot stat a device number: an SFTP server's `/proc/self/mountinfo`
//! read as a table of mount points and the device each one mounts.
//!
//! A path's file system is the one mounted at its longest mount-point
//! prefix; two directories are on one file system when those devices are
//! equal (a bind mount of the same file system is not a boundary, as
//! rsync's `st_dev` comparison sees it).

/// Mount points and their devices (`major << 32 | minor`), as listed.
#[derive(Debug, Default, Clone)]
pub(crate) struct MountTable {
    mounts: Vec<(String, u64)>,
}

/// The largest mount table read: a few thousand mounts.
pub(crate) const MAX_MOUNTINFO: usize = 4 << 20;

impl MountTable {
    /// Parses `/proc/self/mountinfo` (proc(5)): the third field is the
    /// device `MAJOR:MINOR`, the fifth the mount point with spaces and other
    /// odd bytes written as octal escapes. Lines that do not parse are left.
    pub(crate) fn parse(text: &str) -> MountTable {
        let mounts = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let (major, minor) = fields.get(2)?.split_once(':')?;
                let device = major.parse::<u64>().ok()? << 32 | minor.parse::<u64>().ok()?;
                Some((unescape(fields.get(4)?), device))
            })
            .collect();
        MountTable { mounts }
    }

    /// The device of the file system holding `path` (absolute, without
    /// symlinks): the last-listed mount at its longest prefix, as a later
    /// mount over the same point hides the earlier.
    pub(crate) fn device_of(&self, path: &str) -> Option<u64> {
        self.mounts
            .iter()
            .filter(|(point, _)| is_under(path, point))
            .fold(
                None,
                |best: Option<(&str, u64)>, (point, device)| match best {
                    Some((longest, _)) if longest.len() > point.len() => best,
                    _ => Some((point.as_str(), *device)),
                },
            )
            .map(|(_, device)| device)
    }
}

/// Whether `path` is `point` or inside it.
fn is_under(path: &str, point: &str) -> bool {
    let point = point.trim_end_matches('/');
    match path.strip_prefix(point) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /tmp rw,nosuid shared:20 - tmpfs tmpfs rw
41 40 0:36 / /tmp/with\\040space rw shared:21 - tmpfs tmpfs rw
42 22 253:1 /srv /mnt/bound rw shared:1 - ext4 /dev/vda1 rw
43 40 0:37 / /tmp/over rw - tmpfs tmpfs rw
44 40 0:38 / /tmp/over rw - tmpfs tmpfs rw
";

    #[test]
    fn a_path_is_on_its_longest_mount_point() {
        let table = MountTable::parse(SAMPLE);
        assert_eq!(table.device_of("/"), Some(253 << 32 | 1));
        assert_eq!(table.device_of("/home/me"), Some(253 << 32 | 1));
        assert_eq!(table.device_of("/tmp"), Some(35));
        assert_eq!(table.device_of("/tmp/x/y"), Some(35));
        assert_eq!(table.device_of("/tmpfoo"), Some(253 << 32 | 1));
        assert_eq!(table.device_of("/tmp/with space/a"), Some(36));
    }

    #[test]
    fn a_bind_mount_of_the_same_file_system_is_no_boundary() {
        let table = MountTable::parse(SAMPLE);
        assert_eq!(table.device_of("/mnt/bound/x"), table.device_of("/etc"));
    }

    #[test]
    fn the_last_mount_over_a_point_wins() {
        let table = MountTable::parse(SAMPLE);
        assert_eq!(table.device_of("/tmp/over/f"), Some(38));
    }

    #[test]
    fn lines_that_do_not_parse_are_left_out() {
        let table = MountTable::parse("garbage\n1 2 x:y / /a\n");
        assert_eq!(table.device_of("/a"), None);
    }
}
