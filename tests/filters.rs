//! rsync's filter rules against a real sshd: which files arrive (and which
//! do not) with --include/--exclude, anchored, directory-only and `**`
//! patterns, --exclude-from files, --filter rules with merge and
//! per-directory files, --delete sparing excluded files unless
//! --delete-excluded, --files-from both ways, dry runs, and the errors a
//! bad rule or a missing rule file give.
mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Asserts `dest` holds exactly `expected` (directories with a trailing
/// `/`), each file byte-identical to its source under `src`.
#[track_caller]
fn assert_holds(dest: &Path, src: &Path, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        list_tree(dest),
        expected,
        "what arrived in {}",
        dest.display()
    );
    for rel in expected.iter().filter(|r| !r.ends_with('/')) {
        assert_files_identical(&src.join(rel), &dest.join(rel));
    }
}

fn slash(path: &Path) -> String {
    format!("{}/", path.display())
}

#[test]
fn include_directories_and_rs_files_only() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(
        &src,
        &[
            "main.rs",
            "notes.txt",
            "sub/lib.rs",
            "sub/lib.o",
            "sub/deep/mod.rs",
            "docs/readme.md",
        ],
    );
    let dest = sshd.remote().join("dest");
    sshd.ferry()
        .args([
            "-r",
            "--include",
            "*/",
            "--include",
            "*.rs",
            "--exclude",
            "*",
        ])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    // rsync makes the directories too, empty or not.
    assert_holds(
        &dest,
        &src,
        &[
            "docs/",
            "main.rs",
            "sub/",
            "sub/deep/",
            "sub/deep/mod.rs",
            "sub/lib.rs",
        ],
    );
}

#[test]
fn anchored_patterns_match_at_the_transfer_root_only() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_tree_of(&src, &["build/out.bin", "lib/build/keep.rs", "lib/a.rs"]);

    let anchored = sshd.remote().join("anchored");
    sshd.ferry()
        .args(["-r", "--exclude", "/build"])
        .arg(slash(&src))
        .arg(sshd.spec(&anchored))
        .run_ok();
    assert_holds(
        &anchored,
        &src,
        &["lib/", "lib/a.rs", "lib/build/", "lib/build/keep.rs"],
    );

    let anywhere = sshd.remote().join("anywhere");
    sshd.ferry()
        .args(["-r", "--exclude", "build"])
        .arg(slash(&src))
        .arg(sshd.spec(&anywhere))
        .run_ok();
    assert_holds(&anywhere, &src, &["lib/", "lib/a.rs"]);

    // Without the trailing slash the root holds "tree" itself, so the
    // anchored pattern names it.
    let named = sshd.remote().join("named");
    sshd.ferry()
        .args(["-r", "--exclude", "/tree/lib"])
        .arg(&src)
        .arg(sshd.spec(&named))
        .run_ok();
    assert_holds(&named.join("tree"), &src, &["build/", "build/out.bin"]);
}

#[test]
fn directory_only_and_double_star_patterns() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(
        &src,
        &[
            "cache/blob",
            "app/cache/blob",
            "app/cache.txt",
            "other/cache",
            "logs/a/x.log",
            "logs/a/b/y.log",
            "logs/top.log",
            "keep/a/z.log",
        ],
    );
    let dest = sshd.remote().join("dest");
    sshd.ferry()
        .args(["-r", "--exclude", "cache/", "--exclude", "/logs/**/*.log"])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_holds(
        &dest,
        &src,
        &[
            "app/",
            "app/cache.txt",
            "keep/",
            "keep/a/",
            "keep/a/z.log",
            "logs/",
            "logs/a/",
            "logs/a/b/",
            "logs/top.log",
            "other/",
            "other/cache",
        ],
    );
}

#[test]
fn exclude_from_skips_comments_and_blank_lines_on_pull() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    make_tree_of(
        &src,
        &["a.txt", "b.tmp", "sub/c.log", "sub/keep.log", "sub/#odd"],
    );
    let list = sshd.local().join("excludes");
    // "#odd" would be a pattern were comments not skipped: it stays.
    fs::write(
        &list,
        "# comments go\n\n; here too\n*.tmp\n+ keep.log\n*.log\n",
    )
    .unwrap();
    let dest = sshd.local().join("dest");
    sshd.ferry()
        .arg("-r")
        .arg("--exclude-from")
        .arg(&list)
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(&dest)
        .run_ok();
    assert_holds(&dest, &src, &["a.txt", "sub/", "sub/#odd", "sub/keep.log"]);
}

#[test]
fn filter_rules_in_order_between_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree_of(&src, &["a.txt", "b.tmp", "keep.tmp", "sub/c.tmp"]);

    let plain = dir.path().join("plain");
    FerryCmd::bare(dir.path())
        .args(["-r", "--filter", "- *.tmp"])
        .arg(slash(&src))
        .arg(&plain)
        .run_ok();
    assert_holds(&plain, &src, &["a.txt", "sub/"]);

    let kept = dir.path().join("kept");
    FerryCmd::bare(dir.path())
        .args(["-r", "-f", "+ keep.tmp", "-f", "- *.tmp"])
        .arg(slash(&src))
        .arg(&kept)
        .run_ok();
    assert_holds(&kept, &src, &["a.txt", "keep.tmp", "sub/"]);
}

#[test]
fn merge_files_and_per_directory_files() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(
        &src,
        &[
            "a.c",
            "a.bak",
            "big.iso",
            "sub/big.iso",
            "sub/b.c",
            "sub/scratch",
            "sub/deep/scratch",
            "sub/deep/d.c",
        ],
    );
    // Anchored in a per-directory file means at that file's directory.
    write_file(&src.join("sub/.ignore"), b"/scratch\n");
    let rules = sshd.local().join("rules.txt");
    fs::write(&rules, "# a merge file\n- *.bak\n- /big.iso\n:e- .ignore\n").unwrap();
    let dest = sshd.remote().join("dest");
    sshd.ferry()
        .arg("-r")
        .arg("-f")
        .arg(format!(". {}", rules.display()))
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_holds(
        &dest,
        &src,
        &[
            "a.c",
            "sub/",
            "sub/b.c",
            "sub/big.iso",
            "sub/deep/",
            "sub/deep/d.c",
            "sub/deep/scratch",
        ],
    );
}

#[test]
fn delete_spares_excluded_files_unless_delete_excluded() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["a.txt", "sub/b.txt"]);
    let dest = sshd.remote().join("dest");
    make_tree_of(
        &dest,
        &[
            "gone.txt",
            "old.tmp",
            "sub/gone.txt",
            "sub/old.tmp",
            "olddir/x.tmp",
            "olddir/y.txt",
            "precious/data",
        ],
    );
    sshd.ferry()
        .args(["-r", "--delete", "--exclude", "*.tmp", "-f", "P /precious"])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    // Excluded files stay, and so does the directory that holds one.
    assert_eq!(
        list_tree(&dest),
        [
            "a.txt",
            "old.tmp",
            "olddir/",
            "olddir/x.tmp",
            "precious/",
            "precious/data",
            "sub/",
            "sub/b.txt",
            "sub/old.tmp",
        ]
    );
    assert_files_identical(&src.join("a.txt"), &dest.join("a.txt"));

    sshd.ferry()
        .args([
            "-r",
            "--delete-excluded",
            "--exclude",
            "*.tmp",
            "-f",
            "P /precious",
        ])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    // Protect rules still hold with --delete-excluded.
    assert_eq!(
        list_tree(&dest),
        ["a.txt", "precious/", "precious/data", "sub/", "sub/b.txt"]
    );
}

#[test]
fn files_from_pushes_listed_paths_keeping_them() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(
        &src,
        &[
            "a.txt",
            "b.txt",
            "sub/c.rs",
            "sub/c.tmp",
            "sub/other.rs",
            "dir/x",
            "dir/inner/y",
            "plain/z",
        ],
    );
    let list = sshd.local().join("list");
    fs::write(
        &list,
        "sub/c.rs\n# a comment\n\n; another\nb.txt\nsub/c.tmp\ndir/\nplain\n",
    )
    .unwrap();
    let dest = sshd.remote().join("dest");
    // -a does not mean -r with --files-from: "dir/" brings its entries,
    // "plain" only itself. The filter applies to listed paths too.
    sshd.ferry()
        .args(["-a", "--exclude", "*.tmp", "--files-from"])
        .arg(&list)
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_holds(
        &dest,
        &src,
        &[
            "b.txt",
            "dir/",
            "dir/inner/",
            "dir/x",
            "plain/",
            "sub/",
            "sub/c.rs",
        ],
    );
}

#[test]
fn files_from_pulls_listed_trees_with_recursion() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    make_tree_of(
        &src,
        &[
            "a.txt",
            "sub/c.rs",
            "sub/deep/d.rs",
            "sub/deep/e.o",
            "z/skip",
        ],
    );
    let list = sshd.local().join("list");
    fs::write(&list, "sub\r\n./a.txt\r\n").unwrap();
    let dest = sshd.local().join("dest");
    sshd.ferry()
        .args(["-r", "--exclude", "*.o", "--files-from"])
        .arg(&list)
        .arg(sshd.spec(&src))
        .arg(&dest)
        .run_ok();
    assert_holds(
        &dest,
        &src,
        &["a.txt", "sub/", "sub/c.rs", "sub/deep/", "sub/deep/d.rs"],
    );
}

#[test]
fn files_from_names_missing_paths_and_copies_the_rest() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["here.txt"]);
    let list = sshd.local().join("list");
    fs::write(&list, "here.txt\nnot/there.txt\n").unwrap();
    let dest = sshd.remote().join("dest");
    let out = sshd
        .ferry()
        .arg("--files-from")
        .arg(&list)
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(23).assert_stderr_contains("not/there.txt");
    assert_holds(&dest, &src, &["here.txt"]);
}

#[test]
fn bad_rules_and_missing_rule_files_are_named() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(&src, &["a.txt"]);
    let dest = sshd.remote().join("dest");

    for rule in ["x foo", "-*.o", "- "] {
        let out = sshd
            .ferry()
            .args(["-r", "-f", rule])
            .arg(slash(&src))
            .arg(sshd.spec(&dest))
            .run_default();
        out.assert_code(1)
            .assert_stderr_contains(&format!("{rule:?}"));
    }
    let out = sshd
        .ferry()
        .args(["-r", "-f", "bogus"])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_stderr_contains("supports");

    // rsync exits 11 (file I/O) when a rule file cannot be read.
    let missing = sshd.local().join("no-such-excludes");
    let out = sshd
        .ferry()
        .arg("-r")
        .arg("--exclude-from")
        .arg(&missing)
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(11)
        .assert_stderr_contains(&format!("--exclude-from {}", missing.display()));
    assert!(!dest.exists(), "nothing may be copied after a bad rule");
}

#[test]
fn dry_run_lists_only_included_files() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_tree_of(
        &src,
        &[
            "wanted.txt",
            "unwanted.tmp",
            "sub/also-wanted.txt",
            "sub/no.tmp",
        ],
    );
    let dest = sshd.remote().join("dest");
    fs::create_dir(&dest).unwrap();
    let out = sshd
        .ferry()
        .args(["-rn", "--exclude", "*.tmp"])
        .arg(slash(&src))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_dir_empty(&dest);
    for name in ["wanted.txt", "also-wanted.txt"] {
        assert!(
            out.stdout.contains(name),
            "dry run did not list {name}\n{out}"
        );
    }
    assert!(
        !out.stdout.contains(".tmp"),
        "dry run listed an excluded file\n{out}"
    );
}
