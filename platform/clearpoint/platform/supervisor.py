"""`serve --workers N`: N server processes on one port, kept running, stopped together.

A worker that dies is started again, so one crash costs one process's calls, not the platform;
a worker that fails to start (exit status 2: its cause is in its one line) stops the whole, since
another would fail the same way, and so does a worker that keeps dying. The workers die with the
supervisor (the kernel sends them SIGTERM when it goes, however it goes), so killing it never
leaves orphans serving on the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# More than this many restarts within RESTART_WINDOW_S means something is wrong that restarting
# will not fix.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
_PR_SET_PDEATHSIG = 1
_STOPPED = (0, -signal.SIGTERM, -signal.SIGINT)


def _die_with_parent(parent: int) -> None:
    """In the child, before it runs: ask the kernel for SIGTERM when the supervisor goes (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: only a supervisor's orderly stop reaches the workers
        return
    if os.getppid() != parent:  # the supervisor went before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(argv: Sequence[str], workers: int, on_exit: Callable[[int], None] | None = None) -> int:
    """Run `workers` copies of `argv` until SIGTERM/SIGINT; returns the exit status for the whole.
    `on_exit` hears the pid of each worker that ends."""
    parent = os.getpid()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), preexec_fn=lambda: _die_with_parent(parent))  # noqa: S603 (our own argv; no threads here)

    children = [spawn() for _ in range(workers)]
    print(f"clearpoint platform: {workers} workers, pids {' '.join(str(c.pid) for c in children)}", file=sys.stderr)
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: deque[float] = deque()
    status = 0
    while not stopping:
        time.sleep(0.2)
        for slot, child in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            if on_exit is not None:
                on_exit(child.pid)
            if code == 2:
                print(f"clearpoint platform: worker {child.pid} could not start; stopping", file=sys.stderr)
                status = 2
                stop(signal.SIGTERM, None)
                break
            now = time.monotonic()
            while restarts and restarts[0] < now - RESTART_WINDOW_S:
                restarts.popleft()
            if len(restarts) >= MAX_RESTARTS:
                print(
                    f"clearpoint platform: workers died {len(restarts) + 1} times within {RESTART_WINDOW_S:g} s; "
                    "stopping (see the errors above)",
                    file=sys.stderr,
                )
                status = 1
                stop(signal.SIGTERM, None)
                break
            restarts.append(now)
            children[slot] = spawn()
            print(
                f"clearpoint platform: worker {child.pid} exited ({_how(code)}); started worker {children[slot].pid}",
                file=sys.stderr,
            )
    codes = [child.wait() for child in children]
    # A worker still starting when the stop came dies of the signal itself: that is a stop, not a failure.
    return status or max((abs(c) for c in codes if c not in _STOPPED), default=0)


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"status {code}"
