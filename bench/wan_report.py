#!/usr/bin/env python3
"""Turn bench/wan.sh's per-run results into the far-links section of
docs/BENCHMARKS.md.

Called by bench/wan.sh with everything in B_* environment variables; not
meant to be run by hand. Replaces the text between <!-- wan --> and
<!-- /wan --> of the document; when there is none, inserts the section
before <!-- notes --> (or at the end). Nothing else in the file changes.
"""

import statistics

from reportlib import env, load, put_section

MB = 1e6
MIB = 1 << 20

SCENARIOS = (
    ("file-push", "file", "push"),
    ("file-pull", "file", "pull"),
    ("tree-push", "tree", "push"),
    ("tree-pull", "tree", "pull"),
)
ORDER = ["ferry", "scp", "sftp", "rsync", "rclone"]


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def stats_of(rows, rtt, scen, tool):
    mine = [r for r in rows if r["rtt_ms"] == rtt and r["scenario"] == scen and r["tool"] == tool]
    if not mine:
        return None
    ok = [r for r in mine if r["status"] == "ok"]
    bad = sorted({r["status"] for r in mine if r["status"] != "ok"})
    s = {"n": len(mine), "ok": len(ok), "bad": bad}
    if ok:
        walls = [float(r["wall_s"]) for r in ok]
        s.update(
            walls=walls,
            wall=statistics.median(walls),
            rss=max(float(r["maxrss_kib"]) / 1024 for r in ok),
            cpu=statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in ok),
            server=statistics.median(float(r["server_cpu_s"] or 0) for r in ok),
            by_run={r["run"]: float(r["wall_s"]) for r in ok},
        )
        wire = [(fnum(r["wire_up"]), fnum(r["wire_down"])) for r in ok]
        wire = [u + d for u, d in wire if u is not None and d is not None]
        s["wire"] = statistics.median(wire) if wire else None
        conns = [fnum(r["conns"]) for r in ok if fnum(r["conns"]) is not None]
        s["conns"] = f"{min(conns):.0f}" + (f"–{max(conns):.0f}" if max(conns) > min(conns) else "") if conns else ""
    return s


def payload_of(what):
    return int(env("B_SIZE_MIB")) * MIB if what == "file" else int(env("B_TREE_BYTES") or 0)


def failure(s):
    """A cell for a tool without a successful run."""
    if "timeout" in s["bad"]:
        return f"timed out (> {env('B_TIMEOUT')} s)"
    if s["bad"] == ["skipped"]:
        return "skipped (timed out at a shorter RTT)"
    return " / ".join(s["bad"])


def rtts(rows):
    return sorted({r["rtt_ms"] for r in rows}, key=int)


def present_tools(rows, scen):
    have = {r["tool"] for r in rows if r["scenario"] == scen}
    return [t for t in ORDER if t in have]


def matrix(rows, scen, what, link):
    """Rows: tools; columns: RTTs; cells: MB/s and % of the link."""
    payload = payload_of(what)
    cols = rtts(rows)
    lines = [
        "| tool | " + " | ".join(f"{c} ms" for c in cols) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for tool in present_tools(rows, scen):
        cells = []
        for c in cols:
            s = stats_of(rows, c, scen, tool)
            if not s:
                cells.append("")
            elif not s["ok"]:
                cells.append(failure(s))
            else:
                rate = payload / s["wall"]
                cell = f"{rate / MB:.1f} MB/s ({100 * rate / link:.0f} %)"
                if s["ok"] < s["n"]:
                    cell += f" [{s['ok']}/{s['n']} ok]"
                cells.append(cell)
        lines.append(f"| `{tool}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_ratios(f, t):
    both = sorted(set(f["by_run"]) & set(t["by_run"]))
    rs = [f["by_run"][k] / t["by_run"][k] for k in both if t["by_run"][k] > 0]
    return f" ({min(rs):.2f}–{max(rs):.2f})" if len(rs) > 1 else ""


def details(rows, scen, what, link):
    payload = payload_of(what)
    head = ["RTT ms", "tool", "median wall s", "min–max wall s", "MB/s", "% of link",
            "ferry/tool wall", "on the wire MB", "TCP conns", "peak RSS MiB",
            "user+sys CPU s", "server CPU s"]
    lines = ["| " + " | ".join(head) + " |",
             "| ---: | --- | " + " | ".join("---:" for _ in head[2:]) + " |"]
    for c in rtts(rows):
        ferry = stats_of(rows, c, scen, "ferry")
        for tool in present_tools(rows, scen):
            s = stats_of(rows, c, scen, tool)
            if not s:
                continue
            if not s["ok"]:
                lines.append(f"| {c} | `{tool}` | {failure(s)} |" + " |" * (len(head) - 3))
                continue
            rate = payload / s["wall"]
            if tool == "ferry":
                ratio = "1.00"
            elif ferry and ferry["ok"]:
                ratio = f"{ferry['wall'] / s['wall']:.2f}{run_ratios(ferry, s)}"
            else:
                ratio = ""
            name = f"`{tool}`" + (f" ({s['ok']}/{s['n']} ok: {', '.join(s['bad'])})" if s["bad"] else "")
            lines.append("| " + " | ".join([
                c, name, f"{s['wall']:.2f}", f"{min(s['walls']):.2f}–{max(s['walls']):.2f}",
                f"{rate / MB:.1f}", f"{100 * rate / link:.0f} %", ratio,
                f"{s['wire'] / MB:.1f}" if s["wire"] is not None else "", s["conns"],
                f"{s['rss']:.1f}", f"{s['cpu']:.2f}", f"{s['server']:.2f}",
            ]) + " |")
    return "\n".join(lines)


def raw_table(rows):
    head = ["RTT ms", "scenario", "run", "tool", "status", "wall s", "max RSS KiB", "user s",
            "sys s", "server CPU s", "wire up B", "wire down B", "conns", "note"]
    lines = ["| " + " | ".join(head) + " |",
             "| ---: | --- | ---: | --- | --- | " + "---: | " * 8 + "--- |"]
    for r in rows:
        lines.append("| " + " | ".join((r[k] or "").replace("|", "\\|") for k in (
            "rtt_ms", "scenario", "run", "tool", "status", "wall_s", "maxrss_kib", "user_s",
            "sys_s", "server_cpu_s", "wire_up", "wire_down", "conns", "note")) + " |")
    return "\n".join(lines)


def section(rows):
    rate_mbit = float(env("B_RATE_MBIT"))
    link = rate_mbit * 1e6 / 8
    size = int(env("B_SIZE_MIB"))
    files = int(env("B_TREE_FILES"))
    tree_bytes = int(env("B_TREE_BYTES") or 0)
    present = {r["scenario"] for r in rows}
    flags = env("B_FERRY_FLAGS")
    window_bytes = int(env("B_WINDOW_BYTES") or 0)
    window = (
        f"at most {window_bytes / MIB:g} MiB of each connection in flight each way, as a "
        "TCP window caps it"
        if window_bytes
        else "no window limit"
    )
    parts = [
        "<!-- wan -->",
        "## Far links: scenario table",
        "",
        "<!-- Generated by bench/wan.sh (rewritten on each run of it; bench/run.sh keeps it "
        "verbatim). -->",
        "",
        f"Copies through one emulated link of {rate_mbit:g} Mbit/s "
        f"({link / MB:.1f} MB/s) in each direction at round-trip times of "
        f"{', '.join(rtts(rows))} ms: `bench/linkemu.rs` in front of the same private "
        "loopback `sshd` as above (see its doc comment: each direction is one bottleneck "
        "shared by every connection, then half the RTT of delay; a queue of one "
        f"bandwidth-delay product plus 1 MiB; {window}). A tool that opens several "
        "connections shares the one link. Every copy goes into an absent destination; "
        "\"MB/s\" is payload / wall time (MB = 10^6 bytes), \"% of link\" that over the "
        "link's rate: the connection's setup (key exchange, authentication, round trips "
        "before the first byte) counts against it, as it does for a user. \"On the wire\" "
        "is the SSH stream in both directions as the emulator counted it, \"TCP conns\" the "
        "connections the copy opened through it.",
        "",
        f"Tools: `ferry --ssh-config CFG{(' ' + flags) if flags else ''}` (plus `-v` for "
        "the file, `-a` for the tree), `scp` (`-rp` for the tree), `sftp -b` (put/get), "
        "`rsync` (`-a` for the tree, no `-z`), `rclone` (`copyto` with its defaults for "
        "the file, which check each copy with a remote md5sum; `copy "
        "--sftp-disable-hashcheck` for the tree)"
        + (f", {env('B_RCLONE')}" if env("B_RCLONE") else "")
        + ". "
        + (f"The OpenSSH tools were forced to `{env('B_PEER_CIPHER')}`; rclone has no "
           "cipher option."
           if env("B_PEER_CIPHER") else "Every tool with its default cipher.")
        + f" Each copy is capped at {env('B_TIMEOUT')} s: a tool that times out is "
        "skipped in that scenario at the larger RTTs. Runs are interleaved (run 1 of "
        "every tool, then run 2...); medians over the runs that succeeded.",
        "",
        f"**Machine:** {env('B_NPROC')} cores ({env('B_CPU')}), {env('B_MEM')} RAM, Linux "
        f"{env('B_KERNEL')}, {env('B_FS')}; {env('B_OPENSSH')}, {env('B_RSYNC')}; "
        f"{env('B_FERRY')} (commit {env('B_COMMIT')}), release build. Run {env('B_DATE')}, "
        f"{env('B_RUNS')} run(s) per RTT, scenario and tool; load average "
        f"{env('B_START_LOAD')} at the start, {env('B_END_LOAD')} at the end.",
        "",
        "Reproduce (from the repository root):",
        "",
        "```sh",
        env("B_CMDLINE"),
        "```",
        "",
    ]
    for scen, what, way in SCENARIOS:
        if scen not in present:
            continue
        if what == "file":
            title = (f"One {size} MiB file, {way}ed into an absent "
                     + ("remote" if way == "push" else "local") + " destination")
        else:
            title = (f"A tree of {files:,} files of 0–16 KiB in {files // 100} directories "
                     f"({tree_bytes / MB:.1f} MB), {way}ed into an absent "
                     + ("remote" if way == "push" else "local") + " directory")
        parts += [
            f"### {title}",
            "",
            matrix(rows, scen, what, link),
            "",
            "<details><summary>Details</summary>",
            "",
            details(rows, scen, what, link),
            "",
            "</details>",
            "",
        ]
    parts += [
        "<details><summary>Every far-link run</summary>",
        "",
        raw_table(rows),
        "",
        "</details>",
        "<!-- /wan -->",
    ]
    return "\n".join(parts)


def main():
    rows = load(env("B_RESULTS"))
    text = section(rows)
    put_section(env("B_DOC"), "wan", text)
    print(text)


if __name__ == "__main__":
    main()
