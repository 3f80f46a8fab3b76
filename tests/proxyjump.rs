//! ProxyJump and the SSH transport's options against a real OpenSSH sshd:
//! one jump host given with `-e 'ssh -J ...'`, a chain of two from ssh
//! config, a jump host whose key is unknown, a hung jump host within the
//! connect timeout, a target the jump host cannot reach, a reconnect that
//! goes through the jump host again, compression measured on the wire,
//! `-e` read into settings, and `IdentityAgent` naming the agent's socket.
//!
//! The jump hosts are the test sshd itself under other aliases (`hop1`,
//! `hop2`), reached through counting proxies, so the bytes each proxy saw
//! prove which way the connection went.
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One connection's worth of data, larger than any handshake.
const PAYLOAD: usize = 3 * MIB as usize;

fn payload(sshd: &Sshd, name: &str) -> PathBuf {
    let src = sshd.local().join(name);
    write_file(&src, &random_bytes(PAYLOAD, 77));
    src
}

/// known_hosts trusting the sshd's key at its own port and at each proxy's.
fn known_hosts(sshd: &Sshd, proxies: &[&CutProxy]) -> PathBuf {
    let mut lines = vec![sshd.known_hosts_line(sshd.port())];
    lines.extend(proxies.iter().map(|p| sshd.known_hosts_line(p.port())));
    sshd.write_known_hosts("known_hosts.jump", &lines)
}

/// The target alias (`ferrytest`, straight to sshd, with `target_extra`
/// lines) and `hop1` reached through `proxy1` (and `hop2` through `proxy2`).
fn jump_config(
    sshd: &Sshd,
    kh: &Path,
    proxy1: &CutProxy,
    proxy2: Option<&CutProxy>,
    target_extra: &[&str],
) -> PathBuf {
    let mut target = sshd.block_for(HOST_ALIAS, sshd.port(), kh);
    target.extra = target_extra.iter().map(|s| s.to_string()).collect();
    let mut blocks = vec![target, sshd.block_for("hop1", proxy1.port(), kh)];
    if let Some(proxy2) = proxy2 {
        blocks.push(sshd.block_for("hop2", proxy2.port(), kh));
    }
    sshd.write_config_blocks("ssh_config.jump", &blocks)
}

#[track_caller]
fn assert_carried(proxy: &CutProxy, what: &str) {
    proxy.wait_idle(Duration::from_secs(10));
    let carried = proxy.up() + proxy.down();
    assert!(
        carried > PAYLOAD as u64,
        "{what} carried only {carried} bytes of a {PAYLOAD}-byte copy"
    );
}

#[test]
fn one_jump_host_from_rsh_carries_push_and_pull() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let kh = known_hosts(&sshd, &[&proxy]);
    let cfg = jump_config(&sshd, &kh, &proxy, None, &[]);
    let src = payload(&sshd, "one.bin");
    sshd.ferry_with_config(&cfg)
        .args(["-e", "ssh -J hop1"])
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("one.bin"));
    assert_carried(&proxy, "jump host hop1 on push");
    assert_eq!(proxy.connections(), 1, "one connection to the jump host");

    proxy.reset_counts();
    let back = sshd.local().join("back");
    fs::create_dir_all(&back).unwrap();
    sshd.ferry_with_config(&cfg)
        .args(["-e", "ssh -J hop1"])
        .arg(sshd.spec(&sshd.remote().join("one.bin")))
        .arg(&back)
        .run_ok();
    assert_files_identical(&src, &back.join("one.bin"));
    assert_carried(&proxy, "jump host hop1 on pull");
}

#[test]
fn chain_of_two_jump_hosts_from_ssh_config() {
    let sshd = Sshd::start();
    let proxy1 = CutProxy::start(sshd.port(), None);
    let proxy2 = CutProxy::start(sshd.port(), None);
    let kh = known_hosts(&sshd, &[&proxy1, &proxy2]);
    let cfg = jump_config(&sshd, &kh, &proxy1, Some(&proxy2), &["ProxyJump hop1,hop2"]);
    let src = payload(&sshd, "chain.bin");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg("-vvv")
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("chain.bin"));
    // hop1 carries hop2's connection, which carries the target's.
    assert_carried(&proxy1, "jump host hop1");
    assert_carried(&proxy2, "jump host hop2");
    assert_eq!((proxy1.connections(), proxy2.connections()), (1, 1));
    assert!(
        out.stderr.contains("via hop1, hop2"),
        "-vvv names the jump hosts\n{out}"
    );

    let back = sshd.local().join("back");
    fs::create_dir_all(&back).unwrap();
    sshd.ferry_with_config(&cfg)
        .arg(sshd.spec(&sshd.remote().join("chain.bin")))
        .arg(&back)
        .run_ok();
    assert_files_identical(&src, &back.join("chain.bin"));
}

#[test]
fn unknown_jump_host_key_is_refused_naming_the_jump_host() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    // The target is known; hop1 (at the proxy's port) is not.
    let kh = sshd.write_known_hosts("known_hosts.target", &[sshd.known_hosts_line(sshd.port())]);
    let cfg = jump_config(&sshd, &kh, &proxy, None, &["ProxyJump hop1"]);
    let src = payload(&sshd, "refused.bin");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(255);
    out.assert_stderr_contains("jump host hop1");
    out.assert_stderr_contains("host key verification failed");
    out.assert_stderr_contains(&sshd.host_fingerprint());
    out.assert_stderr_contains(&format!("[127.0.0.1]:{}", proxy.port()));
    assert!(
        !sshd.remote().join("refused.bin").exists(),
        "nothing may be written"
    );
    assert_eq!(
        fs::read_to_string(&kh).unwrap().lines().count(),
        1,
        "known_hosts must not be modified with StrictHostKeyChecking yes"
    );
}

#[test]
fn hung_jump_host_fails_within_the_connect_timeout() {
    let sshd = Sshd::start();
    let silent = silent_listener();
    let port = silent.local_addr().unwrap().port();
    let kh = known_hosts(&sshd, &[]);
    let mut target = sshd.block_for(HOST_ALIAS, sshd.port(), &kh);
    target.extra = vec!["ProxyJump hop1".into(), "ConnectTimeout 2".into()];
    let hop = sshd.block_for("hop1", port, &kh);
    let cfg = sshd.write_config_blocks("ssh_config.hung", &[target, hop]);
    let src = payload(&sshd, "hung.bin");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run(Duration::from_secs(60));
    out.assert_code(255);
    out.assert_stderr_contains("jump host hop1");
    out.assert_stderr_contains("within 2 s");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "the connect timeout bounds the chain\n{out}"
    );
}

#[test]
fn target_the_jump_host_cannot_reach_is_named() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let kh = known_hosts(&sshd, &[&proxy]);
    let closed = closed_port();
    let mut target = sshd.block_for(HOST_ALIAS, closed, &kh);
    target.extra = vec!["ProxyJump hop1".into()];
    let hop = sshd.block_for("hop1", proxy.port(), &kh);
    let cfg = sshd.write_config_blocks("ssh_config.unreachable", &[target, hop]);
    let src = payload(&sshd, "unreachable.bin");
    let out = sshd
        .ferry_with_config(&cfg)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_code(255);
    out.assert_stderr_contains(&format!("cannot connect to [127.0.0.1]:{closed}"));
    out.assert_stderr_contains("through jump host hop1");
    out.assert_stderr_contains("AllowTcpForwarding");
    assert_eq!(proxy.connections(), 1, "the jump host was reached\n{out}");
}

#[test]
fn reconnect_goes_through_the_jump_host_again() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let kh = known_hosts(&sshd, &[&proxy]);
    let cfg = jump_config(&sshd, &kh, &proxy, None, &["ProxyJump hop1"]);
    let src = payload(&sshd, "again.bin");
    // The jump host's first connection drops in the middle of the data.
    proxy.set_schedule(&[Fault::Cut(Direction::Up, PAYLOAD as u64 / 2)]);
    let out = sshd
        .ferry_with_config(&cfg)
        .args(["--retries", "3", "--retry-wait", "0.05"])
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_default();
    out.assert_ok();
    assert_files_identical(&src, &sshd.remote().join("again.bin"));
    assert!(
        proxy.connections() >= 2,
        "the reconnect must dial the jump host again\n{out}"
    );
    assert_eq!(proxy.schedule_left(), 0, "the cut happened\n{out}");
    // The jump host's dropped link ends the connection through it at once,
    // not after the 60 s silence bound.
    assert!(
        out.elapsed < Duration::from_secs(30),
        "the lost jump host was noticed late\n{out}"
    );
}

/// 4 MiB of text that zlib shrinks many times over.
fn compressible(sshd: &Sshd) -> PathBuf {
    let line = b"2024-05-01T12:00:00Z INFO ferry: copied block of the log file, nothing to see\n";
    let data: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(4 * MIB as usize)
        .collect();
    let src = sshd.local().join("log.txt");
    write_file(&src, &data);
    src
}

/// Bytes sent to the server for one push of `src` through `proxy`.
fn pushed_bytes(sshd: &Sshd, proxy: &CutProxy, cfg: &Path, src: &Path, extra: &[&str]) -> u64 {
    let _ = fs::remove_file(sshd.remote().join("log.txt"));
    proxy.reset_counts();
    sshd.ferry_with_config(cfg)
        .args(extra)
        .arg(src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(src, &sshd.remote().join("log.txt"));
    proxy.wait_idle(Duration::from_secs(10));
    proxy.up()
}

#[test]
fn compression_from_ssh_config_shrinks_the_wire() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let plain = sshd.config_for_proxy(&proxy);
    let mut zipped = sshd.base_config();
    zipped.port = proxy.port();
    zipped.known_hosts = sshd.dir().join("ssh_config.proxy.known_hosts");
    zipped.extra = vec!["Compression yes".into()];
    let zipped = sshd.write_config("ssh_config.zlib", &zipped);
    let src = compressible(&sshd);
    let without = pushed_bytes(&sshd, &proxy, &plain, &src, &[]);
    let with = pushed_bytes(&sshd, &proxy, &zipped, &src, &[]);
    assert!(without > 4 * MIB, "{without} bytes for a 4 MiB file");
    assert!(
        with * 10 < without,
        "Compression yes sent {with} bytes, without {without}"
    );
}

#[test]
fn dash_z_shrinks_the_wire() {
    let sshd = Sshd::start();
    let proxy = CutProxy::start(sshd.port(), None);
    let cfg = sshd.config_for_proxy(&proxy);
    let src = compressible(&sshd);
    let without = pushed_bytes(&sshd, &proxy, &cfg, &src, &[]);
    let with = pushed_bytes(&sshd, &proxy, &cfg, &src, &["-z"]);
    assert!(
        with * 10 < without,
        "-z sent {with} bytes, without {without}"
    );
    // ssh's -C in -e does the same.
    let rsh = pushed_bytes(&sshd, &proxy, &cfg, &src, &["-e", "ssh -C"]);
    assert!(rsh * 10 < without, "-e 'ssh -C' sent {rsh} bytes");
}

#[test]
fn rsh_options_are_read_and_unsupported_ones_refused() {
    let sshd = Sshd::start();
    let src = payload(&sshd, "rsh.bin");
    // -p, -i, -l, -o, -F from -e replace the config's (here a config
    // without port, user or key).
    let kh = sshd.known_hosts();
    let bare = sshd.dir().join("ssh_config.bare");
    fs::write(
        &bare,
        format!(
            "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  UserKnownHostsFile {}\n",
            kh.display()
        ),
    )
    .unwrap();
    let rsh = format!(
        "ssh -p {} -i '{}' -l {} -o StrictHostKeyChecking=yes -o LogLevel=ERROR -F {} -q -T",
        sshd.port(),
        sshd.user_key().display(),
        sshd.user(),
        bare.display()
    );
    sshd.ferry_bare()
        .args(["-e", &rsh])
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("rsh.bin"));

    for (rsh, named) in [
        ("ssh -L 8080:localhost:80", "-L"),
        ("ssh -o LocalForward=8080:localhost:80", "LocalForward"),
        ("ssh -o ProxyCommand='nc %h %p'", "ProxyJump"),
        ("rsh -l me", "can only read ssh's arguments"),
    ] {
        let out = sshd
            .ferry()
            .args(["-e", rsh])
            .arg(&src)
            .arg(sshd.spec(&sshd.remote()))
            .run_default();
        out.assert_code(1);
        out.assert_stderr_contains(named);
    }
}

#[test]
fn identity_agent_names_the_agent_socket() {
    let sshd = Sshd::start();
    // Only the agent holds the key: no IdentityFile, an empty ~/.ssh, and
    // no SSH_AUTH_SOCK (FerryCmd removes it).
    let key = sshd.dir().join("agent_key");
    fs::copy(sshd.user_key(), &key).unwrap();
    let agent = Agent::start(sshd.dir(), &[&key]);
    fs::remove_file(&key).unwrap();
    let config = |name: &str, agent_line: &str| {
        let cfg = SshConfig {
            identities: Vec::new(),
            extra: vec!["BatchMode yes".to_string(), agent_line.to_string()],
            ..sshd.base_config()
        };
        sshd.write_config(name, &cfg)
    };
    let src = payload(&sshd, "agent.bin");
    let with_agent = config(
        "ssh_config.agent",
        &format!("IdentityAgent {}", agent.socket().display()),
    );
    sshd.ferry_with_config(&with_agent)
        .arg(&src)
        .arg(sshd.spec(&sshd.remote()))
        .run_ok();
    assert_files_identical(&src, &sshd.remote().join("agent.bin"));

    // IdentityAgent none: no agent, even with SSH_AUTH_SOCK set to it.
    let no_agent = config("ssh_config.noagent", "IdentityAgent none");
    let out = sshd
        .ferry_with_config(&no_agent)
        .env("SSH_AUTH_SOCK", agent.socket())
        .arg(&src)
        .arg(sshd.spec(&sshd.remote().join("again.bin")))
        .run_default();
    out.assert_code(255);
    out.assert_stderr_contains("no ssh-agent (IdentityAgent none)");
}
