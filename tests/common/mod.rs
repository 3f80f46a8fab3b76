//! Shared fixtures for ferry's integration tests.
//!
//! * [`Server`]: what a client needs to reach a real SSH server on
//!   127.0.0.1: throw-away host and user keys, a known_hosts file, an ssh
//!   config (`Host ferrytest`), a fake HOME and `remote`/`local` data
//!   directories, all inside one tempdir, and ferry commands using them.
//!   Two servers have it: [`Sshd`], OpenSSH's `sshd`, and
//!   [`proftpd::Proftpd`], ProFTPD's mod_sftp, an SFTP-only server.
//! * [`FerryCmd`]: runs the ferry binary with an isolated environment and a
//!   hard deadline (the process group is killed when it is exceeded).
//! * [`Agent`]: a real ssh-agent on a socket of its own, holding given keys.
//! * [`CutProxy`]: a TCP proxy in front of a server that counts bytes in each
//!   direction and can cut every connection after N bytes.
//! * [`wait_until`]: a bounded wait on a condition, in place of a sleep.
//! * [`require_tools`]: a missing tool fails the test, never skips it.
//! * Tree helpers: [`write_file`], [`random_bytes`], [`assert_trees_identical`].
//!
//! Each test file uses a subset of this module.
#![allow(dead_code)]

pub mod proftpd;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Absolute path of the OpenSSH server (sshd re-execs itself, so it must be
/// started by absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";
/// Host alias written into the fixture's ssh config.
pub const HOST_ALIAS: &str = "ferrytest";
/// Default deadline for one ferry run.
pub const FERRY_TIMEOUT: Duration = Duration::from_secs(120);
/// Deadline for async test bodies (wrap them in `tokio::time::timeout`).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(300);

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------

/// Whether `tool` is installed: an absolute path as it is, a bare name
/// somewhere on `$PATH`.
fn tool_exists(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// Fails the test when any of `tools` is missing: the tests are never
/// skipped, under CI (`CI=true`, where `.ci/run` installs them) and locally
/// alike. `package` is what provides them, `needed_by` what needs them.
#[track_caller]
pub fn require_tools(tools: &[&str], package: &str, needed_by: &str) {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !tool_exists(t)).collect();
    if missing.is_empty() {
        return;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let context = if ci {
        "CI=true but the CI machine lacks them (.ci/run installs them)"
    } else {
        "install them to run these tests (.ci/run does)"
    };
    panic!(
        "{missing:?} not found: {needed_by}, and they are never skipped; {context}: \
         apt-get install -y {package}"
    );
}

/// Fails loudly when OpenSSH is not installed ([`require_tools`]).
#[track_caller]
pub fn require_openssh() {
    require_tools(
        &[SSHD, "ssh-keygen"],
        "openssh-server openssh-client",
        "ferry's integration tests need a real sshd",
    );
}

/// Fails loudly when rsync is not installed ([`require_tools`]).
#[track_caller]
pub fn require_rsync() {
    require_tools(
        &["rsync"],
        "rsync",
        "these tests compare what ferry does with what rsync does",
    );
}

/// Fails loudly when ssh-agent or ssh-add is missing ([`require_tools`]).
#[track_caller]
pub fn require_agent() {
    require_tools(
        &["ssh-agent", "ssh-add"],
        "openssh-client",
        "the ssh-agent tests run a real agent",
    );
}

/// Name of the user the tests run as (the user ferry logs in as).
pub fn current_user() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let out = Command::new("id")
        .arg("-un")
        .arg(uid.to_string())
        .output()
        .expect("run `id -un`");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if name.is_empty() {
        std::env::var("USER").expect("cannot determine the current user name")
    } else {
        name
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the tests run as root, where file permissions do not apply (see
/// [`SshdOptions::sftp_as_nobody`]).
pub fn running_as_root() -> bool {
    is_root()
}

/// OpenSSH's sftp-server, when installed.
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// Where util-linux's `setpriv` is, if anywhere.
fn setpriv_path() -> PathBuf {
    ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/setpriv"))
}

/// Fails loudly when `setpriv` (util-linux) is missing, like
/// [`require_openssh`]: the tests that need it are never skipped.
#[track_caller]
pub fn require_setpriv() {
    require_tools(
        &[setpriv_path().to_str().expect("a UTF-8 path")],
        "util-linux",
        "the permission tests run the server's sessions as nobody with setpriv",
    );
}

/// uid and primary gid of `nobody`, from /etc/passwd.
pub fn nobody_ids() -> (u32, u32) {
    let (uid, gid, _) = nobody_entry();
    (uid, gid)
}

/// uid, primary gid and home directory of `nobody`, from /etc/passwd.
fn nobody_entry() -> (u32, u32, String) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            match f[..] {
                ["nobody", _, uid, gid, _, home, ..] => {
                    Some((uid.parse().ok()?, gid.parse().ok()?, home.to_string()))
                }
                _ => None,
            }
        })
        .expect("no user `nobody` in /etc/passwd: the permission tests run the server as it")
}

/// Gives `path` and everything under it (symlinks themselves, not their
/// targets) to the user the server's sessions run as with
/// [`SshdOptions::sftp_as_nobody`]: nobody when the tests run as root;
/// nothing to do otherwise, where the tests' own user owns them already.
pub fn give_to_session_user(path: &Path) {
    if !is_root() {
        return;
    }
    let (uid, gid) = nobody_ids();
    for p in std::iter::once(path.to_path_buf()).chain(walk(path)) {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown nobody {}: {e}", p.display()));
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, drop).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A port with nothing listening on it (for "connection refused" tests).
pub fn closed_port() -> u16 {
    free_port()
}

/// `ssh-keygen`'s arguments for an ed25519 key.
pub const ED25519: &[&str] = &["-t", "ed25519"];
/// `ssh-keygen`'s arguments for a 2048-bit RSA key.
pub const RSA: &[&str] = &["-t", "rsa", "-b", "2048"];

/// Generate an ed25519 key pair at `path` / `path.pub` with no passphrase.
pub fn gen_keypair(path: &Path) {
    gen_key(path, ED25519, "");
}

/// Generate a key pair of `kind` ([`ED25519`], [`RSA`]) at `path` /
/// `path.pub`, its private half encrypted with `passphrase` unless that is
/// empty.
pub fn gen_key(path: &Path, kind: &[&str], passphrase: &str) {
    let out = run_with_deadline(
        Command::new("ssh-keygen")
            .arg("-q")
            .args(kind)
            .args(["-N", passphrase, "-C", "ferry-test", "-f"])
            .arg(path),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "ssh-keygen failed:\n{out}");
}

/// `KEY.pub`, the public half beside the private key `key`.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// "ssh-ed25519 AAAA..." (type and base64, no comment) from a .pub file.
pub fn pubkey_line(pub_path: &Path) -> String {
    let text =
        fs::read_to_string(pub_path).unwrap_or_else(|e| panic!("read {}: {e}", pub_path.display()));
    let mut it = text.split_whitespace();
    format!("{} {}", it.next().unwrap(), it.next().unwrap())
}

/// "SHA256:..." fingerprint of a public key, as `ssh-keygen -lf` prints it.
pub fn fingerprint(pub_path: &Path) -> String {
    let out = run_with_deadline(
        Command::new("ssh-keygen").arg("-lf").arg(pub_path),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "ssh-keygen -lf failed:\n{out}");
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

// ---------------------------------------------------------------------------
// Running processes with a deadline
// ---------------------------------------------------------------------------

/// Result of a finished process.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `128 + signal` when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The command line, for messages.
    pub cmdline: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.cmdline)?;
        writeln!(f, "exit code: {} (after {:.1?})", self.code, self.elapsed)?;
        writeln!(f, "----- stdout -----\n{}", self.stdout)?;
        write!(f, "----- stderr -----\n{}\n------------------", self.stderr)
    }
}

impl Output {
    /// Panics (printing stdout/stderr) unless the exit code is `expected`.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "expected exit code {expected}, got {}\n{self}",
            self.code
        );
        self
    }

    /// Panics (printing stdout/stderr) unless the process exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }

    /// Panics unless stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr does not contain {needle:?} (case-insensitive)\n{self}"
        );
        self
    }

    /// stdout + stderr, lowercased.
    pub fn all_output_lower(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr).to_lowercase()
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(char::is_whitespace) {
            s.push_str(&format!(" {a:?}"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn kill_group(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on the process group of a child we spawned with
    // process_group(0), so its pgid equals its pid.
    unsafe {
        libc::kill(-(pid as libc::pid_t), sig);
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Run `cmd` (stdin null, stdout/stderr captured) in its own process group.
/// When `timeout` passes, the whole group is SIGKILLed and this panics with
/// everything captured so far.
#[track_caller]
pub fn run_with_deadline(cmd: &mut Command, timeout: Duration) -> Output {
    run_with_deadline_and(cmd, timeout, |_| {})
}

/// Like [`run_with_deadline`], calling `during(pid)` once the child has
/// started (to signal it, or to wait for something while it runs).
#[track_caller]
pub fn run_with_deadline_and(
    cmd: &mut Command,
    timeout: Duration,
    during: impl FnOnce(u32),
) -> Output {
    let cmdline = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn `{cmdline}`: {e}"));
    let out_t = spawn_reader(child.stdout.take().unwrap());
    let err_t = spawn_reader(child.stderr.take().unwrap());
    during(child.id());
    let (status, timed_out) = wait_deadline(&mut child, timeout);
    let output = Output {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out_t.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        elapsed: start.elapsed(),
        cmdline,
    };
    if timed_out {
        panic!("TIMEOUT: killed after {timeout:?}\n{output}");
    }
    output
}

/// Poll `child` until it exits or `timeout` passes; on timeout, SIGKILL its
/// process group. Returns the status and whether it was killed.
fn wait_deadline(child: &mut Child, timeout: Duration) -> (std::process::ExitStatus, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(st) => {
                // Reap stragglers of the group (e.g. ssh under sftp).
                kill_group(child.id(), libc::SIGKILL);
                return (st, false);
            }
            None if Instant::now() >= deadline => {
                kill_group(child.id(), libc::SIGKILL);
                let _ = child.kill();
                return (child.wait().expect("wait after kill"), true);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Waits until `condition` holds, checking it every 10 ms; panics saying
/// `what` was awaited once `timeout` has passed without it. The condition
/// may panic itself to end the wait early (e.g. when the process it waits
/// on has exited).
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} in vain for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// The ferry binary
// ---------------------------------------------------------------------------

/// Path of the ferry binary built by cargo for these tests.
pub fn ferry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferry"))
}

/// A ferry invocation: HOME points at a fake home, SSH_AUTH_SOCK is removed,
/// stdin is null and stdout/stderr are captured.
pub struct FerryCmd {
    cmd: Command,
}

impl FerryCmd {
    /// ferry with no arguments and an isolated environment (`HOME=home`).
    pub fn bare(home: &Path) -> FerryCmd {
        let mut cmd = Command::new(ferry_bin());
        cmd.env("HOME", home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_AGENT_PID")
            .env("NO_COLOR", "1");
        FerryCmd { cmd }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(&mut self, k: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(&mut self, dir: &Path) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Run to completion; kill it and panic if it takes longer than `timeout`.
    #[track_caller]
    pub fn run(&mut self, timeout: Duration) -> Output {
        run_with_deadline(&mut self.cmd, timeout)
    }

    /// Run to completion like [`FerryCmd::run`], calling `during(pid)` while
    /// ferry runs.
    #[track_caller]
    pub fn run_and(&mut self, timeout: Duration, during: impl FnOnce(u32)) -> Output {
        run_with_deadline_and(&mut self.cmd, timeout, during)
    }

    /// `run(FERRY_TIMEOUT)`.
    #[track_caller]
    pub fn run_default(&mut self) -> Output {
        self.run(FERRY_TIMEOUT)
    }

    /// Run and assert exit code 0 (printing stdout/stderr otherwise).
    #[track_caller]
    pub fn run_ok(&mut self) -> Output {
        let out = self.run(FERRY_TIMEOUT);
        out.assert_ok();
        out
    }

    /// The command line, for messages.
    pub fn cmdline(&self) -> String {
        describe(&self.cmd)
    }
}

// ---------------------------------------------------------------------------
// sshd fixture
// ---------------------------------------------------------------------------

/// Options for [`Sshd::start_with`].
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Write a `Subsystem sftp` line (false: the server refuses sftp).
    pub sftp_subsystem: bool,
    /// Start SFTP sessions in the fixture's `remote` directory (sftp-server
    /// `-d`) instead of the login directory, where shell commands start.
    pub sftp_starts_in_remote: bool,
    /// SFTP requests the server refuses (sftp-server `-P`), e.g. `copy-data`.
    pub sftp_denies: Option<&'static str>,
    /// A limit on the size of files sftp-server may write (`ulimit -f`).
    pub sftp_file_limit: Option<FileLimit>,
    /// When the tests run as root, where file permissions do not apply:
    /// every session runs as the unprivileged user `nobody` ([`nobody_ids`]),
    /// sftp-server and the shell commands ferry runs (its hashing) alike, as
    /// they would for a real unprivileged login. It runs through
    /// `setpriv` in a `ForceCommand` script, so it composes with the other
    /// options. The remote directory is given to that user at the start; a
    /// test gives it what it puts there with [`give_to_session_user`]. When
    /// the tests do not run as root, permissions apply already and this
    /// does nothing.
    pub sftp_as_nobody: bool,
    /// sshd's `MaxSessions`: how many sessions (SFTP, commands) one
    /// connection may have open at once (OpenSSH's default is 10).
    pub max_sessions: Option<u32>,
}

/// Files sftp-server may write are at most `kib` KiB. With `writes_fail`
/// (SIGXFSZ ignored) a write past it fails with EFBIG, as on a full disk;
/// without, the kernel kills sftp-server there, as a crash of it would.
#[derive(Debug, Clone, Copy)]
pub struct FileLimit {
    pub kib: u64,
    pub writes_fail: bool,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            sftp_subsystem: true,
            sftp_starts_in_remote: false,
            sftp_denies: None,
            sftp_file_limit: None,
            sftp_as_nobody: false,
            max_sessions: None,
        }
    }
}

/// Contents of one ssh config file (a single `Host` block).
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub host: String,
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// One `IdentityFile` line each, in order (none: OpenSSH's defaults).
    pub identities: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    /// `yes`, `accept-new`, `no`.
    pub strict: String,
    /// Extra lines inside the Host block (e.g. `ConnectTimeout 5`).
    pub extra: Vec<String>,
}

impl SshConfig {
    pub fn render(&self) -> String {
        let mut s = format!(
            "Host {}\n  HostName {}\n  Port {}\n  User {}\n",
            self.host, self.hostname, self.port, self.user,
        );
        for identity in &self.identities {
            s.push_str(&format!("  IdentityFile {}\n", identity.display()));
        }
        s.push_str(&format!(
            "  UserKnownHostsFile {}\n  StrictHostKeyChecking {}\n",
            self.known_hosts.display(),
            self.strict
        ));
        for l in &self.extra {
            s.push_str("  ");
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

// ---------------------------------------------------------------------------
// What every loopback server gives its clients
// ---------------------------------------------------------------------------

/// A new fixture directory for a loopback server: `home/` (a fake HOME with
/// an empty `.ssh/`), the `remote/` and `local/` data directories, and fresh
/// ed25519 key pairs `host_key` (the server's) and `user_key` (ferry's).
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ferry-it-")
        .tempdir()
        .expect("create fixture tempdir");
    let d = dir.path();
    for sub in ["home/.ssh", "remote", "local"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::set_permissions(d.join("home/.ssh"), fs::Permissions::from_mode(0o700)).unwrap();
    gen_keypair(&d.join("host_key"));
    gen_keypair(&d.join("user_key"));
    dir
}

/// Starts a server with `spawn(port)` on a free port (on `fixed_port` when
/// given) and waits until the port answers with an SSH banner; when the
/// server exits and `log()` says the address was in use, it tries again.
/// Returns the running server and its port; `name` is for messages.
fn launch_server(
    name: &str,
    fixed_port: Option<u16>,
    mut spawn: impl FnMut(u16) -> Child,
    log: impl Fn() -> String,
) -> (Child, u16) {
    let mut last_log = String::new();
    for _attempt in 0..5 {
        let port = fixed_port.unwrap_or_else(free_port);
        let mut child = spawn(port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                last_log = log();
                if last_log.contains("Address already in use") {
                    std::thread::sleep(Duration::from_millis(200));
                    break; // retry (on another port unless it is fixed)
                }
                panic!("{name} exited during startup ({st}); its log:\n{last_log}");
            }
            if probe_ssh_banner(port) {
                return (child, port);
            }
            if Instant::now() >= deadline {
                kill_group(child.id(), libc::SIGKILL);
                let _ = child.wait();
                panic!(
                    "{name} did not accept connections on 127.0.0.1:{port} within 10 s; log:\n{}",
                    log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("could not start {name} on a free port after 5 attempts; last log:\n{last_log}");
}

/// Starts the server `program` with `args` and then `config`, in a
/// process group of its own (sessions it forks stay in it), stdin closed,
/// stdout and stderr into the file `log`.
fn spawn_server(program: &str, args: &[&str], config: &Path, log: &Path) -> Child {
    let log = fs::File::create(log).unwrap();
    Command::new(program)
        .args(args)
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// Stops a server [`spawn_server`] started, and the sessions in its
/// process group.
fn stop_server(child: Option<Child>) {
    if let Some(mut child) = child {
        kill_group(child.id(), libc::SIGTERM);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A real SSH server the tests run on 127.0.0.1 ([`Sshd`], [`proftpd::Proftpd`]) and
/// what a client needs to reach it, all in its fixture directory (see
/// [`fixture_dir`]): a known_hosts file trusting its host key, an ssh config
/// (`Host ferrytest`), and ferry commands that use them.
pub trait Server {
    /// The fixture directory.
    fn dir(&self) -> &Path;
    /// The port the server listens on.
    fn port(&self) -> u16;
    /// The user ferry logs in as.
    fn user(&self) -> &str;

    /// Writes the default known_hosts and ssh config for the server now
    /// listening on [`Server::port`].
    fn write_client_files(&self) {
        fs::write(
            self.known_hosts(),
            format!("{}\n", self.known_hosts_line(self.port())),
        )
        .unwrap();
        fs::write(self.ssh_config(), self.base_config().render()).unwrap();
    }

    // ----- paths and facts ------------------------------------------------

    /// Remote data directory (an absolute path the server serves).
    fn remote(&self) -> PathBuf {
        self.dir().join("remote")
    }
    /// Local data directory.
    fn local(&self) -> PathBuf {
        self.dir().join("local")
    }
    /// Fake HOME for ferry (contains an empty `.ssh/`).
    fn home(&self) -> PathBuf {
        self.dir().join("home")
    }
    /// The default ssh config (`Host ferrytest` → the server, strict host keys).
    fn ssh_config(&self) -> PathBuf {
        self.dir().join("ssh_config")
    }
    fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }
    fn user_key(&self) -> PathBuf {
        self.dir().join("user_key")
    }
    fn host_key(&self) -> PathBuf {
        self.dir().join("host_key")
    }
    fn host_pubkey(&self) -> PathBuf {
        self.dir().join("host_key.pub")
    }
    /// "ssh-ed25519 AAAA..." of the server's host key.
    fn host_key_line(&self) -> String {
        pubkey_line(&self.host_pubkey())
    }
    /// "SHA256:..." fingerprint of the server's host key.
    fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_pubkey())
    }
    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...`
    fn known_hosts_line(&self, port: u16) -> String {
        format!("[127.0.0.1]:{port} {}", self.host_key_line())
    }
    /// `ferrytest:/abs/path`
    fn spec(&self, path: &Path) -> String {
        format!("{HOST_ALIAS}:{}", path.display())
    }
    /// `sftp://127.0.0.1:PORT/abs/path`
    /// As in OpenSSH, the URI path after the host is relative to the login
    /// directory, so an absolute path needs a second slash.
    fn sftp_url(&self, path: &Path) -> String {
        format!("sftp://127.0.0.1:{}/{}", self.port(), path.display())
    }

    // ----- ssh config variants ----------------------------------------------

    /// The default config block: alias `ferrytest` → 127.0.0.1:the server's port.
    fn base_config(&self) -> SshConfig {
        SshConfig {
            host: HOST_ALIAS.to_string(),
            hostname: "127.0.0.1".to_string(),
            port: self.port(),
            user: self.user().to_string(),
            identities: vec![self.user_key()],
            known_hosts: self.known_hosts(),
            strict: "yes".to_string(),
            extra: Vec::new(),
        }
    }

    /// Write `cfg` to `dir/name` and return the path.
    fn write_config(&self, name: &str, cfg: &SshConfig) -> PathBuf {
        let path = self.dir().join(name);
        fs::write(&path, cfg.render()).unwrap();
        path
    }

    /// Write a known_hosts file `dir/name` with the given lines.
    fn write_known_hosts(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir().join(name);
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        fs::write(&path, text).unwrap();
        path
    }

    /// Config `name` using known_hosts file `known_hosts` and
    /// StrictHostKeyChecking `strict` (`yes`, `accept-new`, ...).
    fn config_with_known_hosts(&self, name: &str, known_hosts: &Path, strict: &str) -> PathBuf {
        let mut cfg = self.base_config();
        cfg.known_hosts = known_hosts.to_path_buf();
        cfg.strict = strict.to_string();
        self.write_config(name, &cfg)
    }

    /// Config `name` using identity file `identity`.
    fn config_with_identity(&self, name: &str, identity: &Path) -> PathBuf {
        let mut cfg = self.base_config();
        cfg.identities = vec![identity.to_path_buf()];
        self.write_config(name, &cfg)
    }

    /// Config `name` whose `ferrytest` alias points at `port` (e.g. a
    /// [`CutProxy`]). Its known_hosts file (`name.known_hosts`) trusts the
    /// host key for both `[127.0.0.1]:port` and the server's own port.
    fn config_for_port(&self, name: &str, port: u16) -> PathBuf {
        let kh = self.write_known_hosts(
            &format!("{name}.known_hosts"),
            &[
                self.known_hosts_line(port),
                self.known_hosts_line(self.port()),
            ],
        );
        let mut cfg = self.base_config();
        cfg.port = port;
        cfg.known_hosts = kh;
        self.write_config(name, &cfg)
    }

    /// `config_for_port("ssh_config.proxy", proxy.port())`.
    fn config_for_proxy(&self, proxy: &CutProxy) -> PathBuf {
        self.config_for_port("ssh_config.proxy", proxy.port())
    }

    /// An ssh config whose host goes through `proxy` (a far link).
    fn config_for_delay(&self, proxy: &DelayProxy) -> PathBuf {
        self.config_for_port("ssh_config.delay", proxy.port())
    }

    // ----- running clients ----------------------------------------------------

    /// ferry with `--ssh-config <default config>` prepended.
    fn ferry(&self) -> FerryCmd {
        self.ferry_with_config(&self.ssh_config())
    }

    /// ferry with `--ssh-config <config>` prepended.
    fn ferry_with_config(&self, config: &Path) -> FerryCmd {
        let mut f = FerryCmd::bare(&self.home());
        f.arg("--ssh-config").arg(config);
        f
    }

    /// ferry without `--ssh-config` (fake HOME, no agent).
    fn ferry_bare(&self) -> FerryCmd {
        FerryCmd::bare(&self.home())
    }

    /// Run OpenSSH's `sftp -F config -b batch ferrytest` (harness checks).
    fn openssh_sftp(&self, config: &Path, batch: &[&str]) -> Output {
        let batch_path = self.dir().join(format!(
            "sftp-batch-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::write(&batch_path, batch.join("\n") + "\n").unwrap();
        run_with_deadline(
            Command::new("sftp")
                .arg("-F")
                .arg(config)
                .arg("-b")
                .arg(&batch_path)
                .arg(HOST_ALIAS)
                .env("HOME", self.home())
                .env_remove("SSH_AUTH_SOCK"),
            Duration::from_secs(120),
        )
    }

    /// Files under the remote dir whose name looks like a ferry partial or
    /// sidecar (`.NAME.ferry-partial`, `.NAME.ferry-meta`).
    fn remote_partials(&self) -> Vec<PathBuf> {
        find_partials(&self.remote())
    }
}

/// A running OpenSSH server; what a client needs to reach it is [`Server`]'s.
///
/// Layout of [`Sshd::dir`]:
/// `host_key{,.pub}`, `user_key{,.pub}`, `authorized_keys`, `sshd_config`,
/// `sshd.log` (sshd's stderr), `known_hosts`, `ssh_config`, `home/` (fake
/// HOME with an empty `.ssh/`), `remote/`, `local/`.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    user: String,
    options: SshdOptions,
}

impl Sshd {
    /// Start sshd with the default options (sftp subsystem enabled).
    pub fn start() -> Sshd {
        Self::start_with(SshdOptions::default())
    }

    pub fn start_with(options: SshdOptions) -> Sshd {
        require_openssh();
        let dir = fixture_dir();
        let d = dir.path();
        fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        if is_root() {
            // Privilege separation directory, required when sshd runs as root.
            fs::create_dir_all("/run/sshd").unwrap_or_else(|e| {
                panic!("sshd runs as root and needs /run/sshd, which cannot be created: {e}")
            });
        }
        if options.sftp_as_nobody && is_root() {
            require_setpriv();
            // nobody must reach the remote directory through the tempdir
            // (0700 as created); the keys in it stay unreadable to others.
            fs::set_permissions(d, fs::Permissions::from_mode(0o711)).unwrap();
            give_to_session_user(&d.join("remote"));
        }
        let mut sshd = Sshd {
            dir,
            port: 0,
            child: None,
            user: current_user(),
            options,
        };
        sshd.launch();
        sshd.write_client_files();
        sshd
    }

    fn sftp_line() -> String {
        let server = "/usr/lib/openssh/sftp-server";
        if Path::new(server).exists() {
            format!("Subsystem sftp {server}")
        } else {
            "Subsystem sftp internal-sftp".to_string()
        }
    }

    fn write_sshd_config(&self, port: u16) -> PathBuf {
        let d = self.dir.path();
        let mut cfg = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             PidFile none\n\
             AuthorizedKeysFile {ak}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin yes\n\
             LogLevel ERROR\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
        );
        if let (true, Some(limit)) = (self.options.sftp_subsystem, self.options.sftp_file_limit) {
            // A script: sshd drops the quotes of a Subsystem command line.
            let script = d.join("limited-sftp-server");
            let trap = if limit.writes_fail {
                "trap '' XFSZ\n"
            } else {
                ""
            };
            fs::write(
                &script,
                format!(
                    "#!/bin/bash\n{trap}ulimit -f {}\nexec {}\n",
                    limit.kib,
                    Self::sftp_line().trim_start_matches("Subsystem sftp ")
                ),
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
            cfg.push_str(&format!("Subsystem sftp {}\n", script.display()));
        } else if self.options.sftp_subsystem {
            cfg.push_str(&Self::sftp_line());
            if self.options.sftp_starts_in_remote {
                cfg.push_str(&format!(" -d {}", d.join("remote").display()));
            }
            if let Some(denied) = self.options.sftp_denies {
                cfg.push_str(&format!(" -P {denied}"));
            }
            cfg.push('\n');
        }
        if let Some(n) = self.options.max_sessions {
            cfg.push_str(&format!("MaxSessions {n}\n"));
        }
        if self.options.sftp_as_nobody && is_root() {
            cfg.push_str(&format!(
                "ForceCommand {}\n",
                self.as_nobody_script().display()
            ));
        }
        let path = d.join("sshd_config");
        fs::write(&path, cfg).unwrap();
        path
    }

    /// The `ForceCommand` of [`SshdOptions::sftp_as_nobody`]: runs the
    /// session's command (for a subsystem, its command line from the
    /// `Subsystem` line) with the user's shell, as sshd would, but as
    /// nobody, without root's supplementary groups, in nobody's home (or
    /// `/` where it has none, as sshd does), with `HOME` set to it.
    fn as_nobody_script(&self) -> PathBuf {
        assert!(
            Path::new(SFTP_SERVER).exists(),
            "sftp_as_nobody needs {SFTP_SERVER}: the in-process internal-sftp would run as root"
        );
        let (uid, gid, home) = nobody_entry();
        let script = self.dir().join("as-nobody");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nexport HOME='{home}'\ncd \"$HOME\" 2>/dev/null || cd /\n\
                 exec {} --reuid={uid} --regid={gid} --clear-groups -- \
                 \"${{SHELL:-/bin/sh}}\" -c \"$SSH_ORIGINAL_COMMAND\"\n",
                setpriv_path().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    /// Kills sshd and every session it serves, as a crash or a reboot of
    /// the server would, and starts it again on the same port.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Sessions run in their own process groups (sshd calls setsid).
            for session in child_pids(child.id()) {
                kill_group(session, libc::SIGKILL);
                // SAFETY: kill(2) on a pid just read from /proc.
                unsafe { libc::kill(session as libc::pid_t, libc::SIGKILL) };
            }
            kill_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        self.launch_on(Some(self.port));
    }

    /// Start sshd on a fresh free port; retries when the port got taken.
    fn launch(&mut self) {
        self.launch_on(None)
    }

    fn launch_on(&mut self, fixed_port: Option<u16>) {
        let (child, port) = launch_server(
            "sshd",
            fixed_port,
            |port| {
                let config = self.write_sshd_config(port);
                spawn_server(SSHD, &["-D", "-e", "-f"], &config, &self.sshd_log())
            },
            || self.log(),
        );
        self.port = port;
        self.child = Some(child);
    }

    // ----- sshd's own files -------------------------------------------------

    pub fn sshd_log(&self) -> PathBuf {
        self.dir().join("sshd.log")
    }
    /// sshd's stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.sshd_log()).unwrap_or_default()
    }

    /// Lets the key pair `key` log in as well: its public half is added to
    /// the server's authorized_keys, which sshd reads at every login, so
    /// no restart is needed.
    pub fn authorize(&self, key: &Path) {
        let mut authorized = fs::OpenOptions::new()
            .append(true)
            .open(self.dir().join("authorized_keys"))
            .expect("open authorized_keys");
        writeln!(authorized, "{}", pubkey_line(&pub_path(key))).expect("append to authorized_keys");
    }
}

impl Server for Sshd {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        &self.user
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        stop_server(self.child.take());
        if std::thread::panicking() {
            let log = self.log();
            if !log.trim().is_empty() {
                eprintln!(
                    "----- sshd log ({}) -----\n{log}",
                    self.sshd_log().display()
                );
            }
        }
    }
}

/// Processes whose parent is `pid`, from /proc.
fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// True when something on 127.0.0.1:port answers with an SSH banner.
fn probe_ssh_banner(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8];
    let ok = s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-");
    // Be polite so sshd does not log a protocol error.
    let _ = s.write_all(b"SSH-2.0-ferry-probe\r\n");
    ok
}

/// Paths under `root` (recursively) named `.*.ferry-partial` / `.*.ferry-meta`.
pub fn find_partials(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(root)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with('.') && (n.ends_with(".ferry-partial") || n.ends_with(".ferry-meta"))
        })
        .collect();
    v.sort();
    v
}

/// `dir/.NAME.ferry-partial`
pub fn partial_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.ferry-partial"))
}

/// `dir/.NAME.ferry-meta`
pub fn meta_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.ferry-meta"))
}

// ---------------------------------------------------------------------------
// ssh-agent
// ---------------------------------------------------------------------------

/// A real ssh-agent on a socket of its own, holding the keys it was given;
/// killed on drop. ferry sees it only when a test points it there
/// (`SSH_AUTH_SOCK` or `IdentityAgent`): [`FerryCmd`] removes SSH_AUTH_SOCK.
pub struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    /// Starts ssh-agent with its socket at `dir/agent.sock` and adds `keys`
    /// (private key paths) to it with ssh-add.
    pub fn start(dir: &Path, keys: &[&Path]) -> Agent {
        require_agent();
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ssh-agent: {e}"));
        let mut agent = Agent { child, socket };
        wait_until(Duration::from_secs(10), "ssh-agent's socket", || {
            if let Some(status) = agent.child.try_wait().expect("try_wait ssh-agent") {
                panic!("ssh-agent exited ({status}) before making its socket");
            }
            agent.socket.exists()
        });
        for key in keys {
            let added = run_with_deadline(
                Command::new("ssh-add")
                    .arg("-q")
                    .arg(key)
                    .env("SSH_AUTH_SOCK", &agent.socket),
                Duration::from_secs(30),
            );
            assert_eq!(added.code, 0, "ssh-add {} failed\n{added}", key.display());
        }
        agent
    }

    /// The agent's socket, for `SSH_AUTH_SOCK` or `IdentityAgent`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// CutProxy
// ---------------------------------------------------------------------------

/// Direction of traffic through a [`CutProxy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// client → server
    Up,
    /// server → client
    Down,
}

struct ProxyShared {
    up: AtomicU64,
    down: AtomicU64,
    /// Serialises cut decisions.
    cut: Mutex<Option<(Direction, u64)>>,
    /// Set once the cut fired; new connections are dropped until `set_cut`.
    tripped: AtomicBool,
    trip_tx: tokio::sync::watch::Sender<u64>,
    active: AtomicU64,
    accepted: AtomicU64,
    /// Once this many bytes passed in this direction, stop reading (hold the
    /// connection open, forward nothing) until the rule is cleared.
    stall: Mutex<Option<(Direction, u64)>>,
    /// Faults for the next connections, one each, counted per connection.
    schedule: Mutex<std::collections::VecDeque<Fault>>,
    /// Scheduled faults whose connection has reached its limit.
    faults_hit: AtomicU64,
}

/// What happens to one connection through a [`CutProxy`] schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Closed after this many bytes in this direction.
    Cut(Direction, u64),
    /// After this many bytes in this direction, everything more in it is
    /// dropped while the connection stays open: a dead link.
    Blackhole(Direction, u64),
}

/// One connection's own fault, counted on it alone.
struct ConnCut {
    dir: Direction,
    limit: u64,
    blackhole: bool,
    seen: AtomicU64,
}

impl ConnCut {
    /// How many of `n` bytes in `d` may pass on this connection.
    fn admit(&self, d: Direction, n: usize) -> usize {
        if d != self.dir {
            return n;
        }
        let seen = self.seen.load(Ordering::SeqCst);
        let take = (n as u64).min(self.limit.saturating_sub(seen));
        self.seen.fetch_add(take, Ordering::SeqCst);
        take as usize
    }
}

impl ProxyShared {
    fn stalled(&self, d: Direction) -> bool {
        match *self.stall.lock().unwrap() {
            Some((sd, limit)) => sd == d && self.counter(d).load(Ordering::SeqCst) >= limit,
            None => false,
        }
    }

    fn counter(&self, d: Direction) -> &AtomicU64 {
        match d {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// How many of `n` bytes read in direction `d` may be forwarded; trips
    /// the cut when the limit would be exceeded.
    fn admit(&self, d: Direction, n: usize) -> usize {
        let cut = self.cut.lock().unwrap();
        if self.tripped.load(Ordering::SeqCst) {
            return 0;
        }
        let counter = self.counter(d);
        match *cut {
            Some((cd, limit)) if cd == d => {
                let cur = counter.load(Ordering::SeqCst);
                let room = limit.saturating_sub(cur);
                let take = (n as u64).min(room);
                counter.fetch_add(take, Ordering::SeqCst);
                if take < n as u64 {
                    self.tripped.store(true, Ordering::SeqCst);
                    self.trip_tx.send_modify(|g| *g += 1);
                }
                take as usize
            }
            _ => {
                counter.fetch_add(n as u64, Ordering::SeqCst);
                n
            }
        }
    }
}

/// A TCP proxy on 127.0.0.1:0 forwarding to 127.0.0.1:`target_port`, running
/// on its own thread and tokio runtime (usable from plain `#[test]`s).
///
/// Counts bytes forwarded client→server (`up`) and server→client (`down`),
/// summed over all connections. With a cut `(dir, n)`, once more than `n`
/// bytes would have been forwarded in `dir`, exactly `n` are forwarded and
/// then every connection is shut down; while tripped, new connections are
/// closed at once. `set_cut` re-arms (and un-trips) the proxy.
pub struct CutProxy {
    port: u16,
    shared: Arc<ProxyShared>,
    _thread: ProxyThread,
}

/// A proxy's listener on 127.0.0.1, served on a thread and tokio runtime of
/// its own until dropped (then told to stop and joined).
struct ProxyThread {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProxyThread {
    /// Binds a free port and runs `serve(listener, stop)` on the thread
    /// `name`-PORT; returns the port.
    fn start<F, Fut>(name: &str, serve: F) -> (u16, ProxyThread)
    where
        F: FnOnce(TcpListener, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(serve(listener, stop_rx));
            })
            .expect("spawn proxy thread");
        let thread = ProxyThread {
            shutdown: Some(stop_tx),
            thread: Some(thread),
        };
        (port, thread)
    }
}

impl Drop for ProxyThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl CutProxy {
    pub fn start(target_port: u16, cut: Option<(Direction, u64)>) -> CutProxy {
        let (trip_tx, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(ProxyShared {
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            cut: Mutex::new(cut),
            tripped: AtomicBool::new(false),
            trip_tx,
            active: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            stall: Mutex::new(None),
            schedule: Mutex::new(Default::default()),
            faults_hit: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let (port, thread) = ProxyThread::start("cut-proxy", move |listener, stop| {
            proxy_main(listener, target_port, sh, stop)
        });
        CutProxy {
            port,
            shared,
            _thread: thread,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// Bytes forwarded client → server.
    pub fn up(&self) -> u64 {
        self.shared.up.load(Ordering::SeqCst)
    }
    /// Bytes forwarded server → client.
    pub fn down(&self) -> u64 {
        self.shared.down.load(Ordering::SeqCst)
    }
    /// Bytes forwarded in `dir`.
    pub fn counter(&self, dir: Direction) -> u64 {
        self.shared.counter(dir).load(Ordering::SeqCst)
    }
    pub fn reset_counts(&self) {
        let _g = self.shared.cut.lock().unwrap();
        self.shared.up.store(0, Ordering::SeqCst);
        self.shared.down.store(0, Ordering::SeqCst);
    }
    /// Replace the cut rule and re-arm (clears the tripped state). Counts are
    /// not reset: call `reset_counts` too when the limit should apply afresh.
    pub fn set_cut(&self, cut: Option<(Direction, u64)>) {
        let mut g = self.shared.cut.lock().unwrap();
        *g = cut;
        self.shared.tripped.store(false, Ordering::SeqCst);
    }
    /// Stall the `dir` stream once `n` bytes passed in it (`None` releases):
    /// the connection stays open but nothing more is forwarded, so the client
    /// is reliably caught mid-transfer.
    pub fn set_stall(&self, stall: Option<(Direction, u64)>) {
        *self.shared.stall.lock().unwrap() = stall;
    }

    /// One fault for each of the next connections, in turn, counted in
    /// bytes on that connection alone (as a flaky link would do them);
    /// connections after the last run freely.
    pub fn set_schedule(&self, faults: &[Fault]) {
        *self.shared.schedule.lock().unwrap() = faults.iter().copied().collect();
    }

    /// Scheduled faults not used yet.
    pub fn schedule_left(&self) -> usize {
        self.shared.schedule.lock().unwrap().len()
    }

    /// Scheduled faults that have struck: their connection reached its
    /// limit and was cut or went dead.
    pub fn faults_hit(&self) -> u64 {
        self.shared.faults_hit.load(Ordering::SeqCst)
    }

    /// Whether a stall rule currently holds traffic in `dir`.
    pub fn is_stalled(&self, dir: Direction) -> bool {
        self.shared.stalled(dir)
    }

    /// Whether the cut has fired (since the last `set_cut`).
    pub fn tripped(&self) -> bool {
        self.shared.tripped.load(Ordering::SeqCst)
    }
    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
    /// Wait (bounded) until no connection is open any more, so that counts
    /// are final after the client exited.
    pub fn wait_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A TCP proxy that delays every byte by `one_way` in each direction, as
/// a far link does (no rate limit, no window of its own): with 15 ms each
/// way a loopback server is 30 ms away, which ferry takes for far. It
/// counts the connections it accepted.
pub struct DelayProxy {
    port: u16,
    accepted: Arc<AtomicU64>,
    _thread: ProxyThread,
}

impl DelayProxy {
    pub fn start(target_port: u16, one_way: Duration) -> DelayProxy {
        DelayProxy::start_cutting(target_port, one_way, None)
    }

    /// As `start`; with `cut` = (n, bytes), the n-th connection accepted
    /// (1: the first) ends once `bytes` went up through it: the proxy
    /// stops reading from the client and shuts the server's side.
    pub fn start_cutting(
        target_port: u16,
        one_way: Duration,
        cut: Option<(u64, u64)>,
    ) -> DelayProxy {
        let accepted = Arc::new(AtomicU64::new(0));
        let counted = accepted.clone();
        let (port, thread) = ProxyThread::start("delay-proxy", move |listener, stop| {
            accept_until_stopped(listener, stop, move |client| {
                let number = counted.fetch_add(1, Ordering::SeqCst) + 1;
                let cut_up = cut.filter(|(n, _)| *n == number).map(|(_, bytes)| bytes);
                tokio::spawn(delay_conn(client, target_port, one_way, cut_up));
            })
        });
        DelayProxy {
            port,
            accepted,
            _thread: thread,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn delay_conn(
    client: tokio::net::TcpStream,
    target_port: u16,
    one_way: Duration,
    cut_up: Option<u64>,
) {
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(
        delay_pump(cr, sw, one_way, cut_up),
        delay_pump(sr, cw, one_way, None)
    );
}

/// Forwards `r` to `w`, each chunk `one_way` after it was read; reading
/// goes on meanwhile (a delay line, not a stop-and-wait), and the write
/// side is shut once the read side ended and everything went out (or
/// `cut` bytes were read).
async fn delay_pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    one_way: Duration,
    cut: Option<u64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Bounded: a slow reader at the far end pushes back on the sender.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(1024);
    let reading = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = cut.unwrap_or(u64::MAX);
        loop {
            let most = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if most == 0 {
                return;
            }
            match r.read(&mut buf[..most]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    left -= n as u64;
                    let due = tokio::time::Instant::now() + one_way;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if w.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Hands each connection `listener` accepts to `accepted`, until `stop`.
async fn accept_until_stopped(
    listener: TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    mut accepted: impl FnMut(tokio::net::TcpStream),
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
    loop {
        tokio::select! {
            _ = &mut stop => return,
            res = listener.accept() => {
                let Ok((client, _)) = res else { continue };
                accepted(client);
            }
        }
    }
}

async fn proxy_main(
    listener: TcpListener,
    target_port: u16,
    shared: Arc<ProxyShared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    accept_until_stopped(listener, stop, move |client| {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.tripped.load(Ordering::SeqCst) {
            drop(client);
            return;
        }
        let sh = shared.clone();
        sh.active.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            proxy_conn(client, target_port, &sh).await;
            sh.active.fetch_sub(1, Ordering::SeqCst);
        });
    })
    .await
}

async fn proxy_conn(client: tokio::net::TcpStream, target_port: u16, shared: &Arc<ProxyShared>) {
    let mut trip_rx = shared.trip_tx.subscribe();
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let own_cut = shared.schedule.lock().unwrap().pop_front();
    let own_cut = own_cut.map(|fault| {
        let (dir, limit, blackhole) = match fault {
            Fault::Cut(dir, limit) => (dir, limit, false),
            Fault::Blackhole(dir, limit) => (dir, limit, true),
        };
        Arc::new(ConnCut {
            dir,
            limit,
            blackhole,
            seen: AtomicU64::new(0),
        })
    });
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, Direction::Up, shared.clone(), own_cut.clone());
    let down = pump(sr, cw, Direction::Down, shared.clone(), own_cut);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    // Returning drops both pumps, which closes both sockets.
    loop {
        tokio::select! {
            cut = &mut up, if !up_done => {
                if cut { return; }
                up_done = true;
            }
            cut = &mut down, if !down_done => {
                if cut { return; }
                down_done = true;
            }
            // The cut fired on another connection.
            _ = trip_rx.changed() => return,
        }
        if up_done && down_done {
            return;
        }
    }
}

/// Forward `r` to `w`, counting; returns true when stopped by the cut.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    dir: Direction,
    shared: Arc<ProxyShared>,
    own_cut: Option<Arc<ConnCut>>,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while shared.stalled(dir) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return false;
            }
            Ok(n) => n,
        };
        let admitted = shared.admit(dir, n);
        let mut take = admitted;
        if let Some(cut) = &own_cut {
            take = cut.admit(dir, take);
            if take < admitted {
                shared.faults_hit.fetch_add(1, Ordering::SeqCst);
            }
        }
        if take > 0 && w.write_all(&buf[..take]).await.is_err() {
            return false;
        }
        if take < n {
            if own_cut
                .as_ref()
                .is_some_and(|c| c.blackhole && c.dir == dir)
            {
                return blackhole(r, w).await;
            }
            let _ = w.shutdown().await;
            return true;
        }
    }
}

/// Reads and drops everything until the sender closes.
async fn blackhole(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
    let _ = w.shutdown().await;
    false
}

// ---------------------------------------------------------------------------
// Files and trees
// ---------------------------------------------------------------------------

/// Write `bytes` to `path`, creating parent directories.
pub fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", p.display()));
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Deterministic pseudo-random bytes (xorshift64*), no rand crate needed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    if x == 0 {
        x = 0x2545_F491_4F6C_DD1D;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Overwrite `data.len()` bytes of the file at `offset` in place.
pub fn overwrite_at(path: &Path, offset: u64, data: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .len()
}

/// chmod (does not follow the umask).
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Set the modification time (whole seconds since the epoch) of a file or
/// directory (follows symlinks; don't call it on one).
pub fn set_mtime(path: &Path, secs: u64) {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.set_modified(t)
        .unwrap_or_else(|e| panic!("set mtime {}: {e}", path.display()));
}

pub fn mtime_secs(path: &Path) -> i64 {
    fs::symlink_metadata(path).unwrap().mtime()
}

/// All paths under `root` (not `root` itself), depth first, not following
/// symlinks. Empty when `root` does not exist.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(root) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let is_dir = fs::symlink_metadata(&p)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        out.push(p.clone());
        if is_dir {
            out.extend(walk(&p));
        }
    }
    out
}

/// `walk` as sorted relative path strings (dirs get a trailing '/').
pub fn list_tree(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                rel + "/"
            } else {
                rel
            }
        })
        .collect();
    v.sort();
    v
}

/// Which metadata [`assert_trees_identical_with`] compares besides names,
/// kinds, contents and symlink targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compare {
    /// Permission bits (mode & 0o7777) of files and directories.
    pub perms: bool,
    /// Modification times in whole seconds of files and directories.
    pub mtimes: bool,
}

impl Compare {
    pub const CONTENT: Compare = Compare {
        perms: false,
        mtimes: false,
    };
    pub const ARCHIVE: Compare = Compare {
        perms: true,
        mtimes: true,
    };
}

/// Assert two files have byte-identical contents (reports the first
/// differing offset).
#[track_caller]
pub fn assert_files_identical(a: &Path, b: &Path) {
    let da = fs::read(a).unwrap_or_else(|e| panic!("read {}: {e}", a.display()));
    let db = fs::read(b).unwrap_or_else(|e| panic!("read {}: {e}", b.display()));
    if da != db {
        let first = da.iter().zip(db.iter()).position(|(x, y)| x != y);
        panic!(
            "files differ: {} ({} bytes) vs {} ({} bytes); first differing offset: {:?}",
            a.display(),
            da.len(),
            b.display(),
            db.len(),
            first.or(Some(da.len().min(db.len())))
        );
    }
}

/// Same names, kinds, file contents and symlink targets, recursively.
#[track_caller]
pub fn assert_trees_identical(a: &Path, b: &Path) {
    assert_trees_identical_with(a, b, Compare::CONTENT);
}

/// Like [`assert_trees_identical`], plus permissions and/or mtimes of every
/// file and directory below the roots (the roots themselves are not
/// compared). Symlinks' own mode and mtime are never compared.
#[track_caller]
pub fn assert_trees_identical_with(a: &Path, b: &Path, cmp: Compare) {
    assert!(a.is_dir(), "{} is not a directory", a.display());
    assert!(b.is_dir(), "{} is not a directory", b.display());
    // Names as bytes: a name need not be UTF-8.
    let rel_paths = |root: &Path| {
        let mut v: Vec<PathBuf> = walk(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (rel_paths(a), rel_paths(b));
    if la != lb {
        let only_a: Vec<&PathBuf> = la.iter().filter(|x| !lb.contains(x)).collect();
        let only_b: Vec<&PathBuf> = lb.iter().filter(|x| !la.contains(x)).collect();
        panic!(
            "trees differ in names:\n  only in {}: {only_a:?}\n  only in {}: {only_b:?}",
            a.display(),
            b.display()
        );
    }
    let mut problems = Vec::new();
    for rel_path in &la {
        let rel = rel_path.display();
        let pa = a.join(rel_path);
        let pb = b.join(rel_path);
        let ma = fs::symlink_metadata(&pa).unwrap();
        let mb = fs::symlink_metadata(&pb).unwrap();
        let (ta, tb) = (ma.file_type(), mb.file_type());
        if ta.is_symlink() != tb.is_symlink() || ta.is_dir() != tb.is_dir() {
            problems.push(format!("{rel}: kind {ta:?} vs {tb:?}"));
            continue;
        }
        if ta.is_symlink() {
            let (xa, xb) = (fs::read_link(&pa).unwrap(), fs::read_link(&pb).unwrap());
            if xa != xb {
                problems.push(format!("{rel}: symlink target {xa:?} vs {xb:?}"));
            }
            continue;
        }
        if ta.is_file() {
            if ma.len() != mb.len() {
                problems.push(format!("{rel}: size {} vs {}", ma.len(), mb.len()));
            } else if fs::read(&pa).unwrap() != fs::read(&pb).unwrap() {
                problems.push(format!("{rel}: contents differ"));
            }
        }
        if cmp.perms && (ma.mode() & 0o7777) != (mb.mode() & 0o7777) {
            problems.push(format!(
                "{rel}: mode {:o} vs {:o}",
                ma.mode() & 0o7777,
                mb.mode() & 0o7777
            ));
        }
        if cmp.mtimes && ma.mtime() != mb.mtime() {
            problems.push(format!("{rel}: mtime {} vs {}", ma.mtime(), mb.mtime()));
        }
    }
    assert!(
        problems.is_empty(),
        "trees {} and {} differ:\n  {}",
        a.display(),
        b.display(),
        problems.join("\n  ")
    );
}

/// Build the standard test tree under `root` (created if needed):
///
/// ```text
/// top.txt                      0o644, 1 KiB
/// empty.txt                    0o640, 0 bytes
/// script.sh                    0o755
/// secret.key                   0o600
/// medium.bin                   0o644, 300 KiB random
/// empty-dir/                   0o755, empty
/// dir with space/ünïcødé файл.txt   0o640
/// dir with space/nested/deeper/leaf.dat   0o600
/// dir with space/nested/empty-inner/      0o700, empty
/// link-to-top -> top.txt       (relative symlink)
/// dir with space/link-up -> ../top.txt
/// ```
///
/// All files and directories get distinct old mtimes (2001–2010).
/// Writes `files` under `root`: paths from `root`, random contents of a
/// few hundred bytes each; a path ending in `/` is made as a directory.
pub fn make_tree_of(root: &Path, files: &[&str]) {
    fs::create_dir_all(root).unwrap();
    for (i, rel) in files.iter().enumerate() {
        if let Some(dir) = rel.strip_suffix('/') {
            fs::create_dir_all(root.join(dir)).unwrap();
        } else {
            write_file(&root.join(rel), &random_bytes(100 + i * 37, i as u64 + 1));
        }
    }
}

pub fn make_test_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let files: &[(&str, Vec<u8>, u32)] = &[
        ("top.txt", random_bytes(1024, 1), 0o644),
        ("empty.txt", Vec::new(), 0o640),
        ("script.sh", b"#!/bin/sh\necho ferry\n".to_vec(), 0o755),
        ("secret.key", random_bytes(77, 2), 0o600),
        ("medium.bin", random_bytes(300 * 1024, 3), 0o644),
        (
            "dir with space/ünïcødé файл.txt",
            "ünïcødé файл\n".repeat(50).into_bytes(),
            0o640,
        ),
        (
            "dir with space/nested/deeper/leaf.dat",
            random_bytes(4097, 4),
            0o600,
        ),
    ];
    let mut t = 1_000_000_000u64; // 2001-09-09
    for (rel, data, mode) in files {
        let p = root.join(rel);
        write_file(&p, data);
        set_mode(&p, *mode);
        set_mtime(&p, t);
        t += 86_400 * 17 + 13;
    }
    for (rel, mode) in [
        ("empty-dir", 0o755),
        ("dir with space/nested/empty-inner", 0o700),
    ] {
        fs::create_dir_all(root.join(rel)).unwrap();
        set_mode(&root.join(rel), mode);
    }
    std::os::unix::fs::symlink("top.txt", root.join("link-to-top")).unwrap();
    std::os::unix::fs::symlink("../top.txt", root.join("dir with space/link-up")).unwrap();
    // Directory mtimes last, deepest first (creating entries touches them).
    let mut dirs: Vec<PathBuf> = walk(root)
        .into_iter()
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in dirs {
        set_mtime(&d, t);
        t += 86_400 * 5 + 7;
    }
    for (rel, mode) in [("dir with space", 0o755), ("dir with space/nested", 0o750)] {
        set_mode(&root.join(rel), mode);
    }
}

/// Wait (at most `timeout`) until the file's length stops changing for
/// 300 ms (e.g. sftp-server still flushing after a cut) and return it;
/// 0 when the file does not exist.
pub fn wait_stable_len(path: &Path, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let len = || fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last = len();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = len();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    last
}

/// Panics when any `.*.ferry-partial` / `.*.ferry-meta` is left under `root`.
#[track_caller]
pub fn assert_no_partials(root: &Path) {
    let left = find_partials(root);
    assert!(
        left.is_empty(),
        "ferry left partial/meta files behind: {left:?}"
    );
}

/// Panics unless `dir` exists and is empty (lists what it holds).
#[track_caller]
pub fn assert_dir_empty(dir: &Path) {
    let entries = list_tree(dir);
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    assert!(
        entries.is_empty(),
        "{} should be empty but holds {entries:?}",
        dir.display()
    );
}

/// Sorted names of the direct entries of `dir`.
pub fn top_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Configs with several Host blocks (jump hosts), silent hosts
// ---------------------------------------------------------------------------

impl Sshd {
    /// Writes `dir/name` with these Host blocks, in order; returns its path.
    pub fn write_config_blocks(&self, name: &str, blocks: &[SshConfig]) -> PathBuf {
        let path = self.dir().join(name);
        let text: Vec<String> = blocks.iter().map(SshConfig::render).collect();
        fs::write(&path, text.join("")).unwrap();
        path
    }

    /// A Host block: `alias` is this sshd reached at 127.0.0.1:`port` (its
    /// own port, or a proxy's in front of it), with the fixture's user key,
    /// known_hosts file `known_hosts` and strict host-key checking.
    pub fn block_for(&self, alias: &str, port: u16, known_hosts: &Path) -> SshConfig {
        SshConfig {
            host: alias.to_string(),
            port,
            known_hosts: known_hosts.to_path_buf(),
            ..self.base_config()
        }
    }
}

/// A TCP listener on 127.0.0.1 that never accepts: the kernel completes
/// connections to it, and then nothing ever answers (a hung host).
pub fn silent_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// rsync through `ssh -F` with the harness's config, as a script would run it.
pub fn rsync_through(sshd: &Sshd, args: &[&str], src: &str, dest: &str) -> Output {
    require_rsync();
    run_with_deadline(
        Command::new("rsync")
            .arg("-e")
            .arg(format!("ssh -F {}", sshd.ssh_config().display()))
            .env("HOME", sshd.home())
            .args(args)
            .arg(src)
            .arg(dest),
        FERRY_TIMEOUT,
    )
}

/// ferry with `args` and the remote helper this build is.
pub fn ferry_with_helper(sshd: &Sshd, args: &[&str]) -> FerryCmd {
    let mut cmd = sshd.ferry();
    cmd.args(args)
        .args(["--remote-hash", "helper", "--remote-ferry"])
        .arg(ferry_bin());
    cmd
}
