//! Push and pull round trips against a real sshd: a large file, a nested
//! tree with archive metadata, rsync's trailing-slash rule, no-op reruns
//! (measured through a counting proxy), the sftp:// URL form, and a
//! local-to-local copy through the same engine.
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

const BIG: usize = 64 * MIB as usize;

/// Sum of the sizes of all regular files under `root`.
fn tree_bytes(root: &Path) -> u64 {
    walk(root)
        .iter()
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn push_large_file_into_existing_dir() {
    let sshd = Sshd::start();
    let src = sshd.local().join("big.bin");
    write_file(&src, &random_bytes(BIG, 64));
    // DEST is an existing directory: the file lands in DEST/big.bin.
    sshd.ferry()
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("big.bin"));
    assert_eq!(list_tree(&sshd.remote()), vec!["big.bin".to_string()]);
}

#[test]
fn pull_large_file_to_new_name() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("big.bin");
    write_file(&src, &random_bytes(BIG, 65));
    // DEST does not exist: it is the file's new name.
    let dst = sshd.local().join("copy.bin");
    sshd.ferry().arg(sshd.spec(&src)).arg(&dst).run_ok();
    assert_files_identical(&src, &dst);
    assert_eq!(list_tree(&sshd.local()), vec!["copy.bin".to_string()]);
}

#[test]
fn single_file_destination_rules() {
    let sshd = Sshd::start();
    let data = random_bytes(10_000, 5);
    let src = sshd.local().join("one.txt");
    write_file(&src, &data);
    fs::create_dir(sshd.remote().join("existing")).unwrap();

    // Push into an existing directory, then to a new name.
    sshd.ferry()
        .arg(&src)
        .arg(sshd.spec(&sshd.remote().join("existing")))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("existing/one.txt"));
    sshd.ferry()
        .arg(&src)
        .arg(sshd.spec(&sshd.remote().join("renamed.txt")))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("renamed.txt"));

    // Pull into an existing directory, then to a new name.
    let ldir = sshd.local().join("into");
    fs::create_dir(&ldir).unwrap();
    sshd.ferry()
        .arg(sshd.spec(&sshd.remote().join("renamed.txt")))
        .arg(&ldir)
        .run_ok();
    assert_files_identical(&src, &ldir.join("renamed.txt"));
    sshd.ferry()
        .arg(sshd.spec(&sshd.remote().join("renamed.txt")))
        .arg(sshd.local().join("again.txt"))
        .run_ok();
    assert_files_identical(&src, &sshd.local().join("again.txt"));

    assert_no_partials(&sshd.remote());
    assert_no_partials(&sshd.local());
}

#[test]
fn push_tree_archive() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_test_tree(&src);
    let dst = sshd.remote().join("dst");
    // `src/` copies the contents; rsync creates the missing DEST directory.
    sshd.ferry()
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dst))
        .run_ok();
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
}

#[test]
fn pull_tree_archive() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    make_test_tree(&src);
    let dst = sshd.local().join("dst");
    sshd.ferry()
        .arg("-a")
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(&dst)
        .run_ok();
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
}

#[test]
fn trailing_slash_rule_push() {
    let sshd = Sshd::start();
    let src = sshd.local().join("src");
    make_test_tree(&src);
    let a = sshd.remote().join("a");
    let b = sshd.remote().join("b");
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();

    // No trailing slash: the directory itself goes into DEST.
    sshd.ferry().arg("-a").arg(&src).arg(sshd.spec(&a)).run_ok();
    assert_eq!(
        top_names(&a),
        vec!["src".to_string()],
        "`ferry -a DIR DEST` must create DEST/DIR"
    );
    assert_trees_identical_with(&src, &a.join("src"), Compare::ARCHIVE);

    // Trailing slash: the contents go into DEST.
    sshd.ferry()
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&b))
        .run_ok();
    assert!(!b.join("src").exists(), "`DIR/` must not create DEST/DIR");
    assert_trees_identical_with(&src, &b, Compare::ARCHIVE);
}

#[test]
fn trailing_slash_rule_pull() {
    let sshd = Sshd::start();
    let src = sshd.remote().join("src");
    make_test_tree(&src);
    let a = sshd.local().join("a");
    let b = sshd.local().join("b");
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();

    sshd.ferry().arg("-a").arg(sshd.spec(&src)).arg(&a).run_ok();
    assert_eq!(
        top_names(&a),
        vec!["src".to_string()],
        "`ferry -a host:DIR DEST` must create DEST/DIR"
    );
    assert_trees_identical_with(&src, &a.join("src"), Compare::ARCHIVE);

    sshd.ferry()
        .arg("-a")
        .arg(format!("{}/", sshd.spec(&src)))
        .arg(&b)
        .run_ok();
    assert!(
        !b.join("src").exists(),
        "`host:DIR/` must not create DEST/DIR"
    );
    assert_trees_identical_with(&src, &b, Compare::ARCHIVE);
}

#[test]
fn noop_rerun_push_sends_almost_nothing() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    let src = sshd.local().join("src");
    make_test_tree(&src);
    let dst = sshd.remote().join("dst");
    let src_arg = format!("{}/", src.display());

    sshd.ferry_with_config(&cfg)
        .arg("-a")
        .arg(&src_arg)
        .arg(sshd.spec(&dst))
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
    // The first run really went through the proxy.
    assert!(
        proxy.up() >= tree_bytes(&src),
        "first run sent only {} bytes up through the proxy for a {}-byte tree",
        proxy.up(),
        tree_bytes(&src)
    );

    proxy.reset_counts();
    let out = sshd
        .ferry_with_config(&cfg)
        .arg("-a")
        .arg(&src_arg)
        .arg(sshd.spec(&dst))
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    let (up, down) = (proxy.up(), proxy.down());
    assert!(
        up < 64 * KIB,
        "no-op rerun sent {up} bytes up (down {down}); expected < 64 KiB\n{out}"
    );
    assert!(proxy.connections() >= 2);
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
}

#[test]
fn noop_rerun_pull_receives_almost_nothing() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    let src = sshd.remote().join("src");
    make_test_tree(&src);
    let dst = sshd.local().join("dst");
    let src_arg = format!("{}/", sshd.spec(&src));

    sshd.ferry_with_config(&cfg)
        .arg("-a")
        .arg(&src_arg)
        .arg(&dst)
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
    assert!(proxy.down() >= tree_bytes(&src));

    proxy.reset_counts();
    let out = sshd
        .ferry_with_config(&cfg)
        .arg("-a")
        .arg(&src_arg)
        .arg(&dst)
        .run_ok();
    proxy.wait_idle(Duration::from_secs(10));
    let (up, down) = (proxy.up(), proxy.down());
    assert!(
        down < 64 * KIB,
        "no-op pull rerun received {down} bytes (up {up}); expected < 64 KiB\n{out}"
    );
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);
}

#[test]
fn push_via_sftp_url() {
    let sshd = Sshd::start();
    // No ssh config: host key from $HOME/.ssh/known_hosts, identity and user
    // from the command line.
    fs::write(
        sshd.home().join(".ssh/known_hosts"),
        format!("{}\n", sshd.known_hosts_line(sshd.port())),
    )
    .unwrap();
    let src = sshd.local().join("url.bin");
    write_file(&src, &random_bytes(1_000_003, 11));
    let dst = sshd.remote().join("via-url.bin");
    sshd.ferry_bare()
        .arg("--identity")
        .arg(sshd.user_key())
        .arg("--user")
        .arg(sshd.user())
        .arg(&src)
        .arg(sshd.sftp_url(&dst))
        .run_ok();
    assert_files_identical(&src, &dst);
}

#[test]
fn local_to_local_archive() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let src = t.path().join("src");
    make_test_tree(&src);
    write_file(&src.join("big.bin"), &random_bytes(5 * MIB as usize, 12));
    set_mtime(&src.join("big.bin"), 1_234_567_890);
    set_mtime(&src, 1_234_567_890);

    // Contents form.
    let dst = t.path().join("dst");
    FerryCmd::bare(&home)
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()))
        .run_ok();
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);

    // A no-op rerun succeeds and changes nothing.
    FerryCmd::bare(&home)
        .arg("-a")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()))
        .run_ok();
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);

    // Directory form into an existing directory.
    let into = t.path().join("into");
    fs::create_dir(&into).unwrap();
    FerryCmd::bare(&home)
        .arg("-a")
        .arg(&src)
        .arg(&into)
        .run_ok();
    assert_trees_identical_with(&src, &into.join("src"), Compare::ARCHIVE);
    assert_no_partials(t.path());
}

/// Many files in flight at once, more than a server has handle numbers
/// below 128 (past which russh-sftp mangles OpenSSH's handles): every file
/// of a 300-file tree arrives, in both directions, with metadata, and
/// nothing is left behind.
#[test]
fn many_files_in_flight_push_and_pull() {
    let sshd = Sshd::start();
    let src = sshd.local().join("many");
    for i in 0..300 {
        let dir = src.join(format!("d{}", i % 3));
        fs::create_dir_all(&dir).unwrap();
        write_file(
            &dir.join(format!("f{i:03}")),
            &random_bytes(i * 37, i as u64),
        );
    }
    let dst = sshd.remote().join("many");
    sshd.ferry()
        .args(["-a", "--jobs", "300"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dst))
        .run_ok();
    assert_trees_identical(&src, &dst);
    assert_no_partials(&dst);
    let back = sshd.local().join("back");
    sshd.ferry()
        .args(["-a", "--jobs", "300"])
        .arg(format!("{}/", sshd.spec(&dst)))
        .arg(&back)
        .run_ok();
    assert_trees_identical(&src, &back);
    assert_no_partials(&back);
}

/// More directories than the walk lists at once (64): the batches after
/// the first are listed in the background while the one before is walked,
/// on the server's side for a push and for a pull. Changes in the last
/// batches are found, and nothing else is sent. The changed files are
/// small: on the shell tier (this server has no ferry) they go whole, not
/// by delta (a process on the server each; 13 s for these 50 when they
/// did).
#[test]
fn trees_of_many_directories_are_listed_ahead_both_ways() {
    let sshd = Sshd::start();
    let src = sshd.local().join("wide");
    for d in 0..200 {
        for f in 0..2 {
            let n = d * 2 + f;
            write_file(
                &src.join(format!("d{d:03}/f{f}")),
                &random_bytes(100 + n, n as u64),
            );
        }
    }
    let src_arg = format!("{}/", src.display());
    let dst = sshd.remote().join("wide");
    sshd.ferry()
        .arg("-a")
        .arg(&src_arg)
        .arg(sshd.spec(&dst))
        .run_ok();
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);

    // Beyond the first two batches: 50 files changed, one new.
    for d in 150..200 {
        let path = src.join(format!("d{d:03}/f0"));
        let len = fs::metadata(&path).unwrap().len() as usize;
        write_file(&path, &random_bytes(len, 10_000 + d as u64));
        set_mtime(&path, 1_600_000_000 + d as u64);
    }
    write_file(&src.join("d199/new"), b"new");
    let out = sshd
        .ferry()
        .args(["-a", "-v"])
        .arg(&src_arg)
        .arg(sshd.spec(&dst))
        .run_ok();
    assert!(out.stdout.contains("51 files sent"), "{out}");
    assert!(out.stdout.contains(" 0 by delta"), "{out}");
    assert_trees_identical_with(&src, &dst, Compare::ARCHIVE);

    let back = sshd.local().join("back");
    let remote_arg = format!("{}/", sshd.spec(&dst));
    sshd.ferry().arg("-a").arg(&remote_arg).arg(&back).run_ok();
    assert_trees_identical_with(&src, &back, Compare::ARCHIVE);
    let out = sshd
        .ferry()
        .args(["-a", "-v"])
        .arg(&remote_arg)
        .arg(&back)
        .run_ok();
    assert!(out.stdout.contains("0 files sent"), "{out}");
    assert!(out.stdout.contains("401 up to date"), "{out}");

    // `--list-only` walks the remote tree with its listings ahead too
    // (a window of 64 sliding along the 200 directories): the lines are
    // the local tree's, each once.
    let listed = |arg: &str| {
        let out = sshd.ferry().args(["--list-only", "-a"]).arg(arg).run_ok();
        out.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let (remote, local) = (listed(&remote_arg), listed(&src_arg));
    assert_eq!(remote.len(), 1 + 200 + 401, "{remote:#?}");
    assert_eq!(remote, local);
}
