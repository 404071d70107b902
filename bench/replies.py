"""Reply detection at size: a 50,000-message mailbox, 1,000 tracked messages.

Runs a private Dovecot (tests/mailservers, needs root and dovecot-imapd),
writes the mailbox straight into its maildir, and measures:

1. the first look at the mailbox (check.check with no checkpoint): the
   server-side SEARCH for mail naming a tracked Message-ID, from a tracked
   recipient, or a bounce, then the headers of those UIDs only;
2. the same look again (Dovecot's cache warm), and a look with nothing new;
3. for comparison, what downloading every message's header fields costs;
4. IDLE latency: LMTP delivery -> the reply handed to the recorder.

    .venv/bin/python bench/replies.py [--messages 50000] [--tracked 1000] [--replies 1000]

Prints a markdown table (copy it into docs/benchmarks.md by hand).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.mailservers.common import TLSFiles, make_root, remove_root
from tests.mailservers.dovecot import Dovecot
from tests.replies_helpers import dsn, mail

from mailbeacon import config
from mailbeacon.mailboxes import service
from mailbeacon.mailboxes.check import Context, backfill_uids, check, process
from mailbeacon.mailboxes.imap import HEADERS, Session
from mailbeacon.mailboxes.url import parse
from mailbeacon.mailboxes.watcher import MailboxThread
from mailbeacon.messages import create_message
from mailbeacon.model import Event
from mailbeacon.store import keys, make_engine, upgrade
from mailbeacon.store import mailboxes as box_store

WORDS = "offer invoice lunch meeting report update question draft budget plan".split()


def build(n: int, tracked: int, replies: int, owner: str, seed: int = 7) -> tuple[
    list[bytes], list[tuple[str, str, str]]
]:  # fmt: skip
    """(raw mails, tracked (recipient, subject, Message-ID)); replies spread through."""
    rnd = random.Random(seed)
    sent = [
        (f"lead{i}@customer{i % 97}.example", f"{rnd.choice(WORDS).title()} {i}",
         f"<t{i}.{rnd.getrandbits(40):x}@mb.example>")
        for i in range(tracked)
    ]  # fmt: skip
    answers: list[bytes] = []
    for k in range(replies):
        rcpt, subject, mid = sent[k % tracked]
        kind = k % 20
        if kind == 0:
            answers.append(dsn(owner, rcpt, mid, subject))
        elif kind == 1:
            answers.append(mail(rcpt, owner, f"Automatic reply: {subject}", in_reply_to=mid,
                                headers={"Auto-Submitted": "auto-replied"}))  # fmt: skip
        else:
            answers.append(mail(rcpt, owner, f"Re: {subject}", in_reply_to=mid, references=mid))
    other = n - len(answers)
    # Filler mail from people we never wrote to, made from a template (the
    # email package takes ~1 ms a message; 50,000 of them would be a minute).
    raws = [
        (
            f"From: person{rnd.randrange(5000)}@elsewhere{rnd.randrange(300)}.example\r\n"
            f"To: {owner}\r\nSubject: {rnd.choice(WORDS)} {rnd.choice(WORDS)} {i}\r\n"
            f"Date: Tue, 03 Dec 2024 10:00:00 +0000\r\nMessage-ID: <f{i}@elsewhere.example>\r\n"
            # One in ten answers the sender's other, untracked mail (same host).
            + (f"In-Reply-To: <u{i}@mb.example>\r\n" if i % 10 == 0 else "")
            + "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            + "Lorem ipsum dolor sit amet. " * rnd.randrange(8, 140)
            + "\r\n"
        ).encode()
        for i in range(other)
    ]
    step = max(len(raws) // max(len(answers), 1), 1)
    for j, a in enumerate(answers):
        raws.insert(min(j * step + j, len(raws)), a)
    return raws, sent


def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--tracked", type=int, default=1_000)
    ap.add_argument("--replies", type=int, default=1_000)
    ap.add_argument("--idle-samples", type=int, default=20)
    args = ap.parse_args()

    root = make_root()
    work = Path(tempfile.mkdtemp(prefix="mb-bench-replies-"))
    dovecot = Dovecot(root, TLSFiles.generate(root / "tls"))
    dovecot.start()
    try:
        rows = run(dovecot, work, args)
    finally:
        dovecot.stop()
        remove_root(root)
    print("\n| what | result |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


def run(dovecot: Dovecot, work: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    owner, password = dovecot.add_user(dovecot.address("bench"))
    out: list[tuple[str, str]] = []
    t = time.perf_counter()
    raws, sent = build(args.messages, args.tracked, args.replies, owner)
    dovecot.store(owner, raws)
    size = sum(len(r) for r in raws)
    out.append(("mailbox", f"{len(raws):,} messages, {size / 1e6:.0f} MB, written in "
                           f"{time.perf_counter() - t:.1f} s"))  # fmt: skip

    url = f"sqlite:///{work / 'mb.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = config.load(db=url, data_dir=str(work / "data"))
    signer = keys.ensure_signer(engine)
    now = time.time()
    with engine.begin() as conn:
        for rcpt, subject, mid in sent:
            create_message(conn, signer, "https://t.example", recipient=rcpt, subject=subject,
                           sent_at=now - 5 * 86400, message_id_header=mid)  # fmt: skip
    service.add(engine, settings, owner, dovecot.imap_url(owner))
    box = box_store.get(engine, owner)
    assert box is not None
    box_store.take_lease(engine, box.id, "bench", 3600, now)
    found: list[Event] = []
    ctx = Context(engine=engine, box=box, owner="bench", own=frozenset({owner}),
                  add=lambda e: found.append(e) is None)  # fmt: skip
    imap_url = parse(box.imap_url, password)

    def look(last: int | None) -> tuple[float, float, int]:
        before = len(found)
        ctx.handed.clear()
        session = Session(imap_url)
        t0 = time.perf_counter()
        folder = session.open()
        t1 = time.perf_counter()
        top = check(ctx, session, folder, last)
        t2 = time.perf_counter()
        session.close()
        assert top >= 0
        return t1 - t0, t2 - t1, len(found) - before

    opened, took, n = look(None)
    out.append(("first EXAMINE (Dovecot indexes the maildir)", f"{opened:.2f} s"))
    out.append((f"first look: SEARCH + headers of matches, {args.tracked:,} tracked",
                f"{took:.2f} s, {n:,} answers recorded"))  # fmt: skip
    found.clear()
    opened, took, n = look(None)
    out.append(("same look again (server cache warm; dedupe empties)", f"{took:.2f} s"))
    last = (box_store.get(engine, owner) or box).last_uid
    _, took, n = look(last)
    out.append(
        ("a look with nothing new (UID SEARCH above the checkpoint)", f"{took * 1000:.0f} ms")
    )

    session = Session(imap_url)
    session.open()
    t0 = time.perf_counter()
    uids = backfill_uids(ctx, session, None, 10**9)
    out.append(("of which the SEARCH (warm)",
                f"{time.perf_counter() - t0:.2f} s -> {len(uids):,} UIDs to fetch"))  # fmt: skip
    assert session.client is not None
    t0 = time.perf_counter()
    uids = session.search(["ALL"])
    got = 0
    for i in range(0, len(uids), 500):
        got += len(session.client.fetch(uids[i : i + 500], [HEADERS]))
    naive = time.perf_counter() - t0
    out.append(("for comparison: fetch every message's header fields",
                f"{naive:.2f} s ({got:,} messages)"))  # fmt: skip
    ctx.handed.clear()
    t0 = time.perf_counter()
    for i in range(0, len(uids), 200):
        process(ctx, session, session.headers(uids[i : i + 200]))
    out.append(("... and classify and match all of them (no SEARCH)",
                f"{time.perf_counter() - t0:.2f} s"))  # fmt: skip
    session.close()

    out.append(("IDLE: LMTP delivery -> reply handed to the recorder", idle(dovecot, engine,
                                                                          settings, owner, sent,
                                                                          args.idle_samples)))  # fmt: skip
    return out


def idle(dovecot: Dovecot, engine: object, settings: config.Settings, owner: str,
         sent: list[tuple[str, str, str]], samples: int) -> str:  # fmt: skip
    box = box_store.get(engine, owner)  # type: ignore[arg-type]
    assert box is not None
    arrived = threading.Event()
    seen: list[float] = []

    def add(_e: Event) -> bool:
        seen.append(time.perf_counter())
        arrived.set()
        return True

    thread = MailboxThread(box, engine, settings, "bench", add)  # type: ignore[arg-type]
    before = box.last_check_at
    thread.start()
    deadline = time.monotonic() + 60
    while (box_store.get(engine, owner) or box).last_check_at == before:  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "the watcher did not look at the mailbox"
        time.sleep(0.05)
    time.sleep(0.5)  # from its first look into IDLE
    lat = []
    for i in range(samples):
        rcpt, subject, mid = sent[-1 - i]
        arrived.clear()
        raw = mail(rcpt, owner, f"Re: {subject}", in_reply_to=mid, message_id=f"<idle{i}@x>")
        t0 = time.perf_counter()
        dovecot.deliver(raw, owner)
        if not arrived.wait(30):
            return "no reply seen within 30 s"
        lat.append(seen[-1] - t0)
    thread.stop()
    thread.join(10)
    lat.sort()
    return (f"median {statistics.median(lat) * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms "
            f"({samples} replies)")  # fmt: skip


if __name__ == "__main__":
    main()
