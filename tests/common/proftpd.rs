//! [`Proftpd`]: ProFTPD's mod_sftp on 127.0.0.1, a second real SFTP server
//! beside [`Sshd`](super::Sshd), and one that is SFTP only: no shell, no
//! exec, so no hashing helper and no shell hashing on it. It runs from a
//! private config in the fixture directory (nothing of the system's
//! /etc/proftpd), as a child in the foreground, and logs in one virtual
//! user whose public key is the fixture's user key.

use super::*;

/// ProFTPD's daemon.
pub const PROFTPD: &str = "/usr/sbin/proftpd";
/// mod_sftp, a loadable module (Debian ships it in proftpd-mod-crypto).
const MOD_SFTP: &str = "/usr/lib/proftpd/mod_sftp.so";
/// The virtual user ferry logs in as (ProFTPD's `AuthUserFile`).
pub const PROFTPD_USER: &str = "ferry";

/// Fails loudly when ProFTPD or its mod_sftp is missing ([`require_tools`]).
#[track_caller]
pub fn require_proftpd() {
    require_tools(
        &[PROFTPD, MOD_SFTP, "ssh-keygen"],
        "proftpd-core proftpd-mod-crypto openssh-client",
        "the ProFTPD tests run a real mod_sftp server",
    );
}

/// A running ProFTPD with mod_sftp; what a client needs to reach it is
/// [`Server`]'s.
///
/// Its sessions run as `nobody` when the tests run as root (as
/// [`SshdOptions::sftp_as_nobody`] does for sshd: file permissions apply),
/// as the tests' own user otherwise: the virtual user [`PROFTPD_USER`] has
/// that uid. Its login directory is [`Server::remote`], with no chroot
/// (`DefaultRoot` unset), so the absolute paths of [`Server::spec`] work as
/// on sshd. The remote directory is given to the session's user at the
/// start; a test gives it what it puts there with [`give_to_session_user`].
///
/// Layout of [`Server::dir`] beyond [`fixture_dir`]'s: `proftpd.conf`,
/// `proftpd.passwd` / `proftpd.group` (the virtual user),
/// `authorized_keys.rfc4716` (the user key as mod_sftp reads it), the
/// logs `proftpd.log` (SystemLog), `sftp.log` (SFTPLog), `xfer.log`
/// (TransferLog), `proftpd.out` (the daemon's stdout and stderr), and the
/// pid, scoreboard and delay files.
pub struct Proftpd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Proftpd {
    /// Starts ProFTPD on a free port and waits until it answers.
    pub fn start() -> Proftpd {
        require_proftpd();
        let dir = fixture_dir();
        let d = dir.path();
        // The session's user must reach the remote directory through the
        // tempdir (0700 as created); the keys in it stay unreadable to it.
        fs::set_permissions(d, fs::Permissions::from_mode(0o711)).unwrap();
        give_to_session_user(&d.join("remote"));
        let mut server = Proftpd {
            dir,
            port: 0,
            child: None,
        };
        server.write_user_files();
        let (child, port) =
            launch_server("proftpd", None, |port| server.spawn(port), || server.logs());
        server.port = port;
        server.child = Some(child);
        server.write_client_files();
        server
    }

    /// The virtual user's passwd and group lines, and its authorized key in
    /// the RFC 4716 form mod_sftp reads (`ssh-keygen -e`).
    fn write_user_files(&self) {
        let d = self.dir();
        let (uid, gid) = session_ids();
        let passwd = format!(
            "{PROFTPD_USER}:*:{uid}:{gid}::{}:/bin/false\n",
            self.remote().display()
        );
        // mod_auth_file refuses files that others may read.
        write_private(&d.join("proftpd.passwd"), &passwd);
        write_private(
            &d.join("proftpd.group"),
            &format!("{PROFTPD_USER}:*:{gid}:\n"),
        );
        let exported = run_with_deadline(
            Command::new("ssh-keygen")
                .arg("-e")
                .arg("-f")
                .arg(pub_path(&self.user_key())),
            Duration::from_secs(30),
        );
        assert_eq!(exported.code, 0, "ssh-keygen -e failed:\n{exported}");
        fs::write(d.join("authorized_keys.rfc4716"), exported.stdout).unwrap();
    }

    /// ProFTPD's config for `port`: only what these tests need, every file
    /// it writes inside the fixture directory.
    fn write_config(&self, port: u16) -> PathBuf {
        let d = self.dir().display();
        let config = format!(
            "# ferry's tests: ProFTPD's mod_sftp on loopback, nothing of /etc/proftpd.\n\
             ServerType standalone\n\
             ServerName \"ferry test\"\n\
             Port {port}\n\
             DefaultAddress 127.0.0.1\n\
             SocketBindTight on\n\
             UseIPv6 off\n\
             PidFile {d}/proftpd.pid\n\
             ScoreboardFile {d}/proftpd.scoreboard\n\
             DelayEngine off\n\
             DelayTable {d}/proftpd.delay\n\
             ControlsEngine off\n\
             SystemLog {d}/proftpd.log\n\
             TransferLog {d}/xfer.log\n\
             WtmpLog off\n\
             UseReverseDNS off\n\
             AuthOrder mod_auth_file.c\n\
             AuthUserFile {d}/proftpd.passwd\n\
             AuthGroupFile {d}/proftpd.group\n\
             RequireValidShell off\n\
             AllowOverwrite on\n\
             LoadModule mod_sftp.c\n\
             SFTPEngine on\n\
             SFTPLog {d}/sftp.log\n\
             SFTPHostKey {d}/host_key\n\
             SFTPAuthorizedUserKeys file:{d}/authorized_keys.rfc4716\n\
             SFTPAuthMethods publickey\n"
        );
        let path = self.dir().join("proftpd.conf");
        fs::write(&path, config).unwrap();
        path
    }

    /// `proftpd -n` (in the foreground) with the config for `port`.
    fn spawn(&self, port: u16) -> Child {
        let config = self.write_config(port);
        // A fresh SystemLog, where a port already taken is told.
        let _ = fs::remove_file(self.dir().join("proftpd.log"));
        let out = self.dir().join("proftpd.out");
        spawn_server(PROFTPD, &["-n", "-q", "-c"], &config, &out)
    }

    /// mod_sftp's own log so far (SFTPLog: logins, channel requests such as
    /// a refused exec, errors of SFTP requests).
    pub fn sftp_log(&self) -> String {
        fs::read_to_string(self.dir().join("sftp.log")).unwrap_or_default()
    }

    /// Every log ProFTPD wrote so far, each under its name.
    pub fn logs(&self) -> String {
        ["proftpd.out", "proftpd.log", "sftp.log"]
            .iter()
            .map(|name| {
                let text = fs::read_to_string(self.dir().join(name)).unwrap_or_default();
                format!("----- {name} -----\n{text}")
            })
            .collect()
    }
}

impl Server for Proftpd {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        PROFTPD_USER
    }
}

impl Drop for Proftpd {
    fn drop(&mut self) {
        stop_server(self.child.take());
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// uid and gid of the sessions: nobody's when the tests run as root, the
/// tests' own otherwise (a server not run as root cannot switch users).
fn session_ids() -> (u32, u32) {
    if running_as_root() {
        return nobody_ids();
    }
    // SAFETY: geteuid and getegid have no preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}
