"""The command line: ``mailbeacon [--db URL] COMMAND``.

Every command that touches the store brings its schema up to date first, so
``keys create`` works on a fresh machine before the first ``serve``.

Every error is one line with the next step: commands say what went wrong
where they know (a bad time, a missing file, an unknown id); anything else
that escapes is still one line here, never a traceback, unless
MAILBEACON_DEBUG=1 asks for it.

Commands register themselves on ``base.app`` when their module is imported.
``main()`` imports only the module(s) of the command the line names, so a
command starts on about half the imports (``keys create`` does not load the
instrumenter, the reports or the relay); ``--help``, shell completion and
unknown words import them all, as does ``from mailbeacon.cli import app``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Every command module, in the order they register (the order --help lists).
MODULES = (
    "campaigns",
    "mailboxes",
    "remind",
    "reports",
    "senders",
    "demo",
    "instrument",
    "keys",
    "messages",
    "networks",
    "serve",
    "users",
)

# Top-level word -> the modules that register it or its subcommands.
# tests/test_cli_lazy.py checks this against what the modules register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "campaign": ("campaigns", "messages"),
    "mailboxes": ("mailboxes",),
    "remind": ("remind",),
    "reminders": ("remind",),
    "report": ("reports",),
    "export": ("reports",),
    "purge": ("reports",),
    "recipient": ("reports",),
    "senders": ("senders",),
    "demo": ("demo",),
    "instrument": ("instrument",),
    "lint": ("instrument",),
    "keys": ("keys",),
    "message": ("messages",),
    "events": ("messages",),
    "networks": ("networks",),
    "reclassify": ("networks",),
    "serve": ("serve",),
    "migrate": ("serve",),
    "init": ("serve",),
    "users": ("users",),
}

# Global options that take a value (base.main_options).
_VALUE_OPTIONS = ("--db", "--data-dir")


def command_word(argv: list[str]) -> str | None:
    """The command the line names, past the global options; None for --help and the like."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUE_OPTIONS:
            next(args, None)
        elif arg.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def register(word: str | None = None) -> None:
    """Import the modules that register ``word``'s commands; all of them for None or unknown."""
    wanted = COMMANDS.get(word or "", MODULES)
    for name in MODULES:
        if name in wanted:
            importlib.import_module(f"mailbeacon.cli.{name}")


def __getattr__(name: str) -> Any:
    if name == "app":
        register()
        from mailbeacon.cli.base import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    completing = any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)
    register(None if completing else command_word(sys.argv[1:]))
    from mailbeacon.cli.base import app

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MAILBEACON_DEBUG", "").lower() in ("1", "true", "yes"):
            raise
        if isinstance(exc, OSError) and exc.filename is not None:
            # A file the user named (--out in a missing directory, a file not
            # readable): say which and why, not "report it if it looks like a bug".
            print(f"mailbeacon: cannot use {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
            sys.exit(1)
        text = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
        print(
            f"mailbeacon: {what} (run again with MAILBEACON_DEBUG=1 for the details, "
            "and report it if it looks like a bug)",
            file=sys.stderr,
        )
        sys.exit(1)


__all__ = ["COMMANDS", "MODULES", "app", "command_word", "main", "register"]
