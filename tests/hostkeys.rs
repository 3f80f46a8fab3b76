//! Host-key checking and client authentication failures.
mod common;

use common::*;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A small local file to push.
fn payload(sshd: &Sshd) -> PathBuf {
    let src = sshd.local().join("payload.bin");
    write_file(&src, &random_bytes(200_000, 21));
    src
}

#[test]
fn changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let other = sshd.dir().join("other_host_key");
    gen_keypair(&other);
    let kh = sshd.write_known_hosts(
        "known_hosts.wrong",
        &[format!(
            "[127.0.0.1]:{} {}",
            sshd.port(),
            pubkey_line(&other.with_extension("pub"))
        )],
    );
    let cfg = sshd.config_with_known_hosts("ssh_config.wrong", &kh, "yes");
    let src = payload(&sshd);
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(255);
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("host key"),
        "stderr must mention the host key\n{out}"
    );
    assert!(
        err.contains("127.0.0.1") || err.contains("ferrytest"),
        "stderr must name the host\n{out}"
    );
    assert!(
        [
            "changed",
            "mismatch",
            "does not match",
            "doesn't match",
            "differ",
            "wrong"
        ]
        .iter()
        .any(|w| err.contains(w)),
        "stderr must say the host key changed / does not match\n{out}"
    );
    assert_dir_empty(&sshd.remote());
    // The wrong entry is left alone.
    assert_eq!(
        fs::read_to_string(&kh).unwrap().lines().count(),
        1,
        "known_hosts must not be modified on a mismatch"
    );
}

#[test]
fn unknown_host_key_with_strict_checking_is_refused() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts.empty", &[]);
    let cfg = sshd.config_with_known_hosts("ssh_config.strict", &kh, "yes");
    let src = payload(&sshd);
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(255);
    let fp = sshd.host_fingerprint();
    assert!(
        out.stderr.contains(&fp),
        "stderr must show the server key's fingerprint {fp}\n{out}"
    );
    assert_dir_empty(&sshd.remote());
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        "",
        "known_hosts must not be modified with StrictHostKeyChecking yes"
    );
}

#[test]
fn accept_new_records_the_host_key() {
    let sshd = Sshd::start();
    let kh = sshd.write_known_hosts("known_hosts.new", &[]);
    let cfg = sshd.config_with_known_hosts("ssh_config.acceptnew", &kh, "accept-new");
    let src = payload(&sshd);
    sshd.ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("payload.bin"));

    let text = fs::read_to_string(&kh).unwrap();
    let key_b64 = sshd.host_key_line().split(' ').nth(1).unwrap().to_string();
    assert!(
        text.contains(&key_b64),
        "known_hosts does not contain the server key {key_b64}:\n{text}"
    );
    // OpenSSH itself must find the entry for [127.0.0.1]:PORT.
    let host = format!("[127.0.0.1]:{}", sshd.port());
    let found = run_with_deadline(
        Command::new("ssh-keygen")
            .arg("-F")
            .arg(&host)
            .arg("-f")
            .arg(&kh),
        Duration::from_secs(30),
    );
    assert_eq!(
        found.code, 0,
        "ssh-keygen -F {host} does not find the recorded entry:\n{text}\n{found}"
    );

    // The recorded key is now trusted under strict checking.
    let strict = sshd.config_with_known_hosts("ssh_config.strict2", &kh, "yes");
    sshd.ferry_with_config(&strict)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote().join("second.bin")))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("second.bin"));
}

#[test]
fn wrong_user_key_is_refused() {
    let sshd = Sshd::start();
    let bad = sshd.dir().join("not_authorized_key");
    gen_keypair(&bad);
    let cfg = sshd.config_with_identity("ssh_config.badkey", &bad);
    let src = payload(&sshd);
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(255);
    assert!(
        out.stderr.contains("not_authorized_key"),
        "stderr must mention the identity file {}\n{out}",
        bad.display()
    );
    assert_dir_empty(&sshd.remote());
}

/// With every log on (`FERRY_LOG=trace`, russh's included), a run prints
/// nothing of the private key it authenticates with.
#[test]
fn key_material_never_reaches_the_logs() {
    let sshd = Sshd::start();
    let src = sshd.local().join("f.txt");
    write_file(&src, b"payload");
    let out = sshd
        .ferry()
        .env("FERRY_LOG", "trace")
        .arg("-vvv")
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert!(out.stderr.len() > 10_000, "the trace log is missing\n{out}");
    let key = std::fs::read_to_string(sshd.user_key()).unwrap();
    let body: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 24)
        .collect();
    assert!(!body.is_empty());
    for line in body {
        // Any 24 characters of the key's base64 body.
        for piece in line.as_bytes().chunks(24).filter(|c| c.len() == 24) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(
                !out.stderr.contains(piece) && !out.stdout.contains(piece),
                "a piece of the private key ({piece}) is in the output"
            );
        }
    }
}
