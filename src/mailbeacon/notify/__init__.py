"""Telling the sender: a durable outbox feeding signed webhooks and emails,
and a live stream of events (server-sent events).

The outbox rows are written by :func:`mailbeacon.notify.hook.tx_hook`
inside the recorder's transaction, so a hit that was acknowledged always has
its notifications; :class:`mailbeacon.notify.worker.Worker` delivers them
at least once, with retries, from every node.
"""

from mailbeacon.notify.hook import EVENT_TYPES, make_tx_hook
from mailbeacon.notify.worker import Worker

__all__ = ["EVENT_TYPES", "Worker", "make_tx_hook"]
