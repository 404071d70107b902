"""Network lists in the store: saved as loaded, read back into one NetworkSet."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from mailbeacon.classify.networks import LoadResult, NetworkSet
from mailbeacon.store.schema import network_lists


def save_list(
    engine: Engine, name: str, fmt: str, content: str, *, source: str, scope: str | None = None
) -> LoadResult:
    """Parse ``content`` (refusing it if nothing parses) and store it under ``name``."""
    result = NetworkSet().load(name, content, fmt, scope)
    if result.loaded == 0:
        raise ValueError(
            f"no ranges found in {source} as {fmt!r} ({result.skipped} lines skipped); "
            "check --format"
        )
    with engine.begin() as conn:
        conn.execute(delete(network_lists).where(network_lists.c.name == name))
        conn.execute(
            insert(network_lists).values(
                name=name,
                scope=result.scope,
                format=fmt,
                source=source,
                loaded_at=time.time(),
                ranges=result.loaded,
                skipped=result.skipped,
                content=content,
            )
        )
    return result


def list_info(engine: Engine) -> list[dict[str, Any]]:
    cols = [c for c in network_lists.c if c.name != "content"]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).order_by(network_lists.c.name)).all()
    return [dict(r._mapping) for r in rows]


def version(engine: Engine) -> tuple[int, float]:
    """Changes whenever a list is loaded or removed: (count, newest load time)."""
    with engine.connect() as conn:
        n, newest = conn.execute(
            select(func.count(), func.coalesce(func.max(network_lists.c.loaded_at), 0.0))
        ).one()
    return int(n), float(newest)


def load_set(engine: Engine) -> NetworkSet:
    """The builtin lists, each replaced by a stored list of the same name; built."""
    ns = NetworkSet.builtin()
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                network_lists.c.name,
                network_lists.c.format,
                network_lists.c.scope,
                network_lists.c.content,
            )
        ).all()
    for r in rows:
        ns.load(r.name, r.content, r.format, r.scope)
    ns.build()
    return ns


def remove_list(engine: Engine, name: str) -> bool:
    with engine.begin() as conn:
        return bool(
            conn.execute(delete(network_lists).where(network_lists.c.name == name)).rowcount
        )
