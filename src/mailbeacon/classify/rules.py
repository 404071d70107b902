"""The ordered rules of docs/classification.md sources §8: first decisive match wins.

Opens follow O1..O13, clicks C1..C13, with the project decisions in
docs/classification.md. The primary reason comes first in ``reasons``;
corroborating signals (timing, network lists, history) follow, for audit.

Networks weigh by kind (classify/network_lists.py): a gateway or crawler
network decides alone; a cloud network only together with timing or a
missing open, so a late, single, human-shaped click from a cloud desktop
stays a person's (issue 12, item 5).
"""

from __future__ import annotations

from mailbeacon.classify.context import Context, Verdict
from mailbeacon.classify.network_lists import NetKind, kind_of
from mailbeacon.classify.networks import APPLE_EGRESS, Match
from mailbeacon.classify.reasons import Reason, ip, method
from mailbeacon.classify.self_rules import self_verdict
from mailbeacon.classify.signatures import UAFacts, UAKind, ua_facts
from mailbeacon.classify.sources import same_source
from mailbeacon.classify.verdicts import (
    BOT,
    BOT_OTHER,
    H_DIRECT,
    H_PROXY,
    HUMAN,
    HUMAN_OPENS,
    PREFETCH,
    SCANNER,
    SEC_SCANNER,
    verdict,
)
from mailbeacon.model import Event, Kind, MessageInfo

__all__ = ["classify"]

# Timing, seconds after send (section 8): <= 2 s is strong (Mautic's
# timeFromEmailThreshold), <= 60 s weak (GMass "< 1 min", Hunto presets).
STRONG_S, WEAK_S = 2.0, 60.0
# How long after delivery a cloud-hosted scanner still clicks: Defender
# detonates URLs "asynchronously in the background" (safe-links-about.md);
# observed cloud clicks came seconds to 4 minutes after delivery (gophish
# #2646, mautic #9400, #2446). Ten minutes covers that with margin; a cloud
# click inside it counts as a scanner only if nobody opened the mail first.
DELIVERY_S = 600.0
BURST_S, BURST_WEAK_S = 1.0, 3.0  # Marketo proximity: 0 s default, 0-3 s configurable
HONEYPOT_WINDOW_S = 10.0  # mautic #9798: discard clicks within +-10 s of a honeypot hit
EVERY_LINK_WINDOW_S = 60.0  # CustomerMinds rule 1 gives no window; ours, see docs
DEVICE_MISMATCH_S = 30.0  # resend-node #901: scanner came ~12 s after the human click
# Same ip_hash clicked >= 2 other recipients' messages in the last hour: with
# this one that is 3 recipients, the SendGrid symptom (support 4416801410459).
CAMPAIGN_OTHER_MESSAGES = 2

_NOT_A_CLICKER = frozenset(
    {
        UAKind.EMPTY,
        UAKind.GMAIL_PREFETCH,
        UAKind.GMAIL_PROXY,
        UAKind.MAILBOX_PROXY,
        UAKind.BARE_MOZILLA,
        UAKind.BOT,
    }
)
_DECISIVE = frozenset({NetKind.GATEWAY, NetKind.CRAWLER})

_DEFAULT_CTX: Context | None = None


class Nets:
    """What the matched network lists say, sorted by kind."""

    __slots__ = ("apple", "decisive", "cloud", "webmail")

    def __init__(self, matches: tuple[Match, ...], for_click: bool) -> None:
        self.apple = False
        self.decisive: list[str] = []  # gateways, crawlers in scope
        self.cloud: list[str] = []
        self.webmail: list[str] = []  # mailbox image proxies (opens)
        for name, scope in matches:
            if name == APPLE_EGRESS:  # MPP for opens, Private Relay browsing for clicks
                self.apple = True
                continue
            if scope == "opens" and for_click or scope == "clicks" and not for_click:
                continue
            kind = kind_of(name, scope)
            code = ip(name)
            if kind in _DECISIVE:
                self.decisive.append(code)
            elif kind is NetKind.CLOUD:
                self.cloud.append(code)
            elif kind is NetKind.MAILBOX_PROXY:
                self.webmail.append(code)


_NO_NETS = Nets((), False)


def classify(event: Event, ctx: Context | None = None) -> Verdict:
    """Label one hit. Pure: reads only ``event`` and ``ctx``."""
    if ctx is None:
        global _DEFAULT_CTX
        ctx = _DEFAULT_CTX = _DEFAULT_CTX or Context()
    f = ua_facts(event.user_agent)
    matches = ctx.networks.lookup(event.ip) if event.ip else ()
    msg = ctx.message
    since: float | None = None
    if msg is not None:
        # With no sent_at, created_at is a lower bound of the send time, so
        # "within N s of created_at" still implies "within N s of sending".
        since = event.at - (msg.sent_at if msg.sent_at is not None else msg.created_at)
    timing = _timing_code(since)
    click = event.kind == Kind.CLICK
    nets = Nets(matches, click) if matches else _NO_NETS
    # Sender signals first; skipped cheaply when none can apply (most hits).
    if (
        ctx.sender_cookie
        or ctx.sender_ips
        or (msg is not None and (msg.sent_at is None or (since is not None and since < 0)))
    ):
        v = self_verdict(event, ctx, f, msg, since, bool(nets.decisive))
        if v is not None:
            return v
    if click:
        return _click(event, ctx, f, nets, msg, since, timing)
    return _open(event, f, nets, since, timing)


def _timing_code(since: float | None) -> Reason | None:
    if since is None or since > DELIVERY_S:
        return None
    if since < 0:
        return Reason.TIMING_BEFORE_SEND
    if since <= STRONG_S:
        return Reason.TIMING_2S
    return Reason.TIMING_60S if since <= WEAK_S else Reason.TIMING_DELIVERY


def _human_opened(ctx: Context) -> bool:
    for e in ctx.prior:
        if e.kind is Kind.OPEN and e.label in HUMAN_OPENS:
            return True
    return False


def _open(  # noqa: C901 - the open rules in precedence order; one reads them as a table
    event: Event, f: UAFacts, nets: Nets, since: float | None, timing: str | None
) -> Verdict:
    k = f.kind
    if nets.decisive and k not in (UAKind.GMAIL_PROXY, UAKind.MAILBOX_PROXY):
        # O8 by vendor network, before the method: a HEAD from Exchange Online
        # Protection at delivery is the gateway itself (civicrm-core #35328).
        first = nets.decisive[0]
        extra = (f.code, timing, *nets.decisive[1:])
        if event.method != "GET":
            extra = (method(event.method), *extra)
        return verdict(SEC_SCANNER, 0.85, f, [first], extra)
    if event.method != "GET":  # O2: mail clients GET images
        return verdict(BOT_OTHER, 0.9, f, [method(event.method)])
    if "mutated" in event.token_flags:  # gophish #973: Safe Links probes altered URLs
        return verdict(SEC_SCANNER, 0.9, f, [Reason.TOKEN_MUTATED], (timing,))
    if k is UAKind.EMPTY:  # O3
        return verdict(BOT_OTHER, f.confidence, f, [f.code], (timing,))
    if k is UAKind.GMAIL_PREFETCH:  # O4
        return verdict(PREFETCH, f.confidence, f, [f.code], (timing,))
    if k is UAKind.BARE_MOZILLA:
        if nets.apple:  # O5: ClickDimensions' rule
            return verdict(PREFETCH, 0.95, f, [f.code, ip(APPLE_EGRESS)], (timing,))
        if nets.cloud:  # Apple's relay egresses from its list and CDN partners, not clouds
            return verdict(BOT_OTHER, 0.6, f, [f.code, *nets.cloud], (timing,))
        # O5b: stale list or a CDN hiding the address
        return verdict(PREFETCH, f.confidence, f, [f.code], (timing,))
    if k is UAKind.GMAIL_PROXY or k is UAKind.MAILBOX_PROXY:
        # O6/O7: fetched when a person opens; timing never condemns these
        # (a reader with Gmail open can read within seconds).
        return verdict(H_PROXY, f.confidence, f, [f.code])
    if k is UAKind.SCANNER or k is UAKind.FORGED:  # O8, by UA
        return verdict(SEC_SCANNER, f.confidence, f, [f.code], (timing,))
    if k is UAKind.BOT or k is UAKind.UNKNOWN and nets.cloud:  # O9, O13
        return verdict(BOT_OTHER, f.confidence, f, [f.code], (timing, *nets.cloud))
    early = since is not None and since <= WEAK_S
    browserish = k in (UAKind.BARE_WEBKIT, UAKind.BROWSER)
    if nets.webmail and browserish:
        if early:  # warmbly #569: Microsoft fetched the pixel at delivery
            return verdict(SEC_SCANNER, 0.6, f, [nets.webmail[0], timing], (f.code,))
        # warmbly PR #412, #564: Outlook on the web loads images for the reader
        return verdict(H_PROXY, 0.6, f, [Reason.NET_WEBMAIL_PROXY, nets.webmail[0]], (f.code,))
    early_cloud = bool(nets.cloud) and early
    if early_cloud and (browserish or since is not None and since <= STRONG_S):
        # O10-O12: a browser or bare WebKit from a cloud network at delivery
        return verdict(SEC_SCANNER, 0.6, f, [nets.cloud[0], timing], (f.code, *nets.cloud[1:]))
    if k is UAKind.BARE_WEBKIT:
        return verdict(H_DIRECT, 0.7 if timing is None else 0.5, f, [f.code], (timing,))
    if k is UAKind.MAIL_CLIENT or k is UAKind.BROWSER:  # O11, O12
        return verdict(H_DIRECT, f.confidence, f, [f.code], (timing, *nets.cloud))
    return verdict(H_DIRECT, 0.3, f, [f.code], (timing,))  # O13


def _click(
    event: Event,
    ctx: Context,
    f: UAFacts,
    nets: Nets,
    msg: MessageInfo | None,
    since: float | None,
    timing: str | None,
) -> Verdict:
    cloud = nets.cloud
    if event.method == "HEAD":  # C1: mail-tracker #200, CiviCRM #35328, Dub #2310
        return verdict(SCANNER, 0.95, f, [Reason.METHOD_HEAD], (timing, *nets.decisive, *cloud))
    honeypot = msg.honeypot_position if msg is not None else None
    if honeypot is not None and event.link_position == honeypot:  # C2
        return verdict(SCANNER, 0.95, f, [Reason.HONEYPOT], (f.code, timing, *nets.decisive))
    if "mutated" in event.token_flags:  # C9, checked early: it is decisive
        return verdict(SCANNER, 0.9, f, [Reason.TOKEN_MUTATED], (f.code, timing))
    k = f.kind
    if k is UAKind.SCANNER or k is UAKind.FORGED:  # C3
        return verdict(SCANNER, f.confidence, f, [f.code], (timing, *nets.decisive, *cloud))
    if k in _NOT_A_CLICKER:  # C4: libraries, previewers; image proxies never click
        return verdict(BOT, f.confidence, f, [f.code], (timing, *nets.decisive, *cloud))
    if nets.decisive:  # C5, vendor scanner networks
        first = nets.decisive[0]
        return verdict(SCANNER, 0.9, f, [first], (f.code, timing, *nets.decisive[1:], *cloud))
    v = _history(event, ctx, f, msg, honeypot, timing)  # C2 window, C6, C11
    if v is not None:
        return v
    if since is not None and 0 <= since <= STRONG_S:  # C7
        return verdict(SCANNER, 0.8, f, [Reason.TIMING_2S], (f.code, *cloud))
    opened = bool(cloud) and _human_opened(ctx)  # only a cloud click needs it
    if cloud and since is not None and 0 <= since <= DELIVERY_S and not opened:
        # C5 + C7/C10: a cloud network at delivery time, nobody opened yet
        conf = 0.8 if since <= WEAK_S else 0.7
        return verdict(
            SCANNER, conf, f, [cloud[0], timing], (Reason.CLICK_NO_PRIOR_OPEN, f.code, *cloud[1:])
        )
    others = ctx.campaign_recent_clicks.get(event.ip_hash) if event.ip_hash else None
    if others and len(others - {event.message_id}) >= CAMPAIGN_OTHER_MESSAGES:  # C8
        return verdict(SCANNER, 0.7, f, [Reason.CAMPAIGN_MANY_RECIPIENTS], (f.code, timing, *cloud))
    if nets.apple and f.safari:  # C12: Private Relay browsing, not MPP
        return verdict(HUMAN, 0.75, f, [ip(APPLE_EGRESS), Reason.UA_SAFARI], (timing,))
    conf = 0.3 if k is UAKind.UNKNOWN else 0.5 if cloud else 0.6  # C13
    after = Reason.AFTER_HUMAN_OPEN if opened else None
    return verdict(HUMAN, conf, f, [f.code], (timing, *cloud, after))


def _history(  # noqa: C901 - one branch per earlier-hit pattern, in precedence order
    event: Event,
    ctx: Context,
    f: UAFacts,
    msg: MessageInfo | None,
    honeypot: int | None,
    timing: str | None,
) -> Verdict | None:
    """One pass over this message's earlier clicks: honeypot window, bursts,
    every link clicked, device mismatch. ``prior`` is bounded by the caller."""
    at, pos = event.at, event.link_position
    burst: Reason | None = None
    mismatch = False
    positions: set[int | None] = {pos}
    for e in ctx.prior:
        if e.kind != Kind.CLICK:
            continue
        dt = at - e.at
        if dt > EVERY_LINK_WINDOW_S or dt < -EVERY_LINK_WINDOW_S:
            continue
        if honeypot is not None and e.link_position == honeypot:
            if abs(dt) <= HONEYPOT_WINDOW_S:
                return verdict(SCANNER, 0.85, f, [Reason.HONEYPOT_WINDOW], (f.code, timing))
            continue
        if not same_source(e, event):
            if e.label == HUMAN and abs(dt) <= DEVICE_MISMATCH_S and e.os and f.os and e.os != f.os:
                mismatch = True
            continue
        positions.add(e.link_position)
        if e.link_position != pos and burst is not Reason.BURST_SAME_SECOND:
            if abs(dt) <= BURST_S:
                burst = Reason.BURST_SAME_SECOND
            elif abs(dt) <= BURST_WEAK_S:
                burst = Reason.BURST_3S
    if burst is Reason.BURST_SAME_SECOND:  # C6, high
        return verdict(SCANNER, 0.85, f, [burst], (f.code, timing))
    if msg is not None:
        needed = msg.link_count - (1 if honeypot is not None else 0)
        positions.discard(None)
        if needed >= 3 and len(positions) >= needed:  # C6, CustomerMinds rule 1
            return verdict(SCANNER, 0.7, f, [Reason.BURST_EVERY_LINK], (burst, f.code, timing))
    if burst is not None:  # C6, medium
        return verdict(SCANNER, 0.6, f, [burst], (f.code, timing))
    if mismatch:  # C11
        return verdict(SCANNER, 0.55, f, [Reason.DEVICE_MISMATCH], (f.code, timing))
    return None
