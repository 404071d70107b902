"""O1 / C0: the sender viewing or testing their own message.

Sender signals outrank everything else, but only when they match the
sender's context (issue 12, item 4): the sender's cookie, the sender's recent
addresses, or, for mail still being composed (no ``sent_at``), the *first*
fetch soon after creation through a webmail image proxy, which is how a
compose window in Gmail & co. renders a pasted pixel (MailPing's "link
activation"; docs/classification.md sources §7: through Gmail a self-open looks
like a recipient's proxy open). A hit from another network or client, and
any click not carrying the sender's cookie or address, is not ``self``.
"""

from __future__ import annotations

from mailbeacon.classify.context import Context, Verdict
from mailbeacon.classify.reasons import Reason
from mailbeacon.classify.signatures import UAFacts, UAKind
from mailbeacon.classify.verdicts import SELF, verdict
from mailbeacon.model import Event, Kind, MessageInfo

__all__ = ["COMPOSE_FIRST_S", "self_verdict"]

# The compose window renders the pixel as soon as it is pasted, seconds after
# the dashboard or API created the message (MailPing's activation fetch).
# Five minutes leaves room to switch windows and paste; a recipient cannot
# have the mail that early unless the sender sent it at once, and then the
# proxy fetch is the sender's own send view more often than not.
COMPOSE_FIRST_S = 300.0

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
_COMPOSE_PROXIES = frozenset({UAKind.GMAIL_PROXY, UAKind.MAILBOX_PROXY})


def self_verdict(
    event: Event,
    ctx: Context,
    f: UAFacts,
    msg: MessageInfo | None,
    since: float | None,
    gateway: bool,
) -> Verdict | None:
    if ctx.sender_cookie:
        return verdict(SELF, 0.95, f, [Reason.SELF_COOKIE])
    # A proxy's address is the mailbox provider's, never the sender's.
    if event.ip and event.ip in ctx.sender_ips and f.kind not in _PROXIED:
        return verdict(SELF, 0.6, f, [Reason.SELF_SENDER_IP])
    if msg is None or since is None or gateway or f.kind not in _SENDER_KINDS:
        return None
    if msg.sent_at is not None:
        if since < 0:  # nobody but the sender has the URL before the message leaves
            return verdict(SELF, 0.9, f, [Reason.SELF_COMPOSE_TIME, Reason.TIMING_BEFORE_SEND])
        return None
    if (
        event.kind == Kind.OPEN
        and f.kind in _COMPOSE_PROXIES
        and since <= COMPOSE_FIRST_S
        and not any(e.kind == Kind.OPEN for e in ctx.prior)
    ):
        return verdict(SELF, 0.6, f, [Reason.SELF_COMPOSE_TIME])
    return None
