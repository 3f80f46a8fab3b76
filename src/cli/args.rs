//! Raw command-line flags, as clap parses them. Nothing here does I/O or
//! interprets combinations; `settings` turns these into what the run uses.
//! Letters mean what they mean in rsync, or are not used at all.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::filter::{FilterArg, FilterFlag};

/// Where the remote side's hashes come from (`--remote-hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RemoteHashMode {
    /// The helper when it answers, else the shell when it has the tools, else off
    Auto,
    /// `ferry --server` on the remote (fail if it cannot be started)
    Helper,
    /// The remote shell's split --filter with b3sum or sha256sum
    Shell,
    /// Read remote data over SFTP and hash it here
    Read,
    /// No remote hashing: no delta, no end-to-end check
    Off,
}

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    // rsync takes a flag given twice (`-a -t`, a script's defaults plus its
    // own) as once.
    args_override_self = true,
    // -h is rsync's --human-readable; help is --help only.
    disable_help_flag = true,
    about = "Resumable, verified copies and syncs over SSH/SFTP",
    long_about = "Copies and syncs files and directory trees between this machine and SSH \
                  servers, with SFTP carrying the data. Sends only what the destination lacks, \
                  resumes interrupted copies after verifying what is already there, and replaces \
                  destination files only with complete copies.\n\n\
                  Remote paths: [user@]host:path, [user@][ipv6]:path, sftp://[user@]host[:port]/path"
)]
pub struct Args {
    /// Sources, then the destination (as in rsync)
    #[arg(value_name = "SRC... DEST", num_args = 0..)]
    pub paths: Vec<String>,

    /// Recurse into directories
    #[arg(short, long)]
    pub recursive: bool,

    /// Archive mode: -rlpt (recursive, symlinks as symlinks, permissions, times)
    #[arg(short, long)]
    pub archive: bool,

    /// Preserve modification times
    #[arg(short, long)]
    pub times: bool,

    /// Preserve permissions
    #[arg(short, long)]
    pub perms: bool,

    /// Copy symlinks as symlinks
    #[arg(short, long)]
    pub links: bool,

    /// Update destination files in place (no partial: a cut run leaves a
    /// half-updated file, which the next run repairs)
    #[arg(long)]
    pub inplace: bool,

    /// Copy changed files whole instead of sending only changed blocks (the
    /// default when both ends are local, as in rsync)
    #[arg(short = 'W', long, overrides_with = "no_whole_file")]
    pub whole_file: bool,

    /// Send only changed blocks even when both ends are local
    #[arg(long, overrides_with = "whole_file")]
    pub no_whole_file: bool,

    /// Sync every file to disk before it is renamed into place (files that
    /// replace an existing one always are)
    #[arg(long)]
    pub fsync: bool,

    /// Files in flight at once: a small file costs round trips, not
    /// bandwidth, so many overlap (memory stays bounded whatever the number;
    /// at most 100 remote files are open at once over SFTP)
    #[arg(short, long, value_name = "N", default_value_t = 128,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: u16,

    /// Delete destination files that are not in the source (only after
    /// every transfer succeeded; skipped when anything failed)
    #[arg(long)]
    pub delete: bool,

    /// With --delete: delete nothing when more than N files and
    /// directories would go (exit 25)
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,

    /// Show what would be transferred, change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// More output: file names, then debug logs (-vv, -vvv)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors
    #[arg(short, long)]
    pub quiet: bool,

    /// Output a change summary for each updated file (rsync's YXcstpoguax)
    #[arg(short = 'i', long)]
    pub itemize_changes: bool,

    /// Print rsync's file-transfer statistics at the end
    #[arg(long)]
    pub stats: bool,

    /// Numbers in a human-readable form (K, M, G) in --stats
    #[arg(short = 'h', long)]
    pub human_readable: bool,

    /// Fine-grained output: progress2 (one overall progress line),
    /// progress0 (none), stats (same as --stats); comma-separated
    #[arg(long, value_name = "FLAGS")]
    pub info: Vec<String>,

    /// One JSON object per line on stdout for each file action, then a
    /// summary with totals and the exit code (schema: docs/JSON.md)
    #[arg(long)]
    pub json: bool,

    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Compare file contents instead of size and modification time
    #[arg(short, long)]
    pub checksum: bool,

    /// Same as --partial --progress
    #[arg(short = 'P')]
    pub partial_progress: bool,

    /// Show progress during the transfer
    #[arg(long)]
    pub progress: bool,

    /// Keep partially transferred files (always on: ferry resumes from them)
    #[arg(long)]
    pub partial: bool,

    /// Compress the SSH connection (zlib; helps on slow links with
    /// compressible data)
    #[arg(short = 'z', long)]
    pub compress: bool,

    /// Limit file data to RATE per second: KiB by default, or with a
    /// suffix K, M, G (powers of 1024); 0 means no limit
    #[arg(long, value_name = "RATE")]
    pub bwlimit: Option<String>,

    /// The ssh command line rsync would run, read into ferry's own
    /// settings (-p -i -l -o -F -J -C); ferry does not run ssh
    #[arg(short = 'e', long, value_name = "COMMAND")]
    pub rsh: Option<String>,

    /// Read this ssh config file instead of ~/.ssh/config
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,

    /// SSH port, overriding ssh config
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Identity (private key) file, tried before the ones in ssh config
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Remote user name, overriding ssh config
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Seconds of silence from the server, while ferry waits on it, after
    /// which the link counts as dead; also bounds connecting
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,

    /// After a lost connection, reconnect and carry on up to N times in a
    /// row without progress (a run that moved data starts counting afresh);
    /// 0 gives up at once
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,

    /// Seconds before the first reconnect; doubles after each reconnect
    /// that made no progress, up to 60
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub retry_wait: f64,

    /// How remote files are hashed for deltas and end-to-end checks
    #[arg(long, value_enum, value_name = "MODE", default_value_t = RemoteHashMode::Auto)]
    pub remote_hash: RemoteHashMode,

    /// The ferry binary on the remote, for the hashing helper; `upload` copies
    /// this one there when the server's OS and architecture match
    #[arg(long, value_name = "PATH|upload", default_value = "ferry")]
    pub remote_ferry: String,

    /// Where `--remote-ferry upload` keeps the helper on the server
    /// (relative paths are under the login directory)
    #[arg(long, value_name = "DIR", default_value = ".cache/ferry")]
    pub remote_cache: String,

    /// Exclude files matching PATTERN (rsync's rules: first match wins)
    #[arg(
        long,
        value_name = "PATTERN",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub exclude: Vec<String>,

    /// Don't exclude files matching PATTERN
    #[arg(
        long,
        value_name = "PATTERN",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub include: Vec<String>,

    /// Read exclude patterns from FILE (- for stdin)
    #[arg(long, value_name = "FILE", help_heading = "Filters")]
    pub exclude_from: Vec<String>,

    /// Read include patterns from FILE (- for stdin)
    #[arg(long, value_name = "FILE", help_heading = "Filters")]
    pub include_from: Vec<String>,

    /// Add a filter RULE ("- PATTERN", "+ PATTERN", ". FILE", ...)
    #[arg(
        short = 'f',
        long,
        value_name = "RULE",
        allow_hyphen_values = true,
        help_heading = "Filters"
    )]
    pub filter: Vec<String>,

    /// Transfer only the paths listed in FILE, relative to the source
    /// (- for stdin)
    #[arg(long, value_name = "FILE", help_heading = "Filters")]
    pub files_from: Option<String>,

    /// With --delete: also delete excluded files from the destination
    #[arg(long, help_heading = "Filters")]
    pub delete_excluded: bool,

    /// The filter options in the order given: rsync's rules depend on it
    /// (filled in by [`Args::parse_from_env`]).
    #[arg(skip)]
    pub filter_rules: Vec<FilterArg>,

    /// Print the man page (roff) on stdout
    #[arg(long, help_heading = "Installation")]
    pub man: bool,

    /// Print a completion script for SHELL on stdout
    #[arg(long, value_name = "SHELL", help_heading = "Installation")]
    pub completions: Option<clap_complete::Shell>,

    /// Serve hash requests on stdin/stdout (run by ferry itself over SSH)
    #[arg(long, hide = true)]
    pub server: bool,
}

impl Args {
    /// Parses the process's arguments, keeping the filter options in
    /// command-line order, which derive alone loses.
    pub fn parse_from_env() -> Result<Args, clap::Error> {
        Self::parse_from_iter(std::env::args_os())
    }

    pub fn parse_from_iter<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        let mut args = Args::from_arg_matches(&matches)?;
        args.filter_rules = ordered_filters(&matches);
        Ok(args)
    }
}

fn ordered_filters(matches: &clap::ArgMatches) -> Vec<FilterArg> {
    let kinds = [
        ("exclude", FilterFlag::Exclude),
        ("include", FilterFlag::Include),
        ("exclude_from", FilterFlag::ExcludeFrom),
        ("include_from", FilterFlag::IncludeFrom),
        ("filter", FilterFlag::Filter),
    ];
    let mut found: Vec<(usize, FilterArg)> = Vec::new();
    for (id, flag) in kinds {
        let (Some(indices), Some(values)) =
            (matches.indices_of(id), matches.get_many::<String>(id))
        else {
            continue;
        };
        found.extend(indices.zip(values).map(|(index, value)| {
            let value = value.clone();
            (index, FilterArg { flag, value })
        }));
    }
    found.sort_by_key(|(index, _)| *index);
    found.into_iter().map(|(_, rule)| rule).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_their_command_line_order() {
        let args = Args::parse_from_iter([
            "ferry",
            "--include",
            "*/",
            "-f",
            "- *.o",
            "--exclude=*",
            "--include",
            "late",
            "a",
            "b",
        ])
        .expect("parses");
        let order: Vec<(FilterFlag, &str)> = args
            .filter_rules
            .iter()
            .map(|r| (r.flag, r.value.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (FilterFlag::Include, "*/"),
                (FilterFlag::Filter, "- *.o"),
                (FilterFlag::Exclude, "*"),
                (FilterFlag::Include, "late"),
            ]
        );
    }
}
