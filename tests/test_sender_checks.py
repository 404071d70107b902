"""Changing a sender from the dashboard's forms (Settings → Senders → a
sender): the upstream's fields and the extra From addresses are checked as
`mailbeacon senders set` checks its URL and `--also`; a refusal is one line
and saves nothing. Table-driven; the store ones on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailbeacon import config
from mailbeacon.relay import accounts
from mailbeacon.relay.accounts import Upstream, upstream_from
from mailbeacon.store import make_engine, upgrade
from mailbeacon.store import senders as store


@pytest.mark.parametrize(
    ("fields", "want"),
    [
        (("smtp.example.com", "587", "starttls", "ana", "pw"),
         Upstream("smtp.example.com", 587, "starttls", "ana", "pw")),
        ((" Mail.Example.COM ", " 465 ", "implicit", "", ""),
         Upstream("mail.example.com", 465, "implicit")),
        (("127.0.0.1", "2525", "none", "a@b.c", ""), Upstream("127.0.0.1", 2525, "none", "a@b.c")),
        (("[::1]", "25", "none", "", "p w:@/"), Upstream("::1", 25, "none", None, "p w:@/")),
        (("ex_ample.münchen.de", "1", "starttls", "", ""),
         Upstream("ex_ample.münchen.de", 1, "starttls")),
    ],
)  # fmt: skip
def test_good_upstream_fields(fields: tuple[str, str, str, str, str], want: Upstream) -> None:
    got = upstream_from(*fields)
    assert got == want
    # What is saved (the URL without its password) reads back the same.
    assert accounts.parse_upstream(got.url()) == Upstream(want.host, want.port, want.tls, want.user)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (("", "587", "starttls", "", ""), "not a host name"),
        (("smtp.example.com\r\nRCPT TO:<x@y>", "587", "starttls", "", ""), "not a host name"),
        (("smtp.example\ncom", "587", "starttls", "", ""), "not a host name"),
        (("bad host", "587", "starttls", "", ""), "not a host name"),
        (("a,b", "587", "starttls", "", ""), "not a host name"),
        (("user@host", "587", "starttls", "", ""), "not a host name"),
        (("host:25", "587", "starttls", "", ""), "not a host name"),
        (("host/x", "587", "starttls", "", ""), "not a host name"),
        (("a..b", "587", "starttls", "", ""), "not a host name"),
        (("h" * 254, "587", "starttls", "", ""), "not a host name"),
        (("smtp.example.com", "0", "starttls", "", ""), "from 1 to 65535"),
        (("smtp.example.com", "65536", "starttls", "", ""), "from 1 to 65535"),
        (("smtp.example.com", "-1", "starttls", "", ""), "from 1 to 65535"),
        (("smtp.example.com", "", "starttls", "", ""), "from 1 to 65535"),
        (("smtp.example.com", "5 87", "starttls", "", ""), "from 1 to 65535"),
        (("smtp.example.com", "587", "ssl", "", ""), "security must be one of"),
        (("smtp.example.com", "587", "none", "ana\r\nx", ""), "the login is one line"),
        (("smtp.example.com", "587", "none", "ana", "pw\n"), "the password is one line"),
    ],
)  # fmt: skip
def test_bad_upstream_fields_are_one_line(
    fields: tuple[str, str, str, str, str], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as exc:
        upstream_from(*fields)
    assert "\n" not in str(exc.value) and "\r" not in str(exc.value)


@pytest.mark.parametrize(
    "url",
    ["smtp://bad host:25", "smtp://h\r\nx:25", "smtp://h:0", "smtp://a,b:25", "smtp://h\t:25"],
)
def test_the_cli_url_is_checked_the_same_way(url: str) -> None:
    with pytest.raises(ValueError, match="smtp://"):
        accounts.parse_upstream(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(config.normalise_db_url(db_url))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    return config.load(data_dir=str(tmp_path))


ANA, BEA = "ana@example.com", "bea@example.com"


@pytest.mark.parametrize(
    ("also", "says"),
    [
        (["sales@example.com", "not an address"], "not an email address"),
        (["sales@example.com", "x\r\n@example.com"], "not an email address"),
        (["sales@example.com", "x@localhost"], "not an email address"),
        (["sales@example.com", BEA], f"already an address of the sender {BEA}"),
        (["sales@example.com", "BEA-SALES@example.com"], f"of the sender {BEA}"),
    ],
)
def test_an_also_address_refused_saves_nothing(
    engine: Engine, settings: config.Settings, also: list[str], says: str
) -> None:
    accounts.create(engine, settings, ANA, "smtp://h:25")
    accounts.create(engine, settings, BEA, "smtp://h:25")
    accounts.change(engine, settings, BEA, also=["bea-sales@example.com"])
    with pytest.raises(ValueError, match=says):
        accounts.change(engine, settings, ANA, also=also)
    got = store.by_email(engine, ANA)
    assert got is not None and got.also == ()


def test_an_also_address_has_one_owner(engine: Engine, settings: config.Settings) -> None:
    accounts.create(engine, settings, ANA, "smtp://h:25")
    # Its own address or one it has already: kept once, no refusal.
    assert accounts.change(engine, settings, ANA, also=[ANA, "a2@example.com", "A2@example.com"])
    got = store.by_email(engine, ANA)
    assert got is not None and got.addresses == (ANA, "a2@example.com")
    assert store.using(engine, "a2@example.com") == got
    assert store.using(engine, "2@example.com") is None  # LIKE narrows, the match is exact
    with pytest.raises(ValueError, match=f"already an address of the sender {ANA}"):
        accounts.create(engine, settings, "a2@example.com", "smtp://h:25")
    assert store.by_email(engine, "a2@example.com") is None
    # Once ana lets it go, another sender may take it.
    accounts.change(engine, settings, ANA, also=[])
    accounts.create(engine, settings, BEA, "smtp://h:25")
    assert accounts.change(engine, settings, BEA, also=["a2@example.com"])


def test_an_empty_password_keeps_the_saved_one(engine: Engine, settings: config.Settings) -> None:
    accounts.create(engine, settings, ANA, "smtp://ana:first-secret@h:25")

    def upstream() -> Upstream:
        found = store.by_email(engine, ANA)
        assert found is not None
        return accounts.upstream_of(found, settings)

    change = accounts.change_upstream
    assert change(engine, settings, ANA, upstream_from("h2", "2525", "none", "ana", ""))
    assert upstream() == Upstream("h2", 2525, "none", "ana", "first-secret")
    assert change(engine, settings, ANA, upstream_from("h2", "2525", "none", "ana", "second"))
    assert upstream() == Upstream("h2", 2525, "none", "ana", "second")
    assert change(engine, settings, ANA, upstream_from("h3", "465", "implicit", "", ""))
    assert upstream() == Upstream("h3", 465, "implicit")  # no login: no password kept
    anywhere = upstream_from("h", "1", "none", "", "")
    assert not change(engine, settings, "nobody@example.com", anywhere)


def test_two_admins_giving_one_address_at_once_leave_it_one_owner(
    engine: Engine, settings: config.Settings
) -> None:
    """The check and the write are one step (store.senders.addresses_locked):
    of two senders given the same new address at the same moment, one gets
    it and the other is refused, round after round."""
    accounts.create(engine, settings, ANA, "smtp://h:25")
    accounts.create(engine, settings, BEA, "smtp://h:25")
    refused = 0
    for n in range(25):
        shared = f"shared{n}@example.com"
        start = threading.Barrier(2)

        def give(login: str, shared: str = shared, start: threading.Barrier = start) -> bool:
            mine = store.by_email(engine, login)
            assert mine is not None
            start.wait(timeout=10)
            try:
                return accounts.change(engine, settings, login, also=[*mine.also, shared])
            except ValueError:
                return False

        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(give, [ANA, BEA]))
        refused += got.count(False)
        owners = [s.email for s in store.all_senders(engine) if shared in s.also]
        assert len(owners) == 1 and got.count(True) == 1, (n, owners, got)
    assert refused == 25
