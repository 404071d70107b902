"""Read time: how long a reader kept a message open, and its bucket.

The pixel of a direct hit (the reader's own mail client) can be answered
as an animated GIF whose frames keep arriving, one a second; the client
holds the connection while the message is on screen and drops it when the
message is closed, so the connection's life is the read time
(hits/readpixel.py). This module is the pure part: the GIF bytes and the
buckets. No I/O.

Buckets follow the published practice of email analytics vendors (Litmus
Email Analytics: "read" > 8 s, "skimmed" 2-8 s, "glanced/deleted" < 2 s;
docs/read-time.md has the sources); the edges are settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.model import OpenLabel

GLANCED = "glanced"
SKIMMED = "skimmed"
READ = "read"
UNKNOWN = "unknown"
BUCKETS = (GLANCED, SKIMMED, READ)

# The open labels whose hits can be measured: only a reader's own client
# keeps the connection for as long as the message is shown. Proxies and
# prefetchers download the image once and cache it.
MEASURABLE = frozenset({OpenLabel.HUMAN_DIRECT.value})


@dataclass(frozen=True)
class Thresholds:
    glanced_below: float = 2.0
    read_above: float = 8.0

    def bucket(self, seconds: float | None) -> str:
        if seconds is None:
            return UNKNOWN
        if seconds < self.glanced_below:
            return GLANCED
        if seconds > self.read_above:
            return READ
        return SKIMMED


# Set from the settings by whatever loads them (cli.base.settings, web.node):
# the API, exports and webhooks bucket stored seconds with the edges in force.
_current = Thresholds()


def configure(thresholds: Thresholds) -> None:
    global _current
    _current = thresholds


def current() -> Thresholds:
    return _current


def bucket_of(kind: str, label: str | None, seconds: float | None) -> str | None:
    """The ``read_bucket`` of an event: None for anything but an open;
    "unknown" for an open that was not measured or is no longer labelled as
    a direct reader's (relabelled a scanner: its hold was not a read)."""
    if kind != "open":
        return None
    if label not in MEASURABLE:
        return UNKNOWN
    return _current.bucket(seconds)


# -- the streamed GIF ---------------------------------------------------------
#
# The same 1x1 transparent image as track.GIF, cut in three: the head (header,
# screen descriptor, 2-colour table), one frame (graphic control extension with
# a 1 s delay, image descriptor, image data) and the trailer. head + frame is
# already a complete image: a client that stops reading after the first frame,
# or renders while it loads, has a valid 1x1 transparent GIF. Each later frame
# is 23 bytes, so 30 s of reading costs under 1 KB.
HEAD = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
# GCE: disposal "do not dispose" (1), transparent colour 0, delay 100 cs = 1 s.
FRAME = b"!\xf9\x04\x05\x64\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00"
TRAILER = b";"
FRAME_SECONDS = 1.0


def summary(counts: dict[str, int], human_opens: int) -> dict[str, int | float]:
    """Read-time buckets beside human opens: how many of each, and the share
    of human opens that could be measured (proxied and prefetched ones cannot)."""
    out: dict[str, int | float] = {b: int(counts.get(b, 0)) for b in BUCKETS}
    measured = sum(int(counts.get(b, 0)) for b in BUCKETS)
    out["measured"] = measured
    out["unknown"] = max(human_opens - measured, 0)
    out["measured_share"] = round(measured / human_opens, 4) if human_opens > 0 else 0.0
    return out


def count(opens: list[tuple[str | None, float | None]]) -> dict[str, int]:
    """Buckets of (label, read_seconds) opens; only measured direct ones count."""
    counts = dict.fromkeys(BUCKETS, 0)
    for label, seconds in opens:
        if seconds is not None and label in MEASURABLE:
            counts[_current.bucket(seconds)] += 1
    return counts
