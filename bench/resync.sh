#!/usr/bin/env bash
# ferry re-sync benchmark on a stock server: ferry's defaults where the
# server has no ferry (SFTP and the shell hashing tier) against rsync,
# bringing a 1 GiB remote file whose mtime is old up to date.
#
# Usage:
#   bash bench/resync.sh [--runs N]
#
#   --runs N      timed runs per tool and scenario (default 3)
#   -h, --help    print this help
#
# Scenarios (OLD is on the remote before every run, with an mtime of
# 2000-01-01; NEW is the local source, newer):
#   same    NEW = OLD, 1 GiB of random bytes: only the time differs
#   edits   NEW = OLD with 8 regions of 4 KiB overwritten, at offsets
#           k * 128 MiB + 12345 (k = 0..7), as bench/delta.sh's edits
#
# Environment:
#   BENCH_RESYNC_SCALE=K  divide the file size by K (for development)
#   BENCH_DIR         parent of the temporary work dir (default /tmp); needs
#                     about 3.1 GiB free at scale 1
#   BENCH_NO_BUILD=1  skip `cargo build --release`
#   BENCH_DOC=PATH    where to write the report (default docs/BENCHMARKS.md)
#
# What it does: starts the private sshd of bench/lib.sh (and refuses to run
# if the server finds a `ferry` on its PATH: the default helper would run);
# per scenario and run, ferry then rsync, each after putting the pristine
# OLD back at the destination and `sync`:
#     ferry --ssh-config CFG -a NEW ferrybench:/abs/dst
#     rsync -a -e "ssh -F CFG -o BatchMode=yes" NEW ferrybench:/abs/dst
# timed with /usr/bin/time, the result compared with NEW by `cmp`; then the
# section between <!-- resync --> and <!-- /resync --> of docs/BENCHMARKS.md
# gets the medians and ferry/rsync ratios. Everything lives in one temp dir,
# removed (and sshd killed) on exit.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-resync: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-resync: --runs must be a positive integer" >&2; exit 2 ;; esac
SCALE="${BENCH_RESYNC_SCALE:-1}"
case "$SCALE" in ''|*[!0-9]*|0) echo "bench-resync: BENCH_RESYNC_SCALE must be a positive integer" >&2; exit 2 ;; esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="${BENCH_DOC:-$REPO/docs/BENCHMARKS.md}"
TOOL_TIMEOUT=600
BENCH_TAG=bench-resync
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

MIB=$((1024 * 1024))
BIG=$((1024 * MIB / SCALE))
OLD_MTIME='2000-01-01 00:00:00 UTC'

bench_require "$SSHD" /usr/bin/ssh-keygen /usr/bin/ssh /usr/bin/rsync /usr/bin/time \
  /usr/bin/timeout python3 cmp dd

B_COMMIT="$(git_state)"
bench_build
bench_init_work
bench_start_sshd
PEER_OPTS=(-o BatchMode=yes)
if ssh -F "$CFG" "${PEER_OPTS[@]}" ferrybench 'command -v ferry' </dev/null >/dev/null 2>&1; then
  die "the server has a ferry on its PATH: ferry's defaults would use it as the helper"
fi

OLD="$WORK/data/old.bin" NEW="$WORK/data/new.bin" DST="$WORK/remote/dst.bin"
mkdir -p "$WORK/data" "$WORK/runs"
log "writing $BIG bytes of random OLD"
timeout 600 dd if=/dev/urandom of="$OLD" bs=1M count="$BIG" iflag=fullblock,count_bytes status=none

make_new() { # make_new SCENARIO
  timeout 600 cp "$OLD" "$NEW"
  if [ "$1" = edits ]; then
    for k in $(seq 0 7); do
      timeout 60 dd if=/dev/urandom of="$NEW" bs=4096 count=1 seek=$((k * BIG / 8 + 12345)) \
        oflag=seek_bytes conv=notrunc iflag=fullblock status=none
    done
  fi
  touch "$NEW"
}

RESULTS="$WORK/results.tsv"
printf 'scenario\ttool\trun\twall_s\tuser_s\tsys_s\tserver_cpu_s\n' >"$RESULTS"
for scen in same edits; do
  make_new "$scen"
  for run in $(seq 1 "$RUNS"); do
    for tool in ferry rsync; do
      rm -f "$DST" "$WORK"/remote/.dst.bin* 2>/dev/null || true
      timeout 600 cp "$OLD" "$DST"
      touch -d "$OLD_MTIME" "$DST"
      timeout 600 sync
      case "$tool" in
        ferry) CMD=("$FERRY" --ssh-config "$CFG" -a -vv "$NEW" "ferrybench:$DST") ;;
        rsync) CMD=(rsync -a -e "ssh -F $CFG ${PEER_OPTS[*]}" "$NEW" "ferrybench:$DST") ;;
      esac
      tag="$WORK/runs/$scen.$tool.$run"
      timed_run "$tag" '%e %U %S'
      if [ "$RUN_RC" -ne 0 ]; then
        sed 's/^/    | /' "$tag.err" >&2 || true
        die "$scen $tool run $run: exit $RUN_RC: ${CMD[*]}"
      fi
      timeout 600 cmp -s "$NEW" "$DST" || die "$scen $tool run $run: the result differs from NEW"
      if [ "$tool" = ferry ] && ! grep -q 'remote hashing on .*: shell' "$tag.err"; then
        die "$scen ferry run $run: the shell tier was not used: $(cat "$tag.err")"
      fi
      read -r wall user sys <"$tag.time"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$run" "$wall" "$user" "$sys" \
        "$RUN_SERVER_CPU" >>"$RESULTS"
      log "$scen $tool run $run: ${wall} s"
    done
  done
done

bench_machine_env
B_RESULTS="$RESULTS" B_RUNS="$RUNS" B_SIZE="$BIG" B_DOC="$DOC" B_COMMIT="$B_COMMIT" \
  timeout 60 python3 "$REPO/bench/resync_report.py"
log "report written to $DOC"
