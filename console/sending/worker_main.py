"""`tocsin worker`: the long-lived sender process, with its endpoint in the same loop.

SIGTERM (systemd stop) and SIGINT stop claiming; the calls in flight finish and are
recorded before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Iterator, Mapping

import httpx
import uvicorn

from console.audit import append_audit
from console.context import Context
from console.sending.endpoint import build_app
from console.sending.endpoint_server import server_config
from console.sending.providers.base import Provider
from console.sending.worker import Worker
from console.sending.workers import new_owner
from storage.engine import write_session

log = logging.getLogger("tocsin.worker")


class _Server(uvicorn.Server):
    """uvicorn would take SIGTERM for itself; the worker decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def endpoint_token(credentials: object) -> str | None:
    getter = getattr(credentials, "get", None)
    if getter is None:
        return None
    try:
        return str(getter("endpoint", "token"))
    except Exception:
        return None


def build_provider(ctx: Context, environ: Mapping[str, str]) -> tuple[Provider, str]:
    """The configured provider and the token its callbacks must carry."""
    from console.sending.providers.credentials import load_credentials
    from console.sending.providers.registry import make_provider

    credentials = load_credentials(ctx.config.provider, environ)
    token = endpoint_token(credentials)
    if token is None:
        if ctx.config.provider.name != "simulated":
            raise RuntimeError(
                "missing credential endpoint.token: set TOCSIN_ENDPOINT_TOKEN or add "
                "[endpoint] token to the credentials file (providers call back with it)"
            )
        # The simulated provider never calls back over HTTP.
        token = secrets.token_urlsafe(24)
    return make_provider(ctx.config.provider, credentials, ctx.config.worker.public_url), token


async def serve(
    ctx: Context,
    provider: Provider,
    token: str,
    *,
    stop: asyncio.Event | None = None,
    owner: str | None = None,
    listen: bool = True,
) -> Worker:
    """Run the sender and its endpoint until `stop` is set (or a signal arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Not in the main thread (the demo runs the worker in a thread): no signals.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    limits = httpx.Limits(max_connections=ctx.config.provider.concurrency * 2)
    timeout = ctx.config.worker.provider_timeout_seconds
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), limits=limits
    ) as client:
        worker = Worker(ctx, provider, client, owner or new_owner(), stop)
        # The single-sender check comes before the port is taken, so a second worker
        # on SQLite says who holds the lease rather than "address in use".
        await worker.start()
        try:
            server, server_task = (await _listen(ctx, provider, token)) if listen else (None, None)
        except RuntimeError:
            await asyncio.to_thread(worker.leave)
            raise
        endpoint = (
            f"{ctx.config.worker.listen_host}:{ctx.config.worker.listen_port}" if listen else "off"
        )
        log.info(
            "worker %s started: provider %s, endpoint %s", worker.owner, provider.name, endpoint
        )
        await worker.in_ledger(
            _audit,
            ctx,
            "worker.start",
            {
                "owner": worker.owner,
                "provider": provider.name,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "endpoint": endpoint,
            },
        )
        try:
            await worker.run()
        finally:
            if server is not None and server_task is not None:
                server.should_exit = True
                await server_task
            # Said even when the worker stops on an error: the trail shows when
            # nothing was sending. A database that refuses the entry is the worker's
            # own trouble, already on its way out.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    _audit,
                    ctx,
                    "worker.stop",
                    {"owner": worker.owner, "provider": provider.name, "sent": worker.stats.sent},
                )
    log.info("worker %s stopped after %d message(s)", worker.owner, worker.stats.sent)
    return worker


def _audit(ctx: Context, action: str, details: dict[str, object]) -> None:
    with write_session(ctx.engine) as session:
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=ctx.operator,
            action=action,
            target=f"worker:{details['owner']}",
            details=details,
        )


async def _listen(
    ctx: Context, provider: Provider, token: str
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    settings = ctx.config.worker
    server = _Server(server_config(build_app(ctx, provider, token), settings))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            # uvicorn exits (SystemExit) when it cannot bind.
            with contextlib.suppress(BaseException):
                task.result()
            raise RuntimeError(
                f"cannot listen on {settings.listen_host}:"
                f"{settings.listen_port} (in use? see [worker] listen_port)"
            )
        await asyncio.sleep(0.01)
    return server, task


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO: with sendsms that is a password, a full
    phone number and the message body. Only warnings from the HTTP stack."""
    for name in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_worker(ctx: Context, environ: Mapping[str, str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    quiet_http_logs()
    provider, token = build_provider(ctx, os.environ if environ is None else environ)
    asyncio.run(serve(ctx, provider, token))
