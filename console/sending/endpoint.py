"""The worker's HTTP endpoint: delivery reports and inbound SMS, and nothing else.

Bound to 127.0.0.1 by default (a reverse proxy publishes it). Every request must
carry the endpoint token in its URL, or, for Twilio, a valid X-Twilio-Signature;
anything else gets 403 and touches nothing.

The endpoint is on the Internet's side of the town's server, so what it reads is
bounded before it is trusted: the token is checked on the URL before a byte of the
body is read, the body is capped (`worker.max_body_bytes`, 413 beyond) and must
arrive within `worker.read_timeout_seconds` (408), and a report or message that an
authenticated caller got wrong (an id out of range, JSON nested a thousand deep, a
number where text belongs) gets 400, never a 500 and a traceback. A client that
hangs up half-way is simply forgotten.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from console.context import Context
from console.sending.inbound import handle_inbound
from console.sending.providers.base import DeliveryReport, HttpRequest, InboundSms, Provider
from console.sending.report_writer import ReportWriter

log = logging.getLogger("tocsin.endpoint")

# Message ids are 64-bit integers in both databases: a bigger one matches nothing
# and would only make the driver raise.
MAX_MESSAGE_ID = 2**63 - 1
# What the ledger keeps of a provider's reference (Message.provider_ref) and of an
# inbound message's (in the consent proof): longer is not a provider's.
MAX_REF_LENGTH = 100
MAX_FORM_FIELDS = 200
# What a parser may raise on input it did not expect: the caller's mistake, a 400.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, at most `limit` bytes, within `timeout` seconds.

    Raises BodyTooLarge (a declared or actual size over the limit: nothing more is
    read), BodyTooSlow, or starlette's ClientDisconnect.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(chunks)


def to_http_request(request: Request, body: bytes) -> HttpRequest:
    items: tuple[tuple[str, str], ...] = ()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # Parsed here: Starlette's request.form() needs python-multipart for nothing more.
        items = tuple(
            parse_qsl(
                body.decode("utf-8", "replace"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
            )
        )
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        form=dict(items),
        form_items=items,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        url=str(request.url),
    )


def signed_by_provider(provider: Provider, request: Request) -> bool:
    """Twilio signs its callbacks instead of carrying our token."""
    return hasattr(provider, "verify_signature") and "x-twilio-signature" in request.headers


def token_ok(request: Request, token: str) -> bool:
    given = request.query_params.get("token", "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def authorised(provider: Provider, request: HttpRequest, token: str) -> bool:
    """The whole check on a request already read (the signature covers the body)."""
    verify = getattr(provider, "verify_signature", None)
    if verify is not None and "x-twilio-signature" in request.headers:
        return bool(verify(request))
    given = request.query.get("token", "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def check_report(report: DeliveryReport) -> DeliveryReport:
    if report.message_id is not None and not 0 < report.message_id <= MAX_MESSAGE_ID:
        raise ValueError(f"message id out of range: {str(report.message_id)[:30]}")
    if len(report.provider_ref) > MAX_REF_LENGTH:
        raise ValueError(f"provider reference longer than {MAX_REF_LENGTH} characters")
    return report


def check_inbound(sms: InboundSms) -> InboundSms:
    if len(sms.provider_ref) > MAX_REF_LENGTH or len(sms.sender) > MAX_REF_LENGTH:
        raise ValueError(f"sender or reference longer than {MAX_REF_LENGTH} characters")
    return sms


def build_app(
    ctx: Context,
    provider: Provider,
    token: str,
    *,
    max_body_bytes: int | None = None,
    read_timeout: float | None = None,
) -> Starlette:
    settings = ctx.config.worker
    limit = settings.max_body_bytes if max_body_bytes is None else max_body_bytes
    timeout = settings.read_timeout_seconds if read_timeout is None else read_timeout
    report_writer = ReportWriter(ctx.engine, ctx.clock)

    def guarded(
        handler: Callable[[HttpRequest], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.path_params.get("provider") != provider.name:
                return PlainTextResponse("unknown provider", status_code=404)
            signed = signed_by_provider(provider, request)
            # The token is in the URL: a caller without it never gets its body read.
            if not signed and not token_ok(request, token):
                return PlainTextResponse("forbidden", status_code=403)
            try:
                body = await read_body(request, limit, timeout)
            except BodyTooLarge:
                return PlainTextResponse(
                    f"body over {limit} bytes", status_code=413, headers={"connection": "close"}
                )
            except BodyTooSlow:
                return PlainTextResponse(
                    "body too slow", status_code=408, headers={"connection": "close"}
                )
            except ClientDisconnect:
                # Nobody is left to answer; not an error of ours.
                log.debug("client went away while sending its request")
                return Response(status_code=400)
            try:
                http = to_http_request(request, body)
            except ValueError:
                return PlainTextResponse(
                    f"more than {MAX_FORM_FIELDS} form fields", status_code=400
                )
            if signed and not authorised(provider, http, token):
                return PlainTextResponse("forbidden", status_code=403)
            return await handler(http)

        return endpoint

    async def reports(http: HttpRequest) -> Response:
        try:
            found = [check_report(report) for report in provider.parse_report(http)]
        except _MALFORMED as exc:
            return PlainTextResponse(f"unreadable report: {_short(exc)}", status_code=400)
        await report_writer.apply(found)
        return PlainTextResponse("ok")

    async def inbound(http: HttpRequest) -> Response:
        try:
            sms = provider.parse_inbound(http)
            if sms is not None:
                check_inbound(sms)
        except _MALFORMED as exc:
            return PlainTextResponse(f"unreadable message: {_short(exc)}", status_code=400)
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


def _short(exc: BaseException) -> str:
    """The parser's words, bounded: they may quote what the caller sent."""
    if isinstance(exc, RecursionError):
        return "nested too deep"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
