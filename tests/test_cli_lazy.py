"""The command line imports only the modules of the command it runs (cli/__init__.py)."""

from __future__ import annotations

import pytest
import typer

from mailbeacon import cli


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["keys", "create", "--name", "me"], "keys"),
        (["--db", "x.db", "serve", "--port", "0"], "serve"),
        (["--db=x.db", "--data-dir", "/tmp/d", "report", "--campaign", "c"], "report"),
        (["--data-dir=/tmp/d", "senders", "list"], "senders"),
        (["--db", "keys", "users", "list"], "users"),  # an option's value is not the command
        (["--help"], None),
        (["--install-completion"], None),
        ([], None),
        (["--db"], None),
        (["no-such-command"], "no-such-command"),
    ],
)
def test_the_command_word_is_found_past_the_global_options(
    argv: list[str], word: str | None
) -> None:
    assert cli.command_word(argv) == word


def test_each_command_names_the_modules_that_register_it() -> None:
    app = cli.app  # imports every module
    seen: dict[str, set[str]] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        seen.setdefault(name, set()).add(command.callback.__module__)
    for group in app.registered_groups:
        assert group.name and isinstance(group.typer_instance, typer.Typer)
        modules = {
            c.callback.__module__ for c in group.typer_instance.registered_commands if c.callback
        }
        seen.setdefault(group.name, set()).update(modules)
    assert set(seen) == set(cli.COMMANDS), "cli.COMMANDS must list every top-level command"
    for name, modules in seen.items():
        short = {m.removeprefix("mailbeacon.cli.") for m in modules}
        assert short <= set(cli.COMMANDS[name]), f"{name} is registered by {sorted(short)}"
        assert set(cli.COMMANDS[name]) <= set(cli.MODULES)


def test_an_unknown_word_loads_every_command_so_help_lists_them() -> None:
    assert cli.COMMANDS.get("no-such-command") is None
    cli.register("no-such-command")
    import sys

    assert all(f"mailbeacon.cli.{m}" in sys.modules for m in cli.MODULES)
