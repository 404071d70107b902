"""The servers a run can choose (``--servers``), by key, and the default set."""

from __future__ import annotations

from .mbserver import mailbeacon_server
from .servers import Server, floor_server, nginx_server, peer_server
from .stores import PG_URL


def all_servers(endpoint: str) -> list[Server]:
    return [
        nginx_server(endpoint),
        mailbeacon_server("mb", "mailbeacon serve (uvicorn+uvloop+httptools), SQLite FULL"),
        # The same with labelling off: the difference is what classification costs.
        mailbeacon_server(
            "mb-nolabel",
            "mailbeacon serve, SQLite FULL, labelling off (MAILBEACON_CLASSIFY=false)",
            extra_env={"MAILBEACON_CLASSIFY": "false"},
        ),
        mailbeacon_server(
            "mb-normal",
            "mailbeacon serve (uvicorn), SQLite synchronous=NORMAL",
            sync="normal",
            note="survives a process crash, not a power loss",
        ),
        mailbeacon_server(
            "mb-pg",
            "mailbeacon serve (uvicorn), PostgreSQL",
            db=PG_URL,
            note="the PostgreSQL backend is not pinned: it uses core 1 too",
        ),
        mailbeacon_server(
            "granian", "mailbeacon on granian (asgi, uvloop), SQLite FULL", asgi="granian"
        ),
        mailbeacon_server(
            "granian-pg",
            "mailbeacon on granian (asgi, uvloop), PostgreSQL",
            asgi="granian",
            db=PG_URL,
            note="the PostgreSQL backend is not pinned: it uses core 1 too",
        ),
        # What the Python HTTP layer costs when it records nothing (bench/peers/floor.py).
        floor_server(
            "floor-asgi", "HTTP floor: a no-op ASGI app on uvicorn (uvloop+httptools)", "asgi"
        ),
        floor_server("floor-raw", "HTTP floor: a raw asyncio protocol with httptools", "raw"),
        peer_server(
            "peer", "pytracking on Flask/gunicorn -w {workers} (sync), SQLite commit per hit"
        ),
        peer_server(
            "peer-w2", "pytracking on Flask/gunicorn -w 2 (sync), SQLite commit per hit", 2
        ),
    ]


DEFAULT_SERVERS = [
    "nginx", "mb", "mb-normal", "mb-pg", "granian", "floor-asgi", "floor-raw", "peer",
]  # fmt: skip
