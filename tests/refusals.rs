//! Input ferry refuses: a destination whose names would take writes out of
//! it. Nothing is written outside the destination, nothing that was there
//! is lost, the refusal names the path, and the rest of the run goes on
//! (exit 23).
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
enum Way {
    Push,
    Pull,
}

/// A destination holding symlinks where the source has a directory and
/// where ferry's partial and sidecar for a file would go, each pointing
/// outside it. The partial and sidecar are refused; the symlink where a
/// directory goes is replaced by the directory, as rsync replaces it (the
/// link removed, never followed).
#[test]
fn symlinks_in_the_destination_never_take_writes_out_of_it() {
    for way in [Way::Push, Way::Pull] {
        let sshd = Sshd::start();
        let (src, dest) = match way {
            Way::Push => (sshd.local().join("src"), sshd.remote().join("dest")),
            Way::Pull => (sshd.remote().join("src"), sshd.local().join("dest")),
        };
        let outside = sshd.dir().join(format!("outside-{way:?}"));
        fs::create_dir_all(&outside).unwrap();
        write_file(&outside.join("victim.txt"), b"precious");

        write_file(&src.join("sub/x.txt"), b"into the subdirectory");
        write_file(&src.join("f.txt"), &random_bytes(3 * MIB as usize, 1));
        write_file(&src.join("g.txt"), &random_bytes(300_000, 2));
        write_file(&src.join("fine.txt"), b"this one arrives");

        fs::create_dir_all(&dest).unwrap();
        symlink(&outside, dest.join("sub")).unwrap();
        symlink(outside.join("victim.txt"), partial_path(&dest, "f.txt")).unwrap();
        symlink(outside.join("victim.txt"), meta_path(&dest, "g.txt")).unwrap();

        let (from, to) = match way {
            Way::Push => (format!("{}/", src.display()), sshd.spec(&dest)),
            Way::Pull => (format!("{}/", sshd.spec(&src)), dest.display().to_string()),
        };
        let out = sshd.ferry().args(["-a", &from, &to]).run_default();
        out.assert_code(23);
        for refused in [".f.txt.ferry-partial", ".g.txt.ferry-meta"] {
            out.assert_stderr_contains(refused);
        }
        assert_outside_untouched(&outside, &format!("{way:?}\n{out}"));
        assert_eq!(
            fs::read(dest.join("fine.txt")).unwrap(),
            b"this one arrives"
        );
        let sub = fs::symlink_metadata(dest.join("sub")).unwrap();
        assert!(sub.is_dir(), "sub is a directory now\n{out}");
        assert_eq!(
            fs::read(dest.join("sub/x.txt")).unwrap(),
            b"into the subdirectory"
        );
        assert!(!dest.join("f.txt").exists() && !dest.join("g.txt").exists());
    }
}

fn assert_outside_untouched(outside: &Path, context: &str) {
    assert_eq!(
        list_tree(outside),
        vec!["victim.txt".to_string()],
        "something was written outside the destination: {context}"
    );
    assert_eq!(
        fs::read(outside.join("victim.txt")).unwrap(),
        b"precious",
        "{context}"
    );
}
