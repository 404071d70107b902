"""Country of a reader's address, from an offline MaxMind-format database.

Any country .mmdb works: MaxMind GeoLite2-Country, DB-IP "IP to Country
Lite" (CC BY 4.0) or IPinfo's free country database. Point the ``geoip_db``
setting at the file; nothing is fetched at run time.

Only direct hits get a country: a proxy's or scanner's location is not the
reader's (Postmark: Gmail opens carry no geography), so the caller asks only
for ``human_direct`` opens and ``human`` clicks.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import maxminddb


class Geo:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"geoip_db {path} does not exist: download a country .mmdb (GeoLite2-Country, "
                "DB-IP lite) and point MAILBEACON_GEOIP_DB at it"
            )
        self._reader = maxminddb.open_database(str(path))
        self.country = lru_cache(maxsize=65536)(self._country)

    def _country(self, ip: str) -> str | None:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        # GeoLite2 / DB-IP: {"country": {"iso_code": "DE"}}; IPinfo: {"country_code": "DE"}
        country = record.get("country")
        code = country.get("iso_code") if isinstance(country, dict) else record.get("country_code")
        if isinstance(code, str) and len(code) == 2:
            return code.upper()
        return None

    def close(self) -> None:
        self._reader.close()
