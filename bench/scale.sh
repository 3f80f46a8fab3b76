#!/usr/bin/env bash
# ferry scale benchmark: resume, no-op re-syncs, trees of small files and an
# emulated WAN, ferry side by side with rsync, scp and sftp over one private
# loopback sshd.
#
# Usage:
#   bash bench/scale.sh [--runs N] [--scenarios LIST]
#
#   --runs N          timed runs per tool and scenario (default 3)
#   --scenarios LIST  comma-separated subset of: resume,noop,tree,tree100k,wan
#                     (default: all)
#   -h, --help        print this help
#
# Scenarios:
#   resume    a 1 GiB push cut at 50 % (the tool gets SIGTERM once the remote
#             copy reaches half the size; untimed), then the timed rerun:
#             ferry again, rsync --partial again, sftp `reput`; scp cannot
#             resume, so its figure is a whole copy
#   noop      the 1 GiB file already at the destination with the same size
#             and mtime: ferry -t, rsync -t
#   tree      5,000 files of 0-16 KiB (random sizes, fixed seed) in 50
#             directories: initial push (ferry -a, rsync -a, scp -rp) into an
#             absent directory, then a no-op re-sync (ferry -a, rsync -a)
#   tree100k  100,000 files of 0-4 KiB in 1,000 directories: the initial
#             push into an absent directory, then the no-op re-sync (wall
#             time, peak memory), with the destination on disk (BENCH_DIR)
#             and on a RAM disk (BENCH_RAM_DIR, default /dev/shm); ferry with
#             the helper, ferry on a stock server (ferry-stock: no helper,
#             the shell tier), rsync -a
#   wan       through bench/proxy.py as a link of 200 Mbit/s with 10 ms each
#             way (20 ms round trip): push and pull of a 100 MiB file
#             (ferry, scp, sftp, rsync), the initial push of the tree and
#             its pull back (ferry -a, rsync -a)
#
# rclone (sftp backend) joins when installed: whole files with its defaults
# (it checks each upload with a remote md5sum through the shell), trees with
# --sftp-disable-hashcheck (with the check, one remote command per file took
# 211 s for the 5,000 files here); never in resume (it cannot) or tree100k,
# and in the WAN tree push only in the first run.
#
# Environment:
#   BENCH_DIR, BENCH_NO_BUILD=1, BENCH_DOC, BENCH_PEER_CIPHER: as for
#   bench/run.sh. BENCH_RAM_DIR: a directory on a RAM disk (tmpfs) for
#   tree100k's second destination (default /dev/shm).
#   BENCH_SCALE_SMALL=1 shrinks every size (1 GiB -> 64 MiB,
#   100 MiB -> 16 MiB, 5,000 -> 500 files, 100,000 -> 5,000 files), for
#   trying the script out; its figures are not comparable.
#
# Every timed copy is checked (cmp for files, diff -r for trees; a no-op
# must leave the destination's mtime as it was). Results go to the section
# between <!-- scale --> and <!-- /scale --> of docs/BENCHMARKS.md.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

ALL="resume,noop,tree,tree100k,wan"
RUNS=3
SCENARIOS="$ALL"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --scenarios) SCENARIOS="${2:?--scenarios needs a value}"; shift 2 ;;
    --scenarios=*) SCENARIOS="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-scale: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench-scale: --runs must be a positive integer" >&2; exit 2 ;; esac
IFS=',' read -r -a SCEN_LIST <<<"$SCENARIOS"
for s in "${SCEN_LIST[@]}"; do
  case ",$ALL," in *",$s,"*) ;; *) echo "bench-scale: unknown scenario '$s' ($ALL)" >&2; exit 2 ;; esac
done
wants() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

if [ "${BENCH_SCALE_SMALL:-0}" = 1 ]; then
  BIG_MIB=64 WAN_MIB=16 TREE_DIRS=5 BIG_TREE_DIRS=50
else
  BIG_MIB=1024 WAN_MIB=100 TREE_DIRS=50 BIG_TREE_DIRS=1000
fi
WAN_DELAY_MS=10
WAN_RATE_MBIT=200

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="${BENCH_DOC:-$REPO/docs/BENCHMARKS.md}"
TOOL_TIMEOUT=900
BENCH_TAG=bench-scale
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

bench_require "$SSHD" /usr/bin/ssh-keygen /usr/bin/ssh /usr/bin/scp /usr/bin/sftp \
  /usr/bin/rsync /usr/bin/time /usr/bin/timeout python3 cmp diff
START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
B_COMMIT="$(git_state)"
bench_build
bench_init_work
bench_start_sshd
if wants wan; then
  bench_start_proxy ferrybench-wan --delay-ms "$WAN_DELAY_MS" --rate-mbit "$WAN_RATE_MBIT"
fi

PEER_OPTS=(-o BatchMode=yes)
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then PEER_OPTS+=(-o "Ciphers=$BENCH_PEER_CIPHER"); fi
RSH="ssh -F $CFG ${PEER_OPTS[*]}"
RCLONE=""
if command -v rclone >/dev/null 2>&1; then RCLONE=rclone; fi
# rclone_at HOST_ALIAS: its on-the-fly remote for that alias's port
rclone_at() {
  if [ "$1" = ferrybench-wan ]; then rclone_remote "$PROXY_PORT" "$WORK/known_hosts"; else rclone_remote "$PORT" "$WORK/known_hosts"; fi
}
# The helper is "installed" on the server: on loopback, this very binary.
FERRY_CMD=("$FERRY" --ssh-config "$CFG" --remote-ferry "$FERRY")
D="$WORK/data" R="$WORK/remote" L="$WORK/local"

# ---------------------------------------------------------------- data
if wants resume || wants noop; then
  log "writing ${BIG_MIB} MiB from /dev/urandom"
  dd if=/dev/urandom of="$D/big.bin" bs=1M count="$BIG_MIB" status=none iflag=fullblock
fi
if wants wan; then
  dd if=/dev/urandom of="$D/wan.bin" bs=1M count="$WAN_MIB" status=none iflag=fullblock
fi
if wants tree || wants wan; then
  make_tree "$D/tree" "$TREE_DIRS" 100 16384 5
fi
if wants tree100k; then
  log "writing $((BIG_TREE_DIRS * 100)) files"
  make_tree "$D/tree100k" "$BIG_TREE_DIRS" 100 4096 7
fi
sync

RESULTS="$WORK/results.tsv"
printf 'scenario\ttool\trun\tstatus\twall_s\tmaxrss_kib\tuser_s\tsys_s\tserver_cpu_s\tnote\n' >"$RESULTS"

# record SCEN TOOL RUN NOTE: appends the last timed_run's figures; a failed
# peer aborts (the comparison would mean nothing), a failed ferry is kept.
record() {
  local scen="$1" tool="$2" run="$3" note="${4:-}" tag="$WORK/runs/$1.$2.$3" wall rss usr sys
  if [ "$RUN_RC" -ne 0 ]; then
    log "$scen $tool run $run: failed (exit $RUN_RC): ${CMD[*]}"
    sed 's/^/    | /' "$tag.err" >&2 || true
    [ "$tool" = ferry ] || die "$tool failed"
    printf '%s\t%s\t%s\tfailed\t\t\t\t\t%s\t%s\n' "$scen" "$tool" "$run" "$RUN_SERVER_CPU" "$note" >>"$RESULTS"
    return 1
  fi
  read -r wall rss usr sys < <(tail -n 1 "$tag.time")
  printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$run" "$wall" "$rss" "$usr" "$sys" \
    "$RUN_SERVER_CPU" "$note" >>"$RESULTS"
  log "$scen $tool run $run: ${wall}s rss ${rss}KiB cpu ${usr}u+${sys}s server ${RUN_SERVER_CPU}s $note"
}
# timed SCEN TOOL RUN [NOTE]: times "${CMD[@]}" and records it; when ferry
# printed its summary (-v), the seconds it took once connected go into the
# note as connected_s=
timed() {
  local tag="$WORK/runs/$1.$2.$3" note="${4:-}" secs
  timed_run "$tag" '%e %M %U %S'
  secs="$(grep -o ' in [0-9.]* s (' "$tag.out" 2>/dev/null | awk '{ print $2 }' | tail -n 1 || true)"
  if [ -n "$secs" ]; then note="${note:+$note }connected_s=$secs"; fi
  record "$1" "$2" "$3" "$note"
}
same_file() { cmp -s "$1" "$2" || die "$3: $2 differs from $1"; }
same_tree() { diff -r "$1" "$2" >/dev/null || die "$3: $2 differs from $1"; }

# copy_cmd TOOL FROM TO [HOST]: a plain one-file copy; remote paths are
# given as ":PATH" and get the host alias (default ferrybench) prefixed.
copy_cmd() {
  local tool="$1" from="$2" to="$3" host="${4:-ferrybench}" batch
  if [ "$tool" = rclone ]; then
    case "$from" in :*) from="$(rclone_at "$host")${from#:}" ;; esac
    case "$to" in :*) to="$(rclone_at "$host")${to#:}" ;; esac
    CMD=(rclone copyto "$from" "$to")
    return
  fi
  case "$from" in :*) from="$host$from" ;; esac
  case "$to" in :*) to="$host$to" ;; esac
  case "$tool" in
    ferry) CMD=("${FERRY_CMD[@]}" "$from" "$to") ;;
    scp) CMD=(scp -F "$CFG" "${PEER_OPTS[@]}" "$from" "$to") ;;
    rsync) CMD=(rsync -e "$RSH" "$from" "$to") ;;
    sftp)
      batch="$WORK/sftp.$RANDOM.batch"
      case "$from" in
        "$host":*) echo "get ${from#"$host":} $to" >"$batch" ;;
        *) echo "put $from ${to#"$host":}" >"$batch" ;;
      esac
      CMD=(sftp -F "$CFG" "${PEER_OPTS[@]}" -b "$batch" "$host") ;;
  esac
}

# ---------------------------------------------------------------- resume
# cut_at_half TOOL: starts the copy of big.bin to $R/resume/ and stops it
# with SIGTERM once the largest file there reaches half the size; prints the
# size of what was left.
cut_at_half() {
  local tool="$1" half=$((BIG_MIB * 1024 * 1024 / 2)) pid size=0
  rm -rf "$R/resume" && mkdir -p "$R/resume" && sync
  case "$tool" in
    rsync) CMD=(rsync --partial -e "$RSH" "$D/big.bin" "ferrybench:$R/resume/big.bin") ;;
    *) copy_cmd "$tool" "$D/big.bin" ":$R/resume/big.bin" ;;
  esac
  "${CMD[@]}" </dev/null >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 6000); do
    size="$(find "$R/resume" -type f -printf '%s\n' | sort -n | tail -n 1)"
    [ "${size:-0}" -ge "$half" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  wait_server_idle
  find "$R/resume" -type f -printf '%s\n' | sort -n | tail -n 1
}
resume_run() {
  local run="$1" tool left batch
  for tool in ferry rsync sftp scp; do
    if [ "$tool" = scp ]; then
      rm -rf "$R/resume" && mkdir -p "$R/resume" && sync
      left=0
    else
      left="$(cut_at_half "$tool")"
    fi
    case "$tool" in
      rsync) CMD=(rsync --partial -e "$RSH" "$D/big.bin" "ferrybench:$R/resume/big.bin") ;;
      sftp)
        batch="$WORK/sftp.reput.batch"
        echo "reput $D/big.bin $R/resume/big.bin" >"$batch"
        CMD=(sftp -F "$CFG" "${PEER_OPTS[@]}" -b "$batch" ferrybench) ;;
      *) copy_cmd "$tool" "$D/big.bin" ":$R/resume/big.bin" ;;
    esac
    sync
    timed resume "$tool" "$run" "cut_at=$left" && same_file "$D/big.bin" "$R/resume/big.bin" "resume $tool"
  done
}

# ---------------------------------------------------------------- noop
noop_setup() {
  mkdir -p "$R/noop" && cp -p "$D/big.bin" "$R/noop/big.bin" && sync
}
noop_run() {
  local run="$1" tool before
  before="$(stat -c %Y "$R/noop/big.bin")"
  for tool in ferry rsync; do
    case "$tool" in
      ferry) CMD=("${FERRY_CMD[@]}" -t "$D/big.bin" "ferrybench:$R/noop/big.bin") ;;
      rsync) CMD=(rsync -t -e "$RSH" "$D/big.bin" "ferrybench:$R/noop/big.bin") ;;
    esac
    timed noop "$tool" "$run"
    [ "$(stat -c %Y "$R/noop/big.bin")" = "$before" ] || die "noop $tool rewrote the file"
  done
}

# ---------------------------------------------------------------- trees
# tree_cmd TOOL SRC DEST [HOST]: the archive-mode copy of SRC's contents
tree_cmd() {
  local tool="$1" src="$2" dest="$3" host="${4:-ferrybench}"
  case "$tool" in
    ferry) CMD=("${FERRY_CMD[@]}" -a "$src/" "$host:$dest/") ;;
    rsync) CMD=(rsync -a -e "$RSH" "$src/" "$host:$dest/") ;;
    scp) CMD=(scp -F "$CFG" "${PEER_OPTS[@]}" -rp "$src" "$host:$dest") ;;
    rclone) CMD=(rclone copy --sftp-disable-hashcheck "$src" "$(rclone_at "$host")$dest") ;;
  esac
}
tree_run() {
  local run="$1" tool
  for tool in ferry rsync scp $RCLONE; do
    rm -rf "$R/tree.$tool" && sync
    tree_cmd "$tool" "$D/tree" "$R/tree.$tool"
    timed tree-push "$tool" "$run" && same_tree "$D/tree" "$R/tree.$tool" "tree-push $tool"
    [ "$tool" = scp ] && continue
    timed tree-noop "$tool" "$run"
  done
}
# tree100k_where KIND: the destinations' parent, on disk or on a RAM disk
tree100k_where() {
  case "$1" in
    disk) echo "$R" ;;
    ram) echo "$BENCH_RAM" ;;
  esac
}
tree100k_setup() {
  # Removed with the work dir (bench_cleanup).
  BENCH_RAM="$(mktemp -d "${BENCH_RAM_DIR:-/dev/shm}/ferry-bench-ram.XXXXXX")"
  [ "$(stat -f -c %T "$BENCH_RAM")" = tmpfs ] || log "warning: $BENCH_RAM is not on a tmpfs"
  # ferry-stock is ferry where the server has none: the default helper
  # command must not be found there.
  if ssh -F "$CFG" "${PEER_OPTS[@]}" ferrybench 'command -v ferry' </dev/null >/dev/null 2>&1; then
    die "the server has a ferry on its PATH: ferry-stock would use it as the helper"
  fi
}
tree100k_run() {
  local run="$1" tool kind dest
  for kind in ram disk; do
    for tool in ferry ferry-stock rsync; do
      dest="$(tree100k_where "$kind")/tree100k.$tool"
      rm -rf "$dest" && sync
      if [ "$tool" = ferry-stock ]; then
        CMD=("$FERRY" --ssh-config "$CFG" -a "$D/tree100k/" "ferrybench:$dest/")
      else
        tree_cmd "$tool" "$D/tree100k" "$dest"
      fi
      timed "tree100k-push-$kind" "$tool" "$run" && same_tree "$D/tree100k" "$dest" "tree100k-push-$kind $tool"
      timed "tree100k-noop-$kind" "$tool" "$run"
    done
  done
}

# ---------------------------------------------------------------- wan
wan_run() {
  local run="$1" tool
  for tool in ferry scp sftp rsync $RCLONE; do
    rm -f "$R/wan.bin" && sync
    copy_cmd "$tool" "$D/wan.bin" ":$R/wan.bin" ferrybench-wan
    # ferry's summary line: its own time once connected (planning included)
    if [ "$tool" = ferry ]; then CMD+=(-v); fi
    timed wan-push "$tool" "$run" &&
      same_file "$D/wan.bin" "$R/wan.bin" "wan-push $tool"
  done
  cp "$D/wan.bin" "$R/wan-src.bin"
  for tool in ferry scp sftp rsync $RCLONE; do
    rm -f "$L/wan.bin" && sync
    copy_cmd "$tool" ":$R/wan-src.bin" "$L/wan.bin" ferrybench-wan
    if [ "$tool" = ferry ]; then CMD+=(-v); fi
    timed wan-pull "$tool" "$run" &&
      same_file "$D/wan.bin" "$L/wan.bin" "wan-pull $tool"
  done
  # rclone takes minutes here (several round trips per file, 4 files at a
  # time): first run only.
  for tool in ferry rsync $([ "$run" = 1 ] && echo "$RCLONE"); do
    rm -rf "$R/wantree.$tool" && sync
    tree_cmd "$tool" "$D/tree" "$R/wantree.$tool" ferrybench-wan
    timed wan-tree "$tool" "$run" && same_tree "$D/tree" "$R/wantree.$tool" "wan-tree $tool"
  done
  # ...and pulled back (from ferry's copy, identical to the source tree)
  for tool in ferry rsync; do
    rm -rf "$L/wantree.$tool" && sync
    case "$tool" in
      ferry) CMD=("${FERRY_CMD[@]}" -a "ferrybench-wan:$R/wantree.ferry/" "$L/wantree.$tool/") ;;
      rsync) CMD=(rsync -a -e "$RSH" "ferrybench-wan:$R/wantree.ferry/" "$L/wantree.$tool/") ;;
    esac
    timed wan-tree-pull "$tool" "$run" && same_tree "$D/tree" "$L/wantree.$tool" "wan-tree-pull $tool"
  done
}

# ---------------------------------------------------------------- runs
START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$(date +%s)
if wants noop; then noop_setup; fi
if wants tree100k; then tree100k_setup; fi
for run in $(seq 1 "$RUNS"); do
  if wants resume; then resume_run "$run"; fi
  if wants noop; then noop_run "$run"; fi
  if wants tree; then tree_run "$run"; fi
  if wants tree100k; then tree100k_run "$run"; fi
  if wants wan; then wan_run "$run"; fi
done
log "all runs done in $(( $(date +%s) - T0 )) s"
END_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
CMDLINE="bash bench/scale.sh --runs $RUNS"
if [ "$SCENARIOS" != "$ALL" ]; then CMDLINE+=" --scenarios $SCENARIOS"; fi
if [ "${BENCH_SCALE_SMALL:-0}" = 1 ]; then CMDLINE="BENCH_SCALE_SMALL=1 $CMDLINE"; fi
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then CMDLINE="BENCH_PEER_CIPHER=$BENCH_PEER_CIPHER $CMDLINE"; fi
END_HEAD="$(git_state)"
if [ "$END_HEAD" != "$B_COMMIT" ]; then B_COMMIT="$B_COMMIT; at the end of the run: $END_HEAD"; fi
bench_machine_env
export B_RESULTS="$RESULTS" B_DOC="$DOC" B_CMDLINE="$CMDLINE" B_DATE="$START_DATE" B_RUNS="$RUNS" \
  B_COMMIT B_START_LOAD="$START_LOAD" B_END_LOAD="$END_LOAD" B_BIG_MIB="$BIG_MIB" \
  B_WAN_MIB="$WAN_MIB" B_TREE_FILES="$((TREE_DIRS * 100))" B_BIG_TREE_FILES="$((BIG_TREE_DIRS * 100))" \
  B_TREE_BYTES="$(find "$D/tree" -type f -printf '%s\n' 2>/dev/null | awk '{ t += $1 } END { print t + 0 }')" \
  B_WAN_DELAY_MS="$WAN_DELAY_MS" B_WAN_RATE_MBIT="$WAN_RATE_MBIT" B_PEER_CIPHER="${BENCH_PEER_CIPHER:-}"
mkdir -p "$(dirname "$DOC")"
timeout 60 python3 "$REPO/bench/scale_report.py"
log "wrote the scale section of $DOC"
cat "$RESULTS" >&2
