"""config.toml: lookup, parsing and validation, with one clear line per mistake."""

from __future__ import annotations

import os
import re
import stat
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from console.composing.composer import PLACEHOLDERS, placeholders_in
from console.regions import FRENCH_REGIONS as FRENCH_REGIONS

# A sender name residents see: letters and digits, 3 to 11, at least one letter (what
# operators accept). The config and every campaign check it here.
SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{3,11}")


def is_sender_id(value: str) -> bool:
    return SENDER_ID.fullmatch(value) is not None


SYSTEM_CONFIG = Path("/etc/tocsin/config.toml")

# Regions a French commune can be in; numbers are parsed against each in turn.
Region = Literal["FR", "RE", "YT", "GP", "MQ", "GF", "PM", "BL", "MF", "NC", "PF", "WF"]


class ConfigError(Exception):
    """A config problem, already phrased as the one line the user sees."""


class _KeyedError(ValueError):
    """A validation error about another key than the one being validated: a check
    across sections (`alert.topic` against `topics`) or one entry of a table (a
    template). `key` replaces the error's location; `suffix` extends it."""

    def __init__(
        self, message: str, *, key: tuple[str, ...] = (), suffix: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.key = key
        self.suffix = suffix


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
        if not is_sender_id(value):
            raise ValueError(
                f"expected 3 to 11 letters and digits, at least one letter (got {value!r})"
            )
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


# Appended to every message of a consent topic that does not set its own: residents
# who opted in must be told how to opt out. GSM-7 (é is in the basic table).
DEFAULT_STOP_MENTION = "Désinscription : répondez STOP"


class TopicConfig(_Strict):
    label: str
    legal_basis: Literal["public_safety", "consent"] = "consent"
    # Shown to residents; recorded with each consent.
    consent_text_version: str = "v1"
    # Label shown to operators -> text with {commune} {date} {heure} {lieu} {zone}.
    templates: dict[str, str] = Field(default_factory=dict)
    # Appended on its own line to every message of the topic; "" for none. When
    # unset: DEFAULT_STOP_MENTION for a consent topic, "" for public safety.
    stop_mention: str = ""
    # SMS words a resident sends to opt in (accents, case and spacing ignored). When
    # unset: "OUI <TOPIC>" and "INSCRIPTION <TOPIC>" for a consent topic, none for
    # public safety (it needs no opt-in); filled in by Config, which knows the key.
    keywords: list[str] = Field(default_factory=list)
    # Residents are due for erasure this long after their last interaction.
    retention_months: int = Field(default=36, ge=1, le=1200)

    @model_validator(mode="before")
    @classmethod
    def _default_stop_mention(cls, data: Any) -> Any:
        # A town that redefines its topics must not lose the opt-out line silently.
        if isinstance(data, dict) and "stop_mention" not in data:
            basis = data.get("legal_basis", "consent")
            data = {**data, "stop_mention": DEFAULT_STOP_MENTION if basis == "consent" else ""}
        return data

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        for word in value:
            if not re.search(r"[A-Za-z0-9]", word):
                raise ValueError(f"expected words a resident can type (got {word!r})")
        return value

    @field_validator("templates")
    @classmethod
    def _known_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        for label, template in value.items():
            if not label.strip():
                raise _KeyedError("expected a label shown to operators (got '')", suffix=(label,))
            if not template.strip():
                raise _KeyedError("expected the text of the template (got '')", suffix=(label,))
            for name in placeholders_in(template):
                if name not in PLACEHOLDERS:
                    raise _KeyedError(
                        f"unknown placeholder {{{name}}} (expected {known})", suffix=(label,)
                    )
        return value


# The emergency templates every town starts with: plain French, in GSM-7 (no ê â î ô
# ç, so 160 characters per SMS rather than 70), each within 2 SMS once filled.
ALERT_TEMPLATES: Mapping[str, str] = {
    "Inondation": (
        "{commune} - ALERTE CRUE : montée rapide des eaux ({zone}). Éloignez-vous des "
        "cours d'eau, ne prenez pas la voiture, n'allez pas dans les sous-sols, "
        "montez à l'étage. Message de la mairie du {date} à {heure}."
    ),
    "Accident de la route": (
        "{commune} - Accident de la route ({lieu}) : circulation coupée depuis {heure}. "
        "Évitez le secteur, suivez la déviation et laissez passer les secours. Merci de "
        "votre patience."
    ),
    "Intempéries": (
        "{commune} - ALERTE MÉTÉO le {date} : orages et vents violents attendus. Limitez "
        "vos déplacements, rentrez ou attachez les objets qui peuvent s'envoler et ne "
        "vous abritez pas sous les arbres."
    ),
    "Grève scolaire": (
        "{commune} - Grève le {date} dans les écoles : la mairie assure un service "
        "minimum d'accueil des enfants à {lieu} de 8h30 à 16h30. Cantine non assurée, "
        "prévoyez un repas."
    ),
    "Coupure d'eau": (
        "{commune} - Coupure d'eau le {date} à partir de {heure} ({zone}) pour une "
        "réparation urgente sur le réseau. Faites une réserve d'eau. Retour prévu en "
        "fin de journée."
    ),
    "Confinement": (
        "{commune} - ALERTE : confinement immédiat ({zone}). Rentrez à l'intérieur sans "
        "attendre, fermez portes, volets et ventilations. N'allez pas chercher vos "
        "enfants à l'école. Écoutez la radio. Ne téléphonez qu'en cas d'urgence."
    ),
}


def default_keywords(key: str) -> list[str]:
    word = key.upper()
    return [f"OUI {word}", f"INSCRIPTION {word}"]


def _default_topics() -> dict[str, TopicConfig]:
    return {
        "alertes": TopicConfig(
            label="Alertes", legal_basis="public_safety", templates=dict(ALERT_TEMPLATES)
        ),
        "evenements": TopicConfig(label="Événements", keywords=default_keywords("evenements")),
        "travaux": TopicConfig(label="Travaux", keywords=default_keywords("travaux")),
        "elections": TopicConfig(label="Élections", keywords=default_keywords("elections")),
        "infos": TopicConfig(label="Infos", keywords=default_keywords("infos")),
    }


class ConsentConfig(_Strict):
    # Answer an SMS keyword opt-in with a confirmation SMS (a message of the send
    # ledger like any other, on the topic it opted in to).
    confirm_keyword: bool = False
    # {sujet} is the topic's label.
    confirmation_text: str = "Inscription enregistrée : {sujet}. Désinscription : répondez STOP"
    # Consents from a rented list lapse this long after the residents gave them,
    # unless `tocsin list add --expiry-months` says otherwise.
    list_expiry_months: int = Field(default=12, ge=1, le=120)


class AlertConfig(_Strict):
    # The topic emergency sends (`!` in the console) use.
    topic: str = "alertes"


class RolesConfig(_Strict):
    # Each entry is a Unix user name, "@group", or "*" for everyone.
    viewer: list[str] = Field(default_factory=lambda: ["*"])
    operator: list[str] = Field(default_factory=lambda: ["@tocsin"])
    alerter: list[str] = Field(default_factory=lambda: ["@tocsin-alert"])
    admin: list[str] = Field(default_factory=lambda: ["root", "@tocsin-admin"])


class PrivacyConfig(_Strict):
    # Key for the suppression list's keyed hashes; empty = <data dir>/suppression.key.
    hash_key_file: str = ""


class ServiceConfig(_Strict):
    # The Unix user the service runs as (it alone may open the database, the key and
    # the credentials); empty: no service, every command runs in the caller's process
    # (the demo, a single-user install).
    user: str = ""
    # Where `tocsin service` listens; operators' commands and consoles go through it.
    socket: str = "/run/tocsin/console.sock"


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
    # The endpoint: a callback's body over this gets 413 (nothing more is read).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # A request's headers, and then its body, must arrive within this (else 408 or
    # the connection closed), so slow clients cannot hold connections open.
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)


_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError(f"expected a time such as 08:00 (got {value!r})")
    return value


class SendRulesConfig(_Strict):
    """When a planned send of a topic may go out (town time). The alert topic passes
    every rule (each pass is audited)."""

    # Nothing between quiet_start and quiet_end; equal values switch quiet hours off.
    quiet_start: str = "20:00"
    quiet_end: str = "08:00"
    # Whether sends are allowed on Sundays and on public holidays.
    sundays: bool = False
    holidays: bool = False

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return _check_hhmm(value)


class FatigueConfig(_Strict):
    """At most this many messages per resident, across topics (alerts exempt but
    counted): the town's calendar day, its last 7 days, its last 30 days."""

    per_day: int = Field(default=1, ge=1)
    per_7_days: int = Field(default=2, ge=1)
    per_30_days: int = Field(default=6, ge=1)


class ElectionConfig(_Strict):
    name: str
    first_round: date
    second_round: date | None = None


class PlanningConfig(_Strict):
    # "Best slots", when messages are read: "DAYS HH:MM" with DAYS one day or a range
    # (mon-fri, sat).
    best_slots: list[str] = Field(
        default_factory=lambda: ["mon-fri 12:15", "mon-fri 18:30", "sat 10:00"]
    )
    # Reminders of an event, in days before it (J-7, J-1).
    reminder_offsets: list[str] = Field(default_factory=lambda: ["J-7", "J-1"])
    # An occurrence later than this (the worker was down) is not sent: it waits,
    # shown as missed, for the operator (tocsin plan resolve).
    grace_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # The `holidays` package's subdivision: "57" Moselle, "67"/"68" Alsace ("6AE"),
    # "974" Réunion... Empty: from town.region (the overseas départements).
    holidays_subdivision: str = ""
    # The rules of every topic but the alert topic, and per-topic replacements.
    rules: SendRulesConfig = Field(default_factory=SendRulesConfig)
    topic_rules: dict[str, SendRulesConfig] = Field(default_factory=dict)
    fatigue: FatigueConfig = Field(default_factory=FatigueConfig)
    # Elections: from the first day of the sixth month before the election month
    # (Code électoral L52-1) planning a send of these topics asks for a justification...
    justification_topics: list[str] = Field(default_factory=lambda: ["evenements", "infos"])
    # ...and from 00:00 on the eve of each round until the polls close (L49) only the
    # alert topic and these may send.
    election_topics: list[str] = Field(default_factory=lambda: ["elections"])
    polls_close: str = "20:00"
    elections: list[ElectionConfig] = Field(default_factory=list)

    @field_validator("polls_close")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return _check_hhmm(value)

    @field_validator("best_slots")
    @classmethod
    def _slots(cls, value: list[str]) -> list[str]:
        for slot in value:
            parts = slot.split()
            days = parts[0].split("-") if len(parts) == 2 else []
            if not days or len(days) > 2 or any(day not in _DAYS for day in days):
                raise ValueError(f'expected "mon-fri 12:15" or "sat 10:00" (got {slot!r})')
            _check_hhmm(parts[1])
        return value

    @field_validator("reminder_offsets")
    @classmethod
    def _offsets(cls, value: list[str]) -> list[str]:
        for offset in value:
            if not re.fullmatch(r"J-[0-9]{1,3}", offset):
                raise ValueError(f"expected offsets such as J-7 (got {offset!r})")
        return value


class Config(_Strict):
    town: TownConfig = Field(default_factory=TownConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    topics: dict[str, TopicConfig] = Field(default_factory=_default_topics)
    roles: RolesConfig = Field(default_factory=RolesConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    alert: AlertConfig = Field(default_factory=AlertConfig)
    planning: PlanningConfig = Field(default_factory=PlanningConfig)
    consent: ConsentConfig = Field(default_factory=ConsentConfig)

    def topic_keywords(self, key: str) -> list[str]:
        return list(self.topics[key].keywords)

    @model_validator(mode="before")
    @classmethod
    def _default_keywords(cls, data: Any) -> Any:
        # A topic's default keywords are made of its key, which only Config knows.
        if not isinstance(data, dict) or not isinstance(data.get("topics"), dict):
            return data
        topics = {}
        for key, topic in data["topics"].items():
            if isinstance(topic, dict) and "keywords" not in topic and isinstance(key, str):
                basis = topic.get("legal_basis", "consent")
                words = default_keywords(key) if basis == "consent" else []
                topic = {**topic, "keywords": words}
            topics[key] = topic
        return {**data, "topics": topics}

    @model_validator(mode="after")
    def _alert_topic_exists(self) -> Config:
        if self.alert.topic not in self.topics:
            names = ", ".join(repr(name) for name in self.topics)
            raise _KeyedError(
                f"expected the topic emergency alerts use, one of {names} "
                f"(got {self.alert.topic!r})",
                key=("alert", "topic"),
            )
        return self

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


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir("tocsin")) / "config.toml"


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, then TOCSIN_CONFIG, then /etc/tocsin, then the user config dir."""
    for given in (explicit, environ.get("TOCSIN_CONFIG")):
        if given:
            path = Path(given)
            if not path.is_file():
                raise ConfigError(f"{path}: config file not found")
            return path
    for candidate in (system_config(environ), user_config_file()):
        if candidate.is_file():
            return candidate
    return None


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    keyed = error.get("ctx", {}).get("error")
    if isinstance(keyed, _KeyedError):
        loc = keyed.key or (*loc, *keyed.suffix)
    key = ".".join(_toml_key(part) for part in loc) or "(top level)"
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


def _toml_key(part: str) -> str:
    # Template labels hold spaces and accents: name them as they are written in TOML.
    return part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'


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


# Only a file root owns (and nobody else may write) can say who is admin, where the
# database is, which key and which provider: the system config, or one root keeps
# beside it. Tests point this at their own user.
TRUSTED_OWNER = 0


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path | None
    # Tables of a user's own config that were not applied (the system config rules).
    ignored: tuple[str, ...] = ()


def system_config(environ: Mapping[str, str] | None = None) -> Path:
    """The town's config: /etc/tocsin/config.toml, or the file TOCSIN_SYSTEM_CONFIG
    names if root owns it and nobody else may write it (a second town on one server,
    the security tests). A user cannot make such a file, so cannot escape the town's
    config this way."""
    given = (os.environ if environ is None else environ).get("TOCSIN_SYSTEM_CONFIG")
    if given:
        path = Path(given)
        if path.is_file() and trusted(path):
            return path
    return SYSTEM_CONFIG


def trusted(path: Path) -> bool:
    """Owned by root and writable by nobody else."""
    info = path.stat()
    return info.st_uid == TRUSTED_OWNER and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_configuration(
    explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """The configuration in force, and what of a user's own file was set aside.

    Without a system config (/etc/tocsin/config.toml: a single-user install, the
    demo) the file found is the configuration. Once the system config exists it is
    the town's: a user's own file (--config, TOCSIN_CONFIG, the user config dir)
    only sets that user's [console] preferences, unless root owns it and nobody
    else may write it. Roles are a security boundary; a config of one's own must not
    make oneself admin.
    """
    environ = os.environ if environ is None else environ
    path = find_config_file(explicit, environ)
    if path is None:
        return LoadedConfig(Config(), None)
    raw = _read_toml(path)
    system = system_config(environ)
    if not system.is_file():
        return LoadedConfig(_validated(raw, path), path)
    if not trusted(system):
        raise ConfigError(
            f"{system}: must be owned by root and writable by nobody else "
            f"(chown root: {system}; chmod 644 {system}); roles depend on it"
        )
    if path == system:
        # The town's config; the user's preferences still come from their own dir.
        user = user_config_file()
        if not user.is_file() or user == system:
            return LoadedConfig(_validated(raw, path), path)
        path, raw = user, _read_toml(user)
    elif trusted(path):
        return LoadedConfig(_validated(raw, path), path)
    own = _validated({"console": raw.get("console", {})}, path)
    town = _validated(_read_toml(system), system)
    ignored = tuple(sorted(key for key in raw if key != "console"))
    return LoadedConfig(town.model_copy(update={"console": own.console}), system, ignored)


def load_config(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    return read_configuration(explicit, environ).config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _validated(raw: dict[str, Any], path: Path) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc.errors()[0])}") from exc
