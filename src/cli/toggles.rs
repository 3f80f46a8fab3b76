//! rsync's options without a value (`-r`, `--perms`, `-v`) and their
//! negations (`--no-perms`, `--no-p`), read in command-line order as rsync
//! reads them: a later option overrides an earlier one, and `-a` sets its
//! parts where it stands (`-a --no-t` keeps no times, `--no-t -a` does).
//!
//! The table below is the one place these options are defined: clap's
//! arguments (and so `--help`, the man page and completions) are made from
//! it, and [`Flags::read`] replays the occurrences clap saw, in order.

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// An on/off setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Flag {
    Dirs,
    Links,
    CopyLinks,
    CopyUnsafeLinks,
    SafeLinks,
    MungeLinks,
    CopyDirlinks,
    KeepDirlinks,
    HardLinks,
    Perms,
    Executability,
    Acls,
    Xattrs,
    Atimes,
    OpenNoatime,
    Crtimes,
    Super,
    FakeSuper,
    Times,
    OmitDirTimes,
    OmitLinkTimes,
    Owner,
    Group,
    Devices,
    Specials,
    NumericIds,
    Relative,
    ImpliedDirs,
    Mkpath,
    Checksum,
    Update,
    Existing,
    IgnoreExisting,
    SizeOnly,
    IgnoreTimes,
    WholeFile,
    PruneEmptyDirs,
    CvsExclude,
    Inplace,
    Sparse,
    Append,
    AppendVerify,
    Partial,
    DelayUpdates,
    Backup,
    Fsync,
    Delete,
    DeleteExcluded,
    Force,
    RemoveSourceFiles,
    Progress,
    Stats,
    Quiet,
    DryRun,
    ListOnly,
    EightBitOutput,
    Compress,
    Ipv4,
    Ipv6,
    OldArgs,
    SecludedArgs,
    Json,
    NoBwlimit,
    NoTimeout,
    NoContimeout,
    NoIconv,
}

/// A setting counted by repetition (`-vv`, `-ii`, `-xx`, `-hh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Counter {
    /// rsync's `recurse`: 2 by `-r`, 1 by `-a` when not given before (with
    /// `--files-from`, only an explicit `-r` recurses).
    Recursion,
    Verbose,
    Itemize,
    OneFileSystem,
    HumanReadable,
}

/// What one occurrence of an option does.
#[derive(Debug, Clone, Copy)]
enum Effect {
    On(Flag),
    Off(Flag),
    Count(Counter),
    Zero(Counter),
    /// Sets the counter to this value.
    Level(Counter, u8),
    /// Sets it only when it is 0.
    Default(Counter, u8),
}

use Effect::{Count, Default, Level, Off, On, Zero};

/// One option as the command line spells it.
struct Toggle {
    long: &'static str,
    short: Option<char>,
    /// Other long names for the same thing.
    aliases: &'static [&'static str],
    /// Empty for the negations and the odd spellings, which `--help`
    /// leaves out (rsync's help lists `--no-OPTION` once).
    help: &'static str,
    heading: &'static str,
    effects: &'static [Effect],
}

// `--help`'s groups, as rsync's man page orders its options. clap shows a
// heading where an option first names it, so `Args` lists its fields in
// this order too.
pub(crate) const COPYING: &str = "What is copied";
pub(crate) const SELECTING: &str = "Deciding what to send";
pub(crate) const FILTERS: &str = "Filters";
pub(crate) const DELETING: &str = "Deleting";
pub(crate) const WRITING: &str = "Writing files";
pub(crate) const OUTPUT: &str = "Output";
pub(crate) const CONNECTION: &str = "Connection";
/// Options rsync does not have.
pub(crate) const OWN: &str = "ferry's own (not in rsync)";
pub(crate) const HELP: &str = "Help and installation";

const fn t(
    long: &'static str,
    short: Option<char>,
    help: &'static str,
    heading: &'static str,
    effects: &'static [Effect],
) -> Toggle {
    Toggle {
        long,
        short,
        aliases: &[],
        help,
        heading,
        effects,
    }
}

/// A negation: `--no-NAME` and its other spellings, not shown in --help.
const fn no(
    long: &'static str,
    aliases: &'static [&'static str],
    effects: &'static [Effect],
) -> Toggle {
    Toggle {
        long,
        short: None,
        aliases,
        help: "",
        heading: COPYING,
        effects,
    }
}

/// rsync's `-a`: `-rlptgoD`.
const ARCHIVE: &[Effect] = &[
    Default(Counter::Recursion, 1),
    On(Flag::Links),
    On(Flag::Perms),
    On(Flag::Times),
    On(Flag::Devices),
    On(Flag::Specials),
    On(Flag::Group),
    On(Flag::Owner),
];

#[rustfmt::skip]
const TOGGLES: &[Toggle] = &[
    t("archive", Some('a'), "Archive mode: -rlptgoD (recursive, symlinks as symlinks, permissions, times, group, owner, devices and specials)", COPYING, ARCHIVE),
    t("recursive", Some('r'), "Recurse into directories", COPYING, &[Level(Counter::Recursion, 2)]),
    no("no-recursive", &["no-r"], &[Zero(Counter::Recursion)]),
    t("dirs", Some('d'), "Copy directories without recursing (their contents are not copied)", COPYING, &[On(Flag::Dirs)]),
    no("no-dirs", &["no-d"], &[Off(Flag::Dirs)]),
    t("links", Some('l'), "Copy symlinks as symlinks", COPYING, &[On(Flag::Links)]),
    no("no-links", &["no-l"], &[Off(Flag::Links)]),
    t("copy-links", Some('L'), "Copy what symlinks point to instead of the links", COPYING, &[On(Flag::CopyLinks)]),
    t("copy-unsafe-links", None, "Copy what symlinks that point out of the tree point to", COPYING, &[On(Flag::CopyUnsafeLinks)]),
    t("safe-links", None, "Leave out symlinks that point out of the tree", COPYING, &[On(Flag::SafeLinks)]),
    t("munge-links", None, "Make copied symlinks point nowhere (/rsyncd-munged/ in front)", COPYING, &[On(Flag::MungeLinks)]),
    no("no-munge-links", &[], &[Off(Flag::MungeLinks)]),
    t("copy-dirlinks", Some('k'), "Copy what symlinks to directories point to", COPYING, &[On(Flag::CopyDirlinks)]),
    t("keep-dirlinks", Some('K'), "Treat a symlink to a directory in the destination as that directory", COPYING, &[On(Flag::KeepDirlinks)]),
    t("hard-links", Some('H'), "Keep hard links: names of one file in the source are names of one file in the destination", COPYING, &[On(Flag::HardLinks)]),
    no("no-hard-links", &["no-H"], &[Off(Flag::HardLinks)]),
    t("perms", Some('p'), "Preserve permissions", COPYING, &[On(Flag::Perms)]),
    no("no-perms", &["no-p"], &[Off(Flag::Perms)]),
    t("executability", Some('E'), "Preserve executability (without --perms)", COPYING, &[On(Flag::Executability)]),
    t("acls", Some('A'), "Preserve ACLs (implies --perms; a server needs the helper)", COPYING, &[On(Flag::Acls)]),
    no("no-acls", &["no-A"], &[Off(Flag::Acls)]),
    t("xattrs", Some('X'), "Preserve extended attributes (a server needs the helper)", COPYING, &[On(Flag::Xattrs)]),
    no("no-xattrs", &["no-X"], &[Off(Flag::Xattrs)]),
    t("atimes", Some('U'), "Preserve access times (not supported yet: refused, never dropped)", COPYING, &[On(Flag::Atimes)]),
    no("no-atimes", &["no-U"], &[Off(Flag::Atimes)]),
    t("open-noatime", None, "Open files without changing their access times (not supported yet: refused)", COPYING, &[On(Flag::OpenNoatime)]),
    no("no-open-noatime", &[], &[Off(Flag::OpenNoatime)]),
    t("crtimes", Some('N'), "Preserve creation times (refused: Linux cannot set them)", COPYING, &[On(Flag::Crtimes)]),
    no("no-crtimes", &["no-N"], &[Off(Flag::Crtimes)]),
    t("super", None, "Receiver attempts super-user activities (not supported yet: refused)", COPYING, &[On(Flag::Super)]),
    no("no-super", &[], &[Off(Flag::Super)]),
    t("fake-super", None, "Store privileged attributes in xattrs (not supported yet: refused)", COPYING, &[On(Flag::FakeSuper)]),
    t("times", Some('t'), "Preserve modification times", COPYING, &[On(Flag::Times)]),
    no("no-times", &["no-t"], &[Off(Flag::Times)]),
    t("omit-dir-times", Some('O'), "Leave directories' times out of --times", COPYING, &[On(Flag::OmitDirTimes)]),
    no("no-omit-dir-times", &["no-O"], &[Off(Flag::OmitDirTimes)]),
    t("omit-link-times", Some('J'), "Leave symlinks' times out of --times", COPYING, &[On(Flag::OmitLinkTimes)]),
    no("no-omit-link-times", &["no-J"], &[Off(Flag::OmitLinkTimes)]),
    t("owner", Some('o'), "Preserve owners (where the receiving side runs as root)", COPYING, &[On(Flag::Owner)]),
    no("no-owner", &["no-o"], &[Off(Flag::Owner)]),
    t("group", Some('g'), "Preserve groups (as root, or the receiving user's own groups)", COPYING, &[On(Flag::Group)]),
    no("no-group", &["no-g"], &[Off(Flag::Group)]),
    t("devices", None, "Copy device nodes (where the receiving side runs as root)", COPYING, &[On(Flag::Devices)]),
    no("no-devices", &[], &[Off(Flag::Devices)]),
    t("specials", None, "Copy fifos and sockets", COPYING, &[On(Flag::Specials)]),
    no("no-specials", &[], &[Off(Flag::Specials)]),
    t("D", Some('D'), "Same as --devices --specials", COPYING, &[On(Flag::Devices), On(Flag::Specials)]),
    no("no-D", &[], &[Off(Flag::Devices), Off(Flag::Specials)]),
    t("numeric-ids", None, "Keep owners and groups by number, not by name", COPYING, &[On(Flag::NumericIds)]),
    no("no-numeric-ids", &[], &[Off(Flag::NumericIds)]),
    t("relative", Some('R'), "Use the source paths as given under the destination (/./ marks where they start)", COPYING, &[On(Flag::Relative)]),
    no("no-relative", &["no-R"], &[Off(Flag::Relative)]),
    no("no-implied-dirs", &["no-i-d"], &[Off(Flag::ImpliedDirs)]),
    Toggle { aliases: &["i-d"], ..t("implied-dirs", None, "", COPYING, &[On(Flag::ImpliedDirs)]) },
    t("mkpath", None, "Create the destination's missing parent directories", COPYING, &[On(Flag::Mkpath)]),
    no("no-mkpath", &[], &[Off(Flag::Mkpath)]),
    t("one-file-system", Some('x'), "Don't cross file system boundaries (-xx: nor create the mount points)", COPYING, &[Count(Counter::OneFileSystem)]),
    no("no-one-file-system", &["no-x"], &[Zero(Counter::OneFileSystem)]),
    t("checksum", Some('c'), "Compare file contents instead of size and modification time", SELECTING, &[On(Flag::Checksum)]),
    no("no-checksum", &["no-c"], &[Off(Flag::Checksum)]),
    t("update", Some('u'), "Skip files that are newer in the destination", SELECTING, &[On(Flag::Update)]),
    t("existing", None, "Update only what the destination already has (nothing new is created)", SELECTING, &[On(Flag::Existing)]),
    t("ignore-non-existing", None, "", SELECTING, &[On(Flag::Existing)]),
    t("ignore-existing", None, "Create only what the destination does not have", SELECTING, &[On(Flag::IgnoreExisting)]),
    t("size-only", None, "Skip files whose size matches (times are not compared)", SELECTING, &[On(Flag::SizeOnly)]),
    t("ignore-times", Some('I'), "Send files whose size and time match too", SELECTING, &[On(Flag::IgnoreTimes)]),
    t("whole-file", Some('W'), "Copy changed files whole instead of sending only changed blocks (the default when both ends are local)", SELECTING, &[On(Flag::WholeFile)]),
    no("no-whole-file", &["no-W"], &[Off(Flag::WholeFile)]),
    t("prune-empty-dirs", Some('m'), "Leave out directories that would end up empty", SELECTING, &[On(Flag::PruneEmptyDirs)]),
    no("no-prune-empty-dirs", &["no-m"], &[Off(Flag::PruneEmptyDirs)]),
    t("cvs-exclude", Some('C'), "Leave out files as CVS would (rsync's list, ~/.cvsignore, $CVSIGNORE, .cvsignore files)", SELECTING, &[On(Flag::CvsExclude)]),
    t("delete", None, "Delete destination files that are not in the source (after the transfers, and only when nothing failed)", DELETING, &[On(Flag::Delete)]),
    t("del", None, "", DELETING, &[On(Flag::Delete)]),
    t("delete-before", None, "", DELETING, &[On(Flag::Delete)]),
    t("delete-during", None, "", DELETING, &[On(Flag::Delete)]),
    t("delete-delay", None, "", DELETING, &[On(Flag::Delete)]),
    t("delete-after", None, "", DELETING, &[On(Flag::Delete)]),
    t("delete-excluded", None, "With --delete: also delete excluded files from the destination", DELETING, &[On(Flag::DeleteExcluded)]),
    t("force", None, "Remove a non-empty directory in the way of a file (as --delete does)", DELETING, &[On(Flag::Force)]),
    no("no-force", &[], &[Off(Flag::Force)]),
    t("remove-source-files", None, "Remove each source file once its copy is verified in place", DELETING, &[On(Flag::RemoveSourceFiles)]),
    t("remove-sent-files", None, "", DELETING, &[On(Flag::RemoveSourceFiles)]),
    t("inplace", None, "Update destination files in place (no partial: a cut run leaves a half-updated file, which the next run repairs)", WRITING, &[On(Flag::Inplace)]),
    t("sparse", Some('S'), "Turn runs of zeros into holes in files written anew", WRITING, &[On(Flag::Sparse)]),
    no("no-sparse", &["no-S"], &[Off(Flag::Sparse)]),
    no("no-inplace", &[], &[Off(Flag::Inplace)]),
    t("append", None, "Continue files that are shorter in the destination, after verifying what is there", WRITING, &[On(Flag::Append)]),
    no("no-append", &[], &[Off(Flag::Append), Off(Flag::AppendVerify)]),
    t("append-verify", None, "Same as --append (ferry always verifies)", WRITING, &[On(Flag::AppendVerify)]),
    t("partial", None, "Keep partially transferred files (always on: ferry resumes from them)", WRITING, &[On(Flag::Partial)]),
    no("no-partial", &[], &[Off(Flag::Partial)]),
    t("delay-updates", None, "Put all updated files into place at the end", WRITING, &[On(Flag::DelayUpdates)]),
    no("no-delay-updates", &[], &[Off(Flag::DelayUpdates)]),
    t("backup", Some('b'), "Keep the old version of each replaced or deleted file (NAME~, or under --backup-dir)", WRITING, &[On(Flag::Backup)]),
    no("no-backup", &[], &[Off(Flag::Backup)]),
    t("fsync", None, "Sync every file to disk before it is renamed into place (files that replace an existing one always are)", WRITING, &[On(Flag::Fsync)]),
    t("verbose", Some('v'), "More output: file names, then debug logs (-vv, -vvv)", OUTPUT, &[Count(Counter::Verbose)]),
    no("no-verbose", &["no-v"], &[Zero(Counter::Verbose)]),
    t("quiet", Some('q'), "Print only errors", OUTPUT, &[On(Flag::Quiet)]),
    t("itemize-changes", Some('i'), "A change summary for each updated file (rsync's YXcstpoguax; -ii: unchanged files too)", OUTPUT, &[Count(Counter::Itemize)]),
    no("no-itemize-changes", &["no-i"], &[Zero(Counter::Itemize)]),
    t("stats", None, "Print rsync's file-transfer statistics at the end", OUTPUT, &[On(Flag::Stats)]),
    t("human-readable", Some('h'), "Numbers in a human-readable form (K, M, G); alone, -h prints the help", OUTPUT, &[Count(Counter::HumanReadable)]),
    no("no-human-readable", &["no-h"], &[Zero(Counter::HumanReadable)]),
    t("progress", None, "Show progress during the transfer", OUTPUT, &[On(Flag::Progress)]),
    no("no-progress", &[], &[Off(Flag::Progress)]),
    t("P", Some('P'), "Same as --partial --progress", OUTPUT, &[On(Flag::Partial), On(Flag::Progress)]),
    t("dry-run", Some('n'), "Show what would be transferred, change nothing", OUTPUT, &[On(Flag::DryRun)]),
    t("list-only", None, "List the source files instead of copying them", OUTPUT, &[On(Flag::ListOnly)]),
    t("8-bit-output", Some('8'), "Names are printed as they are (control characters escaped): always", OUTPUT, &[On(Flag::EightBitOutput)]),
    no("no-8-bit-output", &["no-8"], &[Off(Flag::EightBitOutput)]),
    t("json", None, "One JSON object per line on stdout for each file action, then a summary with totals and the exit code (schema: docs/JSON.md)", OWN, &[On(Flag::Json)]),
    t("compress", Some('z'), "Compress the SSH connection (zlib; helps on slow links with compressible data)", CONNECTION, &[On(Flag::Compress)]),
    no("no-compress", &["no-z"], &[Off(Flag::Compress)]),
    t("ipv4", Some('4'), "Connect over IPv4 only", CONNECTION, &[On(Flag::Ipv4), Off(Flag::Ipv6)]),
    t("ipv6", Some('6'), "Connect over IPv6 only", CONNECTION, &[On(Flag::Ipv6), Off(Flag::Ipv4)]),
    t("secluded-args", Some('s'), "Accepted: ferry never passes names through a remote shell", CONNECTION, &[On(Flag::SecludedArgs)]),
    t("protect-args", None, "", CONNECTION, &[On(Flag::SecludedArgs)]),
    no("no-secluded-args", &["no-protect-args", "no-s"], &[Off(Flag::SecludedArgs)]),
    t("old-args", None, "Accepted: ferry never passes names through a remote shell", CONNECTION, &[On(Flag::OldArgs)]),
    no("no-old-args", &[], &[Off(Flag::OldArgs)]),
    no("no-bwlimit", &[], &[On(Flag::NoBwlimit)]),
    no("no-timeout", &[], &[On(Flag::NoTimeout)]),
    no("no-contimeout", &[], &[On(Flag::NoContimeout)]),
    no("no-iconv", &[], &[On(Flag::NoIconv)]),
];

/// What a command made from the table is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Reading a command line: every occurrence keeps its position.
    Parsing,
    /// `--help`, the man page, completions: plain flags.
    Describing,
}

/// Adds every option of the table to `command`.
pub(crate) fn augment(command: Command, purpose: Purpose) -> Command {
    // Under each heading the table's options come first, in its order,
    // then the ones with a value (`-a -r ... --chmod`), as rsync's help
    // puts the common switches first.
    let mut command = command.mut_args(|arg| {
        let order = arg.get_display_order();
        arg.display_order(order + TOGGLES.len())
    });
    for (order, toggle) in TOGGLES.iter().enumerate() {
        // Append, not Count, to parse: clap keeps the position of every
        // occurrence only for appended values, and the order is what
        // rsync reads. Help would show those as repeatable values.
        let mut arg = match purpose {
            Purpose::Parsing => Arg::new(toggle.long)
                .action(ArgAction::Append)
                .num_args(0)
                .default_missing_value(""),
            Purpose::Describing => Arg::new(toggle.long).action(ArgAction::SetTrue),
        };
        arg = arg.help_heading(toggle.heading).display_order(order);
        // -P has no long name: its table name is its letter.
        if toggle.long.len() > 1 {
            arg = arg.long(toggle.long);
        }
        if let Some(short) = toggle.short {
            arg = arg.short(short);
        }
        for alias in toggle.aliases {
            arg = arg.alias(*alias);
        }
        arg = match toggle.help.is_empty() {
            true => arg.hide(true),
            false => arg.help(toggle.help),
        };
        command = command.arg(arg);
    }
    command
}

/// The settings the options above say, after replaying them in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    flags: BTreeMap<Flag, bool>,
    counters: BTreeMap<Counter, u8>,
}

impl Flags {
    /// Replays every occurrence of the table's options in `matches`, in
    /// command-line order.
    pub(crate) fn read(matches: &ArgMatches) -> Flags {
        let mut seen: Vec<(usize, &'static [Effect])> = Vec::new();
        for toggle in TOGGLES {
            if let Some(indices) = matches.indices_of(toggle.long) {
                seen.extend(indices.map(|i| (i, toggle.effects)));
            }
        }
        seen.sort_by_key(|(index, _)| *index);
        let mut flags = Flags::default();
        for (_, effects) in seen {
            for effect in effects {
                flags.apply(*effect);
            }
        }
        flags
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            On(flag) => _ = self.flags.insert(flag, true),
            Off(flag) => _ = self.flags.insert(flag, false),
            Count(counter) => *self.counters.entry(counter).or_default() += 1,
            Zero(counter) => _ = self.counters.insert(counter, 0),
            Level(counter, value) => _ = self.counters.insert(counter, value),
            Default(counter, value) => {
                let level = self.counters.entry(counter).or_default();
                if *level == 0 {
                    *level = value;
                }
            }
        }
    }

    /// Whether `flag` is on.
    pub(crate) fn on(&self, flag: Flag) -> bool {
        self.get(flag).unwrap_or(false)
    }

    /// `flag` as the command line left it; None when it never came up.
    pub(crate) fn get(&self, flag: Flag) -> Option<bool> {
        self.flags.get(&flag).copied()
    }

    /// How often a counted option was given (since the last negation).
    pub(crate) fn count(&self, counter: Counter) -> u8 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        // -h is --human-readable, as in ferry's own command.
        let command = Command::new("t")
            .disable_help_flag(true)
            .arg(Arg::new("paths").num_args(0..));
        let command = augment(command, Purpose::Parsing);
        let matches = command
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .expect("parses");
        Flags::read(&matches)
    }

    #[test]
    fn negations_compose_with_archive_in_command_line_order() {
        let f = flags(&["-a", "--no-perms", "--no-t"]);
        assert!(f.count(Counter::Recursion) == 1 && f.on(Flag::Links));
        assert!(!f.on(Flag::Perms) && !f.on(Flag::Times));
        // rsync: a later -a turns them back on.
        let f = flags(&["--no-p", "-a"]);
        assert!(f.on(Flag::Perms));
        let f = flags(&["-a", "--no-r", "x", "--no-links"]);
        assert!(f.count(Counter::Recursion) == 0 && !f.on(Flag::Links) && f.on(Flag::Times));
        assert_eq!(flags(&["-r", "-a"]).count(Counter::Recursion), 2);
        assert_eq!(flags(&["-a", "-r"]).count(Counter::Recursion), 2);
        assert_eq!(f.get(Flag::WholeFile), None);
        assert_eq!(flags(&["-W", "--no-W"]).get(Flag::WholeFile), Some(false));
    }

    #[test]
    fn counted_options_count_until_negated() {
        let f = flags(&["-vvi", "-v", "-x", "-x", "-i"]);
        assert_eq!(f.count(Counter::Verbose), 3);
        assert_eq!(f.count(Counter::Itemize), 2);
        assert_eq!(f.count(Counter::OneFileSystem), 2);
        assert_eq!(flags(&["-vv", "--no-v", "-v"]).count(Counter::Verbose), 1);
    }

    #[test]
    fn every_long_name_and_alias_is_unique() {
        let mut names: Vec<&str> = TOGGLES
            .iter()
            .flat_map(|t| std::iter::once(t.long).chain(t.aliases.iter().copied()))
            .collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total);
    }
}
