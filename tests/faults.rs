//! Faults on the link and the server, against real sshd through the
//! in-test proxy: connections cut at every stage of a sync, a dead link, a
//! server restarted mid-transfer, and a soak of many cuts in one run. After
//! every fault each old destination file is intact (old or new, never torn),
//! nothing lands outside the destination, and the run (with reconnects) or
//! a rerun ends byte-identical to the source.
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reconnect quickly in tests; the doubling still applies.
const QUICK_RETRY: [&str; 2] = ["--retry-wait", "0.05"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Push,
    Pull,
}

impl Way {
    /// The direction the file data flows through the proxy.
    fn data_direction(self) -> Direction {
        match self {
            Way::Push => Direction::Up,
            Way::Pull => Direction::Down,
        }
    }
}

/// A source tree, and a destination holding older versions of some of its
/// files plus a file of its own.
struct Scene {
    sshd: Sshd,
    proxy: CutProxy,
    cfg: PathBuf,
    way: Way,
    src: PathBuf,
    dest: PathBuf,
    /// Relative path -> the destination's content before any run.
    old: Vec<(String, Vec<u8>)>,
}

const BIG: usize = 3 * MIB as usize;

impl Scene {
    fn new(way: Way) -> Scene {
        let sshd = Sshd::start();
        let (src, dest) = match way {
            Way::Push => (sshd.local().join("src"), sshd.remote().join("dest")),
            Way::Pull => (sshd.remote().join("src"), sshd.local().join("dest")),
        };
        write_file(&src.join("big.bin"), &random_bytes(BIG, 1));
        write_file(&src.join("mid.bin"), &random_bytes(300_000, 2));
        for i in 0..12 {
            write_file(
                &src.join(format!("d{}/f{i}.txt", i % 3)),
                &random_bytes(500 + i * 900, 10 + i as u64),
            );
        }
        let proxy = CutProxy::start(sshd.port(), None);
        let cfg = sshd.config_for_proxy(&proxy);
        let mut old = vec![
            ("big.bin".to_string(), random_bytes(BIG / 2, 99)),
            ("d1/f1.txt".to_string(), b"old f1".to_vec()),
            ("mid.bin".to_string(), random_bytes(200_000, 98)),
            ("only-in-dest.txt".to_string(), b"kept".to_vec()),
        ];
        old.sort();
        let scene = Scene {
            sshd,
            proxy,
            cfg,
            way,
            src,
            dest,
            old,
        };
        scene.reset_dest();
        scene
    }

    fn reset_dest(&self) {
        let _ = fs::remove_dir_all(&self.dest);
        for (rel, data) in &self.old {
            let path = self.dest.join(rel);
            write_file(&path, data);
            set_mtime(&path, 1_400_000_000);
        }
    }

    fn ferry(&self, extra: &[&str]) -> Output {
        let (src, dest) = match self.way {
            Way::Push => (
                format!("{}/", self.src.display()),
                self.sshd.spec(&self.dest),
            ),
            Way::Pull => (
                format!("{}/", self.sshd.spec(&self.src)),
                self.dest.display().to_string(),
            ),
        };
        self.sshd
            .ferry_with_config(&self.cfg)
            .arg("-a")
            .args(extra)
            .arg(src)
            .arg(dest)
            .run(Duration::from_secs(120))
    }

    /// Every destination file is its old content or its new one, whole:
    /// never a torn or truncated mix.
    fn assert_each_file_old_or_new(&self, context: &str) {
        for rel in list_tree(&self.dest) {
            let path = self.dest.join(&rel);
            if rel.ends_with('/') || is_working_file(&path) {
                continue;
            }
            let now = fs::read(&path).unwrap();
            let new = fs::read(self.src.join(&rel)).ok();
            let old = self.old.iter().find(|(r, _)| *r == rel).map(|(_, d)| d);
            assert!(
                Some(&now) == new.as_ref() || Some(&now) == old,
                "{context}: {rel} is neither its old nor its new content ({} bytes)",
                now.len()
            );
        }
        for (rel, data) in &self.old {
            let path = self.dest.join(rel);
            let new = fs::read(self.src.join(rel)).ok();
            let now = fs::read(&path).unwrap_or_else(|e| {
                panic!("{context}: {rel}, which existed before the run, is gone: {e}")
            });
            assert!(
                now == *data || Some(&now) == new.as_ref(),
                "{context}: {rel}"
            );
        }
    }

    /// The destination equals the source, plus its own file, with no
    /// working files left.
    fn assert_synced(&self, context: &str) {
        let dest_files: Vec<String> = list_tree(&self.dest)
            .into_iter()
            .filter(|r| r != "only-in-dest.txt")
            .collect();
        assert_eq!(list_tree(&self.src), dest_files, "{context}: trees differ");
        for rel in list_tree(&self.src) {
            if !rel.ends_with('/') {
                assert!(
                    fs::read(self.src.join(&rel)).unwrap()
                        == fs::read(self.dest.join(&rel)).unwrap(),
                    "{context}: {rel} differs from the source"
                );
            }
        }
        assert_eq!(
            fs::read(self.dest.join("only-in-dest.txt")).unwrap(),
            b"kept",
            "{context}"
        );
    }
}

fn is_working_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.starts_with('.') && (name.ends_with(".ferry-partial") || name.ends_with(".ferry-meta"))
}

/// Byte offsets (in the data's direction) to cut one connection at: every
/// stage of the handshake and authentication, the listing, each file's
/// data, and the last few hundred bytes, where files are closed and renamed.
fn cut_points(total: u64) -> Vec<u64> {
    let mut points = vec![
        30, 200, 700, 1_200, 1_800, 2_600, 3_500, 5_000, 8_000, 12_000,
    ];
    points.extend((1..10).map(|tenth| total * tenth / 10));
    points.extend(
        [600, 300, 150, 60]
            .iter()
            .map(|back| total.saturating_sub(*back)),
    );
    points.sort_unstable();
    points.dedup();
    points
}

/// Cuts one connection at each stage in turn, without retries: the run
/// fails, every old file is intact, and a rerun completes the sync.
fn cut_at_every_stage(way: Way) {
    let scene = Scene::new(way);
    let dir = way.data_direction();
    // A clean run measures the bytes a whole sync puts on the wire.
    scene.ferry(&[]).assert_ok();
    scene.proxy.wait_idle(Duration::from_secs(10));
    let total = scene.proxy.counter(dir);
    scene.assert_synced("clean run");
    for point in cut_points(total) {
        scene.reset_dest();
        scene.proxy.set_schedule(&[Fault::Cut(dir, point)]);
        let out = scene.ferry(&["--retries", "0"]);
        scene.proxy.wait_idle(Duration::from_secs(10));
        let context = format!("{way:?} cut at {point} of {total} bytes");
        eprintln!("{context}: exit {}", out.code);
        assert!(
            [0, 10, 255].contains(&out.code),
            "{context}: unexpected exit\n{out}"
        );
        scene.assert_each_file_old_or_new(&context);
        // A partial never lets anyone read what its final file will not:
        // 0600 while written, the final mode only just before its rename.
        for partial in find_partials(&scene.dest) {
            let name = partial.file_name().unwrap().to_string_lossy().into_owned();
            let Some(final_name) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".ferry-partial"))
            else {
                continue;
            };
            let rel = partial.parent().unwrap().strip_prefix(&scene.dest).unwrap();
            let source = scene.src.join(rel).join(final_name);
            let allowed = fs::metadata(&source).unwrap().permissions().mode() & 0o777;
            let mode = fs::metadata(&partial).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077 & !allowed,
                0,
                "{context}: {} is {mode:o}, its file {allowed:o}",
                partial.display()
            );
        }
        let mut rerun = scene.ferry(&["--retries", "0"]);
        if rerun.code == 3 && rerun.stderr.contains("no holder") {
            // Cut between making the lock and writing its holder: taken
            // over once 2 s old.
            std::thread::sleep(Duration::from_millis(2500));
            rerun = scene.ferry(&["--retries", "0"]);
        }
        rerun.assert_ok();
        scene.assert_synced(&format!("{context}, then a rerun"));
    }
}

#[test]
fn push_cut_at_every_stage_keeps_old_files_and_reruns_to_completion() {
    cut_at_every_stage(Way::Push);
}

#[test]
fn pull_cut_at_every_stage_keeps_old_files_and_reruns_to_completion() {
    cut_at_every_stage(Way::Pull);
}

/// One run, cut five times (three times in the data, and twice while
/// reconnecting: in the key exchange and around authentication), finishes
/// on its own with exit 0. (A first connection that fails is not retried.)
fn cut_five_times_in_one_run(way: Way) {
    let scene = Scene::new(way);
    let dir = way.data_direction();
    scene.proxy.set_schedule(&[
        Fault::Cut(dir, 400_000),
        Fault::Cut(dir, 300),
        Fault::Cut(dir, 1_500),
        Fault::Cut(dir, 900_000),
        Fault::Cut(dir, 1_200_000),
    ]);
    let out = scene.ferry(&["-v", QUICK_RETRY[0], QUICK_RETRY[1]]);
    out.assert_ok();
    assert_eq!(
        scene.proxy.schedule_left(),
        0,
        "not every cut happened\n{out}"
    );
    assert_eq!(out.stderr.matches("reconnecting in").count(), 5, "{out}");
    assert!(out.stdout.contains("after 5 reconnects"), "{out}");
    scene.assert_synced(&format!("{way:?} cut five times"));
}

#[test]
fn push_cut_five_times_finishes_in_one_run() {
    cut_five_times_in_one_run(Way::Push);
}

#[test]
fn pull_cut_five_times_finishes_in_one_run() {
    cut_five_times_in_one_run(Way::Pull);
}

#[test]
fn retries_give_up_after_fruitless_reconnects_with_the_first_error() {
    let scene = Scene::new(Way::Push);
    // The first connection is cut mid-file, then every reconnect dies in
    // the key exchange: no progress, ever.
    let mut schedule = vec![Fault::Cut(Direction::Up, 400_000)];
    schedule.extend([Fault::Cut(Direction::Up, 300); 10]);
    scene.proxy.set_schedule(&schedule);
    let out = scene.ferry(&["--retries", "3", QUICK_RETRY[0], QUICK_RETRY[1]]);
    // The lost connection that started it, not the failed reconnects.
    out.assert_code(10);
    out.assert_stderr_contains("giving up");
    // The first try and three reconnects.
    assert_eq!(scene.proxy.schedule_left(), 7, "{out}");
    scene.assert_each_file_old_or_new("fruitless reconnects");
}

#[test]
fn a_first_connection_that_fails_is_not_retried() {
    let scene = Scene::new(Way::Push);
    scene.proxy.set_schedule(&[Fault::Cut(Direction::Up, 300)]);
    let started = Instant::now();
    let out = scene.ferry(&[]);
    out.assert_code(255);
    assert_eq!(scene.proxy.connections(), 1, "{out}");
    assert!(started.elapsed() < Duration::from_secs(20), "{out}");
}

/// A link that goes dead (bytes vanish, nothing closes) is noticed after
/// `--timeout` seconds of silence: exit 30 without retries, and with them
/// the run reconnects and finishes.
#[test]
fn dead_link_times_out_then_reconnects() {
    for way in [Way::Push, Way::Pull] {
        let scene = Scene::new(way);
        let dir = way.data_direction();
        scene.proxy.set_schedule(&[Fault::Blackhole(dir, 600_000)]);
        let started = Instant::now();
        let out = scene.ferry(&["--timeout", "2", "--retries", "0"]);
        out.assert_code(30);
        out.assert_stderr_contains("no reply within 2 s");
        assert!(started.elapsed() < Duration::from_secs(30), "{out}");
        scene.assert_each_file_old_or_new(&format!("{way:?} dead link"));

        scene.reset_dest();
        scene.proxy.set_schedule(&[Fault::Blackhole(dir, 600_000)]);
        let out = scene.ferry(&["--timeout", "2", QUICK_RETRY[0], QUICK_RETRY[1]]);
        out.assert_ok();
        assert_eq!(scene.proxy.schedule_left(), 0);
        scene.assert_synced(&format!("{way:?} dead link, reconnected"));
    }
}

/// The server dies with every session (a crash or reboot) while a file is
/// half sent, and comes back: the run reconnects and finishes.
#[test]
fn server_restarted_mid_transfer_is_survived() {
    let mut scene = Scene::new(Way::Push);
    // The first connection stalls mid-file, so the restart finds it there.
    scene
        .proxy
        .set_schedule(&[Fault::Blackhole(Direction::Up, 1_000_000)]);
    let proxy_port = scene.proxy.port();
    let cfg = scene.cfg.clone();
    let (src, dest) = (
        format!("{}/", scene.src.display()),
        scene.sshd.spec(&scene.dest),
    );
    let mut cmd = scene.sshd.ferry_with_config(&cfg);
    cmd.args(["-a", "--timeout", "3", QUICK_RETRY[0], QUICK_RETRY[1]])
        .arg(src)
        .arg(dest);
    let (sshd, proxy) = (&mut scene.sshd, &scene.proxy);
    let out = cmd.run_and(Duration::from_secs(120), |_pid| {
        // As soon as the first connection is held mid-file, well within
        // ferry's 3 s --timeout, so the restart finds it there.
        wait_until(
            Duration::from_secs(60),
            "the first connection's stall",
            || proxy.faults_hit() > 0,
        );
        sshd.restart();
    });
    out.assert_ok();
    assert!(scene.proxy.connections() >= 2, "{out}");
    assert_eq!(scene.proxy.port(), proxy_port);
    scene.assert_synced("server restarted");
}

/// The soak: 200 files and 20 cuts at random points of one run, with the
/// default retries: exit 0 and every file identical.
#[test]
fn soak_two_hundred_files_twenty_cuts() {
    let sshd = Sshd::start();
    let src = sshd.local().join("soak");
    let dest = sshd.remote().join("soak");
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..200 {
        let len = (next() % 200_000) as usize;
        write_file(
            &src.join(format!("dir{}/file{i:03}", i % 7)),
            &random_bytes(len, i),
        );
    }
    let proxy = CutProxy::start(sshd.port(), None);
    let cuts: Vec<Fault> = (0..20)
        .map(|_| Fault::Cut(Direction::Up, 20_000 + next() % 1_000_000))
        .collect();
    proxy.set_schedule(&cuts);
    let out = sshd
        .ferry_with_config(&sshd.config_for_proxy(&proxy))
        .args(["-a", QUICK_RETRY[0], QUICK_RETRY[1]])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run(Duration::from_secs(240));
    out.assert_ok();
    assert_eq!(
        proxy.schedule_left(),
        0,
        "the run ended before every cut\n{out}"
    );
    assert_trees_identical(&src, &dest);
    assert!(find_partials(&dest).is_empty());
}

/// A destination that runs out of room mid-file (a file size limit on the
/// server's sftp-server, which answers SFTP's generic failure, as for a
/// full disk): that file fails with one line naming it, saying what the
/// failure usually means and that its partial was removed, and the run
/// stops there (exit 11, rsync's "error in file IO"); its old version stays.
#[test]
fn destination_out_of_room_fails_that_file_and_removes_its_partial() {
    let sshd = Sshd::start_with(SshdOptions {
        sftp_file_limit: Some(FileLimit {
            kib: 1024,
            writes_fail: true,
        }),
        ..SshdOptions::default()
    });
    let src = sshd.local().join("src");
    let dest = sshd.remote().join("dest");
    write_file(&src.join("huge.bin"), &random_bytes(4 * MIB as usize, 7));
    write_file(&src.join("small.txt"), b"fits");
    let old = random_bytes(100_000, 8);
    write_file(&dest.join("huge.bin"), &old);
    set_mtime(&dest.join("huge.bin"), 1_400_000_000);
    let out = sshd
        .ferry()
        .args(["-a", "--retries", "0"])
        .arg(format!("{}/", src.display()))
        .arg(sshd.spec(&dest))
        .run_default();
    out.assert_code(11);
    out.assert_stderr_contains("huge.bin: write failed: no space left on device or quota");
    out.assert_stderr_contains("partial removed");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        fs::read(dest.join("huge.bin")).unwrap() == old,
        "the old huge.bin changed\n{out}"
    );
    assert_no_partials(&dest);
}

/// The server's sftp-server dies mid-file (killed by the kernel at a file
/// size limit): ferry notices at once rather than waiting on requests
/// nobody will answer (the directory's attributes, set after the files),
/// keeps the partial and the old file, and exits 10 once reconnecting (the
/// server dies at the same point each time) stops making progress. Without
/// that, the directory's attributes waited ten minutes for a reply.
#[test]
fn sftp_server_dying_mid_file_is_noticed_at_once() {
    // 4 x 255 KiB (OpenSSH's write size): the fifth write starts at the
    // limit and the kernel kills sftp-server. At 1024 KiB the fifth write
    // straddles it: cut short, answered "Failure", and the next one kills.
    for kib in [1024, 4 * 255] {
        let sshd = Sshd::start_with(SshdOptions {
            sftp_file_limit: Some(FileLimit {
                kib,
                writes_fail: false,
            }),
            ..SshdOptions::default()
        });
        let src = sshd.local().join("tree");
        let dest = sshd.remote().join("tree");
        write_file(&src.join("huge.bin"), &random_bytes(4 * MIB as usize, 9));
        write_file(&src.join("small.txt"), b"small");
        // An old version to build from: the delta path, with the shell
        // hashing tier, before the first write.
        let old = random_bytes(100_000, 8);
        write_file(&dest.join("huge.bin"), &old);
        set_mtime(&dest.join("huge.bin"), 1_400_000_000);
        for retries in ["0", "2"] {
            let started = Instant::now();
            let out = sshd
                .ferry()
                .args(["-a", "--retries", retries, QUICK_RETRY[0], QUICK_RETRY[1]])
                .arg(format!("{}/", src.display()))
                .arg(sshd.spec(&dest))
                .run(Duration::from_secs(60));
            out.assert_code(10);
            out.assert_stderr_contains("the server ended the SFTP session");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "took {:?} to notice\n{out}",
                started.elapsed()
            );
            assert_eq!(fs::read(dest.join("huge.bin")).unwrap(), old);
            assert!(partial_path(&dest, "huge.bin").exists(), "{out}");
        }
    }
}

/// Two runs to one destination at once: the second stops before touching
/// anything, saying which run holds the destination (exit 3); the first
/// finishes undisturbed, and a later run goes ahead.
#[test]
fn a_second_run_to_the_same_destination_waits_its_turn() {
    let scene = Scene::new(Way::Push);
    // Hold the first run mid-file.
    scene.proxy.set_stall(Some((Direction::Up, 1_000_000)));
    let (src, dest) = (
        format!("{}/", scene.src.display()),
        scene.sshd.spec(&scene.dest),
    );
    let first = std::thread::scope(|s| {
        let first = s.spawn(|| {
            scene
                .sshd
                .ferry_with_config(&scene.cfg)
                .args(["-a", &src, &dest])
                .run(Duration::from_secs(120))
        });
        wait_until(Duration::from_secs(60), "the first run's stall", || {
            scene.proxy.is_stalled(Direction::Up)
        });
        // The second goes straight to sshd, not through the stalled proxy.
        let second = scene.sshd.ferry().args(["-a", &src, &dest]).run_default();
        second.assert_code(3);
        second.assert_stderr_contains("being synced by ferry pid");
        // When it began, as a person reads it (not an epoch).
        second.assert_stderr_contains(" s ago;");
        scene.assert_each_file_old_or_new("while the second run was refused");
        scene.proxy.set_stall(None);
        first.join().unwrap()
    });
    first.assert_ok();
    scene.assert_synced("the first run");
    let lock = scene.dest.parent().unwrap().join(".dest.ferry-lock");
    assert!(!lock.exists(), "the lock outlived its run");
    scene.sshd.ferry().args(["-a", &src, &dest]).run_ok();
}

/// A source file that changes while it is being sent is not installed:
/// its old destination stays, the file fails with a message saying so
/// (exit 23), and the next run copies the file as it now is.
#[test]
fn a_source_changed_while_read_is_not_installed() {
    let sshd = Sshd::start();
    let src = sshd.local().join("growing.log");
    write_file(&src, &random_bytes(8 * MIB as usize, 31));
    set_mtime(&src, 1_500_000_000);
    let old = b"yesterday's log".to_vec();
    let dest = sshd.remote().join("growing.log");
    write_file(&dest, &old);
    let proxy = CutProxy::start(sshd.port(), None);
    proxy.set_stall(Some((Direction::Up, 3 * MIB)));
    let cfg = sshd.config_for_proxy(&proxy);
    let out = sshd
        .ferry_with_config(&cfg)
        .arg("-t")
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run_and(Duration::from_secs(120), |_| {
            wait_until(Duration::from_secs(60), "ferry's stall", || {
                proxy.is_stalled(Direction::Up)
            });
            // The log grows while ferry is in the middle of it.
            use std::io::Write;
            let mut log = fs::OpenOptions::new().append(true).open(&src).unwrap();
            log.write_all(b"one more line\n").unwrap();
            proxy.set_stall(None);
        });
    out.assert_code(23);
    out.assert_stderr_contains("changed while it was being copied");
    assert_eq!(
        fs::read(&dest).unwrap(),
        old,
        "a torn copy was installed\n{out}"
    );
    sshd.ferry()
        .arg("-t")
        .arg(&src)
        .arg(sshd.spec(&dest))
        .run_ok();
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&src).unwrap());
}
