//! `--remote-ferry upload`'s cache on the server, treated as OpenSSH treats
//! `~/.ssh` (issue 16): a cache directory that others may write to, or whose
//! parent they may, is refused before anything in it is used, and a cached
//! helper runs only once its bytes, read back, hash to this binary's. The
//! server's sessions run as nobody when the tests run as root, so the cache
//! belongs to a user other than root, as it would on a real server.
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const OLD_MTIME: u64 = 1_500_000_000;
const NEW_MTIME: u64 = 1_600_000_000;

/// A server, a byte-counting proxy in front of it, and a file to update
/// there: the update needs remote hashing, so the helper is started.
struct Setup {
    sshd: Sshd,
    proxy: CutProxy,
    config: PathBuf,
    src: PathBuf,
    dst: PathBuf,
    old: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let sshd = Sshd::start_with(SshdOptions {
            sftp_as_nobody: true,
            ..SshdOptions::default()
        });
        let proxy = CutProxy::start(sshd.port(), None);
        let config = sshd.config_for_proxy(&proxy);
        let (src, dst) = (sshd.local().join("f.bin"), sshd.remote().join("f.bin"));
        let old = random_bytes(256 * KIB as usize, 7);
        write_file(&dst, &old);
        set_mtime(&dst, OLD_MTIME);
        give_to_session_user(&dst);
        let mut new = old.clone();
        new[1000] ^= 0x5a;
        write_file(&src, &new);
        set_mtime(&src, NEW_MTIME);
        Setup {
            sshd,
            proxy,
            config,
            src,
            dst,
            old,
        }
    }

    /// Updates the file with the helper from `cache`; the proxy counts
    /// this run's bytes only.
    fn run(&self, cache: &Path) -> Output {
        self.proxy.reset_counts();
        let out = self
            .sshd
            .ferry_with_config(&self.config)
            .args(["-v", "-t", "--remote-ferry", "upload", "--remote-cache"])
            .arg(cache)
            .arg(&self.src)
            .arg(self.sshd.spec(&self.dst))
            .run_default();
        self.proxy.wait_idle(Duration::from_secs(10));
        out
    }

    /// Where a planted program leaves its mark when it runs (the session
    /// user may write there).
    fn marker(&self) -> PathBuf {
        self.sshd.remote().join("planted-program-ran")
    }

    /// Runs once with a fresh `cache` and returns the cached helper's path.
    fn cache_helper(&self, cache: &Path) -> PathBuf {
        let out = self.run(cache);
        out.assert_ok();
        assert!(out.stderr.contains(": helper"), "helper not used\n{out}");
        let cached = ferry_files(cache);
        assert_eq!(cached.len(), 1, "{cached:?}");
        // The next runs start from the old file again.
        write_file(&self.dst, &self.old);
        set_mtime(&self.dst, OLD_MTIME);
        give_to_session_user(&self.dst);
        cached[0].clone()
    }
}

/// The helper files in `cache` (none when it does not exist).
fn ferry_files(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(cache) else {
        return Vec::new();
    };
    entries.map(|e| e.unwrap().path()).collect()
}

/// Puts at `at` a shell script exactly as long as this ferry binary, the
/// session user's and runnable, that creates `marker` when it runs: what
/// a planted program in the helper's place would be.
fn plant_script(at: &Path, marker: &Path) {
    let size = fs::metadata(ferry_bin()).unwrap().len() as usize;
    let mut script = format!("#!/bin/sh\ntouch '{}'\nexit 0\n", marker.display()).into_bytes();
    // The shell stops at `exit`: the padding is never read.
    script.resize(size, b'#');
    fs::write(at, &script).unwrap();
    set_mode(at, 0o700);
    give_to_session_user(at);
}

/// A same-size program planted in place of the cached helper never runs:
/// its bytes are read back and differ, so the real helper is uploaded
/// over it and the update goes through.
#[test]
fn a_planted_program_in_the_cache_never_runs() {
    let setup = Setup::new();
    let cache = setup.sshd.remote().join("cache");
    let cached = setup.cache_helper(&cache);
    plant_script(&cached, &setup.marker());

    let out = setup.run(&cache);
    out.assert_ok();
    assert!(out.stderr.contains(": helper"), "helper not used\n{out}");
    assert!(!setup.marker().exists(), "the planted program ran\n{out}");
    assert_files_identical(&setup.src, &setup.dst);
    assert_files_identical(&cached, &ferry_bin());
    assert_eq!(ferry_files(&cache), std::slice::from_ref(&cached));
    let binary = fs::metadata(ferry_bin()).unwrap().len();
    assert!(
        setup.proxy.up() >= binary,
        "the helper was not uploaded again ({} bytes up)",
        setup.proxy.up()
    );
}

/// A cache directory everyone may write to is refused, with a message
/// naming it and what is wrong, before anything in it is used: the program
/// planted there never runs, nothing is uploaded, the file is not updated.
#[test]
fn a_world_writable_cache_is_refused() {
    let setup = Setup::new();
    let cache = setup.sshd.remote().join("cache");
    let cached = setup.cache_helper(&cache);
    set_mode(&cache, 0o777);
    plant_script(&cached, &setup.marker());
    let planted = fs::read(&cached).unwrap();

    let out = setup.run(&cache);
    out.assert_code(5);
    let cache_name = cache.display();
    out.assert_stderr_contains(&format!(
        "refusing the helper cache {cache_name}: {cache_name} is writable by others (mode 0777); \
         chmod go-w it or choose another --remote-cache"
    ));
    assert!(!setup.marker().exists(), "the planted program ran\n{out}");
    assert_eq!(fs::read(&cached).unwrap(), planted, "the cache changed");
    assert_eq!(ferry_files(&cache).len(), 1);
    let binary = fs::metadata(ferry_bin()).unwrap().len();
    assert!(
        setup.proxy.up() < binary / 10,
        "something was uploaded ({} bytes up)",
        setup.proxy.up()
    );
    assert_eq!(fs::read(&setup.dst).unwrap(), setup.old);
}

/// A cache whose parent its group may write to is refused as well (the
/// group could rename the cache away and put its own in its place), and
/// nothing is uploaded into it.
#[test]
fn a_cache_below_a_group_writable_directory_is_refused() {
    let setup = Setup::new();
    let shared = setup.sshd.remote().join("shared");
    fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o775);
    give_to_session_user(&shared);
    let cache = shared.join("cache");

    let out = setup.run(&cache);
    out.assert_code(5);
    let shared = fs::canonicalize(&shared).unwrap();
    out.assert_stderr_contains(&format!(
        "refusing the helper cache {}: its parent {} is writable by its group (mode 0775)",
        cache.display(),
        shared.display()
    ));
    assert_eq!(ferry_files(&cache), Vec::<PathBuf>::new());
    assert_eq!(fs::read(&setup.dst).unwrap(), setup.old);
}
