"""One writer for the delivery reports the endpoint receives.

A provider sends a report per message, often two (accepted, then delivered), and
many at once: Kannel's smsbox opens hundreds of connections when a big send is
delivered. Applied one transaction each, they queue on the database's write lock,
the requests pile up past the server's connection limit and the provider gets 503s
(Kannel retries a few times, then drops the report: the message stays `submitted`).
So every report goes through one queue and one writer that applies whatever has
arrived in one transaction; each request still answers only once its own reports
are committed, so an acknowledged report is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from console.clock import Clock
from console.sending.providers.base import DeliveryReport
from console.sending.queue import apply_report, apply_reports

log = logging.getLogger("tocsin.endpoint")

# Reports applied in one transaction at most: a few milliseconds of write lock.
MAX_BATCH = 500

_Pending = tuple[DeliveryReport, "asyncio.Future[bool]"]


class ReportWriter:
    def __init__(self, engine: Engine, clock: Clock, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._clock = clock
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    async def apply(self, reports: Sequence[DeliveryReport]) -> list[bool]:
        """Apply the reports; returns once they are committed (for each: applied)."""
        if not reports:
            return []
        queue = self._started()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        for report in reports:
            future: asyncio.Future[bool] = loop.create_future()
            queue.put_nowait((report, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    def _started(self) -> asyncio.Queue[_Pending]:
        # Created on first use, inside the server's event loop.
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(self._queue), name="report-writer")
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        reports = [report for report, _ in batch]
        try:
            results = await asyncio.to_thread(
                apply_reports, self._engine, reports, self._clock.now()
            )
        except Exception:
            log.warning("a batch of %d reports failed; applying them one by one", len(batch))
            await self._write_one_by_one(batch)
            return
        for (_, future), applied in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(applied)

    async def _write_one_by_one(self, batch: list[_Pending]) -> None:
        # One bad report (or a moment's database error) must not fail the others.
        for report, future in batch:
            try:
                applied = await asyncio.to_thread(
                    apply_report, self._engine, report, self._clock.now()
                )
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(applied)
