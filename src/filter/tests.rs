//! The filter's tests; cases marked so were checked against rsync 3.5.0
//! by running it on small trees (`rsync -r OPTIONS src/ dst/; find dst`).

use std::sync::Arc;

use super::*;
use crate::error::{Error, Host};

fn filter(rules: &[(FilterFlag, &str)]) -> Scope {
    let args: Vec<FilterArg> = rules
        .iter()
        .map(|(flag, value)| FilterArg {
            flag: *flag,
            value: value.to_string(),
        })
        .collect();
    let filter = Filter::from_args(&args, false, &mut ListReader::default()).expect("rules parse");
    Scope::root(&Arc::new(filter))
}

fn filters(rules: &[&str]) -> Scope {
    let rules: Vec<(FilterFlag, &str)> = rules.iter().map(|r| (FilterFlag::Filter, *r)).collect();
    filter(&rules)
}

fn sends(scope: &Scope, path: &str) -> bool {
    let is_dir = path.ends_with('/');
    !scope.excluded(path.trim_end_matches('/'), is_dir, Side::Sender)
}

/// The filter of `args` with `options`.
fn built(args: &[(FilterFlag, &str)], options: &FilterOptions) -> Result<Scope> {
    let args: Vec<FilterArg> = args
        .iter()
        .map(|(flag, value)| FilterArg {
            flag: *flag,
            value: value.to_string(),
        })
        .collect();
    let filter = Filter::with_options(&args, options, &mut ListReader::default())?;
    Ok(Scope::root(&Arc::new(filter)))
}

/// Enters `dir` with the files of `tree` (paths as [`Need::path`] gives
/// them), answering the scope's needs the way the planner does.
fn enter(scope: &Scope, dir: &str, tree: &[(&str, &str)]) -> Result<Scope> {
    let mut set = FileSet::new(&Host::remote("src"), "src");
    for _ in 0..8 {
        let needs = match scope.enter_dir(dir, &set)? {
            Entered::Ready(scope) => return Ok(scope),
            Entered::Need(needs) => needs,
        };
        for need in needs {
            assert!(!set.has(&need.path), "asked twice for {}", need.path);
            if let Some(name) = &need.in_dir {
                assert_eq!(need.path, place::resolve(dir, name));
            }
            let data = tree.iter().find(|(p, _)| *p == need.path);
            set.insert(need.path, data.map(|(_, d)| d.as_bytes().to_vec()));
        }
    }
    panic!("entering {dir} never finished");
}

/// Enters each directory of `path` ("a/b": "a", then "a/b") in turn.
fn walk(scope: &Scope, path: &str, tree: &[(&str, &str)]) -> Scope {
    let mut scope = scope.clone();
    let mut dir = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        dir = place::resolve(&dir, part);
        scope = enter(&scope, &dir, tree).expect("enters");
    }
    scope
}

/// Which of `names` the scope sends.
fn sent<'a>(scope: &Scope, names: &[&'a str]) -> Vec<&'a str> {
    names.iter().copied().filter(|n| sends(scope, n)).collect()
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

/// Checked against rsync 3.5.0: in a `:w` file "- foo + bar - *" stops
/// rsync ("unexpected end of filter rule": each word is a rule), while
/// "-_foo +_bar -_*" works.
#[test]
fn rule_files_skip_blanks_and_comments() {
    let lines = rule_texts(
        b"# comment\n\n; other\n- a\r\n+ b\rc\n",
        &Template::default(),
        false,
    );
    let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["- a", "+ b", "c"]);
    assert_eq!(lines[0].0, 4, "line numbers count every line");
    let split = Template {
        word_split: true,
        ..Template::default()
    };
    let words = rule_texts(b"-_foo +_bar baz #x", &split, false);
    let texts: Vec<&str> = words.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["-_foo", "+_bar", "baz", "#x"]);
    let scope = filters(&[":w .rules"]);
    let err = enter(&scope, "", &[(".rules", "- foo + bar")]).unwrap_err();
    assert!(err.to_string().contains("\"-\""), "{err}");
    let a = enter(&scope, "", &[(".rules", "-_foo +_bar -_*")]).unwrap();
    assert!(!sends(&a, "foo") && sends(&a, "bar") && !sends(&a, "baz"));
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

fn cvs_options(env: CvsEnv) -> FilterOptions {
    FilterOptions {
        cvs_exclude: true,
        cvs_env: Some(env),
        ..FilterOptions::default()
    }
}

/// The tree of the -C checks: rsync 3.5.0 `HOME=/nonexistent rsync -r -C
/// src/ dst/` sent .bzr .cvsignore .hg .svn (files) bar baz keep.c sub/
/// sub/.cvsignore sub/bar sub/deep/ sub/foo sub/deep/{bar,baz,foo}.
const CVS_TREE: &[(&str, &str)] = &[
    (".cvsignore", "foo  #hash"),
    ("sub/.cvsignore", "bar\n!\nbaz\n"),
];

#[test]
fn cvs_exclude_reads_the_list_and_per_directory_cvsignore_files() {
    let scope = built(&[], &cvs_options(CvsEnv::default())).unwrap();
    let root = enter(&scope, "", CVS_TREE).unwrap();
    let files = [
        "foo", "#hash", "bar", "baz", "keep.c", "a.o", "core", "tags", "a~",
    ];
    assert_eq!(sent(&root, &files), ["bar", "baz", "keep.c"]);
    assert_eq!(
        sent(
            &root,
            &[".git/", "CVS/", "x.bak/", ".svn", ".svn/", ".cvsignore"]
        ),
        [".svn", ".cvsignore"]
    );
    let sub = enter(&root, "sub", CVS_TREE).unwrap();
    assert_eq!(
        sent(&sub, &["sub/foo", "sub/bar", "sub/baz"]),
        ["sub/foo", "sub/bar"],
        "not inherited; \"!\" cleared bar"
    );
    let deep = enter(&sub, "sub/deep", CVS_TREE).unwrap();
    assert_eq!(sent(&deep, &["sub/deep/baz", "sub/deep/foo"]).len(), 2);
}

/// Checked against rsync 3.5.0: `-C --include=a.o --include=foo` sends
/// both (-C's rules come last wherever -C stands); `-f:C --include=foo
/// -C` does not send foo (the first :C keeps its place, -C's is dropped);
/// `-f-C` alone reads no .cvsignore.
#[test]
fn cvs_rules_go_after_the_others_unless_placed_with_rules() {
    let includes = [(FilterFlag::Include, "a.o"), (FilterFlag::Include, "foo")];
    let scope = built(&includes, &cvs_options(CvsEnv::default())).unwrap();
    let root = enter(&scope, "", CVS_TREE).unwrap();
    assert_eq!(sent(&root, &["a.o", "foo", "core"]), ["a.o", "foo"]);
    let placed = [(FilterFlag::Filter, ":C"), (FilterFlag::Include, "foo")];
    let scope = built(&placed, &cvs_options(CvsEnv::default())).unwrap();
    let root = enter(&scope, "", CVS_TREE).unwrap();
    assert_eq!(sent(&root, &["foo", "core"]), Vec::<&str>::new());
    let options = FilterOptions {
        cvs_env: Some(CvsEnv::default()),
        ..FilterOptions::default()
    };
    let scope = built(&[(FilterFlag::Filter, "-C")], &options).unwrap();
    assert_eq!(scope.dir_merge_names().count(), 0);
    assert_eq!(sent(&scope, &["foo", "core"]), ["foo"]);
}

/// Checked against rsync 3.5.0 with --delete: a destination directory
/// gone from the source holding a.o is deleted (the default list is
/// perishable), one holding keep.c (named in ~/.cvsignore) is kept, and a
/// top-level a.o is kept.
#[test]
fn cvs_defaults_are_perishable_and_the_home_list_is_not() {
    let env = CvsEnv {
        home_cvsignore: Some(b"keep.c\n".to_vec()),
        cvsignore: None,
    };
    let scope = built(&[], &cvs_options(env)).unwrap();
    assert!(scope.excluded("a.o", false, Side::Receiver));
    assert!(!scope.excluded("gone/a.o", false, Side::Deleting));
    assert!(scope.excluded("gone2/keep.c", false, Side::Deleting));
}

#[test]
fn cvs_rules_are_the_senders_only_with_delete_excluded() {
    let options = FilterOptions {
        delete_excluded: true,
        ..cvs_options(CvsEnv::default())
    };
    let scope = built(&[], &options).unwrap();
    let root = enter(&scope, "", CVS_TREE).unwrap();
    assert!(root.excluded("a.o", false, Side::Sender));
    assert!(!root.excluded("a.o", false, Side::Receiver));
    assert!(root.excluded("foo", false, Side::Sender));
    assert!(!root.excluded("foo", false, Side::Receiver));
}

/// Checked against rsync 3.5.0: `-f'+C'` sends everything the list names
/// (its rules become includes), and `-f':C foo'` reads files named foo
/// the CVS way.
#[test]
fn the_c_modifier_in_filter_rules() {
    let options = FilterOptions {
        cvs_env: Some(CvsEnv::default()),
        ..FilterOptions::default()
    };
    let scope = built(
        &[(FilterFlag::Filter, "+C"), (FilterFlag::Filter, "- *")],
        &options,
    )
    .unwrap();
    assert_eq!(sent(&scope, &["a.o", "x"]), ["a.o"]);
    let scope = built(&[(FilterFlag::Filter, ":C foo")], &options).unwrap();
    assert_eq!(scope.dir_merge_names().collect::<Vec<_>>(), ["foo"]);
    let sub = enter(&scope, "sub", &[("sub/foo", "RCS baz")]).unwrap();
    assert_eq!(sent(&sub, &["sub/RCS", "sub/baz", "sub/foo"]), ["sub/foo"]);
}

const RSYNC_FILTER_TREE: &[(&str, &str)] = &[
    ("/w/top/.rsync-filter", ": .sub"),
    ("/w/top/.sub", "- f1"),
    ("/w/top/mid/.sub", "- f2"),
    ("/w/top/mid/.sub2", "- /src/f3"),
    ("a/.sub", "- f4"),
];

/// Checked against rsync 3.5.0 (`rsync -r -F mid/src/ out`, run in top):
/// top/.rsync-filter holding ": .sub" makes .sub a per-directory file from
/// top down: top/.sub and mid/.sub are read as parents of the transfer,
/// then src/a/.sub; "- /src/f3" in mid/.sub2 (added with ": .sub2")
/// anchors at mid.
#[test]
fn rsync_filter_files_above_the_transfer_and_the_rules_they_add() {
    let scope = built(&[(FilterFlag::RsyncFilter, "")], &FilterOptions::default())
        .unwrap()
        .at_root_path("/w/top/mid/src");
    let names = ["f1", "f2", "f3", "f4", ".rsync-filter"];
    let root = enter(&scope, "", RSYNC_FILTER_TREE).unwrap();
    assert_eq!(sent(&root, &names), ["f3", "f4", ".rsync-filter"]);
    let a = walk(&root, "a", RSYNC_FILTER_TREE);
    assert_eq!(sent(&a, &["a/f1", "a/f2", "a/f3", "a/f4"]), ["a/f3"]);
    let mut tree = RSYNC_FILTER_TREE.to_vec();
    tree[0] = ("/w/top/.rsync-filter", ": .sub\n: .sub2\n");
    let root = enter(&scope, "", &tree).unwrap();
    assert_eq!(sent(&root, &["f3"]), Vec::<&str>::new());
    let a = walk(&root, "a", &tree);
    assert_eq!(sent(&a, &["a/f3"]), ["a/f3"]);
}

#[test]
fn a_second_f_excludes_the_files_and_a_third_does_nothing() {
    let f = (FilterFlag::RsyncFilter, "");
    for (count, hidden) in [(1, false), (2, true), (3, true)] {
        let scope = built(&vec![f; count], &FilterOptions::default()).unwrap();
        assert_eq!(
            scope.dir_merge_names().collect::<Vec<_>>(),
            [".rsync-filter"]
        );
        assert_eq!(!sends(&scope, "a/.rsync-filter"), hidden, "-F x{count}");
    }
}

/// top/.rules "- f1", top/mid/.rules "- f2", top/mid/src/.rules "- f3".
const PARENTS_TREE: &[(&str, &str)] = &[
    ("/w/top/.rules", "- f1"),
    ("/w/top/mid/.rules", "- f2\n- /src/a/f4"),
    ("/w/top/mid/src/.rules", "- f3"),
    ("/w/top/mid/src/a/.rules", "- x"),
];

/// Sends of f1..f4 at the root of the transfer and in a/, for a walk of
/// top/mid/src (whose transfer root is `root_abs`, `first` its path from
/// there) with `rule`.
fn parents_case(rule: &str, root_abs: &str, first: &str) -> (Vec<String>, Vec<String>) {
    let tree: Vec<(String, &str)> = PARENTS_TREE
        .iter()
        .map(|(p, d)| match p.strip_prefix(&format!("{root_abs}/")) {
            Some(rel) => (rel.to_string(), *d),
            None => (p.to_string(), *d),
        })
        .collect();
    let tree: Vec<(&str, &str)> = tree.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let scope = filters(&[rule]).at_root_path(root_abs);
    let top = enter(&scope, first, &tree).unwrap();
    let a = enter(&top, &place::resolve(first, "a"), &tree).unwrap();
    let names = |prefix: &str| -> Vec<String> {
        ["f1", "f2", "f3", "f4"]
            .iter()
            .map(|n| place::resolve(prefix, n))
            .collect()
    };
    let keep = |scope: &Scope, names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| sends(scope, n))
            .map(|n| n.rsplit('/').next().unwrap_or(&n).to_string())
            .collect()
    };
    (
        keep(&top, names(first)),
        keep(&a, names(&place::resolve(first, "a"))),
    )
}

/// Checked against rsync 3.5.0 (run in top: `rsync -r -f RULE mid/src/
/// out`, and `mid/src` for the last two).
#[test]
fn dir_merge_names_with_a_path_read_the_parents_first() {
    let src = "/w/top/mid/src";
    let case = |rule, root, first| parents_case(rule, root, first);
    assert_eq!(case(": /.rules", src, ""), (vec!["f4".into()], vec![]));
    assert_eq!(
        case(":n /.rules", src, ""),
        (
            vec!["f1".into(), "f2".into(), "f4".into()],
            vec!["f1".into(), "f2".into(), "f3".into(), "f4".into()]
        ),
        "with n nothing above stays, and src's own rules stop at src"
    );
    assert_eq!(
        case(": ../.rules", src, ""),
        (vec!["f1".into(), "f4".into()], vec!["f1".into()])
    );
    assert_eq!(case(": ../../.rules", src, ""), (vec!["f4".into()], vec![]));
    for plain in [
        ": sub/.rules",
        ": /elsewhere/.rules",
        ": ./.rules",
        ": .rules",
    ] {
        assert_eq!(
            case(plain, src, ""),
            (
                vec!["f1".into(), "f2".into(), "f4".into()],
                vec!["f1".into(), "f2".into(), "f4".into()]
            ),
            "{plain} scans nothing"
        );
    }
    let mid = "/w/top/mid";
    assert_eq!(case(": /.rules", mid, "src"), (vec!["f4".into()], vec![]));
    assert_eq!(
        case(": ../.rules", mid, "src"),
        (vec!["f1".into(), "f4".into()], vec!["f1".into()])
    );
}

#[test]
fn the_scan_asks_for_every_parent_at_once() {
    let scope = filters(&[": /.rules"]).at_root_path("/w/src");
    let Entered::Need(needs) = scope
        .enter_dir("", &FileSet::new(&Host::Local, "src"))
        .unwrap()
    else {
        panic!("needs files");
    };
    let paths: Vec<(&str, Option<&str>)> = needs
        .iter()
        .map(|n| (n.path.as_str(), n.in_dir.as_deref()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/.rules", None),
            ("/w/.rules", None),
            (".rules", Some(".rules"))
        ]
    );
}

#[test]
fn looking_above_the_root_needs_its_absolute_path() {
    let scope = filters(&[": /.rules"]);
    let err = enter(&scope, "", &[]).unwrap_err().to_string();
    assert!(err.contains(".rules") && err.contains("absolute"), "{err}");
    let set = FileSet::new(&Host::remote("host"), "src");
    assert_eq!(set.source_path("a/.rules"), "src/a/.rules");
    assert_eq!(set.source_path("/etc/x"), "/etc/x");
    assert_eq!(FileSet::new(&Host::Local, ".").source_path("a"), "a");
}

/// Checked against rsync 3.5.0: a/.rules holding ": .sub" reads a/.sub
/// and a/b/.sub but not src/.sub; with ":n .sub" a/.sub's rules stop at
/// a; under `-f':n .rules'` the .sub files of a/b are not read at all.
#[test]
fn dir_merge_rules_inside_per_directory_files() {
    let tree = [
        ("a/.rules", ": .sub"),
        ("a/.sub", "- f1"),
        ("a/b/.sub", "- f2"),
        (".sub", "- f3"),
    ];
    let names = |dir: &str| -> Vec<String> {
        ["f1", "f2", "f3"]
            .iter()
            .map(|n| place::resolve(dir, n))
            .collect()
    };
    let check = |outer: &str, tree: &[(&str, &str)]| -> Vec<Vec<String>> {
        let scope = filters(&[outer]);
        ["", "a", "a/b"]
            .iter()
            .map(|dir| {
                let here = walk(&enter(&scope, "", tree).unwrap(), dir, tree);
                names(dir).into_iter().filter(|n| sends(&here, n)).collect()
            })
            .collect()
    };
    let all = |dir: &str| names(dir);
    let only = |dir: &str, n: &[&str]| -> Vec<String> {
        n.iter().map(|n| place::resolve(dir, n)).collect()
    };
    assert_eq!(
        check(": .rules", &tree),
        [all(""), only("a", &["f2", "f3"]), only("a/b", &["f3"])]
    );
    let mut no_inherit = tree;
    no_inherit[0] = ("a/.rules", ":n .sub");
    assert_eq!(
        check(": .rules", &no_inherit),
        [
            all(""),
            only("a", &["f2", "f3"]),
            only("a/b", &["f1", "f3"])
        ]
    );
    assert_eq!(
        check(":n .rules", &tree),
        [all(""), only("a", &["f2", "f3"]), all("a/b")]
    );
}

/// Checked against rsync 3.5.0: a/.rules holding ": ../.x" reads src/.x
/// as a parent of a (its "- /a/f1" anchored at src) and a/.x.
#[test]
fn a_dir_merge_with_a_path_inside_a_per_directory_file() {
    let tree = [("a/.rules", ": ../.x"), (".x", "- /a/f1"), ("a/.x", "- f2")];
    let a = walk(&filters(&[": .rules"]), "a", &tree);
    assert_eq!(sent(&a, &["a/f1", "a/f2", "a/f3"]), ["a/f3"]);
    let tree = [("a/.rules", ": ../.x"), (".x", "- /f1")];
    let a = walk(&filters(&[": .rules"]), "a", &tree);
    assert_eq!(sent(&a, &["a/f1"]), ["a/f1"], "/f1 is src's, not a's");
}

/// Checked against rsync 3.5.0: in src/a/.rules, ". other" reads
/// src/other (rsync's working directory is the transfer root), ". ./other"
/// reads src/a/other; the merged rules anchor at the transfer root, not at
/// a; a missing one stops the run.
#[test]
fn merge_rules_inside_per_directory_files() {
    let tree = [
        ("a/.rules", ". other"),
        ("other", "- f3"),
        ("a/other", "- /f1\n- /a/f2\n- /b/f3"),
    ];
    let scope = filters(&[": .rules"]);
    let b = walk(&scope, "a/b", &tree);
    assert_eq!(
        sent(&b, &["a/b/f1", "a/b/f2", "a/b/f3"]),
        ["a/b/f1", "a/b/f2"]
    );
    let mut tree = tree;
    tree[0] = ("a/.rules", ". ./other");
    let a = walk(&scope, "a", &tree);
    assert_eq!(sent(&a, &["a/f1", "a/f2", "a/b/f3"]), ["a/f1", "a/b/f3"]);
    let err = enter(&scope, "a", &[("a/.rules", ". ./gone")]).unwrap_err();
    assert!(matches!(err, Error::FileSelection(_)), "{err:?}");
    assert!(err.to_string().contains("src:src/a/gone"), "{err}");
}

#[test]
fn a_merge_file_that_merges_itself_is_refused() {
    let scope = filters(&[": .rules"]);
    let err = enter(&scope, "", &[(".rules", ". ./.rules")]).unwrap_err();
    assert!(err.to_string().contains("merges itself"), "{err}");
}

/// Checked against rsync 3.5.0: `-0 --exclude-from=F` reads F
/// NUL-separated, `--exclude-from=F -0` line by line (the NUL then ends
/// each line's text); per-directory files follow the final -0.
#[test]
fn from0_applies_to_the_lists_named_after_it() {
    let dir = std::env::temp_dir().join(format!("ferry-from0-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("ex0");
    std::fs::write(&list, b"foo\0#c\0a\nb\0\0;x\0").unwrap();
    let list = list.to_string_lossy().into_owned();
    let before = [
        (FilterFlag::From0, ""),
        (FilterFlag::ExcludeFrom, list.as_str()),
    ];
    let scope = built(&before, &FilterOptions::default()).unwrap();
    assert_eq!(sent(&scope, &["foo", "#c", "a\nb", "b"]), ["#c", "b"]);
    let after = [
        (FilterFlag::ExcludeFrom, list.as_str()),
        (FilterFlag::From0, ""),
    ];
    let scope = built(&after, &FilterOptions::default()).unwrap();
    assert_eq!(sent(&scope, &["foo", "#c", "a\nb", "b"]), ["#c", "a\nb"]);
    let per_dir = [(FilterFlag::Filter, ": .rules"), (FilterFlag::From0, "")];
    let scope = built(&per_dir, &FilterOptions::default()).unwrap();
    let root = enter(&scope, "", &[(".rules", "- foo\0- bar\n- baz\0")]).unwrap();
    assert_eq!(sent(&root, &["foo", "bar", "baz"]), ["bar", "baz"]);
    let undone = [
        (FilterFlag::From0, ""),
        (FilterFlag::NoFrom0, ""),
        (FilterFlag::ExcludeFrom, list.as_str()),
    ];
    let mut lists = ListReader::default();
    let args: Vec<FilterArg> = undone
        .iter()
        .map(|(flag, value)| FilterArg {
            flag: *flag,
            value: value.to_string(),
        })
        .collect();
    Filter::with_options(&args, &FilterOptions::default(), &mut lists).unwrap();
    assert!(!lists.from0(), "the reader ends as --no-from0 left it");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_old_entry_point_reads_slot_files_and_refuses_more() {
    let scope = filters(&[": .rules"]);
    let origin = |_| "host:src/a/.rules".to_string();
    let a = scope
        .enter("a", &[Some(b"- x\n".to_vec())], &origin)
        .unwrap();
    assert!(!sends(&a, "a/x"));
    let err = scope
        .enter("a", &[Some(b". ./more\n".to_vec())], &origin)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a/more"), "{err}");
}

/// Checked against rsync 3.5.0: sub/.rules holding "-C" (with
/// `-f': .rules'`) excludes sub/a.o but not a.o.
#[test]
fn a_cvs_rule_inside_a_per_directory_file() {
    let options = FilterOptions {
        cvs_env: Some(CvsEnv::default()),
        ..FilterOptions::default()
    };
    let scope = built(&[(FilterFlag::Filter, ": .rules")], &options).unwrap();
    let sub = walk(&scope, "sub", &[("sub/.rules", "-C")]);
    assert_eq!(sent(&sub, &["sub/a.o", "sub/x"]), ["sub/x"]);
    assert!(sends(&enter(&scope, "", &[]).unwrap(), "a.o"));
}

/// Checked against rsync 3.5.0 (`rsync -r -F mid/src/ out` in top):
/// ". other" in top/.rsync-filter reads top/other (in the scan above the
/// transfer every name is taken from the scanned directory), whose "- /f2"
/// anchors at the transfer root and "- /src/f2" matches nothing.
#[test]
fn a_merge_rule_in_a_file_above_the_transfer() {
    let scope = built(&[(FilterFlag::RsyncFilter, "")], &FilterOptions::default())
        .unwrap()
        .at_root_path("/w/top/mid/src");
    let tree = [
        ("/w/top/.rsync-filter", ". other"),
        ("/w/top/other", "- f1\n- /f2\n- /src/f3"),
    ];
    let root = enter(&scope, "", &tree).unwrap();
    assert_eq!(sent(&root, &["f1", "f2", "f3"]), ["f3"]);
    let a = enter(&root, "a", &tree).unwrap();
    assert_eq!(sent(&a, &["a/f1", "a/f2", "a/f3"]), ["a/f2", "a/f3"]);
}
