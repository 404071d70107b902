"""`python -m tests.eval_clock ARGS` runs `mailbeacon ARGS` with a wall clock
that the classification evaluation (tests/classify_eval.py) moves forward.

The clock is time-machine's (it patches time.time, datetime.now and friends
at the C level, so `from time import time` sees it too), ticking at real
speed from the real time. A thread listens on the UNIX socket named by
MB_EVAL_CLOCK: each line it reads is a target time in unix seconds; when the
target is ahead it shifts the clock there, and it answers every line with the
server's time, so the caller knows the jump is done before its next request.
The monotonic clock is untouched: timeouts, asyncio and uvloop keep real time.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import time_machine


def _listen(path: str, traveller: time_machine.Traveller) -> None:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            with conn, conn.makefile("rw") as stream:
                for line in stream:
                    ahead = float(line) - time.time()
                    if ahead > 0:  # the clock only moves forward, like a real one
                        traveller.shift(ahead)
                    stream.write(f"{time.time():.6f}\n")
                    stream.flush()

    threading.Thread(target=loop, name="eval-clock", daemon=True).start()


def main() -> None:
    traveller = time_machine.travel(time.time(), tick=True).start()
    _listen(os.environ["MB_EVAL_CLOCK"], traveller)
    from mailbeacon.cli import main as mailbeacon

    mailbeacon()


if __name__ == "__main__":
    main()
