//! rsync's filter rules: `--exclude`, `--include`, their `-from` files,
//! `--filter`, `-F` and `-C`, deciding which paths a sync sees (the
//! sender's side) and which destination entries `--delete` spares (the
//! receiver's side); and the `--files-from` list.
//!
//! Rules are checked in order and the first that matches decides; a path
//! no rule matches is included. Patterns are matched against the path
//! from the transfer root (`pattern`); rule texts are read as rsync reads
//! them (`parse`). Per-directory filter files (`dir-merge`) are read by the
//! planner as it walks the source: [`Scope::enter_dir`] says which files it
//! needs for a directory and takes their contents (`scope`).

mod cvs;
mod lists;
mod parse;
mod pattern;
pub(crate) use pattern::wildmatch;
pub(crate) mod place;
mod scope;

use std::sync::Arc;

use crate::error::{Error, Result};
pub(crate) use cvs::CvsEnv;
pub(crate) use lists::{FilesFrom, ListFormat, ListReader, Listed};
use parse::{Parsed, Rule, RuleFlags, Sides, Syntax, Template};
pub(crate) use pattern::Pattern;
pub(crate) use scope::{Entered, FileSet, Need, Scope};

/// Which option a filter rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterFlag {
    Exclude,
    Include,
    ExcludeFrom,
    IncludeFrom,
    Filter,
    /// `-F` (value ignored): the first is `--filter='dir-merge
    /// /.rsync-filter'`, the second `--filter='- .rsync-filter'`, any more
    /// nothing.
    RsyncFilter,
    /// `-0`/`--from0` (value ignored): the `-from` and merge files named
    /// after it are NUL-separated, as rsync reads them while it parses the
    /// command line.
    From0,
    /// `--no-from0` (value ignored): they are line-separated again.
    NoFrom0,
}

/// One filter option as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterArg {
    pub flag: FilterFlag,
    pub value: String,
}

/// Whose question a rule answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Does the walk of the source see this path (hide/show)?
    Sender,
    /// May `--delete` remove this destination entry (protect/risk)?
    Receiver,
    /// The same, inside a directory that is itself being deleted, where
    /// perishable (`p`) rules do not count.
    Deleting,
}

/// The options besides the rules themselves that shape the filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterOptions {
    /// `--delete-excluded`: rules that name no side speak to the sender
    /// only.
    pub delete_excluded: bool,
    /// `-C`/`--cvs-exclude`: `:C` and `-C` after all the other rules,
    /// wherever `-C` stood.
    pub cvs_exclude: bool,
    /// What the CVS ignore rules read besides rsync's list; None: this
    /// process's `$HOME/.cvsignore` and `$CVSIGNORE`, read when a `-C`
    /// rule needs them.
    pub cvs_env: Option<CvsEnv>,
    /// Rules rsync adds of its own, in `--filter` syntax (`--backup`'s
    /// `P *~`, a partial directory's exclude): after the given rules and
    /// before `-C`'s, where rsync adds them.
    pub implied: Vec<String>,
}

/// The global rule list, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    entries: Vec<Entry>,
    delete_excluded: bool,
    /// `--from0` as it stands after the options: per-directory files are
    /// NUL-separated.
    from0: bool,
    /// The global CVS ignore rules, made by the first `-C` rule with its
    /// flags (rsync makes them once).
    cvs: Option<Arc<[Rule]>>,
    cvs_env: Option<Arc<CvsEnv>>,
}

/// One item of a rule list.
#[derive(Debug, Clone)]
enum Entry {
    Rule(Rule),
    /// Where the rules of the per-directory files of one name go.
    DirMerge(Arc<DirMerge>),
    /// `-C`: where the global CVS ignore rules go.
    Cvs(Arc<[Rule]>),
}

/// A `dir-merge` rule: the file name looked for in every directory, and
/// how its lines are read.
#[derive(Debug)]
struct DirMerge {
    /// The file's name, without the path it may have been given with.
    name: String,
    /// Where a name given with a path starts rsync's scan of the parent
    /// directories.
    start: Option<Start>,
    template: Template,
}

/// The directory a dir-merge rule's path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    /// As written ("/", "../", "sub/"): from the first directory the rule
    /// takes effect in.
    Given(String),
    /// Already resolved: from the transfer root ("", "a", "..") or absolute.
    At(String),
}

impl DirMerge {
    /// The rule for `file`; `from` is the directory (from the transfer
    /// root) a path in `file` is taken from when it is known already.
    /// `scanning` is rsync's reading of a file above the first directory,
    /// where every name counts as given with that file's directory.
    fn new(
        file: &str,
        template: Template,
        from: Option<&str>,
        scanning: bool,
    ) -> Result<DirMerge, String> {
        let (dir, name) = match file.rfind('/') {
            Some(i) => (Some(&file[..=i]), &file[i + 1..]),
            None => (None, file),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(format!(
                "dir-merge {file:?}: give a file name (such as .rules or /.rsync-filter), which \
                 is looked for in every directory"
            ));
        }
        let start = match (from, dir) {
            (Some(from), Some(_)) => Some(Start::At(resolved_dir(from, file))),
            (Some(from), None) if scanning => Some(Start::At(resolved_dir(from, file))),
            (None, Some(dir)) => Some(Start::Given(dir.to_string())),
            _ => None,
        };
        Ok(DirMerge {
            name: name.to_string(),
            start,
            template,
        })
    }
}

fn resolved_dir(from: &str, file: &str) -> String {
    let full = place::resolve(from, file);
    place::split(&full).0.to_string()
}

/// Merge files within merge files, at most this deep (a file that merges
/// itself would otherwise never end).
const MAX_MERGE_DEPTH: usize = 16;

impl Filter {
    /// The rules of the filter options, reading the files they name (`-`
    /// is standard input). With `delete_excluded`, rules that name no side
    /// speak to the sender only, as in rsync.
    #[cfg(test)]
    pub(crate) fn from_args(
        args: &[FilterArg],
        delete_excluded: bool,
        lists: &mut ListReader,
    ) -> Result<Filter> {
        let options = FilterOptions {
            delete_excluded,
            ..FilterOptions::default()
        };
        Filter::with_options(args, &options, lists)
    }

    /// The rules of the filter options, then (with `-C`) the CVS ones.
    /// `lists` follows `--from0` as the `FilterFlag::From0` and `NoFrom0`
    /// markers say; per-directory files use its final state, which
    /// `--files-from` should be read with after this.
    pub(crate) fn with_options(
        args: &[FilterArg],
        options: &FilterOptions,
        lists: &mut ListReader,
    ) -> Result<Filter> {
        let mut builder = Builder {
            filter: Filter {
                delete_excluded: options.delete_excluded,
                cvs_env: options.cvs_env.clone().map(Arc::new),
                ..Filter::default()
            },
            lists,
            merging: Vec::new(),
            rsync_filters: 0,
        };
        for arg in args {
            builder.add_arg(arg)?;
        }
        let plain = Template::default();
        for rule in &options.implied {
            builder.add(rule, Syntax::Full, &plain, "an option's own rule")?;
        }
        if options.cvs_exclude {
            // rsync appends these after every other rule (send_filter_list).
            builder.add(":C", Syntax::Full, &Template::default(), "-C")?;
            builder.add("-C", Syntax::Full, &Template::default(), "-C")?;
        }
        builder.filter.from0 = builder.lists.from0();
        Ok(builder.filter)
    }

    /// Whether the rules read per-directory files: the planner should then
    /// give each walk the absolute path of its transfer root
    /// ([`Scope::at_root_path`]), which files named with a path (`-F`'s
    /// `/.rsync-filter`) are looked for above.
    pub(crate) fn has_dir_merges(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::DirMerge(_)))
    }

    /// The global CVS ignore rules for a `-C` rule with `flags`: those the
    /// first `-C` made, else new ones.
    fn cvs_rules(&self, flags: RuleFlags) -> Arc<[Rule]> {
        if let Some(rules) = &self.cvs {
            return Arc::clone(rules);
        }
        match &self.cvs_env {
            Some(env) => cvs::cvs_rules(flags, env, self.from0),
            None => cvs::cvs_rules(flags, &CvsEnv::from_process(), self.from0),
        }
    }
}

/// Adds the filter options' rules to a [`Filter`].
struct Builder<'a> {
    filter: Filter,
    lists: &'a mut ListReader,
    /// The merge files being read, outermost first.
    merging: Vec<String>,
    /// The `-F` options seen.
    rsync_filters: usize,
}

impl Builder<'_> {
    fn add_arg(&mut self, arg: &FilterArg) -> Result<()> {
        let value = arg.value.as_str();
        let plain = Template::default();
        match arg.flag {
            FilterFlag::Exclude => {
                self.add(value, Syntax::Old { include: false }, &plain, "--exclude")
            }
            FilterFlag::Include => {
                self.add(value, Syntax::Old { include: true }, &plain, "--include")
            }
            FilterFlag::Filter => self.add(value, Syntax::Full, &plain, "--filter"),
            FilterFlag::ExcludeFrom => self.add_from(value, false),
            FilterFlag::IncludeFrom => self.add_from(value, true),
            FilterFlag::RsyncFilter => self.rsync_filter(),
            FilterFlag::From0 | FilterFlag::NoFrom0 => {
                self.lists.set_from0(arg.flag == FilterFlag::From0);
                Ok(())
            }
        }
    }

    /// `--exclude-from`/`--include-from`: one old-style rule a record.
    fn add_from(&mut self, name: &str, include: bool) -> Result<()> {
        let option = match include {
            true => "--include-from",
            false => "--exclude-from",
        };
        let plain = Template::default();
        let data = self.lists.read(name, option)?;
        for (n, line) in rule_texts(&data, &plain, self.lists.from0()) {
            let whence = format!("{option} {name}, line {n}");
            self.add(&line, Syntax::Old { include }, &plain, &whence)?;
        }
        Ok(())
    }

    /// `-F`, as rsync's options.c spells it out.
    fn rsync_filter(&mut self) -> Result<()> {
        self.rsync_filters += 1;
        let plain = Template::default();
        match self.rsync_filters {
            1 => self.add(": /.rsync-filter", Syntax::Full, &plain, "-F"),
            2 => self.add("- .rsync-filter", Syntax::Full, &plain, "-F -F"),
            _ => Ok(()),
        }
    }

    /// Adds one rule's text; `whence` says where it came from, for errors.
    fn add(&mut self, text: &str, syntax: Syntax, template: &Template, whence: &str) -> Result<()> {
        let ctx = parse::Context {
            delete_excluded: self.filter.delete_excluded,
            ..parse::Context::default()
        };
        let parsed = parse::parse(text, syntax, template, ctx)
            .map_err(|e| Error::Usage(format!("{whence}: {e}")))?;
        match parsed {
            None => {}
            Some(Parsed::Clear) => self.filter.entries.clear(),
            Some(Parsed::Rule(rule)) => self.filter.entries.push(Entry::Rule(rule)),
            Some(Parsed::Cvs(flags)) => self.cvs(flags),
            Some(Parsed::Merge { file, template }) => {
                exclude_self(&mut self.filter.entries, &file, &template);
                self.merge(&file, &template, whence)?;
            }
            Some(Parsed::DirMerge { file, template }) => {
                exclude_self(&mut self.filter.entries, &file, &template);
                self.dir_merge(&file, template, whence)?;
            }
        }
        Ok(())
    }

    /// `-C`: the global CVS ignore rules, made the first time.
    fn cvs(&mut self, flags: RuleFlags) {
        if self.filter.cvs_env.is_none() {
            self.filter.cvs_env = Some(Arc::new(CvsEnv::from_process()));
        }
        self.filter.from0 = self.lists.from0();
        let rules = self.filter.cvs_rules(flags);
        self.filter.cvs = Some(Arc::clone(&rules));
        self.filter.entries.push(Entry::Cvs(rules));
    }

    /// `. FILE`: the file's rules, read now, go where the rule stands.
    fn merge(&mut self, file: &str, template: &Template, whence: &str) -> Result<()> {
        if self.merging.len() >= MAX_MERGE_DEPTH || self.merging.iter().any(|f| f == file) {
            return Err(Error::Usage(format!(
                "{whence}: merge file {file} merges itself, or merge files nest more than \
                 {MAX_MERGE_DEPTH} deep"
            )));
        }
        let data = self.lists.read(file, "merge file")?;
        self.merging.push(file.to_string());
        for (n, text) in rule_texts(&data, template, self.lists.from0()) {
            self.add(
                &text,
                Syntax::Full,
                template,
                &format!("merge file {file}, line {n}"),
            )?;
        }
        self.merging.pop();
        Ok(())
    }

    /// `: FILE`: the rules of FILE in each directory the walk enters go
    /// here; a name given with a path is also looked for in the parents of
    /// the first directory, from that path down (see `scope`).
    fn dir_merge(&mut self, file: &str, template: Template, whence: &str) -> Result<()> {
        let spec = DirMerge::new(file, template, None, false)
            .map_err(|e| Error::Usage(format!("{whence}: {e}")))?;
        // rsync: a per-directory file named twice is read once.
        let named = |e: &Entry| matches!(e, Entry::DirMerge(d) if d.name == spec.name);
        if !self.filter.entries.iter().any(named) {
            self.filter.entries.push(Entry::DirMerge(Arc::new(spec)));
        }
        Ok(())
    }
}

/// The `e` modifier: the merge file itself is not transferred.
fn exclude_self(entries: &mut Vec<Entry>, file: &str, template: &Template) {
    if template.exclude_self {
        let name = file.rsplit('/').next().unwrap_or(file);
        entries.push(Entry::Rule(Rule {
            pattern: Pattern::new(name),
            include: false,
            negate: false,
            sides: Sides::BOTH,
            perishable: false,
        }));
    }
}

/// The rules in a file, numbered by line: its records without comments
/// (`#` or `;` first), or with the `w` modifier its words, each a rule of
/// its own, as rsync reads them ("- foo" is then two rules, and "-" alone
/// an error: write "-_foo").
fn rule_texts(data: &[u8], template: &Template, from0: bool) -> Vec<(usize, String)> {
    let pieces = match template.word_split {
        true => lists::words(data, from0),
        false => lists::records(data, from0)
            .into_iter()
            .filter(|(_, record)| !lists::is_comment(record))
            .collect(),
    };
    pieces
        .into_iter()
        .map(|(n, piece)| (n, String::from_utf8_lossy(piece).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests;
