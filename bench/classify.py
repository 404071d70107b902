"""classify() calls per second with a realistic UA mix and a warm UA cache.

Run: PYTHONPATH=src python bench/classify.py [--ranges 300000]
Mix (opens 85 %, clicks 15 %), roughly the shares ESPs report: Gmail proxy
and Apple MPP dominate opens (SparkPost, Litmus), Outlook and browsers the
rest, a few bots. Networks: the builtin lists plus N synthetic Apple-like
ranges, so the lookup costs what it will in production. Each click sees a
prior of 10 events (the history pass is the most expensive rule).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import time

from mailbeacon.classify import Context, classify
from mailbeacon.classify.networks import NetworkSet
from mailbeacon.model import Event, Kind, MessageInfo

MIX: list[tuple[float, Kind, str]] = [
    (
        0.35,
        Kind.OPEN,
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    ),
    (0.25, Kind.OPEN, "Mozilla/5.0"),
    (
        0.08,
        Kind.OPEN,
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; "
        "Microsoft Outlook 16.0.9126; ms-office; MSOffice 16)",
    ),
    (
        0.07,
        Kind.OPEN,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    ),
    (
        0.05,
        Kind.OPEN,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        0.03,
        Kind.OPEN,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 "
        "Mozilla/5.0",
    ),
    (0.02, Kind.OPEN, "python-requests/2.32.3"),
    (
        0.08,
        Kind.CLICK,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 "
        "Safari/604.1",
    ),
    (
        0.05,
        Kind.CLICK,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    (0.02, Kind.CLICK, "Barracuda Sentinel (EE)"),
]


def networks(n: int, rng: random.Random) -> NetworkSet:
    ns = NetworkSet.builtin()
    cidrs = []
    for i in range(n):
        if i % 2:
            p = rng.randint(22, 31)
            base = rng.getrandbits(32) >> (32 - p) << (32 - p)
            cidrs.append(f"{ipaddress.IPv4Address(base)}/{p}")
        else:
            cidrs.append(f"{ipaddress.IPv6Address(0x2A02 << 112 | rng.getrandbits(112))}/64")
    ns.add("apple_egress", "opens", cidrs)
    ns.build()
    return ns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranges", type=int, default=300_000)
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(2)
    ns = networks(args.ranges, rng)
    sent = 1_700_000_000.0
    msg = MessageInfo(1, 7, sent, sent - 60, link_count=4, honeypot_position=4)
    prior = [
        Event(
            1,
            Kind.OPEN if i % 2 else Kind.CLICK,
            sent + 100 + i * 30,
            "GET",
            f"198.51.100.{i}",
            MIX[0][2],
            link_position=1 + i % 3,
            ip_hash=f"h{i}",
            label="human",
        )
        for i in range(10)
    ]
    weights = [w for w, _, _ in MIX]
    work = []
    for _ in range(args.calls):
        _, kind, ua = rng.choices(MIX, weights)[0]
        ip = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        ev = Event(
            1,
            kind,
            sent + rng.uniform(0, 86400),
            "GET",
            ip,
            ua,
            link_position=1 if kind == Kind.CLICK else None,
            ip_hash="h" + ip,
        )
        work.append(
            (
                ev,
                Context(
                    message=msg, prior=prior if kind == Kind.CLICK else (), networks=ns, now=ev.at
                ),
            )
        )
    for ev, ctx in work[:1000]:  # warm the UA caches
        classify(ev, ctx)
    rates = []
    for _ in range(7):
        t = time.perf_counter()
        for ev, ctx in work:
            classify(ev, ctx)
        rates.append(len(work) / (time.perf_counter() - t))
    med = statistics.median(rates)
    print(
        f"classify(): median {med:,.0f} calls/s = {1e6 / med:.2f} us/call "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}; {args.ranges} ranges loaded)"
    )


if __name__ == "__main__":
    main()
