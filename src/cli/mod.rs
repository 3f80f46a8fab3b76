//! The command-line front end: parse flags, resolve settings, open the
//! connection the direction needs, run the engine, report, and turn the result
//! into an exit code. `main.rs` only calls [`main`].

pub(crate) mod args;
#[cfg(feature = "embedded")]
mod demo;
pub(crate) mod exit;
mod iconv;
pub(crate) mod info;
mod install;
pub(crate) mod json;
pub(crate) mod lines;
mod listing;
pub(crate) mod logfile;
pub(crate) mod outformat;
mod parse_error;
pub(crate) mod progress;
mod remote_list;
mod rsync_path;
pub(crate) mod settings;
pub(crate) mod toggles;
mod unsupported;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::endpoint::remote::tier::{Describe, HelperSource, OnChosen, TierChoice, Wanted};
use crate::endpoint::remote::{Early, StreamChoice};
use crate::endpoint::{LocalFs, RemoteFs};
use crate::engine::{self, Stats};
use crate::error::{Error, FileError, Result};
use crate::location::RemoteSpec;
use crate::paths;
use crate::report::{Item, Mention, Outcome, Phase, PromptGuard, Reporter};
use crate::sftp::Sftp;
use crate::ssh::meter::Meter;
use crate::ssh::{config, ConnectOptions, Connection};
use args::{Args, RemoteHashMode};
use exit::ExitCode;
use lines::Lines;
use logfile::LogFile;
use progress::ConsoleReporter;
use settings::{Direction, Settings};
use toggles::{Counter, Flag};

/// Runs ferry with the process's arguments and returns the exit status.
pub fn main() -> i32 {
    let args = match Args::parse_from_env() {
        Ok(args) => args,
        Err(e) => return parse_error::report(e, parse_error::json_asked(std::env::args_os())),
    };
    if args.server {
        return crate::protocol::server::run();
    }
    if args.man || args.completions.is_some() {
        return install::print(args.man, args.completions);
    }
    // rsync's `-h` alone prints the help; with anything else it is
    // --human-readable.
    if args.flags.count(Counter::HumanReadable) > 0 && args.paths.is_empty() {
        return install::help();
    }
    #[cfg(feature = "embedded")]
    if args.paths == ["demo"] {
        return demo::main();
    }
    // rsync prints it and exits, whatever else the line says.
    if info::help_asked(&args.info) {
        print!("{}", info::help());
        return 0;
    }
    let json = args.flags.on(Flag::Json);
    let settings = match Settings::resolve(args) {
        Ok(s) => s,
        Err(e) if json => {
            // Scripts read the last line: it is a summary whatever failed.
            eprintln!("ferry: {e}");
            let code = ExitCode::of_error(&e).code();
            json::JsonReporter::new("").summary(&Stats::default(), code, Some(&e));
            return code;
        }
        Err(e) => return fail(&e),
    };
    init_logging(settings.verbosity);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Error::io("tokio runtime", e)),
    };
    if settings.list_only {
        return listing::main(&settings, &runtime);
    }
    let output = Output::new(&settings);
    let mut stats = Stats::default();
    let result = runtime.block_on(run_until_signal(&settings, &output, &mut stats));
    let code = match &result {
        Ok(()) => ExitCode::of_stats(&stats).code(),
        Err(e) => ExitCode::of_error(e).code(),
    };
    output.close(&settings, &stats, code, result.as_ref().err());
    code
}

/// Where the run's events go: the console's bars and lines, or JSON lines;
/// and the log file, if one is kept.
struct Output {
    screen: Screen,
    log: Option<LogFile>,
    /// Files some of whose data reached the destination, not yet finished:
    /// what a run cut short leaves as partials.
    cut_short: Mutex<BTreeSet<String>>,
}

enum Screen {
    Console(ConsoleReporter),
    Json(json::JsonReporter),
}

impl Output {
    /// Opens the log file first, before anything connects. One that cannot
    /// be opened is named on stderr and the run goes on without it, as
    /// rsync's does (which logs to syslog instead, and exits 0).
    fn new(settings: &Settings) -> Output {
        let lines = Arc::new(Lines::new(
            &settings.lines,
            &settings.dest,
            &settings.sources,
        ));
        let log = settings
            .log_file
            .as_deref()
            .and_then(|path| open_log(path, settings, lines.clone()));
        if let Some(log) = &log {
            log.start(matches!(settings.direction, Direction::Pull(_)));
        }
        let screen = match settings.json {
            true => Screen::Json(json::JsonReporter::new(&settings.dest)),
            false => Screen::Console(ConsoleReporter::new(
                settings.display,
                lines,
                &settings.dest,
            )),
        };
        Output {
            screen,
            log,
            cut_short: Mutex::default(),
        }
    }

    fn screen(&self) -> &dyn Reporter {
        match &self.screen {
            Screen::Console(console) => console,
            Screen::Json(json) => json,
        }
    }

    /// The end of the run: the error, the statistics and summary asked for.
    fn close(&self, settings: &Settings, stats: &Stats, code: i32, error: Option<&Error>) {
        self.say_what_is_kept(settings, error);
        if let Some(log) = &self.log {
            log.close(&logfile::Ending {
                stats,
                code,
                error,
                stats_level: settings.stats_level,
                human_readable: settings.human_readable,
                dry_run: settings.options.dry_run,
                sending: !matches!(settings.direction, Direction::Pull(_)),
            });
        }
        match &self.screen {
            Screen::Json(json) => {
                if let Some(e) = error {
                    eprintln!("ferry: {e}");
                }
                json.summary(stats, code, error);
            }
            Screen::Console(console) => {
                console.finish();
                if let Some(e) = error {
                    eprintln!("ferry: {e}");
                }
                if settings.quiet {
                    return;
                }
                let (human, dry_run) = (settings.human_readable, settings.options.dry_run);
                if settings.stats {
                    println!("{}", progress::rsync_stats(stats, human, dry_run));
                } else if settings.totals {
                    println!("{}", progress::rsync_totals(stats, human, dry_run));
                }
                let wanted = settings.display.verbose
                    || settings.display.progress != progress::ProgressMode::Off;
                if error.is_none() && wanted && !settings.stats && !settings.totals {
                    let marked = if dry_run { " (DRY RUN)" } else { "" };
                    println!("{}{marked}", progress::summary(stats));
                }
            }
        }
    }
}

impl Output {
    /// After an interruption, or a connection lost for good, the files cut
    /// short: their partials stay, and the same command resumes them.
    fn say_what_is_kept(&self, settings: &Settings, error: Option<&Error>) {
        let stopped = matches!(
            error,
            Some(Error::Interrupted | Error::ConnectionLost { .. } | Error::Timeout { .. })
        );
        let cut_short = self.cut_short.lock().map(|c| c.len()).unwrap_or(0);
        if !stopped || cut_short == 0 || settings.quiet {
            return;
        }
        let files = match cut_short {
            1 => "1 file was".to_string(),
            n => format!("{n} files were"),
        };
        eprintln!(
            "ferry: {files} cut short; what reached the destination is kept: run the same \
             command again to resume (it is verified against the source first)"
        );
    }

    fn note_progress(&self, path: &str, bytes: u64) {
        let Ok(mut cut_short) = self.cut_short.lock() else {
            return;
        };
        if bytes > 0 && !cut_short.contains(path) {
            cut_short.insert(path.to_string());
        }
    }

    fn note_end(&self, path: &str) {
        if let Ok(mut cut_short) = self.cut_short.lock() {
            cut_short.remove(path);
        }
    }
}

/// The log file, or None when it cannot be opened: rsync then says so and
/// goes on.
fn open_log(path: &std::path::Path, settings: &Settings, lines: Arc<Lines>) -> Option<LogFile> {
    let error = match LogFile::open(path, lines) {
        Ok(log) => return Some(log),
        Err(e) => e,
    };
    eprintln!("ferry: failed to open log-file {}: {error}", path.display());
    // rsync's notice, on stdout unless that is for JSON.
    match (settings.json, settings.quiet) {
        (true, _) => eprintln!("Ignoring \"log file\" setting."),
        (false, false) => println!("Ignoring \"log file\" setting."),
        (false, true) => {}
    }
    None
}

/// Every event goes to the screen, and what rsync logs to the log file.
impl Reporter for Output {
    fn planned(&self, files: u64, bytes: u64) {
        self.screen().planned(files, bytes)
    }
    fn file_started(&self, path: &str, size: u64, resume_from: u64) {
        self.screen().file_started(path, size, resume_from)
    }
    fn bytes_done(&self, path: &str, bytes: u64) {
        self.note_progress(path, bytes);
        self.screen().bytes_done(path, bytes)
    }
    fn finished(&self, item: &Item<'_>) {
        self.note_end(item.path);
        self.screen().finished(item);
        if let Some(log) = &self.log {
            log.finished(item);
        }
    }
    fn file_failed(&self, path: &str, error: &FileError) {
        self.note_end(path);
        self.screen().file_failed(path, error);
        if let Some(log) = &self.log {
            log.file_failed(path, error);
        }
    }
    fn note(&self, message: &str) {
        self.screen().note(message)
    }
    fn mention(&self, what: Mention, message: &str) {
        self.screen().mention(what, message)
    }
    fn warning(&self, message: &str) {
        self.screen().warning(message);
        if let Some(log) = &self.log {
            log.warning(message);
        }
    }
    fn phase(&self, phase: crate::report::Phase) {
        self.screen().phase(phase)
    }
    fn listed(&self, entries: u64) {
        self.screen().listed(entries)
    }
    fn file_step(&self, path: &str, step: crate::report::FileStep, bytes: u64) {
        self.screen().file_step(path, step, bytes)
    }
    fn step_done(&self, path: &str, bytes: u64) {
        self.screen().step_done(path, bytes)
    }
    fn prompt_guard(&self) -> crate::report::PromptGuard {
        self.screen().prompt_guard()
    }
}

fn fail(e: &Error) -> i32 {
    eprintln!("ferry: {e}");
    ExitCode::of_error(e).code()
}

/// `tracing` output on stderr: ferry's own warnings by default, more of its
/// own with `-vv` and `-vvv`, everything (the SSH and SFTP crates too) from
/// `-vvvv` on or as `FERRY_LOG` says. Other crates' warnings are not
/// messages for the user: what matters reaches them as ferry's errors.
fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 | 1 => "ferry=warn",
        2 => "ferry=info",
        3 => "ferry=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only for a person: never into a log file or a pipe.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// SIGINT and SIGTERM drop the run where it stands: the partial file stays on
/// disk and the next run verifies and continues it.
async fn run_until_signal(
    settings: &Settings,
    reporter: &dyn Reporter,
    total: &mut Stats,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT handler", e))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?;
    tokio::select! {
        r = run(settings, reporter, total) => r,
        _ = interrupt.recv() => Err(Error::Interrupted),
        _ = terminate.recv() => Err(Error::Interrupted),
    }
}

/// Runs the sync; with a remote side, one connection after another while
/// `--retries` allows (the totals add up in `total`, also when it fails).
async fn run(settings: &Settings, reporter: &dyn Reporter, total: &mut Stats) -> Result<()> {
    let (sources, dest, opts) = (&settings.sources, settings.dest.as_str(), &settings.options);
    let spec = match &settings.direction {
        Direction::Local => {
            let dst = local_destination(settings);
            return engine::sync_into(
                &LocalFs::default(),
                &dst,
                sources,
                dest,
                opts,
                reporter,
                total,
            )
            .await;
        }
        Direction::Push(spec) | Direction::Pull(spec) => spec,
    };
    let started = std::time::Instant::now();
    // One meter for every connection of the run: the totals add up over
    // reconnects, and --bwlimit holds across them.
    let meter = Meter::new(settings.bwlimit);
    let result = run_remote(spec, settings, &meter, reporter, total).await;
    total.elapsed = started.elapsed();
    total.wire_sent = meter.sent();
    total.wire_received = meter.received();
    result
}

/// The local destination, confined to the directories the user named
/// ([`LocalFs::confined_to`]): DEST first, then a backup or temp directory
/// (a relative one from DEST, or from its directory when DEST names a
/// file: both are named, as which is known only once planned, and one
/// inside DEST is left to DEST's root) and an absolute partial directory.
/// A relative partial directory lies inside each directory of DEST.
fn local_destination(settings: &Settings) -> LocalFs {
    let dirlinks = settings.options.keep_dirlinks;
    LocalFs::confined_to(destination_roots(settings), dirlinks)
}

/// The directories a run may change things below, as the user named them:
/// the destination, and a backup, temp or partial directory given apart
/// from it (a relative one taken from the destination or, for rsync's
/// `--backup-dir` and `--temp-dir`, its parent).
fn destination_roots(settings: &Settings) -> Vec<String> {
    let (dest, opts) = (settings.dest.as_str(), &settings.options);
    let backup_dir = opts.backup.as_ref().and_then(|b| b.dir.as_deref());
    let named = [backup_dir, opts.staging.temp_dir.as_deref()];
    let mut roots = vec![dest.to_string()];
    for dir in named.into_iter().flatten() {
        match dir.starts_with('/') {
            true => roots.push(dir.to_string()),
            false => roots.extend([
                paths::join(dest, dir),
                paths::join(paths::parent(dest), dir),
            ]),
        }
    }
    let partial_dir = opts.staging.partial_dir.as_ref();
    roots.extend(partial_dir.filter(|d| d.starts_with('/')).cloned());
    roots
}

async fn run_remote(
    spec: &RemoteSpec,
    settings: &Settings,
    meter: &Arc<Meter>,
    reporter: &dyn Reporter,
    total: &mut Stats,
) -> Result<()> {
    let mut retry = Reconnects::new(settings);
    loop {
        let counted = ProgressCount::new(reporter);
        let mut attempt = Stats::default();
        let opts = retry.options();
        let result = run_once(
            spec,
            settings,
            meter,
            &opts,
            &counted,
            &mut attempt,
            &mut retry.connected,
        )
        .await;
        let done_before = total.files_done();
        total.add_attempt(&attempt, done_before);
        let Err(error) = result else { return Ok(()) };
        let wait = retry.after_failure(error, counted.progressed(), reporter)?;
        total.reconnects += 1;
        tokio::time::sleep(wait).await;
    }
}

/// The bookkeeping of `--retries`: how many reconnects in a row made no
/// progress, the error that began them, and how many files go at once.
struct Reconnects<'a> {
    settings: &'a Settings,
    /// Whether any attempt got connected (a first connection that fails is
    /// not retried: a wrong host or key is not a flaky link).
    connected: bool,
    fruitless: u32,
    /// The error to exit with should the series fail: a reconnect refused
    /// by a dead link says less than what broke the run.
    first_of_series: Option<Error>,
    jobs: usize,
}

impl<'a> Reconnects<'a> {
    fn new(settings: &'a Settings) -> Self {
        Reconnects {
            settings,
            connected: false,
            fruitless: 0,
            first_of_series: None,
            jobs: settings.options.jobs,
        }
    }

    fn options(&self) -> engine::Options {
        engine::Options {
            jobs: self.jobs,
            ..self.settings.options.clone()
        }
    }

    /// After a failed attempt: how long to wait before the next, or the
    /// error to end the run with.
    fn after_failure(
        &mut self,
        error: Error,
        progressed: bool,
        reporter: &dyn Reporter,
    ) -> Result<std::time::Duration> {
        let (policy, quiet) = (self.settings.retry, self.settings.quiet);
        // Files in flight share the link: one that drops sooner than the
        // first of them completes would never see one finish. Fewer at once
        // after a fruitless attempt, more again after a fruitful one.
        if progressed {
            self.fruitless = 0;
            self.first_of_series = None;
            self.jobs = (self.jobs * 2).min(self.settings.options.jobs);
        } else {
            self.jobs = (self.jobs / 4).max(1);
        }
        if !retryable(&error, self.connected) {
            return Err(error);
        }
        if self.fruitless >= policy.retries {
            let Some(first) = self.first_of_series.take() else {
                return Err(error);
            };
            if !quiet {
                reporter.warning(&format!("{error}; giving up"));
            }
            return Err(first);
        }
        let wait = policy.wait(self.fruitless);
        self.fruitless += 1;
        if !quiet {
            reporter.warning(&format!(
                "{error}; reconnecting in {:.1} s ({} of {} in a row without progress)",
                wait.as_secs_f64(),
                self.fruitless,
                policy.retries
            ));
        }
        self.first_of_series.get_or_insert(error);
        Ok(wait)
    }
}

/// One connection's worth of the run: connect, sync, say goodbye.
async fn run_once(
    spec: &RemoteSpec,
    settings: &Settings,
    meter: &Arc<Meter>,
    opts: &engine::Options,
    reporter: &dyn Reporter,
    stats: &mut Stats,
    connected_once: &mut bool,
) -> Result<()> {
    let (sources, dest) = (&settings.sources, settings.dest.as_str());
    reporter.phase(Phase::Connecting);
    let (remote, conn) = connect(spec, settings, meter, reporter.prompt_guard()).await?;
    *connected_once = true;
    let opts = match with_remote_list(opts, settings, &remote, &conn).await {
        Ok(opts) => opts,
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    };
    let opts = opts.as_ref();
    let result = match &settings.direction {
        Direction::Pull(_) => {
            let dst = local_destination(settings);
            engine::sync_into(&remote, &dst, sources, dest, opts, reporter, stats).await
        }
        _ => {
            engine::sync_into(
                &LocalFs::default(),
                &remote,
                sources,
                dest,
                opts,
                reporter,
                stats,
            )
            .await
        }
    };
    conn.close().await;
    result
}

/// The options with a remote `--files-from` list read in (on every
/// connection: a reconnect reads it again, as a new rsync run would).
async fn with_remote_list<'a>(
    opts: &'a engine::Options,
    settings: &Settings,
    remote: &RemoteFs,
    conn: &Connection,
) -> Result<std::borrow::Cow<'a, engine::Options>> {
    let Some(list) = &settings.remote_files_from else {
        return Ok(std::borrow::Cow::Borrowed(opts));
    };
    let files_from = remote_list::read(remote, list, conn.alias()).await?;
    Ok(std::borrow::Cow::Owned(engine::Options {
        files_from: Some(Arc::new(files_from)),
        ..opts.clone()
    }))
}

/// Whether a failed run is worth taking up again on a new connection: the
/// network let it down, and authentication and host keys were fine once.
fn retryable(error: &Error, connected_once: bool) -> bool {
    match error {
        Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
        // The server may be restarting or the link still down.
        Error::Connect { .. } => connected_once,
        Error::Auth(e) => connected_once && e.is_network(),
        _ => false,
    }
}

/// Passes every event on, noting whether new data reached the destination
/// or a file was finished: what tells a fruitful attempt from a fruitless one.
struct ProgressCount<'a> {
    inner: &'a dyn Reporter,
    moved: AtomicBool,
}

impl<'a> ProgressCount<'a> {
    fn new(inner: &'a dyn Reporter) -> Self {
        ProgressCount {
            inner,
            moved: AtomicBool::new(false),
        }
    }

    fn progressed(&self) -> bool {
        self.moved.load(Ordering::Relaxed)
    }
}

impl Reporter for ProgressCount<'_> {
    fn planned(&self, files: u64, bytes: u64) {
        self.inner.planned(files, bytes)
    }
    fn file_started(&self, path: &str, size: u64, resume_from: u64) {
        self.inner.file_started(path, size, resume_from)
    }
    fn bytes_done(&self, path: &str, bytes: u64) {
        if bytes > 0 {
            self.moved.store(true, Ordering::Relaxed);
        }
        self.inner.bytes_done(path, bytes)
    }
    fn finished(&self, item: &Item<'_>) {
        // Up-to-date entries are reported while planning: no progress.
        let nothing_done = matches!(
            item.outcome,
            Outcome::WouldSend | Outcome::WouldDelete | Outcome::Skipped
        );
        if !nothing_done {
            self.moved.store(true, Ordering::Relaxed);
        }
        self.inner.finished(item)
    }
    fn file_failed(&self, path: &str, error: &FileError) {
        self.inner.file_failed(path, error)
    }
    fn note(&self, message: &str) {
        self.inner.note(message)
    }
    fn mention(&self, what: Mention, message: &str) {
        self.inner.mention(what, message)
    }
    fn warning(&self, message: &str) {
        self.inner.warning(message)
    }
    fn phase(&self, phase: crate::report::Phase) {
        self.inner.phase(phase)
    }
    fn listed(&self, entries: u64) {
        self.inner.listed(entries)
    }
    fn file_step(&self, path: &str, step: crate::report::FileStep, bytes: u64) {
        self.inner.file_step(path, step, bytes)
    }
    fn step_done(&self, path: &str, bytes: u64) {
        self.inner.step_done(path, bytes)
    }
    fn prompt_guard(&self) -> crate::report::PromptGuard {
        self.inner.prompt_guard()
    }
}

/// `--identity` naming a file that cannot be read: said once, in ssh's
/// words (`ssh -i`), and the other keys are tried, as ssh tries them.
fn warn_missing_identity(settings: &Settings) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let Some(path) = &settings.overrides.identity else {
        return;
    };
    if let Err(e) = std::fs::metadata(path) {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
            _ => e.to_string(),
        };
        WARNED.call_once(|| {
            eprintln!(
                "Warning: Identity file {} not accessible: {why}.",
                path.display()
            )
        });
    }
}

/// Opens the SFTP endpoint; the connection is returned so it lives as long as
/// the endpoint is used. The hashing tier is found (and a helper started)
/// only when the engine first needs it.
async fn connect(
    spec: &RemoteSpec,
    settings: &Settings,
    meter: &Arc<Meter>,
    prompts: PromptGuard,
) -> Result<(RemoteFs, Arc<Connection>)> {
    warn_missing_identity(settings);
    let host = config::resolve(
        &spec.host,
        settings.ssh_config.as_deref(),
        &settings.overrides,
    )?;
    let opts = ConnectOptions {
        interactive: std::io::stdin().is_terminal(),
        prompts,
        connect_timeout: settings.connect_timeout,
        request_timeout: settings.timeout,
        meter: Some(meter.clone()),
        wrapper: settings.wrapper.clone(),
    };
    let conn = Arc::new(Connection::open(host, &opts).await?);
    // A far server's other sessions start opening beside the first.
    let early = Early::start(&conn, settings.streams);
    let sftp = Arc::new(Sftp::open(&conn).await?);
    let tier = tier_choice(settings, conn.alias());
    let streams = StreamChoice {
        streams: settings.streams,
        tell: (settings.verbosity > 0)
            .then(|| Arc::new(|said: &str| eprintln!("ferry: {said}")) as OnChosen),
    };
    let remote = RemoteFs::new(conn.clone(), sftp, tier, streams, early);
    Ok((remote, conn))
}

/// What a remote side's helper must tell that SFTP v3 does not: inodes
/// for -H and device numbers for -D on a pulled side; with -X or -A, which
/// need the helper anyway, everything, times to the nanosecond too.
fn describe(settings: &Settings) -> Describe {
    let opts = &settings.options;
    match settings.direction {
        _ if opts.xattrs.wanted() => Describe::All,
        Direction::Pull(_) if opts.hard_links => Describe::All,
        Direction::Pull(_) if opts.devices => Describe::Stats,
        _ => Describe::Sftp,
    }
}

/// The remote hashing tier as the flags ask for it, told under `-v` once
/// the remote side has chosen it.
fn tier_choice(settings: &Settings, host: &str) -> TierChoice {
    let wanted = match settings.remote_hash {
        RemoteHashMode::Auto => Wanted::Auto,
        RemoteHashMode::Helper => Wanted::Helper,
        RemoteHashMode::Shell => Wanted::Shell,
        RemoteHashMode::Read => Wanted::Read,
        RemoteHashMode::Off => Wanted::Off,
    };
    let helper = match settings.remote_ferry.as_str() {
        "upload" => HelperSource::Upload {
            cache: settings.remote_cache.clone(),
        },
        command => HelperSource::Command(command.to_string()),
    };
    let on_chosen: Option<OnChosen> = (settings.verbosity > 0).then(|| {
        let host = host.to_string();
        Arc::new(move |tier: &str| eprintln!("ferry: remote hashing on {host}: {tier}")) as OnChosen
    });
    // A pulled-from side is only read: nothing to confine.
    let roots = match settings.direction {
        Direction::Pull(_) => Vec::new(),
        _ => destination_roots(settings),
    };
    TierChoice {
        wanted,
        helper,
        on_chosen,
        roots,
        dirlinks: settings.options.keep_dirlinks,
        describe: describe(settings),
    }
}
