"""Median lookup time of NetworkSet over 300k synthetic ranges.

Run: PYTHONPATH=src python bench/networks.py [--ranges 300000]
The ranges mimic Apple's egress CSV (docs/classification.md, Networks by kind: 286,946 rows in 2026-07):
half IPv4 /22../31, half IPv6 /45../64, plus the builtin vendor lists, so
overlaps exist. Lookups mix hits and misses of both families.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import time
import tracemalloc

from mailbeacon.classify.networks import NetworkSet


def synthetic(n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        if i % 2:
            plen = rng.randint(22, 31)
            addr = rng.getrandbits(32) & ~((1 << (32 - plen)) - 1)
            out.append(f"{ipaddress.IPv4Address(addr)}/{plen}")
        else:
            plen = rng.randint(45, 64)
            addr = (0x2A02 << 112 | rng.getrandbits(112)) & ~((1 << (128 - plen)) - 1)
            out.append(f"{ipaddress.IPv6Address(addr)}/{plen}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranges", type=int, default=300_000)
    ap.add_argument("--lookups", type=int, default=200_000)
    args = ap.parse_args()
    rng = random.Random(1)
    cidrs = synthetic(args.ranges, rng)
    text = "\n".join(f"{c},US,US-CA,Somewhere," for c in cidrs)

    t0 = time.perf_counter()
    ns = NetworkSet.builtin()
    res = ns.load("apple_egress", text, "apple_csv")
    t1 = time.perf_counter()
    ns.build()
    t2 = time.perf_counter()
    del text
    # Memory of the loaded set alone, measured on a copy (tracing slows loading ~3x).
    tracemalloc.start()
    copy = NetworkSet()
    copy.add("apple_egress", "opens", cidrs)
    mem_lists = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del copy
    tracemalloc.start()
    ns.build()
    mem = mem_lists + tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    # Half the probes inside a loaded range (its first address), half random.
    probes = []
    for i in range(args.lookups):
        if i % 2:
            probes.append(cidrs[rng.randrange(len(cidrs))].split("/")[0])
        elif i % 4:
            probes.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        else:
            probes.append(str(ipaddress.IPv6Address(0x2A02 << 112 | rng.getrandbits(112))))
    lookup = ns.lookup
    hits = sum(1 for p in probes[:1000] if lookup(p))
    samples = []
    for _ in range(15):
        t = time.perf_counter_ns()
        for p in probes:
            lookup(p)
        samples.append((time.perf_counter_ns() - t) / len(probes))
    print(
        f"ranges loaded: {res.loaded} (skipped {res.skipped}); parse {t1 - t0:.2f} s, "
        f"index build {t2 - t1:.2f} s, traced memory {mem / 1e6:.0f} MB"
    )
    print(
        f"segments v4={len(ns._v4.starts)} v6={len(ns._v6.starts)}; "  # type: ignore[union-attr]
        f"hits in first 1000 probes: {hits}"
    )
    print(
        f"median lookup: {statistics.median(samples):.0f} ns "
        f"(min {min(samples):.0f}, max {max(samples):.0f}) over {len(probes)} lookups x 15"
    )


if __name__ == "__main__":
    main()
