"""Doubles for testing the HTTP providers against their documented contracts: a mock
transport, scripted answers, lost connections."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from console.sending.providers.base import OutgoingSms

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def sms(
    message_id: int,
    to: str = "",
    text: str = "Alerte crue : évacuez la rue basse",
    sender: str = "MAIRIE",
) -> OutgoingSms:
    return OutgoingSms(message_id, to or f"+336{message_id:08d}", text, sender)


def body_of(request: httpx.Request) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(request.content)
    return loaded


def sequence(*steps: Handler) -> tuple[Handler, list[httpx.Request]]:
    """A handler playing `steps` in turn, and the requests it saw."""
    seen: list[httpx.Request] = []
    queue: Iterator[Handler] = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(queue)(request)

    return handler, seen


def raising(exc: type[httpx.RequestError]) -> Handler:
    """A connection that fails the way `exc` says (refused, timed out, reset...)."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("lost", request=request)

    return handler
