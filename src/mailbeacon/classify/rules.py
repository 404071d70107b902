"""The ordered rules of classification.md section 8: first decisive match wins.

Opens follow O1..O13, clicks C1..C13, with the project decisions in
docs/classification.md. The primary reason comes first in ``reasons``;
cheap corroborating signals (timing, network lists) follow, for audit.
"""

from __future__ import annotations

from mailbeacon.classify.context import Context, Verdict
from mailbeacon.classify.networks import APPLE_EGRESS, Match
from mailbeacon.classify.signatures import UAFacts, UAKind, ua_facts
from mailbeacon.classify.sources import same_source
from mailbeacon.model import ClickLabel, Event, Kind, MessageInfo, OpenLabel

__all__ = ["classify"]

# Label strings (model.py); plain str locals so building a Verdict is cheap.
H_DIRECT, H_PROXY = OpenLabel.HUMAN_DIRECT.value, OpenLabel.HUMAN_VIA_PROXY.value
PREFETCH, SEC_SCANNER = OpenLabel.MACHINE_PREFETCH.value, OpenLabel.SECURITY_SCANNER.value
BOT_OTHER, SELF = OpenLabel.BOT_OTHER.value, OpenLabel.SELF.value
HUMAN, SCANNER, BOT = ClickLabel.HUMAN.value, ClickLabel.SCANNER.value, ClickLabel.BOT.value

# Timing, seconds after send (section 8): <= 2 s is strong (Mautic's
# timeFromEmailThreshold), <= 60 s weak (GMass "< 1 min", Hunto presets).
STRONG_S, WEAK_S = 2.0, 60.0
# Compose: with no sent_at, the first fetches within 15 min of creating the
# message are the sender's compose window rendering the pixel (MailPing's
# "tracking link ... tested within Gmail"); at most 3 of them.
COMPOSE_WINDOW_S, COMPOSE_MAX_FETCHES = 900.0, 3
BURST_S, BURST_WEAK_S = 1.0, 3.0  # Marketo proximity: 0 s default, 0-3 s configurable
HONEYPOT_WINDOW_S = 10.0  # mautic #9798: discard clicks within +-10 s of a honeypot hit
EVERY_LINK_WINDOW_S = 60.0  # CustomerMinds rule 1 gives no window; ours, see docs
DEVICE_MISMATCH_S = 30.0  # resend-node #901: scanner came ~12 s after the human click
CAMPAIGN_OTHER_MESSAGES = 3  # same ip_hash clicked >= 3 other recipients' messages

# UA kinds a sender's own compose window or mail client can have.
_SENDER_KINDS = frozenset(
    {
        UAKind.BROWSER,
        UAKind.MAIL_CLIENT,
        UAKind.BARE_WEBKIT,
        UAKind.GMAIL_PROXY,
        UAKind.MAILBOX_PROXY,
        UAKind.UNKNOWN,
    }
)
_PROXIED = frozenset(
    {UAKind.GMAIL_PROXY, UAKind.MAILBOX_PROXY, UAKind.GMAIL_PREFETCH, UAKind.BARE_MOZILLA}
)
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

_DEFAULT_CTX: Context | None = None


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
    if event.kind == Kind.CLICK:
        return _click(event, ctx, f, matches, msg, since, timing)
    return _open(event, ctx, f, matches, msg, since, timing)


def _timing_code(since: float | None) -> str | None:
    if since is None or since > WEAK_S:
        return None
    if since < 0:
        return "timing:before_send"
    return "timing:2s_after_send" if since <= STRONG_S else "timing:60s_after_send"


def _verdict(
    label: str, conf: float, f: UAFacts, reasons: list[str], extra: tuple[str | None, ...] = ()
) -> Verdict:
    for r in extra:
        if r is not None and r not in reasons:
            reasons.append(r)
    return Verdict(label, reasons, conf, f.client, f.os, f.device)


def _split(matches: tuple[Match, ...], for_click: bool) -> tuple[bool, list[str], list[str]]:
    """(apple egress?, condemning list codes, cloud-network list codes)."""
    apple, hard, cloud = False, [], []
    for name, scope in matches:
        if name == APPLE_EGRESS:
            apple = True
        elif scope == "all" or (scope == "opens" and not for_click):
            hard.append("ip:" + name)
        elif scope == "clicks":
            cloud.append("ip:" + name)
    return apple, hard, cloud


def _self(
    event: Event,
    ctx: Context,
    f: UAFacts,
    msg: MessageInfo | None,
    since: float | None,
    hard: list[str],
) -> Verdict | None:
    """O1 / C0: the sender viewing or testing their own message."""
    if ctx.sender_cookie:
        return _verdict(SELF, 0.95, f, ["self:cookie"])
    human_shaped = f.kind in _SENDER_KINDS and not hard
    if msg is not None and since is not None and human_shaped:
        if msg.sent_at is not None and since < 0:
            # Nobody but the sender has the URL before the message leaves.
            return _verdict(SELF, 0.9, f, ["self:compose_time", "timing:before_send"])
        if msg.sent_at is None and since <= COMPOSE_WINDOW_S:
            earlier = [e for e in ctx.prior if e.kind == event.kind]
            if len(earlier) < COMPOSE_MAX_FETCHES and all(e.label == SELF for e in earlier):
                return _verdict(SELF, 0.7, f, ["self:compose_time"])
    # A proxy's address is the mailbox provider's, never the sender's.
    if event.ip and event.ip in ctx.sender_ips and f.kind not in _PROXIED:
        return _verdict(SELF, 0.6, f, ["self:sender_ip"])
    return None


def _open(
    event: Event,
    ctx: Context,
    f: UAFacts,
    matches: tuple[Match, ...],
    msg: MessageInfo | None,
    since: float | None,
    timing: str | None,
) -> Verdict:
    apple, hard, cloud = _split(matches, for_click=False)
    v = _self(event, ctx, f, msg, since, hard)
    if v is not None:
        return v
    if event.method != "GET":  # O2: mail clients GET images
        return _verdict(BOT_OTHER, 0.9, f, ["method:" + event.method.lower()])
    if "mutated" in event.token_flags:  # gophish #973: Safe Links probes altered URLs
        return _verdict(SEC_SCANNER, 0.9, f, ["token:mutated"], (timing, *hard))
    k = f.kind
    if k is UAKind.EMPTY:  # O3
        return _verdict(BOT_OTHER, f.confidence, f, [f.code], (timing, *hard))
    if k is UAKind.GMAIL_PREFETCH:  # O4
        return _verdict(PREFETCH, f.confidence, f, [f.code], (timing,))
    if k is UAKind.BARE_MOZILLA:
        if apple:  # O5: ClickDimensions' rule
            return _verdict(PREFETCH, 0.95, f, [f.code, "ip:apple_egress"], (timing,))
        if not hard:  # O5b: stale list or a CDN hiding the address
            return _verdict(PREFETCH, f.confidence, f, [f.code], (timing,))
    if k is UAKind.GMAIL_PROXY or k is UAKind.MAILBOX_PROXY:
        # O6/O7: fetched when a person opens; timing never condemns these
        # (a reader with Gmail open can read within seconds).
        return _verdict(H_PROXY, f.confidence, f, [f.code])
    if k is UAKind.SCANNER:  # O8, by UA
        return _verdict(SEC_SCANNER, f.confidence, f, [f.code], (timing, *hard))
    if hard:  # O8, by vendor network (scope all)
        return _verdict(SEC_SCANNER, 0.85, f, [hard[0]], (f.code, timing, *hard[1:]))
    if k is UAKind.BOT or k is UAKind.BARE_MOZILLA:  # O9
        return _verdict(BOT_OTHER, f.confidence, f, [f.code], (timing,))
    early_cloud = bool(cloud) and since is not None and since <= WEAK_S
    if k is UAKind.BARE_WEBKIT:
        if early_cloud:  # O10: warmbly #569, a Microsoft fetch at delivery
            return _verdict(SEC_SCANNER, 0.6, f, [f.code], (timing, *cloud))
        return _verdict(H_DIRECT, 0.7 if timing is None else 0.5, f, [f.code], (timing,))
    if k is UAKind.MAIL_CLIENT:  # O11
        if early_cloud and since is not None and since <= STRONG_S:
            return _verdict(SEC_SCANNER, 0.6, f, [f.code], (timing, *cloud))
        return _verdict(H_DIRECT, f.confidence, f, [f.code], (timing, *cloud))
    if k is UAKind.BROWSER:  # O12
        if early_cloud:
            return _verdict(SEC_SCANNER, 0.6, f, [f.code], (timing, *cloud))
        return _verdict(H_DIRECT, f.confidence, f, [f.code], (timing, *cloud))
    if cloud:  # O13
        return _verdict(BOT_OTHER, 0.4, f, [f.code, *cloud], (timing,))
    return _verdict(H_DIRECT, 0.3, f, [f.code], (timing,))


def _click(
    event: Event,
    ctx: Context,
    f: UAFacts,
    matches: tuple[Match, ...],
    msg: MessageInfo | None,
    since: float | None,
    timing: str | None,
) -> Verdict:
    apple, hard, cloud = _split(matches, for_click=True)
    v = _self(event, ctx, f, msg, since, hard)
    if v is not None:
        return v
    if event.method == "HEAD":  # C1: mail-tracker #200, CiviCRM #35328, Dub #2310
        return _verdict(SCANNER, 0.95, f, ["method:head"], (timing, *hard, *cloud))
    honeypot = msg.honeypot_position if msg is not None else None
    if honeypot is not None and event.link_position == honeypot:  # C2
        return _verdict(SCANNER, 0.95, f, ["honeypot"], (f.code, timing, *hard, *cloud))
    if "mutated" in event.token_flags:  # C9, checked early: it is decisive
        return _verdict(SCANNER, 0.9, f, ["token:mutated"], (f.code, timing, *hard, *cloud))
    k = f.kind
    if k is UAKind.SCANNER:  # C3
        return _verdict(SCANNER, f.confidence, f, [f.code], (timing, *hard, *cloud))
    if k in _NOT_A_CLICKER:  # C4: libraries, previewers; image proxies never click
        return _verdict(BOT, f.confidence, f, [f.code], (timing, *hard, *cloud))
    if hard:  # C5, vendor scanner networks
        return _verdict(SCANNER, 0.9, f, [hard[0]], (f.code, timing, *hard[1:], *cloud))
    v = _history(event, ctx, f, msg, honeypot, timing)  # C2 window, C6, C11
    if v is not None:
        return v
    if since is not None and 0 <= since <= STRONG_S:  # C7
        return _verdict(SCANNER, 0.8, f, ["timing:2s_after_send"], (f.code, *cloud))
    if cloud:  # C5 for whole Microsoft/Google networks: medium, stronger when early (C10)
        if timing is not None:
            no_open = not any(e.kind == Kind.OPEN for e in ctx.prior)
            return _verdict(
                SCANNER,
                0.8,
                f,
                [cloud[0], timing],
                (*cloud[1:], "click:no_prior_open" if no_open else None, f.code),
            )
        return _verdict(SCANNER, 0.55, f, [cloud[0]], (*cloud[1:], f.code))
    others = ctx.campaign_recent_clicks.get(event.ip_hash) if event.ip_hash else None
    if others and len(others - {event.message_id}) >= CAMPAIGN_OTHER_MESSAGES:  # C8
        return _verdict(SCANNER, 0.7, f, ["campaign:ip_many_recipients"], (f.code, timing))
    if apple and f.safari:  # C12: Private Relay browsing, not MPP
        return _verdict(HUMAN, 0.75, f, ["ip:apple_egress", "ua:safari"], (timing,))
    conf = 0.3 if k is UAKind.UNKNOWN else 0.6  # C13
    return _verdict(HUMAN, conf, f, [f.code], (timing,))


def _history(
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
    burst: str | None = None
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
                return _verdict(SCANNER, 0.85, f, ["honeypot:window"], (f.code, timing))
            continue
        if not same_source(e, event):
            if e.label == HUMAN and abs(dt) <= DEVICE_MISMATCH_S and e.os and f.os and e.os != f.os:
                mismatch = True
            continue
        positions.add(e.link_position)
        if e.link_position != pos and burst != "burst:same_second":
            if abs(dt) <= BURST_S:
                burst = "burst:same_second"
            elif abs(dt) <= BURST_WEAK_S:
                burst = "burst:3s"
    if burst == "burst:same_second":  # C6, high
        return _verdict(SCANNER, 0.85, f, [burst], (f.code, timing))
    if msg is not None:
        needed = msg.link_count - (1 if honeypot is not None else 0)
        positions.discard(None)
        if needed >= 3 and len(positions) >= needed:  # C6, CustomerMinds rule 1
            return _verdict(SCANNER, 0.7, f, ["burst:every_link"], (burst, f.code, timing))
    if burst is not None:  # C6, medium
        return _verdict(SCANNER, 0.6, f, [burst], (f.code, timing))
    if mismatch:  # C11
        return _verdict(SCANNER, 0.55, f, ["device:mismatch"], (f.code, timing))
    return None
