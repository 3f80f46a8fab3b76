//! `ferry demo`, the README's first command: it must run on a machine with
//! no server set up, show each step's outcome, and leave nothing behind.
mod common;

use common::*;
use std::time::Duration;

#[test]
fn the_demo_runs_every_step_and_cleans_up() {
    let home = tempfile::tempdir().expect("temp dir");
    let out = FerryCmd::bare(home.path())
        .arg("demo")
        .run(Duration::from_secs(180));
    out.assert_ok();
    for shown in [
        "300 files sent",
        "(exit 10)",
        "1 resumed",
        "1 by delta",
        "300 up to date",
        "byte-identical to its source",
    ] {
        assert!(out.stdout.contains(shown), "missing {shown:?}\n{out}");
    }
    // The delta step moved a few blocks, not the 96 MiB file.
    let delta = out
        .stdout
        .lines()
        .find(|line| line.contains("1 by delta"))
        .expect("the delta step's summary");
    assert!(delta.contains("KiB)"), "{delta}");
    let dir = out
        .stdout
        .split("serving ")
        .nth(1)
        .and_then(|rest| rest.split("/server").next())
        .expect("the demo names its directory");
    assert!(
        !std::path::Path::new(dir).exists(),
        "{dir} left behind\n{out}"
    );
}
