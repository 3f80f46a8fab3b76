//! docs/RSYNC.md's option tables against the binary: every option a row
//! calls **yes** or **different** is accepted, every one it calls **no** is
//! refused before anything is touched. The page is what rsync users read
//! to decide whether their script runs; it must not promise more, or less,
//! than ferry does.
mod common;

use std::fs;
use std::path::Path;

use common::*;

/// One option of a row: its name, the row's verdict, the whole row.
struct Documented {
    name: String,
    value: Option<String>,
    supported: bool,
    row: String,
}

/// The rows of the tables under "## The options".
fn documented() -> Vec<Documented> {
    let page = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/RSYNC.md"))
        .expect("docs/RSYNC.md");
    let options = page
        .split("## The options")
        .nth(1)
        .expect("a section named \"The options\"");
    let tables = options
        .split("## Options ferry has")
        .next()
        .unwrap_or(options);
    let mut out = Vec::new();
    for row in tables.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let verdict = cells.get(1).map(|c| c.trim()).unwrap_or("");
        let supported = match verdict {
            "yes" | "different" => true,
            "no" => false,
            other => panic!("a row's verdict is yes, different or no, not {other:?}: {row}"),
        };
        let names: Vec<&str> = cells[0]
            .split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|span| span.split(", "))
            .filter(|name| name.starts_with('-') && *name != "--no-OPTION")
            .collect();
        // A value shown on one name of the row (`-@, --modify-window=NUM`)
        // goes with its other names too.
        let shown = names.iter().find_map(|n| n.split_once('=').map(|(_, v)| v));
        for name in names {
            let bare = name.split('=').next().unwrap_or(name);
            out.push(Documented {
                name: bare.to_string(),
                value: value_for(bare, shown),
                supported,
                row: row.to_string(),
            });
        }
    }
    assert!(
        out.len() > 150,
        "too few options read from docs/RSYNC.md: {}",
        out.len()
    );
    out
}

/// A value that means something to the option (rows show placeholders).
fn value_for(name: &str, shown: Option<&str>) -> Option<String> {
    let value = match (shown, name) {
        (Some("FLAGS"), _) => "name1",
        (Some("FORMAT"), _) => "%n",
        (Some("CHMOD"), _) => "u+r",
        (Some("RULE"), _) => "- nothing",
        (Some("PATTERN"), _) => "nothing",
        (Some("FILE"), _) => "/dev/null",
        (Some("COMMAND"), _) => "ssh",
        (Some("PROGRAM"), _) => "rsync",
        (Some("SIZE" | "RATE"), _) => "1M",
        (Some("DIR"), _) => ".ferry-test-dir",
        (Some("CONVERT_SPEC"), _) | (None, "--iconv") => ".",
        (Some(_), _) => "1",
        (None, "-T" | "--temp-dir" | "--backup-dir" | "--partial-dir") => ".ferry-test-dir",
        (None, "--suffix") => ".old",
        (None, "-@" | "--modify-window" | "--max-delete" | "--timeout" | "--contimeout") => "1",
        (None, "--port") => "22",
        (None, _) => return None,
    };
    Some(value.to_string())
}

#[test]
fn every_documented_option_is_accepted_or_refused_as_the_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("file"), b"data").unwrap();
    let mut wrong = Vec::new();
    for doc in documented() {
        let dest = dir.path().join("dest");
        let _ = fs::remove_dir_all(&dest);
        let mut cmd = FerryCmd::bare(dir.path());
        cmd.current_dir(dir.path()).arg("-n");
        match (&doc.value, doc.name.starts_with("--")) {
            (Some(value), true) => cmd.arg(format!("{}={value}", doc.name)),
            (Some(value), false) => cmd.arg(&doc.name).arg(value),
            (None, _) => cmd.arg(&doc.name),
        };
        let out = cmd.arg("src/").arg("dest").run_default();
        let refused = out.code != 0
            && (out.stderr.contains("not supported")
                || out.stderr.contains(doc.name.trim_start_matches('-')));
        let unknown = ["unknown option", "not supported", "does not support"]
            .iter()
            .any(|words| out.stderr.contains(words));
        match doc.supported {
            true if unknown => wrong.push(format!(
                "{}: the page says supported, ferry refuses it\n  {}\n  {}",
                doc.name,
                doc.row,
                out.stderr.trim()
            )),
            false if !refused => wrong.push(format!(
                "{}: the page says no, ferry takes it (exit {})\n  {}",
                doc.name, out.code, doc.row
            )),
            false if dest.exists() => wrong.push(format!(
                "{}: refused after making the destination",
                doc.name
            )),
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/RSYNC.md and ferry disagree:\n{}",
        wrong.join("\n")
    );
}
