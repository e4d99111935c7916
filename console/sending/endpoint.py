"""The worker's HTTP endpoint: delivery reports and inbound SMS, and nothing else.

Bound to 127.0.0.1 by default (a reverse proxy publishes it). Every request must
carry the endpoint token in its URL, or, for Twilio, a valid X-Twilio-Signature;
anything else gets 403 and touches nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from console.context import Context
from console.sending.inbound import handle_inbound
from console.sending.providers.base import HttpRequest, Provider
from console.sending.queue import apply_report

log = logging.getLogger("tocsin.endpoint")


async def to_http_request(request: Request) -> HttpRequest:
    body = await request.body()
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # Parsed here: Starlette's request.form() needs python-multipart for nothing more.
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        form=form,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        url=str(request.url),
    )


def authorised(provider: Provider, request: HttpRequest, token: str) -> bool:
    verify = getattr(provider, "verify_signature", None)
    if verify is not None and "x-twilio-signature" in request.headers:
        return bool(verify(request))
    given = request.query.get("token", "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def build_app(ctx: Context, provider: Provider, token: str) -> Starlette:
    def guarded(
        handler: Callable[[HttpRequest], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.path_params.get("provider") != provider.name:
                return PlainTextResponse("unknown provider", status_code=404)
            http = await to_http_request(request)
            if not authorised(provider, http, token):
                return PlainTextResponse("forbidden", status_code=403)
            return await handler(http)

        return endpoint

    async def reports(http: HttpRequest) -> Response:
        try:
            found = provider.parse_report(http)
        except ValueError as exc:
            return PlainTextResponse(f"unreadable report: {exc}", status_code=400)
        for report in found:
            await asyncio.to_thread(apply_report, ctx.engine, report, ctx.clock.now())
        return PlainTextResponse("ok")

    async def inbound(http: HttpRequest) -> Response:
        try:
            sms = provider.parse_inbound(http)
        except ValueError as exc:
            return PlainTextResponse(f"unreadable message: {exc}", status_code=400)
        if sms is not None:
            await asyncio.to_thread(handle_inbound, ctx, sms, provider.name)
        return PlainTextResponse("ok")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/reports/{provider}", guarded(reports), methods=["GET", "POST"]),
            Route("/inbound/{provider}", guarded(inbound), methods=["GET", "POST"]),
            Route("/health", health),
        ]
    )
