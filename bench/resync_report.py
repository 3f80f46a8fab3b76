#!/usr/bin/env python3
"""Turn bench/resync.sh's per-run results into the resync section of
docs/BENCHMARKS.md (between <!-- resync --> and <!-- /resync -->; inserted
before the notes when absent).

Called by bench/resync.sh with everything in B_* environment variables; not
meant to be run by hand.
"""

import statistics

from reportlib import env, load, put_section

SCENARIOS = {
    "same": "identical content, only the mtime differs",
    "edits": "8 scattered 4 KiB edits",
}
TARGET = 1.2


def summary(rows, scen, tool):
    mine = [r for r in rows if r["scenario"] == scen and r["tool"] == tool]
    walls = [float(r["wall_s"]) for r in mine]
    return {
        "wall": statistics.median(walls),
        "range": f"{min(walls):.2f}-{max(walls):.2f}",
        "cpu": statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in mine),
        "srv": statistics.median(float(r["server_cpu_s"]) for r in mine),
    }


def main():
    rows = load(env("B_RESULTS"))
    size = int(env("B_SIZE"))
    lines = [
        "<!-- resync -->",
        "### Re-sync on a stock server (the shell tier)",
        "",
        f"A {size / (1 << 30):.2f} GiB remote file with an old mtime brought up to"
        " date, the server without ferry (ferry's defaults: SFTP and the shell"
        f" hashing tier): `ferry -a` against `rsync -a -e ssh`, {env('B_RUNS')} runs"
        " each, interleaved, medians (min-max) of wall time; CPU in seconds."
        " Reproduce: `bash bench/resync.sh`.",
        "",
        f"{env('B_FERRY')} ({env('B_COMMIT')}); {env('B_RSYNC')};"
        f" {env('B_OPENSSH')}; {env('B_NPROC')} cores, {env('B_CPU')},"
        f" {env('B_MEM')}, {env('B_FS')}.",
        "",
        "| scenario | ferry | rsync | ferry / rsync | target | client CPU ferry / rsync | server CPU ferry / rsync |",
        "|---|---|---|---|---|---|---|",
    ]
    for scen, what in SCENARIOS.items():
        f, r = summary(rows, scen, "ferry"), summary(rows, scen, "rsync")
        ratio = f["wall"] / r["wall"]
        met = "met" if ratio <= TARGET else "not met"
        lines.append(
            f"| {what} | {f['wall']:.2f} s ({f['range']}) | {r['wall']:.2f} s ({r['range']})"
            f" | {ratio:.2f}x | <= {TARGET}x: {met} | {f['cpu']:.2f} / {r['cpu']:.2f}"
            f" | {f['srv']:.2f} / {r['srv']:.2f} |"
        )
    lines.append("<!-- /resync -->")
    put_section(env("B_DOC"), "resync", "\n".join(lines))


if __name__ == "__main__":
    main()
