//! Fuzz targets for the files ferry reads: partial sidecars, lock files,
//! known_hosts, ssh config (with its Includes), filter rules and merge
//! files, filter patterns, and `--files-from` lists.

use std::fs;
use std::path::Path;

use super::{drive, mutate_text, Rng, Run};
use crate::engine::lock::Holder;
use crate::engine::partial::Sidecar;
use crate::filter::{CvsEnv, FilesFrom, Filter, FilterArg, FilterFlag, FilterOptions, ListReader};
use crate::filter::{ListFormat, Pattern};
use crate::meta::Mtime;
use crate::ssh::config::{resolve_as, Overrides};
use crate::ssh::known_hosts::{self, HostKeyStatus};

/// Text parsers keep a few copies of their input (lines, lossy text,
/// compiled rules) beside small fixed structures.
fn text_limit(len: usize) -> usize {
    16 * len + 1024 * 1024
}

fn lines(samples: &[&str]) -> Vec<Vec<u8>> {
    samples.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// A few sample lines, joined, then mutated with `tokens` among the noise.
fn text(rng: &mut Rng, samples: &[Vec<u8>], tokens: &[&str]) -> Vec<u8> {
    let mut joined = Vec::new();
    for _ in 0..=rng.below(5) {
        let line: &Vec<u8> = rng.pick(samples);
        joined.extend_from_slice(line);
        joined.push(b'\n');
    }
    mutate_text(rng, joined, samples, tokens)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- sidecars and locks ----

fn sidecar(rng: &mut Rng) -> Sidecar {
    Sidecar {
        source_size: rng.next(),
        source_mtime: Mtime {
            secs: rng.next() as i64,
            nanos: rng.chance(50).then(|| rng.next() as u32),
        },
        window: rng.next(),
    }
}

fn holder(rng: &mut Rng) -> Holder {
    let host = (0..rng.below(20))
        .map(|_| *rng.pick(b"abcdefxyz0189.-") as char)
        .collect();
    Holder {
        host,
        pid: rng.next() as u32,
        started: rng.next(),
    }
}

const RECORD_TOKENS: &[&str] = &[
    " ",
    "\n",
    "\r\n",
    "-",
    "0",
    "18446744073709551616",
    "99999999999999999999",
    "window ",
    "source_size ",
    "source_mtime_nsec ",
    "pid ",
    "host ",
    "started ",
    "\u{0}",
    "+",
];

/// Sidecars and lock files come back as they were written; mutated ones
/// read as something or nothing, never a panic.
#[test]
fn sidecars_and_locks_round_trip_and_survive_mutation() {
    drive(
        "sidecars_and_locks",
        Run::from_env(),
        |rng| {
            let written = sidecar(rng);
            let text = written.encode();
            assert_eq!(Sidecar::decode(&text), Some(written));
            let held = holder(rng);
            let lock = held.encode();
            assert_eq!(Holder::decode(&lock).as_ref(), Some(&held));
            let both = [text.into_bytes(), lock.into_bytes()];
            let seed = rng.pick(&both).clone();
            mutate_text(rng, seed, &both, RECORD_TOKENS)
        },
        |bytes| {
            let text = lossy(bytes);
            let _ = Sidecar::decode(&text);
            let _ = Holder::decode(&text);
        },
        text_limit,
    );
}

// ---- known_hosts ----

const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIH/1+AI9ACjrAsBamD51H7YzyRLE30YXpU8FPHXJEIvW";
const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIB5wQeLpvlpdRZIfOLgu/w3Cv8KRhWpea8zCUgu80OSN";
const KEY_E: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHU3HOSQvrVjh6OHj/29TRFC8GT/xkziJKbPvOYSfP4jYclyNAxCPqAyArvMbm6uv+TnfVE4BPLnvMec/b6fsMw=";

fn known_hosts_samples() -> Vec<Vec<u8>> {
    let mut samples = lines(&[
        "# a comment",
        "",
        "@revoked * ssh-ed25519 KEY_B",
        "@cert-authority *.example.com ssh-ed25519 KEY_B",
        "example.com,10.0.0.1 ssh-ed25519 KEY_A a comment",
        "[example.com]:2222 ssh-ed25519 KEY_B",
        "*.example.com,!bad.example.com ecdsa-sha2-nistp256 KEY_E",
        "h?st*,[other]:*  ssh-ed25519   KEY_A",
        "|1|notbase64|x ssh-ed25519 KEY_A",
        "|1|c2FsdA==|aGFzaGhhc2hoYXNoaGFzaGhhc2g= ssh-ed25519 KEY_A",
    ]);
    for sample in &mut samples {
        let text = lossy(sample)
            .replace("KEY_A", KEY_A)
            .replace("KEY_B", KEY_B)
            .replace("KEY_E", KEY_E);
        *sample = text.into_bytes();
    }
    samples
}

const KNOWN_HOSTS_TOKENS: &[&str] = &[
    "*",
    "?",
    "!",
    ",",
    "|1|",
    "|",
    "@revoked ",
    "@cert-authority ",
    "@",
    "[",
    "]:",
    " ",
    "\t",
    "\n",
    "ssh-ed25519 ",
    "ssh-rsa ",
    "AAAA",
    "=",
    "#",
];

/// A mutated known_hosts file never panics the check; after ferry learns
/// a key into it, that key is known (or revoked by a line of the file),
/// never unknown or changed.
#[test]
fn mutated_known_hosts_are_read_line_by_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("known_hosts");
    let samples = known_hosts_samples();
    let key = russh::keys::parse_public_key_base64(KEY_A).expect("test key");
    drive(
        "known_hosts",
        Run::from_env(),
        |rng| text(rng, &samples, KNOWN_HOSTS_TOKENS),
        |bytes| {
            fs::write(&file, bytes).expect("write known_hosts");
            let hosts = ["example.com", "host1", "10.0.0.1", "bad.example.com"];
            let host = hosts[bytes.len() % hosts.len()];
            let port = [22, 2222][bytes.len() / 4 % 2];
            let _ = known_hosts::check(std::slice::from_ref(&file), host, port, &key);
            known_hosts::learn(&file, host, port, &key).expect("learn");
            let after = known_hosts::check(std::slice::from_ref(&file), host, port, &key);
            assert!(
                matches!(after, HostKeyStatus::Known | HostKeyStatus::Revoked { .. }),
                "{host}:{port} after learning: {after:?}"
            );
        },
        text_limit,
    );
}

// ---- ssh config ----

fn ssh_config_samples() -> Vec<Vec<u8>> {
    lines(&[
        "Host example",
        "  HostName %h.example.com",
        "  Port 2222",
        "  User alice",
        "Host *.lan !bad.lan",
        "Match host example user alice",
        "Match originalhost=ex* !localuser bob",
        "Match exec \"true\"",
        "Match all",
        "  IdentityFile ~/.ssh/id_%r@%h",
        "  IdentitiesOnly yes",
        "  ProxyJump jump1,bob@jump2:2200",
        "  ProxyCommand none",
        "  ConnectTimeout 1m30s",
        "  ServerAliveInterval 15",
        "  ServerAliveCountMax 4",
        "  StrictHostKeyChecking accept-new",
        "  UserKnownHostsFile ~/.ssh/kh \"/tmp/a b\"",
        "  GlobalKnownHostsFile none",
        "  AddressFamily inet6",
        "  Compression=yes",
        "  BatchMode = no",
        "  IdentityAgent SSH_AUTH_SOCK",
        "  SendEnv LANG LC_*",
        "Host jump1",
        "  ProxyJump example",
        "Include extra.conf",
        "Include conf.d/*.conf",
        "# comment",
        "Port 'quoted \\' arg'",
    ])
}

const SSH_CONFIG_TOKENS: &[&str] = &[
    " ",
    "=",
    "\"",
    "'",
    "\\",
    "#",
    "%h",
    "%%",
    "%",
    "!",
    "*",
    "?",
    ",",
    "\n",
    "\t",
    "Host ",
    "Match ",
    "ProxyJump ",
    "Port ",
    "Include ",
    "none",
    "~",
    "@",
    ":",
    "[",
    "]",
];

/// An `Include` of a fuzzed file may name only files in the test's own
/// directory: no absolute path, no `..`.
fn confined_includes(text: &str) -> String {
    text.lines()
        .map(|line| match line.to_ascii_lowercase().contains("include") {
            true => line.replace('/', "_").replace("..", "_"),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A mutated ssh config (with a mutated included file beside it) resolves
/// or is an error naming the line, never a panic or a runaway.
#[test]
fn mutated_ssh_configs_resolve_or_fail_cleanly() {
    let home = tempfile::tempdir().expect("temp dir");
    let ssh_dir = home.path().join(".ssh");
    fs::create_dir_all(ssh_dir.join("conf.d")).expect("ssh dir");
    let config = ssh_dir.join("config");
    let samples = ssh_config_samples();
    drive(
        "ssh_config",
        Run::from_env(),
        |rng| {
            let main = text(rng, &samples, SSH_CONFIG_TOKENS);
            let extra = text(rng, &samples, SSH_CONFIG_TOKENS);
            // The included file, then a NUL, then the main file.
            [extra, vec![0], main].concat()
        },
        |bytes| {
            let split = bytes.iter().position(|&b| b == 0).unwrap_or(0);
            let (extra, main) = (&bytes[..split], &bytes[(split + 1).min(bytes.len())..]);
            write_config(&ssh_dir.join("extra.conf"), extra);
            write_config(&ssh_dir.join("conf.d/a.conf"), extra);
            write_config(&config, main);
            for alias in ["example", "jump1", "x.lan"] {
                let _ = resolve_as(
                    alias,
                    Some(&config),
                    &Overrides::default(),
                    home.path(),
                    "me",
                );
            }
            let options = Overrides {
                options: vec![lossy(&main[..main.len().min(40)])],
                ..Overrides::default()
            };
            let _ = resolve_as("example", Some(&config), &options, home.path(), "me");
        },
        |len| 64 * len + 4 * 1024 * 1024,
    );
}

fn write_config(path: &Path, bytes: &[u8]) {
    fs::write(path, confined_includes(&lossy(bytes))).expect("write config");
}

// ---- filter rules, merge files, patterns ----

fn filter_samples() -> Vec<Vec<u8>> {
    lines(&[
        "- *.tmp",
        "+ */",
        "+ /src/**",
        "exclude,! /keep",
        "include,s dir/***",
        "hide,p *~",
        "S *.rs",
        "P /protected",
        "R risky",
        "!",
        "clear",
        ": .rules",
        ":- .gitignore",
        ":C",
        "-C",
        "dir-merge,n- .per-dir",
        ". RULES",
        "merge,+ RULES",
        ".e RULES",
        "- [a-z]?\\*",
        "#comment",
        ";comment",
    ])
}

const FILTER_TOKENS: &[&str] = &[
    "*",
    "**",
    "***",
    "?",
    "[",
    "]",
    "\\",
    "/",
    "!",
    ",",
    " ",
    "_",
    "-",
    "+",
    ":",
    ".",
    "C",
    "w",
    "e",
    "n",
    "s",
    "r",
    "p",
    "\n",
    "\r",
    "\u{0}",
    "merge ",
    "dir-merge ",
    "RULES",
];

/// Mutated `--filter` rules, with a mutated merge file they may merge
/// (itself too), build a filter or fail with a usage error, never a panic.
#[test]
fn mutated_filter_rules_build_or_fail_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    let rules_name = rules.display().to_string();
    let samples = filter_samples();
    drive(
        "filter_rules",
        Run::from_env(),
        |rng| {
            let merged = text(rng, &samples, FILTER_TOKENS);
            let given = text(rng, &samples, FILTER_TOKENS);
            [merged, vec![0xff, 0], given].concat()
        },
        |bytes| {
            let split = bytes.windows(2).position(|w| w == [0xff, 0]).unwrap_or(0);
            let (merged, given) = (&bytes[..split], &bytes[(split + 2).min(bytes.len())..]);
            let named = |b: &[u8]| lossy(b).replace("RULES", &rules_name);
            fs::write(&rules, named(merged)).expect("write rules");
            let args: Vec<FilterArg> = named(given)
                .split('\n')
                .enumerate()
                .map(|(i, value)| FilterArg {
                    flag: [FilterFlag::Filter, FilterFlag::Exclude, FilterFlag::Include][i % 3],
                    value: value.to_string(),
                })
                .chain([FilterArg {
                    flag: FilterFlag::ExcludeFrom,
                    value: rules_name.clone(),
                }])
                .collect();
            let options = FilterOptions {
                cvs_exclude: given.len() % 4 == 0,
                cvs_env: Some(CvsEnv {
                    home_cvsignore: Some(merged.to_vec()),
                    cvsignore: Some(lossy(given)),
                }),
                ..FilterOptions::default()
            };
            let _ = Filter::with_options(&args, &options, &mut ListReader::without_stdin());
        },
        text_limit,
    );
}

fn pattern_samples() -> Vec<Vec<u8>> {
    lines(&[
        "*.tmp",
        "**/a/**/b*c",
        "*a*a*a*a*a*a*b",
        "**a**a**a**a**b",
        "[a-z]*[!0-9]?",
        "[[:alpha:]]x",
        "\\*lit",
        "dir/***",
        "/anchored/x",
        "a/b/",
        "**/",
    ])
}

/// Paths to match against, long and repetitive ones among them (where a
/// backtracking matcher takes exponential time).
fn match_paths() -> Vec<String> {
    vec![
        "a".to_string(),
        "x.tmp".to_string(),
        "dir/sub/a/b/file-c".to_string(),
        "a".repeat(200),
        ["a"; 60].join("/"),
        format!("{}c", "ab/".repeat(40)),
    ]
}

/// Mutated patterns compile and match in bounded time, never a panic.
#[test]
fn mutated_filter_patterns_match_in_bounded_time() {
    let samples = pattern_samples();
    let paths = match_paths();
    drive(
        "filter_patterns",
        Run::from_env(),
        |rng| {
            let seed = rng.pick(&samples).clone();
            mutate_text(rng, seed, &samples, FILTER_TOKENS)
        },
        |bytes| {
            let pattern = Pattern::new(&lossy(bytes));
            for path in &paths {
                let _ = pattern.matches(path, false);
                let _ = pattern.matches(path, true);
            }
        },
        text_limit,
    );
}

// ---- --files-from ----

fn files_from_samples() -> Vec<Vec<u8>> {
    lines(&[
        "a/b/c",
        "dir/",
        ".",
        "./implied",
        "/abs/path",
        "../up",
        "src/./kept/x",
        "a/../../b",
        "# comment",
        "; comment",
        "a//b/./c/..",
    ])
}

const FILES_FROM_TOKENS: &[&str] = &[
    "/", "./", "../", "..", "/./", "\n", "\r", "\u{0}", "#", ";", " ", "//",
];

/// A mutated `--files-from` list reads as paths that stay below the
/// source: no `..`, `.` or empty component, no leading `/`.
#[test]
fn mutated_files_from_lists_stay_below_the_source() {
    let samples = files_from_samples();
    drive(
        "files_from",
        Run::from_env(),
        |rng| text(rng, &samples, FILES_FROM_TOKENS),
        |bytes| {
            for (from0, forwarded) in [(false, false), (true, false), (false, true)] {
                let list = FilesFrom::parse_as("list", bytes, ListFormat { from0, forwarded });
                for listed in &list.paths {
                    for path in [&listed.path, &listed.from] {
                        let bad = |c: &str| c.is_empty() || c == "." || c == "..";
                        assert!(
                            path.is_empty() || !path.split('/').any(bad),
                            "unsafe listed path {path:?}"
                        );
                    }
                }
            }
        },
        text_limit,
    );
}

/// Found by `ssh_config`: a ProxyJump naming a new host at every level
/// (`%h` grows the name) is no loop of equal hosts, and recursed until the
/// stack overflowed. Now it stops at the jump host limit.
#[test]
fn regression_a_proxyjump_that_grows_its_name_stops_at_the_hop_limit() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = home.path().join("config");
    fs::write(&config, "Host *\n  ProxyJump j%h\n").expect("write config");
    let result = resolve_as("a", Some(&config), &Overrides::default(), home.path(), "me");
    let error = result.expect_err("an endless jump chain");
    assert!(error.to_string().contains("jump hosts"), "{error}");
}
