"""config.toml: lookup, parsing and validation, with one clear line per mistake."""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SYSTEM_CONFIG = Path("/etc/tocsin/config.toml")

# Regions a French commune can be in; numbers are parsed against each in turn.
FRENCH_REGIONS = ("FR", "RE", "YT", "GP", "MQ", "GF", "PM", "BL", "MF", "NC", "PF", "WF")
Region = Literal["FR", "RE", "YT", "GP", "MQ", "GF", "PM", "BL", "MF", "NC", "PF", "WF"]


class ConfigError(Exception):
    """A config problem, already phrased as the one line the user sees."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TownConfig(_Strict):
    name: str = "Commune de démonstration"
    region: Region = "FR"
    timezone: str = "Europe/Paris"
    # The name residents see as the sender: 3 to 11 letters and digits, one letter.
    sender_id: str = "MAIRIE"

    @field_validator("sender_id")
    @classmethod
    def _sender_id(cls, value: str) -> str:
        if not re.fullmatch(r"(?=.*[A-Za-z])[A-Za-z0-9]{3,11}", value):
            raise ValueError(
                f"expected 3 to 11 letters and digits, at least one letter (got {value!r})")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"expected an IANA time zone such as Europe/Paris (got {value!r})"
            ) from exc
        return value


class DatabaseConfig(_Strict):
    # Empty means the embedded SQLite file in the user data directory.
    url: str = ""


class ConsoleConfig(_Strict):
    language: Literal["fr", "en"] = "fr"
    page_size: int = Field(default=100, ge=20, le=5000)
    keymap: dict[str, str] = Field(default_factory=dict)


class TopicConfig(_Strict):
    label: str
    legal_basis: Literal["public_safety", "consent"] = "consent"
    # Shown to residents; recorded with each consent.
    consent_text_version: str = "v1"


def _default_topics() -> dict[str, TopicConfig]:
    return {
        "alertes": TopicConfig(label="Alertes", legal_basis="public_safety"),
        "evenements": TopicConfig(label="Événements"),
        "travaux": TopicConfig(label="Travaux"),
        "elections": TopicConfig(label="Élections"),
        "infos": TopicConfig(label="Infos"),
    }


class RolesConfig(_Strict):
    # Each entry is a Unix user name, "@group", or "*" for everyone.
    viewer: list[str] = Field(default_factory=lambda: ["*"])
    operator: list[str] = Field(default_factory=lambda: ["@tocsin"])
    alerter: list[str] = Field(default_factory=lambda: ["@tocsin-alert"])
    admin: list[str] = Field(default_factory=lambda: ["root", "@tocsin-admin"])


class PrivacyConfig(_Strict):
    # Key for the suppression list's keyed hashes; empty = <data dir>/suppression.key.
    hash_key_file: str = ""


class SimulatedConfig(_Strict):
    seed: int = 1789
    latency_ms: int = Field(default=40, ge=0, le=60_000)
    # Shares of messages the simulated operator refuses, or accepts but never delivers.
    failure_rate: float = Field(default=0.01, ge=0, le=1)
    undelivered_rate: float = Field(default=0.02, ge=0, le=1)


class KannelConfig(_Strict):
    # smsbox's sendsms interface; the password comes from the credentials.
    url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str = "tocsin"


class TwilioConfig(_Strict):
    account_sid: str = ""
    # A Messaging Service SID, used instead of the campaign's sender ID when set.
    messaging_service_sid: str = ""
    api_url: str = "https://api.twilio.com"


class OctopushConfig(_Strict):
    api_login: str = ""
    api_url: str = "https://api.octopush.com/v1/public"


class SmsFactorConfig(_Strict):
    api_url: str = "https://api.smsfactor.com"


class ProviderConfig(_Strict):
    name: Literal["simulated", "kannel", "twilio", "octopush", "smsfactor"] = "simulated"
    rate: float = Field(default=20.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=64)
    price_per_segment: float = Field(default=0.045, ge=0)
    # TOML file with the secrets ([kannel] password, [twilio] auth_token,
    # [octopush] api_key, [smsfactor] token, [endpoint] token), readable only by the
    # service user. Environment variables TOCSIN_<PROVIDER>_<KEY> take precedence.
    credentials_file: str = ""
    simulated: SimulatedConfig = Field(default_factory=SimulatedConfig)
    kannel: KannelConfig = Field(default_factory=KannelConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    octopush: OctopushConfig = Field(default_factory=OctopushConfig)
    smsfactor: SmsFactorConfig = Field(default_factory=SmsFactorConfig)


class WorkerConfig(_Strict):
    # Where delivery reports and inbound SMS arrive (Starlette in the worker).
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8765, ge=1, le=65535)
    # The address providers call back, as they see it (behind a reverse proxy...).
    public_url: str = "http://127.0.0.1:8765"
    batch_size: int = Field(default=50, ge=1, le=1000)
    # A message left in `sending` longer than this becomes `uncertain`.
    lease_seconds: int = Field(default=60, ge=5, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=50)
    # How long one provider request may take before it counts as "may have been sent".
    provider_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    # A `submitted` message with no report after this shows as "no report".
    report_timeout_minutes: int = Field(default=60, ge=1)


class Config(_Strict):
    town: TownConfig = Field(default_factory=TownConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    topics: dict[str, TopicConfig] = Field(default_factory=_default_topics)
    roles: RolesConfig = Field(default_factory=RolesConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)

    @field_validator("topics")
    @classmethod
    def _topic_keys(cls, value: dict[str, TopicConfig]) -> dict[str, TopicConfig]:
        for key in value:
            if not key.isidentifier() or not key.islower():
                raise ValueError(f"expected lower-case topic names (got {key!r})")
        if not value:
            raise ValueError("expected at least one topic")
        return value


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tocsin"))


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'tocsin.db'}"


def database_url(config: Config) -> str:
    return config.database.url or default_database_url()


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, then TOCSIN_CONFIG, then /etc/tocsin, then the user config dir."""
    for given in (explicit, environ.get("TOCSIN_CONFIG")):
        if given:
            path = Path(given)
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found")
            return path
    user = Path(platformdirs.user_config_dir("tocsin")) / "config.toml"
    for candidate in (SYSTEM_CONFIG, user):
        if candidate.is_file():
            return candidate
    return None


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"key '{key}': unknown key"
    if kind == "missing":
        return f"key '{key}': missing value"
    if kind in ("model_type", "dict_type"):
        return f"key '{key}': expected a table (got {error.get('input')!r})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        message = message.replace("Input should be", "expected")
    else:
        message = (
            message.replace("Input should be", "expected")
            .replace("expected a valid integer", "expected an integer")
            .replace("expected a valid", "expected a")
        )
    got = error.get("input")
    suffix = f" (got {got!r})" if kind != "value_error" and not isinstance(got, dict) else ""
    return f"key '{key}': {message}{suffix}"


def parse_config(text: str, source: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {_describe(first)}") from exc


def load_config(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    path = find_config_file(explicit, os.environ if environ is None else environ)
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, str(path))
