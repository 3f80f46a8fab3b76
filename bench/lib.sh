# shellcheck shell=bash
# bench/lib.sh: the parts shared by bench/run.sh and bench/delta.sh.
#
# Source it (do not run it) after setting REPO (the repository root) and,
# optionally, BENCH_TAG (the prefix of log lines, default "bench"). It
# defines functions only, except for a few constants; the caller decides
# when to build, create the work dir, start sshd, and so on:
#
#   bench_require BIN...     die unless every BIN is installed
#   git_state                the commit (and uncommitted paths) being measured
#   bench_build              cargo build --release (skipped with BENCH_NO_BUILD=1;
#                            BENCH_FERRY=PATH measures another ferry binary, e.g.
#                            an older commit's build, with BENCH_NO_BUILD=1)
#   bench_init_work          WORK=<temp dir under ${BENCH_DIR:-/tmp}>, EXIT trap
#                            (kills PROXY_PID, PROBE_PID, SSHD_PID, removes
#                            WORK), throw-away HOME, no ssh agent, host and
#                            user ed25519 keys
#   bench_start_sshd         sshd on 127.0.0.1:<free port> under bench/reaper.py
#                            (SSHD_PID = the reaper, LISTENER_PID = sshd, PORT),
#                            ssh config CFG with "Host ferrybench"
#   bench_start_proxy ALIAS [ARGS]  bench/proxy.py in front of sshd, Host ALIAS
#   rclone_remote PORT KNOWN_HOSTS  rclone's on-the-fly remote for that sshd
#   ssh_host_block ALIAS PORT KNOWN_HOSTS
#                            prints one Host block (and appends the host key to
#                            KNOWN_HOSTS for [127.0.0.1]:PORT)
#   server_cpu_ticks, wait_server_idle, free_port, probe_banner
#   make_tree DIR DIRS FILES_PER_DIR MAX_BYTES SEED
#                            a tree of random files (sizes 0..MAX_BYTES, fixed
#                            seed): bench/scale.sh's and bench/wan.sh's trees
#   bench_machine_env        exports B_NPROC B_CPU B_MEM B_KERNEL B_OPENSSH
#                            B_RSYNC B_FERRY B_FS for the report writers

SSHD=/usr/sbin/sshd
FERRY="${BENCH_FERRY:-$REPO/target/release/ferry}"
SSHD_PID=""
LISTENER_PID=""
PROBE_PID=""
PROXY_PID=""

log() { printf '%s: %s\n' "${BENCH_TAG:-bench}" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "${BENCH_TAG:-bench}" "$*" >&2; exit 1; }

bench_require() {
  local bin
  for bin in "$@"; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin not found (apt-get install openssh-server openssh-client rsync time python3)"
  done
  if [ -x /usr/lib/openssh/sftp-server ]; then
    SFTP_SUBSYSTEM="/usr/lib/openssh/sftp-server"
  else
    SFTP_SUBSYSTEM="internal-sftp"
  fi
}

# The source state the binary is built from (the repository may move on
# while a benchmark runs; the scripts report that too).
git_state() {
  local head dirty
  head="$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo 'none yet')"
  dirty="$(cd "$REPO" && git status --porcelain 2>/dev/null | cut -c4- | sed 's|/.*|/|' | sort -u | tr '\n' ' ' | sed 's/ $//; s/ /, /g')"
  if [ -n "$dirty" ]; then echo "$head, with uncommitted changes in $dirty"; else echo "$head"; fi
}

bench_build() {
  if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    (cd "$REPO" && timeout 1800 cargo build --release) || die "cargo build --release failed"
  fi
  [ -x "$FERRY" ] || die "$FERRY not found (build failed or BENCH_NO_BUILD=1 without a build)"
}

# Kills what we started (each by its own pid) and removes the work dir.
bench_cleanup() {
  local rc=$? pid
  for pid in "$PROXY_PID" "$PROBE_PID" "$SSHD_PID"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "${WORK:-}" ]; then rm -rf "$WORK"; fi
  if [ -n "${BENCH_RAM:-}" ]; then rm -rf "$BENCH_RAM"; fi
  exit "$rc"
}

bench_init_work() {
  mkdir -p "${BENCH_DIR:-/tmp}"
  WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/ferry-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$WORK/home/.ssh" "$WORK/remote" "$WORK/local" "$WORK/data" "$WORK/runs"
  chmod 700 "$WORK/home/.ssh"
  # Same environment for every tool: no agent, no real ~/.ssh.
  unset SSH_AUTH_SOCK SSH_AGENT_PID
  export HOME="$WORK/home" NO_COLOR=1
  ssh-keygen -q -t ed25519 -N '' -C ferry-bench-host -f "$WORK/host_key"
  ssh-keygen -q -t ed25519 -N '' -C ferry-bench-user -f "$WORK/user_key"
  cp "$WORK/user_key.pub" "$WORK/authorized_keys"
  if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# true once something on 127.0.0.1:$1 answers with an SSH banner
probe_banner() {
  timeout 2 python3 - "$1" <<'EOF' >/dev/null 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
sys.exit(0 if s.recv(4) == b"SSH-" else 1)
EOF
}

# write_sshd_config FILE PORT LOGLEVEL (the config of tests/common/mod.rs)
write_sshd_config() {
  cat >"$1" <<EOF
Port $2
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile $1.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
LogLevel $3
Subsystem sftp $SFTP_SUBSYSTEM
EOF
}
# ssh_host_block ALIAS PORT KNOWN_HOSTS: prints a Host block for 127.0.0.1:PORT
# and appends the host key line for [127.0.0.1]:PORT to KNOWN_HOSTS.
ssh_host_block() {
  echo "[127.0.0.1]:$2 $(cut -d' ' -f1,2 "$WORK/host_key.pub")" >>"$3"
  cat <<EOF
Host $1
  HostName 127.0.0.1
  Port $2
  User $(id -un)
  IdentityFile $WORK/user_key
  UserKnownHostsFile $3
  StrictHostKeyChecking yes
EOF
}
# rclone_remote PORT KNOWN_HOSTS: rclone's on-the-fly SFTP remote for
# 127.0.0.1:PORT with the bench's user key (append the absolute path)
rclone_remote() {
  echo ":sftp,host=127.0.0.1,port=$1,user=$(id -un),key_file=$WORK/user_key,known_hosts_file=$2:"
}
# write_ssh_config FILE PORT KNOWN_HOSTS (one Host block used by every tool)
write_ssh_config() {
  : >"$3"
  ssh_host_block ferrybench "$2" "$3" >"$1"
}

bench_start_sshd() {
  local p attempt
  PORT=""
  for attempt in 1 2 3 4 5; do
    p="$(free_port)"
    write_sshd_config "$WORK/sshd_config" "$p" ERROR
    # Under a child subreaper, so that server processes orphaned by their
    # per-connection sshd are still reaped, and counted, by us (see reaper.py).
    python3 "$REPO/bench/reaper.py" "$SSHD" -D -e -f "$WORK/sshd_config" </dev/null >"$WORK/sshd.log" 2>&1 &
    SSHD_PID=$!
    for _ in $(seq 1 100); do            # at most ~10 s
      if ! kill -0 "$SSHD_PID" 2>/dev/null; then break; fi
      if probe_banner "$p"; then PORT="$p"; break; fi
      sleep 0.1
    done
    if [ -n "$PORT" ]; then
      LISTENER_PID="$(ps -o pid= --ppid "$SSHD_PID" | tr -d ' ')"
      [ -n "$LISTENER_PID" ] || die "sshd answers but is not a child of the reaper (pid $SSHD_PID)"
      break
    fi
    if kill -0 "$SSHD_PID" 2>/dev/null; then
      kill "$SSHD_PID" 2>/dev/null || true
      wait "$SSHD_PID" 2>/dev/null || true
      SSHD_PID=""
      die "sshd did not answer on 127.0.0.1:$p within 10 s; log: $(cat "$WORK/sshd.log")"
    fi
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=""
    grep -q 'Address already in use' "$WORK/sshd.log" ||
      die "sshd exited during startup; log: $(cat "$WORK/sshd.log")"
    log "port $p taken, retrying ($attempt/5)"
  done
  [ -n "$PORT" ] || die "could not start sshd on a free port after 5 attempts"
  log "sshd pid $LISTENER_PID (reaper $SSHD_PID) on 127.0.0.1:$PORT"

  CFG="$WORK/ssh_config"
  write_ssh_config "$CFG" "$PORT" "$WORK/known_hosts"
  timeout 60 ssh -F "$CFG" -o BatchMode=yes ferrybench true </dev/null ||
    die "ssh -F $CFG ferrybench true failed; sshd log: $(cat "$WORK/sshd.log")"
}

# bench_start_proxy ALIAS [PROXY ARGS...]: bench/proxy.py on a free port in
# front of sshd (extra arguments, e.g. --delay-ms 10 --rate-mbit 200, go to
# the proxy), a Host ALIAS for it in CFG. Sets PROXY_PID, PROXY_PORT and
# PROXY_REPORT (one proxy per script: bench_cleanup kills PROXY_PID).
bench_start_proxy() {
  local alias="$1"
  shift
  PROXY_REPORT="$WORK/proxy.report"
  python3 "$REPO/bench/proxy.py" --target-port "$PORT" --port-file "$WORK/proxy.port" \
    --report "$PROXY_REPORT" "$@" </dev/null >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    [ -s "$WORK/proxy.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || die "proxy exited at startup: $(cat "$WORK/proxy.log")"
    sleep 0.1
  done
  [ -s "$WORK/proxy.port" ] || die "proxy did not start within 10 s: $(cat "$WORK/proxy.log")"
  PROXY_PORT="$(cat "$WORK/proxy.port")"
  probe_banner "$PROXY_PORT" || die "no SSH banner through the proxy on 127.0.0.1:$PROXY_PORT"
  log "proxy pid $PROXY_PID on 127.0.0.1:$PROXY_PORT -> $PORT ${*:-}"
  ssh_host_block "$alias" "$PROXY_PORT" "$WORK/known_hosts" >>"$CFG"
}

# CPU ticks (user+sys) of the server side's reaped processes: the
# per-connection sshd processes and, under them, sftp-server / the remote
# rsync / ferry --server, whether sshd reaped them (the listener's cutime +
# cstime) or they were orphaned and the reaper reaped them (its cutime +
# cstime; it holds the listener's own only after the listener exits).
server_cpu_ticks() {
  cat "/proc/$LISTENER_PID/stat" "/proc/$SSHD_PID/stat" | awk '{ t += $16 + $17 } END { print t }'
}
# shellcheck disable=SC2034  # used by the scripts that source this file
CLK_TCK="$(getconf CLK_TCK)"
# Runs "${CMD[@]}" under timeout and /usr/bin/time (format $2) with its
# output in $1.out, $1.err and $1.time, between two idle points of the server.
# Sets RUN_RC (the command's status) and RUN_SERVER_CPU (seconds of server-side
# CPU the run caused). `between` (optional, a function name) runs at both idle
# points, e.g. to read and reset the proxy's byte counts.
timed_run() {
  local tag="$1" format="$2" between="${3:-}" c0
  # shellcheck disable=SC2119  # no argument: the reaper-managed sshd
  wait_server_idle
  [ -n "$between" ] && "$between"
  c0="$(server_cpu_ticks)"
  # shellcheck disable=SC2034  # RUN_* are read by the scripts that source this file
  if timeout -k 10 "$TOOL_TIMEOUT" /usr/bin/time -f "$format" -o "$tag.time" \
       "${CMD[@]}" </dev/null >"$tag.out" 2>"$tag.err"; then
    RUN_RC=0
  else
    RUN_RC=$?
  fi
  # shellcheck disable=SC2119
  wait_server_idle
  # shellcheck disable=SC2034
  RUN_SERVER_CPU="$(python3 -c "print(f'{($(server_cpu_ticks) - $c0) / $CLK_TCK:.2f}')")"
  [ -n "$between" ] && "$between"
  return 0
}

# Wait (at most 30 s) until every server process of a connection has been
# reaped, so that the server-side CPU of a run is complete and runs never
# overlap: the listener has no children and the reaper none but the listener.
# With a PID argument (an sshd started without the reaper): its children only.
# shellcheck disable=SC2120  # the PID form is for an sshd run without the reaper
wait_server_idle() {
  local left
  for _ in $(seq 1 300); do
    if [ -n "${1:-}" ]; then
      left="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
    else
      left="$(pgrep -P "$LISTENER_PID,$SSHD_PID" | grep -vx "$LISTENER_PID" || true)"
    fi
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  log "warning: sshd still has connection processes 30 s after the client exited"
}

# Describes this machine and the tools, for the report writers.
bench_machine_env() {
  B_NPROC="$(nproc)"
  B_CPU="$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')"
  B_MEM="$(awk '/^MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo)"
  B_KERNEL="$(uname -r)"
  B_OPENSSH="$(ssh -V 2>&1)"
  B_RSYNC="$(rsync --version | sed -n '1p' | tr -s ' ')"
  B_FERRY="$("$FERRY" --version 2>/dev/null || echo ferry)"
  B_FS="$(df -T "$WORK" | awk 'NR==2 { print $2 }')"
  export B_NPROC B_CPU B_MEM B_KERNEL B_OPENSSH B_RSYNC B_FERRY B_FS
}

# make_tree DIR DIRS FILES_PER_DIR MAX_BYTES SEED: DIRS directories d0000...
# of FILES_PER_DIR files f000.bin... each, of random sizes 0..MAX_BYTES (the
# sizes and offsets from random.Random(SEED), the bytes from os.urandom).
make_tree() {
  python3 - "$@" <<'EOF'
import os, random, sys
root, dirs, per, top, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
r = random.Random(seed)
pool = os.urandom(top + 4096)
for d in range(dirs):
    sub = os.path.join(root, f"d{d:04}")
    os.makedirs(sub, exist_ok=True)
    for f in range(per):
        n = r.randint(0, top)
        at = r.randint(0, 4096)
        with open(os.path.join(sub, f"f{f:03}.bin"), "wb") as fh:
            fh.write(pool[at:at + n])
EOF
}
