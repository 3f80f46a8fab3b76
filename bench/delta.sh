#!/usr/bin/env bash
# ferry delta benchmark: ferry vs rsync updating a remote file that already
# holds an old version, through a byte-counting proxy in front of a private
# loopback sshd.
#
# Usage:
#   bash bench/delta.sh [--runs N] [--scenarios LIST]
#
#   --runs N          timed runs per tool and scenario (default 3)
#   --scenarios LIST  comma-separated subset of: edits,insert,append
#                     (default edits,insert,append)
#   -h, --help        print this help
#
# Scenarios (OLD is on the remote before every run, NEW is the local source):
#   edits   OLD = 1 GiB random; NEW = OLD with 8 regions of 4 KiB overwritten
#           with other random bytes, at offsets k * 128 MiB + 12345 (k = 0..7)
#   insert  OLD = 256 MiB random; NEW = 100 random bytes + OLD
#   append  OLD = 1 GiB random; NEW = OLD + 10 MiB random
#
# Environment:
#   BENCH_DELTA_SCALE=K  divide the file sizes and the appended size by K (for
#                     development; the 4 KiB edits and 100-byte insert stay)
#   BENCH_DIR         parent of the temporary work dir (default /tmp); needs
#                     about 4.1 GiB free at scale 1
#   BENCH_NO_BUILD=1  skip `cargo build --release` (use the existing binary)
#   BENCH_DOC=PATH    where to write the report (default docs/BENCHMARKS.md)
#   BENCH_PEER_CIPHER=NAME  pass -o Ciphers=NAME to rsync's ssh
#   BENCH_LOGS=DIR    copy every run's stdout/stderr (ferry's -vv log, rsync
#                     --stats output) to DIR at the end
#
# What it does:
#   1. cargo build --release; starts the private sshd of bench/lib.sh and, in
#      front of it, bench/proxy.py on 127.0.0.1:<free port>; the ssh config
#      gets a second entry, Host ferrybench-proxy, for the proxy's port. Both
#      tools go through it:
#        ferry -t -vv --ssh-config CFG --remote-ferry target/release/ferry \
#              NEW ferrybench-proxy:/abs/dst
#        rsync -e "ssh -F CFG -o BatchMode=yes" NEW ferrybench-proxy:/abs/dst
#      (loopback: the "remote" is this machine, so ferry's `ferry --server`
#      helper is the local release binary; rsync runs with its defaults: delta
#      algorithm, no -z, no --inplace, temp file + rename, like ferry)
#   2. per scenario, per run, ferry then rsync: copy the pristine OLD to the
#      remote destination with an mtime of 2000-01-01 (NEW's is the time it
#      was made), sync, reset the proxy counters, time the tool with
#      `/usr/bin/time` under `timeout`, read the proxy's byte counts (up =
#      client -> server, down = server -> client, TCP payload = SSH stream),
#      and `cmp` the remote result with NEW (a mismatch or failure aborts)
#   3. after the timed runs of a scenario, one untimed `rsync --stats` run to
#      record rsync's own literal/matched accounting (ferry's comes from the
#      `delta reuse=... send=...` line of its -vv log in the timed runs)
#   4. writes medians, ferry/rsync ratios and the targets to the section
#      between <!-- delta --> and <!-- /delta --> of docs/BENCHMARKS.md
#      (inserted before the notes section when absent; bench/run.sh keeps it
#      verbatim)
#
# Everything lives in one temp dir, removed (and sshd and the proxy killed)
# on exit.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

RUNS=3
SCENARIOS="edits,insert,append"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --scenarios) SCENARIOS="${2:?--scenarios needs a value}"; shift 2 ;;
    --scenarios=*) SCENARIOS="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-delta: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-delta: --runs must be a positive integer" >&2; exit 2 ;; esac
SCALE="${BENCH_DELTA_SCALE:-1}"
case "$SCALE" in ''|*[!0-9]*|0) echo "bench-delta: BENCH_DELTA_SCALE must be a positive integer" >&2; exit 2 ;; esac
IFS=',' read -r -a SCEN_LIST <<<"$SCENARIOS"
[ "${#SCEN_LIST[@]}" -gt 0 ] || { echo "bench-delta: --scenarios is empty" >&2; exit 2; }
for s in "${SCEN_LIST[@]}"; do
  case "$s" in edits|insert|append) ;; *) echo "bench-delta: unknown scenario '$s' (edits, insert, append)" >&2; exit 2 ;; esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="${BENCH_DOC:-$REPO/docs/BENCHMARKS.md}"
TOOLS=(ferry rsync)
TOOL_TIMEOUT=600
BENCH_TAG=bench-delta
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

MIB=$((1024 * 1024))
BIG=$((1024 * MIB / SCALE))          # edits and append: OLD size
INSERT_OLD=$((256 * MIB / SCALE))    # insert: OLD size
INSERT_LEN=100                       # insert: bytes put in front
APPEND_LEN=$((10 * MIB / SCALE))     # append: bytes added at the end
EDIT_LEN=4096                        # edits: length of each region
EDIT_COUNT=8
EDIT_SHIFT=12345                     # edits: offset k * BIG/8 + EDIT_SHIFT
OLD_MTIME='2000-01-01 00:00:00 UTC'

bench_require "$SSHD" /usr/bin/ssh-keygen /usr/bin/ssh /usr/bin/rsync /usr/bin/time \
  /usr/bin/timeout python3 cmp dd

START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- build, work dir, sshd
B_COMMIT="$(git_state)"
bench_build
bench_init_work
bench_start_sshd

# ---------------------------------------------------------------- proxy
bench_start_proxy ferrybench-proxy
# proxy_dump: makes the proxy write its counters (after its connections
# closed) and reset them; sets UP DOWN CONNS.
proxy_dump() {
  local open
  rm -f "$PROXY_REPORT"
  kill -USR1 "$PROXY_PID" || die "the proxy is gone: $(cat "$WORK/proxy.log")"
  for _ in $(seq 1 400); do             # the proxy waits up to 30 s itself
    [ -e "$PROXY_REPORT" ] && break
    sleep 0.1
  done
  [ -e "$PROXY_REPORT" ] || die "the proxy wrote no report within 40 s: $(cat "$WORK/proxy.log")"
  read -r _ UP DOWN CONNS open <"$PROXY_REPORT"
  [ "$open" = 0 ] || log "warning: $open proxy connection(s) still open when counting"
}

timeout 60 ssh -F "$CFG" -o BatchMode=yes ferrybench-proxy true </dev/null ||
  die "ssh through the proxy failed; proxy log: $(cat "$WORK/proxy.log"); sshd log: $(cat "$WORK/sshd.log")"
proxy_dump
log "proxy check: ssh true = $UP bytes up, $DOWN down, $CONNS connection(s)"

PEER_OPTS=(-o BatchMode=yes)
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then PEER_OPTS+=(-o "Ciphers=$BENCH_PEER_CIPHER"); fi

# ---------------------------------------------------------------- test data
random_file() { # random_file PATH BYTES
  timeout 600 dd if=/dev/urandom of="$1" bs=1M count="$2" iflag=fullblock,count_bytes status=none
}
BASE="$WORK/data/base.bin"  # OLD of edits and append, made once when needed
OLD="" NEW=""
make_data() { # make_data SCENARIO -> OLD NEW
  local scen="$1" k off
  rm -f "$WORK/data/new.bin" "$WORK/data/insert-old.bin"
  NEW="$WORK/data/new.bin"
  case "$scen" in
    edits|append)
      if [ ! -e "$BASE" ]; then
        log "writing $BIG bytes of random OLD"
        random_file "$BASE" "$BIG"
      fi
      OLD="$BASE"
      timeout 600 cp "$OLD" "$NEW"
      if [ "$scen" = edits ]; then
        for k in $(seq 0 $((EDIT_COUNT - 1))); do
          off=$((k * BIG / EDIT_COUNT + EDIT_SHIFT))
          timeout 60 dd if=/dev/urandom of="$NEW" bs="$EDIT_LEN" count=1 seek="$off" \
            oflag=seek_bytes conv=notrunc iflag=fullblock status=none
        done
      else
        random_file "$WORK/data/tail.bin" "$APPEND_LEN"
        timeout 600 cat "$WORK/data/tail.bin" >>"$NEW"
        rm -f "$WORK/data/tail.bin"
      fi ;;
    insert)
      OLD="$WORK/data/insert-old.bin"
      log "writing $INSERT_OLD bytes of random OLD"
      random_file "$OLD" "$INSERT_OLD"
      random_file "$WORK/data/head.bin" "$INSERT_LEN"
      timeout 600 cat "$WORK/data/head.bin" "$OLD" >"$NEW"
      rm -f "$WORK/data/head.bin" ;;
  esac
  touch "$NEW"                      # newer than OLD_MTIME on the remote copy
  timeout 60 cmp -s "$OLD" "$NEW" && die "$scen: NEW equals OLD"
  log "$scen: OLD $(stat -c %s "$OLD") bytes, NEW $(stat -c %s "$NEW") bytes"
}

DST="$WORK/remote/dst.bin"
# Puts the pristine OLD at the destination with an old mtime, and nothing else.
prepare_remote() {
  rm -f "$DST" "$WORK"/remote/.dst.bin* 2>/dev/null || true
  timeout 600 cp "$OLD" "$DST"
  touch -d "$OLD_MTIME" "$DST"
  timeout 600 sync
}

# tool_cmd TOOL [EXTRA...] -> CMD
tool_cmd() {
  local tool="$1"; shift
  case "$tool" in
    ferry) CMD=("$FERRY" -t -vv --ssh-config "$CFG" --remote-ferry "$FERRY" "$@" "$NEW" "ferrybench-proxy:$DST") ;;
    rsync) CMD=(rsync -e "ssh -F $CFG ${PEER_OPTS[*]}" "$@" "$NEW" "ferrybench-proxy:$DST") ;;
  esac
}

check_result() { # check_result WHAT
  if ! timeout 600 cmp -s "$NEW" "$DST"; then
    timeout 600 cmp "$NEW" "$DST" >&2 || true
    die "$1: the remote result $DST differs from NEW ($(stat -c %s "$DST" 2>/dev/null || echo missing) vs $(stat -c %s "$NEW") bytes): ${CMD[*]}"
  fi
}

RESULTS="$WORK/results.tsv"
printf 'scenario\ttool\trun\twall_s\tuser_s\tsys_s\tserver_cpu_s\tup\tdown\tconns\treuse\tsend\n' >"$RESULTS"
DIAG="$WORK/diag.tsv"
printf 'scenario\ttool\tkey\tvalue\n' >"$DIAG"

# time_one SCENARIO TOOL RUN
time_one() {
  local scen="$1" tool="$2" run="$3" tag rc scpu wall usr sys reuse="" send="" line
  prepare_remote
  tool_cmd "$tool"
  tag="$WORK/runs/$scen.$tool.$run"
  # The proxy's counts are read (and reset) at both idle points: the first
  # read starts the run from zero, the second holds its bytes.
  timed_run "$tag" '%e %U %S' proxy_dump
  rc="$RUN_RC" scpu="$RUN_SERVER_CPU"
  if [ "$rc" -ne 0 ]; then
    sed 's/^/    | /' "$tag.err" >&2 || true
    die "$scen $tool run $run: exit $rc$( [ "$rc" -eq 124 ] && echo ' (timeout)'): ${CMD[*]}"
  fi
  check_result "$scen $tool run $run"
  if [ "$tool" = ferry ]; then
    grep -q 'remote hashing on .*: helper' "$tag.err" ||
      die "$scen ferry run $run: ferry did not use the remote helper; log: $(cat "$tag.err")"
    line="$(grep -m1 ' delta' "$tag.err" | grep 'reuse=' || true)"
    [ -n "$line" ] || die "$scen ferry run $run: no 'delta reuse=... send=...' line in ferry's log: $(cat "$tag.err")"
    reuse="$(sed -n 's/.*reuse=\([0-9]*\).*/\1/p' <<<"$line")"
    send="$(sed -n 's/.*send=\([0-9]*\).*/\1/p' <<<"$line")"
  fi
  read -r wall usr sys < <(tail -n 1 "$tag.time")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$run" "$wall" "$usr" "$sys" \
    "$scpu" "$UP" "$DOWN" "$CONNS" "$reuse" "$send" >>"$RESULTS"
  log "$scen $tool run $run: ${wall}s  up $UP  down $DOWN  conns $CONNS  cpu ${usr}u+${sys}s  server ${scpu}s${reuse:+  delta reuse=$reuse send=$send}"
}

# One untimed rsync --stats run: rsync's own literal/matched accounting.
rsync_stats() { # rsync_stats SCENARIO
  local scen="$1" tag="$WORK/runs/$1.rsync-stats" key
  prepare_remote
  tool_cmd rsync --stats
  proxy_dump
  timeout -k 10 "$TOOL_TIMEOUT" "${CMD[@]}" </dev/null >"$tag.out" 2>"$tag.err" ||
    die "$scen: rsync --stats failed: $(cat "$tag.err")"
  # shellcheck disable=SC2119  # no argument: the reaper-managed sshd
  wait_server_idle
  proxy_dump
  check_result "$scen rsync --stats"
  for key in 'Literal data' 'Matched data' 'Total bytes sent' 'Total bytes received'; do
    printf '%s\trsync\t%s\t%s\n' "$scen" "$key" \
      "$(grep -m1 "^$key:" "$tag.out" | sed 's/^[^:]*: *//; s/,//g; s/[^0-9].*//')" >>"$DIAG"
  done
  printf '%s\trsync\tproxy wire bytes\t%s\n' "$scen" "$((UP + DOWN))" >>"$DIAG"
  log "$scen rsync --stats: $(grep -E '^(Literal|Matched) data' "$tag.out" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- runs
START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$(date +%s)
for scen in "${SCEN_LIST[@]}"; do
  make_data "$scen"
  for run in $(seq 1 "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
      time_one "$scen" "$tool" "$run"
    done
  done
  rsync_stats "$scen"
  rm -f "$DST" "$NEW" "$WORK/data/insert-old.bin"
done
rm -f "$BASE"
log "all runs done in $(( $(date +%s) - T0 )) s"
if [ -n "${BENCH_LOGS:-}" ]; then
  mkdir -p "$BENCH_LOGS" && cp -r "$WORK/runs/." "$BENCH_LOGS/" && log "run logs copied to $BENCH_LOGS"
fi
END_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
CMDLINE="bash bench/delta.sh --runs $RUNS"
if [ "$SCENARIOS" != "edits,insert,append" ]; then CMDLINE+=" --scenarios $SCENARIOS"; fi
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then CMDLINE="BENCH_PEER_CIPHER=$BENCH_PEER_CIPHER $CMDLINE"; fi
if [ "$SCALE" != 1 ]; then CMDLINE="BENCH_DELTA_SCALE=$SCALE $CMDLINE"; fi
END_HEAD="$(git_state)"
if [ "$END_HEAD" != "$B_COMMIT" ]; then B_COMMIT="$B_COMMIT; at the end of the run: $END_HEAD"; fi
bench_machine_env
export B_RESULTS="$RESULTS" B_DIAG="$DIAG" B_DOC="$DOC" B_CMDLINE="$CMDLINE" B_DATE="$START_DATE" \
  B_RUNS="$RUNS" B_SCALE="$SCALE" B_COMMIT B_START_LOAD="$START_LOAD" B_END_LOAD="$END_LOAD" \
  B_BIG="$BIG" B_INSERT_OLD="$INSERT_OLD" B_INSERT_LEN="$INSERT_LEN" B_APPEND_LEN="$APPEND_LEN" \
  B_EDIT_LEN="$EDIT_LEN" B_EDIT_COUNT="$EDIT_COUNT" B_EDIT_SHIFT="$EDIT_SHIFT" \
  B_PEER_CIPHER="${BENCH_PEER_CIPHER:-}"
mkdir -p "$(dirname "$DOC")"
timeout 60 python3 "$REPO/bench/delta_report.py"
log "wrote the delta section of $DOC"
cat "$RESULTS" >&2
