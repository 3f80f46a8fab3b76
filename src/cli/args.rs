//! Raw command-line flags, as clap parses them. Nothing here does I/O or
//! interprets combinations; `settings` turns these into what the run uses.
//! Letters mean what they mean in rsync, or are not used at all.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use super::toggles::{
    self, Flags, Purpose, CONNECTION, COPYING, DELETING, FILTERS, HELP, OUTPUT, OWN, SELECTING,
    WRITING,
};
use crate::filter::{FilterArg, FilterFlag};

/// Where the remote side's hashes come from (`--remote-hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RemoteHashMode {
    /// The helper when it answers, else the shell when it has the tools, else the server's check-file extension (ProFTPD), else off
    Auto,
    /// `ferry --server` on the remote (fail if it cannot be started)
    Helper,
    /// The remote shell's python3 or perl, else split --filter with b3sum or sha256sum
    Shell,
    /// Read remote data over SFTP and hash it here
    Read,
    /// No remote hashing: no delta, no end-to-end check; a resume reads the partial back
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
    // -V comes under "Help and installation" with --help.
    disable_version_flag = true,
    about = "Resumable, verified copies and syncs over SSH/SFTP",
    long_about = "Copies and syncs files and directory trees between this machine and SSH \
                  servers, with SFTP carrying the data. Sends only what the destination lacks, \
                  resumes interrupted copies after verifying what is already there, and replaces \
                  destination files only with complete copies.\n\n\
                  Remote paths: [user@]host:path, [user@][ipv6]:path, sftp://[user@]host[:port]/path"
)]
pub(crate) struct Args {
    /// Sources, then the destination (as in rsync; options may come after
    /// the paths)
    #[arg(value_name = "SRC... DEST", num_args = 0..)]
    pub paths: Vec<String>,

    /// The options without a value, in command-line order (filled in by
    /// [`Args::parse_from_iter`] from [`super::toggles`]).
    #[arg(skip)]
    pub flags: Flags,

    /// Change the permissions files and directories get: rsync's CHMOD
    /// rules (D755,F644, u+w, Dg+s...)
    #[arg(long, value_name = "CHMOD", help_heading = COPYING)]
    pub chmod: Vec<String>,

    /// Map the source's users to the destination's: rsync's FROM:TO,...
    /// (FROM a name, a wildcard, a number or LOW-HIGH; TO a name or number)
    #[arg(long, value_name = "STRING", help_heading = COPYING)]
    pub usermap: Option<String>,

    /// Map the source's groups to the destination's, as --usermap does users
    #[arg(long, value_name = "STRING", help_heading = COPYING)]
    pub groupmap: Option<String>,

    /// Give every entry this owner and group (--usermap=*:USER
    /// --groupmap=*:GROUP; either may be left out)
    #[arg(long, value_name = "USER:GROUP", help_heading = COPYING)]
    pub chown: Option<String>,

    /// Compare times within N seconds (-1: to the nanosecond where both
    /// sides have them, ferry's default)
    #[arg(
        short = '@',
        long,
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = SELECTING
    )]
    pub modify_window: Option<i64>,

    /// Leave out files larger than SIZE (K, M, G suffixes as rsync takes them)
    #[arg(long, value_name = "SIZE", help_heading = SELECTING)]
    pub max_size: Option<String>,

    /// Leave out files smaller than SIZE
    #[arg(long, value_name = "SIZE", help_heading = SELECTING)]
    pub min_size: Option<String>,

    /// Hard-link files DIR has unchanged instead of sending them
    ///
    /// A file the destination lacks that DIR has unchanged (same size and
    /// time, or -c's content, and attributes) is hard-linked from there
    /// instead of sent; one that differs is sent as a delta against it.
    /// Relative to the destination directory; up to 20, tried in order
    #[arg(long, value_name = "DIR", help_heading = SELECTING)]
    pub link_dest: Vec<String>,

    /// As --link-dest, but the unchanged file is copied from DIR on the
    /// destination side (no data crosses), not linked
    #[arg(long, value_name = "DIR", help_heading = SELECTING)]
    pub copy_dest: Vec<String>,

    /// As --link-dest, but a file DIR has unchanged is left out of the
    /// destination altogether
    #[arg(long, value_name = "DIR", help_heading = SELECTING)]
    pub compare_dest: Vec<String>,

    /// Exclude files matching PATTERN (rsync's rules: first match wins)
    #[arg(
        long,
        value_name = "PATTERN",
        allow_hyphen_values = true,
        help_heading = FILTERS
    )]
    pub exclude: Vec<String>,

    /// Don't exclude files matching PATTERN
    #[arg(
        long,
        value_name = "PATTERN",
        allow_hyphen_values = true,
        help_heading = FILTERS
    )]
    pub include: Vec<String>,

    /// Read exclude patterns from FILE (- for stdin)
    #[arg(long, value_name = "FILE", help_heading = FILTERS)]
    pub exclude_from: Vec<String>,

    /// Read include patterns from FILE (- for stdin)
    #[arg(long, value_name = "FILE", help_heading = FILTERS)]
    pub include_from: Vec<String>,

    /// Add a filter RULE ("- PATTERN", "+ PATTERN", ". FILE", ...)
    #[arg(
        short = 'f',
        long,
        value_name = "RULE",
        allow_hyphen_values = true,
        help_heading = FILTERS
    )]
    pub filter: Vec<String>,

    /// Per-directory .rsync-filter files: -F is --filter='dir-merge
    /// /.rsync-filter', a second -F adds --filter='- .rsync-filter'
    #[arg(short = 'F', action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "", help_heading = FILTERS)]
    pub rsync_filter: Vec<String>,

    /// The --files-from, --exclude-from and merge files named after it are
    /// NUL-separated
    #[arg(short = '0', long, action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "", help_heading = FILTERS)]
    pub from0: Vec<String>,

    /// They are line-separated again
    #[arg(long, action = clap::ArgAction::Append, num_args = 0,
          default_missing_value = "", hide = true)]
    pub no_from0: Vec<String>,

    /// Transfer only the paths listed in FILE, relative to the source
    /// (- for stdin; HOST:FILE on the remote side)
    #[arg(long, value_name = "FILE", help_heading = FILTERS)]
    pub files_from: Option<String>,

    /// The filter options in the order given: rsync's rules depend on it
    /// (filled in by [`Args::parse_from_iter`]).
    #[arg(skip)]
    pub filter_rules: Vec<FilterArg>,

    /// With --delete: delete nothing when more than N files and
    /// directories would go (exit 25)
    #[arg(long, value_name = "N", help_heading = DELETING)]
    pub max_delete: Option<u64>,

    /// Keep partials in DIR (relative to each file's directory, or absolute)
    #[arg(long, value_name = "DIR", help_heading = WRITING)]
    pub partial_dir: Option<String>,

    /// Write files being copied in DIR before they are renamed into place
    #[arg(short = 'T', long, value_name = "DIR", help_heading = WRITING)]
    pub temp_dir: Option<String>,

    /// With --backup: keep the old versions in DIR, under their paths
    #[arg(long, value_name = "DIR", help_heading = WRITING)]
    pub backup_dir: Option<String>,

    /// With --backup: the backup's name suffix (default ~, none with
    /// --backup-dir)
    #[arg(
        long,
        value_name = "SUFFIX",
        allow_hyphen_values = true,
        help_heading = WRITING
    )]
    pub suffix: Option<String>,

    /// rsync's output words with levels (name2, del0, progress2...):
    /// --info=help lists them
    ///
    /// rsync's output words with levels, comma-separated: name (name2 lists
    /// unchanged files too), del, progress2 (one overall line), stats,
    /// none, all...; --info=help lists them
    #[arg(long, value_name = "FLAGS", help_heading = OUTPUT)]
    pub info: Vec<String>,

    /// One line per change in FORMAT, with rsync's escapes (%n %i %l %b ...)
    #[arg(
        long,
        alias = "log-format",
        value_name = "FORMAT",
        help_heading = OUTPUT
    )]
    pub out_format: Option<String>,

    /// Log what is done to FILE, as rsync's --log-file does
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    pub log_file: Option<PathBuf>,

    /// The format of --log-file's lines (default "%i %n%L")
    #[arg(long, value_name = "FORMAT", help_heading = OUTPUT)]
    pub log_file_format: Option<String>,

    /// The ssh command line rsync would run, read into ferry's own
    /// settings (-p -i -l -o -F -J -C); ferry does not run ssh
    #[arg(short = 'e', long, value_name = "COMMAND", help_heading = CONNECTION)]
    pub rsh: Option<String>,

    /// How rsync would start on the server (`sudo rsync`): ferry's remote
    /// side starts through the same wrapper
    ///
    /// How rsync would be started on the server (`sudo rsync`): ferry
    /// starts its remote side through the same wrapper (sftp-server, its
    /// helper, shell commands); a value not ending in rsync is refused
    #[arg(long, value_name = "PROGRAM", help_heading = CONNECTION)]
    pub rsync_path: Option<String>,

    /// SSH port, overriding ssh config
    #[arg(long, value_name = "N", help_heading = CONNECTION)]
    pub port: Option<u16>,

    /// Seconds of silence from the server after which the link is dead
    ///
    /// Seconds of silence from the server, while ferry waits on it, after
    /// which the link counts as dead; also bounds connecting (0: 60)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        help_heading = CONNECTION
    )]
    pub timeout: u64,

    /// Seconds connecting may take (default: --timeout)
    #[arg(long, value_name = "SECONDS", help_heading = CONNECTION)]
    pub contimeout: Option<u64>,

    /// Limit file data to RATE per second: KiB by default, or with a
    /// suffix K, M, G (powers of 1024); 0 means no limit
    #[arg(long, value_name = "RATE", help_heading = CONNECTION)]
    pub bwlimit: Option<String>,

    /// Convert file names (LOCAL,REMOTE): taken where names stay as they are
    ///
    /// Convert file names between character sets (LOCAL,REMOTE): taken
    /// only where names stay as they are (utf8,utf8; ferry copies names as
    /// they are); RSYNC_ICONV when not given
    #[arg(long, value_name = "CONVERT_SPEC", help_heading = CONNECTION)]
    pub iconv: Option<String>,

    /// Files in flight at once (small files overlap their round trips)
    ///
    /// Files in flight at once: a small file costs round trips, not
    /// bandwidth, so many overlap (memory stays bounded whatever the number;
    /// at most 100 remote files are open at once per SFTP session, and N
    /// are in flight per session where --streams gives several: a pushed
    /// file holds its handle for two of its three round trips, so half as
    /// many again keep the handles busy)
    #[arg(short, long, value_name = "N", default_value_t = 192,
          value_parser = clap::value_parser!(u16).range(1..=1024), help_heading = OWN)]
    pub jobs: u16,

    /// Reconnects after a lost connection, N in a row without progress
    ///
    /// After a lost connection, reconnect and carry on up to N times in a
    /// row without progress (a run that moved data starts counting afresh);
    /// 0 gives up at once
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        help_heading = OWN
    )]
    pub retries: u32,

    /// Seconds before the first reconnect; doubles after each reconnect
    /// that made no progress, up to 60
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1.0,
        help_heading = OWN
    )]
    pub retry_wait: f64,

    /// SFTP sessions carrying the data to a remote side (0: by round trip)
    ///
    /// SFTP sessions carrying the data to a remote side, each with a
    /// flow-control window of its own (OpenSSH gives a session 2 MiB per
    /// round trip): large files are spread over all of them, small files go
    /// to the least busy. 0 chooses by the round trip measured at the start
    /// (1 on a LAN, with a second for a copy of 256 MiB or more; 2 across
    /// 20 ms, 7 across 100 ms, and for a copy of 128 MiB or more beyond
    /// 25 ms up to 3 more SSH connections with 2 sessions each,
    /// as one TCP connection carries at most its window per round trip);
    /// N uses N sessions on one connection; 1 keeps one session; a server
    /// that refuses more (MaxSessions) leaves those it gave, said under -v
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=16), help_heading = OWN)]
    pub streams: u16,

    /// How remote files are hashed for deltas and end-to-end checks
    #[arg(long, value_enum, value_name = "MODE", default_value_t = RemoteHashMode::Auto,
          help_heading = OWN)]
    pub remote_hash: RemoteHashMode,

    /// The ferry binary on the remote, for the hashing helper; `upload` copies
    /// this one there when the server's OS and architecture match
    #[arg(
        long,
        value_name = "PATH|upload",
        default_value = "ferry",
        help_heading = OWN
    )]
    pub remote_ferry: String,

    /// Where `--remote-ferry upload` keeps the helper on the server
    /// (relative paths are under the login directory)
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".cache/ferry",
        help_heading = OWN
    )]
    pub remote_cache: String,

    /// Read this ssh config file instead of ~/.ssh/config
    #[arg(long, value_name = "FILE", help_heading = OWN)]
    pub ssh_config: Option<PathBuf>,

    /// Remote user name, overriding ssh config
    #[arg(long, value_name = "NAME", help_heading = OWN)]
    pub user: Option<String>,

    /// Identity (private key) file, tried before the ones in ssh config
    #[arg(long, value_name = "FILE", help_heading = OWN)]
    pub identity: Option<PathBuf>,

    /// Print this help
    #[arg(long, action = clap::ArgAction::HelpShort, help_heading = HELP)]
    pub help: Option<bool>,

    /// Print the version
    #[arg(short = 'V', long, action = clap::ArgAction::Version, help_heading = HELP)]
    pub version: Option<bool>,

    /// Print the man page (roff) on stdout
    #[arg(long, help_heading = HELP)]
    pub man: bool,

    /// Print a completion script for SHELL on stdout
    #[arg(long, value_name = "SHELL", help_heading = HELP)]
    pub completions: Option<clap_complete::Shell>,

    /// Serve hash requests on stdin/stdout (run by ferry itself over SSH)
    #[arg(long, hide = true)]
    pub server: bool,
}

impl Args {
    /// Parses the process's arguments, keeping the filter options in
    /// command-line order, which derive alone loses.
    pub(crate) fn parse_from_env() -> Result<Args, clap::Error> {
        Self::parse_from_iter(std::env::args_os())
    }

    pub(crate) fn parse_from_iter<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = described(Purpose::Parsing).try_get_matches_from(args)?;
        let mut args = Args::from_arg_matches(&matches)?;
        args.filter_rules = ordered_filters(&matches);
        args.flags = Flags::read(&matches);
        // rsync reads --iconv and --no-iconv in order, the later holding;
        // "-" is its spelling of no conversion.
        let no_iconv = matches.indices_of("no-iconv").and_then(|i| i.max());
        if no_iconv > matches.index_of("iconv") {
            args.iconv = Some("-".into());
        }
        Ok(args)
    }
}

/// Every option ferry takes, the ones with values (above) and the ones
/// without ([`super::toggles`]), as `--help` and the man page show them.
pub(crate) fn command() -> clap::Command {
    described(Purpose::Describing)
}

/// The options, and what `--help` says around them (clap prints `--help`
/// from the parsing command, the man page comes from the describing one).
fn described(purpose: Purpose) -> clap::Command {
    toggles::augment(<Args as CommandFactory>::command(), purpose)
        .override_usage(super::install::usage())
        .after_help(super::install::after_help())
}

fn ordered_filters(matches: &clap::ArgMatches) -> Vec<FilterArg> {
    let kinds = [
        ("exclude", FilterFlag::Exclude),
        ("include", FilterFlag::Include),
        ("exclude_from", FilterFlag::ExcludeFrom),
        ("include_from", FilterFlag::IncludeFrom),
        ("filter", FilterFlag::Filter),
        ("rsync_filter", FilterFlag::RsyncFilter),
        ("from0", FilterFlag::From0),
        ("no_from0", FilterFlag::NoFrom0),
    ];
    let mut found: Vec<(usize, FilterArg)> = Vec::new();
    for (id, flag) in kinds {
        let Some(indices) = matches.indices_of(id) else {
            continue;
        };
        let Some(values) = matches.get_many::<String>(id) else {
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
