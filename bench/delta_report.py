#!/usr/bin/env python3
"""Turn bench/delta.sh's per-run results into the delta section of
docs/BENCHMARKS.md.

Called by bench/delta.sh with everything in B_* environment variables; not
meant to be run by hand. Replaces the text between <!-- delta --> and
<!-- /delta --> of the document; when there is none, inserts the section
before <!-- notes --> (or at the end). Nothing else in the file changes.
"""

import statistics
import sys

from reportlib import env, load, put_section

SCENARIOS = ["edits", "insert", "append"]
TOOLS = ["ferry", "rsync"]
APPEND_SLACK = 1.02


def human(n):
    n = float(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def nbytes(n):
    """Exact count and a human form: 1,234,567 (1.18 MiB)."""
    n = round(n)
    if n < 1024:
        return f"{n:,} B"
    return f"{n:,} ({human(n)})"


def med(rows, key, conv=float):
    return statistics.median(conv(r[key]) for r in rows)


def summarize(rows):
    out = {}
    for scen in SCENARIOS:
        for tool in TOOLS:
            mine = [r for r in rows if r["scenario"] == scen and r["tool"] == tool]
            if not mine:
                continue
            walls = [float(r["wall_s"]) for r in mine]
            s = {
                "n": len(mine),
                "wall": statistics.median(walls),
                "wall_min": min(walls),
                "wall_max": max(walls),
                "up": med(mine, "up", int),
                "down": med(mine, "down", int),
                "total": statistics.median(int(r["up"]) + int(r["down"]) for r in mine),
                "cpu": statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in mine),
                "srv": med(mine, "server_cpu_s"),
            }
            if tool == "ferry" and mine[0]["send"]:
                s["send"] = med(mine, "send", int)
                s["reuse"] = med(mine, "reuse", int)
            out[(scen, tool)] = s
    return out


def describe(scen):
    big, ins_old = int(env("B_BIG")), int(env("B_INSERT_OLD"))
    ins_len, app = int(env("B_INSERT_LEN")), int(env("B_APPEND_LEN"))
    elen, ecount, eshift = int(env("B_EDIT_LEN")), int(env("B_EDIT_COUNT")), int(env("B_EDIT_SHIFT"))
    return {
        "edits": f"OLD = {human(big)} random; NEW = OLD with {ecount} regions of "
        f"{human(elen)} overwritten with other random bytes at offsets "
        f"k × {human(big // ecount)} + {eshift:,} (k = 0..{ecount - 1}; not block aligned)",
        "insert": f"OLD = {human(ins_old)} random; NEW = {ins_len} random bytes + OLD "
        "(everything shifts by 100 bytes)",
        "append": f"OLD = {human(big)} random; NEW = OLD + {human(app)} random",
    }[scen]


def results_table(stats):
    out = [
        "| scenario | tool | median wall s | min–max wall s | bytes up (median) "
        "| bytes down (median) | total wire bytes (median) | ferry/rsync wall | ferry/rsync wire "
        "| client CPU s | server CPU s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scen in SCENARIOS:
        for tool in TOOLS:
            s = stats.get((scen, tool))
            if not s:
                continue
            f, r = stats.get((scen, "ferry")), stats.get((scen, "rsync"))
            if tool == "ferry" and f and r:
                wr = f"{f['wall'] / r['wall']:.2f}"
                br = f"{f['total'] / r['total']:.3f}"
            else:
                wr = br = ""
            out.append(
                f"| {scen} | `{tool}` | {s['wall']:.2f} | {s['wall_min']:.2f}–{s['wall_max']:.2f} "
                f"| {nbytes(s['up'])} | {nbytes(s['down'])} | {nbytes(s['total'])} | {wr} | {br} "
                f"| {s['cpu']:.2f} | {s['srv']:.2f} |"
            )
    return "\n".join(out)


def targets(stats):
    app = int(env("B_APPEND_LEN"))
    rows = []

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    for scen in ("edits", "insert"):
        f, r = stats.get((scen, "ferry")), stats.get((scen, "rsync"))
        if f and r:
            rows.append(
                f"| {scen}: wire bytes ferry ≤ rsync | ferry {nbytes(f['total'])} vs rsync "
                f"{nbytes(r['total'])} ({f['total'] / r['total']:.3f}×) | {verdict(f['total'] <= r['total'])} |"
            )
    f = stats.get(("append", "ferry"))
    if f:
        limit = APPEND_SLACK * app
        rows.append(
            f"| append: ferry wire bytes ≤ {APPEND_SLACK} × the {human(app)} appended "
            f"({limit:,.0f} B) | ferry {nbytes(f['total'])} = {f['total'] / app:.4f}× the "
            f"appended bytes | {verdict(f['total'] <= limit)} |"
        )
    for scen in SCENARIOS:
        f, r = stats.get((scen, "ferry")), stats.get((scen, "rsync"))
        if f and r:
            rows.append(
                f"| {scen}: wall time ferry ≤ rsync | ferry {f['wall']:.2f} s vs rsync "
                f"{r['wall']:.2f} s ({f['wall'] / r['wall']:.2f}×) | {verdict(f['wall'] <= r['wall'])} |"
            )
    return "\n".join(
        ["| target (medians) | figures | result |", "| --- | --- | --- |"] + rows
    )


def accounting_table(stats, diag):
    d = {}
    for row in diag:
        d[(row["scenario"], row["key"])] = row["value"]
    out = [
        "| scenario | ferry: reused / sent by delta (`-vv` log) | ferry wire − data sent "
        "| rsync: matched / literal data (`--stats`) | rsync wire − literal data |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for scen in SCENARIOS:
        f = stats.get((scen, "ferry"))
        if not f:
            continue
        if "send" in f:
            fa = f"{nbytes(f['reuse'])} / {nbytes(f['send'])}"
            fo = nbytes(f["total"] - f["send"])
        else:
            fa = fo = "–"
        lit, mat = d.get((scen, "Literal data")), d.get((scen, "Matched data"))
        wire = d.get((scen, "proxy wire bytes"))
        if lit and mat:
            ra = f"{nbytes(int(mat))} / {nbytes(int(lit))}"
            ro = nbytes(int(wire) - int(lit)) if wire else "–"
        else:
            ra = ro = "–"
        out.append(f"| {scen} | {fa} | {fo} | {ra} | {ro} |")
    return "\n".join(out)


def raw_table(rows):
    out = [
        "| scenario | run | tool | wall s | user s | sys s | server CPU s | bytes up "
        "| bytes down | connections | ferry delta reuse | ferry delta send |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['run']} | {r['tool']} | {r['wall_s']} | {r['user_s']} "
            f"| {r['sys_s']} | {r['server_cpu_s']} | {int(r['up']):,} | {int(r['down']):,} "
            f"| {r['conns']} | {int(r['reuse']):,} | {int(r['send']):,} |"
            if r["reuse"]
            else f"| {r['scenario']} | {r['run']} | {r['tool']} | {r['wall_s']} | {r['user_s']} "
            f"| {r['sys_s']} | {r['server_cpu_s']} | {int(r['up']):,} | {int(r['down']):,} "
            f"| {r['conns']} | | |"
        )
    return "\n".join(out)


def section(rows, diag):
    stats = summarize(rows)
    scens = [s for s in SCENARIOS if (s, "ferry") in stats]
    scale = int(env("B_SCALE") or "1")
    cipher = (
        f" rsync's ssh was forced to `{env('B_PEER_CIPHER')}` with `BENCH_PEER_CIPHER`."
        if env("B_PEER_CIPHER")
        else " Each tool used its own default cipher preference, as in the push/pull "
        "tables."
    )
    parts = [
        "<!-- delta -->",
        "## Delta transfers: updating an existing remote file, ferry vs rsync",
        "",
        "<!-- Generated by bench/delta.sh (rewritten on each run of it; bench/run.sh "
        "keeps it verbatim). -->",
        "",
        "The remote destination already holds OLD; the local NEW differs a little. "
        "Both tools go through a byte-counting TCP proxy (`bench/proxy.py`) in front of "
        "the same private loopback `sshd`, which counts the SSH stream in each direction "
        "(TCP payload: encrypted packets, MACs, key exchange; no TCP/IP headers). "
        "**up** = client → server, **down** = server → client.",
        "",
        "- `ferry -t -vv --ssh-config CFG --remote-ferry target/release/ferry NEW "
        "ferrybench-proxy:/abs/dst` (the remote hashing helper `ferry --server` runs "
        "over the same SSH connection; every run's log was checked for `remote hashing "
        "on ...: helper`)",
        "- `rsync -e \"ssh -F CFG -o BatchMode=yes\" NEW ferrybench-proxy:/abs/dst` "
        "(defaults: delta algorithm, no `-z`, no `--inplace`; like ferry it builds a "
        "temp file and renames it)",
        "",
        "Before every run the pristine OLD is copied to the destination with an mtime of "
        "2000-01-01 (NEW's is newer, so both tools' size+mtime quick check sees a "
        "change), then `sync`. Runs are interleaved (ferry, rsync, ferry, rsync, ...); "
        "after each, the remote file was compared with NEW by `cmp`. OLD and NEW are "
        "in the page cache on both ends.",
        "",
        "Scenarios:",
        "",
    ]
    parts += [f"- **{s}**: {describe(s)}" for s in scens]
    parts += [
        "",
        f"**Machine:** {env('B_NPROC')} cores ({env('B_CPU')}), {env('B_MEM')} RAM, "
        f"Linux {env('B_KERNEL')}, {env('B_FS')} file system; {env('B_OPENSSH')}, "
        f"{env('B_RSYNC')}; {env('B_FERRY')} (commit {env('B_COMMIT')}), release build. "
        f"Run {env('B_DATE')}, {env('B_RUNS')} run(s) per tool and scenario; load average "
        f"(1, 5, 15 min) {env('B_START_LOAD')} at the start, {env('B_END_LOAD')} at the end."
        f"{cipher}",
        "",
    ]
    if scale != 1:
        parts += [
            f"**Scaled-down development run** (`BENCH_DELTA_SCALE={scale}`: file sizes "
            f"and the appended size divided by {scale}); not representative.",
            "",
        ]
    parts += [
        "Reproduce (from the repository root):",
        "",
        "```sh",
        env("B_CMDLINE"),
        "```",
        "",
        f"### Results (medians over {env('B_RUNS')} run{'s' if env('B_RUNS') != '1' else ''})",
        "",
        results_table(stats),
        "",
        "ferry/rsync: ferry's median / rsync's median; below 1 means ferry is faster or "
        "sends fewer bytes. Wall time is `/usr/bin/time` `%e` of the client command; "
        "client CPU is its `%U + %S` (with rsync's `ssh` child); server CPU is measured "
        "as in the push/pull tables (per-connection `sshd`, `sftp-server`, "
        "`ferry --server` or the remote `rsync`, including processes orphaned by sshd). "
        "The proxy runs on the same 2 cores; it moves about 500 MB/s in this setup, "
        "so its cost is a few ms for the ≤ 11 MiB per run here.",
        "",
        "### Targets",
        "",
        targets(stats),
        "",
        "### What the bytes were",
        "",
        "ferry's split comes from its `delta path=... reuse=N send=N` log line (median "
        "over the timed runs); rsync's from one extra, untimed `rsync --stats` run per "
        "scenario through the same proxy. \"wire − data\" is everything else on the "
        "wire: SSH handshake and framing, block hashes or signatures, protocol requests.",
        "",
        accounting_table(stats, diag),
        "",
        "<details><summary>Every delta run</summary>",
        "",
        raw_table(rows),
        "",
        "</details>",
        "<!-- /delta -->",
    ]
    return "\n".join(parts), stats


def main():
    rows = load(env("B_RESULTS"))
    diag = load(env("B_DIAG"))
    text, stats = section(rows, diag)
    put_section(env("B_DOC"), "delta", text)
    print("\n" + results_table(stats) + "\n\n" + targets(stats) + "\n\n"
          + accounting_table(stats, diag), file=sys.stderr)


if __name__ == "__main__":
    main()
