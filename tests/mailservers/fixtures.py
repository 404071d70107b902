"""The mail server fixtures (see the package docstring for what each offers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.mailservers import dovecot as dovecot_module
from tests.mailservers import postfix as postfix_module
from tests.mailservers import spamassassin as spamassassin_module
from tests.mailservers.common import (
    TLSFiles,
    make_root,
    remove_root,
    require_binaries,
    require_root,
)
from tests.mailservers.dovecot import Dovecot
from tests.mailservers.postfix import Postfix
from tests.mailservers.spamassassin import SpamAssassin

_restart_after_test: list[Dovecot | Postfix] = []
S = TypeVar("S", Dovecot, Postfix)

MAIL_FIXTURES = {"mail_root", "mail_tls", "dovecot", "postfix", "spamassassin", "spam_rules"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a mail server, so `-m "not mailservers"`
    leaves them out."""
    for item in items:
        if MAIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mailservers)


@pytest.fixture(scope="session")
def mail_root() -> Iterator[Path]:
    require_root()
    root = make_root()
    try:
        yield root
    finally:
        remove_root(root)


@pytest.fixture(scope="session")
def mail_tls(mail_root: Path) -> TLSFiles:
    return TLSFiles.generate(mail_root / "tls")


def _running(server: S) -> Iterator[S]:
    """Start `server` for the session, bring it back after tests that stop it."""
    server.start()
    _restart_after_test.append(server)
    try:
        yield server
    finally:
        _restart_after_test.remove(server)
        server.stop()


@pytest.fixture(scope="session")
def dovecot(mail_root: Path, mail_tls: TLSFiles) -> Iterator[Dovecot]:
    require_binaries(dovecot_module.BINARIES, dovecot_module.PACKAGES)
    yield from _running(Dovecot(mail_root, mail_tls))


@pytest.fixture(scope="session")
def postfix(mail_root: Path, mail_tls: TLSFiles, dovecot: Dovecot) -> Iterator[Postfix]:
    require_binaries(postfix_module.BINARIES, postfix_module.PACKAGES)
    yield from _running(Postfix(mail_root, mail_tls, dovecot))


@pytest.fixture(scope="session")
def spamassassin(mail_root: Path) -> Iterator[SpamAssassin]:
    require_binaries(spamassassin_module.BINARIES, spamassassin_module.PACKAGES)
    server = SpamAssassin(mail_root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spam_rules(spamassassin: SpamAssassin) -> Callable[[bytes], tuple[float, set[str]]]:
    """`spam_rules(raw) -> (score, {rule names})`."""
    return spamassassin.rules


@pytest.fixture(autouse=True)
def _mail_servers_up_again() -> Iterator[None]:
    """A test that stopped a shared server hands it on running."""
    yield
    for server in _restart_after_test:
        if not server.running:
            server.start()
