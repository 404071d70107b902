"""Named IP range lists with scopes, and a bisect index over all of them.

Apple's egress list alone is ~287k CIDRs (docs/classification.md, Networks by kind, 2026-07), so the
lookup is one ``bisect`` over the boundaries of all lists merged into
disjoint segments, each carrying the (name, scope) pairs that cover it:
overlapping lists and overlapping rows inside a list both resolve in that
single bisect. Measured by bench/networks.py.

Scopes (docs/classification.md, Networks by kind, "Keep each list with ... scope"):
- ``all``: a vendor scanner network; condemns opens and clicks.
- ``clicks``: a whole cloud network (Microsoft, Google); it also carries
  Outlook.com/Gmail image proxies and real users, so only clicks (warmbly
  PR #412, #526).
- ``opens``: only consulted for opens (Apple's relay egress: MPP for a bare
  ``Mozilla/5.0`` open, but ordinary Private Relay browsing for a click).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailbeacon.classify.network_formats import FORMATS, parse
from mailbeacon.classify.network_lists import (
    APPLE_EGRESS,
    BUILTIN_LISTS,
    LISTS,
    OFFICIAL_LISTS,
    cloud_dataset,
)

__all__ = [
    "APPLE_EGRESS",
    "BUILTIN_LISTS",
    "FORMATS",
    "OFFICIAL_LISTS",
    "SCOPES",
    "LoadResult",
    "Match",
    "NetworkSet",
    "parse_cidr",
    "parse_ip",
]

Match = tuple[str, str]  # (list name, scope)
SCOPES = ("all", "clicks", "opens")
_V4_MAPPED = 0xFFFF << 32  # ::ffff:a.b.c.d
_LOW64 = (1 << 64) - 1
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET


def parse_ip(ip: str) -> tuple[int, int] | None:
    """(version, integer) of an address, or None. IPv4-mapped IPv6 is IPv4.

    ``socket.inet_pton`` rather than ``ipaddress``: ~0.2 us against ~1.5 us,
    and it is as strict (no "127.1" shorthands).
    """
    try:
        if ":" not in ip:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
        if "%" in ip:
            ip = ip.split("%", 1)[0]  # zone id, e.g. fe80::1%eth0
        n = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
    except (OSError, ValueError, TypeError):
        return None
    if n >> 32 == 0xFFFF:
        return 4, n - _V4_MAPPED
    return 6, n


@dataclass(frozen=True, slots=True)
class LoadResult:
    name: str
    scope: str
    loaded: int
    skipped: int  # malformed lines or entries


def parse_cidr(text: str) -> tuple[int, int, int] | None:
    """(version, first, last) integers of a CIDR or bare address, or None.

    Hand-written over ``ipaddress.ip_network`` because loading Apple's 287k
    rows took 11 s with it and ~1 s with this (bench/networks.py). Host bits
    are masked off ("1.2.3.4/24" is 1.2.3.0/24), as feeds sometimes carry them.
    """
    addr, sep, plen_s = text.strip().partition("/")
    p = parse_ip(addr)
    if p is None:
        return None
    version, n = p
    bits = 32 if version == 4 and ":" not in addr else 128
    if bits == 128 and version == 4:  # an IPv4-mapped IPv6 network: rebase it
        bits, n = 128, n + _V4_MAPPED
    if not sep:
        plen = bits
    elif plen_s.isdigit() and len(plen_s) <= 3 and int(plen_s) <= bits:
        plen = int(plen_s)
    else:
        return None
    host = (1 << (bits - plen)) - 1
    first = n & ~host
    if bits == 128 and first >> 32 == 0xFFFF and plen >= 96:
        return 4, first - _V4_MAPPED, (first | host) - _V4_MAPPED
    if bits == 128 and version == 4:
        return None  # a mapped network shorter than /96 spans beyond IPv4
    return (4 if bits == 32 else 6), first, first | host


class _List:
    """One named list: ranges as (first, last) int pairs per IP version."""

    __slots__ = ("scope", "v4", "v6")

    def __init__(self, scope: str) -> None:
        self.scope = scope
        # C arrays: 8 bytes an IPv4 range and 32 an IPv6 one (as 64-bit
        # halves), against ~160 as tuples of Python ints: Apple's 287k rows
        # took 33 MB as tuples, 9 MB this way.
        self.v4 = (array("I"), array("I"))
        self.v6 = (array("Q"), array("Q"), array("Q"), array("Q"))

    def add(self, version: int, first: int, last: int) -> None:
        if version == 4:
            self.v4[0].append(first)
            self.v4[1].append(last)
        else:
            fh, fl, lh, ll = self.v6
            fh.append(first >> 64)
            fl.append(first & _LOW64)
            lh.append(last >> 64)
            ll.append(last & _LOW64)

    def ranges(self, version: int) -> Iterable[tuple[int, int]]:
        if version == 4:
            return zip(*self.v4, strict=True)
        return (((a << 64) | b, (c << 64) | d) for a, b, c, d in zip(*self.v6, strict=True))

    def __len__(self) -> int:
        return len(self.v4[0]) + len(self.v6[0])

    def copy(self) -> _List:
        c = _List(self.scope)
        c.v4 = (array("I", self.v4[0]), array("I", self.v4[1]))
        c.v6 = (
            array("Q", self.v6[0]),
            array("Q", self.v6[1]),
            array("Q", self.v6[2]),
            array("Q", self.v6[3]),
        )
        return c


class _Index:
    """Disjoint runs: ``starts[i]`` begins a run covered by ``members[i]``.

    Keys are kept in a C array, not a list of ints: the bisect then touches
    one contiguous block instead of ~19 scattered objects (measured 520 ns
    against 790 ns per bisect over 300k IPv4 keys). IPv6 keys are the top 64
    bits; when some boundary is finer than /64 (AWS and Azure publish /120s
    and /128s) the low 64 bits go in a second array, searched only inside the
    run of equal top halves, so the keys stay C arrays either way (a list of
    Python ints instead doubled the memory and slowed every IPv6 lookup).
    """

    __slots__ = ("starts", "lows", "members", "shift")

    def __init__(self, lists: dict[str, _List], version: int) -> None:
        # Sweep line over +1 at the first address and -1 after the last:
        # O(n log n) once per rebuild, so a lookup never walks overlaps.
        bits = 32 if version == 4 else 128
        events: list[tuple[int, int, Match]] = []
        for name, lst in lists.items():
            m = (name, lst.scope)
            for s, e in lst.ranges(version):
                events.append((s, 1, m))
                events.append((e + 1, -1, m))
        events.sort(key=lambda t: t[0])
        active: dict[Match, int] = {}
        interned: dict[tuple[Match, ...], tuple[Match, ...]] = {(): ()}
        points: list[int] = []
        self.members: list[tuple[Match, ...]] = []
        i, n = 0, len(events)
        while i < n:
            point = events[i][0]
            while i < n and events[i][0] == point:
                _, delta, m = events[i]
                c = active.get(m, 0) + delta
                if c:
                    active[m] = c
                else:
                    active.pop(m, None)
                i += 1
            key = tuple(sorted(active))
            cur = interned.setdefault(key, key)
            if point >> bits or (self.members and self.members[-1] is cur):
                continue  # past the address space, or adjacent runs of the same lists
            points.append(point)
            self.members.append(cur)
        low64 = _LOW64
        self.shift = 0
        self.lows: array[int] | None = None
        self.starts: array[int]
        if version == 4:
            self.starts = array("I", points)
        else:
            self.shift = 64
            self.starts = array("Q", (p >> 64 for p in points))
            if any(p & low64 for p in points):
                self.lows = array("Q", (p & low64 for p in points))


class NetworkSet:
    """Named IP range lists and one index over them.

    ``load``/``add``/``remove`` mark the index stale; the next ``lookup``
    (or an explicit ``build()``) rebuilds it. A rebuild over 300k ranges
    takes about a second, so a server should build a new set off the hot
    path and swap the reference.
    """

    def __init__(self) -> None:
        self._lists: dict[str, _List] = {}
        self._v4: _Index | None = None
        self._v6: _Index | None = None

    @classmethod
    def builtin(cls) -> NetworkSet:
        """The vendor lists of BUILTIN_LISTS plus the offline cloud dataset.

        Parsed once per process (~0.7 s for ~38k cloud ranges) and shared
        between sets: ``add`` copies a shared list before changing it, so
        loading into one set never changes another.
        """
        ns = cls()
        ns._lists.update(_builtin_lists())  # shared; add() copies before changing one
        if (cached := _BUILT[0]) is not None:  # a fresh builtin set reuses the index
            ns._v4, ns._v6 = cached
        return ns

    def build(self) -> None:
        self._v4 = _Index(self._lists, 4)
        self._v6 = _Index(self._lists, 6)

    # -- loading -----------------------------------------------------------

    def add(self, name: str, scope: str, cidrs: Iterable[str], *, replace: bool = True) -> int:
        """Add CIDRs (or bare addresses) to list ``name``; returns how many were skipped."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
        if replace or name not in self._lists:
            self._lists[name] = _List(scope)
        elif self._lists[name] is _BUILTIN.get(name):
            self._lists[name] = self._lists[name].copy()
        lst = self._lists[name]
        lst.scope = scope
        skipped = 0
        for c in cidrs:
            r = parse_cidr(c) if isinstance(c, str) else None
            if r is None:
                skipped += 1
            else:
                lst.add(*r)
        self._v4 = self._v6 = None
        return skipped

    def load(
        self, name: str, data: str | bytes | Path, fmt: str, scope: str | None = None
    ) -> LoadResult:
        """Replace list ``name`` with the ranges parsed from ``data``.

        ``data`` is the file content (str/bytes) or a Path. ``scope`` defaults
        to the one in OFFICIAL_LISTS, else ``all``.
        """
        if isinstance(data, Path):
            data = data.read_bytes()
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        if scope is None:
            scope = OFFICIAL_LISTS[name][2] if name in OFFICIAL_LISTS else "all"
        cidrs, bad = parse(text, fmt)
        skipped = bad + self.add(name, scope, cidrs)
        return LoadResult(name, scope, len(self._lists[name]), skipped)

    def remove(self, name: str) -> None:
        self._lists.pop(name, None)
        self._v4 = self._v6 = None

    def names(self) -> dict[str, tuple[str, int]]:
        """list name -> (scope, number of ranges)."""
        return {n: (lst.scope, len(lst)) for n, lst in self._lists.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._lists

    # -- lookup --------------------------------------------------------------

    def lookup(self, ip: str) -> tuple[Match, ...]:
        """Every (list name, scope) whose ranges contain ``ip``; () if none or invalid."""
        if self._v4 is None or self._v6 is None:
            self.build()
        idx = self._v4
        assert idx is not None and self._v6 is not None
        if ":" not in ip:  # the IPv4 path inlined: ~30 % of a lookup was call overhead
            try:
                n = int.from_bytes(_inet_pton(_AF_INET, ip), "big")
            except (OSError, ValueError, TypeError):
                return ()
        else:
            p = parse_ip(ip)
            if p is None:
                return ()
            if p[0] == 6:
                idx = self._v6
            n = p[1]
        key = n >> idx.shift
        starts = idx.starts
        i = bisect_right(starts, key) - 1
        lows = idx.lows
        if lows is not None and i >= 0 and starts[i] == key:
            # Boundaries inside this /64: search the low halves of its run.
            first = bisect_left(starts, key, 0, i)
            i = bisect_right(lows, n & _LOW64, first, i + 1) - 1
            if i < first:
                i = first - 1
        return idx.members[i] if i >= 0 else ()

    # -- persistence ---------------------------------------------------------

    def to_rows(self) -> list[tuple[str, str, str]]:
        """(name, scope, cidr) rows, for the caller to persist."""
        rows: list[tuple[str, str, str]] = []
        for name, lst in self._lists.items():
            for version, cls in ((4, ipaddress.IPv4Address), (6, ipaddress.IPv6Address)):
                for s, e in lst.ranges(version):
                    for net in ipaddress.summarize_address_range(cls(s), cls(e)):
                        rows.append((name, lst.scope, str(net)))
        return rows

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str]]) -> NetworkSet:
        ns = cls()
        grouped: dict[str, tuple[str, list[str]]] = {}
        for name, scope, cidr in rows:
            grouped.setdefault(name, (scope, []))[1].append(cidr)
        for name, (scope, cidrs) in grouped.items():
            ns.add(name, scope, cidrs)
        return ns


# -- the builtin set, parsed once per process ------------------------------------

_builtin_lock = threading.Lock()
_BUILTIN: dict[str, _List] = {}
_BUILT: list[tuple[_Index, _Index] | None] = [None]


def _builtin_lists() -> dict[str, _List]:
    """BUILTIN_LISTS and the cloud dataset as parsed lists, with their index."""
    with _builtin_lock:
        if not _BUILTIN:
            lists: dict[str, _List] = {}
            sources = dict(BUILTIN_LISTS)
            for name, cidrs in cloud_dataset()[1].items():
                sources[name] = (LISTS[name].scope, cidrs)
            for name, (scope, cidrs) in sources.items():
                lst = lists[name] = _List(scope)
                for c in cidrs:
                    r = parse_cidr(c)
                    if r is not None:
                        lst.add(*r)
            _BUILT[0] = (_Index(lists, 4), _Index(lists, 6))
            _BUILTIN.update(lists)
    return _BUILTIN
