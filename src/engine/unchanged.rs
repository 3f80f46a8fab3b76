//! What the plan leaves as it is, reported while planning with
//! [`Outcome::Skipped`]: rsync lists these entries with `-ii` and `-vv`
//! (`.f          name`), and an existing directory whose time or
//! permissions differ even with `-v` (`.d..t...... dir/`). The reporter
//! decides what to show; nothing here changes the plan.

use super::Options;
use crate::endpoint::Meta;
use crate::report::{Changes, Item, ItemKind, Outcome, Reporter, TimeChange};

/// A file or symlink the destination already has as the source has it.
pub(super) fn up_to_date(
    reporter: &dyn Reporter,
    dest: &str,
    meta: &Meta,
    source: &str,
    target: Option<&str>,
) {
    let kind = super::item_kind(meta.kind);
    reporter.finished(&Item {
        size: meta.size,
        meta: Some(*meta),
        source: Some(source),
        target,
        ..Item::new(dest, kind, Outcome::Skipped)
    });
}

/// A source directory the destination has (`old`): the attributes the end
/// of the run sets on it are its changes, as rsync's generator itemizes
/// them before setting them.
pub(super) fn existing_dir(
    reporter: &dyn Reporter,
    opts: &Options,
    dest: &str,
    meta: &Meta,
    old: &Meta,
) {
    let times = opts.times && !opts.omit_dir_times && !old.mtime.same(&meta.mtime);
    let changes = Changes {
        time: match times {
            true => TimeChange::Preserved,
            false => TimeChange::Same,
        },
        perms: opts.perms && old.mode & 0o7777 != meta.mode & 0o7777,
        ..Changes::default()
    }
    .with_owner(opts.owners.change(meta.owner, old.owner));
    reporter.finished(&Item {
        changes,
        meta: Some(*meta),
        ..Item::new(dest, ItemKind::Dir, Outcome::Skipped)
    });
}
