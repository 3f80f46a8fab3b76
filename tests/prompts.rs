//! Questions on a terminal are never hidden: ferry runs on a pseudo-terminal
//! with `-P` (bars on), against a host it has never seen and with an
//! encrypted key. What the terminal shows is worked out from what ferry
//! wrote (a small screen model: carriage returns, cursor moves, line
//! clears), and while each question waits the screen must show it, with no
//! progress drawn over or after it; the answers typed are the ones used.
mod common;

use common::*;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSPHRASE: &str = "s3cret-phrase";
const HOST_QUESTION: &str = "Are you sure you want to continue connecting (yes/no)? ";

/// The screen of a terminal that has been sent `bytes`: the lines, and the
/// row and column of the cursor. Only what indicatif and a prompt write is
/// understood: text, `\r`, `\n`, CSI A/B (up/down), K (clear line), J and
/// the cursor's show/hide; other escapes are dropped.
fn screen(bytes: &[u8]) -> (Vec<String>, usize, usize) {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut param = String::new();
                let mut end = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        end = c;
                        break;
                    }
                    param.push(c);
                }
                let n: usize = param.trim_start_matches('?').parse().unwrap_or(1);
                match end {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'K' => {
                        if let Some(line) = lines.get_mut(row) {
                            line.clear();
                        }
                    }
                    'J' => lines.truncate(row + 1),
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                while lines.len() <= row {
                    lines.push(Vec::new());
                }
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                match line.get_mut(col) {
                    Some(cell) => *cell = c,
                    None => line.push(c),
                }
                col += 1;
            }
        }
        while lines.len() <= row {
            lines.push(Vec::new());
        }
    }
    let lines = lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .collect();
    (lines, row, col)
}

/// ferry with `args` on a new pseudo-terminal (its controlling terminal:
/// stdin, stdout and stderr), and what it writes there, collected as it
/// comes.
struct OnTerminal {
    child: Child,
    master: fs::File,
    written: Arc<Mutex<Vec<u8>>>,
}

impl OnTerminal {
    fn start(home: &Path, args: &[&std::ffi::OsStr]) -> OnTerminal {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave: OwnedFd = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pts name"))
            .expect("open the pty's terminal side")
            .into();
        let mut winsize = rustix::termios::tcgetwinsize(&slave).expect("tcgetwinsize");
        (winsize.ws_row, winsize.ws_col) = (40, 120);
        rustix::termios::tcsetwinsize(&slave, winsize).expect("tcsetwinsize");
        let mut cmd = Command::new(ferry_bin());
        cmd.args(args)
            .env("HOME", home)
            .env("TERM", "xterm")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY")
            .env_remove("NO_COLOR")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new
        // session whose controlling terminal is the pty (stdin), as a
        // login shell's programs have, so /dev/tty is it.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin().as_fd())?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start ferry on the pty");
        let master = fs::File::from(master);
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup the pty");
        let sink = written.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once ferry has exited and closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnTerminal {
            child,
            master,
            written,
        }
    }

    /// `ferry --ssh-config CONFIG -P SRC` into the server's remote directory.
    fn push(sshd: &Sshd, config: &Path, src: &Path) -> OnTerminal {
        let dest = sshd.spec(&sshd.remote());
        let args: Vec<&std::ffi::OsStr> = vec![
            "--ssh-config".as_ref(),
            config.as_os_str(),
            "-P".as_ref(),
            src.as_os_str(),
            dest.as_ref(),
        ];
        OnTerminal::start(&sshd.home(), &args)
    }

    fn written(&self) -> Vec<u8> {
        self.written.lock().unwrap().clone()
    }

    /// Waits until the screen's cursor line ends with `prompt`, then checks
    /// that the screen stays as it is for a while (no bar redrawn over the
    /// question, none drawn after it) and shows `context` above it.
    fn question(&self, prompt: &str, context: &[&str]) {
        wait_until(Duration::from_secs(60), prompt, || {
            let (lines, row, _) = screen(&self.written());
            lines
                .get(row)
                .is_some_and(|l| l.ends_with(prompt.trim_end()))
        });
        let before = self.written();
        // Bars redraw five times a second: a second without a byte is
        // ten redraws that did not happen.
        std::thread::sleep(Duration::from_secs(1));
        let after = self.written();
        assert_eq!(
            String::from_utf8_lossy(&after[before.len()..]),
            "",
            "something was drawn while the question waited:\n{}",
            shown(&after)
        );
        let (lines, row, col) = screen(&after);
        let cursor_line = &lines[row];
        assert!(
            cursor_line.ends_with(prompt.trim_end()) && col >= cursor_line.len(),
            "the cursor is not after the question:\n{}",
            shown(&after)
        );
        for text in context {
            assert!(
                lines.iter().any(|l| l.contains(text)),
                "{text:?} is not on the screen:\n{}",
                shown(&after)
            );
        }
        // No progress on screen while a person is asked.
        for line in &lines {
            let spinner = line.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c));
            assert!(
                !spinner && !line.contains("ETA") && !line.contains("listing:"),
                "progress is on the screen during the question: {line:?}\n{}",
                shown(&after)
            );
        }
    }

    fn answer(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("type");
        self.master.flush().expect("type");
    }

    fn wait(&mut self, timeout: Duration) -> i32 {
        let mut status = None;
        wait_until(timeout, "ferry to exit", || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        status.and_then(|s| s.code()).unwrap_or(-1)
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shown(bytes: &[u8]) -> String {
    let (lines, row, col) = screen(bytes);
    format!("{}\n(cursor at row {row}, column {col})", lines.join("\n"))
}

#[test]
fn the_host_key_question_and_the_passphrase_prompt_are_never_covered() {
    let sshd = Sshd::start();
    let key = sshd.dir().join("locked_key");
    gen_key(&key, ED25519, PASSPHRASE);
    sshd.authorize(&key);
    let known_hosts = sshd.write_known_hosts("known_hosts.empty", &[]);
    let config = sshd.write_config(
        "ssh_config.ask",
        &SshConfig {
            identities: vec![key.clone()],
            known_hosts: known_hosts.clone(),
            strict: "ask".to_string(),
            ..sshd.base_config()
        },
    );
    let src = sshd.local().join("big.bin");
    write_file(&src, &random_bytes((12 * MIB) as usize, 7));
    let mut ferry = OnTerminal::push(&sshd, &config, &src);

    ferry.question(
        HOST_QUESTION,
        &[
            "The authenticity of host '[127.0.0.1]:",
            "key fingerprint is",
        ],
    );
    ferry.answer("yes\n");
    let prompt = format!("Enter passphrase for key '{}': ", key.display());
    ferry.question(&prompt, &["Permanently added '[127.0.0.1]:"]);
    ferry.answer(&format!("{PASSPHRASE}\n"));

    let code = ferry.wait(Duration::from_secs(120));
    let written = ferry.written();
    assert_eq!(code, 0, "ferry failed:\n{}", shown(&written));
    assert_files_identical(&src, &sshd.remote().join("big.bin"));
    // The answer typed was taken: the key is recorded as "yes" records it.
    let recorded = fs::read_to_string(&known_hosts).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port())),
        "the host key was not recorded after yes:\n{recorded}"
    );
    // The passphrase typed is not echoed.
    assert!(
        !String::from_utf8_lossy(&written).contains(PASSPHRASE),
        "the passphrase was echoed:\n{}",
        shown(&written)
    );
}

#[test]
fn no_typed_at_the_host_key_question_refuses_the_host() {
    let sshd = Sshd::start();
    let known_hosts = sshd.write_known_hosts("known_hosts.empty", &[]);
    let config = sshd.write_config(
        "ssh_config.ask",
        &SshConfig {
            known_hosts: known_hosts.clone(),
            strict: "ask".to_string(),
            ..sshd.base_config()
        },
    );
    let src = sshd.local().join("small.txt");
    write_file(&src, b"never sent");
    let mut ferry = OnTerminal::push(&sshd, &config, &src);
    ferry.question(HOST_QUESTION, &["The authenticity of host '[127.0.0.1]:"]);
    ferry.answer("no\n");
    let code = ferry.wait(Duration::from_secs(60));
    assert_eq!(code, 255, "{}", shown(&ferry.written()));
    assert!(!sshd.remote().join("small.txt").exists());
    assert_eq!(fs::read_to_string(&known_hosts).unwrap().trim(), "");
}
