"""The evaluation corpus (tests/data/classify_eval/, described in its README):
loading and checking it. Replaying it is tests/classify_eval.py."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.classify_eval_score import CLICK_LABELS, OPEN_LABELS

DATA = Path(__file__).parent / "data" / "classify_eval"
SENDER_IP = "192.0.2.10"
# Readers' documentation addresses; 192.0.2.0/24 is the sender's.
_POOL = [f"198.51.100.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 255)]


class CorpusError(ValueError):
    pass


@dataclass
class Hit:
    case: str
    index: int
    msg: str
    t: float
    kind: str  # open | click | mark_sent
    expect: str = ""
    method: str = "GET"
    ip: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    link: int | str | None = None
    cookie: bool = False
    note: str = ""


@dataclass
class Case:
    id: str
    source: str
    messages: list[dict[str, Any]]  # {key, sent (offset or None), recipient}
    hits: list[Hit]
    links: int = 2
    honeypot: bool = False
    campaign: bool = False


def _load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _headers(agent: dict[str, Any], profiles: dict[str, Any], kind: str) -> dict[str, str]:
    """What the agent sends on an open or a click: its profile's headers, its own, its UA."""
    out: dict[str, str] = {}
    if profile := agent.get("profile"):
        out.update(profiles[profile].get("all", {}))
        out.update(profiles[profile].get(kind, {}))
    out.update(agent.get("headers", {}))
    out.update(agent.get(kind, {}))
    if agent["ua"] is not None:
        out["User-Agent"] = agent["ua"]
    return out


def load(data: Path = DATA) -> list[Case]:
    """Read and check the corpus: every reference resolves, every label fits its kind."""
    agents = _load_json(data / "agents.json")
    profiles = agents.pop("_profiles", {})
    addresses = _load_json(data / "addresses.json")
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted((data / "cases").glob("*.json")):
        for raw in _load_json(path):
            cases.append(_case(raw, len(cases), agents, profiles, addresses, seen))
    return cases


def _case(  # noqa: C901 - one check per corpus field, each with its own message
    raw: dict[str, Any],
    ordinal: int,
    agents: dict[str, Any],
    profiles: dict[str, Any],
    addresses: dict[str, Any],
    seen: set[str],
) -> Case:
    cid = raw["id"]
    if cid in seen:
        raise CorpusError(f"case {cid}: duplicate id")
    seen.add(cid)
    if not raw.get("source"):
        raise CorpusError(f"case {cid}: no source")
    messages = raw.get("messages") or [{"key": "m1", "sent": 0}]
    keys = {m["key"] for m in messages}
    residents: dict[str, str] = {}

    def address(ref: str) -> str:
        if ref == "sender":
            return SENDER_IP
        if m := re.fullmatch(r"res(6?):(\d+)", ref):
            if m.group(1):
                return f"2001:db8:{ordinal:x}::{int(m.group(2)):x}"
            if ref not in residents:
                residents[ref] = _POOL[(ordinal * 3 + len(residents)) % len(_POOL)]
            return residents[ref]
        if ref.startswith("@"):
            if ref[1:] not in addresses:
                raise CorpusError(f"case {cid}: unknown address {ref}")
            return str(addresses[ref[1:]]["ip"])
        ipaddress.ip_address(ref)  # a literal must at least be an address
        return ref

    hits: list[Hit] = []
    for i, h in enumerate(raw["hits"]):
        kind = h.get("kind", "open")
        msg = h.get("msg", messages[0]["key"])
        if msg not in keys:
            raise CorpusError(f"case {cid}#{i}: unknown message {msg}")
        if kind == "mark_sent":
            hits.append(Hit(cid, i, msg, float(h["t"]), kind))
            continue
        allowed = OPEN_LABELS if kind == "open" else CLICK_LABELS
        if h.get("expect") not in allowed:
            raise CorpusError(f"case {cid}#{i}: {h.get('expect')!r} is not a {kind} label")
        agent_key = h["ua"]
        if agent_key.startswith("@"):
            if agent_key[1:] not in agents:
                raise CorpusError(f"case {cid}#{i}: unknown agent {agent_key}")
            agent = agents[agent_key[1:]]
        else:
            agent = {"ua": agent_key}
        headers = _headers(agent, profiles, kind)
        headers.update(h.get("headers", {}))
        hits.append(
            Hit(
                case=cid,
                index=i,
                msg=msg,
                t=float(h["t"]),
                kind=kind,
                expect=h["expect"],
                method=h.get("method", "GET"),
                ip=address(h["ip"]),
                headers=headers,
                link=h.get("link", 1 if kind == "click" else None),
                cookie=bool(h.get("cookie")),
                note=h.get("note") or raw.get("note", ""),
            )
        )
    return Case(
        id=cid,
        source=raw["source"],
        messages=messages,
        hits=hits,
        links=int(raw.get("links", 2)),
        honeypot=bool(raw.get("honeypot")),
        campaign=bool(raw.get("campaign", len(messages) > 1)),
    )
