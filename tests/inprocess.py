"""The app in this process, for tests that only talk to its HTTP API, its
tracking paths and the store: what a `serve` process answers, without the
8-15 s a test spent starting one (docs/testing.md, the fast layer).

It is built as `serve` builds it (the node prepared, the public base URL
saved, `serving()` with its proxy watch) and run by Starlette's TestClient,
lifespan included, so the writer, relabelling and refreshes run as they do
in a server. Requests come from 127.0.0.1, like a test's requests to a local
server: that is "the sender", and with --trust-proxy 127.0.0.0/8 hits may
carry the reader's address in X-Forwarded-For (tests/traffic.py sends them
here while it runs).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests import traffic
from tests.helpers import Running

BASE_URL = "https://t.example.com"


@dataclass
class InProcess(Running):
    db: str
    key: str
    http: httpx.Client  # a TestClient: every request goes to the app
    url: str = BASE_URL

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **(kw.pop("headers", None) or {})}
        return self.http.request(method, path, headers=headers, **kw)

    def session(self) -> httpx.Client:
        # The TestClient's transport: requests go to the same app, on the
        # event loop its lifespan runs on, with a cookie jar of their own.
        transport = self.http._transport  # no public way to share it
        return httpx.Client(transport=transport, base_url=self.url, follow_redirects=False)


@contextmanager
def in_process(
    db: str, networks: dict[str, Path] | None = None, **flags: Any
) -> Iterator[InProcess]:
    """The app on ``db`` with ``flags`` as `serve` flags (e.g. trust_proxy),
    an API key, and ``networks`` loaded first (name -> file, as `networks load`)."""
    from fastapi.testclient import TestClient

    from mailbeacon import config
    from mailbeacon.classify.networks import OFFICIAL_LISTS
    from mailbeacon.cli.base import open_store
    from mailbeacon.node import Node
    from mailbeacon.store import keys
    from mailbeacon.store import networks as network_store
    from mailbeacon.web.app import serving

    settings = config.load(db=db, base_url=BASE_URL, **flags)
    engine = open_store(settings, create=True)
    for name, path in (networks or {}).items():
        fmt = OFFICIAL_LISTS[name][1] if name in OFFICIAL_LISTS else "cidr"
        network_store.save_list(engine, name, fmt, path.read_text("utf-8-sig"), source=str(path))
    node = Node(settings, engine)
    node.prepare()
    keys.set_setting(engine, "base_url", settings.public_base_url)
    _, key = keys.create_api_key(engine, "test")
    client = TestClient(
        serving(settings, node),
        base_url=BASE_URL,
        client=("127.0.0.1", 50000),
        follow_redirects=False,  # as httpx and a real server: a click's 302 is the answer
    )
    try:
        with client:
            traffic.IN_PROCESS[BASE_URL] = client
            yield InProcess(db=db, key=key, http=client)
    finally:
        traffic.IN_PROCESS.pop(BASE_URL, None)
        engine.dispose()
        # The app's startup freezes what it allocated (gc.freeze, for a
        # server's lifetime); a test's app is gone after the test.
        gc.unfreeze()
