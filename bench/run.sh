#!/usr/bin/env bash
# ferry benchmark: ferry vs scp, sftp and rsync over one private loopback sshd.
#
# Usage:
#   bash bench/run.sh [--runs N] [--size-mib M] [--scenarios push,pull]
#
#   --runs N          timed runs per tool and scenario (default 5)
#   --size-mib M      size of the test file in MiB (default 1024)
#   --scenarios LIST  comma-separated subset of: push,pull (default push,pull)
#   -h, --help        print this help
#
# Environment:
#   BENCH_DIR         parent of the temporary work dir (default /tmp); the test
#                     file (M MiB) and one copy of it live there
#   BENCH_NO_BUILD=1  skip `cargo build --release` (use the existing binary)
#   BENCH_DOC=PATH    where to write the report (default docs/BENCHMARKS.md)
#   BENCH_PEER_CIPHER=NAME  pass -o Ciphers=NAME to scp, sftp and rsync's ssh
#                     (e.g. aes128-gcm@openssh.com, which ferry picks on CPUs
#                     with AES instructions); default: OpenSSH's own choice
#
# What it does:
#   0. rclone (sftp backend, its defaults) joins the peers when installed
#   1. cargo build --release  ->  target/release/ferry
#   2. starts a private OpenSSH sshd on 127.0.0.1:<free port> (bench/lib.sh,
#      under the subreaper bench/reaper.py; throw-away host
#      and user ed25519 keys, the same sshd_config as tests/common/mod.rs) and
#      writes one ssh config (Host ferrybench) used by every tool:
#        ferry --ssh-config CFG | scp -F CFG | sftp -F CFG -b BATCH |
#        rsync -e "ssh -F CFG"
#      HOME points at an empty temp dir and SSH_AUTH_SOCK is unset, so nothing
#      from this machine's ~/.ssh or agent is used.
#   3. writes an M MiB file from /dev/urandom once
#   4. for each run, for each scenario, each tool in turn (interleaved, so
#      machine noise hits all tools alike): delete the destination, sync, then
#      time the copy with `/usr/bin/time -f '%e %M %U %S'` under `timeout 600`
#      and check the copy with cmp (a wrong copy aborts the benchmark; a ferry
#      that exits non-zero is recorded as "failed" and the run goes on)
#   5. before the timed runs, copies a 4 KiB file once with each tool through a
#      second, DEBUG1-logging sshd to record which cipher each tool negotiates
#   6. writes medians to docs/BENCHMARKS.md, keeping the text between
#      <!-- notes --> and <!-- /notes --> of the existing file verbatim.
#
# Everything lives in one temp dir, removed (and sshd killed) on exit.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

RUNS=5
SIZE_MIB=1024
SCENARIOS="push,pull"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --size-mib) SIZE_MIB="${2:?--size-mib needs a value}"; shift 2 ;;
    --size-mib=*) SIZE_MIB="${1#*=}"; shift ;;
    --scenarios) SCENARIOS="${2:?--scenarios needs a value}"; shift 2 ;;
    --scenarios=*) SCENARIOS="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench: --runs must be a positive integer" >&2; exit 2 ;; esac
case "$SIZE_MIB" in ''|*[!0-9]*|0) echo "bench: --size-mib must be a positive integer" >&2; exit 2 ;; esac
IFS=',' read -r -a SCEN_LIST <<<"$SCENARIOS"
[ "${#SCEN_LIST[@]}" -gt 0 ] || { echo "bench: --scenarios is empty" >&2; exit 2; }
for s in "${SCEN_LIST[@]}"; do
  case "$s" in push|pull) ;; *) echo "bench: unknown scenario '$s' (push, pull)" >&2; exit 2 ;; esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOC="${BENCH_DOC:-$REPO/docs/BENCHMARKS.md}"
TOOLS=(ferry scp sftp rsync)
# rclone's sftp backend too, when installed (defaults: it checks each upload
# with a remote md5sum through the shell).
if command -v rclone >/dev/null 2>&1; then TOOLS+=(rclone); fi
TOOL_TIMEOUT=600
BENCH_TAG=bench
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

bench_require "$SSHD" /usr/bin/ssh-keygen /usr/bin/ssh /usr/bin/scp /usr/bin/sftp \
  /usr/bin/rsync /usr/bin/time /usr/bin/timeout python3 cmp

# ---------------------------------------------------------------- build
bench_build

# ---------------------------------------------------------------- work dir, cleanup, sshd
bench_init_work
bench_start_sshd

# ---------------------------------------------------------------- test data
SRC="$WORK/data/src.bin"
log "writing ${SIZE_MIB} MiB from /dev/urandom to $SRC"
dd if=/dev/urandom of="$SRC" bs=1M count="$SIZE_MIB" status=none iflag=fullblock
sync

# ---------------------------------------------------------------- one timed copy
RESULTS="$WORK/results.tsv"
printf 'scenario\ttool\trun\tstatus\twall_s\tmaxrss_kib\tuser_s\tsys_s\tserver_cpu_s\n' >"$RESULTS"

PEER_OPTS=(-o BatchMode=yes)
if [ -n "${BENCH_PEER_CIPHER:-}" ]; then PEER_OPTS+=(-o "Ciphers=$BENCH_PEER_CIPHER"); fi

# tool_cmd TOOL SCENARIO SRC DST [SSH_CONFIG [PORT KNOWN_HOSTS]] -> fills CMD
tool_cmd() {
  local tool="$1" scen="$2" src="$3" dst="$4" cfg="${5:-$CFG}" from to batch remote
  remote="$(rclone_remote "${6:-$PORT}" "${7:-$WORK/known_hosts}")"
  if [ "$scen" = push ]; then from="$src"; to="ferrybench:$dst"; else from="ferrybench:$src"; to="$dst"; fi
  case "$tool" in
    ferry) CMD=("$FERRY" --ssh-config "$cfg" "$from" "$to") ;;
    scp)   CMD=(scp -F "$cfg" "${PEER_OPTS[@]}" "$from" "$to") ;;
    sftp)
      batch="$WORK/sftp.$scen.batch"
      if [ "$scen" = push ]; then echo "put $src $dst" >"$batch"; else echo "get $src $dst" >"$batch"; fi
      CMD=(sftp -F "$cfg" "${PEER_OPTS[@]}" -b "$batch" ferrybench) ;;
    rsync) CMD=(rsync -e "ssh -F $cfg ${PEER_OPTS[*]}" "$from" "$to") ;;
    rclone)
      if [ "$scen" = push ]; then CMD=(rclone copyto "$src" "$remote$dst"); else CMD=(rclone copyto "$remote$src" "$dst"); fi ;;
  esac
}

# ---------------------------------------------------------------- negotiated ciphers
# One 4 KiB push per tool through a second sshd that logs at DEBUG1, whose
# "kex: client->server cipher: X" line names the cipher of that connection.
probe_ciphers() {
  local p pid cfg="$WORK/probe_ssh_config" plog="$WORK/probe_sshd.log" tool before c
  head -c 4096 /dev/urandom >"$WORK/data/probe.bin"
  p="$(free_port)"
  write_sshd_config "$WORK/probe_sshd_config" "$p" DEBUG1
  write_ssh_config "$cfg" "$p" "$WORK/probe_known_hosts"
  "$SSHD" -D -e -f "$WORK/probe_sshd_config" </dev/null >"$plog" 2>&1 &
  pid=$!
  PROBE_PID=$pid
  for _ in $(seq 1 100); do probe_banner "$p" && break; sleep 0.1; done
  for tool in "${TOOLS[@]}"; do
    before="$(wc -c <"$plog")"
    tool_cmd "$tool" push "$WORK/data/probe.bin" "$WORK/remote/probe.$tool" "$cfg" "$p" "$WORK/probe_known_hosts"
    if timeout -k 10 60 "${CMD[@]}" </dev/null >/dev/null 2>"$WORK/probe.$tool.err"; then
      wait_server_idle "$pid"
      c="$(tail -c +"$((before + 1))" "$plog" | grep -m1 -o 'client->server cipher: [^ ]*' | awk '{ print $3 }' || true)"
      CIPHERS+="$tool=${c:-unknown};"
    else
      CIPHERS+="$tool=unknown ($tool failed);"
    fi
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PROBE_PID=""
  rm -f "$WORK"/remote/probe.* "$WORK"/remote/.probe.* 2>/dev/null || true
  log "negotiated ciphers: $CIPHERS"
}
CIPHERS=""
probe_ciphers

# time_one SCENARIO TOOL RUN
time_one() {
  local scen="$1" tool="$2" run="$3" src dst tag rc status scpu
  src="$SRC"
  if [ "$scen" = push ]; then dst="$WORK/remote/dst.bin"; else dst="$WORK/local/dst.bin"; fi
  rm -f "$dst"
  # ferry's resume state, if a failed run left any next to the destination
  rm -f "$(dirname "$dst")"/.dst.bin.ferry-* 2>/dev/null || true
  sync
  tool_cmd "$tool" "$scen" "$src" "$dst"
  tag="$WORK/runs/$scen.$tool.$run"
  timed_run "$tag" '%e %M %U %S'
  rc="$RUN_RC" scpu="$RUN_SERVER_CPU"
  if [ "$rc" -ne 0 ]; then
    status=failed
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=timeout; fi
    log "$scen $tool run $run: $status (exit $rc): ${CMD[*]}"
    sed 's/^/    | /' "$tag.err" >&2 || true
    [ "$tool" = ferry ] || die "$tool failed; every peer tool must work for the comparison to mean anything"
    printf '%s\t%s\t%s\t%s\t\t\t\t\t%s\n' "$scen" "$tool" "$run" "$status" "$scpu" >>"$RESULTS"
    rm -f "$dst"
    return 0
  fi
  if ! cmp -s "$SRC" "$dst"; then
    cmp "$SRC" "$dst" >&2 || true
    die "$scen $tool run $run: the copy $dst differs from the source ($(stat -c %s "$dst" 2>/dev/null || echo missing) vs $(stat -c %s "$SRC") bytes): ${CMD[*]}"
  fi
  # /usr/bin/time -o writes "Command exited with non-zero status" lines only on
  # failure, so the last line is the format line.
  read -r wall rss usr sys < <(tail -n 1 "$tag.time")
  printf '%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$tool" "$run" "$wall" "$rss" "$usr" "$sys" "$scpu" >>"$RESULTS"
  log "$scen $tool run $run: ${wall}s  rss ${rss}KiB  cpu ${usr}u+${sys}s  server ${scpu}s"
  rm -f "$dst"
}

# ---------------------------------------------------------------- runs
START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  for scen in "${SCEN_LIST[@]}"; do
    for tool in "${TOOLS[@]}"; do
      time_one "$scen" "$tool" "$run"
    done
  done
done
log "all runs done in $(( $(date +%s) - T0 )) s"

# ---------------------------------------------------------------- report
CMDLINE="${BENCH_PEER_CIPHER:+BENCH_PEER_CIPHER=$BENCH_PEER_CIPHER }bash bench/run.sh --runs $RUNS --size-mib $SIZE_MIB --scenarios $SCENARIOS"
export B_RESULTS="$RESULTS" B_DOC="$DOC" B_CMDLINE="$CMDLINE" B_DATE="$START_DATE" \
  B_RUNS="$RUNS" B_SIZE="$SIZE_MIB" B_SCEN="$SCENARIOS" B_TOOLS="${TOOLS[*]}"
B_COMMIT="$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo 'none yet')"
if [ -n "$(cd "$REPO" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  B_COMMIT="$B_COMMIT, with uncommitted changes in src/ or Cargo.*"
fi
export B_COMMIT
bench_machine_env
export B_SFTPSUB="$SFTP_SUBSYSTEM" B_CIPHERS="$CIPHERS" B_PEER_CIPHER="${BENCH_PEER_CIPHER:-}"
mkdir -p "$(dirname "$DOC")"
python3 "$REPO/bench/report.py"
log "wrote $DOC"
cat "$WORK/results.tsv" >&2
