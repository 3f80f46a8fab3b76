#!/usr/bin/env bash
# ferry over far links: one file and a tree of small files, pushed and
# pulled through an emulated link (bench/linkemu.rs) of a given rate at
# several round-trip times, ferry side by side with scp, sftp, rsync and
# rclone over one private loopback sshd.
#
# Usage:
#   bash bench/wan.sh [--rtts LIST] [--rate-mbit M] [--size-mib N] [--runs N]
#                     [--scenarios LIST] [--tools LIST] [--timeout S]
#
#   --rtts LIST       comma-separated round-trip times in ms (default 0,20,100,250)
#   --rate-mbit M     the link's rate in each direction (default 1000)
#   --size-mib N      size of the one file (default 1024)
#   --runs N          timed runs per RTT, scenario and tool (default 3)
#   --scenarios LIST  comma-separated subset of: file,tree (default both)
#   --tools LIST      comma-separated subset of: ferry,scp,sftp,rsync,rclone
#                     (default all; rclone only when installed)
#   --timeout S       wall-time cap of one copy (default 600)
#   --window-bytes W  linkemu's per-connection window (default 0: none); 4194304
#                     models a Linux sender's default tcp_wmem maximum
#   -h, --help        print this help
#
# Scenarios (each pushed into an absent remote destination, then pulled into
# an absent local one):
#   file   one N MiB file from /dev/urandom: ferry, scp, sftp (batch put/get),
#          rsync, rclone copyto (its defaults: it checks each copy with a
#          remote md5sum through the shell)
#   tree   bench/scale.sh's tree: 5,000 files of 0-16 KiB (random sizes,
#          fixed seed) in 50 directories: ferry -a, rsync -a, scp -rp,
#          rclone copy --sftp-disable-hashcheck
#
# The link: for each RTT, bench/linkemu.rs starts in front of the sshd with
# --rtt-ms RTT --rate-mbit M (its defaults otherwise: a queue of one
# bandwidth-delay product plus 1 MiB per direction, no window limit) and gets
# a Host alias ferrybench-rttRTT in the ssh config. Every connection of every
# tool shares that one link, so a tool that opens several connections gets
# no more than the rate.
#
# Runs are interleaved (run 1 of every tool, then run 2...), each copy under
# `timeout` and /usr/bin/time and checked (cmp for the file, diff -r for
# trees). A copy that times out is recorded as such, the run goes on; the
# tool is then skipped (recorded as "skipped") in that scenario at that RTT
# and the larger ones. A tool that fails, or exits 0 with a wrong copy, is
# recorded as such too. The emulator's byte counts give each copy's bytes on
# the wire and its number of TCP connections.
#
# Environment:
#   BENCH_DIR, BENCH_NO_BUILD=1, BENCH_FERRY, BENCH_DOC, BENCH_PEER_CIPHER: as
#   for bench/run.sh (BENCH_PEER_CIPHER goes to scp, sftp and rsync's ssh;
#   rclone has no cipher option and uses its own choice).
#   FERRY_FLAGS       extra arguments to every ferry copy, split on spaces
#                     (e.g. "--streams 1")
#   BENCH_LINKEMU     the emulator's binary (default: built with `cargo build
#                     --release --example linkemu`, in $CARGO_TARGET_DIR or
#                     target/, unless BENCH_NO_BUILD=1)
#
# Results go to the section between <!-- wan --> and <!-- /wan --> of
# docs/BENCHMARKS.md (created before the notes when absent), written by
# bench/wan_report.py.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

ALL_SCEN="file,tree"
ALL_TOOLS="ferry,scp,sftp,rsync,rclone"
RTTS="0,20,100,250"
RATE_MBIT=1000
SIZE_MIB=1024
RUNS=3
SCENARIOS="$ALL_SCEN"
TOOLS_ARG="$ALL_TOOLS"
TOOL_TIMEOUT=600
WINDOW_BYTES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rtts) RTTS="${2:?--rtts needs a value}"; shift 2 ;;
    --rtts=*) RTTS="${1#*=}"; shift ;;
    --rate-mbit) RATE_MBIT="${2:?--rate-mbit needs a value}"; shift 2 ;;
    --rate-mbit=*) RATE_MBIT="${1#*=}"; shift ;;
    --size-mib) SIZE_MIB="${2:?--size-mib needs a value}"; shift 2 ;;
    --size-mib=*) SIZE_MIB="${1#*=}"; shift ;;
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --scenarios) SCENARIOS="${2:?--scenarios needs a value}"; shift 2 ;;
    --scenarios=*) SCENARIOS="${1#*=}"; shift ;;
    --tools) TOOLS_ARG="${2:?--tools needs a value}"; shift 2 ;;
    --tools=*) TOOLS_ARG="${1#*=}"; shift ;;
    --timeout) TOOL_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
    --timeout=*) TOOL_TIMEOUT="${1#*=}"; shift ;;
    --window-bytes) WINDOW_BYTES="${2:?--window-bytes needs a value}"; shift 2 ;;
    --window-bytes=*) WINDOW_BYTES="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-wan: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
positive() {
  case "$2" in ''|*[!0-9]*|0) echo "bench-wan: $1 must be a positive integer" >&2; exit 2 ;; esac
}
positive --runs "$RUNS"
positive --size-mib "$SIZE_MIB"
positive --rate-mbit "$RATE_MBIT"
positive --timeout "$TOOL_TIMEOUT"
case "$WINDOW_BYTES" in ''|*[!0-9]*) echo "bench-wan: --window-bytes must be a number" >&2; exit 2 ;; esac
IFS=',' read -r -a RTT_LIST <<<"$RTTS"
[ "${#RTT_LIST[@]}" -gt 0 ] || { echo "bench-wan: --rtts is empty" >&2; exit 2; }
for r in "${RTT_LIST[@]}"; do
  case "$r" in ''|*[!0-9]*) echo "bench-wan: --rtts takes whole milliseconds: '$r'" >&2; exit 2 ;; esac
done
IFS=',' read -r -a SCEN_LIST <<<"$SCENARIOS"
for s in "${SCEN_LIST[@]}"; do
  case ",$ALL_SCEN," in *",$s,"*) ;; *) echo "bench-wan: unknown scenario '$s' ($ALL_SCEN)" >&2; exit 2 ;; esac
done
IFS=',' read -r -a TOOL_LIST <<<"$TOOLS_ARG"
for t in "${TOOL_LIST[@]}"; do
  case ",$ALL_TOOLS," in *",$t,"*) ;; *) echo "bench-wan: unknown tool '$t' ($ALL_TOOLS)" >&2; exit 2 ;; esac
done
wants() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
uses() { case ",$TOOLS_ARG," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="${BENCH_DOC:-$REPO/docs/BENCHMARKS.md}"
BENCH_TAG=bench-wan
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

bench_require "$SSHD" /usr/bin/ssh-keygen /usr/bin/ssh /usr/bin/scp /usr/bin/sftp \
  /usr/bin/rsync /usr/bin/time /usr/bin/timeout python3 cmp diff
if uses rclone && ! command -v rclone >/dev/null 2>&1; then
  log "rclone is not installed: left out (apt-get install rclone)"
  TOOLS_ARG="$(echo ",$TOOLS_ARG," | sed 's/,rclone,/,/; s/^,//; s/,$//')"
fi
FILE_TOOLS=() TREE_TOOLS=()
for t in ferry scp sftp rsync rclone; do uses "$t" && FILE_TOOLS+=("$t"); done
for t in ferry rsync rclone scp; do uses "$t" && TREE_TOOLS+=("$t"); done

START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
B_COMMIT="$(git_state)"
bench_build
LINKEMU="${BENCH_LINKEMU:-${CARGO_TARGET_DIR:-$REPO/target}/release/examples/linkemu}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ] && [ -z "${BENCH_LINKEMU:-}" ]; then
  log "cargo build --release --example linkemu"
  (cd "$REPO" && timeout 1800 cargo build --release --example linkemu) || die "cannot build linkemu"
fi
[ -x "$LINKEMU" ] || die "$LINKEMU not found (cargo build --release --example linkemu, or BENCH_LINKEMU=PATH)"
bench_init_work
bench_start_sshd

PEER_OPTS=(-o BatchMode=yes)
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then PEER_OPTS+=(-o "Ciphers=$BENCH_PEER_CIPHER"); fi
RSH="ssh -F $CFG ${PEER_OPTS[*]}"
read -r -a FFLAGS <<<"${FERRY_FLAGS:-}"
FERRY_CMD=("$FERRY" --ssh-config "$CFG" "${FFLAGS[@]}")
D="$WORK/data" R="$WORK/remote" L="$WORK/local"

# ---------------------------------------------------------------- the link
EMU_REPORT="$WORK/linkemu.report"
# start_link RTT: linkemu in front of sshd (its pid in PROXY_PID, so that
# bench_cleanup stops it), Host ferrybench-rttRTT in CFG, EMU_PORT
start_link() {
  rm -f "$WORK/linkemu.port"
  "$LINKEMU" --target-port "$PORT" --rtt-ms "$1" --rate-mbit "$RATE_MBIT" \
    --port-file "$WORK/linkemu.port" --report "$EMU_REPORT" --idle-timeout 20 \
    --window-bytes "$WINDOW_BYTES" \
    </dev/null >"$WORK/linkemu.$1.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$WORK/linkemu.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || die "linkemu exited at startup: $(cat "$WORK/linkemu.$1.log")"
    sleep 0.1
  done
  [ -s "$WORK/linkemu.port" ] || die "linkemu did not start within 10 s: $(cat "$WORK/linkemu.$1.log")"
  EMU_PORT="$(cat "$WORK/linkemu.port")"
  probe_banner "$EMU_PORT" || die "no SSH banner through linkemu on 127.0.0.1:$EMU_PORT"
  ssh_host_block "ferrybench-rtt$1" "$EMU_PORT" "$WORK/known_hosts" >>"$CFG"
  log "linkemu pid $PROXY_PID on 127.0.0.1:$EMU_PORT -> $PORT, rtt $1 ms, $RATE_MBIT Mbit/s"
}
stop_link() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
}
# link_counts (timed_run's `between`): asks linkemu for its counts since the
# last call (it waits for the open connections to close), in EMU_UP,
# EMU_DOWN, EMU_CONNS
link_counts() {
  local line
  rm -f "$EMU_REPORT"
  kill -USR1 "$PROXY_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do
    [ -s "$EMU_REPORT" ] && break
    sleep 0.1
  done
  line="$(head -n 1 "$EMU_REPORT" 2>/dev/null || true)"
  read -r _ EMU_UP EMU_DOWN EMU_CONNS _ <<<"${line:-total - - - -}"
}

# ---------------------------------------------------------------- data
if wants file; then
  log "writing ${SIZE_MIB} MiB from /dev/urandom"
  dd if=/dev/urandom of="$D/file.bin" bs=1M count="$SIZE_MIB" status=none iflag=fullblock
fi
if wants tree; then
  make_tree "$D/tree" 50 100 16384 5
fi
sync

RESULTS="$WORK/results.tsv"
printf 'rtt_ms\tscenario\ttool\trun\tstatus\twall_s\tmaxrss_kib\tuser_s\tsys_s\tserver_cpu_s\twire_up\twire_down\tconns\tnote\n' >"$RESULTS"

# A tool that timed out in a scenario is skipped there at that RTT and
# larger ones: GAVE_UP[scenario.tool] = the RTT of its timeout.
declare -A GAVE_UP=()
gave_up() {
  local at="${GAVE_UP[$2.$3]:-}"
  [ -n "$at" ] && [ "$1" -ge "$at" ]
}

# timed RTT SCEN TOOL RUN CHECK...: times "${CMD[@]}", then runs CHECK (a
# command that succeeds when the copy is right) and records the run.
timed() {
  local rtt="$1" scen="$2" tool="$3" run="$4" tag status note="" wall="" rss="" usr="" sys="" secs
  shift 4
  tag="$WORK/runs/$rtt.$scen.$tool.$run"
  if gave_up "$rtt" "$scen" "$tool"; then
    printf '%s\t%s\t%s\t%s\tskipped\t\t\t\t\t\t\t\t\t%s\n' "$rtt" "$scen" "$tool" "$run" \
      "timed out at ${GAVE_UP[$scen.$tool]} ms" >>"$RESULTS"
    log "rtt $rtt $scen $tool run $run: skipped (timed out at ${GAVE_UP[$scen.$tool]} ms)"
    return 0
  fi
  timed_run "$tag" '%e %M %U %S' link_counts
  case "$RUN_RC" in
    0)
      read -r wall rss usr sys < <(tail -n 1 "$tag.time")
      if "$@"; then status=ok; else status=wrong; log "rtt $rtt $scen $tool run $run: WRONG COPY (exit 0)"; fi
      secs="$(grep -o ' in [0-9.]* s (' "$tag.out" 2>/dev/null | awk '{ print $2 }' | tail -n 1 || true)"
      if [ -n "$secs" ]; then note="connected_s=$secs"; fi ;;
    124|137)
      status=timeout note="> ${TOOL_TIMEOUT} s"
      GAVE_UP[$scen.$tool]="$rtt" ;;
    *)
      status=failed note="exit $RUN_RC: $(tail -n 1 "$tag.err" | tr '\t' ' ' | cut -c1-160)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rtt" "$scen" "$tool" "$run" \
    "$status" "$wall" "$rss" "$usr" "$sys" "$RUN_SERVER_CPU" "$EMU_UP" "$EMU_DOWN" "$EMU_CONNS" \
    "$note" >>"$RESULTS"
  log "rtt $rtt $scen $tool run $run: $status ${wall:+${wall}s }wire ${EMU_UP}/${EMU_DOWN} B up/down, $EMU_CONNS conn(s) $note"
  if [ "$status" = failed ]; then sed 's/^/    | /' "$tag.err" | tail -n 20 >&2 || true; fi
}
same_file() { cmp -s "$1" "$2"; }
same_tree() { diff -r "$1" "$2" >/dev/null 2>&1; }

# file_cmd TOOL FROM TO HOST: one-file copy; the remote path is ":PATH"
file_cmd() {
  local tool="$1" from="$2" to="$3" host="$4" batch remote
  if [ "$tool" = rclone ]; then
    remote="$(rclone_remote "$EMU_PORT" "$WORK/known_hosts")"
    case "$from" in :*) from="$remote${from#:}" ;; esac
    case "$to" in :*) to="$remote${to#:}" ;; esac
    CMD=(rclone copyto "$from" "$to")
    return
  fi
  case "$from" in :*) from="$host$from" ;; esac
  case "$to" in :*) to="$host$to" ;; esac
  case "$tool" in
    ferry) CMD=("${FERRY_CMD[@]}" -v "$from" "$to") ;;
    scp) CMD=(scp -F "$CFG" "${PEER_OPTS[@]}" "$from" "$to") ;;
    rsync) CMD=(rsync -e "$RSH" "$from" "$to") ;;
    sftp)
      batch="$WORK/sftp.batch"
      case "$from" in
        "$host":*) echo "get ${from#"$host":} $to" >"$batch" ;;
        *) echo "put $from ${to#"$host":}" >"$batch" ;;
      esac
      CMD=(sftp -F "$CFG" "${PEER_OPTS[@]}" -b "$batch" "$host") ;;
  esac
}
# tree_cmd TOOL FROM TO HOST: the archive-mode copy of FROM's contents into
# the absent directory TO; the remote one is ":PATH"
tree_cmd() {
  local tool="$1" from="$2" to="$3" host="$4" remote
  if [ "$tool" = rclone ]; then
    remote="$(rclone_remote "$EMU_PORT" "$WORK/known_hosts")"
    case "$from" in :*) from="$remote${from#:}" ;; esac
    case "$to" in :*) to="$remote${to#:}" ;; esac
    CMD=(rclone copy --sftp-disable-hashcheck "$from" "$to")
    return
  fi
  case "$from" in :*) from="$host$from" ;; esac
  case "$to" in :*) to="$host$to" ;; esac
  case "$tool" in
    ferry) CMD=("${FERRY_CMD[@]}" -a "$from/" "$to/") ;;
    rsync) CMD=(rsync -a -e "$RSH" "$from/" "$to/") ;;
    scp) CMD=(scp -F "$CFG" "${PEER_OPTS[@]}" -rp "$from" "$to") ;;
  esac
}

file_run() {
  local rtt="$1" run="$2" host="ferrybench-rtt$1" tool
  for tool in "${FILE_TOOLS[@]}"; do
    rm -f "$R/file.$tool" && sync
    file_cmd "$tool" "$D/file.bin" ":$R/file.$tool" "$host"
    timed "$rtt" file-push "$tool" "$run" same_file "$D/file.bin" "$R/file.$tool"
    rm -f "$R/file.$tool"
  done
  for tool in "${FILE_TOOLS[@]}"; do
    rm -f "$L/file.$tool" && sync
    file_cmd "$tool" ":$D/file.bin" "$L/file.$tool" "$host"
    timed "$rtt" file-pull "$tool" "$run" same_file "$D/file.bin" "$L/file.$tool"
    rm -f "$L/file.$tool"
  done
}
tree_run() {
  local rtt="$1" run="$2" host="ferrybench-rtt$1" tool
  for tool in "${TREE_TOOLS[@]}"; do
    rm -rf "$R/tree.$tool" && sync
    tree_cmd "$tool" "$D/tree" ":$R/tree.$tool" "$host"
    timed "$rtt" tree-push "$tool" "$run" same_tree "$D/tree" "$R/tree.$tool"
    rm -rf "$R/tree.$tool"
  done
  for tool in "${TREE_TOOLS[@]}"; do
    rm -rf "$L/tree.$tool" && sync
    tree_cmd "$tool" ":$D/tree" "$L/tree.$tool" "$host"
    timed "$rtt" tree-pull "$tool" "$run" same_tree "$D/tree" "$L/tree.$tool"
    rm -rf "$L/tree.$tool"
  done
}

# ---------------------------------------------------------------- runs
START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$(date +%s)
for rtt in "${RTT_LIST[@]}"; do
  start_link "$rtt"
  for run in $(seq 1 "$RUNS"); do
    if wants file; then file_run "$rtt" "$run"; fi
    if wants tree; then tree_run "$rtt" "$run"; fi
  done
  stop_link
done
log "all runs done in $(( $(date +%s) - T0 )) s"
END_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
CMDLINE="bash bench/wan.sh --rtts $RTTS --rate-mbit $RATE_MBIT --size-mib $SIZE_MIB --runs $RUNS"
if [ "$SCENARIOS" != "$ALL_SCEN" ]; then CMDLINE+=" --scenarios $SCENARIOS"; fi
if [ "$TOOLS_ARG" != "$ALL_TOOLS" ]; then CMDLINE+=" --tools $TOOLS_ARG"; fi
if [ "$TOOL_TIMEOUT" != 600 ]; then CMDLINE+=" --timeout $TOOL_TIMEOUT"; fi
if [ "$WINDOW_BYTES" != 0 ]; then CMDLINE+=" --window-bytes $WINDOW_BYTES"; fi
if [ -n "${FERRY_FLAGS:-}" ]; then CMDLINE="FERRY_FLAGS='$FERRY_FLAGS' $CMDLINE"; fi
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then CMDLINE="BENCH_PEER_CIPHER=$BENCH_PEER_CIPHER $CMDLINE"; fi
END_HEAD="$(git_state)"
if [ "$END_HEAD" != "$B_COMMIT" ]; then B_COMMIT="$B_COMMIT; at the end of the run: $END_HEAD"; fi
bench_machine_env
export B_RESULTS="$RESULTS" B_DOC="$DOC" B_CMDLINE="$CMDLINE" B_DATE="$START_DATE" B_RUNS="$RUNS" \
  B_COMMIT B_START_LOAD="$START_LOAD" B_END_LOAD="$END_LOAD" B_SIZE_MIB="$SIZE_MIB" \
  B_RTTS="$RTTS" B_RATE_MBIT="$RATE_MBIT" B_TIMEOUT="$TOOL_TIMEOUT" B_WINDOW_BYTES="$WINDOW_BYTES" \
  B_TREE_FILES=5000 B_TREE_BYTES="$(find "$D/tree" -type f -printf '%s\n' 2>/dev/null | awk '{ t += $1 } END { print t + 0 }')" \
  B_PEER_CIPHER="${BENCH_PEER_CIPHER:-}" B_FERRY_FLAGS="${FERRY_FLAGS:-}" \
  B_RCLONE="$(rclone version 2>/dev/null | sed -n '1p' || true)"
mkdir -p "$(dirname "$DOC")"
PYTHONDONTWRITEBYTECODE=1 timeout 60 python3 "$REPO/bench/wan_report.py"
log "wrote the wan section of $DOC"
cat "$RESULTS" >&2
