//! Which finished items get a line on stdout and in `--log-file`, and what
//! the line says. One path for `-v` (`%n%L`), `-i` (`%i %n%L`),
//! `--out-format` and `--log-file-format`, with rsync 3.5's rules for a
//! client (log.c `log_item`, `maybe_log_item`, `log_delete`; generator.c
//! and rsync.c for "is uptodate"):
//!
//! * a copied file: stdout with any format; the log file, except in a dry
//!   run;
//! * a created directory or symlink, and an existing directory whose time
//!   or permissions change: stdout with any format, and the log file;
//! * a file or link whose attributes alone change: only when the stdout
//!   format shows `%i` (then the log file too);
//! * an unchanged entry: when the stdout format shows `%i` and `-ii` or
//!   `--info=name2` (`-vv`) asks (the log file too if its format shows
//!   `%i`); with `name2` and no `%i`, `NAME is uptodate` on stdout;
//! * a deletion: stdout with any format or `--info=del` (the format when it
//!   names `%o` or `%i`, else `deleting %n`); the log file likewise, except
//!   in a dry run;
//! * `created directory DEST` before the destination's own line, when
//!   names are shown (`--info=name`) or the format shows `%i`.
//!
//! `-q` silences stdout, not the log file.

use std::borrow::Cow;
use std::time::SystemTime;

use super::outformat::{
    LineContext, Operation, OutFormat, ITEMIZE_FORMAT, LOG_FILE_FORMAT, VERBOSE_FORMAT,
};
use super::progress::itemize;
use crate::endpoint::{base_name, join, parent};
use crate::report::{printable, relative, Item, ItemKind, Outcome};

/// Which way the run goes, as far as the lines care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Side {
    /// Both ends here: rsync's client sends, and itemizes with `>`.
    #[default]
    Local,
    /// This side sends to a remote host (`<`, `send`).
    Push,
    /// This side receives (`>`, `recv`, names as the receiver has them).
    Pull,
}

/// What decides the lines, as the options say.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineOptions {
    /// `--out-format`.
    pub out_format: Option<String>,
    /// `--log-file` is given: the log file's format is
    /// `--log-file-format`, or `%i %n%L`.
    pub logging: bool,
    pub log_format: Option<String>,
    /// `-i` given this many times.
    pub itemize: u8,
    /// `--info=name` and `--info=del` levels (`-v` implies 1, `-vv` name 2).
    pub name: u8,
    pub del: u8,
    pub quiet: bool,
    pub dry_run: bool,
    pub side: Side,
    /// `-o`, `-g`: `%U` and `%G` show the ids (rsync prints 0 and
    /// `DEFAULT` without them).
    pub owner: bool,
    pub group: bool,
}

/// The line rules of one run.
#[derive(Debug, Clone)]
pub(crate) struct Lines {
    /// stdout's format: `--out-format`, else `%i %n%L` with `-i`, else
    /// `%n%L` with names on; None shows no items.
    out: Option<OutFormat>,
    log: Option<OutFormat>,
    itemize: u8,
    name: u8,
    del: u8,
    quiet: bool,
    dry_run: bool,
    side: Side,
    owner: bool,
    group: bool,
    /// The destination as given, which names print relative to.
    dest_root: String,
    /// Where each source argument's names start, for `%f`.
    roots: Vec<SourceRoot>,
    pid: u32,
}

/// A source argument as `%f` sees it: names under it are `root/name`.
#[derive(Debug, Clone)]
struct SourceRoot {
    root: String,
    /// The first component of its names (None for `dir/`, whose contents
    /// land in the destination itself).
    top: Option<String>,
}

/// What kind of line an item calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A regular file copied (or, in a dry run, to be).
    Transfer,
    /// A directory or symlink made.
    Created,
    /// The destination directory made for the run, not from the source.
    ImpliedDest,
    /// An existing directory whose time or permissions are set.
    DirAttrs,
    /// A file or link whose attributes alone are set.
    Attrs,
    Unchanged,
    Deletion,
}

fn classify(item: &Item<'_>) -> Class {
    let dir = item.kind == ItemKind::Dir;
    match item.outcome {
        Outcome::Deleted | Outcome::WouldDelete => Class::Deletion,
        Outcome::Skipped if dir && changed(item) => Class::DirAttrs,
        Outcome::Skipped => Class::Unchanged,
        Outcome::Attributes => Class::Attrs,
        // From a basis DIR: rsync names it with -v only when its
        // attributes had to change, else as an unchanged file.
        Outcome::Linked | Outcome::Copied if changed(item) => Class::Transfer,
        Outcome::Linked | Outcome::Copied => Class::Unchanged,
        Outcome::Sent | Outcome::Resumed | Outcome::Delta => Class::Transfer,
        Outcome::WouldSend if item.kind == ItemKind::File => Class::Transfer,
        Outcome::Created | Outcome::WouldSend if dir && item.meta.is_none() => Class::ImpliedDest,
        Outcome::Created | Outcome::WouldSend => Class::Created,
    }
}

fn changed(item: &Item<'_>) -> bool {
    let c = item.changes;
    c.created
        || c.checksum
        || c.size
        || c.perms
        || c.owner
        || c.group
        || c.time != Default::default()
}

impl Lines {
    /// The rules for `opts`, with names relative to `dest` and `%f` from
    /// the `sources` as given.
    pub(crate) fn new(opts: &LineOptions, dest: &str, sources: &[String]) -> Lines {
        let out = match &opts.out_format {
            Some(format) => Some(OutFormat::parse(format)),
            None if opts.itemize > 0 => Some(OutFormat::parse(ITEMIZE_FORMAT)),
            None if opts.name > 0 => Some(OutFormat::parse(VERBOSE_FORMAT)),
            None => None,
        };
        let log = opts
            .logging
            .then(|| OutFormat::parse(opts.log_format.as_deref().unwrap_or(LOG_FILE_FORMAT)));
        Lines {
            out,
            log,
            itemize: opts.itemize,
            name: opts.name,
            del: opts.del,
            quiet: opts.quiet,
            dry_run: opts.dry_run,
            side: opts.side,
            owner: opts.owner,
            group: opts.group,
            dest_root: dest.to_string(),
            roots: sources.iter().map(|s| source_root(s)).collect(),
            pid: std::process::id(),
        }
    }

    /// Rules that show nothing (`ferry demo` narrates on its own).
    pub(crate) fn none() -> Lines {
        Lines::new(&LineOptions::default(), "", &[])
    }

    /// Whether the stdout format is in force with `%i`: what rsync calls
    /// itemizing, which decides attribute-only and unchanged lines.
    fn out_itemizes(&self) -> bool {
        self.out.as_ref().is_some_and(OutFormat::itemizes)
    }

    fn lists_unchanged(&self) -> bool {
        self.out
            .as_ref()
            .is_some_and(|out| out.lists_unchanged(self.itemize, self.name))
    }

    /// The lines for stdout (none with `-q`).
    pub(crate) fn stdout_lines(&self, item: &Item<'_>) -> Vec<String> {
        if self.quiet {
            return Vec::new();
        }
        let class = classify(item);
        let mut lines: Vec<String> = self.announcement(item, class).into_iter().collect();
        let line = match class {
            Class::Deletion => self.stdout_deletion(item),
            Class::Unchanged | Class::Attrs => self.stdout_unchanged(item, class),
            Class::Transfer | Class::Created | Class::DirAttrs => {
                self.out.as_ref().map(|out| self.render(out, item))
            }
            Class::ImpliedDest => None,
        };
        lines.extend(line);
        lines
    }

    /// The lines for the log file, without rsync's prefix (none without
    /// `--log-file`).
    pub(crate) fn log_lines(&self, item: &Item<'_>) -> Vec<String> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        let class = classify(item);
        let mut lines: Vec<String> = self.announcement(item, class).into_iter().collect();
        let wanted = match class {
            Class::Deletion | Class::Transfer => !self.dry_run,
            Class::Created | Class::DirAttrs => true,
            Class::Attrs => self.out_itemizes(),
            Class::Unchanged => self.lists_unchanged() && log.itemizes(),
            Class::ImpliedDest => false,
        };
        if wanted {
            lines.push(match class {
                Class::Deletion => self.render_deletion(log, item),
                _ => self.render(log, item),
            });
        }
        lines
    }

    /// rsync's `created directory DEST`, said when the run makes its
    /// destination directory and names are shown.
    fn announcement(&self, item: &Item<'_>, class: Class) -> Option<String> {
        let root_made = match class {
            Class::ImpliedDest => true,
            Class::Created => item.kind == ItemKind::Dir && self.name_of(item) == ".",
            // Made where a --link-dest (and co.) DIR has it: still made.
            Class::Unchanged | Class::Transfer if item.outcome == Outcome::Copied => {
                item.kind == ItemKind::Dir && self.name_of(item) == "."
            }
            _ => false,
        };
        if !root_made || !(self.name > 0 || self.out_itemizes()) {
            return None;
        }
        let dest = match self.dest_root.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        Some(format!("created directory {}", printable(dest)))
    }

    fn stdout_deletion(&self, item: &Item<'_>) -> Option<String> {
        // Without a format of its own, a deletion reads `deleting %n`.
        let plain;
        let format = match &self.out {
            Some(out) => out,
            None if self.del > 0 => {
                plain = OutFormat::parse("%n");
                &plain
            }
            None => return None,
        };
        Some(self.render_deletion(format, item))
    }

    /// An unchanged entry, or one whose attributes alone change.
    fn stdout_unchanged(&self, item: &Item<'_>, class: Class) -> Option<String> {
        let out = self.out.as_ref()?;
        let listed = match class {
            Class::Unchanged => self.lists_unchanged(),
            _ => out.itemizes(),
        };
        if listed {
            return Some(self.render(out, item));
        }
        // rsync's generator and set_file_attrs say this at name2 when the
        // format has no %i; directories are not mentioned.
        if out.itemizes() || self.name < 2 || item.kind == ItemKind::Dir {
            return None;
        }
        let name = self.name_of(item);
        Some(match class {
            Class::Unchanged => format!("{} is uptodate", printable(&name)),
            _ => printable(&name).into_owned(),
        })
    }

    fn render(&self, format: &OutFormat, item: &Item<'_>) -> String {
        let name = self.name_of(item);
        let full = self.full_name_of(item, &name);
        let code = itemize(item, self.side == Side::Push);
        // rsync names the leader of a link it makes, not of one it finds.
        let made = item.outcome != Outcome::Skipped;
        let leader = item.hard_link.filter(|_| made).map(|path| {
            relative(path, &self.dest_root, false)
                .trim_end_matches('/')
                .to_string()
        });
        let mut line = self.context(item, &name, &full, &code);
        line.hard_link = leader.as_deref();
        format.render(&line)
    }

    /// A deletion's line: rsync knows only its name and whether it was a
    /// directory then, and, where this side is the receiver (a pull), its
    /// permissions (`%B`).
    fn render_deletion(&self, format: &OutFormat, item: &Item<'_>) -> String {
        let name = self.name_of(item);
        let is_dir = item.kind == ItemKind::Dir;
        let mut line = LineContext::deleted(&name, is_dir, SystemTime::now(), self.pid);
        if self.group {
            line.gid = Some(0);
        }
        if let (Side::Pull, Some(meta)) = (self.side, item.meta) {
            line.mode = meta.mode;
        }
        format.render_deletion(&line)
    }

    /// What rsync's formatter knows of an item that is not a deletion.
    fn context<'a>(
        &self,
        item: &'a Item<'a>,
        name: &'a str,
        full: &'a str,
        code: &'a str,
    ) -> LineContext<'a> {
        let meta = item.meta;
        let length = match item.kind {
            ItemKind::File => meta.map_or(item.size, |m| m.size),
            ItemKind::Dir => meta.map_or(0, |m| m.size),
            ItemKind::Symlink => item.target.map_or(0, |t| t.len() as u64),
            ItemKind::Device | ItemKind::Special => 0,
        };
        let default_mode = match item.kind {
            ItemKind::Symlink => 0o777,
            _ => 0,
        };
        LineContext {
            operation: match self.side {
                Side::Pull => Operation::Recv,
                _ => Operation::Send,
            },
            name,
            full_name: full,
            is_dir: item.kind == ItemKind::Dir,
            mode: meta.map_or(default_mode, |m| m.mode),
            symlink_target: item.target,
            hard_link: None,
            itemize: code,
            length,
            transferred: item.sent,
            checksum_bytes: 0,
            checksum: None,
            mtime: meta.map_or(0, |m| m.mtime.secs),
            uid: meta
                .and_then(|m| m.owner)
                .filter(|_| self.owner)
                .map(|o| o.uid),
            gid: meta
                .and_then(|m| m.owner)
                .filter(|_| self.group)
                .map(|o| o.gid),
            now: SystemTime::now(),
            pid: self.pid,
        }
    }

    /// `%n` without the trailing slash: the path under the destination, `.`
    /// for the destination itself. A file copied to a name the destination
    /// gives it keeps the sender's name, as in rsync.
    fn name_of(&self, item: &Item<'_>) -> String {
        let is_dir = item.kind == ItemKind::Dir;
        let names_the_file =
            item.path.trim_end_matches('/') == self.dest_root.trim_end_matches('/');
        if let (false, true, Some(source)) = (is_dir, names_the_file, item.source) {
            return base_name(source).to_string();
        }
        relative(item.path, &self.dest_root, is_dir)
            .trim_end_matches('/')
            .to_string()
    }

    /// `%f`: the sender's path. Pulling, the receiver's name is all this
    /// side has, which is what rsync's receiver shows too.
    fn full_name_of<'a>(&self, item: &Item<'a>, name: &str) -> Cow<'a, str> {
        if self.side == Side::Pull {
            return Cow::Owned(name.to_string());
        }
        if let Some(source) = item.source {
            return Cow::Borrowed(source.trim_end_matches('/'));
        }
        let first = name.split('/').next();
        let root = self
            .roots
            .iter()
            .find(|r| r.top.is_some() && r.top.as_deref() == first)
            .or_else(|| self.roots.iter().find(|r| r.top.is_none()));
        Cow::Owned(match root {
            Some(root) => join(&root.root, name),
            None => name.to_string(),
        })
    }
}

/// `dir/` names its contents from `dir`; `dir` and `file` name themselves
/// from their parent.
fn source_root(source: &str) -> SourceRoot {
    let trimmed = source.trim_end_matches('/');
    if source.ends_with('/') && !trimmed.is_empty() {
        return SourceRoot {
            root: trimmed.to_string(),
            top: None,
        };
    }
    SourceRoot {
        root: parent(source).to_string(),
        top: Some(base_name(source).to_string()),
    }
}

#[cfg(test)]
mod tests;
