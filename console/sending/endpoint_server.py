"""The endpoint's HTTP server: uvicorn with limits fit for a port open to anyone.

- Headers: at most 16 KiB (`h11_max_incomplete_event_size`), complete within
  `worker.read_timeout_seconds` of the connection opening or of the previous
  answer. uvicorn's own keep-alive timeout only runs between requests, so a client
  trickling a header line every few seconds would hold its connection for ever.
- Bodies: the app caps and times them (console.sending.endpoint).
- Connections: past `MAX_CONNECTIONS` uvicorn answers 503 at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from console.config import WorkerConfig

MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
# Kannel's smsbox opens a connection per delivery report, hundreds at once at the
# end of a big send; past this many, uvicorn answers 503 and Kannel gives up after
# its retries. Far above that burst, far below the unit's LimitNOFILE.
MAX_CONNECTIONS = 4096


def header_deadline_protocol(timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are
    not complete `timeout` seconds after it opened or after the previous answer."""

    class HeaderDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _answered: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self.cycle is not self._answered:
                # The headers are in; the body has its own timeout, in the app.
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._answered = self.cycle
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def server_config(app: Starlette, settings: WorkerConfig, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.listen_host,
        "port": settings.listen_port,
        "log_level": "warning",
        "backlog": 2048,
        "lifespan": "off",
        "ws": "none",
        "http": header_deadline_protocol(settings.read_timeout_seconds),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": MAX_CONNECTIONS,
        "server_header": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
