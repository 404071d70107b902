"""Dashboard users, their sessions, and the login rate limit (no web code here:
the CLI uses it too)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailbeacon.store.schema import login_failures, sessions, users

# scrypt at N=2^14, r=8, p=1 (RFC 7914's interactive setting, 16 MB): ~50 ms
# per login here, so a stolen database costs an attacker that per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_DAYS = 14
LOGIN_WINDOW = 300.0  # failures older than 5 minutes no longer count
LOGIN_MAX_FAILURES = 5  # per account and address
# Per source network (/24, /48) across all accounts: one network guessing
# many accounts. 20 leaves room for an office behind one NAT mistyping.
NETWORK_MAX_FAILURES = 20
MIN_PASSWORD = 8


class UserExists(ValueError):
    pass


@dataclass(frozen=True)
class Session:
    id: str  # the stored hash, not the cookie value
    user_id: int
    email: str
    csrf: str
    expires_at: float


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
            maxmem=64 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


@functools.cache
def dummy_hash() -> str:
    """Compared against when the login is unknown, so "no such user" takes as
    long as "wrong password" and logins do not reveal which addresses exist.
    Made at the first login, not at import: every CLI command and server
    start imported it, and one scrypt hash is ~50 ms."""
    return hash_password(secrets.token_hex(8))


def create_user(engine: Engine, email: str, password: str) -> int:
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError("email must be an address such as you@example.com")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    try:
        with engine.begin() as conn:
            return int(
                conn.execute(
                    insert(users)
                    .values(
                        email=email, password_hash=hash_password(password), created_at=time.time()
                    )
                    .returning(users.c.id)
                ).scalar_one()
            )
    except IntegrityError:
        raise UserExists(f"a user {email} already exists") from None


def set_password(engine: Engine, email: str, password: str) -> bool:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    with engine.begin() as conn:
        uid = conn.execute(select(users.c.id).where(users.c.email == email.lower())).scalar()
        if uid is None:
            return False
        conn.execute(
            update(users).where(users.c.id == uid).values(password_hash=hash_password(password))
        )
        # A new password ends every session: that is usually why it was changed.
        conn.execute(delete(sessions).where(sessions.c.user_id == uid))
    return True


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.id, users.c.email, users.c.created_at, users.c.last_login_at).order_by(
                users.c.id
            )
        ).all()
    return [dict(r._mapping) for r in rows]


def delete_user(engine: Engine, email: str) -> bool:
    with engine.begin() as conn:
        uid = conn.execute(select(users.c.id).where(users.c.email == email.lower())).scalar()
        if uid is None:
            return False
        conn.execute(delete(sessions).where(sessions.c.user_id == uid))
        conn.execute(delete(users).where(users.c.id == uid))
    return True


def has_users(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(users)).scalar())


def authenticate(engine: Engine, email: str, password: str) -> int | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.password_hash).where(users.c.email == email.strip().lower())
        ).first()
    if row is None:
        check_password(password, dummy_hash())
        return None
    return int(row.id) if check_password(password, row.password_hash) else None


# --- rate limit ---------------------------------------------------------------


def _key(email: str, ip: str) -> str:
    return f"{email.strip().lower()[:320]}|{ip[:64]}"


def source_network(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address is in: what one client can change at will."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _net_key(ip: str) -> str:
    return f"net|{source_network(ip)}"


def login_block(engine: Engine, email: str, ip: str, now: float | None = None) -> tuple[float, str]:
    """(seconds until another try is allowed, "account" or "network"); (0, "") when
    allowed now. Kept in the store, so the limits hold across every node."""
    now = now if now is not None else time.time()
    with engine.connect() as conn:
        for key, most, what in (
            (_key(email, ip), LOGIN_MAX_FAILURES, "account"),
            (_net_key(ip), NETWORK_MAX_FAILURES, "network"),
        ):
            times = (
                conn.execute(
                    select(login_failures.c.at)
                    .where(login_failures.c.key == key, login_failures.c.at > now - LOGIN_WINDOW)
                    .order_by(login_failures.c.at.desc())
                    .limit(most)
                )
                .scalars()
                .all()
            )
            if len(times) >= most:
                return max(0.0, min(times) + LOGIN_WINDOW - now), what
    return 0.0, ""


def login_blocked_for(engine: Engine, email: str, ip: str, now: float | None = None) -> float:
    """Seconds until another try is allowed (0: allowed now)."""
    return login_block(engine, email, ip, now)[0]


def record_failure(engine: Engine, email: str, ip: str) -> None:
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            insert(login_failures),
            [{"key": _key(email, ip), "at": now}, {"key": _net_key(ip), "at": now}],
        )
        # Old failures say nothing any more; keep the table small.
        conn.execute(delete(login_failures).where(login_failures.c.at < now - 2 * LOGIN_WINDOW))


def clear_failures(engine: Engine, email: str, ip: str) -> None:
    """After a success: this account and address start afresh. The network's
    count stays: one good password must not reset another account's guessing."""
    with engine.begin() as conn:
        conn.execute(delete(login_failures).where(login_failures.c.key == _key(email, ip)))


# --- sessions -----------------------------------------------------------------


def _sid(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, user_id: int) -> tuple[str, Session]:
    """A new session; returns (cookie value, session). The cookie is 256 random bits."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    sess = Session(_sid(token), user_id, "", secrets.token_urlsafe(32), now + SESSION_DAYS * 86400)
    with engine.begin() as conn:
        conn.execute(
            insert(sessions).values(
                id=sess.id,
                user_id=user_id,
                csrf=sess.csrf,
                created_at=now,
                expires_at=sess.expires_at,
            )
        )
        conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
    return token, sess


def get_session(engine: Engine, token: str) -> Session | None:
    if not token or len(token) > 100:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(sessions, users.c.email)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == _sid(token), sessions.c.expires_at > time.time())
        ).first()
    if row is None:
        return None
    return Session(row.id, row.user_id, row.email, row.csrf, row.expires_at)


def end_session(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.id == _sid(token)))
