"""Prometheus metrics, in a registry of our own (served at /metrics).

Children with fixed labels are bound once here: ``Counter.labels()`` takes a
lock and a dict lookup, which the hot path should not pay per hit.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric

from mailbeacon.model import Unrecorded

# The *_created series double the output and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client has no types here

REGISTRY = CollectorRegistry(auto_describe=True)


class LoopCounter:
    """A counter for the event loop thread only: a plain int, no lock.

    prometheus_client's Counter takes a lock per ``inc()``; on the pixel path
    that was ~4 % of the loop's samples (bench/pixel with py-spy). Every
    increment here happens on the one event loop thread, so an int is safe.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


HITS_OPEN, HITS_CLICK = LoopCounter(), LoopCounter()
REJECTED_OPEN, REJECTED_CLICK = LoopCounter(), LoopCounter()


class _LoopCounters:
    """Exposes the loop counters at scrape time."""

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily("mailbeacon_hits", "Tracking requests answered", labels=["kind"])
        hits.add_metric(["open"], HITS_OPEN.value)
        hits.add_metric(["click"], HITS_CLICK.value)
        rejected = CounterMetricFamily(
            "mailbeacon_rejected_tokens",
            "Tracking requests whose token did not verify (nothing recorded)",
            labels=["kind"],
        )
        rejected.add_metric(["open"], REJECTED_OPEN.value)
        rejected.add_metric(["click"], REJECTED_CLICK.value)
        yield hits
        yield rejected


REGISTRY.register(_LoopCounters())

UNRECORDED = Counter(
    "mailbeacon_unrecorded_hits_total",
    "Valid hits answered with X-Mailbeacon-Recorded: no",
    ["reason"],
    registry=REGISTRY,
)
UNRECORDED_BY: dict[str, Counter] = {
    r.value: UNRECORDED.labels(reason=r.value)
    for r in Unrecorded
    if r not in (Unrecorded.BAD_TOKEN, Unrecorded.BAD_REQUEST)  # not valid hits
}
UNRECORDED_TIMEOUT = UNRECORDED_BY[Unrecorded.COMMIT_TIMEOUT]

DEAD_LETTERS = Counter(
    "mailbeacon_dead_letters_total",
    "Hits the store refused for their data, kept in the dead_letters table",
    registry=REGISTRY,
)

DROPPED = Counter(
    "mailbeacon_dropped_events_total",
    "Unacknowledged events given up on (store down until shutdown or backlog full)",
    registry=REGISTRY,
)

# Read time (docs/read-time.md).
READ_STREAMS = Gauge(
    "mailbeacon_read_streams",
    "Streamed pixels open now (read_time_streams caps them)",
    registry=REGISTRY,
)
READ_FRAMES = Counter(
    "mailbeacon_read_frames_total",
    "Frames sent by streamed pixels (the first, complete image included)",
    registry=REGISTRY,
)
READ_STREAMS_REFUSED = Counter(
    "mailbeacon_read_streams_refused_total",
    "Direct opens answered with the plain GIF because read_time_streams were all in use",
    registry=REGISTRY,
)
READ_TIMES_DROPPED = Counter(
    "mailbeacon_read_times_dropped_total",
    "Measured read times not written (store down past queue_max, or refused)",
    registry=REGISTRY,
)

BATCH_SIZE = Histogram(
    "mailbeacon_batch_size",
    "Events per group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "mailbeacon_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
# Background jobs (the outbox, the relay queue, the mailbox supervisor, the
# reminders): a round ends after its pass, failed or not. A job whose count
# stands still is stuck or not running on this node; tests wait on it
# instead of sleeping ("nothing more happened in two rounds").
JOB_ROUNDS = Counter(
    "mailbeacon_job_rounds_total",
    "Passes each background job has finished on this node",
    ["job"],
    registry=REGISTRY,
)
QUEUE = Gauge("mailbeacon_queue_events", "Events waiting for the writer", registry=REGISTRY)
STORE_UP = Gauge("mailbeacon_store_up", "1 when the last commit succeeded", registry=REGISTRY)


def render() -> bytes:
    return generate_latest(REGISTRY)
