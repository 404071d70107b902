"""Dashboard wording: counts, clients and what an event did, in plain words."""

from __future__ import annotations

import pytest

from mailbeacon.web.dashboard import reasons
from mailbeacon.web.dashboard.render import plural


@pytest.mark.parametrize(
    ("n", "one", "words"),
    [
        (1, "message", "1 message"),
        (0, "message", "0 messages"),
        (2, "message", "2 messages"),
        (1, "fetch", "1 fetch"),
        (3, "fetch", "3 fetches"),
        (None, "open", "0 opens"),
        (1, "human click", "1 human click"),
    ],
)
def test_plural(n: int | None, one: str, words: str) -> None:
    assert plural(n, one) == words


@pytest.mark.parametrize(
    ("client", "device", "kind", "words"),
    [
        ("Mobile Safari UI/WKWebView", "iPhone", "open", "Apple Mail (iPhone)"),
        ("Mobile Safari UI/WKWebView", "mobile", "open", "Apple Mail (iPhone)"),
        ("Mobile Safari UI/WKWebView", "iPad", "open", "Apple Mail (iPad)"),
        ("Mobile Safari UI/WKWebView", None, "open", "Apple Mail (iPhone)"),
        # A click from an iOS app's in-app browser is not Mail.
        ("Mobile Safari UI/WKWebView", "iPhone", "click", "Mobile Safari UI/WKWebView"),
        ("Thunderbird", "desktop", "open", "Thunderbird"),
        (None, None, "open", ""),
    ],
)
def test_client_words(client: str | None, device: str | None, kind: str, words: str) -> None:
    assert reasons.client_words(client, device, kind) == words


@pytest.mark.parametrize(
    ("kind", "label", "position", "words"),
    [
        ("open", "human_direct", None, "Opened"),
        ("open", "human_via_proxy", None, "Opened"),
        ("open", "machine_prefetch", None, "Fetched at delivery, not opened"),
        ("open", "security_scanner", None, "Fetched by a security scanner"),
        ("open", "bot_other", None, "Fetched by a bot"),
        ("open", "self", None, "Opened by you"),
        ("click", "human", 2, "Clicked link 2"),
        ("click", "scanner", 2, "Link 2 checked by a security scanner"),
        ("click", "scanner", 0, "Followed the hidden trap link"),
        ("reply", "auto_reply", None, "Sent an auto-reply"),
        ("reminder", "not_opened", None, "Reminder: not opened"),
    ],
)
def test_event_words(kind: str, label: str, position: int | None, words: str) -> None:
    assert reasons.event_words(kind, label, position, 0) == words
