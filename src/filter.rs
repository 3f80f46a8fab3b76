//! rsync's filter rules: `--exclude`, `--include`, their `-from` files and
//! `--filter`, in command-line order, deciding which paths a sync sees
//! (the sender's side) and which destination entries `--delete` spares
//! (the receiver's side); and the `--files-from` list.
//!
//! Rules are checked in order and the first that matches decides; a path
//! no rule matches is included. Patterns are matched against the path
//! from the transfer root (`pattern`); rule texts are read as rsync reads
//! them (`parse`). Per-directory filter files (`dir-merge`) are read by the
//! planner as it walks the source, which hands their contents to
//! [`Scope::enter`].

mod parse;
mod pattern;

use std::io::Read;
use std::sync::Arc;

use crate::error::{Error, Result};
pub use parse::SUPPORTED;
use parse::{Context, Parsed, Rule, Sides, Syntax, Template};
pub use pattern::Pattern;

/// Which option a filter rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterFlag {
    Exclude,
    Include,
    ExcludeFrom,
    IncludeFrom,
    Filter,
}

/// One filter option as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterArg {
    pub flag: FilterFlag,
    pub value: String,
}

/// Whose question a rule answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Does the walk of the source see this path (hide/show)?
    Sender,
    /// May `--delete` remove this destination entry (protect/risk)?
    Receiver,
    /// The same, inside a directory that is itself being deleted, where
    /// perishable (`p`) rules do not count.
    Deleting,
}

/// The global rule list, in order.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    entries: Vec<Entry>,
    /// The per-directory filter files, by the slot their `Entry::DirMerge`
    /// names.
    dir_merges: Vec<DirMerge>,
    delete_excluded: bool,
}

#[derive(Debug, Clone)]
enum Entry {
    Rule(Rule),
    /// Where the rules of the per-directory files of one name go.
    DirMerge(usize),
}

/// A `dir-merge` rule: the file name looked for in every directory, and
/// how its lines are read.
#[derive(Debug, Clone)]
struct DirMerge {
    name: String,
    template: Template,
}

/// Merge files within merge files, at most this deep (a file that merges
/// itself would otherwise never end).
const MAX_MERGE_DEPTH: usize = 16;

impl Filter {
    /// The rules of the filter options, reading the files they name (`-`
    /// is standard input). With `delete_excluded`, rules that name no side
    /// speak to the sender only, as in rsync.
    pub fn from_args(
        args: &[FilterArg],
        delete_excluded: bool,
        lists: &mut ListReader,
    ) -> Result<Filter> {
        let mut builder = Builder {
            filter: Filter {
                delete_excluded,
                ..Filter::default()
            },
            lists,
            merging: Vec::new(),
        };
        for arg in args {
            builder.add_arg(arg)?;
        }
        Ok(builder.filter)
    }

    /// Whether there are no rules at all (every path is included).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn context<'a>(&self, base: &'a str) -> Context<'a> {
        Context {
            delete_excluded: self.delete_excluded,
            base,
        }
    }
}

/// Adds the filter options' rules to a [`Filter`].
struct Builder<'a> {
    filter: Filter,
    lists: &'a mut ListReader,
    /// The merge files being read, outermost first.
    merging: Vec<String>,
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
            FilterFlag::ExcludeFrom | FilterFlag::IncludeFrom => {
                let include = arg.flag == FilterFlag::IncludeFrom;
                let option = if include {
                    "--include-from"
                } else {
                    "--exclude-from"
                };
                let data = self.lists.read(value, option)?;
                for (n, line) in rule_lines(&data, &plain) {
                    let whence = format!("{option} {value}, line {n}");
                    self.add(&line, Syntax::Old { include }, &plain, &whence)?;
                }
                Ok(())
            }
        }
    }

    /// Adds one rule's text; `whence` says where it came from, for errors.
    fn add(&mut self, text: &str, syntax: Syntax, template: &Template, whence: &str) -> Result<()> {
        let parsed = parse::parse(text, syntax, template, self.filter.context(""))
            .map_err(|e| Error::Usage(format!("{whence}: {e}")))?;
        match parsed {
            None => {}
            Some(Parsed::Clear) => self.filter.entries.clear(),
            Some(Parsed::Rule(rule)) => self.filter.entries.push(Entry::Rule(rule)),
            Some(Parsed::Merge { file, template }) => {
                self.exclude_self(&file, &template);
                self.merge(&file, &template, whence)?;
            }
            Some(Parsed::DirMerge { file, template }) => {
                self.exclude_self(&file, &template);
                self.dir_merge(&file, template, whence)?;
            }
        }
        Ok(())
    }

    /// The `e` modifier: the merge file itself is not transferred.
    fn exclude_self(&mut self, file: &str, template: &Template) {
        if template.exclude_self {
            let name = file.rsplit('/').next().unwrap_or(file);
            self.filter.entries.push(Entry::Rule(Rule {
                pattern: Pattern::new(name),
                include: false,
                negate: false,
                sides: Sides::BOTH,
                perishable: false,
            }));
        }
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
        for (n, text) in rule_lines(&data, template) {
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
    /// here. A leading `/` is accepted (as in `-F`'s `/.rsync-filter`), but
    /// only the directories of the transfer are searched, not the parents
    /// of the transfer root.
    fn dir_merge(&mut self, file: &str, template: Template, whence: &str) -> Result<()> {
        let name = file.strip_prefix('/').unwrap_or(file);
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::Usage(format!(
                "{whence}: dir-merge {file:?}: give a plain file name (such as .rules), which \
                 ferry reads in every directory of the transfer"
            )));
        }
        // rsync: a per-directory file named twice is read once.
        if self.filter.dir_merges.iter().any(|d| d.name == name) {
            return Ok(());
        }
        self.filter
            .entries
            .push(Entry::DirMerge(self.filter.dir_merges.len()));
        self.filter.dir_merges.push(DirMerge {
            name: name.to_string(),
            template,
        });
        Ok(())
    }
}

/// The rules in force in one directory of the walk: the global list, with
/// what the per-directory filter files of this directory and its parents
/// added in their places. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Scope {
    filter: Arc<Filter>,
    /// Per `dir-merge` rule: the rules its files give here, this
    /// directory's own before those inherited from its parents.
    merged: Arc<[Arc<[Rule]>]>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope::root(&Arc::new(Filter::default()))
    }
}

impl Scope {
    /// The rules in force at the transfer root.
    pub fn root(filter: &Arc<Filter>) -> Scope {
        Scope {
            merged: vec![Arc::from(Vec::new()); filter.dir_merges.len()].into(),
            filter: Arc::clone(filter),
        }
    }

    /// Whether no rule is in force: every path is included.
    pub fn is_empty(&self) -> bool {
        self.filter.entries.is_empty()
    }

    /// Whether `path` (from the transfer root; a directory when `is_dir`)
    /// is excluded for `side`.
    pub fn excluded(&self, path: &str, is_dir: bool, side: Side) -> bool {
        for entry in &self.filter.entries {
            let verdict = match entry {
                Entry::Rule(rule) => decide(rule, path, is_dir, side),
                Entry::DirMerge(slot) => self.merged[*slot]
                    .iter()
                    .find_map(|rule| decide(rule, path, is_dir, side)),
            };
            if let Some(excluded) = verdict {
                return excluded;
            }
        }
        false
    }

    /// The names of the per-directory filter files to look for in each
    /// directory, by slot.
    pub fn dir_merge_names(&self) -> impl Iterator<Item = &str> {
        self.filter.dir_merges.iter().map(|d| d.name.as_str())
    }

    /// The rules in force inside `dir` (its path from the transfer root),
    /// a directory below this scope's, given the contents of its
    /// per-directory filter files by slot (None where it has none).
    /// `origin` names a slot's file for messages.
    pub fn enter(
        &self,
        dir: &str,
        files: &[Option<Vec<u8>>],
        origin: &dyn Fn(usize) -> String,
    ) -> Result<Scope> {
        if self.filter.dir_merges.is_empty() {
            return Ok(self.clone());
        }
        let mut merged = Vec::with_capacity(self.merged.len());
        for (slot, spec) in self.filter.dir_merges.iter().enumerate() {
            let inherited = match spec.template.no_inherit {
                true => Arc::from(Vec::new()),
                false => Arc::clone(&self.merged[slot]),
            };
            let rules = match files.get(slot).and_then(Option::as_ref) {
                Some(data) => self.read_dir_rules(dir, data, spec, &inherited, &origin(slot))?,
                None => inherited,
            };
            merged.push(rules);
        }
        Ok(Scope {
            filter: Arc::clone(&self.filter),
            merged: merged.into(),
        })
    }

    /// One per-directory file's rules, before the inherited ones (a `!` in
    /// it clears those too). Its anchored patterns are anchored at its
    /// directory.
    fn read_dir_rules(
        &self,
        dir: &str,
        data: &[u8],
        spec: &DirMerge,
        inherited: &Arc<[Rule]>,
        origin: &str,
    ) -> Result<Arc<[Rule]>> {
        let mut own = Vec::new();
        let mut cleared = false;
        let ctx = self.filter.context(dir);
        for (n, text) in rule_lines(data, &spec.template) {
            let whence = || format!("{origin}, line {n}");
            match parse::parse(&text, Syntax::Full, &spec.template, ctx) {
                Err(e) => return Err(Error::Usage(format!("{}: {e}", whence()))),
                Ok(None) => {}
                Ok(Some(Parsed::Clear)) => {
                    own.clear();
                    cleared = true;
                }
                Ok(Some(Parsed::Rule(rule))) => own.push(rule),
                Ok(Some(Parsed::Merge { .. } | Parsed::DirMerge { .. })) => {
                    return Err(Error::Usage(format!(
                        "{}: merge and dir-merge rules inside a per-directory filter file are \
                         not supported by ferry; give them on the command line",
                        whence()
                    )))
                }
            }
        }
        if !cleared {
            own.extend(inherited.iter().cloned());
        }
        Ok(own.into())
    }
}

/// One rule's word on a path: Some(true) to exclude, Some(false) to
/// include, None when it does not apply.
fn decide(rule: &Rule, path: &str, is_dir: bool, side: Side) -> Option<bool> {
    let applies = match side {
        Side::Sender => rule.sides.sender,
        Side::Receiver => rule.sides.receiver,
        Side::Deleting => rule.sides.receiver && !rule.perishable,
    };
    (applies && rule.pattern.matches(path, is_dir) != rule.negate).then_some(!rule.include)
}

/// The rules in a file, numbered from 1: its lines (ended by `\n` or
/// `\r`) without blank ones and comments (`#` or `;` first), or with the
/// `w` modifier its whitespace-separated words, where a rule name standing
/// alone takes the next word as its pattern ("- foo + bar").
fn rule_lines(data: &[u8], template: &Template) -> Vec<(usize, String)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if template.word_split {
            let mut words = line.split_whitespace().peekable();
            while let Some(word) = words.next() {
                let alone = template.bare.is_none()
                    && parse::parse(word, Syntax::Full, template, Context::default()).is_err();
                match words.next_if(|_| alone) {
                    Some(pattern) => out.push((i + 1, format!("{word} {pattern}"))),
                    None => out.push((i + 1, word.to_string())),
                }
            }
            continue;
        }
        for piece in line.split('\r') {
            if !piece.is_empty() && !piece.starts_with(['#', ';']) {
                out.push((i + 1, piece.to_string()));
            }
        }
    }
    out
}

/// Reads the files that filter options and `--files-from` name, giving
/// standard input (`-`) to one of them only.
#[derive(Debug, Default)]
pub struct ListReader {
    /// The option that took standard input.
    stdin_taken_by: Option<String>,
}

impl ListReader {
    /// The contents of `name` (`-`: standard input), read for `option`.
    pub fn read(&mut self, name: &str, option: &str) -> Result<Vec<u8>> {
        if name != "-" {
            return std::fs::read(name).map_err(|e| Error::io(format!("{option} {name}"), e));
        }
        if let Some(first) = &self.stdin_taken_by {
            return Err(Error::Usage(format!(
                "{option} - and {first} - both want standard input; give one of them a file"
            )));
        }
        self.stdin_taken_by = Some(option.to_string());
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| Error::io(format!("{option} - (standard input)"), e))?;
        Ok(data)
    }
}

/// `--files-from`: the paths to copy, relative to the source directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesFrom {
    /// The list's file name, for messages.
    pub name: String,
    pub paths: Vec<Listed>,
}

/// One path of a `--files-from` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// From the source directory, `/`-separated, without `.` or `..`
    /// components; empty for the source directory itself.
    pub path: String,
    /// Listed with a trailing `/`: a directory's immediate contents come
    /// too, even without `-r`.
    pub contents: bool,
}

impl FilesFrom {
    /// Reads the list `name` (`-`: standard input).
    pub fn read(name: &str, lists: &mut ListReader) -> Result<FilesFrom> {
        let data = lists.read(name, "--files-from")?;
        Ok(FilesFrom::parse(name, &data))
    }

    /// rsync's reading of the list: one path a line (`\n`, `\r` or both
    /// end it), blank lines and `#`/`;` comments skipped, a leading `/`
    /// dropped and `..` kept from rising above the source directory.
    pub fn parse(name: &str, data: &[u8]) -> FilesFrom {
        let text = String::from_utf8_lossy(data);
        let paths = text
            .split(['\n', '\r'])
            .filter(|line| !line.is_empty() && !line.starts_with(['#', ';']))
            .map(normalize)
            .collect();
        FilesFrom {
            name: name.to_string(),
            paths,
        }
    }
}

fn normalize(line: &str) -> Listed {
    let mut parts: Vec<&str> = Vec::new();
    for part in line.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    Listed {
        path: parts.join("/"),
        // "dir/" and "dir/." (or "." alone) bring the directory's entries.
        contents: line.ends_with('/') || line == "." || line.ends_with("/."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(FilterFlag, &str)]) -> Scope {
        let args: Vec<FilterArg> = rules
            .iter()
            .map(|(flag, value)| FilterArg {
                flag: *flag,
                value: value.to_string(),
            })
            .collect();
        let filter =
            Filter::from_args(&args, false, &mut ListReader::default()).expect("rules parse");
        Scope::root(&Arc::new(filter))
    }

    fn filters(rules: &[&str]) -> Scope {
        let rules: Vec<(FilterFlag, &str)> =
            rules.iter().map(|r| (FilterFlag::Filter, *r)).collect();
        filter(&rules)
    }

    fn sends(scope: &Scope, path: &str) -> bool {
        let is_dir = path.ends_with('/');
        !scope.excluded(path.trim_end_matches('/'), is_dir, Side::Sender)
    }

    #[test]
    fn no_rules_include_everything() {
        let scope = Scope::default();
        assert!(sends(&scope, "a/b/c"));
    }

    /// rsync(1): "-f'+ */' -f'+ *.c' -f'- *' would include all directories
    /// and .c source files but nothing else".
    #[test]
    fn first_match_wins() {
        let scope = filters(&["+ */", "+ *.c", "- *"]);
        assert!(sends(&scope, "src/"));
        assert!(sends(&scope, "src/deep/"));
        assert!(sends(&scope, "src/main.c"));
        assert!(!sends(&scope, "src/main.h"));
        assert!(!sends(&scope, "README"));
    }

    /// rsync(1): "-f'+ foo/' -f'+ foo/bar.c' -f'- *' would include only the
    /// foo directory and foo/bar.c".
    #[test]
    fn include_only_one_file() {
        let scope = filters(&["+ foo/", "+ foo/bar.c", "- *"]);
        assert!(sends(&scope, "foo/"));
        assert!(sends(&scope, "foo/bar.c"));
        assert!(!sends(&scope, "foo/baz.c"));
        assert!(!sends(&scope, "other/"));
    }

    #[test]
    fn old_style_options_keep_their_order() {
        let scope = filter(&[
            (FilterFlag::Include, "keep.tmp"),
            (FilterFlag::Exclude, "*.tmp"),
            (FilterFlag::Exclude, "+ wanted"),
            (FilterFlag::Exclude, "want*"),
        ]);
        assert!(sends(&scope, "keep.tmp"));
        assert!(!sends(&scope, "a/other.tmp"));
        assert!(
            sends(&scope, "wanted"),
            "'+ ' in --exclude makes an include"
        );
        assert!(!sends(&scope, "wanting"));
    }

    #[test]
    fn clear_forgets_earlier_rules() {
        let scope = filters(&["- *.o", "!", "- *.a"]);
        assert!(sends(&scope, "x.o"));
        assert!(!sends(&scope, "x.a"));
    }

    #[test]
    fn negated_rules_apply_where_the_pattern_fails() {
        // rsync(1): "-f'-! */' would exclude all non-directories".
        let scope = filters(&["-! */"]);
        assert!(sends(&scope, "dir/"));
        assert!(!sends(&scope, "file"));
    }

    #[test]
    fn sides_split_hiding_from_protecting() {
        let scope = filters(&["H hidden", "P protected", "- both", "S shown", "- shown"]);
        assert!(scope.excluded("hidden", false, Side::Sender));
        assert!(!scope.excluded("hidden", false, Side::Receiver));
        assert!(!scope.excluded("protected", false, Side::Sender));
        assert!(scope.excluded("protected", false, Side::Receiver));
        assert!(scope.excluded("both", false, Side::Sender));
        assert!(scope.excluded("both", false, Side::Receiver));
        assert!(!scope.excluded("shown", false, Side::Sender));
        assert!(scope.excluded("shown", false, Side::Receiver));
    }

    #[test]
    fn delete_excluded_leaves_only_protect_rules_to_the_receiver() {
        let args = [
            FilterArg {
                flag: FilterFlag::Exclude,
                value: "*.tmp".into(),
            },
            FilterArg {
                flag: FilterFlag::Filter,
                value: "P keep.tmp".into(),
            },
        ];
        let filter = Filter::from_args(&args, true, &mut ListReader::default()).unwrap();
        let scope = Scope::root(&Arc::new(filter));
        assert!(scope.excluded("a.tmp", false, Side::Sender));
        assert!(!scope.excluded("a.tmp", false, Side::Receiver));
        assert!(scope.excluded("keep.tmp", false, Side::Receiver));
    }

    #[test]
    fn perishable_rules_do_not_protect_inside_deleted_directories() {
        let scope = filters(&["-p *.o"]);
        assert!(scope.excluded("x.o", false, Side::Receiver));
        assert!(!scope.excluded("gone/x.o", false, Side::Deleting));
    }

    #[test]
    fn rule_files_skip_blanks_and_comments() {
        let lines = rule_lines(
            b"# comment\n\n; other\n- a\r\n+ b\rc\n",
            &Template::default(),
        );
        let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["- a", "+ b", "c"]);
        assert_eq!(lines[0].0, 4, "line numbers count every line");
        let split = Template {
            word_split: true,
            ..Template::default()
        };
        let words = rule_lines(b"- foo + bar baz", &split);
        let texts: Vec<&str> = words.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["- foo", "+ bar", "baz"]);
    }

    #[test]
    fn per_directory_rules_come_first_and_anchor_at_their_directory() {
        let scope = filters(&["+ *.keep", ": .rules", "- *.o"]);
        let names: Vec<&str> = scope.dir_merge_names().collect();
        assert_eq!(names, [".rules"]);
        let origin = |_| "a/.rules".to_string();
        let a = scope
            .enter("a", &[Some(b"- /top\n+ x.o\n- *.log\n".to_vec())], &origin)
            .unwrap();
        assert!(!sends(&a, "a/top"), "anchored at a/");
        assert!(sends(&a, "top"));
        assert!(
            sends(&a, "a/x.o"),
            "the directory's rule before the later global one"
        );
        assert!(!sends(&a, "a/y.o"));
        assert!(!sends(&a, "a/z.log"));
        assert!(sends(&a, "a/z.keep"), "earlier global rules still win");
        let b = a
            .enter("a/b", &[Some(b"+ *.log\n".to_vec())], &origin)
            .unwrap();
        assert!(sends(&b, "a/b/z.log"), "the subdirectory's rules first");
        assert!(!sends(&b, "a/b/w.o"), "inherited");
        let c = b.enter("a/b/c", &[Some(b"!\n".to_vec())], &origin).unwrap();
        assert!(
            sends(&c, "a/b/c/x.log") && !sends(&c, "a/b/c/x.o"),
            "! clears inherited"
        );
    }

    #[test]
    fn non_inherited_per_directory_rules_stop_at_their_directory() {
        let scope = filters(&[":n- .ignore"]);
        let origin = |_| ".ignore".to_string();
        let a = scope
            .enter("a", &[Some(b"*.tmp\n".to_vec())], &origin)
            .unwrap();
        assert!(!sends(&a, "a/x.tmp"));
        let b = a.enter("a/b", &[None], &origin).unwrap();
        assert!(sends(&b, "a/b/x.tmp"));
    }

    #[test]
    fn exclude_self_hides_the_merge_file() {
        let scope = filters(&[":e .rules"]);
        assert!(!sends(&scope, "a/.rules"));
    }

    #[test]
    fn bad_per_directory_rules_name_their_file_and_line() {
        let scope = filters(&[": .rules"]);
        let origin = |_| "host:src/a/.rules".to_string();
        let err = scope
            .enter("a", &[Some(b"- ok\nbogus rule\n".to_vec())], &origin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host:src/a/.rules, line 2") && err.contains("bogus rule"),
            "{err}"
        );
    }

    #[test]
    fn files_from_lists_are_read_as_rsync_reads_them() {
        let list = FilesFrom::parse(
            "list",
            b"sub/c.rs\n# comment\n\n; other\n/a.rs\r\n../up\n./x/../y/\nsub/deep\n",
        );
        let paths: Vec<(&str, bool)> = list
            .paths
            .iter()
            .map(|l| (l.path.as_str(), l.contents))
            .collect();
        assert_eq!(
            paths,
            [
                ("sub/c.rs", false),
                ("a.rs", false),
                ("up", false),
                ("y", true),
                ("sub/deep", false)
            ]
        );
    }

    #[test]
    fn missing_rule_files_are_named() {
        let args = [FilterArg {
            flag: FilterFlag::ExcludeFrom,
            value: "/nonexistent/ferry-excludes".into(),
        }];
        let err = Filter::from_args(&args, false, &mut ListReader::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("--exclude-from /nonexistent/ferry-excludes"),
            "{err}"
        );
        let args = [FilterArg {
            flag: FilterFlag::Filter,
            value: ". /nonexistent/ferry-rules".into(),
        }];
        let err = Filter::from_args(&args, false, &mut ListReader::default()).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/ferry-rules"),
            "{err}"
        );
    }
}
