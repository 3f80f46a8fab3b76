//! rsync's `--info=FLAGS`: output words with levels (`name2`, `del0`,
//! `ALL`, `NONE`, case-insensitive), on top of what `-v` implies, read as
//! rsync 3.5's options.c reads them. A word the user gives outranks what
//! `-v`, `--stats` or `--progress` imply, wherever it stands on the line.
//!
//! ferry acts on NAME (which items get a line), DEL (deletion lines),
//! NONREG and SKIP (entries left alone), PROGRESS and STATS; the other words are accepted and change nothing
//! (docs/RSYNC.md says why for each).

use crate::error::{Error, Result};

/// rsync's words, in its order, with its help text.
const WORDS: [(&str, &str); 13] = [
    ("BACKUP", "Mention files backed up"),
    ("COPY", "Mention files copied locally on the receiving side"),
    ("DEL", "Mention deletions on the receiving side"),
    ("FLIST", "Mention file-list receiving/sending (levels 1-2)"),
    ("MISC", "Mention miscellaneous information (levels 1-2)"),
    ("MOUNT", "Mention mounts that were found or skipped"),
    (
        "NAME",
        "Mention 1) updated file/dir names, 2) unchanged names",
    ),
    (
        "NONREG",
        "Mention skipped non-regular files (default 1, 0 disables)",
    ),
    (
        "PROGRESS",
        "Mention 1) per-file progress or 2) total transfer progress",
    ),
    ("REMOVE", "Mention files removed on the sending side"),
    (
        "SKIP",
        "Mention files skipped due to transfer overrides (levels 1-2)",
    ),
    ("STATS", "Mention statistics at end of run (levels 1-3)"),
    ("SYMSAFE", "Mention symlinks that are unsafe"),
];

/// What each level of `-v` adds (options.c, `info_verbosity`).
const BY_VERBOSITY: [&str; 3] = [
    "NONREG",
    "COPY,DEL,FLIST,MISC,NAME,STATS,SYMSAFE",
    "BACKUP,MISC2,MOUNT,NAME2,REMOVE,SKIP",
];

/// rsync caps every level at 4 (`MAX_OUT_LEVEL`).
const MAX_LEVEL: u8 = 4;

/// The words ferry acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    Backup,
    Del,
    Name,
    NonReg,
    Progress,
    Skip,
    Stats,
}

impl Word {
    fn index(self) -> usize {
        let name = match self {
            Word::Backup => "BACKUP",
            Word::Del => "DEL",
            Word::Name => "NAME",
            Word::NonReg => "NONREG",
            Word::Skip => "SKIP",
            Word::Progress => "PROGRESS",
            Word::Stats => "STATS",
        };
        WORDS.iter().position(|(w, _)| *w == name).unwrap_or(0)
    }
}

/// The level of every word, and which ones the user set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Info {
    levels: [u8; WORDS.len()],
    by_user: [bool; WORDS.len()],
}

/// What ferry implies besides `-v`, as rsync does at its default priority.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Implied {
    pub verbosity: u8,
    /// `--stats`: stats2, or stats3 with `-vv`.
    pub stats: bool,
    /// `--progress` without a format that names files: name1, and
    /// PROGRESS.
    pub progress: bool,
    /// An `--out-format` or `-i` is in force (rsync's `log_before_transfer`),
    /// so `--progress` does not add names.
    pub has_format: bool,
}

impl Info {
    /// The levels for `-v` (and the rest of `implied`) overridden by the
    /// `--info` values given (each a comma-separated list).
    pub(crate) fn resolve(implied: Implied, given: &[String]) -> Result<Info> {
        let mut info = Info::default();
        let verbosity = usize::from(implied.verbosity).min(BY_VERBOSITY.len() - 1);
        for words in &BY_VERBOSITY[..=verbosity] {
            info.apply(words, false)?;
        }
        if implied.stats {
            info.apply(
                if implied.verbosity > 1 {
                    "stats3"
                } else {
                    "stats2"
                },
                false,
            )?;
        }
        for words in given {
            info.apply(words, true)?;
        }
        if implied.progress {
            if !implied.has_format && info.level(Word::Name) == 0 {
                info.apply("name", false)?;
            }
            info.apply("progress", false)?;
        }
        Ok(info)
    }

    pub(crate) fn level(&self, word: Word) -> u8 {
        self.levels[word.index()]
    }

    /// The level the user gave with `--info`, if any.
    pub(crate) fn given(&self, word: Word) -> Option<u8> {
        let i = word.index();
        self.by_user[i].then_some(self.levels[i])
    }

    /// Reads a comma-separated list of words; `by_user` words override
    /// implied ones, and implied ones never override the user's.
    fn apply(&mut self, words: &str, by_user: bool) -> Result<()> {
        for word in words.split(',').filter(|w| !w.is_empty()) {
            let (name, level) = split_level(word);
            let (chosen, level) = match name.to_ascii_uppercase().as_str() {
                "NONE" => (0..WORDS.len(), 0),
                "ALL" => (0..WORDS.len(), level),
                upper => match WORDS.iter().position(|(w, _)| *w == upper) {
                    Some(i) => (i..i + 1, level),
                    None => {
                        return Err(Error::Usage(format!(
                            "Unknown --info item: \"{name}\" (--info=help lists them)"
                        )))
                    }
                },
            };
            for i in chosen {
                self.set(i, level, by_user);
            }
        }
        Ok(())
    }

    fn set(&mut self, i: usize, level: u8, by_user: bool) {
        if by_user || !self.by_user[i] {
            self.levels[i] = level;
            self.by_user[i] |= by_user;
        }
    }
}

/// `name2` is ("name", 2); a word without digits is level 1, and rsync
/// takes more than 4 as 4.
fn split_level(word: &str) -> (&str, u8) {
    let name = word.trim_end_matches(|c: char| c.is_ascii_digit());
    // A word of digits alone is a name rsync does not know, as here.
    if name.is_empty() {
        return (word, 1);
    }
    let digits = &word[name.len()..];
    let level = match digits {
        "" => 1,
        digits => digits.parse::<u64>().map_or(MAX_LEVEL, |n| {
            u8::try_from(n.min(u64::from(MAX_LEVEL))).unwrap_or(MAX_LEVEL)
        }),
    };
    (name, level)
}

/// Whether one of the `--info` values asks for the help (rsync prints it
/// and exits 0, whatever else is on the line).
pub(crate) fn help_asked(given: &[String]) -> bool {
    given
        .iter()
        .flat_map(|words| words.split(','))
        .any(|word| split_level(word).0.eq_ignore_ascii_case("help"))
}

/// rsync's `--info=help`, line for line.
pub(crate) fn help() -> String {
    let row = |name: &str, text: &str| format!("{name:<10} {text}\n");
    let mut out = String::from(
        "Use OPT or OPT1 for level 1 output, OPT2 for level 2, etc.; OPT0 silences.\n\n",
    );
    for (name, text) in WORDS {
        out.push_str(&row(name, text));
    }
    out.push('\n');
    out.push_str(&row("ALL", "Set all --info options (e.g. all4)"));
    out.push_str(&row("NONE", "Silence all --info options (same as all0)"));
    out.push_str(&row("HELP", "Output this help message"));
    out.push_str("\nOptions added at each level of verbosity:\n");
    for (level, words) in BY_VERBOSITY.iter().enumerate() {
        out.push_str(&format!("{level}) {words}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(verbosity: u8, given: &[&str]) -> Info {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        let implied = Implied {
            verbosity,
            ..Implied::default()
        };
        Info::resolve(implied, &given).expect("valid words")
    }

    #[test]
    fn verbosity_implies_rsyncs_levels() {
        let quiet = info(0, &[]);
        assert_eq!(quiet.level(Word::Name), 0);
        assert_eq!(quiet.level(Word::Del), 0);
        let one = info(1, &[]);
        assert_eq!((one.level(Word::Name), one.level(Word::Del)), (1, 1));
        assert_eq!(one.level(Word::Stats), 1);
        assert_eq!(info(2, &[]).level(Word::Name), 2);
        assert_eq!(info(5, &[]).level(Word::Name), 2);
    }

    #[test]
    fn given_words_outrank_verbosity_wherever_they_stand() {
        assert_eq!(info(2, &["name0"]).level(Word::Name), 0);
        assert_eq!(info(0, &["NAME2,del"]).level(Word::Name), 2);
        assert_eq!(info(0, &["NAME2,del"]).level(Word::Del), 1);
        assert_eq!(info(1, &["none"]).level(Word::Del), 0);
        assert_eq!(info(0, &["all"]).level(Word::Stats), 1);
        assert_eq!(info(0, &["ALL9"]).level(Word::Progress), 4);
        assert_eq!(info(0, &["none,name"]).level(Word::Name), 1);
        assert_eq!(info(0, &["progress2"]).given(Word::Progress), Some(2));
        assert_eq!(info(1, &[]).given(Word::Name), None);
        // Accepted, though ferry does nothing with them.
        let others = info(
            0,
            &["backup,copy2,FLIST0,misc,mount,nonreg,remove,skip,symsafe"],
        );
        assert_eq!(others.level(Word::Name), 0);
    }

    #[test]
    fn progress_implies_names_unless_a_format_or_the_user_says_otherwise() {
        let with = |has_format: bool, given: &[String]| {
            let implied = Implied {
                progress: true,
                has_format,
                ..Implied::default()
            };
            Info::resolve(implied, given)
                .expect("valid")
                .level(Word::Name)
        };
        assert_eq!(with(false, &[]), 1);
        assert_eq!(with(true, &[]), 0);
        assert_eq!(with(false, &["name0".to_string()]), 0);
    }

    #[test]
    fn unknown_words_are_refused_and_help_is_found() {
        let given = vec!["names".to_string()];
        let err = Info::resolve(Implied::default(), &given).expect_err("unknown");
        assert!(err.to_string().contains("\"names\""), "{err}");
        assert!(help_asked(&["name,HELP".to_string()]));
        assert!(!help_asked(&["name".to_string()]));
        let text = help();
        assert!(text.starts_with("Use OPT or OPT1"));
        assert!(text.contains("NAME       Mention 1) updated file/dir names, 2) unchanged names\n"));
        assert!(text.ends_with("2) BACKUP,MISC2,MOUNT,NAME2,REMOVE,SKIP\n"));
    }
}
