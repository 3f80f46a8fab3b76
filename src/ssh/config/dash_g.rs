//! Compares ferry's resolution with OpenSSH's own: `ssh -G -F FILE ALIAS`
//! prints the settings ssh would use, so a table of configs, each read by
//! both, shows where they part. Without ssh installed the comparison is
//! skipped, except under CI=true, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// `ssh -G` output, in order (`identityfile` comes once per file).
pub(super) type DashG = Vec<(String, String)>;

/// What `ssh -G -F config args alias` prints, with `HOME` set to `home`
/// when given (ssh finds relative `Include`s under `$HOME/.ssh`). `None`
/// when ssh cannot be run, which fails instead under CI=true.
pub(super) fn dash_g(
    config: &Path,
    alias: &str,
    args: &[&str],
    home: Option<&Path>,
) -> Option<DashG> {
    let mut command = Command::new("ssh");
    command
        .arg("-G")
        .arg("-F")
        .arg(config)
        .args(args)
        .arg(alias);
    if let Some(home) = home {
        command.env("HOME", home);
    }
    let out = match command.output() {
        Ok(out) => out,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but ssh cannot be run ({e}): install openssh-client; \
             the comparison with ssh -G is never skipped under CI"
        ),
        Err(_) => return None,
    };
    assert!(
        out.status.success(),
        "ssh -G {alias} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pairs = text.lines().filter_map(|l| l.split_once(' '));
    Some(pairs.map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// The first value of `key` in `ssh -G` output.
pub(super) fn get<'a>(out: &'a DashG, key: &str) -> Option<&'a str> {
    out.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn all<'a>(out: &'a DashG, key: &str) -> Vec<&'a str> {
    out.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// One config, and the aliases (with ssh arguments) to resolve through it.
struct Case {
    /// What the case is about, for failure messages.
    name: &'static str,
    /// The config file. `{home}` stands for the case's home directory and
    /// `{user}` for the login name, here and in `files`.
    config: &'static str,
    /// Further files, by path under the home directory.
    files: &'static [(&'static str, &'static str)],
    /// Host aliases, each with the ssh arguments to resolve it with.
    runs: &'static [(&'static str, &'static [&'static str])],
}

const NONE: &[&str] = &[];

const CASES: &[Case] = &[
    Case {
        name: "wildcards, ?, negation, first value wins within and across blocks",
        config: "Host web?? !web99\n  HostName %h.Example.com\n  User deploy\n  User other\n\
                 Host *\n  Port 2200\n  User late\n  UserKnownHostsFile /tmp/kh1 /tmp/kh2\n  \
                 StrictHostKeyChecking accept-new\n  StrictHostKeyChecking no\n",
        files: &[],
        runs: &[
            ("web01", NONE),
            ("WEB01", NONE),
            ("web99", NONE),
            ("web1", NONE),
        ],
    },
    Case {
        name: "pattern lists: several patterns, a negation anywhere in the list",
        config: "Host *.prod !bad* db?\n  User prod\n  Port 1001\nHost a,b\n  Port 1002\n\
                 Host *\n  User fallback\n",
        files: &[],
        runs: &[
            ("api.prod", NONE),
            ("bad.prod", NONE),
            ("xbad.prod", NONE),
            ("db1", NONE),
            ("db12", NONE),
            ("a", NONE),
        ],
    },
    Case {
        name: "= syntax, keyword case, quotes, comments, blank lines",
        config: "# leading comment\n\nHOST=q\n  port=2201\n  USER = jane\n\n  \
                 IdentityFile \"/keys/with space\"\n  \
                 UserKnownHostsFile \"/kh/a b\" /kh/c # the rest is a comment\n  \
                 hostname real.example # trailing comment\n  StrictHostKeyChecking=yes\n  \
                 BatchMode yes\n  IdentitiesOnly=yes\n  Compression =yes\n  \
                 IdentityFile /keys/hash#kept\n",
        files: &[],
        runs: &[("q", NONE), ("Q", NONE)],
    },
    Case {
        name: "tokens in HostName, UserKnownHostsFile and IdentityFile",
        config: "Host tok\n  HostName %h.Example.org\n  User bob\n  Port 2022\n  \
                 UserKnownHostsFile ~/.ssh/kh_%h_%p_%r %d/kh_%u %n.%k %C %i %l %L 100%%\n  \
                 IdentityFile ~/.ssh/id_%h_%r\n  IdentityFile %d/keys/%n\n",
        files: &[],
        runs: &[("tok", NONE), ("tok", &["-l", "carol", "-p", "2"])],
    },
    Case {
        name: "IdentityFile accumulates, once per file, -o lines first",
        config: "Port 1000\nHost ids\n  IdentityFile /k/one\n  IdentityFile /k/two\n  \
                 Port 2022\n  StrictHostKeyChecking yes\nHost *\n  IdentityFile /k/three\n  \
                 IdentityFile /k/one\n",
        files: &[],
        runs: &[
            ("ids", NONE),
            ("other", NONE),
            (
                "ids",
                &[
                    "-o",
                    "Port=3033",
                    "-o",
                    "IdentityFile=/k/opt",
                    "-o",
                    "StrictHostKeyChecking no",
                ],
            ),
        ],
    },
    Case {
        name: "Include: relative glob in order, absolute inside a Host block",
        config: "Include conf.d/*.conf\nHost x\n  User outer\n  Port 3003\n\
                 Host web\n  Include {home}/web.conf\n  User webuser\nHost *\n  Port 9\n",
        files: &[
            (".ssh/conf.d/20-b.conf", "Host x\n  Port 2002\n  User b\n"),
            (".ssh/conf.d/10-a.conf", "Host x\n  Port 1001\n"),
            (".ssh/conf.d/30-c.txt", "Host x\n  Port 7\n"),
            (
                "web.conf",
                "Port 2222\nIdentityFile /k/web\nHost other\n  User fromother\n",
            ),
        ],
        runs: &[("x", NONE), ("web", NONE), ("other", NONE)],
    },
    Case {
        name:
            "Include: nested, its blocks end with the file, nothing applies under an inactive block",
        config: "Host a\n  Port 1111\n  Include inc/one.conf\n  User after\n  \
                 IdentityFile /k/after\nHost *\n  ConnectTimeout 1m30s\n",
        files: &[
            (
                ".ssh/inc/one.conf",
                "User inner\nHost *\n  IdentityFile /k/star\n  Include two.conf\n\
                 Host nomatch\n  BatchMode yes\n",
            ),
            (
                ".ssh/two.conf",
                "Host a\n  ServerAliveInterval 30\n  IdentitiesOnly yes\n",
            ),
        ],
        runs: &[("a", NONE), ("b", NONE)],
    },
    Case {
        name: "Match all, host, originalhost, user, localuser, negation, unsupported",
        config: "Host h1\n  HostName %h.Real.example\nMatch host *.REAL.example\n  Port 2001\n\
                 Match originalhost H1,other\n  User matched\nMatch user matched\n  \
                 IdentitiesOnly yes\nMatch !user matched\n  BatchMode yes\n\
                 Match localuser {user} originalhost !zz*,*\n  Compression yes\n\
                 Match exec false\n  Port 9999\nMatch all\n  ConnectTimeout 7\n  Port 22\n",
        files: &[],
        runs: &[
            ("h1", NONE),
            ("H1", NONE),
            ("other", NONE),
            ("zzz", NONE),
            ("h1", &["-l", "cli"]),
        ],
    },
    Case {
        name: "ProxyJump and ProxyCommand: the first of the two wins, -J beats both",
        config: "Host target\n  ProxyJump hopuser@hop1:2201,hop2\n\
                 Host pcnone\n  ProxyCommand none\n  ProxyJump hop1\n\
                 Host jnone\n  ProxyJump none\n  ProxyJump hop1\n\
                 Host hop1\n  Port 1111\nHost hop2\n  Port 2222\n",
        files: &[],
        runs: &[
            ("target", NONE),
            ("target", &["-J", "a,b"]),
            ("pcnone", NONE),
            ("jnone", NONE),
            ("plain", NONE),
        ],
    },
    Case {
        name: "known_hosts none and several files, AddressFamily, counts, times",
        config: "Host kh\n  UserKnownHostsFile none\n  GlobalKnownHostsFile /g/one /g/two\n  \
                 AddressFamily inet6\n  ServerAliveCountMax 7\n  ServerAliveInterval 15\n\
                 Host *\n  ConnectTimeout 45\n  AddressFamily inet\n",
        files: &[],
        runs: &[("kh", NONE), ("other", NONE)],
    },
];

/// A case's files written out: the config, and the home directory.
struct Written {
    _dir: tempfile::TempDir,
    config: PathBuf,
    home: PathBuf,
}

fn write_case(case: &Case, user: &str) -> Written {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let fill = |text: &str| {
        text.replace("{home}", &home.display().to_string())
            .replace("{user}", user)
    };
    let config = dir.path().join("config");
    write_file(&config, &fill(case.config));
    for (rel, text) in case.files {
        write_file(&home.join(rel), &fill(text));
    }
    Written {
        _dir: dir,
        config,
        home,
    }
}

fn write_file(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

/// The command-line arguments of a run, as ferry takes them.
fn overrides(args: &[&str]) -> Overrides {
    let mut given = Overrides::default();
    for pair in args.chunks(2) {
        match pair {
            ["-l", user] => given.user = Some(user.to_string()),
            ["-p", port] => given.port = port.parse().ok(),
            ["-o", option] => given.options.push(option.to_string()),
            ["-J", jump] => given.proxy_jump = Some(jump.to_string()),
            other => panic!("the table uses an ssh argument this test cannot pass on: {other:?}"),
        }
    }
    given
}

/// ferry's settings in `ssh -G`'s words, for the keys compared. Paths
/// under the case's home are shown under the passwd home directory, where
/// ssh expands `~` and `%d`.
fn ours(cfg: &HostConfig, home: &Path, pw_home: &Path) -> Vec<(&'static str, String)> {
    let files = |list: &[PathBuf]| match list {
        [] => "none".to_string(),
        list => shown(list, home, pw_home).join(" "),
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let seconds = |d: Option<Duration>| d.map_or("none".into(), |d| d.as_secs().to_string());
    vec![
        ("hostname", cfg.host_name.clone()),
        ("port", cfg.port.to_string()),
        ("user", cfg.user.clone()),
        ("userknownhostsfile", files(&cfg.user_known_hosts_files)),
        ("globalknownhostsfile", files(&cfg.global_known_hosts_files)),
        (
            "stricthostkeychecking",
            strict_word(cfg.strict_host_key_checking).into(),
        ),
        ("identitiesonly", yes_no(cfg.identities_only)),
        ("batchmode", yes_no(cfg.batch_mode)),
        ("compression", yes_no(cfg.compression)),
        ("addressfamily", family_word(cfg.address_family).into()),
        ("connecttimeout", seconds(cfg.connect_timeout)),
        ("serveraliveinterval", alive_interval(cfg)),
        (
            "serveralivecountmax",
            cfg.server_alive_count_max.to_string(),
        ),
        ("proxyjump", jump_aliases(cfg)),
    ]
}

/// A known difference, left alone: with BatchMode and no
/// ServerAliveInterval, ssh sends keepalives every 300 seconds; ferry
/// leaves the setting unset, and its connection then sends them at a third
/// of `--timeout` (see `ssh::keepalive_interval`), batch mode or not.
fn alive_interval(cfg: &HostConfig) -> String {
    match cfg.server_alive_interval {
        Some(d) => d.as_secs().to_string(),
        None if cfg.batch_mode => "300".to_string(),
        None => "0".to_string(),
    }
}

fn strict_word(strict: StrictHostKeyChecking) -> &'static str {
    match strict {
        StrictHostKeyChecking::Yes => "true",
        StrictHostKeyChecking::No => "false",
        StrictHostKeyChecking::Ask => "ask",
        StrictHostKeyChecking::AcceptNew => "accept-new",
    }
}

fn family_word(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Any => "any",
        AddressFamily::Inet => "inet",
        AddressFamily::Inet6 => "inet6",
    }
}

fn jump_aliases(cfg: &HostConfig) -> String {
    let aliases: Vec<&str> = cfg.jump_hosts.iter().map(|h| h.alias.as_str()).collect();
    aliases.join(",")
}

/// ssh's ProxyJump list as the host names in it (`user@` and `:port` dropped).
fn their_jumps(value: Option<&str>) -> String {
    let Some(value) = value.filter(|v| !v.eq_ignore_ascii_case("none")) else {
        return String::new();
    };
    let hosts: Vec<&str> = value
        .split(',')
        .map(|h| {
            let host = h.rsplit('@').next().unwrap_or(h);
            host.split(':').next().unwrap_or(host)
        })
        .collect();
    hosts.join(",")
}

/// The raw IdentityFile values ferry keeps for a run, each once (ssh 9.2
/// prints them unexpanded).
fn raw_identities(w: &Written, local: &Local, alias: &str, given: &Overrides) -> Vec<String> {
    let target = Target {
        alias,
        user: given.user.as_deref(),
        local_user: &local.user,
    };
    let options = option_lines(&given.options).expect("-o lines");
    let loaded = load(Some(&w.config), local, &target, options).expect("load");
    let mut raw: Vec<String> = Vec::new();
    for value in identity_lines(&loaded.params) {
        if !raw.contains(&value) {
            raw.push(value);
        }
    }
    raw
}

fn compare_identities(label: &str, theirs: &[&str], raw: &[String], expanded: &[String]) {
    if raw.is_empty() {
        // ssh lists its default keys; ferry's empty list means the same.
        assert!(
            theirs.iter().all(|f| f.starts_with("~/.ssh/id_")),
            "{label}: identityfile {theirs:?}"
        );
        return;
    }
    // Newer ssh prints the files expanded, 9.2 as written.
    let same = |ours: &[String]| ours.iter().map(String::as_str).eq(theirs.iter().copied());
    assert!(
        same(raw) || same(expanded),
        "{label}: identityfile: ssh {theirs:?}, ferry {raw:?} / {expanded:?}"
    );
}

fn run_case(case: &Case, user: &str, pw_home: &Path) -> bool {
    let w = write_case(case, user);
    let local = Local {
        home: w.home.clone(),
        user: user.to_string(),
    };
    for (alias, args) in case.runs {
        let label = format!("{}: {alias} {args:?}", case.name);
        let Some(theirs) = dash_g(&w.config, alias, args, Some(&w.home)) else {
            return false;
        };
        let given = overrides(args);
        let cfg = resolve_in(alias, Some(&w.config), &given, &local)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        for (key, value) in ours(&cfg, &w.home, pw_home) {
            let expected = match key {
                "proxyjump" => their_jumps(get(&theirs, key)),
                _ => get(&theirs, key).unwrap_or("(absent)").to_string(),
            };
            assert_eq!(value, expected, "{label}: {key}");
        }
        let raw = raw_identities(&w, &local, alias, &given);
        let expanded = shown(&cfg.identity_files, &w.home, pw_home);
        compare_identities(&label, &all(&theirs, "identityfile"), &raw, &expanded);
    }
    true
}

/// `paths` as ssh would show them: under `pw_home` instead of `home`.
fn shown(paths: &[PathBuf], home: &Path, pw_home: &Path) -> Vec<String> {
    paths
        .iter()
        .map(|p| match p.strip_prefix(home) {
            Ok(rest) => pw_home.join(rest).display().to_string(),
            Err(_) => p.display().to_string(),
        })
        .collect()
}

/// Every case of [`CASES`] resolves as `ssh -G` resolves it.
#[test]
fn agrees_with_ssh_dash_g() {
    let user = local_user().expect("login name");
    // ssh expands `~` and `%d` with the passwd entry, not $HOME.
    let pw_home = passwd_entry().expect("passwd entry").1;
    for case in CASES {
        if !run_case(case, &user, &pw_home) {
            return; // ssh is not installed (and this is not CI)
        }
    }
}
