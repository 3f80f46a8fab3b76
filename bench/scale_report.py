#!/usr/bin/env python3
"""Turn bench/scale.sh's per-run results into the scale section of
docs/BENCHMARKS.md.

Called by bench/scale.sh with everything in B_* environment variables; not
meant to be run by hand. Replaces the text between <!-- scale --> and
<!-- /scale --> of the document; when there is none, inserts the section
before <!-- notes --> (or at the end). Nothing else in the file changes.
"""

import statistics

from reportlib import env, load, put_section


def stats_of(rows, scen, tool):
    mine = [r for r in rows if r["scenario"] == scen and r["tool"] == tool]
    ok = [r for r in mine if r["status"] == "ok"]
    if not ok:
        return None
    walls = [float(r["wall_s"]) for r in ok]
    return {
        "n": len(ok),
        "failed": len(mine) - len(ok),
        "walls": walls,
        "wall": statistics.median(walls),
        "rss": statistics.median(float(r["maxrss_kib"]) / 1024 for r in ok),
        "rss_max": max(float(r["maxrss_kib"]) / 1024 for r in ok),
        "cpu": statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in ok),
        "server": statistics.median(float(r["server_cpu_s"] or 0) for r in ok),
        "notes": sorted({r["note"] for r in ok if r["note"]}),
        "by_run": {r["run"]: float(r["wall_s"]) for r in ok},
    }


def ratio(a, b):
    return a / b if b else float("nan")


def run_ratios(f, t):
    both = sorted(set(f["by_run"]) & set(t["by_run"]))
    rs = [f["by_run"][k] / t["by_run"][k] for k in both if t["by_run"][k] > 0]
    return f" ({min(rs):.2f}–{max(rs):.2f})" if len(rs) > 1 else ""


def table(rows, scen, tools, payload=None, link=None, against=None):
    """payload: bytes moved, for a MiB/s column; link: bytes/s of the link;
    against: the last column is each tool's wall over this tool's, rather
    than ferry's over each tool's."""
    head = ["tool", "median wall s", "min–max wall s"]
    if payload:
        head.append("MiB/s")
    if link:
        head.append("% of link")
    head += ["peak RSS MiB", "user+sys CPU s", "server CPU s",
             f"tool/{against} wall" if against else "ferry/tool wall"]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | " + " | ".join("---:" for _ in head[1:]) + " |"]
    ferry = stats_of(rows, scen, "ferry")
    present = {r["tool"] for r in rows if r["scenario"] == scen}
    for tool in [t for t in tools if t in present]:
        s = stats_of(rows, scen, tool)
        if not s:
            lines.append(f"| `{tool}` | failed | | " + "| " * (len(head) - 3) + "|")
            continue
        cells = [f"`{tool}`", f"{s['wall']:.2f}", f"{min(s['walls']):.2f}–{max(s['walls']):.2f}"]
        if payload:
            cells.append(f"{payload / s['wall'] / (1 << 20):.1f}")
        if link:
            cells.append(f"{100 * payload / s['wall'] / link:.0f} %")
        rss = f"{s['rss']:.1f}"
        if s["rss_max"] > 1.1 * s["rss"]:
            rss += f" (max {s['rss_max']:.1f})"
        cells += [rss, f"{s['cpu']:.2f}", f"{s['server']:.2f}"]
        base = stats_of(rows, scen, against) if against else None
        if against:
            cells.append(f"{ratio(s['wall'], base['wall']):.2f}{run_ratios(s, base)}" if base else "")
        elif tool == "ferry" or not ferry:
            cells.append("1.00" if tool == "ferry" else "")
        else:
            cells.append(f"{ratio(ferry['wall'], s['wall']):.2f}{run_ratios(ferry, s)}")
        if s["failed"]:
            cells[0] += f" ({s['failed']} failed)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_rows(rows):
    out = []
    link = float(env("B_WAN_RATE_MBIT")) * 1e6 / 8
    mib = 1 << 20

    def cmp_row(label, scen, peer, limit=1.0, tool="ferry"):
        f, p = stats_of(rows, scen, tool), stats_of(rows, scen, peer)
        if f and p:
            r = f["wall"] / p["wall"]
            ok = "**met**" if r <= limit else "**not met**"
            out.append(f"| {label} | {tool} {f['wall']:.2f} s vs {peer} {p['wall']:.2f} s "
                       f"({r:.2f}×) | {ok} |")

    cmp_row("tree: initial push ≤ rsync -a", "tree-push", "rsync")
    cmp_row("tree: no-op ≤ rsync -a", "tree-noop", "rsync")
    for scen, payload, share, label in (
        ("wan-push", int(env("B_WAN_MIB")) * mib, 0.9, "WAN push of one file ≥ 90 % of the link"),
        ("wan-pull", int(env("B_WAN_MIB")) * mib, 0.9, "WAN pull of one file ≥ 90 % of the link"),
        ("wan-tree", int(env("B_TREE_BYTES") or 0), 0.7, "WAN tree push ≥ 70 % of the link"),
        ("wan-tree-pull", int(env("B_TREE_BYTES") or 0), 0.7, "WAN tree pull ≥ 70 % of the link"),
    ):
        f = stats_of(rows, scen, "ferry")
        if f and payload:
            got = payload / f["wall"] / link
            ok = "**met**" if got >= share else "**not met**"
            out.append(f"| {label} | {payload / f['wall'] / mib:.1f} MiB/s of "
                       f"{link / mib:.1f} MiB/s = {100 * got:.0f} % (wall {f['wall']:.2f} s) | {ok} |")
    for scen, what in (("wan-push", "push"), ("wan-pull", "pull")):
        secs = [float(r["note"].split("connected_s=")[1].split()[0]) for r in rows
                if r["scenario"] == scen and r["tool"] == "ferry" and "connected_s=" in r["note"]]
        payload = int(env("B_WAN_MIB")) * mib
        if secs:
            got = payload / statistics.median(secs) / link
            out.append(f"| WAN {what} of one file, once connected (ferry's own summary, "
                       "planning included) ≥ 90 % | "
                       f"{payload / statistics.median(secs) / mib:.1f} MiB/s = {100 * got:.0f} % "
                       f"({statistics.median(secs):.2f} s) | {'met' if got >= 0.9 else 'not met'} "
                       "on this reading |")
    for kind in ("ram", "disk"):
        for tool, limit in (("ferry-stock", 1.0), ("ferry", 0.6)):
            cmp_row(f"100,000 files ({kind}): fresh push, {tool} ≤ {limit}× rsync",
                    f"tree100k-push-{kind}", "rsync", limit, tool)
        cmp_row(f"100,000 files ({kind}): no-op ≤ 0.5× rsync", f"tree100k-noop-{kind}",
                "rsync", 0.5)
    heavy = [stats_of(rows, f"tree100k-{what}-{kind}", tool) for what in ("push", "noop")
             for kind in ("ram", "disk") for tool in ("ferry", "ferry-stock")]
    heavy = [h for h in heavy if h]
    if heavy:
        top = max(h["rss_max"] for h in heavy)
        ok = "**met**" if top <= 64 else "**not met**"
        out.append(f"| 100,000 files: peak memory ≤ 64 MiB | ferry {top:.1f} MiB "
                   f"(largest run) | {ok} |")
    big = [stats_of(rows, s, "ferry") for s in ("resume", "noop")]
    big = [b for b in big if b]
    if big:
        top = max(b["rss_max"] for b in big)
        ok = "**met**" if top <= 64 else "**not met**"
        out.append(f"| 1 GiB file: peak memory ≤ 64 MiB | ferry {top:.1f} MiB (largest run of "
                   f"resume and no-op) | {ok} |")
    if not out:
        return ""
    return "\n".join(["| target (medians) | figures | result |", "| --- | --- | --- |"] + out)


def raw_table(rows):
    head = ["scenario", "run", "tool", "status", "wall s", "max RSS KiB", "user s", "sys s",
            "server CPU s", "note"]
    lines = ["| " + " | ".join(head) + " |", "| --- | ---: | --- | --- | " + "---: | " * 5 + "--- |"]
    for r in rows:
        lines.append("| " + " | ".join([r["scenario"], r["run"], r["tool"], r["status"], r["wall_s"],
                                        r["maxrss_kib"], r["user_s"], r["sys_s"],
                                        r["server_cpu_s"], r["note"]]) + " |")
    return "\n".join(lines)


def section(rows):
    big, wan = int(env("B_BIG_MIB")), int(env("B_WAN_MIB"))
    files, many = int(env("B_TREE_FILES")), int(env("B_BIG_TREE_FILES"))
    tree_bytes = int(env("B_TREE_BYTES") or 0)
    link = float(env("B_WAN_RATE_MBIT")) * 1e6 / 8
    mib = 1 << 20
    present = {r["scenario"] for r in rows}
    cut = sorted({r["note"] for r in rows if r["scenario"] == "resume" and r["tool"] != "scp"})
    parts = [
        "<!-- scale -->",
        "## At scale: resume, no-op, trees of small files, an emulated WAN",
        "",
        "<!-- Generated by bench/scale.sh (rewritten on each run of it; bench/run.sh keeps it "
        "verbatim). -->",
        "",
        "Same private loopback `sshd`, ssh config and keys as the tables above; every tool "
        "with its default cipher"
        + (f" (OpenSSH tools forced to `{env('B_PEER_CIPHER')}`)" if env("B_PEER_CIPHER") else "")
        + ". ferry runs with `--remote-ferry` pointing at its own binary (the helper "
        "installed on the server); it starts the helper only when a file needs remote "
        "hashing. Runs are interleaved (run 1 of every tool, then run 2...). Columns as in "
        "the push/pull tables; peak RSS is the largest single process.",
        "",
        f"**Machine:** {env('B_NPROC')} cores ({env('B_CPU')}), {env('B_MEM')} RAM, Linux "
        f"{env('B_KERNEL')}, {env('B_FS')}; {env('B_OPENSSH')}, {env('B_RSYNC')}; "
        f"{env('B_FERRY')} (commit {env('B_COMMIT')}), release build. Run {env('B_DATE')}, "
        f"{env('B_RUNS')} run(s) per tool and scenario; load average {env('B_START_LOAD')} at "
        f"the start, {env('B_END_LOAD')} at the end.",
        "",
        "Reproduce (from the repository root):",
        "",
        "```sh",
        env("B_CMDLINE"),
        "```",
        "",
    ]
    if "resume" in present:
        parts += [
            f"### Resume of a {big} MiB push cut at 50 %",
            "",
            "Each tool's own copy is stopped with SIGTERM once the remote file reaches half "
            "the size (untimed; what was left: " + (", ".join(cut) or "?") + " bytes), then "
            "the rerun is timed: `ferry` again (it verifies the partial's tail against the "
            "source and, after the copy, both sides hash the whole file), `rsync --partial` "
            "again (the partial becomes the basis of its delta), `sftp` `reput` (appends "
            "after the existing size and checks nothing). `scp` cannot resume: its row is a "
            "whole copy.",
            "",
            table(rows, "resume", ["ferry", "rsync", "sftp", "scp"]),
            "",
        ]
    if "noop" in present:
        parts += [
            f"### No-op re-sync of the {big} MiB file",
            "",
            "The destination already has the file with the same size and mtime: "
            "`ferry -t` and `rsync -t` only compare metadata.",
            "",
            table(rows, "noop", ["ferry", "rsync"]),
            "",
        ]
    if "tree-push" in present:
        parts += [
            f"### A tree of {files:,} files of 0–16 KiB in {files // 100} directories "
            f"({tree_bytes / mib:.1f} MiB)",
            "",
            "Initial push into an absent directory (`ferry -a`, `rsync -a`, `scp -rp`, "
            "`rclone copy --sftp-disable-hashcheck` when installed), then a no-op re-sync "
            "(`ferry -a`, `rsync -a`, rclone). rclone's default check runs one remote md5sum "
            "per uploaded file through the shell; with it the 5,000 files took 211 s here.",
            "",
            "Initial push:",
            "",
            table(rows, "tree-push", ["ferry", "rsync", "scp", "rclone"], payload=tree_bytes),
            "",
            "No-op:",
            "",
            table(rows, "tree-noop", ["ferry", "rsync", "rclone"]),
            "",
        ]
    for kind, where in (("ram", "a RAM disk (tmpfs)"), ("disk", "disk")):
        if f"tree100k-push-{kind}" not in present:
            continue
        parts += [
            f"### {many:,} files of 0–4 KiB in {many // 100:,} directories, destination on {where}",
            "",
            "`ferry` has its helper on the server; `ferry-stock` is ferry's defaults where the "
            "server has no ferry (plain SFTP, the shell tier); `rsync -a`. Initial push into an "
            "absent directory:",
            "",
            table(rows, f"tree100k-push-{kind}", ["ferry", "ferry-stock", "rsync"], against="rsync"),
            "",
            "No-op re-sync:",
            "",
            table(rows, f"tree100k-noop-{kind}", ["ferry", "ferry-stock", "rsync"], against="rsync"),
            "",
        ]
    if present & {"wan-push", "wan-pull", "wan-tree", "wan-tree-pull"}:
        parts += [
            f"### Emulated WAN: {env('B_WAN_RATE_MBIT')} Mbit/s, "
            f"{2 * float(env('B_WAN_DELAY_MS')):.0f} ms round trip",
            "",
            "Through `bench/proxy.py --delay-ms "
            f"{env('B_WAN_DELAY_MS')} --rate-mbit {env('B_WAN_RATE_MBIT')}` (each direction "
            f"its own link of {link / mib:.1f} MiB/s; see the proxy's docstring). \"% of "
            "link\" is payload / wall time / link rate: the connection's setup (key exchange, "
            "authentication, a few round trips) counts against it, as it would for a user.",
            "",
            f"Push of a {wan} MiB file:",
            "",
            table(rows, "wan-push", ["ferry", "scp", "sftp", "rsync", "rclone"], payload=wan * mib, link=link),
            "",
            f"Pull of a {wan} MiB file:",
            "",
            table(rows, "wan-pull", ["ferry", "scp", "sftp", "rsync", "rclone"], payload=wan * mib, link=link),
            "",
            f"Initial push of the {files:,}-file tree:",
            "",
            table(rows, "wan-tree", ["ferry", "rsync", "rclone"], payload=tree_bytes, link=link),
            "",
            f"Pull of the {files:,}-file tree back into an absent local directory:",
            "",
            table(rows, "wan-tree-pull", ["ferry", "rsync"], payload=tree_bytes, link=link),
            "",
        ]
    targets = target_rows(rows)
    if targets:
        parts += ["### Targets", "", targets, ""]
    parts += [
        "<details><summary>Every scale run</summary>",
        "",
        raw_table(rows),
        "",
        "</details>",
        "<!-- /scale -->",
    ]
    return "\n".join(parts)


def main():
    rows = load(env("B_RESULTS"))
    put_section(env("B_DOC"), "scale", section(rows))
    print(target_rows(rows))


if __name__ == "__main__":
    main()
