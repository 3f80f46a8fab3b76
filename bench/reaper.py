#!/usr/bin/env python3
"""Run a command as a child subreaper, for bench/lib.sh's sshd.

Usage: python3 bench/reaper.py COMMAND [ARG...]

Why: when an SSH client drops the connection without waiting for the remote
command's exit status, the per-connection sshd exits without waiting for its
children (sftp-server, `ferry --server`, ...). They are then reparented away
from the sshd listener, so their CPU never reaches the listener's
cutime/cstime and "server CPU" misses them. With PR_SET_CHILD_SUBREAPER set
here, such orphans are reparented to this process instead; it reaps them, and
their CPU shows up in *its* cutime/cstime (/proc/<this pid>/stat fields 16
and 17), which bench/lib.sh adds to the listener's.

Forwards SIGTERM/SIGINT/SIGHUP to COMMAND, reaps every child that comes its
way, and exits with COMMAND's status as soon as COMMAND exits (orphans still
running then are left to init).
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"reaper: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as e:
            print(f"reaper: cannot run {sys.argv[1]}: {e}", file=sys.stderr)
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            sys.exit(0)
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
