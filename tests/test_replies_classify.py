"""Classification of answers from header fields, against real-world shapes.

Every case cites where its shape comes from. The sisimai set-of-emails corpus
(BSD-2-Clause, github.com/sisimai/set-of-emails, also vendored in rb-sisimai)
holds real bounces and auto-replies; the headers below are cut down to what
the watcher fetches (classify.FIELDS), with their values as they were.
"""

from __future__ import annotations

import pytest

from mailbeacon.mailboxes.classify import FIELDS, classify, parse_headers, parse_status

POSTFIX_STATUS = b"""Reporting-MTA: dns; here-redacted.net.br
X-Postfix-Queue-ID: F180CB7A
Arrival-Date: Sat, 12 Aug 2017 21:56:53 +0000 (UTC)

Final-Recipient: rfc822; kijitora@example.br
Original-Recipient: rfc822;kijitora@example.br
Action: failed
Status: 5.4.1
Remote-MTA: dns; here-redacted-br.mail.protection.outlook.com
Diagnostic-Code: smtp; 550 5.4.1 <kijitora@example.br>: Recipient
    address rejected: Access denied
"""

EXCHANGE_STATUS = b"""Reporting-MTA: dns;emea.e.f.com
Received-From-MTA: dns;mx0a-000cf101.c.d
Arrival-Date: Tue, 29 Jun 2010 14:18:29 +0000

Final-Recipient: rfc822;john.smith@eu.a.b.c
Action: failed
Status: 5.2.3
Diagnostic-Code: smtp;550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large
X-Display-Name: John Smith
"""

DELAYED_STATUS = b"""Reporting-MTA: dns; mail.example.org

Final-Recipient: rfc822; slow@example.net
Action: delayed
Status: 4.4.1
Will-Retry-Until: Mon, 3 Jun 2024 10:00:00 +0000
"""

CASES: list[tuple[str, str, bytes, bytes | None, str, list[str], tuple[str, ...]]] = [
    # (name, source, headers, delivery-status part, label, reasons, failed)
    (
        "postfix_dsn",
        "sisimai lhost-postfix-30.eml",
        b"Return-Path: <>\r\nDate: Sat, 12 Aug 2017 21:57:09 +0000 (UTC)\r\n"
        b"From: MAILER-DAEMON@example.net.br (Mail Delivery System)\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
        b'\tboundary="F180CB7A.1502575029/here-redacted.net.br"\r\n'
        b"Message-Id: <20170812215709.84FFABD9@example.net.br>\r\n\r\n",
        POSTFIX_STATUS,
        "bounce",
        ["dsn:failed"],
        ("kijitora@example.br",),
    ),
    (
        "exchange_2007_ndr",
        "sisimai email-exchange2007-02.eml",
        b"Return-Path: <>\r\nFrom: <postmaster@a.b.c>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
        b'\tboundary="b55a2b75-4287-4df8-9838-5aa7a3f34ec0"\r\n'
        b"Message-ID: <83b495a0-4547-4174-b297-aec8956f6dba>\r\n"
        b"In-Reply-To: <20100629141825.BC9AC16586D3@server4.example.co.uk>\r\n"
        b"Subject: Undeliverable: subject\r\n\r\n",
        EXCHANGE_STATUS,
        "bounce",
        ["dsn:failed"],
        ("john.smith@eu.a.b.c",),
    ),
    (
        "dsn_not_fetched",
        "RFC 3464: the report type alone says bounce",
        b"From: MAILER-DAEMON@example.org\r\n"
        b'Content-Type: multipart/report; report-type="delivery-status"; boundary="x"\r\n\r\n',
        None,
        "bounce",
        ["dsn:report"],
        (),
    ),
    (
        "dsn_delayed",
        "RFC 3464 2.3.3 Action: delayed (Postfix's delay_warning_time notice)",
        b"From: MAILER-DAEMON@mail.example.org (Mail Delivery System)\r\n"
        b"Subject: Delayed Mail (still being retried)\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=y\r\n\r\n",
        DELAYED_STATUS,
        "auto_reply",
        ["dsn:delayed"],
        (),
    ),
    (
        "exim_bounce",
        "sisimai email-exim-02.eml",
        b"Return-Path: <>\r\nDate: Thu, 10 Jul 2014 16:31:43 +0900\r\n"
        b"Message-Id: <E1X58pT-0004bZ-Co@marutamachi.example.org>\r\n"
        b"X-Failed-Recipients: kijitora@example.jp,\r\n  sabatora@example.jp\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"From: Mail Delivery System <Mailer-Daemon@marutamachi.example.org>\r\n"
        b"To: shironeko@example.jp\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n\r\n",
        None,
        "bounce",
        ["header:x_failed_recipients"],
        ("kijitora@example.jp", "sabatora@example.jp"),
    ),
    (
        "gmail_text_bounce",
        "sisimai email-google-02.eml",
        b"Return-Path: <>\r\n"
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        b"X-Failed-Recipients: aougoueioaldljgoiuiorghladkgke@example.fr\r\n"
        b"Subject: Delivery Status Notification (Failure)\r\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\r\n\r\n",
        None,
        "bounce",
        ["header:x_failed_recipients"],
        ("aougoueioaldljgoiuiorghladkgke@example.fr",),
    ),
    (
        "qmail_failure_notice",
        "sisimai email-qmail-01.eml (the failed address is only in the body)",
        b"Return-Path: <>\r\nDate: 24 Apr 2013 00:00:00 +0900\r\n"
        b"From: MAILER-DAEMON@mx4.example.jp\r\nTo: nekochan@example.jp\r\n"
        b"Subject: failure notice\r\n\r\n",
        None,
        "bounce",
        ["from:mailer_daemon", "subject:bounce"],
        (),
    ),
    (
        "exchange_oof_subject_only",
        "sisimai rfc3834-01.eml (Exchange OOF without Auto-Submitted)",
        b"Return-Path: <>\r\nFrom: Fred Somebody <fred@example.com>\r\nTo: joe@example.com\r\n"
        b"Subject: Out of Office: I like turtles\r\nMessage-ID: <1234.1212@example.com>\r\n"
        b'Content-Type: text/html; charset="utf-8"\r\n\r\n',
        None,
        "auto_reply",
        ["subject:out_of_office", "return_path:null"],
        (),
    ),
    (
        "outlook_automatic_reply",
        "MS-OXCMAIL 2.1.3.2.20; Zammad out_of_office_check.rb (Suppress: All + Rules-Loop)",
        b"From: Ana Lima <ana@contoso.com>\r\nSubject: Automatic reply: Proposal for Q3\r\n"
        b"Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n"
        b"X-MS-Exchange-Inbox-Rules-Loop: ana@contoso.com\r\n"
        b"In-Reply-To: <m1@mb.example>\r\n\r\n",
        None,
        "auto_reply",
        ["auto_submitted:auto-generated", "exchange:oof", "subject:out_of_office"],
        (),
    ),
    (
        "gmail_vacation",
        "RFC 3834 5.1 (Gmail's vacation responder sets Auto-Submitted: auto-replied; "
        "its subject is the user's own text)",
        b"From: Bo <bo@gmail.com>\r\nSubject: Back on Monday\r\n"
        b"Auto-Submitted: auto-replied\r\nIn-Reply-To: <m1@mb.example>\r\n\r\n",
        None,
        "auto_reply",
        ["auto_submitted:auto-replied"],
        (),
    ),
    (
        "zimbra_vacation",
        "Zammad out_of_office_check.rb: Zimbra writes Auto-Submitted: auto-replied (vacation)",
        b"From: c@zimbra.example\r\nSubject: Re: Proposal\r\n"
        b"Auto-Submitted: auto-replied (vacation)\r\n\r\n",
        None,
        "auto_reply",
        ["auto_submitted:auto-replied (vacation)"],
        (),
    ),
    (
        "german_outlook",
        "Outlook in German: 'Automatische Antwort:' (RFC 2047 encoded)",
        b"From: d@firma.de\r\nSubject: =?utf-8?q?Automatische_Antwort=3A_Angebot?=\r\n\r\n",
        None,
        "auto_reply",
        ["subject:out_of_office"],
        (),
    ),
    (
        "french_outlook",
        "Outlook in French: 'Réponse automatique :'",
        b"From: e@societe.fr\r\n"
        b"Subject: =?utf-8?b?UsOpcG9uc2UgYXV0b21hdGlxdWUgOiBEZXZpcw==?=\r\n\r\n",
        None,
        "auto_reply",
        ["subject:out_of_office"],
        (),
    ),
    (
        "spanish_outlook",
        "Outlook in Spanish: 'Respuesta automática:'",
        b"From: f@empresa.es\r\nSubject: =?iso-8859-1?q?Respuesta_autom=E1tica=3A_Oferta?=\r\n\r\n",
        None,
        "auto_reply",
        ["subject:out_of_office"],
        (),
    ),
    (
        "japanese_autoresponse",
        "Japanese mail systems: '自動応答' (auto-response)",
        b"From: g@example.co.jp\r\n"
        b"Subject: =?utf-8?b?6Ieq5YuV5b+c562UOiDjgYrnn6XjgonjgZs=?=\r\n\r\n",
        None,
        "auto_reply",
        ["subject:out_of_office"],
        (),
    ),
    (
        "yandex_x_autoreply",
        "Yandex/Mail.ru autoresponders: X-Autoreply: yes",
        b"From: h@yandex.ru\r\nSubject: Re: Offer\r\nX-Autoreply: yes\r\n\r\n",
        None,
        "auto_reply",
        ["header:x_autoreply"],
        (),
    ),
    (
        "x_autorespond",
        "cPanel/Exim autoresponders: X-Autorespond",
        b"From: i@host.example\r\nSubject: Thanks for your mail\r\n"
        b"X-Autorespond: i@host.example\r\n\r\n",
        None,
        "auto_reply",
        ["header:x_autorespond"],
        (),
    ),
    (
        "precedence_auto_reply",
        "Debian vacation(1) and many autoresponders: Precedence: bulk / auto_reply / junk",
        b"From: j@example.net\r\nSubject: Re: Offer\r\nPrecedence: auto_reply\r\n\r\n",
        None,
        "auto_reply",
        ["precedence:auto_reply"],
        (),
    ),
    (
        "precedence_bulk",
        "vacation(1): Precedence: bulk",
        b"From: k@example.net\r\nSubject: I am away\r\nPrecedence: bulk\r\n\r\n",
        None,
        "auto_reply",
        ["precedence:bulk"],
        (),
    ),
    (
        "human_gmail_reply",
        "a reply from Gmail's web client",
        b"From: Ana <ana@gmail.com>\r\nDate: Tue, 4 Jun 2024 09:12:03 +0200\r\n"
        b"Message-ID: <CAF=abc@mail.gmail.com>\r\nSubject: Re: Proposal for Q3\r\n"
        b"In-Reply-To: <m1@mb.example>\r\nReferences: <m1@mb.example>\r\n"
        b'Content-Type: multipart/alternative; boundary="000000000000a1b2"\r\n\r\n',
        None,
        "human",
        ["no_auto_signal"],
        (),
    ),
    (
        "human_outlook_reply_about_ooo",
        "a person's reply whose subject mentions the office: only prefixes count",
        b"From: Bo <bo@contoso.com>\r\nSubject: RE: Out of office plans for August\r\n"
        b"X-Auto-Response-Suppress: All\r\nAuto-Submitted: no\r\n\r\n",
        None,
        "human",
        ["no_auto_signal"],
        (),
    ),
    (
        "human_from_postmaster",
        "a person writing from postmaster@ is no bounce without a bounce subject",
        b"From: postmaster@example.org\r\nSubject: Re: your question\r\n\r\n",
        None,
        "human",
        ["no_auto_signal"],
        (),
    ),
]


@pytest.mark.parametrize(
    "name,source,raw,status,label,reasons,failed", CASES, ids=[c[0] for c in CASES]
)
def test_classify(
    name: str,
    source: str,
    raw: bytes,
    status: bytes | None,
    label: str,
    reasons: list[str],
    failed: tuple[str, ...],
) -> None:
    verdict = classify(parse_headers(raw), parse_status(status) if status else None)
    assert (verdict.label.value, verdict.reasons, verdict.failed) == (label, reasons, failed)


def test_every_case_uses_only_fetched_fields() -> None:
    """The watcher fetches classify.FIELDS only: a case relying on another
    header would pass here and fail against a real server."""
    fetched = {f.lower() for f in FIELDS}
    for name, _src, raw, *_ in CASES:
        names = {k.lower() for k in parse_headers(raw).keys()}
        assert names <= fetched | {"message-id"}, (name, names - fetched)


def test_broken_encoded_words_do_not_raise() -> None:
    raw = b"From: =?utf-8?q?=FF=FE?= <x@y.z>\r\nSubject: =?bogus?x?zz?=\r\n\r\n"
    assert classify(parse_headers(raw)).label.value == "human"
