//! Reading one filter rule from its text, as rsync does: the full
//! `--filter` syntax (`RULE[,MODIFIERS] PATTERN`, short or long rule
//! names), the old `--exclude`/`--include` style (an optional `- ` or `+ `
//! prefix, `!` alone clearing the list), the bare patterns of a merge
//! file read with the `-` or `+` modifier, and the CVS forms (`-C`, `:C`).

use super::pattern::Pattern;

/// Which side of a transfer a rule speaks to: the sender's walk (hide and
/// show) and the receiver's deletions (protect and risk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sides {
    pub sender: bool,
    pub receiver: bool,
}

impl Sides {
    pub(super) const BOTH: Sides = Sides {
        sender: true,
        receiver: true,
    };
    const SENDER: Sides = Sides {
        sender: true,
        receiver: false,
    };
    const RECEIVER: Sides = Sides {
        sender: false,
        receiver: true,
    };
}

/// An include or exclude rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub pattern: Pattern,
    pub include: bool,
    /// `!`: the rule applies where the pattern does not match.
    pub negate: bool,
    pub sides: Sides,
    /// `p`: ignored inside directories that are being deleted.
    pub perishable: bool,
}

/// How the lines of a merge file are read (the merge rule's modifiers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Template {
    /// `-` or `+`: every line is a pattern of this kind (true: include),
    /// with no rule prefix.
    pub bare: Option<bool>,
    /// `w`: words, not lines (and no comments).
    pub word_split: bool,
    /// `n`: a per-directory file's rules are not inherited below it.
    pub no_inherit: bool,
    /// `e`: the merge file itself is excluded from the transfer.
    pub exclude_self: bool,
    /// `s`/`r` on the merge rule: the sides of every rule in the file.
    pub sides: Option<Sides>,
    /// `p` on the merge rule: every rule in the file is perishable.
    pub perishable: bool,
    /// `C`: read as a `.cvsignore` (with `-`, `w` and `n`), where a lone
    /// `!` still clears the list.
    pub cvs: bool,
}

/// What a `-C` rule gives each of the global CVS ignore rules it brings in
/// (rsync copies the `-C` rule's own flags onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RuleFlags {
    pub include: bool,
    pub negate: bool,
    pub sides: Sides,
    pub perishable: bool,
}

/// What one rule's text says.
#[derive(Debug, Clone)]
pub(super) enum Parsed {
    /// `!` or `clear`.
    Clear,
    Rule(Rule),
    /// `. FILE` or `merge FILE`.
    Merge {
        file: String,
        template: Template,
    },
    /// `: FILE` or `dir-merge FILE`.
    DirMerge {
        file: String,
        template: Template,
    },
    /// `-C` (the `C` modifier on an include or exclude): the global CVS
    /// ignore rules go here.
    Cvs(RuleFlags),
}

/// The syntax a rule's text is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// `--filter`, and the lines of merge files: `RULE[,MODS] PATTERN`.
    Full,
    /// `--exclude`/`--include` and their `-from` files: a pattern of the
    /// given kind (true: include), or `- PAT`/`+ PAT`, or `!` alone.
    Old { include: bool },
}

/// What a rule is read against.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context<'a> {
    /// `--delete-excluded`: rules that name no side speak to the sender only.
    pub delete_excluded: bool,
    /// The directory (from the transfer root) of the per-directory file the
    /// rule is in, where its anchored patterns are anchored; empty for
    /// global rules.
    pub base: &'a str,
    /// For a per-directory file above the transfer root: the path from its
    /// directory down to the root, which its anchored patterns start with.
    pub above: &'a str,
}

/// The rule kinds, for messages.
pub(crate) const SUPPORTED: &str =
    "ferry supports -/exclude, +/include, H/hide, S/show, P/protect, \
     R/risk, !/clear, ./merge and :/dir-merge, with the modifiers ! s r p C (and - + e n w on \
     merge rules), e.g. \"- *.tmp\", \"+ */\", \"P /keep\", \". rules.txt\", \":- .gitignore\", \
     \":C\", \"-C\"";

/// Reads one rule. An empty text (or, in the old syntax, an empty pattern)
/// is no rule at all.
pub(super) fn parse(
    text: &str,
    syntax: Syntax,
    template: &Template,
    ctx: Context,
) -> Result<Option<Parsed>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(include) = template.bare {
        // rsync: in a CVS-style file a lone "!" still clears the list.
        if template.cvs && text == "!" {
            return Ok(Some(Parsed::Clear));
        }
        return Ok(Some(Parsed::Rule(rule_from(
            text,
            include,
            template,
            Mods::default(),
            ctx,
        ))));
    }
    match syntax {
        Syntax::Old { include } => Ok(Some(old_style(text, include, template, ctx))),
        Syntax::Full => full(text, template, ctx).map(Some),
    }
}

fn old_style(text: &str, include: bool, template: &Template, ctx: Context) -> Parsed {
    if text == "!" {
        return Parsed::Clear;
    }
    let (include, pattern) = match text.as_bytes() {
        [b'-', b' ', ..] => (false, &text[2..]),
        [b'+', b' ', ..] => (true, &text[2..]),
        _ => (include, text),
    };
    Parsed::Rule(rule_from(pattern, include, template, Mods::default(), ctx))
}

/// Modifiers given on one rule.
#[derive(Debug, Clone, Copy, Default)]
struct Mods {
    negate: bool,
    perishable: bool,
    sides: Option<Sides>,
    /// `C` on an include or exclude.
    cvs: bool,
}

fn rule_from(pattern: &str, include: bool, template: &Template, mods: Mods, ctx: Context) -> Rule {
    let flags = flags_from(include, template, mods, ctx);
    Rule {
        pattern: anchored(pattern, ctx),
        include,
        negate: flags.negate,
        sides: flags.sides,
        perishable: flags.perishable,
    }
}

/// A rule's flags: its own modifiers, else what the merge rule that read
/// it gave, else both sides (the sender's only with --delete-excluded).
fn flags_from(include: bool, template: &Template, mods: Mods, ctx: Context) -> RuleFlags {
    let sides = match mods.sides.or(template.sides) {
        Some(sides) => sides,
        None if ctx.delete_excluded => Sides::SENDER,
        None => Sides::BOTH,
    };
    RuleFlags {
        include,
        negate: mods.negate,
        sides,
        perishable: mods.perishable || template.perishable,
    }
}

/// The pattern of a rule read in a per-directory file: rsync anchors a
/// leading `/` at the file's directory by writing that directory in front
/// of the pattern (so a wildcard in a directory's name counts as one, as
/// in rsync).
fn anchored(pattern: &str, ctx: Context) -> Pattern {
    if !pattern.starts_with('/') {
        return Pattern::new(pattern);
    }
    if !ctx.above.is_empty() {
        return Pattern::anchored_above(pattern, ctx.above);
    }
    match ctx.base.is_empty() {
        true => Pattern::new(pattern),
        false => Pattern::new(&format!("/{}{pattern}", ctx.base)),
    }
}

/// The kind a rule's name gives, before its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exclude,
    Include,
    Merge,
    DirMerge,
    Clear,
}

const LONG_NAMES: [(&str, char); 9] = [
    ("clear", '!'),
    ("dir-merge", ':'),
    ("exclude", '-'),
    ("hide", 'H'),
    ("include", '+'),
    ("merge", '.'),
    ("protect", 'P'),
    ("risk", 'R'),
    ("show", 'S'),
];

/// The rule's short name, and where its modifiers start: a long name must
/// be followed by a space, `_`, `,` or the end; a short one may be followed
/// by `,` before its modifiers.
fn rule_name(text: &str) -> Result<(char, usize), String> {
    for (long, short) in LONG_NAMES {
        if let Some(rest) = text.strip_prefix(long) {
            return match rest.chars().next() {
                None | Some(' ' | '_') => Ok((short, long.len())),
                Some(',') => Ok((short, long.len() + 1)),
                Some(_) => Err(unknown(text)),
            };
        }
    }
    let short = text.chars().next().ok_or_else(|| unknown(text))?;
    let after = short.len_utf8();
    match text[after..].starts_with(',') {
        true => Ok((short, after + 1)),
        false => Ok((short, after)),
    }
}

fn unknown(text: &str) -> String {
    format!("unknown filter rule {text:?}; {SUPPORTED}")
}

fn full(text: &str, template: &Template, ctx: Context) -> Result<Parsed, String> {
    let (short, mods_at) = rule_name(text)?;
    let (kind, named_sides) = kind_of(short).ok_or_else(|| unknown(text))?;
    if kind == Kind::Clear {
        return match &text[mods_at..] {
            "" => Ok(Parsed::Clear),
            _ => Err(format!(
                "filter rule {text:?}: '!' (clear) takes nothing after it"
            )),
        };
    }
    let rest = &text[mods_at..];
    let mods_end = rest.find([' ', '_']).unwrap_or(rest.len());
    let (mods, argument) = (&rest[..mods_end], rest.get(mods_end + 1..).unwrap_or(""));
    let mut merge = Template::default();
    let mut own = Mods {
        sides: named_sides,
        ..Mods::default()
    };
    for m in mods.chars() {
        modifier(m, kind, named_sides.is_some(), &mut own, &mut merge)
            .map_err(|why| format!("filter rule {text:?}: {why}"))?;
    }
    if own.sides.is_some() && template.sides.is_some() {
        return Err(format!(
            "filter rule {text:?} names a side, but the merge rule that read it already did"
        ));
    }
    let include = kind == Kind::Include;
    match kind {
        Kind::Merge | Kind::DirMerge => merge_rule(text, kind, argument, own, merge, template),
        // rsync ignores whatever follows "-C".
        _ if own.cvs => Ok(Parsed::Cvs(flags_from(include, template, own, ctx))),
        _ if argument.is_empty() => Err(no_argument(text)),
        _ => Ok(Parsed::Rule(rule_from(
            argument, include, template, own, ctx,
        ))),
    }
}

/// The kind a short rule name gives, and the side it names if any.
fn kind_of(short: char) -> Option<(Kind, Option<Sides>)> {
    Some(match short {
        '-' => (Kind::Exclude, None),
        '+' => (Kind::Include, None),
        'H' => (Kind::Exclude, Some(Sides::SENDER)),
        'S' => (Kind::Include, Some(Sides::SENDER)),
        'P' => (Kind::Exclude, Some(Sides::RECEIVER)),
        'R' => (Kind::Include, Some(Sides::RECEIVER)),
        '.' => (Kind::Merge, None),
        ':' => (Kind::DirMerge, None),
        '!' => (Kind::Clear, None),
        _ => return None,
    })
}

fn no_argument(text: &str) -> String {
    format!(
        "filter rule {text:?} has no pattern or file name (put it after one space or _, \
         e.g. \"- *.tmp\")"
    )
}

/// A merge or dir-merge rule. A merge rule read from a file takes that
/// file's sides and perishability as defaults for its own file, as rsync's
/// rules inherit from the rule that read them.
fn merge_rule(
    text: &str,
    kind: Kind,
    argument: &str,
    own: Mods,
    merge: Template,
    container: &Template,
) -> Result<Parsed, String> {
    let file = match argument {
        // rsync(1): "If no filename is provided, .cvsignore is assumed."
        "" if merge.cvs => ".cvsignore",
        "" => return Err(no_argument(text)),
        given => given,
    }
    .to_string();
    let template = Template {
        sides: own.sides.or(container.sides),
        perishable: own.perishable || container.perishable,
        ..merge
    };
    Ok(match kind {
        Kind::Merge => Parsed::Merge { file, template },
        _ => Parsed::DirMerge { file, template },
    })
}

/// Applies one modifier letter of a rule.
fn modifier(
    m: char,
    kind: Kind,
    side_named: bool,
    own: &mut Mods,
    merge: &mut Template,
) -> Result<(), String> {
    let is_merge = matches!(kind, Kind::Merge | Kind::DirMerge);
    let side = |own: &mut Mods, add: Sides| {
        if side_named {
            return Err(format!(
                "modifier '{m}': the rule's name already says its side"
            ));
        }
        let old = own.sides.unwrap_or(Sides {
            sender: false,
            receiver: false,
        });
        own.sides = Some(Sides {
            sender: old.sender || add.sender,
            receiver: old.receiver || add.receiver,
        });
        Ok(())
    };
    match m {
        'C' => cvs_modifier(is_merge, side_named, own, merge)?,
        '!' if !is_merge => own.negate = true,
        'p' => own.perishable = true,
        's' => side(own, Sides::SENDER)?,
        'r' => side(own, Sides::RECEIVER)?,
        '-' | '+' if is_merge && merge.bare.is_none() => merge.bare = Some(m == '+'),
        'e' if is_merge => merge.exclude_self = true,
        'n' if is_merge => merge.no_inherit = true,
        'w' if is_merge => merge.word_split = true,
        '/' => return Err("modifier '/' (match absolute paths) is not supported by ferry".into()),
        'x' => return Err("modifier 'x' (xattr names) is not supported by ferry".into()),
        _ => {
            return Err(format!(
                "invalid modifier '{m}' (to give a pattern, put one space or _ after the rule: \
                 \"- *.o\", \"-_*.o\")"
            ))
        }
    }
    Ok(())
}

/// `C`: on a merge rule, read the file as a `.cvsignore` (rsync turns on
/// `-`, `w` and `n` with it); on an include or exclude, bring in the
/// global CVS ignore rules. rsync refuses it after `-`/`+`, a second time,
/// and on rules whose name gives their side.
fn cvs_modifier(
    is_merge: bool,
    side_named: bool,
    own: &mut Mods,
    merge: &mut Template,
) -> Result<(), String> {
    if merge.bare.is_some() || own.cvs || merge.cvs {
        return Err("modifier 'C' cannot come after '-', '+' or another 'C'".into());
    }
    if side_named {
        return Err("modifier 'C' cannot go on a rule whose name gives its side".into());
    }
    if !is_merge {
        own.cvs = true;
        return Ok(());
    }
    merge.bare = Some(false);
    merge.word_split = true;
    merge.no_inherit = true;
    merge.cvs = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_rule(text: &str) -> Result<Option<Parsed>, String> {
        parse(text, Syntax::Full, &Template::default(), Context::default())
    }

    fn rule(text: &str) -> Rule {
        match full_rule(text) {
            Ok(Some(Parsed::Rule(rule))) => rule,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn short_and_long_names_with_space_or_underscore() {
        for text in ["- *.o", "-_*.o", "exclude *.o", "exclude_*.o", "-, *.o"] {
            let r = rule(text);
            assert!(!r.include && r.sides == Sides::BOTH, "{text}");
            assert!(r.pattern.matches("a/b.o", false), "{text}");
        }
        assert!(rule("+ *.c").include);
        assert!(rule("include *.c").include);
        assert_eq!(rule("H x").sides, Sides::SENDER);
        assert_eq!(rule("hide x").sides, Sides::SENDER);
        assert!(rule("S x").include && rule("show x").sides == Sides::SENDER);
        assert_eq!(rule("P x").sides, Sides::RECEIVER);
        assert!(!rule("protect x").include);
        assert!(rule("R x").include && rule("risk x").sides == Sides::RECEIVER);
        assert_eq!(rule("-s x").sides, Sides::SENDER);
        assert_eq!(rule("-sr x").sides, Sides::BOTH);
        assert_eq!(rule("exclude,r x").sides, Sides::RECEIVER);
        assert!(rule("-p x").perishable);
    }

    #[test]
    fn only_one_separator_is_taken() {
        let r = rule("-  x");
        assert!(
            r.pattern.matches(" x", false),
            "the second space is the pattern's"
        );
        assert!(!r.pattern.matches("x", false));
    }

    #[test]
    fn negation_applies_where_the_pattern_does_not_match() {
        let r = rule("-! */");
        assert!(r.negate);
    }

    #[test]
    fn clear_and_merges() {
        assert!(matches!(full_rule("!"), Ok(Some(Parsed::Clear))));
        assert!(matches!(full_rule("clear"), Ok(Some(Parsed::Clear))));
        assert!(full_rule("! x").is_err());
        match full_rule(".- excludes.txt") {
            Ok(Some(Parsed::Merge { file, template })) => {
                assert_eq!(file, "excludes.txt");
                assert_eq!(template.bare, Some(false));
            }
            other => panic!("{other:?}"),
        }
        match full_rule("dir-merge,ne .rules") {
            Ok(Some(Parsed::DirMerge { file, template })) => {
                assert_eq!(file, ".rules");
                assert!(template.no_inherit && template.exclude_self);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            full_rule(":- .gitignore"),
            Ok(Some(Parsed::DirMerge { .. }))
        ));
    }

    #[test]
    fn mistakes_are_refused_with_the_rule_in_the_message() {
        for bad in [
            "x foo", "-*.o", "-", "exclude", "Hs x", "+e x", "-! ", "foo", "-/ x", ":",
        ] {
            let err = full_rule(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(full_rule("x foo").unwrap_err().contains("supports"));
    }

    /// Checked against rsync 3.5.0 (`rsync -r -f RULE src/ dst/`): -sC :sC
    /// -Cs :Cw :Cn :Ce -pC -C! -!C are taken, "-C foo" as "-C"; HC :-C :C-
    /// :C! are refused.
    #[test]
    fn the_c_modifier() {
        for good in ["-C", "-sC", "-Cs", "-pC", "-C!", "-!C", "+C", "-C foo"] {
            assert!(
                matches!(full_rule(good), Ok(Some(Parsed::Cvs(_)))),
                "{good}"
            );
        }
        match full_rule("-!psC") {
            Ok(Some(Parsed::Cvs(flags))) => {
                assert!(flags.negate && flags.perishable && !flags.include);
                assert_eq!(flags.sides, Sides::SENDER);
            }
            other => panic!("{other:?}"),
        }
        for good in [":C", ":sC", ":Cw", ":Cn", ":Ce", ":C foo"] {
            match full_rule(good) {
                Ok(Some(Parsed::DirMerge { file, template })) => {
                    assert!(
                        template.cvs && template.word_split && template.no_inherit,
                        "{good}"
                    );
                    assert_eq!(template.bare, Some(false), "{good}");
                    assert_eq!(
                        file,
                        if good.ends_with("foo") {
                            "foo"
                        } else {
                            ".cvsignore"
                        }
                    );
                }
                other => panic!("{good}: {other:?}"),
            }
        }
        assert!(
            matches!(full_rule(".C"), Ok(Some(Parsed::Merge { file, .. })) if file == ".cvsignore")
        );
        for bad in ["HC", ":-C", ":C-", ":C!", "-CC", "P,C x"] {
            let err = full_rule(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    /// Checked against rsync 3.5.0: in a .cvsignore a lone "!" clears the
    /// list; "!x" is a name.
    #[test]
    fn a_lone_bang_clears_in_cvs_files() {
        let cvs = Template {
            bare: Some(false),
            cvs: true,
            ..Template::default()
        };
        let read = |text| parse(text, Syntax::Full, &cvs, Context::default());
        assert!(matches!(read("!"), Ok(Some(Parsed::Clear))));
        assert!(matches!(read("!x"), Ok(Some(Parsed::Rule(_)))));
        let plain = Template {
            bare: Some(false),
            ..Template::default()
        };
        let rule = parse("!", Syntax::Full, &plain, Context::default());
        assert!(
            matches!(rule, Ok(Some(Parsed::Rule(_)))),
            "without C it is a name"
        );
    }

    #[test]
    fn merge_rules_read_from_a_file_take_its_sides() {
        let sender = Template {
            sides: Some(Sides::SENDER),
            perishable: true,
            ..Template::default()
        };
        match parse(": .more", Syntax::Full, &sender, Context::default()) {
            Ok(Some(Parsed::DirMerge { template, .. })) => {
                assert_eq!(template.sides, Some(Sides::SENDER));
                assert!(template.perishable);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn old_style_takes_optional_prefixes() {
        let old = |text: &str, include| {
            parse(
                text,
                Syntax::Old { include },
                &Template::default(),
                Context::default(),
            )
        };
        match old("+ keep", false) {
            Ok(Some(Parsed::Rule(r))) => assert!(r.include && r.pattern.matches("keep", false)),
            other => panic!("{other:?}"),
        }
        match old("-x", true) {
            Ok(Some(Parsed::Rule(r))) => assert!(r.include && r.pattern.matches("-x", false)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(old("!", false), Ok(Some(Parsed::Clear))));
        match old("!x", false) {
            Ok(Some(Parsed::Rule(r))) => assert!(r.pattern.matches("!x", false)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delete_excluded_makes_sideless_rules_sender_only() {
        let ctx = Context {
            delete_excluded: true,
            ..Context::default()
        };
        let sides = |text| match parse(text, Syntax::Full, &Template::default(), ctx) {
            Ok(Some(Parsed::Rule(r))) => r.sides,
            other => panic!("{other:?}"),
        };
        assert_eq!(sides("- x"), Sides::SENDER);
        assert_eq!(sides("P x"), Sides::RECEIVER);
        assert_eq!(sides("-sr x"), Sides::BOTH);
    }
}
