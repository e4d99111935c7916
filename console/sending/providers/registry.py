"""Which provider the config names, built with its secrets and callback URLs.

The worker's endpoint serves `/reports/<provider>` (delivery reports) and
`/inbound/<provider>` (inbound SMS, STOP). Every provider but Twilio proves itself
with the endpoint token in the URL's query (`?token=...`); Twilio signs each request
(X-Twilio-Signature) with the account's auth token instead, so its URLs carry none.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from console.config import ProviderConfig
from console.sending.providers.base import Provider
from console.sending.providers.credentials import Credentials, CredentialsError, env_name
from console.sending.providers.octopush import OctopushProvider
from console.sending.providers.simulated import SimulatedProvider
from console.sending.providers.smsfactor import KIND_PARAM, SmsFactorProvider
from console.sending.providers.twilio import TwilioProvider

TOKEN_PARAM = "token"
# Characters a URL carries unescaped: Kannel reads any `%` in its dlr-url as one of
# its own escapes, so the token must need no percent-encoding.
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def report_url(public_url: str, name: str, token: str | None) -> str:
    """Where `name`'s delivery reports go; with `?token=` unless token is None."""
    url = f"{_base(public_url)}/reports/{name}"
    return f"{url}?{urlencode({TOKEN_PARAM: token})}" if token is not None else url


def inbound_url(public_url: str, name: str, token: str | None, **extra: str) -> str:
    url = f"{_base(public_url)}/inbound/{name}"
    query = ({TOKEN_PARAM: token} if token is not None else {}) | extra
    return f"{url}?{urlencode(query)}" if query else url


def make_provider(config: ProviderConfig, credentials: Credentials, public_url: str) -> Provider:
    """The configured provider. Raises CredentialsError when a secret it needs is missing."""
    name = config.name
    if name == "simulated":
        return SimulatedProvider(config.simulated)
    if name == "kannel":
        # Imported here so the other providers never load it (and its module may
        # evolve on its own).
        from console.sending.providers.kannel import KannelProvider

        token = credentials.get("endpoint", "token")
        if not URL_SAFE.fullmatch(token):
            raise CredentialsError(
                "endpoint.token must be made of letters, digits, '-', '_', '.' or '~' for "
                f"Kannel, which reads '%' escapes in its dlr-url (check "
                f"{env_name('endpoint', 'token')} or {credentials.source or 'the file'})"
            )
        return KannelProvider(
            config.kannel,
            credentials.get("kannel", "password"),
            report_url(public_url, name, token),
        )
    if name == "twilio":
        return TwilioProvider(
            config.twilio,
            credentials.get("twilio", "auth_token"),
            report_url(public_url, name, None),
        )
    if name == "octopush":
        return OctopushProvider(config.octopush, credentials.get("octopush", "api_key"))
    if name == "smsfactor":
        return SmsFactorProvider(config.smsfactor, credentials.get("smsfactor", "token"))
    raise ValueError(f"unknown provider {name!r}")


def callback_urls(
    config: ProviderConfig, credentials: Credentials, public_url: str
) -> dict[str, str]:
    """The URLs to paste into the provider's own interface, by purpose.

    Kannel and Twilio get their report URL with each send; Twilio's inbound URL is set
    on the number in its console; Octopush and SMSFactor take every callback URL from
    their interface. Holds the endpoint token: show it to an admin, never log it.
    """
    name = config.name
    if name == "simulated":
        return {}
    if name == "twilio":
        return {"inbound": inbound_url(public_url, name, None)}
    token = credentials.get("endpoint", "token")
    urls = {
        "reports": report_url(public_url, name, token),
        "inbound": inbound_url(public_url, name, token),
    }
    if name == "octopush":
        # Octopush tells an opt-out from a reply by its fields (stop_date).
        urls["stop"] = urls["inbound"]
    if name == "smsfactor":
        urls["stop"] = inbound_url(public_url, name, token, **{KIND_PARAM: "stop"})
    return urls
