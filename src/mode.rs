//! File permissions as rsync gives them: the `--chmod` rules (parsed and
//! applied the way rsync 3.5's chmod.c does) and the mode a destination entry
//! ends with, with or without `-p` and `-E` (rsync.c's `dest_mode()`).
//!
//! Every mode here is permission bits only (0o7777); file-type bits are the
//! caller's, who also knows that rsync never applies `--chmod` to symlinks.

/// The permission bits rsync's --chmod and -p deal in (its CHMOD_BITS).
const CHMOD_BITS: u32 = 0o7777;
/// Read, write and execute for user, group and other (ACCESSPERMS).
const ACCESS_BITS: u32 = 0o777;
const EXEC_BITS: u32 = 0o111;
const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;

/// The classes an item names, one bit per class in the position of its
/// execute bit (user 0o100, group 0o010, other 0o001): multiplying by a
/// 0..=7 rwx value spreads that value over the classes.
const USER: u32 = 0o100;
const GROUP: u32 = 0o010;
const OTHER: u32 = 0o001;
const ALL_CLASSES: u32 = USER | GROUP | OTHER;

/// rsync's --chmod rules, in order (several --chmod options accumulate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chmod {
    rules: Vec<Rule>,
}

impl Chmod {
    /// Parses one --chmod value (comma-separated items) and appends its
    /// rules. A bad item rejects the whole value, as rsync does. The error
    /// names the value and the item, e.g. `--chmod=Fq+x: in "Fq+x", ...`.
    pub(crate) fn add(&mut self, spec: &str) -> Result<(), String> {
        let rules = spec
            .split(',')
            .map(|item| parse_item(item).map_err(|why| format!("--chmod={spec}: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        self.rules.extend(rules);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The mode (0o7777, no file-type bits) a source entry is treated as
    /// having. rsync applies --chmod on the client as the file list is built
    /// or read, so `umask` is the client's own: items without u/g/o/a are
    /// limited by it, as with chmod(1).
    pub(crate) fn apply(&self, mode: u32, is_dir: bool, umask: u32) -> u32 {
        let mode = mode & CHMOD_BITS;
        // rsync decides X once, from the mode before any rule ran.
        let x_allowed = is_dir || mode & EXEC_BITS != 0;
        self.rules
            .iter()
            .filter(|rule| rule.scope.covers(is_dir))
            .fold(mode, |mode, rule| rule.change.apply(mode, x_allowed, umask))
    }
}

/// rsync's dest_mode(): the permissions a destination entry ends with.
///
/// `src` is the source's mode after --chmod; `existing` the destination's
/// current mode if an entry of the same kind is there (one of another kind
/// is replaced, so it counts as new); `perms` is -p; `executability` is -E,
/// which only touches regular files; `umask` the receiving side's.
///
/// Not covered: with ACLs rsync takes a new entry's default permissions from
/// the parent's default ACL instead of the umask; and a new directory keeps
/// the setgid bit it inherits from a setgid parent (set_file_attrs'
/// `inherit`), which the caller must add back after creating it.
pub(crate) fn dest_mode(
    src: u32,
    existing: Option<u32>,
    is_file: bool,
    perms: bool,
    executability: bool,
    umask: u32,
) -> u32 {
    if perms {
        return src & CHMOD_BITS;
    }
    match existing {
        // New entries get the source's rwx within the umask and never
        // setuid, setgid or sticky.
        None => src & ACCESS_BITS & !umask,
        Some(current) if executability && is_file => {
            with_source_executability(src, current & CHMOD_BITS)
        }
        Some(current) => current & CHMOD_BITS,
    }
}

/// -E on an existing file: a non-executable source makes it non-executable;
/// an executable source makes it executable for whoever may read it, unless
/// it already has some x bit (then it is left alone).
fn with_source_executability(src: u32, current: u32) -> u32 {
    if src & EXEC_BITS == 0 {
        current & !EXEC_BITS
    } else if current & EXEC_BITS == 0 {
        current | ((current & 0o444) >> 2)
    } else {
        current
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scope: Scope,
    change: Change,
}

/// Which entries an item touches: rsync's `D` and `F` prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    DirsOnly,
    /// Everything that is not a directory.
    NonDirsOnly,
}

impl Scope {
    fn narrowed(self, letter: char) -> Result<Scope, String> {
        match (self, letter) {
            (Scope::All | Scope::DirsOnly, 'D') => Ok(Scope::DirsOnly),
            (Scope::All | Scope::NonDirsOnly, 'F') => Ok(Scope::NonDirsOnly),
            _ => Err("D (directories) and F (files) exclude each other".into()),
        }
    }

    fn covers(self, is_dir: bool) -> bool {
        match self {
            Scope::All => true,
            Scope::DirsOnly => is_dir,
            Scope::NonDirsOnly => !is_dir,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// An octal item: the whole mode, special bits included, umask ignored.
    Set(u32),
    Symbolic(Symbolic),
}

impl Change {
    fn apply(&self, mode: u32, x_allowed: bool, umask: u32) -> u32 {
        match self {
            Change::Set(bits) => *bits,
            Change::Symbolic(symbolic) => symbolic.apply(mode, x_allowed, umask),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Assign,
}

/// A `[who]op[perms]` item.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Symbolic {
    /// Classes named by u/g/o/a; None when there were none, which means
    /// all classes, limited by the umask.
    who: Option<u32>,
    op: Op,
    /// r/w/x as a 0..=7 value.
    rwx: u32,
    /// setuid/setgid/sticky named by `s` and `t`.
    special: u32,
    /// `X`: the item's x bits (all of them, even an `x` beside it) are
    /// added only to directories and to entries that have some x bit.
    x_only_if_executable: bool,
    /// `u`, `g` or `o` after the operator: the class whose rwx is copied.
    copy_from: Option<u32>,
}

impl Symbolic {
    fn apply(&self, mode: u32, x_allowed: bool, umask: u32) -> u32 {
        let (classes, limit) = match self.who {
            Some(who) => (who, CHMOD_BITS),
            None => (ALL_CLASSES, !umask & CHMOD_BITS),
        };
        let named = (classes * self.rwx) & limit;
        let copied = self
            .copy_from
            .map_or(0, |from| (classes * rwx_of(mode, from)) & limit);
        let mut added = named | self.special;
        if self.x_only_if_executable && !x_allowed {
            added &= !EXEC_BITS;
        }
        match self.op {
            Op::Add => mode | added | copied,
            Op::Remove => mode & !(named | self.special | copied),
            Op::Assign => (mode & !self.cleared_by_assign(classes)) | added | copied,
        }
    }

    /// What `=` clears before setting: the classes' rwx, and special bits
    /// only when the item names some or copies a class (so `u=rw` keeps
    /// setuid but `u=rws` and `u=g` reset it). With `s` or `t`, only the
    /// bits of classes named by letter go: `=s` and `o=t` clear none.
    fn cleared_by_assign(&self, classes: u32) -> u32 {
        let mut cleared = classes * 0o7;
        if self.special != 0 {
            cleared |= special_bits_owned_by(self.who.unwrap_or(0));
        }
        if self.copy_from.is_some() {
            cleared |= special_bits_copied_over(classes);
        }
        cleared
    }
}

/// The 0..=7 rwx value of one class of `mode`.
fn rwx_of(mode: u32, class: u32) -> u32 {
    let shift = match class {
        USER => 6,
        GROUP => 3,
        _ => 0,
    };
    (mode >> shift) & 0o7
}

/// The special bit each class owns for `s` and for `=` (rsync's topbits):
/// setuid for u, setgid for g, none for o.
fn special_bits_owned_by(classes: u32) -> u32 {
    let mut bits = 0;
    if classes & USER != 0 {
        bits |= SETUID;
    }
    if classes & GROUP != 0 {
        bits |= SETGID;
    }
    bits
}

/// The special bits a copying `=` clears (mode_dest_special_bits): here
/// "other" owns the sticky bit, unlike for `s`.
fn special_bits_copied_over(classes: u32) -> u32 {
    let mut bits = special_bits_owned_by(classes);
    if classes & OTHER != 0 {
        bits |= STICKY;
    }
    bits
}

/// Parses one comma-separated item; the error says what is wrong with it.
fn parse_item(item: &str) -> Result<Rule, String> {
    parse_item_letters(item).map_err(|why| format!("in {item:?}, {why}"))
}

/// Reads the part before the operator letter by letter, as rsync does: D/F
/// and u/g/o/a in any order (`uD+w` is accepted), then either an operator
/// or, if no class was named, the digits of an octal mode.
fn parse_item_letters(item: &str) -> Result<Rule, String> {
    let mut scope = Scope::All;
    let mut who = 0;
    for (at, c) in item.char_indices() {
        match c {
            'D' | 'F' => scope = scope.narrowed(c)?,
            'u' => who |= USER,
            'g' => who |= GROUP,
            'o' => who |= OTHER,
            'a' => who |= ALL_CLASSES,
            '+' | '-' | '=' => {
                let who = (who != 0).then_some(who);
                let change = parse_symbolic(who, c, &item[at + 1..])?;
                return Ok(Rule {
                    scope,
                    change: Change::Symbolic(change),
                });
            }
            '0'..='9' if who == 0 => {
                let mode = parse_octal(&item[at..])?;
                return Ok(Rule {
                    scope,
                    change: Change::Set(mode),
                });
            }
            '0'..='9' => return Err("an octal mode takes no u, g, o or a".into()),
            _ => return Err(format!("{c:?} is not D, F, u, g, o, a or an operator")),
        }
    }
    Err("no operator (+, - or =) and no octal mode".into())
}

/// `NNNN`: at most 0o7777, any number of leading zeros.
fn parse_octal(digits: &str) -> Result<u32, String> {
    let mut mode: u32 = 0;
    for c in digits.chars() {
        let digit = c
            .to_digit(8)
            .ok_or_else(|| format!("{c:?} is not an octal digit"))?;
        mode = mode * 8 + digit;
        if mode > CHMOD_BITS {
            return Err("an octal mode is at most 7777".into());
        }
    }
    Ok(mode)
}

/// The part after the operator: permission letters or one class to copy.
fn parse_symbolic(who: Option<u32>, operator: char, perms: &str) -> Result<Symbolic, String> {
    let op = match operator {
        '+' => Op::Add,
        '-' => Op::Remove,
        _ => Op::Assign,
    };
    let mut symbolic = Symbolic {
        who,
        op,
        rwx: 0,
        special: 0,
        x_only_if_executable: false,
        copy_from: None,
    };
    for c in perms.chars() {
        symbolic.add_perm_letter(c)?;
    }
    Ok(symbolic)
}

impl Symbolic {
    fn add_perm_letter(&mut self, c: char) -> Result<(), String> {
        if self.copy_from.is_some() {
            return Err("a copied class (u, g or o) stands alone after the operator".into());
        }
        match c {
            'r' => self.rwx |= 0o4,
            'w' => self.rwx |= 0o2,
            'x' => self.rwx |= 0o1,
            'X' => {
                self.rwx |= 0o1;
                self.x_only_if_executable = true;
            }
            's' => self.special = self.with_s(),
            't' => self.special |= STICKY,
            'u' | 'g' | 'o' => self.copy_class(c)?,
            '+' | '-' | '=' => return Err("one operator per item; use commas".into()),
            _ => return Err(format!("{c:?} is not r, w, x, X, s, t, u, g or o")),
        }
        Ok(())
    }

    /// `s` sets the special bits of the named classes; with no class that
    /// owns one (none named, or only o) rsync sets setuid and also forgets
    /// an earlier `t` of the item (`+ts` gives 4000, `+st` 5000).
    fn with_s(&self) -> u32 {
        let owned = special_bits_owned_by(self.who.unwrap_or(0));
        if owned == 0 {
            SETUID
        } else {
            self.special | owned
        }
    }

    fn copy_class(&mut self, c: char) -> Result<(), String> {
        if self.rwx != 0 || self.special != 0 {
            return Err("a copied class (u, g or o) stands alone after the operator".into());
        }
        self.copy_from = Some(match c {
            'u' => USER,
            'g' => GROUP,
            _ => OTHER,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case was checked against rsync 3.5.0 (root, source made with
    /// `chmod 0MODE`, then `umask UMASK; rsync -rp --chmod=SPEC src/ dst/`
    /// and `stat -c %a`): (spec, source mode, is_dir, umask, result).
    const CHMOD_CASES: &[(&str, u32, bool, u32, u32)] = &[
        ("u+x", 0o644, false, 0o022, 0o744),
        // Without u/g/o/a the umask limits the item, as in chmod(1).
        ("+x", 0o600, false, 0o027, 0o710),
        ("+x", 0o600, false, 0o022, 0o711),
        ("a+x", 0o600, false, 0o027, 0o711),
        ("ugo+x", 0o600, false, 0o027, 0o711),
        ("go-w", 0o666, false, 0o022, 0o644),
        ("o=", 0o777, false, 0o022, 0o770),
        ("=r", 0o777, false, 0o022, 0o444),
        ("=rw", 0o4755, false, 0o022, 0o4644),
        ("=rwx", 0o000, false, 0o077, 0o700),
        ("-x", 0o777, false, 0o011, 0o677),
        ("u=rw", 0o4755, false, 0o022, 0o4655),
        ("u=rws", 0o755, false, 0o022, 0o4655),
        ("u+s", 0o755, false, 0o022, 0o4755),
        ("g+s", 0o755, false, 0o022, 0o2755),
        ("o+s", 0o755, false, 0o022, 0o4755),
        ("a+s", 0o755, false, 0o022, 0o6755),
        ("+s", 0o755, false, 0o022, 0o4755),
        ("ug+s", 0o755, false, 0o022, 0o6755),
        ("+t", 0o755, true, 0o022, 0o1755),
        ("o+t", 0o755, true, 0o022, 0o1755),
        ("u+t", 0o755, true, 0o022, 0o1755),
        ("+ts", 0o755, true, 0o022, 0o4755),
        ("+st", 0o755, true, 0o022, 0o5755),
        ("-s", 0o6755, false, 0o022, 0o2755),
        ("a-s", 0o6755, false, 0o022, 0o755),
        ("g-s", 0o6755, false, 0o022, 0o4755),
        ("g=s", 0o775, false, 0o022, 0o2705),
        ("=s", 0o2775, false, 0o000, 0o6000),
        ("=trX", 0o2775, true, 0o002, 0o3555),
        ("u=t", 0o4755, true, 0o022, 0o1055),
        ("+X", 0o644, false, 0o022, 0o644),
        ("+X", 0o744, false, 0o022, 0o755),
        ("+X", 0o600, true, 0o022, 0o711),
        ("a+X", 0o644, true, 0o022, 0o755),
        // X looks at the mode before the first rule, not after `u+x`.
        ("u+x,g+X", 0o644, false, 0o022, 0o744),
        ("u+xX", 0o644, false, 0o022, 0o644),
        ("a=rX", 0o755, false, 0o022, 0o555),
        ("a=rX", 0o644, false, 0o022, 0o444),
        ("a=rX", 0o600, true, 0o022, 0o555),
        ("-X", 0o755, false, 0o022, 0o644),
        ("D755", 0o700, true, 0o022, 0o755),
        ("D755", 0o600, false, 0o022, 0o600),
        ("F644", 0o755, false, 0o022, 0o644),
        ("F644", 0o700, true, 0o022, 0o700),
        ("Dg+s,Fu-x", 0o755, true, 0o022, 0o2755),
        ("Dg+s,Fu-x", 0o755, false, 0o022, 0o655),
        ("uD+w", 0o555, true, 0o022, 0o755),
        ("Du+w", 0o555, false, 0o022, 0o555),
        ("DD+x", 0o600, true, 0o022, 0o711),
        ("uDg+w", 0o755, true, 0o022, 0o775),
        ("uDg+w", 0o755, false, 0o022, 0o755),
        ("F0640", 0o755, false, 0o022, 0o640),
        ("F=", 0o755, false, 0o022, 0o000),
        ("755", 0o4777, false, 0o022, 0o755),
        ("4755", 0o600, false, 0o022, 0o4755),
        ("07777", 0o000, false, 0o022, 0o7777),
        ("0", 0o777, false, 0o022, 0o000),
        ("0000000644", 0o777, false, 0o022, 0o644),
        ("u=g", 0o750, false, 0o022, 0o550),
        ("u=g", 0o4750, false, 0o022, 0o550),
        ("o+u", 0o700, false, 0o022, 0o707),
        ("g-o", 0o777, false, 0o022, 0o707),
        ("=u", 0o4700, false, 0o022, 0o755),
        ("+u", 0o700, false, 0o022, 0o755),
        ("-u", 0o777, false, 0o022, 0o022),
        ("o=u", 0o1755, true, 0o022, 0o757),
        ("u+", 0o644, false, 0o022, 0o644),
        ("+", 0o644, false, 0o022, 0o644),
        ("u=", 0o744, false, 0o022, 0o044),
        ("a+rwx,o-rwx", 0o000, false, 0o022, 0o770),
        ("u=rwx,go=rx,Fa-x", 0o000, false, 0o022, 0o644),
        ("u=rwx,go=rx,Fa-x", 0o000, true, 0o022, 0o755),
    ];

    /// Values rsync 3.5.0 rejects with "Invalid argument passed to --chmod".
    const REJECTED: &[&str] = &[
        "Fq+x", "", "u+x,", ",u+x", "u+x,,g+x", "u+w-x", "u+x+w", "DF+x", "FD+x", "+D", "D", "u",
        "ux", "8", "0758", "u755", "D1755x", "17777", "755+x", "u=gr", "u=rg", "u=gu", "u=gs",
        "U+x", "u+S", "u +x", "7D55", "uD7", "a+ta",
    ];

    #[test]
    fn chmod_matches_rsync() {
        for &(spec, mode, is_dir, umask, expected) in CHMOD_CASES {
            let mut chmod = Chmod::default();
            chmod.add(spec).expect(spec);
            let got = chmod.apply(mode, is_dir, umask);
            assert_eq!(
                got, expected,
                "--chmod={spec} on {mode:o} (dir: {is_dir}, umask {umask:o}): got {got:o}"
            );
        }
    }

    #[test]
    fn chmod_rejects_what_rsync_rejects() {
        for spec in REJECTED {
            let mut chmod = Chmod::default();
            let err = chmod.add(spec).expect_err(spec);
            assert!(err.starts_with(&format!("--chmod={spec}: ")), "{err}");
            assert!(chmod.is_empty(), "--chmod={spec} left rules behind");
        }
    }

    #[test]
    fn error_names_the_item() {
        let err = Chmod::default().add("u+x,Fq+x").expect_err("q");
        assert!(err.contains("\"Fq+x\"") && err.contains("'q'"), "{err}");
    }

    #[test]
    fn several_options_accumulate_in_order() {
        // rsync -rp --chmod=a=rwx --chmod=go-w,o-x on a 600 file gives 754.
        let mut chmod = Chmod::default();
        assert!(chmod.is_empty());
        chmod.add("a=rwx").expect("first");
        chmod.add("go-w,o-x").expect("second");
        assert_eq!(chmod.apply(0o600, false, 0o022), 0o754);
    }

    #[test]
    fn a_bad_value_adds_nothing() {
        let mut chmod = Chmod::default();
        chmod.add("u+x").expect("good");
        let before = chmod.clone();
        chmod.add("g+w,bad").expect_err("bad");
        assert_eq!(chmod, before);
    }

    #[test]
    fn apply_ignores_file_type_bits() {
        let mut chmod = Chmod::default();
        chmod.add("go=").expect("spec");
        assert_eq!(chmod.apply(0o100644, false, 0o022), 0o600);
    }

    /// (source mode, destination mode if present, is_file, -p, -E, umask,
    /// result).
    type DestCase = (u32, Option<u32>, bool, bool, bool, u32, u32);

    /// Checked against rsync 3.5.0 (`umask UMASK; rsync -r [OPTS] src/ dst/`,
    /// an existing destination file with other content).
    const DEST_CASES: &[DestCase] = &[
        // New entries: source rwx within the umask, no special bits.
        (0o4755, None, true, false, false, 0o022, 0o755),
        (0o644, None, true, false, false, 0o022, 0o644),
        (0o777, None, true, false, false, 0o027, 0o750),
        (0o6777, None, true, false, false, 0o000, 0o777),
        (0o1777, None, false, false, false, 0o022, 0o755),
        (0o700, None, false, false, false, 0o022, 0o700),
        (0o4755, None, true, false, true, 0o022, 0o755),
        // Existing entries keep their own mode, special bits included.
        (0o755, Some(0o600), true, false, false, 0o022, 0o600),
        (0o4755, Some(0o600), true, false, false, 0o022, 0o600),
        (0o644, Some(0o4711), true, false, false, 0o022, 0o4711),
        (0o755, Some(0o1700), false, false, false, 0o022, 0o1700),
        // -E: x follows the source, for readers, unless already executable.
        (0o755, Some(0o600), true, false, true, 0o022, 0o700),
        (0o755, Some(0o640), true, false, true, 0o022, 0o750),
        (0o755, Some(0o711), true, false, true, 0o022, 0o711),
        (0o755, Some(0o604), true, false, true, 0o022, 0o705),
        (0o755, Some(0o000), true, false, true, 0o022, 0o000),
        (0o644, Some(0o755), true, false, true, 0o022, 0o644),
        (0o644, Some(0o4755), true, false, true, 0o022, 0o4644),
        (0o600, Some(0o600), true, false, true, 0o022, 0o600),
        (0o644, Some(0o640), true, false, true, 0o022, 0o640),
        // -E leaves directories alone.
        (0o755, Some(0o700), false, false, true, 0o022, 0o700),
        (0o644, Some(0o711), false, false, true, 0o022, 0o711),
        // -p: the source's mode, whatever was there.
        (0o4755, None, true, true, false, 0o022, 0o4755),
        (0o4755, Some(0o600), true, true, false, 0o022, 0o4755),
        (0o600, Some(0o755), true, true, true, 0o022, 0o600),
        (0o1777, Some(0o700), false, true, false, 0o022, 0o1777),
    ];

    #[test]
    fn dest_mode_matches_rsync() {
        for &(src, existing, is_file, perms, executability, umask, expected) in DEST_CASES {
            let got = dest_mode(src, existing, is_file, perms, executability, umask);
            assert_eq!(
                got,
                expected,
                "src {src:o}, existing {:?}, file {is_file}, -p {perms}, \
                 -E {executability}, umask {umask:o}: got {got:o}",
                existing.map(|mode| format!("{mode:o}"))
            );
        }
    }
}
