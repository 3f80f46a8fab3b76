//! Resolved settings: the validated meaning of the flags. The rest of the
//! program never sees raw flags (ripgrep's low/high argument split).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::args::{Args, RemoteHashMode};
use super::progress::{Display, ProgressMode};
use crate::engine::Options;
use crate::error::{Error, Result};
use crate::filter::{FilesFrom, Filter, ListReader};
use crate::location::{Location, RemoteSpec};
use crate::ssh::config::Overrides;
use crate::ssh::rsh::{parse_rsh, Rsh};

/// Which way the data flows.
#[derive(Debug, Clone)]
pub enum Direction {
    Local,
    Push(RemoteSpec),
    Pull(RemoteSpec),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub direction: Direction,
    pub sources: Vec<String>,
    pub dest: String,
    pub options: Options,
    pub ssh_config: Option<PathBuf>,
    pub overrides: Overrides,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub verbosity: u8,
    pub quiet: bool,
    /// What the console shows (ignored with `--json`).
    pub display: Display,
    /// `--json`: JSON lines on stdout instead of the console's output.
    pub json: bool,
    /// `--stats`, and with `-h` its numbers in K, M, G.
    pub stats: bool,
    pub human_readable: bool,
    /// `--bwlimit` in bytes per second.
    pub bwlimit: Option<u64>,
    pub remote_hash: RemoteHashMode,
    pub remote_ferry: String,
    pub remote_cache: String,
}

impl Settings {
    pub fn resolve(args: Args) -> Result<Settings> {
        if args.paths.len() < 2 {
            return Err(Error::Usage(
                "need at least one source and a destination: ferry [OPTIONS] SRC... DEST".into(),
            ));
        }
        let mut locations = args
            .paths
            .iter()
            .map(|p| Location::parse(p).map_err(Error::Usage))
            .collect::<Result<Vec<_>>>()?;
        let dest = locations
            .pop()
            .ok_or_else(|| Error::Usage("missing destination".into()))?;
        let direction = direction_of(&locations, &dest)?;
        let sources: Vec<String> = locations.iter().map(|l| l.path().to_string()).collect();
        // The filter options' files (and --files-from) are read now, so
        // that a missing one stops the run before anything connects.
        let mut lists = ListReader::default();
        let filter = Filter::from_args(&args.filter_rules, args.delete_excluded, &mut lists)?;
        let files_from = match &args.files_from {
            Some(name) if sources.len() == 1 => Some(Arc::new(FilesFrom::read(name, &mut lists)?)),
            Some(_) => {
                return Err(Error::Usage(
                    "--files-from takes one source directory (the listed paths are relative \
                     to it) and a destination"
                        .into(),
                ))
            }
            None => None,
        };
        let options = Options {
            // rsync: with --files-from, -a does not imply -r.
            recursive: args.recursive || (args.archive && files_from.is_none()),
            links: args.links || args.archive,
            perms: args.perms || args.archive,
            times: args.times || args.archive,
            dry_run: args.dry_run,
            checksum: args.checksum,
            // rsync's rule: between two local paths reading both files to
            // find the differences costs more than writing the new one.
            delta: args.no_whole_file
                || !(args.whole_file || matches!(direction, Direction::Local)),
            inplace: args.inplace,
            executability: false,
            omit_dir_times: false,
            omit_link_times: false,
            force: false,
            fsync: args.fsync,
            jobs: usize::from(args.jobs),
            // rsync: --delete-excluded implies --delete.
            delete: args.delete || args.delete_excluded,
            max_delete: args.max_delete,
            filter: Arc::new(filter),
            files_from,
        };
        if args.max_delete.is_some() && !options.delete {
            return Err(Error::Usage("--max-delete goes with --delete".into()));
        }
        let info = Info::parse(&args.info)?;
        let bwlimit = args
            .bwlimit
            .as_deref()
            .map(parse_rate)
            .transpose()?
            .filter(|r| *r > 0);
        let display = display_of(&args, &info, &direction);
        let rsh = match &args.rsh {
            Some(command) => parse_rsh(command)?,
            None => Rsh::default(),
        };
        // Most specific first: ferry's own flags, then the remote path's
        // user@host:port, then what `-e` says.
        let spec = match &direction {
            Direction::Push(r) | Direction::Pull(r) => Some(r),
            Direction::Local => None,
        };
        let port = args
            .port
            .or(spec.and_then(|r| r.port))
            .or(rsh.overrides.port);
        let user = args
            .user
            .clone()
            .or(spec.and_then(|r| r.user.clone()))
            .or(rsh.overrides.user);
        Ok(Settings {
            direction,
            sources,
            dest: dest.path().to_string(),
            options,
            ssh_config: args.ssh_config.or(rsh.config_file),
            overrides: Overrides {
                port,
                user,
                identity: args.identity.or(rsh.overrides.identity),
                proxy_jump: rsh.overrides.proxy_jump,
                options: rsh.overrides.options,
                compression: args.compress || rsh.overrides.compression,
            },
            timeout: Duration::from_secs(args.timeout.max(1)),
            retry: RetryPolicy::new(args.retries, args.retry_wait)?,
            verbosity: args.verbose,
            quiet: args.quiet,
            display,
            json: args.json,
            stats: args.stats || info.stats,
            human_readable: args.human_readable,
            bwlimit,
            remote_hash: args.remote_hash,
            remote_ferry: args.remote_ferry,
            remote_cache: args.remote_cache,
        })
    }
}

/// What `--info` asked for, as far as ferry has it.
#[derive(Debug, Default)]
struct Info {
    /// `progress2` (Some(true)), `progress0` (Some(false)), `progress1`.
    overall_progress: Option<bool>,
    stats: bool,
}

impl Info {
    fn parse(flags: &[String]) -> Result<Info> {
        let mut info = Info::default();
        for flag in flags.iter().flat_map(|f| f.split(',')) {
            match flag.trim().to_ascii_lowercase().as_str() {
                "progress2" => info.overall_progress = Some(true),
                "progress0" => info.overall_progress = Some(false),
                "progress" | "progress1" => info.overall_progress = None,
                "stats" | "stats1" | "stats2" | "stats3" => info.stats = true,
                "stats0" => info.stats = false,
                "" => {}
                other => {
                    return Err(Error::Usage(format!(
                        "--info={other}: ferry knows progress0, progress1, progress2 and stats"
                    )))
                }
            }
        }
        Ok(info)
    }
}

/// What the console shows: bars on a terminal (one overall and one per
/// large file, or the overall line alone with `--info=progress2`); off a
/// terminal only with `--progress`, as a line on stderr.
fn display_of(args: &Args, info: &Info, direction: &Direction) -> Display {
    let on_terminal = std::io::stdout().is_terminal();
    let asked = args.progress || args.partial_progress;
    let progress = match info.overall_progress {
        _ if args.quiet || args.json => ProgressMode::Off,
        Some(false) => ProgressMode::Off,
        Some(true) => ProgressMode::Overall,
        None if on_terminal => ProgressMode::PerFile,
        None if asked => ProgressMode::Overall,
        None => ProgressMode::Off,
    };
    Display {
        progress,
        verbose: args.verbose > 0 && !args.quiet,
        itemize: args.itemize_changes && !args.quiet,
        sending: matches!(direction, Direction::Push(_)),
    }
}

/// rsync's `--bwlimit` RATE: KiB per second, or a number with a K, M or G
/// suffix (powers of 1024; a trailing `B` or `iB` is allowed).
fn parse_rate(rate: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "--bwlimit {rate}: give a rate such as 500 (KiB/s), 1.5M or 10m"
        ))
    };
    let lower = rate.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches("ib").trim_end_matches('b');
    let (number, unit) = match lower.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&lower[..i], c),
        _ => (lower, 'k'),
    };
    let scale: f64 = match unit {
        'k' => 1024.0,
        'm' => 1024.0 * 1024.0,
        'g' => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok((value * scale) as u64)
}

/// How a run lost to the network is taken up again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Reconnects in a row without progress before giving up.
    pub retries: u32,
    /// Wait before the first reconnect; doubled after each fruitless one.
    pub first_wait: Duration,
}

/// Longest wait between reconnects.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

impl RetryPolicy {
    fn new(retries: u32, wait_secs: f64) -> Result<RetryPolicy> {
        if !(0.0..=MAX_RETRY_WAIT.as_secs_f64()).contains(&wait_secs) {
            return Err(Error::Usage(format!(
                "--retry-wait {wait_secs}: give a number of seconds from 0 to {}",
                MAX_RETRY_WAIT.as_secs()
            )));
        }
        Ok(RetryPolicy {
            retries,
            first_wait: Duration::from_secs_f64(wait_secs),
        })
    }

    /// The wait before reconnect number `fruitless` + 1 of a series that
    /// made no progress.
    pub fn wait(&self, fruitless: u32) -> Duration {
        let doubled = self.first_wait.saturating_mul(1 << fruitless.min(16));
        doubled.min(MAX_RETRY_WAIT)
    }
}

fn direction_of(sources: &[Location], dest: &Location) -> Result<Direction> {
    let remote_sources: Vec<&RemoteSpec> = sources.iter().filter_map(Location::remote).collect();
    match (remote_sources.first(), dest.remote()) {
        (None, None) => Ok(Direction::Local),
        (None, Some(r)) => Ok(Direction::Push(r.clone())),
        (Some(_), Some(_)) => Err(Error::Usage(
            "copying from one remote host to another is not supported; copy through this machine"
                .into(),
        )),
        (Some(first), None) => {
            let same = |r: &&RemoteSpec| {
                r.host == first.host && r.user == first.user && r.port == first.port
            };
            if remote_sources.len() != sources.len() || !remote_sources.iter().all(same) {
                return Err(Error::Usage(
                    "all sources must be on the same side: all local, or all on one remote host"
                        .into(),
                ));
            }
            Ok(Direction::Pull((*first).clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn bwlimit_rates_read_as_rsync_reads_them() {
        assert_eq!(parse_rate("500").ok(), Some(500 * 1024));
        assert_eq!(parse_rate("1.5M").ok(), Some(1536 * 1024));
        assert_eq!(parse_rate("10m").ok(), Some(10 << 20));
        assert_eq!(parse_rate("2KiB").ok(), Some(2048));
        assert_eq!(parse_rate("1g").ok(), Some(1 << 30));
        assert_eq!(parse_rate("0").ok(), Some(0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("5x").is_err());
    }
}
