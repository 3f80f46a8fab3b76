//! The rules in force in one directory of the walk: the global list, with
//! what the per-directory files of this directory and its parents added in
//! their places.
//!
//! Entering a directory is a pure function of the parent's scope and the
//! contents of the files it reads, which the planner fetches: each call of
//! [`Scope::enter_dir`] either finishes or says which files it still
//! needs ([`Entered::Need`]); the planner reads them into the [`FileSet`]
//! and calls again. Besides the directory's own per-directory files, rsync
//! reads:
//! - for a dir-merge name given with a path (`-F`'s `/.rsync-filter`),
//!   that file in each directory from the path's one down to the parent of
//!   the first directory entered, as if they were its parents (setup_merge_file);
//! - the files that `.` (merge) rules inside per-directory files name;
//! - the per-directory files that `:` (dir-merge) rules inside them add,
//!   from their directory down.

use std::collections::HashMap;
use std::sync::Arc;

use super::parse::{self, Context, Parsed, Rule, Syntax, Template};
use super::{
    exclude_self, place, rule_texts, DirMerge, Entry, Filter, Side, Start, MAX_MERGE_DEPTH,
};
use crate::error::{Error, Host, Result};

/// The rules in force in one directory of the walk. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    filter: Arc<Filter>,
    /// Per dir-merge rule in force here, in rsync's order: its rules here,
    /// this directory's own before those inherited from its parents.
    lists: Arc<[PerDir]>,
    /// The transfer root's absolute path, when the planner gave it.
    root_abs: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct PerDir {
    spec: Arc<DirMerge>,
    rules: Arc<[Entry]>,
    /// No directory entered yet: the first one reads the files the rule's
    /// path names above it.
    fresh: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Scope::root(&Arc::new(Filter::default()))
    }
}

/// What entering a directory came to.
#[derive(Debug, Clone)]
pub(crate) enum Entered {
    /// The rules in force inside it.
    Ready(Scope),
    /// Files to read into the [`FileSet`] (None for one that does not
    /// exist) before calling [`Scope::enter_dir`] again.
    Need(Vec<Need>),
}

/// A file the rules of a directory need read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    /// The [`FileSet`] key: absolute, or from the transfer root (possibly
    /// starting with ".."); [`FileSet::source_path`] says where the source
    /// has it.
    pub path: String,
    /// Some(name) when it is the entry `name` of the directory being
    /// entered, which its listing says whether it exists.
    pub in_dir: Option<String>,
}

/// The contents of files the rules read, by [`Need::path`], with what the
/// planner needs to find them on the source and name them in messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSet {
    /// The source's host, put before paths in messages.
    label: Host,
    /// The transfer root as the source endpoint names it.
    root: String,
    files: HashMap<String, Option<Vec<u8>>>,
    /// Names to show for some files instead of their paths.
    shown: HashMap<String, String>,
}

impl FileSet {
    /// An empty set for a walk whose transfer root the source endpoint
    /// calls `root` ("src" for `src/`, "." or the parent for `src`); `label`
    /// goes before paths in messages.
    pub(crate) fn new(label: &Host, root: &str) -> FileSet {
        FileSet {
            label: label.clone(),
            root: root.to_string(),
            ..FileSet::default()
        }
    }

    /// Where the source endpoint finds `path` (a [`Need::path`]).
    pub(crate) fn source_path(&self, path: &str) -> String {
        if path.starts_with('/') || self.root.is_empty() || self.root == "." {
            return path.to_string();
        }
        match self.root.ends_with('/') {
            true => format!("{}{path}", self.root),
            false => format!("{}/{path}", self.root),
        }
    }

    /// Records the contents of `path` (None: there is no such file).
    pub(crate) fn insert(&mut self, path: impl Into<String>, data: Option<Vec<u8>>) {
        self.files.insert(path.into(), data);
    }

    /// Whether `path` was read (or found missing) already.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    fn get(&self, path: &str) -> Option<Option<&[u8]>> {
        self.files.get(path).map(Option::as_deref)
    }

    fn describe(&self, path: &str) -> String {
        match self.shown.get(path) {
            Some(shown) => shown.clone(),
            None => format!("{}{}", self.label, self.source_path(path)),
        }
    }
}

impl Scope {
    /// The rules in force at the transfer root, before any directory is
    /// entered.
    pub(crate) fn root(filter: &Arc<Filter>) -> Scope {
        let lists: Vec<PerDir> = filter
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::DirMerge(spec) => Some(PerDir {
                    spec: Arc::clone(spec),
                    rules: Arc::from(Vec::new()),
                    fresh: true,
                }),
                _ => None,
            })
            .collect();
        Scope {
            filter: Arc::clone(filter),
            lists: lists.into(),
            root_abs: None,
        }
    }

    /// This scope, for a walk whose transfer root is at `root_abs` (an
    /// absolute path, cleaned as rsync does: textually). Needed when a
    /// dir-merge rule names its file with a path above the root, as `-F`
    /// does; see [`Filter::has_dir_merges`].
    pub(crate) fn at_root_path(&self, root_abs: &str) -> Scope {
        Scope {
            root_abs: Some(place::clean(&format!("/{root_abs}")).into()),
            ..self.clone()
        }
    }

    /// Whether no rule is in force: every path is included.
    pub(crate) fn is_empty(&self) -> bool {
        self.filter.entries.is_empty()
    }

    /// Whether `path` (from the transfer root; a directory when `is_dir`)
    /// is excluded for `side`.
    pub(crate) fn excluded(&self, path: &str, is_dir: bool, side: Side) -> bool {
        self.verdict(&self.filter.entries, path, is_dir, side)
            .unwrap_or(false)
    }

    fn verdict(&self, entries: &[Entry], path: &str, is_dir: bool, side: Side) -> Option<bool> {
        entries.iter().find_map(|entry| match entry {
            Entry::Rule(rule) => decide(rule, path, is_dir, side),
            Entry::Cvs(rules) => rules.iter().find_map(|r| decide(r, path, is_dir, side)),
            Entry::DirMerge(spec) => self
                .list(spec)
                .and_then(|rules| self.verdict(rules, path, is_dir, side)),
        })
    }

    fn list(&self, spec: &Arc<DirMerge>) -> Option<&[Entry]> {
        self.lists
            .iter()
            .find(|l| Arc::ptr_eq(&l.spec, spec))
            .map(|l| &l.rules[..])
    }

    /// The names of the per-directory filter files in force, which the
    /// next directory is searched for (one of its own files may add more:
    /// [`Scope::enter_dir`] asks for those).
    pub(crate) fn dir_merge_names(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().map(|l| l.spec.name.as_str())
    }

    /// The rules in force inside `dir` (its path from the transfer root),
    /// a directory below this scope's, given the contents of its
    /// per-directory filter files in the order of
    /// [`Scope::dir_merge_names`] (None where it has none). `origin` names
    /// a file by that index, for messages. Fails when the rules need other
    /// files: [`Scope::enter_dir`] reads those.
    #[cfg(test)]
    pub(crate) fn enter(
        &self,
        dir: &str,
        files: &[Option<Vec<u8>>],
        origin: &dyn Fn(usize) -> String,
    ) -> Result<Scope> {
        let mut set = FileSet::default();
        for (slot, name) in self.dir_merge_names().enumerate() {
            let path = place::resolve(dir, name);
            set.shown.insert(path.clone(), origin(slot));
            set.insert(path, files.get(slot).cloned().flatten());
        }
        match self.enter_dir(dir, &set)? {
            Entered::Ready(scope) => Ok(scope),
            Entered::Need(needs) => Err(Error::Usage(format!(
                "{}: the filter rules need this file, which this walk does not read (it reads \
                 only the per-directory files of the directories it enters)",
                set.describe(&needs[0].path)
            ))),
        }
    }

    /// The rules in force inside `dir` (its path from the transfer root),
    /// a directory below this scope's, with the files `files` holds; or the
    /// files it still needs. The first directory entered from
    /// [`Scope::root`] also reads the files that dir-merge rules with a
    /// path name above it.
    pub(crate) fn enter_dir(&self, dir: &str, files: &FileSet) -> Result<Entered> {
        if self.lists.is_empty() {
            return Ok(Entered::Ready(self.clone()));
        }
        let mut entering = Entering {
            scope: self,
            dir,
            files,
            work: self.lists.iter().map(|l| Arc::clone(&l.spec)).collect(),
            out: Vec::new(),
            needs: Vec::new(),
            merging: Vec::new(),
        };
        entering.run()?;
        Ok(entering.finish())
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

/// The work of entering one directory.
struct Entering<'a> {
    scope: &'a Scope,
    /// The directory, from the transfer root.
    dir: &'a str,
    files: &'a FileSet,
    /// The dir-merge rules to consider, in rsync's order: those in force in
    /// the parent, then those the files read here add.
    work: Vec<Arc<DirMerge>>,
    out: Vec<PerDir>,
    needs: Vec<Need>,
    /// The merge files being read, outermost first.
    merging: Vec<String>,
}

/// A rule file being read: where it is, and how rsync reads names and
/// anchors in it.
#[derive(Debug, Clone)]
struct Source {
    /// The file's [`FileSet`] key.
    path: String,
    /// The per-directory file's directory, which names in it are taken
    /// from: from the transfer root, possibly above it ("..").
    dir: String,
    /// Read in rsync's scan above the first directory ("parent_dirscan"),
    /// where every name is taken from `dir`.
    scanning: bool,
    /// Where a leading `/` anchors (see `parse::Context`); both empty in a
    /// merge file, whose rules rsync anchors at the transfer root.
    base: String,
    above: String,
}

/// The rules one file gives, and whether a `!` in it cleared those before.
#[derive(Debug, Default)]
struct Layer {
    own: Vec<Entry>,
    cleared: bool,
}

impl<'a> Entering<'a> {
    fn run(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.work.len() {
            let spec = Arc::clone(&self.work[i]);
            if self.reachable(&spec) {
                let rules = self.rules_for(&spec)?;
                self.out.push(PerDir {
                    spec,
                    rules,
                    fresh: false,
                });
            }
            i += 1;
        }
        Ok(())
    }

    fn finish(self) -> Entered {
        if !self.needs.is_empty() {
            return Entered::Need(self.needs);
        }
        Entered::Ready(Scope {
            filter: Arc::clone(&self.scope.filter),
            lists: self.out.into(),
            root_abs: self.scope.root_abs.clone(),
        })
    }

    /// Whether a dir-merge rule is in force here: in the global list, or
    /// in the rules that a per-directory file in force gives here (a rule
    /// from a parent's file that is not inherited is not).
    fn reachable(&self, spec: &Arc<DirMerge>) -> bool {
        let refers = |entries: &[Entry]| {
            entries
                .iter()
                .any(|e| matches!(e, Entry::DirMerge(s) if Arc::ptr_eq(s, spec)))
        };
        refers(&self.scope.filter.entries) || self.out.iter().any(|l| refers(&l.rules))
    }

    /// The rules of one dir-merge rule here: this directory's file before
    /// what the parents' gave (or, the first time, the files above).
    fn rules_for(&mut self, spec: &Arc<DirMerge>) -> Result<Arc<[Entry]>> {
        let scope = self.scope;
        let parent = scope.lists.iter().find(|l| Arc::ptr_eq(&l.spec, spec));
        let fresh = parent.is_none_or(|p| p.fresh);
        let mut inherited: Arc<[Entry]> = match parent {
            Some(p) if !fresh && !spec.template.no_inherit => Arc::clone(&p.rules),
            _ => Arc::from(Vec::new()),
        };
        if let (true, Some(start)) = (fresh, &spec.start) {
            inherited = self.scan(spec, start)?.into();
        }
        let here = Source {
            path: place::resolve(self.dir, &spec.name),
            dir: self.dir.to_string(),
            scanning: false,
            base: self.dir.to_string(),
            above: String::new(),
        };
        // Most directories have no file of their own: keep the parents'
        // rules as they are rather than copy them.
        if let Some(None) = self.files.get(&here.path) {
            return Ok(inherited);
        }
        let mut rules = inherited.to_vec();
        self.layer(&mut rules, spec, &here, Some(spec.name.clone()))?;
        Ok(rules.into())
    }

    /// rsync's scan for a name given with a path: the file in each
    /// directory from the path's one down to this directory's parent, each
    /// as a parent of the next; with `n`, none of it stays.
    fn scan(&mut self, spec: &DirMerge, start: &Start) -> Result<Vec<Entry>> {
        let from = self.start_dir(spec, start)?;
        let mut rules = Vec::new();
        for dir in place::scan_dirs(&from, self.dir) {
            let source = self.scanned(spec, &dir)?;
            self.layer(&mut rules, spec, &source, None)?;
            if spec.template.no_inherit {
                rules.clear();
            }
        }
        Ok(rules)
    }

    /// The directory a dir-merge rule's path names, from the transfer root.
    fn start_dir(&self, spec: &DirMerge, start: &Start) -> Result<String> {
        let dir = match start {
            Start::Given(given) => place::resolve(self.dir, given),
            Start::At(at) => at.clone(),
        };
        if !dir.starts_with('/') {
            return Ok(dir);
        }
        let root = self.root_abs(spec)?;
        Ok(place::from_root(&dir, root))
    }

    fn root_abs(&self, spec: &DirMerge) -> Result<&str> {
        self.scope.root_abs.as_deref().ok_or_else(|| {
            Error::Usage(format!(
                "dir-merge {}: looking for it above the transfer needs the source's absolute \
                 path, which the walk did not give",
                spec.name
            ))
        })
    }

    /// The file of `spec` in `dir`, a directory of the scan.
    fn scanned(&self, spec: &DirMerge, dir: &str) -> Result<Source> {
        let levels = place::levels_above(dir);
        let (path, base, above) = match levels {
            0 => (
                place::resolve(dir, &spec.name),
                dir.to_string(),
                String::new(),
            ),
            _ => {
                let (abs, above) = place::above_root(self.root_abs(spec)?, levels);
                (place::resolve(&abs, &spec.name), String::new(), above)
            }
        };
        Ok(Source {
            path,
            dir: dir.to_string(),
            scanning: true,
            base,
            above,
        })
    }

    /// Puts the rules of one directory's file in front of `rules` (a `!`
    /// in it clears those). A file not read yet is asked for.
    fn layer(
        &mut self,
        rules: &mut Vec<Entry>,
        spec: &DirMerge,
        source: &Source,
        in_dir: Option<String>,
    ) -> Result<()> {
        let Some(Some(data)) = self.fetch(&source.path, in_dir) else {
            return Ok(());
        };
        let mut layer = Layer::default();
        self.read(&mut layer, data, &spec.template, source)?;
        if !layer.cleared {
            layer.own.append(rules);
        }
        *rules = layer.own;
        Ok(())
    }

    /// The contents of `path` if read (None inside: no such file); None
    /// when not read yet, which is asked for.
    fn fetch(&mut self, path: &str, in_dir: Option<String>) -> Option<Option<&'a [u8]>> {
        let files: &'a FileSet = self.files;
        let found = files.get(path);
        let need = Need {
            path: path.to_string(),
            in_dir,
        };
        if found.is_none() && !self.needs.contains(&need) {
            self.needs.push(need);
        }
        found
    }

    /// Reads the rules of one file into `layer`.
    fn read(
        &mut self,
        layer: &mut Layer,
        data: &[u8],
        template: &Template,
        source: &Source,
    ) -> Result<()> {
        let filter = Arc::clone(&self.scope.filter);
        let files = self.files;
        let ctx = Context {
            delete_excluded: filter.delete_excluded,
            base: &source.base,
            above: &source.above,
        };
        for (n, text) in rule_texts(data, template, filter.from0) {
            let whence = || format!("{}, line {n}", files.describe(&source.path));
            let parsed = parse::parse(&text, Syntax::Full, template, ctx)
                .map_err(|e| Error::Usage(format!("{}: {e}", whence())))?;
            match parsed {
                None => {}
                Some(Parsed::Clear) => {
                    layer.own.clear();
                    layer.cleared = true;
                }
                Some(Parsed::Rule(rule)) => layer.own.push(Entry::Rule(rule)),
                Some(Parsed::Cvs(flags)) => layer.own.push(Entry::Cvs(filter.cvs_rules(flags))),
                Some(Parsed::Merge { file, template }) => {
                    exclude_self(&mut layer.own, &file, &template);
                    self.merge(layer, &file, &template, source, &whence())?;
                }
                Some(Parsed::DirMerge { file, template }) => {
                    exclude_self(&mut layer.own, &file, &template);
                    self.declare(layer, &file, template, source)
                        .map_err(|e| Error::Usage(format!("{}: {e}", whence())))?;
                }
            }
        }
        Ok(())
    }

    /// `. FILE` inside a per-directory file: its rules go here, anchored
    /// at the transfer root. rsync takes a name without a `/` from the
    /// transfer root (its working directory), one with a `/` from the
    /// per-directory file's directory, and in the scan above the first
    /// directory every name from the scanned one. It must exist.
    fn merge(
        &mut self,
        layer: &mut Layer,
        file: &str,
        template: &Template,
        source: &Source,
        whence: &str,
    ) -> Result<()> {
        let path = match source.scanning || file.contains('/') {
            true => place::resolve(&source.dir, file),
            false => place::clean(file),
        };
        let path = self.located(path);
        if self.merging.len() >= MAX_MERGE_DEPTH || self.merging.contains(&path) {
            return Err(Error::Usage(format!(
                "{whence}: merge file {file} merges itself, or merge files nest more than \
                 {MAX_MERGE_DEPTH} deep"
            )));
        }
        let data = match self.fetch(&path, None) {
            None => return Ok(()),
            Some(None) => {
                return Err(Error::FileSelection(format!(
                    "{whence}: merge file {}: no such file",
                    self.files.describe(&path)
                )))
            }
            Some(Some(data)) => data,
        };
        let merged = Source {
            path: path.clone(),
            base: String::new(),
            above: String::new(),
            ..source.clone()
        };
        self.merging.push(path);
        let result = self.read(layer, data, template, &merged);
        self.merging.pop();
        result
    }

    /// A path from the transfer root that climbs above it, made absolute
    /// when the root's absolute path is known (rsync names files
    /// textually, which a path through ".." on the source may not).
    fn located(&self, path: String) -> String {
        match (&self.scope.root_abs, place::levels_above(&path)) {
            (Some(root), 1..) => place::clean(&format!("{root}/{path}")),
            _ => path,
        }
    }

    /// `: FILE` inside a per-directory file: a new per-directory file from
    /// this directory down (read here too), unless one of that name is in
    /// force already. A path in its name is taken from the file's
    /// directory.
    fn declare(
        &mut self,
        layer: &mut Layer,
        file: &str,
        template: Template,
        source: &Source,
    ) -> Result<(), String> {
        let spec = DirMerge::new(file, template, Some(&source.dir), source.scanning)?;
        if self.work.iter().any(|s| s.name == spec.name) {
            return Ok(());
        }
        let spec = Arc::new(spec);
        self.work.push(Arc::clone(&spec));
        layer.own.push(Entry::DirMerge(spec));
        Ok(())
    }
}
