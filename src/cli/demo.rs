//! `ferry demo`: the main job, narrated, on a machine with no server set up.
//! It starts the embedded SSH/SFTP server on loopback with throwaway keys,
//! then runs real syncs into it through the same code path as any other
//! run: a tree pushed, a large copy cut off by a dropped link and resumed,
//! a few changed blocks synced, a no-op. It shows what moved each time and
//! checks the copy byte for byte at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::args::Args;
use super::progress::{human, ConsoleReporter, Display};
use super::settings::Settings;
use crate::embedded::{throwaway_key, EmbeddedServer, ServerOptions};
use crate::engine::Stats;
use crate::error::{Error, FileError, Host, Result};
use crate::hash::{hash_whole_file, HashAlgo};

const MIB: u64 = 1024 * 1024;
/// Large enough that its interruption and resume are worth showing, small
/// enough that the demo takes seconds.
const BIG_FILE: u64 = 96 * MIB;
const CUT_AFTER: u64 = 40 * MIB;
const TREE_FILES: u64 = 300;

/// Runs the demo; returns the process status.
pub(super) fn main() -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return super::fail(&Error::io("tokio runtime", e)),
    };
    let dir = std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id()));
    let result = runtime.block_on(demo(&dir));
    let _ = fs::remove_dir_all(&dir);
    match result {
        Ok(()) => 0,
        Err(e) => super::fail(&e),
    }
}

async fn demo(dir: &Path) -> Result<()> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| Error::io(what, e)
    };
    fs::create_dir(dir).map_err(io(&dir.display().to_string()))?;
    let (served, local, client) = (dir.join("server"), dir.join("local"), dir.join("client"));
    for sub in [&served, &local, &client] {
        fs::create_dir(sub).map_err(io(&sub.display().to_string()))?;
    }
    let client_key = throwaway_key().map_err(io("a client key"))?;
    let server = EmbeddedServer::start(ServerOptions {
        client_key: client_key.public_key().clone(),
        base: served.clone(),
        helper: true,
        sftp: None,
    })
    .await
    .map_err(io("the embedded server"))?;
    let config = server
        .write_client_files(&client, "demo", &client_key)
        .map_err(io(&client.display().to_string()))?;
    let demo = Demo {
        server: &server,
        config,
    };

    say(&format!(
        "ferry demo: an SSH/SFTP server is listening on 127.0.0.1:{} (an embedded \
         russh server, throwaway keys, serving {}).",
        server.port(),
        served.display()
    ));
    say(&format!(
        "Every step below is a real ferry run over SSH to it, as host `demo` of the \
         ssh config {} (given with --ssh-config).",
        demo.config.display()
    ));

    let site = local.join("site");
    let tree_bytes = make_tree(&site).map_err(io(&site.display().to_string()))?;
    step(
        1,
        &format!(
            "push a new tree: {TREE_FILES} files, {} in {}",
            human(tree_bytes),
            site.display()
        ),
    );
    let stats = demo.sync(&["-a", &slash(&site), "demo:site"]).await?;
    demo.show(&stats);

    let big = local.join("big.iso");
    write_pattern(&big, BIG_FILE, 7).map_err(io(&big.display().to_string()))?;
    step(
        2,
        &format!(
            "copy a {} file; the server drops the link after {} arrive",
            human(BIG_FILE),
            human(CUT_AFTER)
        ),
    );
    server.cut_next_connection_after(CUT_AFTER);
    let big_arg = big.display().to_string();
    match demo
        .sync(&["-t", "--retries", "0", &big_arg, "demo:"])
        .await
    {
        Ok(_) => say("  (the copy finished before the cut)"),
        Err(e) => {
            say(&format!(
                "  ferry stopped: {e} (exit {})",
                super::exit::ExitCode::of_error(&e).code()
            ));
            if served.join(".big.iso.ferry-partial").is_file() {
                say("  left on the server: .big.iso.ferry-partial, the part that arrived");
            }
        }
    }

    step(
        3,
        "run the same command again: ferry verifies the partial, then resumes",
    );
    let stats = demo.sync(&["-t", &big_arg, "demo:"]).await?;
    demo.show(&stats);

    step(4, "change three 4 KiB blocks of big.iso and sync it");
    change_blocks(&big).map_err(io(&big_arg))?;
    let stats = demo.sync(&["-t", &big_arg, "demo:"]).await?;
    demo.show(&stats);

    step(5, "sync the tree again with nothing changed");
    let stats = demo.sync(&["-a", &slash(&site), "demo:site"]).await?;
    demo.show(&stats);

    let same = same_files(&site, &served.join("site")) && same_file(&big, &served.join("big.iso"));
    if !same {
        let message = "the server's copy differs from the source: this is a bug, please report it";
        return Err(FileError::refused(&Host::Local, served.display().to_string(), message).into());
    }
    say("\nEvery file on the server is byte-identical to its source.");
    say("Try it on your own server: ferry -aP ./dir/ host:dir/  (see README.md)");
    Ok(())
}

struct Demo<'a> {
    server: &'a EmbeddedServer,
    config: PathBuf,
}

impl Demo<'_> {
    /// One ferry run, as if typed with the demo's ssh config.
    async fn sync(&self, args: &[&str]) -> Result<(Stats, u64, f64)> {
        let config = self.config.display().to_string();
        let mut argv = vec!["ferry", "--ssh-config", &config];
        argv.extend_from_slice(args);
        say(&format!("  $ ferry {}", argv[3..].join(" ")));
        let parsed = Args::parse_from_iter(&argv).map_err(|e| Error::Usage(e.to_string()))?;
        let settings = Settings::resolve(parsed)?;
        let reporter = ConsoleReporter::new(
            Display::silent(),
            std::sync::Arc::new(super::lines::Lines::none()),
            &settings.dest,
        );
        let before = self.server.bytes_received();
        let started = Instant::now();
        let mut stats = Stats::default();
        let result = super::run(&settings, &reporter, &mut stats).await;
        reporter.finish();
        result?;
        let wire = self.server.bytes_received() - before;
        Ok((stats, wire, started.elapsed().as_secs_f64()))
    }

    fn show(&self, (stats, wire, secs): &(Stats, u64, f64)) {
        say(&format!("  {}", super::progress::summary(stats)));
        say(&format!(
            "  on the wire to the server: {} in {secs:.2} s (SSH framing, hashes and requests included)",
            human(*wire)
        ));
    }
}

fn say(line: &str) {
    println!("{line}");
}

fn step(n: u32, what: &str) {
    println!("\n{n}. {what}");
}

fn slash(dir: &Path) -> String {
    format!("{}/", dir.display())
}

/// A small site: text and binary files of varied sizes in a few directories.
fn make_tree(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for i in 0..TREE_FILES {
        let dir = root.join(["assets", "css", "js", "img", "docs", "blog"][(i % 6) as usize]);
        fs::create_dir_all(&dir)?;
        let len = 1024 + (i * 7919) % (64 * 1024);
        write_pattern(&dir.join(format!("file-{i:03}.dat")), len, i)?;
        total += len;
    }
    Ok(total)
}

/// Deterministic bytes that do not compress or repeat (splitmix64).
fn write_pattern(path: &Path, len: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(fs::File::create(path)?);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len;
    let mut left = len;
    while left > 0 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let bytes = z.to_le_bytes();
        let n = left.min(8) as usize;
        out.write_all(&bytes[..n])?;
        left -= n as u64;
    }
    out.flush()
}

fn change_blocks(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new().write(true).open(path)?;
    for at in [3 * MIB, 50 * MIB + 12_345, BIG_FILE - 10_000] {
        file.write_all_at(&[0x5A; 4096], at)?;
    }
    // A new mtime, as an edit would leave, so the change is seen by size and
    // time alone.
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(2))
}

/// Same size and blake3 hash, read in blocks rather than whole.
fn same_file(a: &Path, b: &Path) -> bool {
    let hash = |path: &Path| {
        fs::File::open(path).and_then(|file| hash_whole_file(&file, HashAlgo::Blake3))
    };
    matches!((hash(a), hash(b)), (Ok(x), Ok(y)) if x == y)
}

/// Every file under `a` has an identical twin at the same place under `b`.
fn same_files(a: &Path, b: &Path) -> bool {
    let Ok(entries) = fs::read_dir(a) else {
        return false;
    };
    entries.filter_map(|entry| entry.ok()).all(|entry| {
        let (from, to) = (entry.path(), b.join(entry.file_name()));
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => same_files(&from, &to),
            Ok(_) => same_file(&from, &to),
            Err(_) => false,
        }
    })
}
