//! rsync's `-e`/`--rsh` command, read as settings.
//!
//! ferry connects by itself and never runs ssh, so an `-e 'ssh -p 2222 -i
//! key'` is not executed: its words are split as a shell would, and ssh's
//! options are read into the same [`Overrides`] the command line fills.
//! Options that cannot change what ferry does (quiet, no terminal, no X11,
//! no agent forwarding, ...) are accepted and ignored; options that ask for
//! something ferry cannot do (forwarding, a cipher list, verbose ssh logs,
//! ...) are refused, naming the flag, rather than silently dropped.
//!
//! | flags | effect |
//! |---|---|
//! | `-p PORT` `-l USER` `-i FILE` `-F FILE` `-J HOSTS` `-C` `-o OPTION` | as in ssh (`-o` as in [`super::options`]) |
//! | `-4` `-6` | `AddressFamily inet` / `inet6` |
//! | `-q` `-T` `-t` `-x` `-a` `-k` `-n` `-g` `-M` `-y`, `-E FILE` `-e CHAR` `-S PATH` | accepted, no effect |
//! | everything else (`-L` `-R` `-D` `-W` `-w` `-A` `-X` `-Y` `-v` `-c` `-m` `-b` `-B` `-I` `-K` `-N` `-f` `-s` `-O` `-Q` `-G` `-V` ...) | refused |

use std::path::{Path, PathBuf};

use super::config::{home_dir, ConfigError, Overrides};
use super::options::{self, Verdict};

/// What an `-e`/`--rsh` command asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rsh {
    /// `-F FILE`: the ssh config to read instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// Everything else, as ssh's command line would set it.
    pub overrides: Overrides,
}

/// ssh flags that take an argument (OpenSSH 9's getopt string).
const WITH_ARGUMENT: &str = "BbcDEeFIiJLlmOoPpQRSWw";
/// Flags accepted and ignored: they only shape ssh's own session.
const IGNORED: &str = "qTtxaknMgy";
/// Ignored flags that take an argument (log file, escape char, control path).
const IGNORED_WITH_ARGUMENT: &str = "EeS";

/// Reads an rsync `-e`/`--rsh` command such as
/// `ssh -p 2222 -i ~/.ssh/k -l deploy -o StrictHostKeyChecking=yes -F cfg -J bastion -C`.
pub(crate) fn parse_rsh(command: &str) -> Result<Rsh, ConfigError> {
    let error = |reason: String| ConfigError::Rsh {
        command: command.to_string(),
        reason,
    };
    let words = split_words(command).map_err(&error)?;
    let Some((program, args)) = words.split_first() else {
        return Err(error(
            "it is empty; give an ssh command line such as 'ssh -p 2222'".into(),
        ));
    };
    if program != "ssh" && !program.ends_with("/ssh") {
        return Err(error(format!(
            "ferry connects by itself and can only read ssh's arguments, not run {program:?}; \
             use 'ssh OPTIONS...' (a ProxyCommand-style wrapper is not supported)"
        )));
    }
    let home = home_dir();
    let mut reader = Reader {
        rsh: Rsh::default(),
        home: home.as_deref(),
    };
    for (flag, value) in flags(args).map_err(&error)? {
        reader.apply(flag, value).map_err(|e| match e {
            Refusal::Rsh(reason) => error(reason),
            Refusal::Option(e) => e,
        })?;
    }
    Ok(reader.rsh)
}

/// Why a flag was refused.
enum Refusal {
    Rsh(String),
    /// A `-o` option ferry refuses, with its own message.
    Option(ConfigError),
}

struct Reader<'a> {
    rsh: Rsh,
    home: Option<&'a Path>,
}

impl Reader<'_> {
    fn apply(&mut self, flag: char, value: Option<String>) -> Result<(), Refusal> {
        let overrides = &mut self.rsh.overrides;
        let value_or_empty = value.clone().unwrap_or_default();
        match flag {
            'p' => overrides.port = Some(parse_port(&value_or_empty)?),
            'l' => overrides.user = Some(value_or_empty),
            'i' => self.identity(&value_or_empty),
            'F' => self.rsh.config_file = Some(self.expand(&value_or_empty)),
            'J' if overrides.proxy_jump.is_some() => {
                return Err(Refusal::Rsh("only one -J is allowed, as in ssh".into()))
            }
            'J' => overrides.proxy_jump = Some(value_or_empty),
            'C' => overrides.compression = true,
            'o' => self.option(&value_or_empty)?,
            '4' => overrides.options.push("AddressFamily inet".into()),
            '6' => overrides.options.push("AddressFamily inet6".into()),
            f if IGNORED.contains(f) || IGNORED_WITH_ARGUMENT.contains(f) => {
                tracing::debug!("-e: ssh's -{f} has no effect on ferry, ignored")
            }
            f => return Err(Refusal::Rsh(refusal(f))),
        }
        Ok(())
    }

    /// The first `-i` is the identity override; later ones follow it as
    /// IdentityFile lines, in order, as ssh tries every `-i` given.
    fn identity(&mut self, raw: &str) {
        let path = self.expand(raw);
        let overrides = &mut self.rsh.overrides;
        if overrides.identity.is_none() {
            overrides.identity = Some(path);
        } else {
            let quoted = format!("\"{}\"", path.display());
            overrides.options.push(format!("IdentityFile {quoted}"));
        }
    }

    fn option(&mut self, option: &str) -> Result<(), Refusal> {
        match options::check(option).map_err(Refusal::Option)? {
            Verdict::Apply(_) => self.rsh.overrides.options.push(option.to_string()),
            Verdict::Ignore => {}
        }
        Ok(())
    }

    /// `~` and `~/...` are under the home directory, as the shell would
    /// have expanded them had ssh been run.
    fn expand(&self, raw: &str) -> PathBuf {
        match (raw, raw.strip_prefix("~/"), self.home) {
            ("~", _, Some(home)) => home.to_path_buf(),
            (_, Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(raw),
        }
    }
}

fn parse_port(value: &str) -> Result<u16, Refusal> {
    value
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Refusal::Rsh(format!("-p {value:?} is not a port number (1-65535)")))
}

/// Why ssh flag `-f` is refused.
fn refusal(flag: char) -> String {
    let why = match flag {
        'L' | 'R' | 'D' | 'W' | 'w' => "ferry does not forward ports or tunnels",
        'A' => "ferry does not forward the ssh-agent",
        'X' | 'Y' => "ferry does not forward X11",
        'v' => "ferry does not run ssh; use ferry's own -vv or -vvv for connection logs",
        'c' | 'm' => "ferry chooses its own algorithms and cannot be limited to a list",
        'b' | 'B' => "ferry cannot bind to a chosen local address or interface",
        'K' => "ferry does not support GSSAPI authentication",
        'I' => "ferry does not support PKCS#11 keys",
        'N' | 'f' | 's' => "ferry runs its own SFTP session and no commands",
        'O' | 'Q' | 'G' | 'V' | 'P' => "ferry does not run ssh",
        _ => "ssh has no such option, or it does not apply to ferry",
    };
    format!("ssh's -{flag} is not supported: {why}")
}

/// ssh's options in order, as getopt reads them: clusters of flags
/// (`-qC`), a value attached (`-p2222`, `-oKey=Value`) or in the next word.
/// Words after the options (a host, a command) are refused: ferry takes
/// the host from its own arguments.
fn flags(args: &[String]) -> Result<Vec<(char, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            if let Some(extra) = words.next() {
                return Err(extra_word(extra));
            }
            break;
        }
        let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
            return Err(extra_word(word));
        };
        for (at, flag) in cluster.char_indices() {
            if !WITH_ARGUMENT.contains(flag) {
                out.push((flag, None));
                continue;
            }
            let attached = &cluster[at + flag.len_utf8()..];
            let value = if attached.is_empty() {
                words
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("ssh's -{flag} needs a value"))?
            } else {
                attached.to_string()
            };
            out.push((flag, Some(value)));
            break;
        }
    }
    Ok(out)
}

fn extra_word(word: &str) -> String {
    format!(
        "{word:?} is not an ssh option; give only ssh's options in -e (the host comes from \
         ferry's own arguments, and ferry runs no remote command)"
    )
}

/// Splits `command` into words as a POSIX shell does: whitespace separates,
/// '...' is literal, "..." is literal except for `\"`, `\\`, `\$` and
/// `` \` ``, and a backslash outside quotes takes the next character
/// literally. No expansion of variables or globs happens.
fn split_words(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("a single quote (') is not closed".into()),
                    }
                }
            }
            '"' => double_quoted(&mut chars, word.get_or_insert_with(String::new))?,
            '\\' => match chars.next() {
                // A backslash before a newline joins the lines.
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => word.get_or_insert_with(String::new).push('\\'),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn double_quoted(chars: &mut std::str::Chars, out: &mut String) -> Result<(), String> {
    loop {
        match chars.next() {
            Some('"') => return Ok(()),
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                Some('\n') => {}
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => return Err("a double quote (\") is not closed".into()),
            },
            Some(c) => out.push(c),
            None => return Err("a double quote (\") is not closed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &str) -> Vec<String> {
        split_words(command).expect(command)
    }

    fn refused(command: &str) -> String {
        parse_rsh(command).expect_err(command).to_string()
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(words("  ssh  -p 22 "), ["ssh", "-p", "22"]);
        assert_eq!(
            words("ssh -i 'my key' -o \"User x\""),
            ["ssh", "-i", "my key", "-o", "User x"]
        );
        assert_eq!(
            words(r#"a\ b "q\"uote\\d" 'no\esc'"#),
            ["a b", "q\"uote\\d", "no\\esc"]
        );
        assert_eq!(words(r#"x"y"'z' '' """#), ["xyz", "", ""]);
        assert_eq!(words(r#""a\nb""#), [r"a\nb"]);
        assert!(split_words("ssh 'open").is_err());
        assert!(split_words("ssh \"open").is_err());
    }

    #[test]
    fn reads_every_supported_option() {
        let rsh = parse_rsh(
            "/usr/bin/ssh -p 2222 -i ~/.ssh/k -l deploy -o StrictHostKeyChecking=yes -F cfg \
             -J bastion -C",
        )
        .unwrap();
        let home = home_dir().expect("home");
        assert_eq!(rsh.config_file, Some(PathBuf::from("cfg")));
        let o = &rsh.overrides;
        assert_eq!(o.port, Some(2222));
        assert_eq!(o.identity, Some(home.join(".ssh/k")));
        assert_eq!(o.user.as_deref(), Some("deploy"));
        assert_eq!(o.options, ["StrictHostKeyChecking=yes"]);
        assert_eq!(o.proxy_jump.as_deref(), Some("bastion"));
        assert!(o.compression);
    }

    #[test]
    fn attached_values_clusters_and_ignored_flags() {
        let rsh =
            parse_rsh("ssh -qTx -p2222 -oUser=me -Cl admin -4 -F~/cfg -S none -e none").unwrap();
        let o = &rsh.overrides;
        assert_eq!(o.port, Some(2222));
        assert_eq!(o.user.as_deref(), Some("admin"));
        assert!(o.compression);
        assert_eq!(o.options, ["User=me", "AddressFamily inet"]);
        assert_eq!(rsh.config_file, Some(home_dir().expect("home").join("cfg")));
        // Ignored -o keywords leave nothing behind.
        assert!(parse_rsh("ssh -o LogLevel=ERROR")
            .unwrap()
            .overrides
            .options
            .is_empty());
    }

    #[test]
    fn second_identity_follows_the_first() {
        let rsh = parse_rsh("ssh -i /k/one -i '/k/two words'").unwrap();
        assert_eq!(rsh.overrides.identity, Some(PathBuf::from("/k/one")));
        assert_eq!(rsh.overrides.options, ["IdentityFile \"/k/two words\""]);
    }

    #[test]
    fn refuses_what_ferry_cannot_honour_naming_it() {
        assert!(refused("rsh -l x").contains("can only read ssh's arguments"));
        assert!(refused("").contains("empty"));
        assert!(refused("ssh -L 80:h:80").contains("-L is not supported"));
        assert!(refused("ssh -A").contains("ssh-agent"));
        assert!(refused("ssh -v").contains("-vv"));
        assert!(refused("ssh -W h:22").contains("-W"));
        assert!(refused("ssh -p").contains("-p needs a value"));
        assert!(refused("ssh -p 99999").contains("not a port"));
        assert!(refused("ssh -J a -J b").contains("only one -J"));
        assert!(refused("ssh host").contains("\"host\" is not an ssh option"));
        assert!(refused("ssh -o LocalForward=1:h:2")
            .contains("-o LocalForward=1:h:2: ferry does not support LocalForward"));
        assert!(refused("ssh -p '22").contains("not closed"));
        // Messages name the command as given.
        assert!(refused("ssh -X").contains("-e/--rsh \"ssh -X\""));
    }
}
