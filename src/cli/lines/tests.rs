//! The rules checked item by item; every expected line was printed by
//! rsync 3.5.0 for the same change (`rsync -a OPTIONS src/ dst/`, and over
//! ssh for the `<` and `recv` cases).

use super::*;
use crate::endpoint::{Kind, Meta, Mtime};
use crate::report::{Changes, TimeChange};

const DEST: &str = "dst/";

fn opts(out: Option<&str>, itemize: u8, name: u8) -> LineOptions {
    LineOptions {
        out_format: out.map(str::to_string),
        logging: true,
        itemize,
        name,
        del: name.min(1),
        ..LineOptions::default()
    }
}

fn lines(opts: &LineOptions) -> Lines {
    Lines::new(opts, DEST, &["src/".to_string()])
}

fn meta(kind: Kind, size: u64, mode: u32) -> Meta {
    Meta {
        kind,
        size,
        mtime: Mtime::secs(1_709_622_489),
        mode,
        owner: None,
        inode: None,
    }
}

fn sent(path: &'static str) -> Item<'static> {
    Item {
        size: 6,
        changes: Changes {
            created: true,
            ..Changes::default()
        },
        meta: Some(meta(Kind::File, 6, 0o644)),
        source: None,
        ..Item::new(path, ItemKind::File, Outcome::Sent)
    }
}

fn dir(path: &'static str, outcome: Outcome, changes: Changes) -> Item<'static> {
    Item {
        changes,
        meta: Some(meta(Kind::Dir, 4096, 0o755)),
        ..Item::new(path, ItemKind::Dir, outcome)
    }
}

fn new_dir(path: &'static str) -> Item<'static> {
    let created = Changes {
        created: true,
        ..Changes::default()
    };
    dir(path, Outcome::Created, created)
}

fn link(outcome: Outcome) -> Item<'static> {
    Item {
        changes: Changes {
            created: outcome == Outcome::Created,
            ..Changes::default()
        },
        target: Some("a.txt"),
        ..Item::new("dst/lnk", ItemKind::Symlink, outcome)
    }
}

fn perms_only() -> Item<'static> {
    Item {
        changes: Changes {
            perms: true,
            ..Changes::default()
        },
        ..Item::new("dst/a.txt", ItemKind::File, Outcome::Attributes)
    }
}

fn time_changed() -> Changes {
    Changes {
        time: TimeChange::Preserved,
        ..Changes::default()
    }
}

#[test]
fn verbose_names_what_changes_and_deletes() {
    let v = lines(&opts(None, 0, 1));
    assert_eq!(v.stdout_lines(&sent("dst/a.txt")), ["a.txt"]);
    assert_eq!(v.stdout_lines(&link(Outcome::Created)), ["lnk -> a.txt"]);
    assert_eq!(
        v.stdout_lines(&new_dir("dst/")),
        ["created directory dst", "./"]
    );
    // An existing directory whose time changes is named; a file whose
    // mode alone changes is not.
    let touched = dir("dst/d", Outcome::Skipped, time_changed());
    assert_eq!(v.stdout_lines(&touched), ["d/"]);
    assert!(v.stdout_lines(&perms_only()).is_empty());
    let unchanged = dir("dst/d", Outcome::Skipped, Changes::default());
    assert!(v.stdout_lines(&unchanged).is_empty());
    let gone = Item::new("dst/gone", ItemKind::Dir, Outcome::Deleted);
    assert_eq!(v.stdout_lines(&gone), ["deleting gone/"]);
}

#[test]
fn itemized_lines_list_unchanged_entries_at_the_second_level() {
    let i = lines(&opts(None, 1, 0));
    let ii = lines(&opts(None, 2, 0));
    let same_file = Item {
        meta: Some(meta(Kind::File, 6, 0o644)),
        ..Item::new("dst/a.txt", ItemKind::File, Outcome::Skipped)
    };
    let same_dir = dir("dst/", Outcome::Skipped, Changes::default());
    assert!(i.stdout_lines(&same_file).is_empty());
    assert_eq!(ii.stdout_lines(&same_file), [".f          a.txt"]);
    assert_eq!(ii.stdout_lines(&same_dir), [".d          ./"]);
    assert_eq!(
        ii.stdout_lines(&link(Outcome::Skipped)),
        [".L          lnk -> a.txt"]
    );
    assert_eq!(i.stdout_lines(&perms_only()), [".f...p..... a.txt"]);
    let touched = dir("dst/d", Outcome::Skipped, time_changed());
    assert_eq!(i.stdout_lines(&touched), [".d..t...... d/"]);
    assert_eq!(
        i.stdout_lines(&Item::new("dst/x", ItemKind::File, Outcome::Deleted)),
        ["*deleting   x"]
    );
    // `-vv` lists them only with a format showing %i.
    let vv_itemized = lines(&opts(None, 1, 2));
    assert_eq!(vv_itemized.stdout_lines(&same_file), [".f          a.txt"]);
}

#[test]
fn second_level_names_without_itemizing_say_uptodate() {
    let vv = lines(&opts(None, 0, 2));
    let same_file = Item::new("dst/d/b", ItemKind::File, Outcome::Skipped);
    assert_eq!(vv.stdout_lines(&same_file), ["d/b is uptodate"]);
    assert_eq!(
        vv.stdout_lines(&link(Outcome::Skipped)),
        ["lnk is uptodate"]
    );
    assert_eq!(vv.stdout_lines(&perms_only()), ["a.txt"]);
    let same_dir = dir("dst/d", Outcome::Skipped, Changes::default());
    assert!(vv.stdout_lines(&same_dir).is_empty());
}

#[test]
fn out_format_and_deletions_follow_rsync() {
    let plain = lines(&opts(Some("%n"), 0, 0));
    let gone = Item::new("dst/x", ItemKind::File, Outcome::Deleted);
    assert_eq!(plain.stdout_lines(&gone), ["deleting x"]);
    let op = lines(&opts(Some("%o %n"), 0, 0));
    assert_eq!(op.stdout_lines(&gone), ["del. x"]);
    assert_eq!(op.stdout_lines(&sent("dst/a.txt")), ["send a.txt"]);
    // --out-format without %i: -i is ignored, attributes are not listed.
    let no_i = lines(&opts(Some("%n"), 2, 0));
    assert!(no_i.stdout_lines(&perms_only()).is_empty());
    // Names alone do not announce the directory made for the run.
    assert_eq!(plain.stdout_lines(&new_dir("dst/")), ["./"]);
    let sizes = lines(&opts(Some("%n|%l|%B|%f"), 0, 0));
    assert_eq!(
        sizes.stdout_lines(&new_dir("dst/d")),
        ["d/|4096|rwxr-xr-x|src/d"]
    );
    assert_eq!(
        sizes.stdout_lines(&link(Outcome::Created)),
        ["lnk|5|rwxrwxrwx|src/lnk"]
    );
}

#[test]
fn pulled_and_pushed_items_are_named_as_rsync_names_them() {
    let pulled = Lines::new(
        &LineOptions {
            out_format: Some("%o|%i|%n|%f".into()),
            side: Side::Pull,
            ..LineOptions::default()
        },
        "back/",
        &["/srv/src/".to_string()],
    );
    let item = Item {
        source: Some("/srv/src/d/b"),
        ..sent("back/d/b")
    };
    assert_eq!(pulled.stdout_lines(&item), ["recv|>f+++++++++|d/b|d/b"]);
    let pushed = Lines::new(
        &LineOptions {
            out_format: Some("%o|%i|%n|%f".into()),
            side: Side::Push,
            ..LineOptions::default()
        },
        "/srv/dst",
        &["src".to_string()],
    );
    let item = Item {
        source: Some("src/d/b"),
        ..sent("/srv/dst/src/d/b")
    };
    assert_eq!(
        pushed.stdout_lines(&item),
        ["send|<f+++++++++|src/d/b|src/d/b"]
    );
    assert_eq!(
        pushed.stdout_lines(&new_dir("/srv/dst/src/d")),
        ["send|cd+++++++++|src/d/|src/d"]
    );
    // A file copied to a name of its own keeps the sender's name.
    let renamed = Lines::new(&opts(None, 1, 0), "dst/new.txt", &["src/a.txt".into()]);
    let item = Item {
        source: Some("src/a.txt"),
        ..sent("dst/new.txt")
    };
    assert_eq!(renamed.stdout_lines(&item), [">f+++++++++ a.txt"]);
}

#[test]
fn the_log_gets_rsyncs_share_of_the_lines() {
    let quiet_log = lines(&LineOptions {
        quiet: true,
        ..opts(None, 0, 0)
    });
    assert!(quiet_log.stdout_lines(&sent("dst/a.txt")).is_empty());
    assert_eq!(
        quiet_log.log_lines(&sent("dst/a.txt")),
        [">f+++++++++ a.txt"]
    );
    assert_eq!(
        quiet_log.log_lines(&new_dir("dst/")),
        ["cd+++++++++ ./"],
        "no `created directory` without names shown"
    );
    // Attribute changes only when the output itemizes; unchanged entries
    // only when it lists them.
    assert!(quiet_log.log_lines(&perms_only()).is_empty());
    let i = lines(&opts(None, 1, 0));
    assert_eq!(i.log_lines(&perms_only()), [".f...p..... a.txt"]);
    let same = Item::new("dst/a.txt", ItemKind::File, Outcome::Skipped);
    assert!(i.log_lines(&same).is_empty());
    assert_eq!(
        lines(&opts(None, 2, 0)).log_lines(&same),
        [".f          a.txt"]
    );
    // A dry run logs what it would make, not the files or deletions.
    let dry = lines(&LineOptions {
        dry_run: true,
        ..opts(None, 0, 1)
    });
    let would = Item {
        outcome: Outcome::WouldSend,
        ..sent("dst/a.txt")
    };
    assert!(dry.log_lines(&would).is_empty());
    let gone = Item::new("dst/x", ItemKind::File, Outcome::WouldDelete);
    assert!(dry.log_lines(&gone).is_empty());
    assert_eq!(dry.stdout_lines(&gone), ["deleting x"]);
    let would_link = Item {
        outcome: Outcome::WouldSend,
        ..link(Outcome::Created)
    };
    assert_eq!(dry.log_lines(&would_link), ["cL+++++++++ lnk -> a.txt"]);
    // Its own format, `deleting %n` when it names no operation.
    let custom = lines(&LineOptions {
        log_format: Some("%n".into()),
        ..opts(None, 0, 0)
    });
    let gone = Item::new("dst/x", ItemKind::File, Outcome::Deleted);
    assert_eq!(custom.log_lines(&gone), ["deleting x"]);
}
