//! `--log-file=FILE`: the lines rsync 3.5 appends to its log as a client,
//! each behind `YYYY/MM/DD HH:MM:SS [PID] `: `building file list` (or
//! `receiving file list` when this side receives), one line per item as
//! [`Lines::log_lines`] decides (`--log-file-format`, default `%i %n%L`),
//! the errors and warnings shown on stderr, and at the end either the
//! statistics `-v` or `--stats` print, or rsync's own closing line
//! `sent N bytes  received N bytes  total size N` (and, for a failed run,
//! the error with its exit code).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::lines::Lines;
use super::outformat::log_line_prefix;
use super::progress;
use crate::engine::Stats;
use crate::error::{Error, FileError};
use crate::report::{printable, Item, Reporter};

pub(crate) struct LogFile {
    file: Mutex<File>,
    lines: Arc<Lines>,
    pid: u32,
}

/// How the run ended, and what of it the log's last lines show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending<'a> {
    pub stats: &'a Stats,
    pub code: i32,
    pub error: Option<&'a Error>,
    /// rsync's `--info=stats` level: 1 with `-v`, 2 with `--stats`.
    pub stats_level: u8,
    pub human_readable: bool,
    pub dry_run: bool,
    /// This side sends (a push or a local copy): rsync's sender writes its
    /// closing line even when the run failed.
    pub sending: bool,
}

impl LogFile {
    /// Opens `path` for appending (created `rw-r--r--`, as rsync's), before
    /// anything connects.
    pub(crate) fn open(path: &Path, lines: Arc<Lines>) -> std::io::Result<LogFile> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)?;
        Ok(LogFile {
            file: Mutex::new(file),
            lines,
            pid: std::process::id(),
        })
    }

    /// Appends `text`, one log line per line of it. A log that cannot be
    /// written to does not stop the transfer (nor does rsync's).
    pub(crate) fn write(&self, text: &str) {
        let prefix = log_line_prefix(SystemTime::now(), self.pid);
        let mut block = String::new();
        for line in text.lines() {
            block.push_str(&prefix);
            block.push_str(line);
            block.push('\n');
        }
        if let Ok(mut file) = self.file.lock() {
            let _ = file.write_all(block.as_bytes());
        }
    }

    /// The first line: which way the file list goes.
    pub(crate) fn start(&self, receiving: bool) {
        self.write(match receiving {
            true => "receiving file list",
            false => "building file list",
        });
    }

    /// The last lines (rsync's `output_summary` and `log_exit`).
    pub(crate) fn close(&self, end: &Ending<'_>) {
        if let Some(error) = end.error {
            self.message(&error.to_string());
        }
        let (stats, human) = (end.stats, end.human_readable);
        if end.error.is_none() && end.stats_level >= 2 {
            let all = progress::rsync_stats(stats, human, end.dry_run);
            self.write(
                &all.lines()
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        } else if end.error.is_none() && end.stats_level == 1 {
            self.write(&progress::rsync_totals(stats, human, end.dry_run));
        }
        if end.code == 0 && end.stats_level > 0 {
            return;
        }
        if end.code == 0 || end.sending {
            self.write(&format!(
                "sent {} bytes  received {} bytes  total size {}",
                stats.wire_sent, stats.wire_received, stats.source.bytes
            ));
        }
        if end.code != 0 {
            self.write(&format!(
                "ferry error: {} (code {})",
                exit_name(end.code),
                end.code
            ));
        }
    }

    /// An error or warning, as stderr shows it.
    fn message(&self, message: &str) {
        self.write(&format!("ferry: {}", printable(message)));
    }
}

impl Reporter for LogFile {
    fn finished(&self, item: &Item<'_>) {
        for line in self.lines.log_lines(item) {
            self.write(&line);
        }
    }

    fn file_failed(&self, _path: &str, error: &FileError) {
        self.message(&error.to_string());
    }

    fn warning(&self, message: &str) {
        self.message(message);
    }
}

/// rsync's words for its exit codes (log.c, `rerr_names`), for the codes
/// ferry exits with.
fn exit_name(code: i32) -> &'static str {
    match code {
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        10 => "error in socket IO",
        11 => "error in file IO",
        12 => "error in rsync protocol data stream",
        20 => "received SIGINT, SIGTERM, or SIGHUP",
        23 => "some files/attrs were not transferred (see previous errors)",
        24 => "some files vanished before they could be transferred",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        _ => "unexplained error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::lines::LineOptions;

    fn log_in(dir: &Path) -> (LogFile, std::path::PathBuf) {
        let path = dir.join("run.log");
        let lines = Arc::new(Lines::new(
            &LineOptions {
                logging: true,
                ..LineOptions::default()
            },
            "dst",
            &["src/".to_string()],
        ));
        (LogFile::open(&path, lines).expect("opens"), path)
    }

    fn read(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("log written")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every line has rsync's prefix; a run without -v ends with rsync's
    /// `log_exit` line, a failed one with its error too.
    #[test]
    fn writes_rsyncs_opening_and_closing_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, path) = log_in(dir.path());
        log.start(false);
        let mut stats = Stats::default();
        stats.source.bytes = 1234;
        let end = Ending {
            stats: &stats,
            code: 0,
            error: None,
            stats_level: 0,
            human_readable: false,
            dry_run: false,
            sending: true,
        };
        log.close(&end);
        log.close(&Ending { code: 23, ..end });
        let lines = read(&path);
        let prefix = format!(" [{}] ", std::process::id());
        assert!(
            lines.iter().all(|l| l[19..].starts_with(&prefix)),
            "{lines:?}"
        );
        let text: Vec<&str> = lines.iter().map(|l| &l[19 + prefix.len()..]).collect();
        assert_eq!(
            text,
            [
                "building file list",
                "sent 0 bytes  received 0 bytes  total size 1234",
                "sent 0 bytes  received 0 bytes  total size 1234",
                "ferry error: some files/attrs were not transferred (see previous errors) (code 23)",
            ]
        );
    }

    /// With -v the statistics rsync prints are the log's last lines.
    #[test]
    fn closes_with_the_statistics_when_they_are_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, path) = log_in(dir.path());
        let stats = Stats::default();
        log.close(&Ending {
            stats: &stats,
            code: 0,
            error: None,
            stats_level: 1,
            human_readable: false,
            dry_run: true,
            sending: false,
        });
        let lines = read(&path);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("] sent 0 bytes  received 0 bytes  "));
        assert!(lines[1].ends_with("] total size is 0  speedup is 0.00 (DRY RUN)"));
    }
}
