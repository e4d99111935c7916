"""What every verb group shares: exit statuses, the one error type, the context, JSON.

Exit status: 0 done, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from console.config import Config
from console.i18n import Translator

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from console.context import Context
    from console.sending.campaigns import Audience
    from console.sending.status import PostgresqlDatabase

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """The one line a verb ends with, already in the configured language."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


# The command line being run, for the audit of a refusal.
_command: ContextVar[str] = ContextVar("tocsin_command", default="")


def running(argv: Sequence[str]) -> None:
    """Remember the command line the verbs' contexts are for."""
    _command.set(shlex.join(["tocsin", *argv]))


def translator(config: Config) -> Translator:
    """The verbs speak the configured language, as the console does."""
    return Translator(config.console.language)


def context(config: Config) -> Context:
    """The context a verb runs with: a database problem is one line and exit 1, a key
    file Tocsin cannot use (unreadable, open to others, not this database's) one line
    and exit 2, like any configuration problem."""
    from console.bootstrap import build_context

    with _startup_errors():
        ctx = build_context(config)
    ctx.attempt = _command.get()
    return ctx


def reading_database(config: Config) -> Engine | Path | PostgresqlDatabase:
    """The database for a verb that only reads (console.bootstrap.reading_database),
    its problems worded as `context` words them."""
    from console.bootstrap import reading_database

    with _startup_errors():
        return reading_database(config)


@contextmanager
def _startup_errors() -> Iterator[None]:
    from console.bootstrap import StartupError
    from console.consent.suppression import HashKeyError

    try:
        yield
    except StartupError as exc:
        raise CliError(str(exc)) from exc
    except HashKeyError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def confirm_typed(t: Translator, count: int, what: str, stdin: TextIO, stderr: TextIO) -> None:
    """Mass and destructive actions: the operator types the count they will affect.
    `what` is already in the operator's language."""
    stderr.write(t("cli.confirm", what=what, count=count))
    stderr.flush()
    if stdin.readline().strip() != str(count):
        raise CliError(t("cli.not_confirmed"))


def parse_when(text: str, config: Config) -> datetime:
    """An ISO date or date-time; without a zone, the town's."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(translator(config)("cli.bad_when", text=repr(text)), EXIT_USAGE) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(config.town.timezone))
    return when


def print_json(data: object) -> None:
    """Stable JSON, with every control character escaped (see cli.terminal)."""
    from console.cli.terminal import json_text

    print(json_text(data))


def audience_from_args(args: argparse.Namespace) -> Audience:
    """--all, --zone, --group and --to, as `send` and `plan add` both take them."""
    from console.sending.campaigns import Audience

    return Audience(
        everyone=args.all,
        zones=tuple(args.zone or ()),
        groups=tuple(args.group or ()),
        numbers=tuple(args.to or ()),
    )
