"""The relay inside a node: its SMTP listeners and its queue worker."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping

from sqlalchemy import Engine

from mailbeacon.config import Settings
from mailbeacon.relay.queue import QueueWorker
from mailbeacon.relay.server import Handler, Submission, tls_context
from mailbeacon.relay.submit import Relay
from mailbeacon.store import senders as sender_store
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon.relay")


def wanted(settings: Settings, engine: Engine) -> bool:
    """Listen when asked to; send the queue when there are senders at all (a
    node restarted without --smtp-port still sends what another one queued)."""
    return bool(settings.relay_port or settings.relay_smtps_port) or bool(
        sender_store.all_senders(engine)
    )


class RelayService:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        signer: Callable[[], Signer],
        base_url: str,
        sockets: Mapping[int, socket.socket] | None = None,
    ) -> None:
        self.settings = settings
        self.sockets = dict(sockets or {})  # port -> a socket serve bound (and listens on)
        self.relay = Relay(engine, settings, signer, base_url, socket.gethostname())
        self.worker = QueueWorker(self.relay)
        self.servers: list[asyncio.Server] = []

    async def start(self) -> None:
        s = self.settings
        if not log.isEnabledFor(logging.DEBUG):
            # aiosmtpd logs every command line and recipient at INFO: 4 ms of
            # the event loop per 3-recipient message on the bench machine
            # (py-spy, docs/benchmarks.md). Refusals and errors still show.
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        tls = tls_context(s.relay_tls_cert, s.relay_tls_key) if s.relay_tls_cert else None
        if s.relay_smtps_port and tls is None:
            raise SystemExit("--smtps-port needs --smtp-tls-cert and --smtp-tls-key")
        handler = Handler(self.relay)

        def factory(starttls: bool) -> Callable[[], Submission]:
            return lambda: Submission(
                handler,
                hostname=self.relay.hostname,
                data_size_limit=s.relay_max_bytes,
                tls_context=tls if starttls else None,
                loop=loop,
            )

        for port, implicit in ((s.relay_port, False), (s.relay_smtps_port, True)):
            if not port:
                continue
            ssl = tls if implicit else None
            sock = self.sockets.get(port)
            server = await (
                loop.create_server(factory(not implicit), sock=sock, ssl=ssl)
                if sock is not None
                else loop.create_server(factory(not implicit), s.relay_host, port, ssl=ssl)
            )
            self.servers.append(server)
            kind = "smtps (implicit TLS)" if implicit else (
                "SMTP with STARTTLS" if tls else "SMTP (AUTH from loopback only, no TLS)"
            )  # fmt: skip
            print(f"mailbeacon relay: {kind} on {s.relay_host}:{port}", flush=True)
        self.worker.start()

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        await self.worker.stop()
        self.relay.pool.shutdown(wait=False, cancel_futures=True)
        self.relay.lanes.shutdown(wait=False, cancel_futures=True)
        self.relay.upstreams.close()
