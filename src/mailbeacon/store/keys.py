"""Signing keys (for tokens), API keys (for people), and small settings."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailbeacon.store.schema import api_keys, settings, signing_keys
from mailbeacon.tokens import Signer, new_secret

API_KEY_PREFIX = "mb_"


def get_setting(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(settings.c.value).where(settings.c.name == name)).scalar()


def set_setting(engine: Engine, name: str, value: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(settings).where(settings.c.name == name).values(value=value))
        if not done.rowcount:
            conn.execute(insert(settings).values(name=name, value=value))


def ensure_setting(engine: Engine, name: str, make: str) -> str:
    """Return the setting, storing ``make`` first if there is none (race-safe)."""
    current = get_setting(engine, name)
    if current is not None:
        return current
    try:
        with engine.begin() as conn:
            conn.execute(insert(settings).values(name=name, value=make))
    except IntegrityError:
        pass  # another node stored one first: use theirs
    value = get_setting(engine, name)
    assert value is not None
    return value


def delete_setting(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(settings).where(settings.c.name == name))


# --- signing keys -----------------------------------------------------------


def load_signer(engine: Engine) -> Signer | None:
    with engine.connect() as conn:
        rows = conn.execute(
            select(signing_keys.c.id, signing_keys.c.secret).where(
                signing_keys.c.retired_at.is_(None)
            )
        ).all()
    if not rows:
        return None
    return Signer({r.id: bytes.fromhex(r.secret) for r in rows})


def create_signing_key(engine: Engine) -> int:
    """Add a key that signs from now on; older keys keep verifying."""
    for _ in range(5):
        with engine.connect() as conn:
            top = conn.execute(select(signing_keys.c.id).order_by(signing_keys.c.id.desc())).first()
        kid = (top.id if top else 0) + 1
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(signing_keys).values(
                        id=kid, secret=new_secret().hex(), created_at=time.time()
                    )
                )
            return kid
        except IntegrityError:
            continue  # two nodes raced for the same id; take the next
    raise RuntimeError("could not allocate a signing key id")


def ensure_signer(engine: Engine) -> Signer:
    """The signer, creating the first key on first start."""
    signer = load_signer(engine)
    if signer is None:
        create_signing_key(engine)
        signer = load_signer(engine)
    assert signer is not None
    return signer


def retire_signing_key(engine: Engine, kid: int) -> bool:
    with engine.begin() as conn:
        done = conn.execute(
            update(signing_keys)
            .where(signing_keys.c.id == kid, signing_keys.c.retired_at.is_(None))
            .values(retired_at=time.time())
        )
    return bool(done.rowcount)


def list_signing_keys(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                signing_keys.c.id, signing_keys.c.created_at, signing_keys.c.retired_at
            ).order_by(signing_keys.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


# --- API keys ---------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def _hash(key: str) -> str:
    # API keys are 256 random bits, so a plain SHA-256 (no slow KDF) is
    # enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(engine: Engine, name: str) -> tuple[ApiKey, str]:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    with engine.begin() as conn:
        kid = conn.execute(
            insert(api_keys)
            .values(name=name, prefix=key[:8], key_hash=_hash(key), created_at=now)
            .returning(api_keys.c.id)
        ).scalar_one()
    return ApiKey(kid, name, key[:8], now, None, None), key


def check_api_key(engine: Engine, key: str) -> ApiKey | None:
    if not key.startswith(API_KEY_PREFIX) or len(key) > 100:
        return None
    with engine.begin() as conn:
        row = conn.execute(
            select(api_keys).where(
                api_keys.c.key_hash == _hash(key), api_keys.c.revoked_at.is_(None)
            )
        ).first()
        if row is None:
            return None
        now = time.time()
        # Write last_used_at at most once a minute: a busy API client must not
        # turn every read into a write.
        if row.last_used_at is None or now - row.last_used_at > 60:
            conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now))
    return ApiKey(row.id, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at)


def list_api_keys(engine: Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).all()
    return [
        ApiKey(r.id, r.name, r.prefix, r.created_at, r.last_used_at, r.revoked_at) for r in rows
    ]


def revoke_api_key(engine: Engine, ident: str) -> int:
    """Revoke by id or by name; returns how many keys were revoked."""
    cond = api_keys.c.id == int(ident) if ident.isdigit() else api_keys.c.name == ident
    with engine.begin() as conn:
        done = conn.execute(
            update(api_keys)
            .where(cond, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
    return int(done.rowcount)
