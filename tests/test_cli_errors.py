"""Every CLI error is one line with the next step, never a traceback; a
mistyped database is an error, not a new empty database.

Every command of the Typer app is enumerated and run, as a user would (a
subprocess), with bad input (BAD) and with a --db that does not exist. A new
command without a line in BAD fails the test, so it gets one.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main

from tests.helpers import cli

# Bad input for every command: unknown ids and names, malformed times, URLs,
# addresses and files, and for commands that take no input an unknown flag.
BAD: dict[str, list[list[str]]] = {
    "remind": [
        ["999999", "--if", "not_replied", "--after", "3d"],
        ["1", "--if", "x", "--after", "soon"],
    ],
    "report": [["no-such-campaign"]],
    "export": [
        ["no-such-campaign"],
        ["taken", "--format", "xml"],
        ["taken", "--out", "{tmp}/missing/events.csv"],
    ],
    "purge": [["--older-than", "ninety days"]],
    "demo": [["--url", "http://127.0.0.1:9"], ["--url", "ht!tp:/x"]],
    "instrument": [
        ["{tmp}/missing/proposal.html", "--to", "ana@example.com"],
        ["{tmp}/proposal.html", "--to", "ana@example.com", "--sent-at", "tomorrow"],
        ["{tmp}/proposal.html", "--recipients", "{tmp}/people.csv", "--out", "{tmp}/o"],
    ],
    "lint": [["{tmp}/missing.html"]],
    "events": [["--message", "many"]],
    "reclassify": [["--since", "yesterday"], ["--campaign", "no-such-campaign"]],
    "serve": [
        ["--port", "70000"],
        ["--trust-proxy", "not-a-network"],
        ["--port", "0", "--smtps-port", "2465"],  # no certificate
        "--port 0 --smtp-port 2525 --smtp-tls-cert {tmp}/proposal.html "
        "--smtp-tls-key {tmp}/proposal.html".split(),  # not a PEM certificate
    ],
    "migrate": [["--bogus"]],
    "init": [["--bogus"]],
    "keys create": [[]],
    "keys list": [["--bogus"]],
    "keys revoke": [["no-such-key"]],
    "keys rotate-signing": [["--bogus"]],
    "keys signing": [["--bogus"]],
    "keys ip-hash": [["--bogus"]],
    "message new": [
        ["--to", "not-an-address"],
        ["--to", "ana@example.com", "--sent-at", "tomorrow"],
        ["--to", "ana@example.com", "--link", "javascript:alert(1)"],
        ["--to", "ana@example.com", "--campaign", "c" * 201],
    ],
    "message sent": [["999999"], ["1", "--at", "tomorrow"]],
    "message list": [["--status", "read"], ["--cursor", "zz"], ["--campaign", "no-such"]],
    "message show": [["999999"], ["abc"]],
    "campaign archive": [["no-such-campaign"]],
    "campaign unarchive": [["999999"]],
    "campaign delete": [["no-such-campaign", "--yes"], ["taken"]],  # no tty, no --yes
    "campaign new": [["taken"], ["  "], ["x" * 201]],
    "campaign list": [["--bogus"]],
    "networks list": [["--bogus"]],
    "networks load": [
        ["apple_egress", "{tmp}/missing.csv"],
        ["apple_egress", "{tmp}/proposal.html"],
    ],
    "networks update": [["--bogus"]],
    "networks remove": [["no-such-list"]],
    "mailboxes add": [["--email", "ana@example.com", "--imap", "ftp://x"]],
    "mailboxes list": [["--bogus"]],
    "mailboxes remove": [["nobody@example.com"]],
    "reminders list": [["--bogus"]],
    "reminders cancel": [["999999"]],
    "reminders default": [["ana@example.com", "--if", "sometimes", "--after", "3d"]],
    "recipient export": [
        ["--bogus", "ana@example.com"],
        ["not-an-address"],
        ["ana@example.com", "--out", "{tmp}/missing/ana.json"],
    ],
    "recipient erase": [["--bogus", "ana@example.com"], ["not-an-address"]],
    "recipient optout": [["--bogus", "ana@example.com"], ["not-an-address"]],
    "senders create": [["--email", "ana@example.com", "--upstream", "ftp://x"]],
    "senders list": [["--bogus"]],
    "senders remove": [["nobody@example.com"]],
    "senders set": [["nobody@example.com", "--track", "all"]],
    "senders password": [["nobody@example.com"]],
    "senders queue": [["--bogus"]],
    "users create": [["--email", "not-an-address", "--password", "a long passphrase"]],
    "users list": [["--bogus"]],
    "users password": [["--email", "nobody@example.com", "--password", "a long passphrase"]],
    "users delete": [["--email", "nobody@example.com"]],
}
CREATES = {"serve", "migrate", "init"}


def commands() -> list[str]:
    from mailbeacon.cli import app

    root = typer.main.get_command(app)
    ctx = click.Context(root)
    found: list[str] = []

    def walk(cmd: Any, path: list[str]) -> None:
        # Typer's groups are Click groups in spirit; the class may be Typer's own.
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            found.append(" ".join(path))

    walk(root, [])
    return found


def _run(args: list[str], db: str, tmp: Path) -> tuple[list[str], int, str]:
    full = [a.replace("{tmp}", str(tmp)) for a in args]
    env = {"COLUMNS": "80", "MAILBEACON_DATA_DIR": str(tmp / "data")}
    proc = cli(*full, db=db, env=env, check=False, timeout=120)
    return full, proc.returncode, proc.stdout + proc.stderr


def _check(results: list[tuple[list[str], int, str]]) -> None:
    bad = []
    for args, code, output in results:
        if code == 0 or "Traceback" in output or not output.strip():
            bad.append(f"mailbeacon {' '.join(args)} -> exit {code}:\n{output[-1500:]}")
        # The catch-all (cli.main) is for bugs: bad input has an answer of its own.
        elif "MAILBEACON_DEBUG=1" in output:
            bad.append(f"mailbeacon {' '.join(args)}: caught only by the catch-all:\n{output}")
        # One line, saying what to do: a usage error is Click's short block.
        elif "Usage:" not in output and len(output.strip().splitlines()) > 1:
            bad.append(f"mailbeacon {' '.join(args)}: more than one line:\n{output[-1500:]}")
    assert not bad, "\n\n".join(bad)


def test_every_command_has_bad_input_listed() -> None:
    assert sorted(commands()) == sorted(BAD)


@pytest.fixture
def workdir(sqlite_url: str, tmp_path: Path) -> Path:
    cli("campaign", "new", "taken", db=sqlite_url)
    cli("message", "new", "--to", "ana@example.com", db=sqlite_url)
    (tmp_path / "proposal.html").write_text("<p>Hello {{name}}</p>")
    (tmp_path / "people.csv").write_text(
        "email,name\nana@example.com,Ana\nnot-an-address,Bo\ncy@example.com,Cy\n"
    )
    return tmp_path


def test_every_command_with_bad_input_says_one_line(sqlite_url: str, workdir: Path) -> None:
    jobs = [[*name.split(), *args] for name, runs in BAD.items() for args in runs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda a: _run(a, sqlite_url, workdir), jobs))
    _check(results)
    said = {" ".join(a): out for a, _, out in results}
    csv_run = next(out for a, out in said.items() if "--recipients" in a)
    assert "people.csv row 3" in csv_run and "no email was written" in csv_run
    assert not (workdir / "o").exists() or not any((workdir / "o").iterdir())
    sent_at = next(out for a, out in said.items() if "new --to ana@example.com --sent-at" in a)
    assert "--sent-at" in sent_at and "ISO 8601" in sent_at
    demo_down = next(out for a, out in said.items() if "127.0.0.1:9" in a)
    assert "no mailbeacon server answers" in demo_down and "mailbeacon serve" in demo_down


def test_a_mistyped_database_is_an_error(tmp_path: Path) -> None:
    typo = tmp_path / "mailbeacn.db"
    jobs = [[*name.split(), *BAD[name][0]] for name in BAD if name not in CREATES]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda a: _run(a, f"sqlite:///{typo}", tmp_path), jobs))
    _check(results)
    assert not typo.exists()
    out = cli("campaign", "list", db=f"sqlite:///{typo}", check=False)
    assert out.returncode == 2 and str(typo) in out.stderr and "init" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    # A relative sqlite:/// path is named as the absolute file it would be.
    rel = cli("campaign", "list", db="sqlite:///mb-typo.db", check=False)
    assert str(Path.cwd() / "mb-typo.db") in rel.stderr

    for db in ("mysql://me:secret@db.example/mb", "postgresql://postgres@127.0.0.1:9/nope"):
        for command in (["campaign", "list"], ["serve", "--port", "0"], ["migrate"]):
            proc = cli(*command, db=db, check=False, timeout=60)
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "secret" not in proc.stderr

    # init, migrate and serve make it; then every command finds it.
    made = cli("init", db=f"sqlite:///{typo}")
    assert typo.exists() and "users create" in made.stdout
    assert cli("campaign", "list", db=f"sqlite:///{typo}").returncode == 0


def test_serve_takes_db_after_the_command(tmp_path: Path) -> None:
    db = tmp_path / "after.db"
    with socket.socket() as busy:  # serve opens its database, then fails to bind
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        proc = cli("serve", "--db", str(db), "--port", port, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    assert db.exists()  # serve opened (and so created) the database named after it
    help_text = cli("--help", env={"COLUMNS": "200"}).stdout
    assert "sqlite:////absolute/path.db" in help_text


def test_unexpected_errors_are_one_line_too(tmp_path: Path) -> None:
    # The last guard (cli.main): an error no command anticipated. A file
    # path whose parent is a file cannot be a database directory.
    (tmp_path / "file").write_text("x")
    bad = f"sqlite:///{tmp_path / 'file' / 'mb.db'}"
    proc = cli("migrate", db=bad, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    debug = cli("migrate", db=bad, check=False, env={"MAILBEACON_DEBUG": "1"})
    assert "Traceback" in debug.stderr


def test_a_busy_smtp_port_is_one_line_and_never_shared(tmp_path: Path) -> None:
    """The relay's port is bound with the HTTP one, before anything starts:
    one taken is a one-line error (it was a traceback from the app's
    startup), and the port serve's --port 0 got is never the relay's too."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'mb.db'}"
        proc = cli("serve", "--port", "0", "--smtp-port", str(port), db=db, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another --smtp-port or stop what uses it."
    ]


@pytest.mark.parametrize(
    ("toml", "env", "says"),
    [
        ("port = \n", {}, "is not valid TOML"),
        ('port = "abc"\n', {}, "setting port (MAILBEACON_PORT or port in the config file)"),
        ("", {"MAILBEACON_WORKERS": "two"}, "setting workers"),
        ("", {"MAILBEACON_READ_TIME_CAP": "lots"}, "must be a number, not 'lots'"),
        ("", {"MAILBEACON_PORT": "99999"}, "must be a port from 0 to 65535"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    tmp_path: Path, toml: str, env: dict[str, str], says: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if toml:
        (data / "mailbeacon.toml").write_text(toml)
    proc = cli("campaign", "list", env={"MAILBEACON_DATA_DIR": str(data), **env}, check=False)
    assert proc.returncode != 0 and says in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "MAILBEACON_DEBUG" not in proc.stderr
