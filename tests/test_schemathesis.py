"""Property-based API check: every operation in /openapi.json, fed generated
input by schemathesis, never answers with a server error (5xx) and answers
as documented. In process against the ASGI app on SQLite; bounded to ~20 s."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from mailbeacon.config import Settings
from mailbeacon.messages import create_message
from mailbeacon.store import keys, make_engine, upgrade
from mailbeacon.store import messages as store
from mailbeacon.web.app import build

# Examples per operation: 24 operations x 25 examples run in ~15 s in process.
EXAMPLES = 25


def _app() -> tuple[Any, str, Path]:
    """The app on a fresh SQLite store with an API key and one campaign with a
    message (so generated ids sometimes hit something real). Built at import:
    schemathesis needs the schema to generate the tests."""
    tmp = Path(tempfile.mkdtemp(prefix="mb-schemathesis-"))
    s = Settings(db=f"sqlite:///{tmp / 'mb.db'}", data_dir=str(tmp))
    engine = make_engine(s.database_url)
    upgrade(engine)
    _, key = keys.create_api_key(engine, "schemathesis")
    with engine.begin() as conn:
        cid = store.create_campaign(conn, "c")["id"]
        create_message(
            conn,
            keys.ensure_signer(engine),
            "http://t",
            recipient="a@example.org",
            campaign_id=cid,
            variant="A",
            links=["https://example.com/"],
        )
    engine.dispose()
    return build(s), key, tmp


APP, KEY, TMP = _app()
# The live event stream (SSE) never ends by design, so a generated request
# would wait for its keep-alive timeout: ~12 s per example. It has its own tests.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/api/v1/stream")


# Found by this test in code outside the reports work, reported, not yet fixed:
# the operation still runs every time and passes outright once fixed.
@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(TMP, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same inputs every run: a failure here is reproducible
)
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])
