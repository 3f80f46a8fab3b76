#!/usr/bin/env python3
"""Turn bench/run.sh's per-run results into docs/BENCHMARKS.md.

Called by bench/run.sh with everything in B_* environment variables; not
meant to be run by hand. Keeps the text between <!-- notes --> and
<!-- /notes --> of the existing document verbatim, and so the section between
<!-- delta --> and <!-- /delta --> (written by bench/delta.sh), the one
between <!-- scale --> and <!-- /scale --> (bench/scale.sh) and the one
between <!-- wan --> and <!-- /wan --> (bench/wan.sh) and the one between
<!-- resync --> and <!-- /resync --> (bench/resync.sh), which stay just
before the notes.
"""

import os
import statistics
import sys

from reportlib import env, load, section_re

NOTES_RE = section_re("notes")
DELTA_RE = section_re("delta")
SCALE_RE = section_re("scale")
WAN_RE = section_re("wan")
RESYNC_RE = section_re("resync")
TOOLS = os.environ.get("B_TOOLS", "ferry scp sftp rsync").split()

DEFAULT_NOTES = """<!-- notes -->
## Notes

(Written by hand; `bench/run.sh` keeps everything between the `notes` markers
verbatim when it rewrites this file.)
<!-- /notes -->"""


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def summarize(rows, scenario, tool):
    mine = [r for r in rows if r["scenario"] == scenario and r["tool"] == tool]
    ok = [r for r in mine if r["status"] == "ok"]
    res = {"n": len(mine), "ok": len(ok), "by_run": {}}
    if not ok:
        return res
    walls = [float(r["wall_s"]) for r in ok]
    res["wall_med"] = statistics.median(walls)
    res["wall_min"] = min(walls)
    res["wall_max"] = max(walls)
    res["rss_mib"] = statistics.median(int(r["maxrss_kib"]) for r in ok) / 1024
    res["rss_max_mib"] = max(int(r["maxrss_kib"]) for r in ok) / 1024
    res["cpu"] = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in ok)
    res["srv"] = statistics.median(float(r["server_cpu_s"]) for r in ok)
    res["by_run"] = {r["run"]: float(r["wall_s"]) for r in ok}
    return res


def table(rows, scenario, size_mib):
    stats = {t: summarize(rows, scenario, t) for t in TOOLS}
    ferry = stats["ferry"]
    out = [
        "| tool | median wall s | min–max wall s | MiB/s (median) | peak RSS MiB "
        "| user+sys CPU s | server CPU s | ferry/tool wall ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in TOOLS:
        s = stats[t]
        name = f"`{t}`"
        if s["ok"] < s["n"]:
            name += f" ({s['ok']}/{s['n']} runs ok)"
        if not s["ok"]:
            out.append(f"| {name} | failed | failed | – | – | – | – | – |")
            continue
        if t == "ferry":
            ratio = "1.00"
        elif ferry["ok"]:
            ratio = fmt(ferry["wall_med"] / s["wall_med"])
            paired = [
                ferry["by_run"][r] / w for r, w in s["by_run"].items() if r in ferry["by_run"]
            ]
            if len(paired) > 1:
                ratio += f" ({fmt(min(paired))}–{fmt(max(paired))})"
        else:
            ratio = "– (ferry failed)"
        rss = fmt(s["rss_mib"], 1)
        if s["rss_max_mib"] - s["rss_mib"] >= 0.1 * max(s["rss_mib"], 1):
            rss += f" (max {fmt(s['rss_max_mib'], 1)})"
        out.append(
            f"| {name} | {fmt(s['wall_med'])} | {fmt(s['wall_min'])}–{fmt(s['wall_max'])} "
            f"| {fmt(size_mib / s['wall_med'], 0)} | {rss} | {fmt(s['cpu'])} "
            f"| {fmt(s['srv'])} | {ratio} |"
        )
    return "\n".join(out)


def raw_table(rows):
    out = [
        "| scenario | run | tool | status | wall s | max RSS KiB | user s | sys s | server CPU s |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['run']} | {r['tool']} | {r['status']} | {r['wall_s']} "
            f"| {r['maxrss_kib']} | {r['user_s']} | {r['sys_s']} | {r['server_cpu_s']} |"
        )
    return "\n".join(out)


def main():
    rows = load(env("B_RESULTS"))
    doc_path = env("B_DOC")
    size = int(env("B_SIZE"))
    runs = int(env("B_RUNS"))
    scenarios = env("B_SCEN").split(",")

    notes = DEFAULT_NOTES
    delta = None
    scale = None
    wan = None
    resync = None
    if os.path.exists(doc_path):
        old_doc = open(doc_path, encoding="utf-8").read()
        m = NOTES_RE.search(old_doc)
        if m:
            notes = m.group(0)
        m = DELTA_RE.search(old_doc)
        if m:
            delta = m.group(0)
        m = SCALE_RE.search(old_doc)
        if m:
            scale = m.group(0)
        m = WAN_RE.search(old_doc)
        if m:
            wan = m.group(0)
        m = RESYNC_RE.search(old_doc)
        if m:
            resync = m.group(0)

    ciphers = ", ".join(
        f"{t} `{c}`" if "(" not in c else f"{t} {c}"
        for t, c in (kv.split("=", 1) for kv in env("B_CIPHERS").split(";") if kv)
    ) or "not probed"
    forced = (
        f" scp, sftp and rsync's ssh were forced to `{env('B_PEER_CIPHER')}` with "
        "`BENCH_PEER_CIPHER`."
        if env("B_PEER_CIPHER")
        else " Every tool used its own default cipher preference: this is what a user gets "
        "out of the box, and on a CPU-bound loopback copy the cipher is a large part of "
        "the cost (set `BENCH_PEER_CIPHER` to force the OpenSSH tools to another one)."
    )

    titles = {
        "push": f"Fresh push: local {size} MiB file → `ferrybench:/abs/dest` "
        "(remote destination deleted and `sync` before each run)",
        "pull": f"Fresh pull: `ferrybench:/abs/src` → local file "
        "(local destination deleted and `sync` before each run)",
    }

    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run.sh (the delta section by bench/delta.sh, the scale "
        "section by bench/scale.sh, the wan section by bench/wan.sh, the resync section "
        "by bench/resync.sh); "
        "edit only the Notes section at the end (between the notes markers), the rest "
        "is rewritten on every run. -->",
        "",
        f"Wall time, peak memory and CPU of copying one {size} MiB file of random bytes "
        "with `ferry`, `scp`, `sftp` (batch mode) and `rsync` (default options, no `-z`)"
        + (" and `rclone` (`copyto` to an SFTP remote; its defaults, which check each "
           "upload with an md5sum run through the remote shell)" if "rclone" in TOOLS else "")
        + " "
        "through the same private OpenSSH `sshd` on 127.0.0.1, with the same ssh config, "
        "host key and ed25519 user key for every tool. "
        f"Each tool ran {runs} times per scenario; runs are interleaved (run 1 of every "
        "tool, then run 2, ...) so that machine noise hits all tools alike. "
        "Every copy was checked byte for byte with `cmp`.",
        "",
        f"**Machine:** {env('B_NPROC')} cores ({env('B_CPU')}), {env('B_MEM')} RAM, "
        f"Linux {env('B_KERNEL')}, {env('B_FS')} file system; {env('B_OPENSSH')}, "
        f"{env('B_RSYNC')}, sftp-server `{env('B_SFTPSUB')}`; {env('B_FERRY')} "
        f"(commit {env('B_COMMIT')}), release build. Run {env('B_DATE')}.",
        "",
        "**Negotiated ciphers** (probed with one small copy per tool before the timed "
        f"runs): {ciphers}.{forced}",
        "",
        "**Caveat:** this is a shared, noisy virtual machine with 2 cores, and client, "
        "server and encryption on both ends all compete for them. Absolute times move "
        "from run to run; compare tools by the **ratios**, which come from interleaved "
        "runs. Loopback has no network latency or bandwidth limit, so this measures "
        "CPU cost and pipelining of each tool, not behaviour on a real network.",
        "",
        "Reproduce (from the repository root; needs openssh-server, openssh-client, "
        "rsync, GNU time and python3):",
        "",
        "```sh",
        env("B_CMDLINE"),
        "```",
        "",
        "## What the columns mean",
        "",
        "- **median wall s**, **min–max wall s**: elapsed time of the client command "
        "(`/usr/bin/time` `%e`), from start to exit, excluding the `sync` before it.",
        "- **MiB/s**: file size / median wall time.",
        "- **peak RSS MiB**: median over runs of `/usr/bin/time` `%M`. `%M` comes from "
        "`wait4()`'s `ru_maxrss` and is the peak RSS of the *largest single process* "
        "among the client and the descendants it waited for — not a sum. For `ferry` "
        "that is ferry itself (one process); for `scp` and `sftp` it is the larger of "
        "the tool and its `ssh` child; for `rsync` it is the largest of rsync, its `ssh` "
        "child and (on pull) its forked receiver. \"max N\" is shown when the largest "
        "run was ≥10 % above the median.",
        "- **user+sys CPU s**: median of `%U + %S`, which, unlike `%M`, *is* summed over "
        "the client and all its waited-for descendants (for scp/sftp/rsync that includes "
        "the `ssh` process doing the encryption).",
        "- **server CPU s**: user+sys CPU of the server side of the connection "
        "(per-connection `sshd` processes plus `sftp-server`, `ferry --server` or the "
        "remote `rsync`), read as the growth of `cutime+cstime` in `/proc` across the run "
        "(after waiting until every server process was reaped) of the `sshd` listener "
        "plus that of `bench/reaper.py`, a child subreaper around `sshd`: when a client "
        "drops the connection without waiting for the remote command's exit status, the "
        "per-connection sshd exits without reaping `sftp-server`, which the listener then "
        "never counts. Client and server share the same 2 cores.",
        "- **ferry/tool wall ratio**: ferry's median wall time / the tool's median; below "
        "1 means ferry was faster. In parentheses: the range of the per-run ratios "
        "(ferry's run *i* / the tool's run *i*).",
        "",
        "The source file is in the page cache (written just before, RAM ≫ file); the "
        "written copy is not flushed to disk inside the timed region (the `sync` comes "
        "before the next run). OpenSSH 9.x `scp` uses the SFTP protocol by default.",
        "",
    ]
    for scen in scenarios:
        parts += [f"## {titles[scen]}", "", table(rows, scen, size), ""]

    parts += [
        "<details><summary>Every run</summary>",
        "",
        raw_table(rows),
        "",
        "</details>",
        "",
    ]
    if delta:
        parts += [delta, ""]
    if scale:
        parts += [scale, ""]
    if wan:
        parts += [wan, ""]
    if resync:
        parts += [resync, ""]
    parts += [
        notes,
        "",
    ]
    tmp = doc_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    os.replace(tmp, doc_path)
    for scen in scenarios:
        print(f"\n{scen}:\n{table(rows, scen, size)}", file=sys.stderr)


if __name__ == "__main__":
    main()
