"""Matching a mail to the tracked message it answers (pure, table-driven)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from mailbeacon.mailboxes.match import Reply, base_subject, ids, match, norm, reply_hash
from mailbeacon.store.mailboxes import Tracked

DAY = 86400.0
SENT = 1_700_000_000.0
# Message 1 went out as two relay copies (one Message-ID, two recipients);
# message 3 is a separate message to ana with its own subject.
TRACKED = [
    Tracked(1, "ana@example.com", "Proposal for Q3", SENT, "<m1@mb.example>"),
    Tracked(2, "bo@other.example", "Proposal for Q3", SENT, "<m1@mb.example>"),
    Tracked(3, "ana@example.com", "Invoice 42", SENT - 40 * DAY, "<m3@mb.example>"),
    Tracked(4, "cy@example.com", "Lunch?", SENT, None),
]
BY_HEADER: dict[str, list[Tracked]] = defaultdict(list)
BY_RECIPIENT: dict[str, list[Tracked]] = defaultdict(list)
for t in TRACKED:
    if t.message_id_header:
        BY_HEADER[norm(t.message_id_header)].append(t)
    BY_RECIPIENT[t.recipient].append(t)


def reply(
    sender: str,
    subject: str = "Re: Proposal for Q3",
    in_reply_to: str = "",
    references: str = "",
    at: float = SENT + DAY,
    failed: tuple[str, ...] = (),
    returned: str = "",
) -> Reply:
    return Reply(
        message_id="<r@x>",
        in_reply_to=ids(in_reply_to),
        references=ids(references),
        sender=sender,
        subject=subject,
        at=at,
        failed=failed,
        returned_ids=ids(returned),
    )


CASES = [
    (
        "human reply",
        reply("ana@example.com", in_reply_to="<m1@mb.example>"),
        (1, ["thread:in_reply_to", "copy:recipient"]),
    ),
    (
        "other copy's recipient",
        reply("bo@other.example", in_reply_to="<m1@mb.example>"),
        (2, ["thread:in_reply_to", "copy:recipient"]),
    ),
    (
        "forwarded colleague, same domain as a copy",
        reply("dee@other.example", references="<x@y> <m1@mb.example> <z@w>"),
        (2, ["thread:references", "from:other_address", "copy:same_domain"]),
    ),
    (
        "forwarded colleague of a single-copy message",
        reply("eve@elsewhere.example", in_reply_to="<m3@mb.example>", subject="Re: Invoice 42"),
        (3, ["thread:in_reply_to", "from:other_address"]),
    ),
    (
        "nearest ancestor wins",
        reply("ana@example.com", in_reply_to="<m3@mb.example>", references="<m1@mb.example>"),
        (3, ["thread:in_reply_to"]),
    ),
    (
        "webmail dropped the thread: fallback",
        reply("ANA@example.com".lower(), subject="RE: proposal  for q3"),
        (1, ["fallback:subject", "fallback:same_recipient"]),
    ),
    (
        "fallback in German",
        reply("ana@example.com", subject="AW: Re: Proposal for Q3"),
        (1, ["fallback:subject", "fallback:same_recipient"]),
    ),
    ("fallback needs a reply prefix", reply("ana@example.com", subject="Proposal for Q3"), None),
    ("fallback needs the same subject", reply("ana@example.com", subject="Re: Holidays"), None),
    ("fallback only within 30 days", reply("ana@example.com", at=SENT + 31 * DAY), None),
    ("fallback needs the recipient", reply("zed@example.com"), None),
    ("forward is not a reply", reply("ana@example.com", subject="Fwd: Proposal for Q3"), None),
    (
        "unrelated mail from the same person",
        reply("ana@example.com", subject="Coffee next week?", references="<a@b>"),
        None,
    ),
    (
        "bounce with the returned Message-ID picks the failed copy",
        reply(
            "mailer-daemon@mx.example",
            subject="Undelivered",
            failed=("bo@other.example",),
            returned="<m1@mb.example>",
        ),
        (2, ["thread:returned_message", "copy:recipient"]),
    ),
    (
        "bounce with In-Reply-To (Exchange NDR)",
        reply("postmaster@example.com", failed=("ana@example.com",), in_reply_to="<m1@mb.example>"),
        (1, ["thread:in_reply_to", "copy:recipient"]),
    ),
    (
        "bounce with only a failed recipient",
        reply(
            "mailer-daemon@mx.example", subject="Mail delivery failed", failed=("cy@example.com",)
        ),
        (4, ["bounce:recipient_latest"]),
    ),
    (
        "bounce for someone we never wrote to",
        reply("mailer-daemon@mx.example", failed=("nobody@example.com",)),
        None,
    ),
]


@pytest.mark.parametrize("name,got,want", CASES, ids=[c[0] for c in CASES])
def test_match(name: str, got: Reply, want: tuple[int, list[str]] | None) -> None:
    found = match(got, BY_HEADER, BY_RECIPIENT)
    assert (None if found is None else (found.message_id, found.reasons)) == want


def test_confidence_is_lower_without_a_thread() -> None:
    thread = match(reply("ana@example.com", in_reply_to="<m1@mb.example>"), BY_HEADER, BY_RECIPIENT)
    fallback = match(reply("ana@example.com"), BY_HEADER, BY_RECIPIENT)
    assert thread is not None and fallback is not None
    assert thread.confidence > fallback.confidence


@pytest.mark.parametrize(
    "subject,base,replied",
    [
        ("Re: Hi", "hi", True),
        ("RE: re:  Hi  there", "hi there", True),
        ("Re[2]: Hi", "hi", True),
        ("SV: Hej", "hej", True),
        ("回复：你好", "你好", True),
        ("Hi", "hi", False),
        ("Fwd: Hi", "fwd: hi", False),
    ],
)
def test_base_subject(subject: str, base: str, replied: bool) -> None:
    assert base_subject(subject) == (base, replied)


def test_ids_and_hash() -> None:
    assert ids("<a@b>\r\n <c@d>  junk <e f>") == ("<a@b>", "<c@d>")
    assert norm("a@b") == norm(" <a@b> ") == "<a@b>"
    a, b = reply("ana@example.com"), reply("bo@other.example")
    assert reply_hash(a) == reply_hash(b)  # the same Message-ID is the same reply
    no_id = Reply(None, (), (), "ana@example.com", "Re: x", SENT)
    assert len(reply_hash(no_id)) == 32 and reply_hash(no_id) != reply_hash(a)


def test_search_criteria_group_message_ids_by_host() -> None:
    from mailbeacon.mailboxes.check import MAX_HOSTS, thread_criteria
    from mailbeacon.mailboxes.imap import or_all

    got = thread_criteria(["<a@mb.example>", "<b@MB.example>", "<c@gmail.com>", "<nohost>"])
    keys = [c[2] for c in got]
    assert keys == ["@gmail.com>"] * 2 + ["@mb.example>"] * 2 + ["<nohost>"] * 2
    many = [f"<x@h{i}.example>" for i in range(MAX_HOSTS + 1)]
    assert [c[2] for c in thread_criteria(many)][::2] == many  # too many hosts: exact ids
    tree = or_all([["A"], ["B"], ["C"], ["D"], ["E"]])
    assert tree == ["OR", "OR", "A", "B", "OR", "C", "OR", "D", "E"]
