//! Authentication against a real sshd, in OpenSSH's order: the ssh-agent's
//! keys first, then the identity files (the configured ones, else the
//! defaults in ~/.ssh); a failure says what was tried and what was skipped.
//! The fixture's sshd accepts public keys only. Passphrases asked through
//! SSH_ASKPASS are tests/secrets.rs; keyboard-interactive and password,
//! which this sshd cannot check without PAM, are unit tests against an
//! in-process server (src/ssh/auth.rs).
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An ssh config for the fixture's sshd offering `identities` in order
/// (none: the defaults in HOME/.ssh) plus the `extra` lines. BatchMode,
/// so that nothing may ask for a passphrase, whatever the environment.
fn config(sshd: &Sshd, name: &str, identities: &[&Path], extra: &[&str]) -> PathBuf {
    let cfg = SshConfig {
        identities: identities.iter().map(|p| p.to_path_buf()).collect(),
        extra: ["BatchMode yes"]
            .iter()
            .chain(extra)
            .map(|line| line.to_string())
            .collect(),
        ..sshd.base_config()
    };
    sshd.write_config(name, &cfg)
}

/// A push of one small file with `config`, `HOME=home`, and SSH_AUTH_SOCK
/// set to `agent` when given (unset otherwise).
fn push(sshd: &Sshd, config: &Path, home: &Path, agent: Option<&Path>) -> Output {
    let src = sshd.local().join("payload.txt");
    write_file(&src, b"authenticated");
    let mut ferry = sshd.ferry_with_config(config);
    ferry.env("HOME", home);
    if let Some(socket) = agent {
        ferry.env("SSH_AUTH_SOCK", socket);
    }
    ferry.arg(&src).arg(sshd.spec(&sshd.remote())).run_default()
}

/// [`push`], which must log in and copy the file.
#[track_caller]
fn push_ok(sshd: &Sshd, config: &Path, home: &Path, agent: Option<&Path>) {
    push(sshd, config, home, agent).assert_ok();
    assert_files_identical(
        &sshd.local().join("payload.txt"),
        &sshd.remote().join("payload.txt"),
    );
}

/// A new key pair `dir/name` of `kind`, not authorized anywhere.
fn new_key(sshd: &Sshd, name: &str, kind: &[&str], passphrase: &str) -> PathBuf {
    let key = sshd.dir().join(name);
    gen_key(&key, kind, passphrase);
    key
}

/// Every identity file that cannot log in is named with the reason, in
/// the order offered; this sshd offers no password method, so no
/// terminal is asked for.
#[test]
fn unauthorized_encrypted_and_missing_identity_files_are_reported() {
    let sshd = Sshd::start();
    let bad = new_key(&sshd, "bad", ED25519, "");
    let locked = new_key(&sshd, "locked", ED25519, "s3cret-phrase");
    let missing = sshd.dir().join("missing");
    let cfg = config(&sshd, "ssh_config.bad", &[&bad, &locked, &missing], &[]);

    let out = push(&sshd, &cfg, &sshd.home(), None);
    // 255: could not authenticate (README, exit codes).
    out.assert_code(255);
    out.assert_stderr_contains(&format!(
        "permission denied for {}@127.0.0.1: tried {} (rejected), \
         {} (encrypted, no terminal to ask for the passphrase), {} (not found)",
        sshd.user(),
        bad.display(),
        locked.display(),
        missing.display()
    ));
    out.assert_stderr_contains("no ssh-agent (SSH_AUTH_SOCK is not set)");
    assert!(!out.stderr.contains("need a terminal"), "{out}");
    assert_dir_empty(&sshd.remote());
}

/// A rejected identity file is not the end: the next one logs in.
#[test]
fn an_authorized_identity_file_logs_in_after_a_rejected_one() {
    let sshd = Sshd::start();
    let bad = new_key(&sshd, "bad", ED25519, "");
    let cfg = config(&sshd, "ssh_config.two", &[&bad, &sshd.user_key()], &[]);
    push_ok(&sshd, &cfg, &sshd.home(), None);
}

/// OpenSSH 9 refuses SHA-1 `ssh-rsa` signatures, so this passes only if
/// the RSA key signs with the hash the server advertised.
#[test]
fn an_rsa_identity_file_signs_with_sha2() {
    let sshd = Sshd::start();
    let rsa = new_key(&sshd, "rsa", RSA, "");
    sshd.authorize(&rsa);
    let cfg = config(&sshd, "ssh_config.rsa", &[&rsa], &[]);
    push_ok(&sshd, &cfg, &sshd.home(), None);
}

/// Without IdentityFile the keys are OpenSSH's defaults in HOME/.ssh; with
/// none there, the message says where it looked.
#[test]
fn default_identity_files_come_from_home() {
    let sshd = Sshd::start();
    let home = sshd.dir().join("keyhome");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    gen_key(&home.join(".ssh/id_ed25519"), ED25519, "");
    sshd.authorize(&home.join(".ssh/id_ed25519"));
    let cfg = config(&sshd, "ssh_config.defaults", &[], &[]);
    push_ok(&sshd, &cfg, &home, None);

    // The fixture's HOME has an empty .ssh.
    let out = push(&sshd, &cfg, &sshd.home(), None);
    out.assert_code(255);
    out.assert_stderr_contains(&format!(
        "no identity file (id_ed25519, id_ecdsa, id_rsa in {} do not exist)",
        sshd.home().join(".ssh").display()
    ));
}

/// The agent's keys come before the identity files (a rejected one and
/// then an accepted one); IdentitiesOnly limits them to the keys of the
/// identity files, the configured ones or else the defaults.
#[test]
fn agent_keys_are_used_first() {
    let sshd = Sshd::start();
    let good = sshd.user_key();
    let bad = new_key(&sshd, "bad", ED25519, "");
    let agent = Agent::start(sshd.dir(), &[&bad, &good]);
    // A locked identity file cannot be used under BatchMode: only the
    // agent can log in.
    let locked = new_key(&sshd, "locked", ED25519, "pw");
    let cfg = config(&sshd, "ssh_config.locked", &[&locked], &[]);
    push_ok(&sshd, &cfg, &sshd.home(), Some(agent.socket()));

    // IdentitiesOnly: the agent's good key is no IdentityFile, so it is
    // skipped, and the bad one is not offered twice.
    let only = config(&sshd, "ssh_config.only", &[&bad], &["IdentitiesOnly yes"]);
    let out = push(&sshd, &only, &sshd.home(), Some(agent.socket()));
    out.assert_code(255);
    out.assert_stderr_contains("ssh-agent (1 key, 1 more skipped by IdentitiesOnly)");
    out.assert_stderr_contains(&format!(
        "{} (rejected when offered by ssh-agent)",
        bad.display()
    ));

    // IdentitiesOnly without IdentityFile: the default files decide. The
    // default file is the good key encrypted, so only the agent can have
    // used it.
    let home = sshd.dir().join("agenthome");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let default_key = home.join(".ssh/id_ed25519");
    fs::copy(&good, &default_key).unwrap();
    fs::copy(pub_path(&good), pub_path(&default_key)).unwrap();
    let encrypted = run_with_deadline(
        Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "pw", "-f"])
            .arg(&default_key),
        Duration::from_secs(30),
    );
    assert_eq!(encrypted.code, 0, "ssh-keygen -p failed\n{encrypted}");
    let defaults = config(&sshd, "ssh_config.defaults", &[], &["IdentitiesOnly yes"]);
    push_ok(&sshd, &defaults, &home, Some(agent.socket()));
}

/// An agent socket nobody listens on is noted and passed over: the
/// identity files still log in, and a failure names the socket.
#[test]
fn an_unreachable_agent_is_skipped_not_fatal() {
    let sshd = Sshd::start();
    let socket = sshd.dir().join("no-such.sock");
    let cfg = config(&sshd, "ssh_config.good", &[&sshd.user_key()], &[]);
    push_ok(&sshd, &cfg, &sshd.home(), Some(&socket));

    let bad = new_key(&sshd, "bad", ED25519, "");
    let cfg = config(&sshd, "ssh_config.bad", &[&bad], &[]);
    let out = push(&sshd, &cfg, &sshd.home(), Some(&socket));
    out.assert_code(255);
    out.assert_stderr_contains(&format!("ssh-agent unreachable at {}", socket.display()));
    out.assert_stderr_contains(&format!("{} (rejected)", bad.display()));
}

/// `--identity` naming a file that is not there is said once, in ssh's
/// words, and the keys of ssh config still log in.
#[test]
fn a_missing_identity_option_is_warned_about_and_the_config_keys_log_in() {
    let sshd = Sshd::start();
    let cfg = config(&sshd, "ssh_config.missing", &[&sshd.user_key()], &[]);
    let src = sshd.local().join("payload.txt");
    write_file(&src, b"authenticated");
    let missing = sshd.dir().join("no-such-key");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg("--identity")
        .arg(&missing)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_ok();
    let warning = format!(
        "Warning: Identity file {} not accessible: No such file or directory.",
        missing.display()
    );
    assert_eq!(out.stderr.matches(&warning).count(), 1, "{out}");
    assert_files_identical(&src, &sshd.remote().join("payload.txt"));
}
