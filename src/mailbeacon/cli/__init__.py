"""The command line: ``mailbeacon [--db URL] COMMAND``.

Every command that touches the store brings its schema up to date first, so
``keys create`` works on a fresh machine before the first ``serve``.

Every error is one line with the next step: commands say what went wrong
where they know (a bad time, a missing file, an unknown id); anything else
that escapes is still one line here, never a traceback, unless
MAILBEACON_DEBUG=1 asks for it.
"""

import os
import sys

import mailbeacon.cli.campaigns
import mailbeacon.cli.mailboxes
import mailbeacon.cli.remind
import mailbeacon.cli.reports
import mailbeacon.cli.senders  # noqa: F401 - registers commands
from mailbeacon.cli import (  # noqa: F401 - registers commands
    demo,
    instrument,
    keys,
    messages,
    networks,
    serve,
    users,
)
from mailbeacon.cli.base import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MAILBEACON_DEBUG", "").lower() in ("1", "true", "yes"):
            raise
        text = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
        print(
            f"mailbeacon: {what} (run again with MAILBEACON_DEBUG=1 for the details, "
            "and report it if it looks like a bug)",
            file=sys.stderr,
        )
        sys.exit(1)


__all__ = ["app", "main"]
