"""Settings, layered: defaults < config file < MAILBEACON_* environment < flags.

The config file is TOML, ``mailbeacon.toml`` in the data directory, or the
path in ``MAILBEACON_CONFIG``. Keys are the field names below.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

ENV_PREFIX = "MAILBEACON_"


def _s(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: str = _s(
        "",
        "Directory for the default SQLite file and mailbeacon.toml "
        "(default: the platform's user data directory).",
    )
    db: str = _s(
        "",
        "Database URL: sqlite:///path.db or postgresql://user@host/db "
        "(default: mailbeacon.db in the data directory).",
    )
    host: str = _s("127.0.0.1", "Address serve listens on.")
    port: int = _s(8000, "Port serve listens on.")
    base_url: str = _s(
        "",
        "Public URL of the tracking domain used in every generated link, "
        "e.g. https://t.example.com (default: http://host:port).",
    )
    trust_proxy: tuple[str, ...] = _s(
        (),
        "CIDRs of reverse proxies whose X-Forwarded-For is "
        "believed (comma-separated in the environment).",
    )
    # Classification always sees the full address, in memory.
    store_ip: str = _s(
        "truncated",
        "'truncated': store a /24 (IPv4) or /48 (IPv6) network plus "
        "a keyed hash; 'full': store the address as seen.",
    )
    ip_hash_key: str = _s(
        "",
        "Key of the IP hash as hex (`openssl rand -hex 32`), for several nodes sharing one "
        "database. Empty: the file ip_hash.key in the data directory, made on first start. "
        "Never stored in the database (docs/privacy.md).",
    )
    # 20k events are ~10 MB and about a second of peak load.
    queue_max: int = _s(
        20_000,
        "Hits the writer may hold before new ones are answered "
        "unrecorded (X-Mailbeacon-Recorded: no).",
    )
    # Mail clients give up on images after ~10-30 s; 5 s keeps pages snappy.
    commit_timeout: float = _s(
        5.0,
        "Seconds a hit waits for its commit before it is answered "
        "unrecorded (it is still written when the commit lands).",
    )
    sqlite_sync: str = _s(
        "full",
        "SQLite: 'full' fsyncs every group commit (survives power "
        "loss); 'normal' survives a crash of the process, not of the machine.",
    )
    geoip_db: str = _s(
        "",
        "Path to a country .mmdb (GeoLite2-Country, DB-IP lite) for the "
        "country of direct hits; none: no countries.",
    )
    classify: bool = _s(
        True,
        "Label hits as they arrive. false records them unlabelled (to "
        "measure what labelling costs); `mailbeacon reclassify` labels them later.",
    )
    log_level: str = _s("info", "debug, info, warning or error.")
    # A purge pass is ~20 ms per 5k events, so daily is cheap and at most a
    # day late.
    retention_days: int = _s(
        0,
        "Days raw events and webhook/email deliveries are kept; serve purges older "
        "ones daily and reports (which read rollups) stay the same. 0 keeps them forever.",
    )
    smtp_host: str = _s(
        "",
        "SMTP server for the email sent to notify_email on a first human open (empty: off; "
        "Settings -> Email notices in the dashboard overrides the smtp_* settings).",
    )
    smtp_port: int = _s(25, "SMTP server port.")
    smtp_security: str = _s(
        "none", "'none', 'starttls', or 'ssl' (implicit TLS, usually port 465)."
    )
    smtp_user: str = _s("", "SMTP login (empty: no AUTH).")
    smtp_password: str = _s("", "SMTP password.")
    smtp_from: str = _s("mailbeacon@localhost", "From address of notification emails.")
    notify_email: str = _s(
        "", "Where to email a notice on each message's first human open (needs smtp_host)."
    )
    # 2 s: a receiver that is restarting is usually back within a few seconds.
    webhook_backoff_base: float = _s(
        2.0,
        "Seconds before the first retry of a failed webhook or email; doubles "
        "each time up to an hour, with jitter.",
    )
    webhook_max_age: float = _s(
        26 * 3600.0, "Seconds a delivery is retried before it is marked failed (>= 24 h)."
    )
    # Off by default: a webhook URL is typed by anyone with an API key, and the
    # server would POST from inside your network (docs/webhooks.md).
    webhook_allow_internal: bool = _s(
        False,
        "Let webhooks reach loopback, private, link-local (cloud metadata), CGNAT and "
        "other non-public addresses. Only for receivers on your own network.",
    )
    check_on_start: bool = _s(
        True,
        "SQLite: serve and migrate run PRAGMA quick_check first and refuse a damaged file "
        "(reads the whole file: ~1 s per 100 MB). false skips it.",
    )
    metrics_token: str = _s(
        "",
        "Bearer token that lets /metrics be read from outside metrics_networks "
        "(empty: only metrics_networks may read them).",
    )
    metrics_networks: tuple[str, ...] = _s(
        ("127.0.0.0/8", "::1/128"),
        "CIDRs that read /metrics without a token (default: this machine only; comma-"
        "separated in the environment; metrics_networks = [] in the config file: a token "
        "is always needed).",
    )
    # --- limits of the HTTP server (docs/security.md) ---
    # A real client sends ~1 KB of headers and 8 KB covers long click tokens;
    # 64 KB leaves room for big cookies and still bounds what one request holds.
    max_header_bytes: int = _s(
        65536, "Bytes of request line and headers; more is answered 431 and the connection closed."
    )
    # Real clients send their headers in one packet; 10 s covers a very slow phone link.
    header_timeout: float = _s(
        10.0,
        "Seconds a client has to send a request's headers and the first 64 KB of its body "
        "(the app starts only then); slower ones are closed.",
    )
    keepalive_timeout: float = _s(5.0, "Seconds an idle kept-alive connection is kept open.")
    # A JSON API call is a few KB; 1 MB leaves room and bounds what an
    # unauthenticated client can make the server hold.
    max_body_bytes: int = _s(
        1_048_576,
        "Bytes of a request body (API, dashboard forms); more is answered 413 before it is read.",
    )
    max_instrument_body_bytes: int = _s(
        10_485_760,
        "Bytes of a body to POST /api/v1/instrument and /api/v1/lint (whole emails).",
    )
    body_timeout: float = _s(
        30.0,
        "Seconds a request body past its first 64 KB may pause between two pieces before it "
        "is answered 408.",
    )
    # ~9 KB of memory each (1,000 slow connections: +9 MB); serve raises the
    # open-files limit to fit them, so accept() never fails first.
    max_connections: int = _s(
        1000,
        "Open connections. At the cap the longest-waiting connection that is idle, still "
        "sending its request or not reading its answer is closed to make room; requests "
        "being answered are never cut.",
    )
    # --- read time (docs/read-time.md): a streamed pixel for direct readers ---
    read_time: bool = _s(
        True,
        "Measure how long a reader's own mail client keeps a message open, by answering its "
        "pixel with an animated GIF that streams a frame a second. false: every pixel is "
        "the plain 43-byte GIF and read time is never measured.",
    )
    # Litmus and others stop at ~30 s too: past it, the message was read.
    read_time_cap: float = _s(
        30.0,
        "Seconds a streamed pixel lasts at most; an open still showing then is recorded "
        "with this duration.",
    )
    # ~4 KB each (a socket, a task): 2,000 are ~8 MB, and serve raises the
    # open-files limit to fit them beside max_connections.
    read_time_streams: int = _s(
        2000,
        "Streamed pixels open at once on this node (per worker process), counted apart "
        "from max_connections; past it direct readers get the plain GIF, unmeasured.",
    )
    # Edges from Litmus Email Analytics (docs/read-time.md).
    read_glanced_below: float = _s(2.0, "An open shown fewer seconds than this is 'glanced'.")
    read_read_above: float = _s(
        8.0,
        "An open shown more seconds than this is 'read'; between the two edges, 'skimmed'.",
    )
    # serve --workers: processes sharing one listening socket (web/workers.py).
    workers: int = _s(
        1,
        "Server processes sharing the port (serve --workers). Each serves every path with "
        "its own writer; webhooks, the relay, mailbox watchers and retention run in the "
        "first only. 0 means one per CPU core. Rules that compare a hit with recent ones "
        "(bursts, every-link clicks) see each process's share, so 1 labels most exactly.",
    )
    # Replies (mailboxes/): IDLE brings new mail at once; the poll is the
    # fallback for servers without IDLE and a safety net for missed pushes.
    mailbox_poll_seconds: float = _s(
        60.0,
        "Seconds between two looks at a watched mailbox when IDLE brings no news "
        "(servers without IDLE are polled this often).",
    )
    mailbox_backfill_days: int = _s(
        30,
        "How far back the first look at a newly added mailbox searches for replies "
        "to tracked messages.",
    )
    imap_ca: str = _s("", "CA bundle that verifies IMAP servers (default: the system's).")
    timezone: str = _s(
        "UTC",
        "The sender's IANA time zone: reminders counted in business days skip the "
        "weekends there (a reminder or a sender default may name its own).",
    )
    secret_key: str = _s(
        "",
        "Fernet key that encrypts stored secrets (upstream SMTP passwords). Empty: "
        "secret.key in the data directory, created on first use. Every node needs the same key.",
    )
    # --- the SMTP relay (relay/); serve's --smtp-* flags set the relay_* listeners
    relay_host: str = _s("127.0.0.1", "Address the SMTP relay listens on (serve --smtp-host).")
    relay_port: int = _s(0, "SMTP submission port of the relay (serve --smtp-port; 0: off).")
    relay_smtps_port: int = _s(
        0, "Implicit-TLS SMTP port of the relay (serve --smtps-port; 0: off; needs a cert)."
    )
    relay_tls_cert: str = _s("", "PEM certificate for STARTTLS and smtps (serve --smtp-tls-cert).")
    relay_tls_key: str = _s("", "PEM private key for it (serve --smtp-tls-key).")
    relay_upstream_ca: str = _s(
        "", "PEM CA bundle to verify upstream servers with (empty: the system's)."
    )
    # 35 MB: what Gmail and most providers take; base64 makes a 25 MB attachment ~34 MB.
    relay_max_bytes: int = _s(
        35 * 1024 * 1024, "Largest message the relay accepts (bytes); larger ones get 552."
    )
    # 200 copies an hour is far above 1-to-1 mail and well under Gmail's
    # 500/day consumer limit per hour of sending; campaigns raise it per sender.
    relay_rate_per_hour: int = _s(
        200,
        "Copies (one per recipient) a sender may submit per hour unless `senders set "
        "--rate` says otherwise; more get 450 (the client tries again later). 0: no limit.",
    )
    relay_retry_base: float = _s(
        60.0, "Seconds before a queued copy is retried; doubles each time up to an hour."
    )
    relay_max_age: float = _s(
        2 * 86400.0,
        "Seconds a queued copy is retried before it fails and the sender gets a bounce report.",
    )
    # A live node renews its lease every third of it however long a send
    # takes (a 35 MB copy to a slow upstream: minutes), so this only bounds
    # how long the copies a killed node was sending wait for another pass.
    relay_lease: float = _s(
        90.0,
        "Seconds the queued copies a node is sending stay its own if it dies mid-send; "
        "then any node sends them (that copy may arrive twice).",
    )

    @property
    def database_url(self) -> str:
        if self.db:
            return normalise_db_url(self.db)
        return f"sqlite:///{Path(self.data_dir or default_data_dir()) / 'mailbeacon.db'}"

    @property
    def public_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.trust_proxy]


def default_data_dir() -> str:
    return os.environ.get(ENV_PREFIX + "DATA_DIR") or platformdirs.user_data_dir("mailbeacon")


def normalise_db_url(url: str) -> str:
    """Accept the URLs people type and give SQLAlchemy the driver we ship.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``
    (psycopg 3); a bare path becomes a SQLite file URL.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except (TypeError, ValueError):
            number = "a whole number" if kind == "int" else "a number"
            where = f"{ENV_PREFIX}{name.upper()} or {name} in the config file"
            raise SystemExit(f"setting {name} ({where}) must be {number}, not {raw!r}") from None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise SystemExit(f"setting {name} must be true or false, not {raw!r}")
        return text in ("1", "true", "yes", "on")
    if kind.startswith("tuple"):
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return tuple(raw)
    return str(raw)


# Port settings and how a user names them (the flag, else the setting): a
# bad one is refused with that name, not with the socket's OverflowError.
_PORTS = {
    "port": "--port (port)",
    "relay_port": "--smtp-port (relay_port)",
    "relay_smtps_port": "--smtps-port (relay_smtps_port)",
    "smtp_port": "smtp_port",
}


def load(**overrides: Any) -> Settings:  # noqa: C901 - one check per setting, each with its own message
    """Build settings from every layer; ``overrides`` are the CLI flags (None = unset)."""
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)}
    data_dir = overrides.get("data_dir") or default_data_dir()
    cfg_path = Path(os.environ.get(ENV_PREFIX + "CONFIG") or Path(data_dir) / "mailbeacon.toml")
    if cfg_path.is_file():
        with cfg_path.open("rb") as fh:
            try:
                table = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                bad = f"{cfg_path} is not valid TOML ({exc}); fix or remove it"
                raise SystemExit(bad) from None
            for key, raw in table.items():
                key = key.replace("-", "_")
                if key not in names:
                    raise SystemExit(f"{cfg_path}: unknown setting {key!r}; known: {sorted(names)}")
                values[key] = _coerce(key, raw)
    for name in names:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and env != "":
            values[name] = _coerce(name, env)
    for name, raw in overrides.items():
        if raw is not None and raw != () and raw != []:
            values[name] = _coerce(name, raw)
    values.setdefault("data_dir", data_dir)
    settings = replace(Settings(), **values)
    if settings.store_ip not in ("truncated", "full"):
        raise SystemExit("store_ip must be 'truncated' or 'full'")
    if settings.smtp_security not in ("none", "starttls", "ssl"):
        raise SystemExit("smtp_security must be 'none', 'starttls' or 'ssl'")
    if settings.sqlite_sync not in ("full", "normal"):
        raise SystemExit("sqlite_sync must be 'full' or 'normal'")
    for name, what in _PORTS.items():
        value = getattr(settings, name)
        if not 0 <= value <= 65535:
            raise SystemExit(f"{what} must be a port from 0 to 65535, not {value}")
    if not 0 < settings.read_glanced_below <= settings.read_read_above:
        raise SystemExit("read_glanced_below must be > 0 and at most read_read_above")
    if settings.read_time_cap < 0 or settings.read_time_streams < 0:
        raise SystemExit("read_time_cap and read_time_streams must not be negative")
    for cidr in settings.metrics_networks:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            bad = f"metrics_networks {cidr!r} is not a CIDR such as 10.0.0.0/8"
            raise SystemExit(bad) from None
    for cidr in settings.trust_proxy:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise SystemExit(f"--trust-proxy {cidr!r} is not a CIDR such as 10.0.0.0/8") from None
    # Read buckets are computed where an event is shown (API, exports,
    # webhooks, CLI), all of which load settings through here first.
    from mailbeacon import readtime

    readtime.configure(readtime.Thresholds(settings.read_glanced_below, settings.read_read_above))
    return settings


__all__ = ["Settings", "load", "default_data_dir", "normalise_db_url", "field"]
