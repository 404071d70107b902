"""Table-driven tests of the classifier over tests/data/classify/ (sources in each row)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailbeacon.classify import Context, Verdict, classify, retro_relabel, ua_facts
from mailbeacon.model import HUMAN_OPEN_LABELS, ClickLabel, Event, Kind, MessageInfo, OpenLabel
from tests import classify_corpus as corpus

CASES = corpus.load_cases()
NETWORKS = corpus.corpus_networks()
GIP = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
OPEN_LABELS = {x.value for x in OpenLabel}
CLICK_LABELS = {x.value for x in ClickLabel}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=c.source, strict=True))
        if c.limit
        else pytest.param(c, id=c.id)
        for c in CASES
    ],
)
def test_corpus(case: Any) -> None:
    ev, ctx = corpus.build(case, NETWORKS)
    v = classify(ev, ctx)
    assert v.label in (OPEN_LABELS if case.kind == Kind.OPEN else CLICK_LABELS)
    assert case.reason in v.reasons, (v, case.source)
    assert v.label == case.truth, (v, case.source)
    assert 0.0 <= v.confidence <= 1.0


def test_corpus_covers_every_label() -> None:
    seen = {(c.kind, c.truth) for c in CASES if not c.limit}
    assert {(Kind.OPEN, x) for x in OPEN_LABELS} <= seen
    assert {(Kind.CLICK, x) for x in CLICK_LABELS} <= seen


def _event(
    kind: Kind, t: float, ip: str, ua: str = CHROME, link: int | None = None, **kw: Any
) -> Event:
    return Event(
        message_id=1,
        kind=kind,
        at=corpus.SENT + t,
        method="GET",
        ip=ip,
        user_agent=ua,
        link_position=link,
        ip_hash="h-" + ip,
        **kw,
    )


SCENARIOS = json.loads((corpus.DATA / "classify/scenarios.json").read_text())["scenarios"]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(sc: dict[str, Any]) -> None:
    m = sc["message"]
    msg = MessageInfo(
        1,
        7,
        m.get("sent_at", corpus.SENT),
        corpus.SENT,
        link_count=m["link_count"],
        honeypot_position=m["honeypot_position"],
    )
    done: list[Event] = []
    for i, spec in enumerate(sc["events"]):
        kind = Kind(spec.get("kind", "click"))
        ev = _event(kind, spec["t"], spec["ip"], spec.get("ua", CHROME), spec.get("link"), id=i)
        v = classify(ev, Context(message=msg, prior=list(done), networks=NETWORKS))
        assert v.label == spec["live"], (i, v, sc["source"])
        if "live_reason" in spec:
            assert spec["live_reason"] in v.reasons, (i, v)
        done.append(v.apply(ev))
    changes = {eid: (label, reasons) for eid, label, reasons in retro_relabel(done, msg)}
    expected = {int(k): tuple(v) for k, v in sc["retro"].items()}
    assert set(changes) == set(expected), (changes, sc["source"])
    for eid, (label, reason) in expected.items():
        assert changes[eid][0] == label
        assert reason in changes[eid][1]
        assert set(done[eid].reasons) <= set(changes[eid][1])  # old reasons kept


def test_retro_is_idempotent_and_skips_self() -> None:
    msg = MessageInfo(1, 7, corpus.SENT, corpus.SENT, link_count=3, honeypot_position=3)
    a = _event(Kind.CLICK, 600, "198.51.100.1", link=1, id=1, label="self", reasons=["self:cookie"])
    b = _event(Kind.CLICK, 603, "198.51.100.2", link=3, id=2, label="scanner", reasons=["honeypot"])
    c = _event(Kind.CLICK, 595, "198.51.100.3", link=2, id=3, label="human", reasons=["ua:browser"])
    out = retro_relabel([a, b, c], msg)
    assert out == [(3, "scanner", ["honeypot:window", "ua:browser"])]
    c.label, c.reasons = out[0][1], out[0][2]
    assert retro_relabel([a, b, c], msg) == []
    assert retro_relabel([], None) == []


def test_gmail_readers_behind_one_proxy_address_are_all_human() -> None:
    # Project decision: the campaign-ip rule never fires on opens via a proxy.
    clicked = {"h-66.249.84.222": {2, 3, 4, 5, 6}}
    for mid in range(1, 6):
        msg = MessageInfo(mid, 7, corpus.SENT, corpus.SENT)
        ev = _event(Kind.OPEN, 900 + mid, "66.249.84.222", GIP)
        v = classify(ev, Context(message=msg, networks=NETWORKS, campaign_recent_clicks=clicked))
        assert v.label in HUMAN_OPEN_LABELS and v.label == "human_via_proxy"


def test_campaign_rule_ignores_this_message_and_needs_three_recipients() -> None:
    # SendGrid 4416801410459: the same IP clicking for many recipients; with
    # this one, three recipients make "many".
    msg = MessageInfo(1, 7, corpus.SENT, corpus.SENT)
    ev = _event(Kind.CLICK, 900, "198.51.100.9")
    for clicked, label in (({1, 2}, "human"), ({1, 2, 3}, "scanner")):
        ctx = Context(message=msg, campaign_recent_clicks={ev.ip_hash: clicked})
        assert classify(ev, ctx).label == label


def test_defaults_work_without_any_context() -> None:
    v = classify(_event(Kind.OPEN, 0, "198.51.100.1"))
    assert v.label == "human_direct" and v.client == "Chrome" and v.os == "Windows"
    v = classify(_event(Kind.CLICK, 0, "40.107.1.1"), Context())
    assert v.label == "scanner" and "ip:microsoft_eop" in v.reasons
    assert isinstance(Context().networks.lookup("1.1.1.1"), tuple)


def test_apple_bare_mozilla_without_list_is_lower_confidence() -> None:
    with_list = classify(
        _event(Kind.OPEN, 60, "172.224.226.5", "Mozilla/5.0"), Context(networks=NETWORKS)
    )
    without = classify(_event(Kind.OPEN, 60, "172.224.226.5", "Mozilla/5.0"), Context())
    assert with_list.label == without.label == "machine_prefetch"
    assert with_list.confidence > without.confidence
    assert "ip:apple_egress" in with_list.reasons and "ip:apple_egress" not in without.reasons


def test_apple_egress_never_condemns_a_click_and_cloud_never_an_open() -> None:
    ctx = Context(networks=NETWORKS)
    safari = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    assert classify(_event(Kind.CLICK, 5, "172.224.226.9", safari), ctx).label == "human"
    assert classify(_event(Kind.OPEN, 3600, "40.125.1.1"), ctx).label == "human_direct"


def test_verdict_apply_copies_attribution() -> None:
    ev = _event(Kind.OPEN, 10, "198.51.100.1")
    v = Verdict("human_direct", ["ua:browser"], 0.6, "Chrome", "Windows", "desktop")
    assert v.apply(ev) is ev and ev.label == "human_direct" and ev.device == "desktop"
    assert ev.reasons == ["ua:browser"] and ev.reasons is not v.reasons


def test_ua_facts_are_cached() -> None:
    ua_facts.cache_clear()
    ua_facts(CHROME)
    ua_facts(CHROME)
    assert ua_facts.cache_info().hits == 1
