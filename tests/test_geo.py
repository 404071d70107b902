"""Countries from an offline .mmdb, for direct hits only."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from mailbeacon.geo import Geo
from tests.helpers import start_server

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"


def make_mmdb(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["203.0.113.0/24"]), {"country_code": "jp"})  # IPinfo shape
    writer.insert_network(IPSet(["66.249.64.0/19"]), {"country": {"iso_code": "US"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "FR"}})
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("198.51.100.7", "DE"),
        ("203.0.113.200", "JP"),
        ("2001:db8::1", "FR"),
        ("192.0.2.1", None),
        ("not-an-ip", None),
        ("", None),
    ],
)
def test_country_lookup(tmp_path: Path, ip: str, country: str | None) -> None:
    geo = Geo(make_mmdb(tmp_path / "c.mmdb"))
    assert geo.country(ip) == country


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MAILBEACON_GEOIP_DB"):
        Geo(tmp_path / "nope.mmdb")


@pytest.mark.process
def test_only_direct_hits_get_a_country(sqlite_url: str, tmp_path: Path) -> None:
    mmdb = make_mmdb(tmp_path / "c.mmdb")
    srv = start_server(
        sqlite_url,
        tmp_path,
        extra_args=["--trust-proxy", "127.0.0.0/8"],
        env={"MAILBEACON_GEOIP_DB": str(mmdb)},
    )
    try:
        msg = srv.message(sent_at=time.time() - 3600)
        for ip, ua in (("198.51.100.7", THUNDERBIRD), ("66.249.84.222", GMAIL_PROXY)):
            r = httpx.get(msg["open_url"], headers={"User-Agent": ua, "X-Forwarded-For": ip})
            assert r.headers["x-mailbeacon-recorded"] == "yes"
        direct, proxied = srv.events(msg["id"])
        assert (direct["label"], direct["country"]) == ("human_direct", "DE")
        # Google's proxy is in the US; the reader may not be.
        assert (proxied["label"], proxied["country"]) == ("human_via_proxy", None)
    finally:
        srv.stop()
