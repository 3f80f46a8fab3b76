//! rsync options whose outcome is visible on disk: --dry-run changes
//! nothing, the quick check skips by size and mtime while --checksum looks
//! at content, and a failure on one file lets the others finish with exit 23.
mod common;

use common::*;
use std::fs;

#[test]
fn dry_run_writes_nothing_and_lists_files() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_test_tree(&src);
    let dest = sshd.remote().join("dest");
    fs::create_dir(&dest).unwrap();
    let out = sshd
        .ferry()
        .arg("-an")
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_dir_empty(&dest);
    for name in ["top.txt", "medium.bin", "leaf.dat"] {
        assert!(
            out.stdout.contains(name),
            "dry run did not list {name}\n{out}"
        );
    }
}

/// As rsync: between two local paths a changed file is copied whole unless
/// --no-whole-file asks for a delta.
#[test]
fn local_copies_are_whole_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.bin"), dir.path().join("dst.bin"));
    let old = random_bytes(3 * MIB as usize, 50);
    // -t twice: rsync takes a repeated flag as given once, and so does ferry.
    for (i, flag) in ["-t", "--no-whole-file"].into_iter().enumerate() {
        write_file(&dst, &old);
        set_mtime(&dst, 1_400_000_000);
        let mut new = old.clone();
        new[MIB as usize] ^= 1;
        write_file(&src, &new);
        set_mtime(&src, 1_500_000_000 + i as u64);
        let out = FerryCmd::bare(dir.path())
            .args(["-v", "-t", flag])
            .arg(&src)
            .arg(&dst)
            .run_ok();
        assert_files_identical(&src, &dst);
        // -v's names are rsync's (`%n%L`); the summary says how.
        assert_eq!(
            out.stdout.contains(" 1 by delta"),
            flag == "--no-whole-file",
            "{out}"
        );
    }
}

/// Same size and mtime, different content: the quick check keeps the
/// destination, --checksum replaces it.
#[test]
fn checksum_catches_what_the_quick_check_misses() {
    let sshd = Sshd::start();
    let src = sshd.local().join("same-size.bin");
    let dst = sshd.remote().join("same-size.bin");
    write_file(&src, &random_bytes(200_000, 30));
    write_file(&dst, &random_bytes(200_000, 31));
    set_mtime(&src, 1_400_000_000);
    set_mtime(&dst, 1_400_000_000);
    let before = fs::read(&dst).unwrap();

    sshd.ferry()
        .arg("-t")
        .arg(&src)
        .arg(sshd.spec(&dst))
        .run_ok();
    assert_eq!(
        fs::read(&dst).unwrap(),
        before,
        "quick check should have skipped"
    );

    sshd.ferry()
        .arg("-tc")
        .arg(&src)
        .arg(sshd.spec(&dst))
        .run_ok();
    assert_files_identical(&src, &dst);
}

/// A directory sits where a file must go: that file fails, the other files
/// arrive, ferry exits 23 (partial transfer) and the directory is untouched.
#[test]
fn one_failing_file_gives_23_and_the_rest_arrive() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    write_file(&src.join("a.txt"), b"alpha");
    write_file(&src.join("blocked"), b"cannot land");
    write_file(&src.join("z.txt"), b"omega");
    let dest = sshd.remote().join("dest");
    write_file(&dest.join("blocked/keep.txt"), b"kept");

    let out = sshd
        .ferry()
        .arg("-r")
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(23);
    assert!(
        out.stderr.contains("blocked"),
        "error names the file\n{out}"
    );
    assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(fs::read(dest.join("z.txt")).unwrap(), b"omega");
    assert_eq!(fs::read(dest.join("blocked/keep.txt")).unwrap(), b"kept");
    assert_no_partials(&dest);
}

/// --delete removes what the source lacks (files, and directories with
/// everything in them), only after a run without errors; --max-delete
/// refuses the lot, with exit 25, when more would go.
#[test]
fn delete_removes_extraneous_entries_only_after_a_clean_run() {
    let sshd = Sshd::start();
    let src = sshd.local().join("tree");
    make_test_tree(&src);
    let dest = sshd.remote().join("dest");
    let extra = [
        "stale.txt",
        "old-dir/a.txt",
        "old-dir/deeper/b.txt",
        "sub-only-in-dest.txt",
    ];
    let plant = || {
        for rel in extra {
            write_file(&dest.join(rel), b"not in the source");
        }
    };
    let sync = |args: &[&str]| {
        sshd.ferry()
            .arg("-a")
            .args(args)
            .arg(format!("{}/", src.display()))
            .arg(sshd.spec(&dest))
            .run_default()
    };
    plant();

    // More would go than allowed: nothing is deleted, exit 25.
    let out = sync(&["--delete", "--max-delete", "3"]);
    out.assert_code(25);
    out.assert_stderr_contains("--max-delete 3: 6 files and directories would be deleted");
    for rel in extra {
        assert!(dest.join(rel).exists(), "{rel} was deleted\n{out}");
    }

    // A dry run lists them and deletes nothing.
    let out = sync(&["--delete", "-n"]);
    out.assert_ok();
    assert!(out.stdout.contains("deleting "), "{out}");
    assert!(dest.join("stale.txt").exists());

    // Any error in the run: nothing is deleted. (A directory where ferry's
    // partial of a changed file would go is one: it never writes through
    // anything but a regular file of its own.)
    let blocker = dest.join(".top.txt.ferry-partial");
    fs::create_dir_all(&blocker).unwrap();
    write_file(&src.join("top.txt"), b"changed, so that it is sent again");
    let out = sync(&["--delete"]);
    out.assert_code(23);
    out.assert_stderr_contains("not deleting anything");
    for rel in extra {
        assert!(
            dest.join(rel).exists(),
            "{rel} was deleted despite the error\n{out}"
        );
    }

    // A clean run: exactly the source's tree is left.
    fs::remove_dir(&blocker).unwrap();
    let out = sync(&["--delete", "-v"]);
    out.assert_ok();
    assert_trees_identical(&src, &dest);
    assert!(out.stdout.contains("deleting "), "{out}");
    assert!(out.stdout.contains("6 deleted"), "{out}");
}
