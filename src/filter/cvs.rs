//! `-C`/`--cvs-exclude`: the global CVS ignore rules that a `-C` rule
//! brings in: rsync's default list, then `$HOME/.cvsignore`, then
//! `$CVSIGNORE`, every name an exclude, split on whitespace, a lone `!`
//! clearing what came before (the default list included).

use std::sync::Arc;

use super::lists::words;
use super::parse::{Rule, RuleFlags};
use super::pattern::Pattern;

/// rsync's default CVS ignore list, exactly as rsync 3.5.0 builds it
/// (`default-cvsignore.h`, from the list under `--cvs-exclude` in rsync.1.md).
pub(crate) const DEFAULT_CVSIGNORE: &str = "RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS \
     .make.state .nse_depinfo *~ #* .#* ,* _$* *$ *.old *.bak *.BAK *.orig *.rej .del-* \
     *.a *.olb *.o *.obj *.so *.exe *.Z *.elc *.ln core .svn/ .git/ .hg/ .bzr/";

/// What the CVS ignore rules read besides the default list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CvsEnv {
    /// The contents of `$HOME/.cvsignore` (None when there is none).
    pub home_cvsignore: Option<Vec<u8>>,
    /// `$CVSIGNORE`.
    pub cvsignore: Option<String>,
}

impl CvsEnv {
    /// This process's: `$HOME/.cvsignore` (a file that cannot be read
    /// counts as none, as in rsync) and `$CVSIGNORE`.
    pub(crate) fn from_process() -> CvsEnv {
        let home_cvsignore = std::env::var_os("HOME")
            .map(|home| std::path::Path::new(&home).join(".cvsignore"))
            .and_then(|path| std::fs::read(path).ok());
        let cvsignore = std::env::var_os("CVSIGNORE").map(|v| v.to_string_lossy().into_owned());
        CvsEnv {
            home_cvsignore,
            cvsignore,
        }
    }
}

/// The global CVS ignore rules, each with `flags` (the `-C` rule's). The
/// default ones are perishable besides (rsync marks them so for protocol
/// 30 and later): they do not keep a directory that is being deleted.
pub(crate) fn cvs_rules(flags: RuleFlags, env: &CvsEnv, from0: bool) -> Arc<[Rule]> {
    let mut rules = Vec::new();
    let defaults = RuleFlags {
        perishable: true,
        ..flags
    };
    add_words(&mut rules, DEFAULT_CVSIGNORE.as_bytes(), defaults, false);
    if let Some(data) = &env.home_cvsignore {
        add_words(&mut rules, data, flags, from0);
    }
    if let Some(value) = &env.cvsignore {
        add_words(&mut rules, value.as_bytes(), flags, false);
    }
    rules.into()
}

fn add_words(rules: &mut Vec<Rule>, data: &[u8], flags: RuleFlags, from0: bool) {
    for (_, word) in words(data, from0) {
        if word == b"!" {
            rules.clear();
            continue;
        }
        rules.push(Rule {
            pattern: Pattern::new(&String::from_utf8_lossy(word)),
            include: flags.include,
            negate: flags.negate,
            sides: flags.sides,
            perishable: flags.perishable,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::Sides;
    use super::*;

    fn exclude() -> RuleFlags {
        RuleFlags {
            include: false,
            negate: false,
            sides: Sides::BOTH,
            perishable: false,
        }
    }

    fn first_match<'a>(rules: &'a [Rule], path: &str, is_dir: bool) -> Option<&'a Rule> {
        rules.iter().find(|r| r.pattern.matches(path, is_dir))
    }

    /// Checked against rsync 3.5.0 (`rsync -r -C src/ dst/`): every name of
    /// the list is excluded at any depth, .svn/.git/.hg/.bzr as
    /// directories only.
    #[test]
    fn the_default_list_is_rsyncs() {
        let rules = cvs_rules(exclude(), &CvsEnv::default(), false);
        assert_eq!(rules.len(), 36);
        for name in [
            "RCS",
            "SCCS",
            "CVS",
            "CVS.adm",
            "RCSLOG",
            "cvslog.1",
            "tags",
            "TAGS",
            ".make.state",
            ".nse_depinfo",
            "a~",
            "#a",
            ".#a",
            ",a",
            "_$a",
            "a$",
            "a.old",
            "a.bak",
            "a.BAK",
            "a.orig",
            "a.rej",
            ".del-a",
            "a.a",
            "a.olb",
            "a.o",
            "a.obj",
            "a.so",
            "a.exe",
            "a.Z",
            "a.elc",
            "a.ln",
            "core",
            "deep/er/core",
        ] {
            let rule = first_match(&rules, name, false).expect(name);
            assert!(rule.perishable && !rule.include, "{name}");
        }
        for dir in [".svn", ".git", ".hg", ".bzr"] {
            assert!(first_match(&rules, dir, true).is_some(), "{dir}/");
            assert!(first_match(&rules, dir, false).is_none(), "{dir} as a file");
        }
        assert!(first_match(&rules, "keep.c", false).is_none());
    }

    /// Checked against rsync 3.5.0: `CVSIGNORE="bar .svn2"` and a
    /// ~/.cvsignore of "keep.c" add to the list (not perishable); a "!" in
    /// either clears everything before it, the default list too.
    #[test]
    fn home_file_and_environment_add_to_the_list_and_bang_clears_it() {
        let env = CvsEnv {
            home_cvsignore: Some(b"keep.c\n".to_vec()),
            cvsignore: Some("bar  .svn2".into()),
        };
        let rules = cvs_rules(exclude(), &env, false);
        assert_eq!(rules.len(), 39);
        assert!(!first_match(&rules, "x/keep.c", false).unwrap().perishable);
        assert!(first_match(&rules, "bar", false).is_some());
        let env = CvsEnv {
            home_cvsignore: Some(b"keep.c".to_vec()),
            cvsignore: Some("! bar".into()),
        };
        let rules = cvs_rules(exclude(), &env, false);
        let names: Vec<bool> = ["bar", "a.o", "keep.c"]
            .iter()
            .map(|n| first_match(&rules, n, false).is_some())
            .collect();
        assert_eq!(names, [true, false, false]);
    }

    /// Checked against rsync 3.5.0: `-f'+C'` turns the list into includes.
    #[test]
    fn the_rules_take_the_flags_of_the_rule_that_brought_them() {
        let flags = RuleFlags {
            include: true,
            sides: Sides {
                sender: true,
                receiver: false,
            },
            ..exclude()
        };
        let rules = cvs_rules(flags, &CvsEnv::default(), false);
        assert!(rules.iter().all(|r| r.include && !r.sides.receiver));
    }
}
