//! Which source entries a sync looks at and which it leaves as they are:
//! rsync's quick check (size and modification time) and the options that
//! change it (`--existing`, `--ignore-existing`, `--max-size`,
//! `--min-size`, `--update`, `--size-only`, `--ignore-times`,
//! `--modify-window`), in the order rsync's generator applies them.

use crate::endpoint::{Kind, Meta, Mtime};

/// How two modification times are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TimeWindow {
    /// At the best resolution both sides carry: nanoseconds where both have
    /// them (rsync's `--modify-window=-1`), whole seconds otherwise. A
    /// file whose time differs at the resolution available is never
    /// skipped (rsync's default compares whole seconds only).
    #[default]
    Best,
    /// Whole seconds, equal when at most this many apart (rsync's
    /// `--modify-window=N`; 0 is whole seconds).
    Seconds(u32),
}

impl TimeWindow {
    /// rsync's `--modify-window` value.
    pub(crate) fn from_rsync(window: i64) -> TimeWindow {
        match u32::try_from(window) {
            Ok(seconds) => TimeWindow::Seconds(seconds),
            Err(_) => TimeWindow::Best,
        }
    }

    pub(crate) fn same(self, a: &Mtime, b: &Mtime) -> bool {
        match self {
            TimeWindow::Best => a.same(b),
            TimeWindow::Seconds(window) => a.secs.abs_diff(b.secs) <= u64::from(window),
        }
    }

    /// `-u`'s test: whether the destination's time `dst` says it is newer
    /// than the source's `src`.
    fn newer_there(self, dst: &Mtime, src: &Mtime) -> bool {
        match self {
            TimeWindow::Best => match (dst.nanos, src.nanos) {
                (Some(a), Some(b)) => (dst.secs, a) > (src.secs, b),
                _ => dst.secs > src.secs,
            },
            // rsync's generator: `file->modtime - st_mtime < modify_window`.
            TimeWindow::Seconds(window) => src.secs - dst.secs < i64::from(window),
        }
    }
}

/// The options that decide which entries are sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Selection {
    /// `--existing`: nothing new is created (a missing directory is not
    /// entered either).
    pub existing_only: bool,
    /// `--ignore-existing`: nothing already there is touched, directories
    /// aside, which are still entered.
    pub ignore_existing: bool,
    /// `--max-size`, `--min-size`: regular files outside are left out.
    pub max_size: Option<u64>,
    pub min_size: Option<u64>,
    /// `-u`: a file newer in the destination is left as it is.
    pub update: bool,
    /// `--size-only`: a file of the same size is current, whatever its time.
    pub size_only: bool,
    /// `-I`: a file of the same size and time is sent anyway.
    pub ignore_times: bool,
    pub window: TimeWindow,
}

/// What the quick check says of a regular file that the destination has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quick {
    /// Up to date: sizes (and times) match.
    Current,
    /// To be sent.
    Differs,
    /// Sizes match; `--checksum` decides by content.
    CompareContents,
}

/// Why an entry is left as it is before any comparison (rsync's
/// `--info=skip` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    NotCreating,
    Exists,
    OverMaxSize,
    UnderMinSize,
    Newer,
}

impl Selection {
    /// Whether the options leave the source entry `src` alone, given what
    /// the destination has under its name (rsync's generator, before the
    /// quick check).
    pub(crate) fn skips(&self, src: &Meta, there: Option<&Meta>) -> Option<Skip> {
        let is_dir = src.kind == Kind::Dir;
        match there {
            None if self.existing_only => return Some(Skip::NotCreating),
            Some(old) if self.ignore_existing && !(is_dir && old.kind == Kind::Dir) => {
                return Some(Skip::Exists)
            }
            _ => {}
        }
        if src.kind != Kind::File {
            return None;
        }
        if self.max_size.is_some_and(|max| src.size > max) {
            return Some(Skip::OverMaxSize);
        }
        if self.min_size.is_some_and(|min| src.size < min) {
            return Some(Skip::UnderMinSize);
        }
        let newer_there = there.is_some_and(|old| {
            old.kind == Kind::File && self.window.newer_there(&old.mtime, &src.mtime)
        });
        (self.update && newer_there).then_some(Skip::Newer)
    }

    /// rsync's quick check of a regular file against the destination's.
    pub(crate) fn quick_check(&self, src: &Meta, old: &Meta, checksum: bool) -> Quick {
        if old.kind != Kind::File || old.size != src.size {
            return Quick::Differs;
        }
        if checksum {
            return Quick::CompareContents;
        }
        if self.size_only {
            return Quick::Current;
        }
        if self.ignore_times || !self.window.same(&old.mtime, &src.mtime) {
            return Quick::Differs;
        }
        Quick::Current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, secs: i64, nanos: u32) -> Meta {
        Meta {
            kind: Kind::File,
            size,
            mtime: Mtime::precise(secs, nanos),
            mode: 0o644,
            owner: None,
            inode: None,
        }
    }

    #[test]
    fn the_quick_check_compares_at_the_best_resolution_by_default() {
        let s = Selection::default();
        let src = file(10, 100, 5);
        assert_eq!(
            s.quick_check(&src, &file(10, 100, 5), false),
            Quick::Current
        );
        // rsync's default would call this current (whole seconds).
        assert_eq!(
            s.quick_check(&src, &file(10, 100, 6), false),
            Quick::Differs
        );
        let remote = Meta {
            mtime: Mtime::secs(100),
            ..src
        };
        assert_eq!(s.quick_check(&src, &remote, false), Quick::Current);
        let zero = Selection {
            window: TimeWindow::from_rsync(0),
            ..s
        };
        assert_eq!(
            zero.quick_check(&src, &file(10, 100, 6), false),
            Quick::Current
        );
        let two = Selection {
            window: TimeWindow::from_rsync(2),
            ..s
        };
        assert_eq!(
            two.quick_check(&src, &file(10, 102, 0), false),
            Quick::Current
        );
        assert_eq!(
            two.quick_check(&src, &file(10, 103, 0), false),
            Quick::Differs
        );
    }

    #[test]
    fn size_only_ignore_times_and_checksum() {
        let src = file(10, 100, 0);
        let older = file(10, 50, 0);
        let size_only = Selection {
            size_only: true,
            ..Selection::default()
        };
        assert_eq!(size_only.quick_check(&src, &older, false), Quick::Current);
        assert_eq!(
            size_only.quick_check(&src, &file(11, 100, 0), false),
            Quick::Differs
        );
        let ignore = Selection {
            ignore_times: true,
            ..Selection::default()
        };
        assert_eq!(ignore.quick_check(&src, &src, false), Quick::Differs);
        assert_eq!(
            Selection::default().quick_check(&src, &older, true),
            Quick::CompareContents
        );
    }

    #[test]
    fn skips_follow_rsyncs_generator() {
        let src = file(10, 100, 0);
        let dir = Meta {
            kind: Kind::Dir,
            ..src
        };
        let existing_only = Selection {
            existing_only: true,
            ..Selection::default()
        };
        assert_eq!(existing_only.skips(&src, None), Some(Skip::NotCreating));
        assert_eq!(existing_only.skips(&dir, None), Some(Skip::NotCreating));
        assert_eq!(existing_only.skips(&src, Some(&src)), None);
        let ignore = Selection {
            ignore_existing: true,
            ..Selection::default()
        };
        assert_eq!(ignore.skips(&src, Some(&file(1, 1, 0))), Some(Skip::Exists));
        assert_eq!(ignore.skips(&dir, Some(&dir)), None);
        assert_eq!(ignore.skips(&dir, Some(&src)), Some(Skip::Exists));
        let sizes = Selection {
            max_size: Some(9),
            min_size: Some(2),
            ..Selection::default()
        };
        assert_eq!(sizes.skips(&src, None), Some(Skip::OverMaxSize));
        assert_eq!(sizes.skips(&file(1, 0, 0), None), Some(Skip::UnderMinSize));
        assert_eq!(sizes.skips(&dir, None), None);
        let update = Selection {
            update: true,
            ..Selection::default()
        };
        assert_eq!(
            update.skips(&src, Some(&file(3, 101, 0))),
            Some(Skip::Newer)
        );
        assert_eq!(update.skips(&src, Some(&file(3, 100, 0))), None);
        assert_eq!(update.skips(&src, Some(&file(3, 99, 0))), None);
        assert_eq!(update.skips(&src, Some(&dir)), None);
        // A nanosecond newer where both sides have them.
        assert_eq!(
            update.skips(&src, Some(&file(3, 100, 1))),
            Some(Skip::Newer)
        );
        // rsync's window: not newer by at least 2 s is skipped.
        let window = Selection {
            window: TimeWindow::from_rsync(2),
            ..update
        };
        assert_eq!(window.skips(&src, Some(&file(3, 99, 0))), Some(Skip::Newer));
        assert_eq!(window.skips(&src, Some(&file(3, 98, 0))), None);
    }
}
