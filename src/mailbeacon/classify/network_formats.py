"""Parsers for the providers' official range files: each returns the CIDR
strings it found and how many entries it had to skip.

Small test copies of each format live in tests/data/networks/; nothing here
downloads (``mailbeacon networks update`` fetches, cli/networks.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FORMATS", "parse"]

Parsed = tuple[list[str], int]


def _lines(fields: Iterable[str]) -> Parsed:
    out = []
    for f in fields:
        f = f.strip()
        if f and not f.startswith("#"):
            out.append(f)
    return out, 0


def _csv(text: str) -> Parsed:
    # First column is the CIDR: Apple's `CIDR,country,region,city,` and
    # DigitalOcean's geo feed `CIDR,country,region,city,zip` (RFC 8805).
    return _lines(line.split(",", 1)[0] for line in text.splitlines())


def _cidr(text: str) -> Parsed:
    return _lines(line.split("#", 1)[0] for line in text.splitlines())


def _json(text: str) -> Any:
    return json.loads(text)


def _strings(values: Iterable[Any], out: list[str]) -> int:
    bad = 0
    for v in values:
        if isinstance(v, str) and v:
            out.append(v)
        else:
            bad += 1
    return bad


def _google(text: str) -> Parsed:
    # special-crawlers.json and cloud.json:
    # {"creationTime": ..., "prefixes": [{"ipv4Prefix": ...} | {"ipv6Prefix": ...}]}
    doc = _json(text)
    prefixes = doc.get("prefixes", []) if isinstance(doc, dict) else []
    vals = [
        (p.get("ipv4Prefix") or p.get("ipv6Prefix")) if isinstance(p, dict) else None
        for p in prefixes
    ]
    out: list[str] = []
    return out, _strings(vals, out)


def _aws(text: str) -> Parsed:
    # ip-ranges.json: {"prefixes": [{"ip_prefix", "region", "service"}],
    # "ipv6_prefixes": [{"ipv6_prefix", ...}]} (docs.aws.amazon.com aws-ip-ranges).
    # Every service is kept: a scanner on EC2 and one behind API Gateway are
    # both machines, and "AMAZON" is the superset the others are carved from.
    doc = _json(text)
    if not isinstance(doc, dict):
        return [], 0
    vals = [p.get("ip_prefix") for p in doc.get("prefixes", []) if isinstance(p, dict)]
    vals += [p.get("ipv6_prefix") for p in doc.get("ipv6_prefixes", []) if isinstance(p, dict)]
    out: list[str] = []
    return out, _strings(vals, out)


def _azure(text: str) -> Parsed:
    # ServiceTags_Public_*.json: {"values": [{"name": "AzureCloud.eastus",
    # "properties": {"addressPrefixes": [...]}}]}. Only the AzureCloud tags:
    # Microsoft documents AzureCloud as all datacenter public addresses; the
    # other tags are subsets (or first-party services inside it).
    doc = _json(text)
    out: list[str] = []
    bad = 0
    for v in doc.get("values", []) if isinstance(doc, dict) else []:
        if not isinstance(v, dict) or not str(v.get("name", "")).startswith("AzureCloud"):
            continue
        props = v.get("properties")
        if isinstance(props, dict):
            bad += _strings(props.get("addressPrefixes", []), out)
    return out, bad


def _oracle(text: str) -> Parsed:
    # public_ip_ranges.json: {"regions": [{"region", "cidrs": [{"cidr", "tags"}]}]}
    doc = _json(text)
    out: list[str] = []
    bad = 0
    for region in doc.get("regions", []) if isinstance(doc, dict) else []:
        if isinstance(region, dict):
            bad += _strings(
                (c.get("cidr") if isinstance(c, dict) else None for c in region.get("cidrs", [])),
                out,
            )
    return out, bad


def _microsoft(text: str, url_part: str) -> Parsed:
    """Exchange ranges from the Microsoft 365 endpoints web service JSON.

    Entries are kept by URL, not by ID: IDs are renumbered between versions.
    ``protection.outlook.com`` (IDs 9/10 in 2022) is Exchange Online
    Protection; ``outlook.office.com`` (ID 1) is Outlook on the web.
    """
    doc: Any = _json(text)
    out: list[str] = []
    bad = 0
    for entry in doc if isinstance(doc, list) else []:
        if not isinstance(entry, dict) or entry.get("serviceArea") != "Exchange":
            continue
        if not any(url_part in u for u in entry.get("urls", []) if isinstance(u, str)):
            continue
        bad += _strings(entry.get("ips", []), out)
    return out, bad


_PARSERS: dict[str, Callable[[str], Parsed]] = {
    "cidr": _cidr,
    "csv": _csv,
    "apple_csv": _csv,
    "google_json": _google,
    "ms_json": lambda t: _microsoft(t, "protection.outlook.com"),
    "ms_owa_json": lambda t: _microsoft(t, "outlook.office.com"),
    "aws_json": _aws,
    "azure_json": _azure,
    "oracle_json": _oracle,
}
FORMATS = tuple(_PARSERS)


def parse(text: str, fmt: str) -> Parsed:
    """(CIDR strings, count of entries skipped before CIDR parsing)."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return parser(text)
