//! Resolved settings: the validated meaning of the flags. The rest of the
//! program never sees raw flags (ripgrep's low/high argument split).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::args::{Args, RemoteHashMode};
use super::info::{Implied, Info, Word};
use super::lines::{LineOptions, Side};
use super::progress::{Display, ProgressMode};
use super::toggles::{Counter, Flag, Flags};
use crate::endpoint::remote::Streams;
use crate::engine::backup::Backup;
use crate::engine::basis::{AltDests, AltKind, MOST_DIRS};
use crate::engine::links::{LinkPolicy, Munge, MUNGED};
use crate::engine::owners::{IdMap, Owners};
use crate::engine::select::{Selection, TimeWindow};
use crate::engine::staging::Staging;
use crate::engine::Options;
use crate::error::{Error, Result};
use crate::filter::{FilesFrom, Filter, FilterOptions, ListFormat, ListReader};
use crate::location::{Location, RemoteSpec};
use crate::mode::Chmod;
use crate::ssh::config::Overrides;
use crate::ssh::rsh::{parse_rsh, Rsh};
use crate::ssh::wrapper::Wrapper;

/// Which way the data flows.
#[derive(Debug, Clone)]
pub(crate) enum Direction {
    Local,
    Push(RemoteSpec),
    Pull(RemoteSpec),
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub direction: Direction,
    pub sources: Vec<String>,
    /// Empty when only listing without a destination.
    pub dest: String,
    /// `--list-only`, or a source without a destination (rsync lists
    /// then): the source's entries are printed, nothing is copied.
    pub list_only: bool,
    /// Which items get a line on stdout and in `--log-file`.
    pub lines: LineOptions,
    pub log_file: Option<PathBuf>,
    /// rsync's `--info=stats` level: 1 with `-v`, 2 with `--stats`.
    pub stats_level: u8,
    /// `--info=stats1` given: rsync's two closing lines.
    pub totals: bool,
    /// rsync's number style for `--list-only`: 1 (commas), 2 with `-h`
    /// (units of 1000), 3 with `-hh` (units of 1024).
    pub human_level: usize,
    pub options: Options,
    pub ssh_config: Option<PathBuf>,
    pub overrides: Overrides,
    /// How long the server may be silent while ferry waits on it.
    pub timeout: Duration,
    /// How long connecting may take (`--contimeout`, else `timeout`).
    pub connect_timeout: Duration,
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
    /// `--streams`: how many SFTP sessions carry the data.
    pub streams: Streams,
    pub remote_ferry: String,
    pub remote_cache: String,
    /// `--rsync-path`'s wrapper, through which the remote side is started.
    pub wrapper: Option<Wrapper>,
    /// `--files-from=HOST:FILE` (or `:FILE`): the list is on the remote
    /// host, read once connected; `options.files_from` is None until then.
    pub remote_files_from: Option<RemoteList>,
}

/// A `--files-from` list on the transfer's remote host.
#[derive(Debug, Clone)]
pub(crate) struct RemoteList {
    /// As given: relative paths are from the login directory, as the
    /// remote rsync opens them.
    pub path: String,
    pub format: ListFormat,
}

impl Settings {
    pub(crate) fn resolve(args: Args) -> Result<Settings> {
        if args.paths.is_empty() {
            return Err(Error::Usage(
                "need a source and a destination\n\
                 usage: ferry [OPTIONS] SRC... [USER@]HOST:DEST   (push)\n\
                 \x20      ferry [OPTIONS] [USER@]HOST:SRC... DEST   (pull)\n\
                 \x20      ferry [OPTIONS] SRC... DEST               (local; a source alone is listed)\n\
                 try `ferry demo` for a tour on this machine, `ferry --help` for the options"
                    .into(),
            ));
        }
        let flags = &args.flags;
        // rsync lists a source given without a destination.
        let list_only = flags.on(Flag::ListOnly) || args.paths.len() == 1;
        refuse_unsupported(&args)?;
        let mut locations = args
            .paths
            .iter()
            .map(|p| Location::parse(p).map_err(Error::Usage))
            .collect::<Result<Vec<_>>>()?;
        // With --list-only and two paths or more, the last is still the
        // destination, which rsync then leaves alone.
        let dest = match locations.len() {
            1 => None,
            _ => locations.pop(),
        };
        let direction = match (&dest, list_only) {
            (Some(dest), false) => direction_of(&locations, dest)?,
            _ => direction_of(&locations, &Location::parse(".").map_err(Error::Usage)?)?,
        };
        super::iconv::check_given(args.iconv.as_deref(), &direction)?;
        let wrapper = match &args.rsync_path {
            Some(value) => super::rsync_path::wrapper(value)?,
            None => None,
        };
        if list_only && flags.on(Flag::Json) {
            return Err(Error::Usage(
                "--list-only prints rsync's listing, which has no --json form".into(),
            ));
        }
        let sources: Vec<String> = locations.iter().map(|l| l.path().to_string()).collect();
        let (options, remote_files_from) = engine_options(&args, &direction, sources.len())?;
        let info = info_of(&args)?;
        let bwlimit = match flags.on(Flag::NoBwlimit) {
            true => None,
            false => args
                .bwlimit
                .as_deref()
                .map(|rate| parse_size(rate, 'K', "bwlimit"))
                .transpose()?
                .filter(|r| *r > 0),
        };
        let display = display_of(&args, &info);
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
        let mut ssh_options = rsh.overrides.options;
        // -4/-6 as ssh's own -4/-6: first value wins, so ahead of -e's.
        if flags.on(Flag::Ipv4) {
            ssh_options.insert(0, "AddressFamily=inet".into());
        } else if flags.on(Flag::Ipv6) {
            ssh_options.insert(0, "AddressFamily=inet6".into());
        }
        let timeout = match flags.on(Flag::NoTimeout) || args.timeout == 0 {
            true => DEFAULT_TIMEOUT,
            false => Duration::from_secs(args.timeout),
        };
        let connect_timeout = match (flags.on(Flag::NoContimeout), args.contimeout) {
            (false, Some(secs)) if secs > 0 => Duration::from_secs(secs),
            _ => timeout,
        };
        let lines = line_options(&args, &info, &direction);
        let human = usize::from(flags.count(Counter::HumanReadable));
        Ok(Settings {
            direction,
            sources,
            dest: dest.map(|d| d.path().to_string()).unwrap_or_default(),
            list_only,
            lines,
            log_file: args.log_file.clone(),
            stats_level: info.level(Word::Stats),
            totals: info.given(Word::Stats) == Some(1),
            human_level: (human + 1).min(3),
            options,
            ssh_config: args.ssh_config.or(rsh.config_file),
            overrides: Overrides {
                port,
                user,
                identity: args.identity.or(rsh.overrides.identity),
                proxy_jump: rsh.overrides.proxy_jump,
                options: ssh_options,
                compression: flags.on(Flag::Compress) || rsh.overrides.compression,
            },
            timeout,
            connect_timeout,
            retry: RetryPolicy::new(args.retries, args.retry_wait)?,
            verbosity: flags.count(Counter::Verbose),
            quiet: flags.on(Flag::Quiet),
            display,
            json: flags.on(Flag::Json),
            stats: info.level(Word::Stats) >= 2,
            human_readable: flags.count(Counter::HumanReadable) > 0,
            bwlimit,
            remote_hash: args.remote_hash,
            streams: match args.streams {
                0 => Streams::Auto,
                n => Streams::Fixed(usize::from(n)),
            },
            remote_ferry: args.remote_ferry,
            remote_cache: args.remote_cache,
            remote_files_from,
            wrapper,
        })
    }
}

/// How long ferry waits on a silent server when `--timeout` says nothing
/// (rsync's `--timeout=0` means no limit; ferry keeps a bound so that a
/// dead link is noticed and the run reconnects).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The engine's options from the flags (rsync's meanings). The filter
/// options' files (and a local `--files-from`) are read now, so that a
/// missing one stops the run before anything connects; a remote list is
/// returned to be read once connected.
fn engine_options(
    args: &Args,
    direction: &Direction,
    sources: usize,
) -> Result<(Options, Option<RemoteList>)> {
    let flags = &args.flags;
    let mut lists = ListReader::default();
    let delete = flags.on(Flag::Delete) || flags.on(Flag::DeleteExcluded);
    let append = flags.on(Flag::Append) || flags.on(Flag::AppendVerify);
    let inplace = flags.on(Flag::Inplace) || append;
    let backup = Backup::from_options(
        flags.on(Flag::Backup),
        args.backup_dir.as_deref(),
        args.suffix.as_deref(),
    )
    .map_err(Error::Usage)?;
    let staging = staging_of(args, inplace, append)?;
    let filter_options = FilterOptions {
        delete_excluded: flags.on(Flag::DeleteExcluded),
        cvs_exclude: flags.on(Flag::CvsExclude),
        cvs_env: None,
        implied: implied_rules(
            backup.as_ref(),
            &staging,
            delete && !flags.on(Flag::DeleteExcluded),
        ),
    };
    let filter = Filter::with_options(&args.filter_rules, &filter_options, &mut lists)?;
    let (files_from, remote_files_from) = match &args.files_from {
        Some(name) if sources == 1 => files_from(name, direction, &mut lists)?,
        Some(_) => {
            return Err(Error::Usage(
                "--files-from takes one source directory (the listed paths are relative \
                 to it) and a destination"
                    .into(),
            ))
        }
        None => (None, None),
    };
    if args.max_delete.is_some() && !delete {
        return Err(Error::Usage("--max-delete goes with --delete".into()));
    }
    // rsync: -a does not imply -r with --files-from; an explicit -r does.
    let recursive = match files_from.is_some() {
        true => flags.count(Counter::Recursion) == 2,
        false => flags.count(Counter::Recursion) > 0,
    };
    let alt_dests = alt_dests(args)?;
    let options = Options {
        alt_dests,
        recursive,
        dirs: flags.on(Flag::Dirs),
        mkpath: flags.on(Flag::Mkpath),
        // --files-from implies -R in rsync; it has its own planning here.
        relative: flags.on(Flag::Relative),
        implied_dirs: flags.get(Flag::ImpliedDirs) != Some(false),
        prune_empty_dirs: flags.on(Flag::PruneEmptyDirs),
        one_file_system: flags.count(Counter::OneFileSystem),
        links: flags.on(Flag::Links),
        links_policy: links_policy(flags, direction)?,
        keep_dirlinks: flags.on(Flag::KeepDirlinks),
        hard_links: flags.on(Flag::HardLinks),
        devices: flags.on(Flag::Devices),
        specials: flags.on(Flag::Specials),
        // rsync: -A implies -p.
        perms: flags.on(Flag::Perms) || flags.on(Flag::Acls),
        xattrs: crate::meta::XattrScope {
            xattrs: flags.on(Flag::Xattrs),
            acls: flags.on(Flag::Acls),
            all_namespaces: false,
        },
        xattrs_found: Default::default(),
        sparse: flags.on(Flag::Sparse),
        executability: flags.on(Flag::Executability),
        chmod: chmod_rules(&args.chmod)?,
        times: flags.on(Flag::Times),
        owners: owners_of(args)?,
        // rsync: backups beside their files imply -O.
        omit_dir_times: flags.on(Flag::OmitDirTimes)
            || backup.as_ref().is_some_and(Backup::omits_dir_times),
        omit_link_times: flags.on(Flag::OmitLinkTimes),
        dry_run: flags.on(Flag::DryRun),
        checksum: flags.on(Flag::Checksum),
        select: Selection {
            existing_only: flags.on(Flag::Existing),
            ignore_existing: flags.on(Flag::IgnoreExisting),
            max_size: args
                .max_size
                .as_deref()
                .map(|s| parse_size(s, 'b', "max-size"))
                .transpose()?,
            min_size: args
                .min_size
                .as_deref()
                .map(|s| parse_size(s, 'b', "min-size"))
                .transpose()?,
            update: flags.on(Flag::Update),
            size_only: flags.on(Flag::SizeOnly),
            ignore_times: flags.on(Flag::IgnoreTimes),
            window: args
                .modify_window
                .map_or(TimeWindow::Best, TimeWindow::from_rsync),
        },
        // rsync's rule: between two local paths reading both files to
        // find the differences costs more than writing the new one.
        delta: match flags.get(Flag::WholeFile) {
            Some(whole) => !whole,
            None => !matches!(direction, Direction::Local),
        },
        // rsync: --append implies --inplace.
        inplace,
        append,
        fsync: flags.on(Flag::Fsync),
        jobs: usize::from(args.jobs),
        // rsync: --delete-excluded implies --delete.
        delete,
        force: flags.on(Flag::Force),
        remove_source_files: flags.on(Flag::RemoveSourceFiles),
        moved: flags.on(Flag::RemoveSourceFiles).then(Default::default),
        max_delete: args.max_delete,
        filter: Arc::new(filter),
        files_from,
        backup,
        staging,
    };
    Ok((options, remote_files_from))
}

/// `--files-from=NAME`: a local list read now, or one on the transfer's
/// remote host (`HOST:FILE`, `:FILE`) to read once connected. rsync's
/// sender skips a list's comments only where it reads the list itself:
/// one that crosses the connection to it is read as forwarded.
fn files_from(
    name: &str,
    direction: &Direction,
    lists: &mut ListReader,
) -> Result<(Option<Arc<FilesFrom>>, Option<RemoteList>)> {
    let pulling = matches!(direction, Direction::Pull(_));
    let Some(path) = remote_list_path(name, direction)? else {
        let list = FilesFrom::read(name, lists, pulling)?;
        return Ok((Some(Arc::new(list)), None));
    };
    let format = ListFormat {
        from0: lists.from0(),
        forwarded: !pulling,
    };
    Ok((None, Some(RemoteList { path, format })))
}

/// The path of a `--files-from` list on the remote host, or None for a
/// local one; rsync's checks and messages for a host that is not the
/// transfer's.
fn remote_list_path(name: &str, direction: &Direction) -> Result<Option<String>> {
    let (host, path) = match name.strip_prefix(':') {
        Some(path) => (None, path.to_string()),
        None => match Location::parse(name).map_err(Error::Usage)? {
            Location::Remote(spec) => (Some(spec.clone()), spec.path),
            Location::Local(_) => return Ok(None),
        },
    };
    let transfer = match direction {
        Direction::Push(spec) | Direction::Pull(spec) => spec,
        Direction::Local => {
            return Err(Error::Usage(
                "--files-from cannot be remote when the transfer is local".into(),
            ))
        }
    };
    if host.is_some_and(|h| h.host != transfer.host || h.user != transfer.user) {
        return Err(Error::Usage(
            "--files-from hostname is not the same as the transfer hostname".into(),
        ));
    }
    if path == "-" || path.starts_with(':') {
        // `HOST:-` (rsync), or `HOST::FILE`, an rsync daemon's form.
        return Err(Error::Usage("Invalid --files-from remote filename".into()));
    }
    Ok(Some(path))
}

/// `--partial-dir`, `-T`, `--delay-updates` as rsync reads them; with
/// `--inplace` (or `--append`) there is no partial, and rsync refuses a
/// partial directory (`--delay-updates` has one) beside it.
fn staging_of(args: &Args, inplace: bool, append: bool) -> Result<Staging> {
    let flags = &args.flags;
    let delay = flags.on(Flag::DelayUpdates);
    // rsync reads RSYNC_PARTIAL_DIR for --partial (-P) without a directory.
    let from_env = match flags.on(Flag::Partial) && args.partial_dir.is_none() {
        true => std::env::var("RSYNC_PARTIAL_DIR")
            .ok()
            .filter(|d| !d.is_empty()),
        false => None,
    };
    let given = args.partial_dir.is_some();
    if inplace && (given || delay) {
        return Err(Error::Usage(format!(
            "--{} cannot be used with --{}",
            if append { "append" } else { "inplace" },
            if delay {
                "delay-updates"
            } else {
                "partial-dir"
            }
        )));
    }
    let from_env = from_env.filter(|_| !inplace);
    Ok(Staging::from_options(
        args.partial_dir.as_deref(),
        args.temp_dir.as_deref(),
        delay,
        from_env,
    ))
}

/// The rules rsync adds of its own: with `--delete` (not
/// `--delete-excluded`), `P *SUFFIX` for backups beside their files; a
/// relative partial directory's exclude.
fn implied_rules(backup: Option<&Backup>, staging: &Staging, protects: bool) -> Vec<String> {
    let protect = backup.and_then(Backup::protect_rule).filter(|_| protects);
    protect.into_iter().chain(staging.exclude_rule()).collect()
}

/// The symlink options, `--munge-links` on ferry's side as rsync's client
/// applies it (received links munged, sent ones unmunged, a local copy
/// untouched); refused, as rsync refuses it, where a `/rsyncd-munged`
/// directory would make munged links lead somewhere.
fn links_policy(flags: &Flags, direction: &Direction) -> Result<LinkPolicy> {
    let munge = match (flags.on(Flag::MungeLinks), direction) {
        (false, _) | (true, Direction::Local) => Munge::Off,
        (true, Direction::Pull(_)) => Munge::Add,
        (true, Direction::Push(_)) => Munge::Strip,
    };
    let prefix = MUNGED.trim_end_matches('/');
    if flags.on(Flag::MungeLinks) && std::path::Path::new(prefix).is_dir() {
        return Err(Error::Unsupported(format!(
            "--munge-links: symlink munging is unsafe when a {prefix} directory exists"
        )));
    }
    Ok(LinkPolicy {
        copy_links: flags.on(Flag::CopyLinks),
        copy_dirlinks: flags.on(Flag::CopyDirlinks),
        copy_unsafe_links: flags.on(Flag::CopyUnsafeLinks),
        safe_links: flags.on(Flag::SafeLinks),
        munge,
    })
}

/// `-o`, `-g`, `--numeric-ids` and the maps; as in rsync a user map
/// (`--usermap`, `--chown=USER:`) implies `-o`, a group map `-g`, and
/// `--chown` does not mix with the map it stands for.
fn owners_of(args: &Args) -> Result<Owners> {
    let flags = &args.flags;
    let (chown_user, chown_group) = args.chown.as_deref().map(IdMap::chown).unwrap_or_default();
    let map = |given: &Option<String>, chown: Option<IdMap>, what: &str| -> Result<_> {
        match (given, chown) {
            (Some(_), Some(_)) => Err(Error::Usage(format!("--chown conflicts with --{what}."))),
            (Some(text), None) => Ok(Some(Arc::new(
                IdMap::parse(text, what).map_err(Error::Usage)?,
            ))),
            (None, chown) => Ok(chown.map(Arc::new)),
        }
    };
    let usermap = map(&args.usermap, chown_user, "usermap")?;
    let groupmap = map(&args.groupmap, chown_group, "groupmap")?;
    let owners = Owners::new(
        flags.on(Flag::Owner) || usermap.is_some(),
        flags.on(Flag::Group) || groupmap.is_some(),
        flags.on(Flag::NumericIds),
    );
    Ok(owners.with_maps(usermap, groupmap))
}

/// `--link-dest`, `--copy-dest`, `--compare-dest`: one of them, given up
/// to 20 times, as rsync takes them.
fn alt_dests(args: &Args) -> Result<Option<Arc<AltDests>>> {
    let given: Vec<(AltKind, &Vec<String>)> = [
        (AltKind::Link, &args.link_dest),
        (AltKind::Copy, &args.copy_dest),
        (AltKind::Compare, &args.compare_dest),
    ]
    .into_iter()
    .filter(|(_, dirs)| !dirs.is_empty())
    .collect();
    let (kind, dirs) = match given.as_slice() {
        [] => return Ok(None),
        [(kind, dirs)] => (*kind, *dirs),
        [(a, _), (b, _), ..] => {
            return Err(Error::Usage(format!(
                "the {} option conflicts with the {} option",
                b.option(),
                a.option()
            )))
        }
    };
    if dirs.len() > MOST_DIRS {
        return Err(Error::Usage(format!(
            "at most {MOST_DIRS} {} args may be specified",
            kind.option()
        )));
    }
    if let Some(empty) = dirs.iter().find(|d| d.is_empty()) {
        return Err(Error::Usage(format!(
            "{} needs a directory, not {empty:?}",
            kind.option()
        )));
    }
    let dirs = dirs.iter().map(|d| trim_slash(d)).collect();
    Ok(Some(Arc::new(AltDests { kind, dirs })))
}

/// A directory without its trailing slashes (`/` stays).
fn trim_slash(dir: &str) -> String {
    match dir.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// The `--chmod` options' rules, in order; None without any.
fn chmod_rules(values: &[String]) -> Result<Option<Arc<Chmod>>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut rules = Chmod::default();
    for value in values {
        rules.add(value).map_err(Error::Usage)?;
    }
    Ok(Some(Arc::new(rules)))
}

/// Options ferry parses but does not carry out yet: refused by name
/// before anything connects, never silently dropped.
fn refuse_unsupported(args: &Args) -> Result<()> {
    let f = &args.flags;
    // rsync refuses the pair, whatever the paths (main.c).
    if f.on(Flag::SecludedArgs) && f.on(Flag::OldArgs) {
        return Err(Error::Usage(
            "--secluded-args conflicts with --old-args.".into(),
        ));
    }
    // As rsync built for Linux: it has no creation times to set.
    if f.on(Flag::Crtimes) {
        return Err(Error::Usage(
            "This ferry does not support --crtimes (-N): Linux cannot set a file's \
             creation time"
                .into(),
        ));
    }
    // Refused rather than dropped: a copy without them is not the one asked for.
    let unsupported = [
        (Flag::Atimes, "-U (--atimes)"),
        (Flag::OpenNoatime, "--open-noatime"),
        (Flag::Super, "--super"),
        (Flag::FakeSuper, "--fake-super"),
    ];
    if let Some((_, option)) = unsupported.iter().find(|(flag, _)| f.on(*flag)) {
        return Err(Error::Usage(format!(
            "{option} is not supported yet: leave the option out, or use rsync for this \
             copy (docs/RSYNC.md lists what ferry does)"
        )));
    }
    Ok(())
}

/// rsync's `--info` levels: what `-v`, `--stats` and `--progress` imply,
/// with the words given on top.
fn info_of(args: &Args) -> Result<Info> {
    let flags = &args.flags;
    let implied = Implied {
        verbosity: flags.count(Counter::Verbose),
        stats: flags.on(Flag::Stats),
        progress: flags.on(Flag::Progress),
        has_format: args.out_format.is_some() || flags.count(Counter::Itemize) > 0,
    };
    Info::resolve(implied, &args.info)
}

/// Which items get lines: the formats and rsync's levels.
fn line_options(args: &Args, info: &Info, direction: &Direction) -> LineOptions {
    let flags = &args.flags;
    let itemize = flags.count(Counter::Itemize);
    // ferry names what a dry run would do even without -v (rsync prints
    // nothing then): a dry run that shows nothing tells nothing. An
    // explicit --info=name0 or del0 still silences it.
    let dry_names = flags.on(Flag::DryRun) && args.out_format.is_none() && itemize == 0;
    let level = |word: Word| match info.given(word) {
        None if dry_names => info.level(word).max(1),
        _ => info.level(word),
    };
    LineOptions {
        out_format: args.out_format.clone(),
        logging: args.log_file.is_some(),
        log_format: args.log_file_format.clone(),
        itemize,
        name: level(Word::Name),
        del: level(Word::Del),
        quiet: flags.on(Flag::Quiet),
        dry_run: flags.on(Flag::DryRun),
        side: match direction {
            Direction::Local => Side::Local,
            Direction::Push(_) => Side::Push,
            Direction::Pull(_) => Side::Pull,
        },
        owner: flags.on(Flag::Owner),
        group: flags.on(Flag::Group),
    }
}

/// What the console shows: bars on a terminal (one overall and one per
/// large file, or the overall line alone with `--info=progress2`); off a
/// terminal only with `--progress`, as a line on stderr.
fn display_of(args: &Args, info: &Info) -> Display {
    let flags = &args.flags;
    let on_terminal = std::io::stdout().is_terminal();
    let asked = flags.on(Flag::Progress);
    let quiet = flags.on(Flag::Quiet);
    let progress = match info.given(Word::Progress) {
        _ if quiet || flags.on(Flag::Json) => ProgressMode::Off,
        Some(0) => ProgressMode::Off,
        Some(level) if level >= 2 => ProgressMode::Overall,
        _ if on_terminal => ProgressMode::PerFile,
        _ if asked => ProgressMode::Overall,
        _ => ProgressMode::Off,
    };
    Display {
        progress,
        verbose: flags.count(Counter::Verbose) > 0 && !quiet,
        info: !quiet,
        nonreg: !quiet && info.level(Word::NonReg) > 0,
        skip: !quiet && info.level(Word::Skip) > 0,
        backup: !quiet && info.level(Word::Backup) > 0,
    }
}

/// rsync's SIZE arguments (`--max-size`, `--bwlimit`): a number, possibly
/// with a fraction, then a unit (`def_suffix` when none: `b` bytes, `K`
/// KiB...): K, M, G, T, P are powers of 1024, or of 1000 with a `B` after
/// them (`KB`), `KiB` too; a final `+1` or `-1` adds or takes a byte.
fn parse_size(arg: &str, def_suffix: char, option: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "--{option}={arg} is invalid: give a size such as 500, 1.5M, 10k or 2GB"
        ))
    };
    let number_end = arg
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(arg.len(), |(i, _)| i);
    let (number, mut rest) = arg.split_at(number_end);
    let suffix = match rest.chars().next() {
        Some(c) if c != '+' && c != '-' => {
            rest = &rest[1..];
            c
        }
        _ => def_suffix,
    };
    let reps = match suffix.to_ascii_lowercase() {
        'b' => 0,
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        _ => return Err(bad()),
    };
    let mult: f64 = if let Some(after) = rest.strip_prefix(['b', 'B']) {
        rest = after;
        1000.0
    } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("ib") {
        rest = &rest[2..];
        1024.0
    } else {
        1024.0
    };
    let offset: i64 = match rest {
        "" => 0,
        "+1" => 1,
        "-1" => -1,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let size = value * mult.powi(reps);
    if !size.is_finite() || size >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok((size as u64).saturating_add_signed(offset))
}

/// How a run lost to the network is taken up again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
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
    pub(crate) fn wait(&self, fruitless: u32) -> Duration {
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
    use super::parse_size;

    #[test]
    fn bwlimit_rates_read_as_rsync_reads_them() {
        let rate = |s: &str| parse_size(s, 'K', "bwlimit").ok();
        assert_eq!(rate("500"), Some(500 * 1024));
        assert_eq!(rate("1.5M"), Some(1536 * 1024));
        assert_eq!(rate("10m"), Some(10 << 20));
        assert_eq!(rate("2KiB"), Some(2048));
        assert_eq!(rate("1g"), Some(1 << 30));
        assert_eq!(rate("0"), Some(0));
        assert!(rate("fast").is_none());
        assert!(rate("-5").is_none());
        assert!(rate("5x").is_none());
    }

    #[test]
    fn sizes_read_as_rsync_reads_them() {
        // Checked against rsync 3.5.0's parse_size_arg (options.c).
        let size = |s: &str| parse_size(s, 'b', "max-size").ok();
        assert_eq!(size("100"), Some(100));
        assert_eq!(size("1k"), Some(1024));
        assert_eq!(size("1KB"), Some(1000));
        assert_eq!(size("1KiB"), Some(1024));
        assert_eq!(size("1.5m"), Some(1_572_864));
        assert_eq!(size("2GB"), Some(2_000_000_000));
        assert_eq!(size("1k+1"), Some(1025));
        assert_eq!(size("1k-1"), Some(1023));
        assert_eq!(size("10+1"), Some(11));
        assert!(size("1x").is_none());
        assert!(size("1k2").is_none());
        assert!(size("").is_none());
    }
}
