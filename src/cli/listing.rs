//! `--list-only`, and a source given without a destination: rsync's
//! listing of the source on stdout, nothing copied. A remote source is
//! listed over one connection (no reconnects: a listing is quick to redo).

use std::io::Write;
use std::sync::Arc;

use super::exit::ExitCode;
use super::lines::Lines;
use super::outformat::{list_line, ListEntry};
use super::progress::{ConsoleReporter, Display};
use super::settings::{Direction, Settings};
use crate::endpoint::{Kind, LocalFs};
use crate::engine::list::{list_sources, Listed};
use crate::engine::Stats;
use crate::error::Result;
use crate::report::Reporter;
use crate::ssh::meter::Meter;

/// Lists the sources; returns the exit status.
pub(super) fn main(settings: &Settings, runtime: &tokio::runtime::Runtime) -> i32 {
    // Errors go to stderr as in a copy; the listing has no other lines.
    let errors = ConsoleReporter::new(Display::silent(), Arc::new(Lines::none()), "");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (human, quiet) = (settings.human_level, settings.quiet);
    let mut stats = Stats::default();
    let result = {
        let mut show = |entry: Listed<'_>| {
            if !quiet {
                // A closed stdout ends nothing: the exit status still tells.
                let _ = writeln!(out, "{}", list_line(&shown(&entry), human));
            }
        };
        runtime.block_on(list(settings, &errors, &mut show, &mut stats))
    };
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::of_stats(&stats).code(),
        Err(e) => super::fail(&e),
    }
}

async fn list(
    settings: &Settings,
    reporter: &dyn Reporter,
    show: &mut dyn FnMut(Listed<'_>),
    stats: &mut Stats,
) -> Result<()> {
    let (sources, opts) = (&settings.sources, &settings.options);
    let Direction::Pull(spec) = &settings.direction else {
        return list_sources(&LocalFs::default(), sources, opts, reporter, show, stats).await;
    };
    let meter = Meter::new(settings.bwlimit);
    let (remote, conn) = super::connect(spec, settings, &meter, Default::default()).await?;
    let result = list_sources(&remote, sources, opts, reporter, show, stats).await;
    conn.close().await;
    result
}

fn shown<'a>(entry: &Listed<'a>) -> ListEntry<'a> {
    ListEntry {
        type_char: match entry.meta.kind {
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            _ => '-',
        },
        mode: entry.meta.mode,
        size: entry.meta.size,
        mtime: entry.meta.mtime.secs,
        name: entry.name,
        target: entry.target,
    }
}
