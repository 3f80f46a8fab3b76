//! What a person sees: an indicatif bar on a terminal (overall bytes, rate,
//! ETA, current file), file names with -v, errors always, and a closing
//! summary. Scripts get silence on stdout unless they ask.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Stats;
use crate::error::Error;
use crate::report::{printable, Outcome, Reporter};

pub struct ConsoleReporter {
    bar: Option<ProgressBar>,
    verbose: bool,
}

impl ConsoleReporter {
    /// The bar shows on a terminal unless `quiet`; elsewhere only when
    /// `progress` was asked for.
    pub fn new(progress: bool, verbose: bool, quiet: bool) -> ConsoleReporter {
        let on_terminal = std::io::stdout().is_terminal();
        let bar = (!quiet && (on_terminal || progress)).then(|| {
            let target = if on_terminal {
                ProgressDrawTarget::stdout()
            } else {
                ProgressDrawTarget::stderr_with_hz(1)
            };
            let bar = ProgressBar::with_draw_target(Some(0), target);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bytes:>10}/{total_bytes} {bar:30} {bytes_per_sec:>12} ETA {eta:>4} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ConsoleReporter { bar, verbose }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// A line on stderr, above the bar.
    pub fn warn(&self, message: &str) {
        let line = format!("ferry: {message}");
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for ConsoleReporter {
    fn planned(&self, _files: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    fn file_started(&self, path: &str, _size: u64, resume_from: u64) {
        if let Some(bar) = &self.bar {
            // Reused bytes never cross the wire: counting them as progress
            // would make the rate and ETA lie.
            if let Some(total) = bar.length() {
                bar.set_length(total.saturating_sub(resume_from));
            }
            bar.set_message(printable(path).into_owned());
        }
    }

    fn bytes_done(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn file_finished(&self, path: &str, outcome: Outcome) {
        let show = match outcome {
            Outcome::WouldSend | Outcome::WouldDelete => true,
            Outcome::Sent
            | Outcome::Resumed
            | Outcome::Delta
            | Outcome::Created
            | Outcome::Deleted => self.verbose,
            Outcome::Skipped => false,
        };
        if show {
            let path = printable(path);
            let line = match outcome {
                Outcome::Resumed => format!("{path} (resumed)"),
                Outcome::Delta => format!("{path} (delta)"),
                // rsync's word for it.
                Outcome::Deleted | Outcome::WouldDelete => format!("deleting {path}"),
                _ => path.to_string(),
            };
            self.println(&line);
        }
    }

    fn file_failed(&self, _path: &str, error: &Error) {
        self.warn(&error.to_string());
    }

    fn warning(&self, message: &str) {
        self.warn(message);
    }

    fn note(&self, message: &str) {
        if self.verbose {
            self.println(message);
        }
    }
}

/// The closing summary line.
pub fn summary(stats: &Stats) -> String {
    let secs = stats.elapsed.as_secs_f64().max(0.001);
    let files = stats.files_done();
    let deleted = match stats.deleted {
        0 => String::new(),
        n => format!(", {n} deleted"),
    };
    let reconnects = match stats.reconnects {
        0 => String::new(),
        1 => ", after 1 reconnect".to_string(),
        n => format!(", after {n} reconnects"),
    };
    format!(
        "{files} file{} sent ({}), {} resumed, {} by delta ({} reused), {} up to date, {} failed, in {:.2} s ({}/s){deleted}{reconnects}",
        if files == 1 { "" } else { "s" },
        human(stats.bytes_sent),
        stats.files_resumed,
        stats.files_delta,
        human(stats.bytes_reused),
        stats.files_skipped,
        stats.files_failed,
        secs,
        human((stats.bytes_sent as f64 / secs) as u64),
    )
}

pub(super) fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}
