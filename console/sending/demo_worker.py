"""The worker the demo runs alongside the console, in a thread of the same process.

A real town runs `tocsin worker` as its own service; the demo keeps to one command.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from console.context import Context
from console.sending.worker import Worker, WorkerBusy

log = logging.getLogger("tocsin.demo")


@dataclass
class DemoWorker:
    ctx: Context
    thread: threading.Thread | None = None
    error: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    worker: Worker | None = None

    def start(self) -> DemoWorker:
        self.thread = threading.Thread(target=self._main, name="tocsin-demo-worker", daemon=True)
        self.thread.start()
        self._ready.wait(timeout=10)
        return self

    def _main(self) -> None:
        from console.sending.worker_main import build_provider, serve

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            provider, token = build_provider(self.ctx, {})
            self.worker = await serve(self.ctx, provider, token, stop=self._stop, listen=False)

        try:
            asyncio.run(run())
        except WorkerBusy as exc:
            self.error = str(exc)
        except Exception as exc:
            log.exception("demo worker stopped")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self.thread is not None:
            self.thread.join(timeout)
