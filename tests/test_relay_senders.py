"""`mailbeacon senders ...`: SMTP logins for the relay and their upstream servers."""

from __future__ import annotations

import pytest

from mailbeacon.relay.accounts import Upstream, parse_upstream
from tests.helpers import cli, rows


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("smtp://mail.example.com", Upstream("mail.example.com", 587, "starttls")),
        ("smtp://u:p@h:2525?tls=none", Upstream("h", 2525, "none", "u", "p")),
        ("smtps://a%40b.c:p%3A%40w@h", Upstream("h", 465, "implicit", "a@b.c", "p:@w")),
        ("SMTP://u@H:25", Upstream("h", 25, "starttls", "u", None)),
    ],
)
def test_upstream_urls(url: str, want: Upstream) -> None:
    assert parse_upstream(url) == want
    assert parse_upstream(want.url()) == Upstream(want.host, want.port, want.tls, want.user)


@pytest.mark.parametrize(
    "url",
    ["http://h", "smtp://", "smtps://h?tls=none", "smtp://h?tls=maybe", "smtp://h:99999", "h:25"],
)
def test_bad_upstream_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="smtp://"):
        parse_upstream(url)


def test_create_list_set_remove(db_url: str) -> None:
    made = cli(
        "senders", "create", "--email", "Ana@Example.com",
        "--upstream", "smtp://ana:upstream-secret-1@mail.example.com:2525", db=db_url,
    )  # fmt: skip
    password = made.stdout.strip().splitlines()[-1].split()[-1]
    assert len(password) >= 20
    listed = cli("senders", "list", db=db_url).stdout
    assert "ana@example.com" in listed and "smtp://ana@mail.example.com:2525" in listed
    assert "opens" in listed and "upstream-secret-1" not in listed and password not in listed
    (stored,) = rows(db_url, "SELECT upstream, upstream_secret, password_hash FROM senders")
    assert "upstream-secret-1" not in " ".join(stored) and password not in stored[2]

    cli("senders", "set", "ana@example.com", "--track", "clicks",
        "--also", "Sales@Example.com", "--also", "ana@other.example", db=db_url)  # fmt: skip
    assert rows(db_url, "SELECT track, also FROM senders") == [
        ("clicks", "sales@example.com,ana@other.example")
    ]
    cli("senders", "set", "ana@example.com", "--also", "", db=db_url)
    assert rows(db_url, "SELECT also FROM senders") == [("",)]

    again = cli("senders", "create", "--email", "ana@example.com", "--upstream", "smtp://h",
                db=db_url, check=False)  # fmt: skip
    assert again.returncode == 1 and "already exists" in again.stderr

    cli("senders", "remove", "ana@example.com", db=db_url)
    assert rows(db_url, "SELECT count(*) FROM senders") == [(0,)]
    gone = cli("senders", "remove", "ana@example.com", db=db_url, check=False)
    assert gone.returncode == 1 and "no sender" in gone.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "--email", "nobody", "--upstream", "smtp://h"], "not an email address"),
        (["create", "--email", "a@b.co", "--upstream", "ftp://h"], "smtp://"),
        (["create", "--email", "a@b.co", "--upstream", "smtp://bad host:25"], "not a host name"),
        (["create", "--email", "a@b.co", "--upstream", "smtp://h\r\n.example.com"], "control"),
        (["create", "--email", "a@b.co", "--upstream", "smtp://h", "--track", "x"], "track"),
        (["set", "nobody@b.co", "--track", "all"], "no sender"),
    ],
)
def test_mistakes_are_one_line(sqlite_url: str, args: list[str], says: str) -> None:
    got = cli("senders", *args, db=sqlite_url, check=False)
    assert got.returncode == 1 and says in got.stderr
    assert len(got.stderr.strip().splitlines()) == 1 and "Traceback" not in got.stderr


def test_password_reset_prints_a_new_one(sqlite_url: str) -> None:
    first = cli("senders", "create", "--email", "a@b.co", "--upstream", "smtp://h",
                db=sqlite_url).stdout.split()[-1]  # fmt: skip
    second = cli("senders", "password", "a@b.co", db=sqlite_url).stdout.split()[-1]
    assert first != second and len(second) >= 20


def test_the_queue_speaks_the_dashboards_words(sqlite_url: str) -> None:
    """`senders queue --status` takes the states the dashboard shows (and the
    raw pending/failed), and the table words each copy the same way."""
    from mailbeacon.config import normalise_db_url
    from mailbeacon.store import make_engine, outgoing
    from mailbeacon.store import senders as store

    cli("senders", "create", "--email", "ana@example.com", "--upstream", "smtp://h",
        db=sqlite_url)  # fmt: skip
    engine = make_engine(normalise_db_url(sqlite_url))
    sender = store.by_email(engine, "ana@example.com")
    assert sender is not None
    outgoing.record(
        engine, sender_id=sender.id, kind="mail", mail_from="ana@example.com", mail_options=(),
        track="opens", message_id_header="<a@b>", headers=b"", data=b"x", next_at=0.0,
        outcomes=[
            outgoing.Outcome("queued@example.org", None, "pending"),
            outgoing.Outcome("sent@example.org", None, "sent", at=1.0, code=250),
            outgoing.Outcome("bounced@example.org", None, "failed", code=550, error="no user"),
            outgoing.Outcome("late@example.org", None, "failed", code=451, error="later"),
        ],
    )  # fmt: skip
    engine.dispose()

    def listed(status: str) -> str:
        return cli("senders", "queue", "--status", status, db=sqlite_url).stdout

    assert "bounced@example.org" in listed("bounced") and "late@" not in listed("bounced")
    late = listed("given-up")
    assert "late@example.org" in late and "given up" in late and "bounced@" not in late
    assert "queued@example.org" in listed("Queued") and "sent@" not in listed("queued")
    failed = listed("failed")
    assert "bounced@example.org" in failed and "late@example.org" in failed
    assert "queued@" not in failed
    everything = cli("senders", "queue", db=sqlite_url).stdout
    assert all(w in everything for w in ("queued", "sent", "bounced", "given up"))
    bad = cli("senders", "queue", "--status", "lost", db=sqlite_url, check=False)
    assert bad.returncode == 2 and "queued, retrying, sent" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
