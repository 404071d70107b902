"""Shared fixtures: every store-touching test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server on 127.0.0.1:5432 (the test command starts it).
Each test gets a throwaway database copied from a template that was migrated
once per run, which takes ~0.1 s instead of a migration per test.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx._transports.default as httpx_transports
import pytest
import time_machine

from tests.helpers import PG_ADMIN_URL, Server, cli, pg_admin, start_server
from tests.inprocess import InProcess, in_process
from tests.traffic import DATA

RUN_ID = uuid.uuid4().hex[:8]
# Private Postfix, Dovecot and spamd for the relay and reply tests; the
# relay tests' own fixtures (stub upstream, relay process); the dashboard's
# browser tests' Chromium.
pytest_plugins = ["tests.mailservers.fixtures", "tests.relay_helpers", "tests.dashboard_helpers"]


# httpx builds a new SSL context for every Client and every top-level
# httpx.get(), loading certifi's CA bundle each time: ~60-80 ms, and the tests
# make thousands (every Server.api call). The default verifying context holds
# no per-client state, so one serves them all; any other choice (verify=False,
# a test CA) still gets its own.
_create_ssl_context = httpx_transports.create_ssl_context


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return _create_ssl_context()


def _ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    if verify is True and cert is None and trust_env:
        return _default_ssl_context()
    return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)


httpx_transports.create_ssl_context = _ssl_context


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-pg", action="store_true", help="skip the PostgreSQL variants")


# Two layers (docs/testing.md). `-m "not process"` is the fast one: the app in
# this process (the `api` fixture), the store, one-shot CLI commands. A
# `process` test starts a real server, relay, mail server or browser, or
# listens on a socket, for what only a real process shows (sockets, SIGKILL,
# two nodes, timing). Marked here: every test using a fixture named below,
# one depending on it, or one whose code calls a PROCESS_STARTERS function;
# a test that starts one in its own code carries `@pytest.mark.process` (or
# its module `pytestmark = pytest.mark.process`).
PROCESS_FIXTURES = {"server", "tracked", "stub", "browser"}
PROCESS_STARTERS = {"start_server", "start_relay", "start_stub", "Popen"}
PROCESS_MARKERS = {"browser", "eval", "mailservers"}


def _starts_a_process(fixturedefs: Sequence[Any]) -> bool:
    return any(
        PROCESS_STARTERS & set(getattr(getattr(d.func, "__code__", None), "co_names", ()))
        for d in fixturedefs
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Imported here: at the top it would be imported before pytest loads it
    # as a plugin (pytest_plugins), too early for its asserts to be rewritten.
    from tests.mailservers.fixtures import MAIL_FIXTURES

    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs if info is not None else {}
        if (
            (PROCESS_FIXTURES | MAIL_FIXTURES) & set(getattr(item, "fixturenames", ()))
            or PROCESS_MARKERS & {m.name for m in item.iter_markers()}
            or any(_starts_a_process(d) for d in defs.values())
        ):
            item.add_marker(pytest.mark.process)


@pytest.fixture(scope="session")
def pg_template(request: pytest.FixtureRequest, worker_id: str) -> Iterator[str]:
    if request.config.getoption("--no-pg"):
        pytest.skip("PostgreSQL variants disabled with --no-pg")
    from mailbeacon.store import make_engine, upgrade

    name = f"mb_tpl_{RUN_ID}_{worker_id}"
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    upgrade(engine)
    engine.dispose()
    yield name
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL of each kind (PostgreSQL's migrated; SQLite's an
    empty file, as after `mailbeacon init`: commands refuse a missing one)."""
    if request.param == "sqlite":
        (tmp_path / "mb.db").touch()
        yield f"sqlite:///{tmp_path / 'mb.db'}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"mb_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    (tmp_path / "mb.db").touch()  # exists, as after `mailbeacon init`
    return f"sqlite:///{tmp_path / 'mb.db'}"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real `mailbeacon serve` process on a free port, with an API key."""
    srv = start_server(db_url, tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may read or write the user's real data directory."""
    monkeypatch.setenv("MAILBEACON_DATA_DIR", str(tmp_path / "data"))
    # Read time streams a direct reader's pixel for up to 30 s, and a test
    # client that reads whole bodies (httpx, TestClient) would wait for all
    # of it: off unless a test turns it on (tests/test_read_time.py does).
    monkeypatch.setenv("MAILBEACON_READ_TIME", "false")
    for var in ("MAILBEACON_DB", "MAILBEACON_BASE_URL", "MAILBEACON_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def worker_id() -> str:  # overridden by pytest-xdist when it runs
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


@pytest.fixture
def tracked(db_url: str, tmp_path: Path) -> Iterator[Server]:
    cli("networks", "load", "apple_egress", str(DATA / "egress-ip-ranges.csv"), db=db_url)
    srv = start_server(db_url, tmp_path, extra_args=["--trust-proxy", "127.0.0.0/8"])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server_app(db_url: str) -> Iterator[InProcess]:
    """`server` in this process (tests/inprocess.py): its API and tracking
    paths, without starting a server."""
    with in_process(db_url) as app:
        yield app


@pytest.fixture
def tracked_app(db_url: str) -> Iterator[InProcess]:
    """`tracked` in this process (tests/inprocess.py): the same flags and
    network list, the same API and hits, without starting a server."""
    networks = {"apple_egress": DATA / "egress-ip-ranges.csv"}
    with in_process(db_url, networks=networks, trust_proxy=("127.0.0.0/8",)) as app:
        yield app


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """This process's wall clock, ticking from now, that the test moves
    (`clock.shift(1.5)`) instead of sleeping: the app in process (`api`,
    `tracked_app`) stamps hits with it; a real server has its own clock.
    time.monotonic is left alone (deadlines, asyncio)."""
    with time_machine.travel(time.time(), tick=True) as traveller:
        yield traveller


@pytest.fixture
def api(db_url: str) -> Iterator[Any]:
    """The app in process (Starlette's TestClient runs it with its lifespan),
    tracking domain https://t.example.com, authorised with a fresh API key."""
    from fastapi.testclient import TestClient

    from mailbeacon import config
    from mailbeacon.store import keys, make_engine, upgrade
    from mailbeacon.web.app import build

    settings = config.load(db=db_url, base_url="https://t.example.com")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    _, secret = keys.create_api_key(engine, "test")
    with TestClient(build(settings)) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        client.app_state_engine = engine  # type: ignore[attr-defined]
        yield client
    engine.dispose()
