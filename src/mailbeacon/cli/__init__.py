"""The command line: ``mailbeacon [--db URL] COMMAND``.

Every command that touches the store brings its schema up to date first, so
``keys create`` works on a fresh machine before the first ``serve``.
"""

import mailbeacon.cli.campaigns  # noqa: F401 - registers commands
import mailbeacon.cli.mailboxes  # noqa: F401 - registers commands
import mailbeacon.cli.remind  # noqa: F401 - registers commands
import mailbeacon.cli.reports  # noqa: F401 - registers commands
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
    app()


__all__ = ["app", "main"]
