"""``serve --workers N``: N server processes sharing one listening socket.

The parent brings the store up to date, makes the keys and binds the socket,
once, before any child exists; then it forks N children and only supervises.
Each child builds its own engine, node, writer and event loop and accepts on
the shared socket (the kernel hands each connection to one of them), so every
process serves every path and a hit is still answered only after its own
process committed it. On SQLite the writers take turns on the one WAL file
(``BEGIN IMMEDIATE`` plus the busy timeout); on PostgreSQL they write at once,
as separate nodes do. Child 0 is the *primary*: it alone runs what must run
once (webhook delivery, the relay, mailbox watchers, reminders, retention).

A child that dies is started again in its place (the primary as the primary).
One that keeps dying at start-up (``CRASH_LIMIT`` times within ``CRASH_S``
seconds each) stops the whole server with an error instead of looping.
SIGTERM or SIGINT stops every child gracefully, then the parent.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType

__all__ = ["CRASH_LIMIT", "CRASH_S", "supervise", "worker_count"]

log = logging.getLogger("mailbeacon.workers")

CRASH_S = 5.0  # a child that exits sooner than this after starting "crashed at start-up"
CRASH_LIMIT = 5  # ... this many times in a row: give up


def worker_count(setting: int) -> int:
    """The number of processes for a ``workers`` setting (0: one per core)."""
    if setting > 0:
        return setting
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def supervise(count: int, serve_one: Callable[[int], None]) -> int:
    """Fork ``count`` children running ``serve_one(index)``; return an exit code."""
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    crashes = [0] * count
    stopping = False

    def spawn(index: int) -> None:
        sys.stdout.flush()  # or the child prints the parent's buffered output again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's atexit
            code = 0
            try:
                serve_one(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - report and exit, whatever it was
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        spawn(index)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index, started = children.pop(pid, (-1, 0.0))
        if index < 0 or stopping:
            continue
        crashes[index] = crashes[index] + 1 if time.monotonic() - started < CRASH_S else 1
        why = os.waitstatus_to_exitcode(status)
        if crashes[index] >= CRASH_LIMIT:
            print(
                f"error: worker {index} exited ({why}) {CRASH_LIMIT} times right after "
                "starting; stopping. Its log above says why.",
                file=sys.stderr,
                flush=True,
            )
            code = 1
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d exited (%s); starting it again", index, why)
        spawn(index)
    return code
