"""UA attribution and UA signatures over tests/data/classify/useragents.tsv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mailbeacon.classify import ua_facts
from mailbeacon.classify.useragent import attribute

DATA = Path(__file__).resolve().parent / "data" / "classify" / "useragents.tsv"


def _rows() -> list[list[str]]:
    with DATA.open(newline="") as fh:
        lines = (ln for ln in fh if not ln.startswith("#"))
        return [r for r in csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _none(s: str) -> str | None:
    return s or None


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r[0][:60])
def test_user_agent(row: list[str]) -> None:
    ua, kind, client, os, device, source = row
    f = ua_facts(ua)
    assert f.kind.value == kind, source
    assert (f.client, f.os, f.device) == (_none(client), _none(os), _none(device)), source


def test_attribution_is_cached_and_blank_is_unknown() -> None:
    attribute.cache_clear()
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1"
    a = attribute(ua)
    assert a is attribute(ua) and a.client == "Thunderbird"
    assert attribute("   ").client is None


def test_cubot_phone_is_not_a_bot() -> None:
    ua = (
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36"
    )
    assert ua_facts(ua).kind.value == "browser"
