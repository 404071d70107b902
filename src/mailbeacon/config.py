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


@dataclass(frozen=True)
class Settings:
    data_dir: str = ""
    db: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""
    trust_proxy: tuple[str, ...] = ()
    # "truncated": store a /24 (IPv4) or /48 (IPv6) network plus a keyed hash;
    # "full": store the address as seen. Classification always sees the full
    # address, in memory.
    store_ip: str = "truncated"
    # Pending hits the writer may hold before new ones are answered unrecorded.
    # 20k events are ~10 MB and about a second of peak load.
    queue_max: int = 20_000
    # How long a hit waits for its commit before it is answered "not recorded".
    # Mail clients give up on images after ~10-30 s; 5 s keeps pages snappy.
    commit_timeout: float = 5.0
    # SQLite: "full" fsyncs every group commit (survives power loss);
    # "normal" survives a process crash but not power loss (WAL semantics).
    sqlite_sync: str = "full"
    log_level: str = "info"

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
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind.startswith("tuple"):
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return tuple(raw)
    return str(raw)


def load(**overrides: Any) -> Settings:
    """Build settings from every layer; ``overrides`` are the CLI flags (None = unset)."""
    values: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)}
    data_dir = overrides.get("data_dir") or default_data_dir()
    cfg_path = Path(os.environ.get(ENV_PREFIX + "CONFIG") or Path(data_dir) / "mailbeacon.toml")
    if cfg_path.is_file():
        with cfg_path.open("rb") as fh:
            for key, raw in tomllib.load(fh).items():
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
    if settings.sqlite_sync not in ("full", "normal"):
        raise SystemExit("sqlite_sync must be 'full' or 'normal'")
    for cidr in settings.trust_proxy:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise SystemExit(f"--trust-proxy {cidr!r} is not a CIDR such as 10.0.0.0/8") from None
    return settings


__all__ = ["Settings", "load", "default_data_dir", "normalise_db_url", "field"]
