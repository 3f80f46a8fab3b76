//! Passphrases asked through SSH_ASKPASS: the key unlocks, and with every log
//! on nothing of the passphrase (right or wrong) reaches ferry's output.
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Long and unlike anything in a log, so that finding it means a leak.
const RIGHT: &str = "ferry-askpass-Rq7vX2mZ-right";
const WRONG: &str = "ferry-askpass-Kd4wP9nB-wrong";
/// Every ferry run here, and ssh-keygen, is killed after this.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// An ed25519 key encrypted with `phrase`, authorized on `sshd`, and an ssh
/// config (returned second) that offers only it.
fn locked_key(sshd: &Sshd, phrase: &str) -> (PathBuf, PathBuf) {
    let key = sshd.dir().join("locked_key");
    gen_key(&key, ED25519, phrase);
    sshd.authorize(&key);
    let config = sshd.config_with_identity("ssh_config.locked", &key);
    (key, config)
}

/// An askpass program that records each prompt in `calls` and answers the
/// n-th with `answers[n]`, the last answer again once they run out; with
/// no answers it cancels (exit 1).
fn askpass(sshd: &Sshd, answers: &[&str]) -> (PathBuf, PathBuf) {
    let script = sshd.dir().join("askpass.sh");
    let calls = sshd.dir().join("askpass.calls");
    // The call's number is the count of prompts recorded so far.
    let mut reply = String::from("case $(($(wc -l < \"$calls\"))) in\n");
    for (n, answer) in answers.iter().enumerate() {
        let pattern = if n + 1 == answers.len() {
            "*".to_string()
        } else {
            (n + 1).to_string()
        };
        reply.push_str(&format!("  {pattern}) printf '%s\\n' '{answer}' ;;\n"));
    }
    if answers.is_empty() {
        reply.push_str("  *) exit 1 ;;\n");
    }
    reply.push_str("esac\n");
    let body = format!(
        "#!/bin/sh\ncalls='{}'\nprintf '%s\\n' \"$1\" >> \"$calls\"\n{reply}",
        calls.display()
    );
    fs::write(&script, body).expect("write askpass script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod askpass");
    (script, calls)
}

/// The prompts the askpass program saw, one per call.
fn prompts(calls: &Path) -> Vec<String> {
    fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A push of `src` using `config`, asking through `script`, every log on.
fn push_with_askpass(sshd: &Sshd, config: &Path, script: &Path, src: &Path) -> Output {
    sshd.ferry_with_config(config)
        .env("SSH_ASKPASS", script)
        // stdin is null here, but the display may be missing too: force
        // makes the askpass program the one way to ask either way.
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("FERRY_LOG", "trace")
        .arg("-vv")
        .arg(src)
        .arg(sshd.spec(&sshd.remote()))
        .run(RUN_LIMIT)
}

#[track_caller]
fn assert_not_in_output(out: &Output, secret: &str) {
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "the passphrase {secret:?} is in the output\n{out}"
    );
}

#[test]
fn askpass_passphrase_unlocks_the_key_and_never_reaches_the_logs() {
    let sshd = Sshd::start();
    let (key, config) = locked_key(&sshd, RIGHT);
    let (script, calls) = askpass(&sshd, &[RIGHT]);
    let src = sshd.local().join("payload.bin");
    write_file(&src, &random_bytes(200_000, 31));

    let out = push_with_askpass(&sshd, &config, &script, &src);
    out.assert_ok();
    assert_files_identical(&src, &sshd.remote().join("payload.bin"));
    assert_eq!(
        prompts(&calls),
        vec![format!("Enter passphrase for key '{}': ", key.display())],
        "the askpass program must be asked once, for the key\n{out}"
    );
    assert!(out.stderr.len() > 10_000, "the trace log is missing\n{out}");
    assert!(
        out.stderr.contains("asking with SSH_ASKPASS"),
        "the log must say that askpass was used\n{out}"
    );
    assert_not_in_output(&out, RIGHT);
}

/// A wrong passphrase is asked again (OpenSSH's NumberOfPasswordPrompts),
/// and the right one given next unlocks the key.
#[test]
fn a_wrong_passphrase_is_asked_again_and_the_right_one_unlocks() {
    let sshd = Sshd::start();
    let (key, config) = locked_key(&sshd, RIGHT);
    let (script, calls) = askpass(&sshd, &[WRONG, RIGHT]);
    let src = sshd.local().join("payload.bin");
    write_file(&src, b"payload");

    let out = push_with_askpass(&sshd, &config, &script, &src);
    out.assert_ok();
    assert_files_identical(&src, &sshd.remote().join("payload.bin"));
    let prompt = format!("Enter passphrase for key '{}': ", key.display());
    assert_eq!(prompts(&calls), vec![prompt.clone(), prompt], "{out}");
    assert_not_in_output(&out, WRONG);
    assert_not_in_output(&out, RIGHT);
}

#[test]
fn wrong_askpass_passphrase_fails_naming_the_key_and_leaks_nothing() {
    let sshd = Sshd::start();
    let (key, config) = locked_key(&sshd, RIGHT);
    let (script, calls) = askpass(&sshd, &[WRONG]);
    let src = sshd.local().join("payload.bin");
    write_file(&src, b"payload");

    let out = push_with_askpass(&sshd, &config, &script, &src);
    // 255: could not authenticate (README, exit codes).
    out.assert_code(255);
    out.assert_stderr_contains(&format!("{} (wrong passphrase)", key.display()));
    // OpenSSH's NumberOfPasswordPrompts: three tries, then the key is given up.
    assert_eq!(prompts(&calls).len(), 3, "{out}");
    assert_not_in_output(&out, WRONG);
    assert_not_in_output(&out, RIGHT);
    assert_dir_empty(&sshd.remote());
}

#[test]
fn cancelled_askpass_skips_the_key_after_one_prompt() {
    let sshd = Sshd::start();
    let (key, config) = locked_key(&sshd, RIGHT);
    let (script, calls) = askpass(&sshd, &[]);
    let src = sshd.local().join("payload.bin");
    write_file(&src, b"payload");

    let out = push_with_askpass(&sshd, &config, &script, &src);
    out.assert_code(255);
    out.assert_stderr_contains(&format!("{} (no passphrase given)", key.display()));
    assert_eq!(prompts(&calls).len(), 1, "{out}");
    assert_not_in_output(&out, RIGHT);
    assert_dir_empty(&sshd.remote());
}
