"""The `tocsin` command: the console by default, and the scripting verbs, one module
per verb group. Each group's `register` adds its verbs, each with its handler
(`set_defaults(handler=...)`, called with the arguments and the config).

Exit status: 0 done, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard, cast

from console.cli import admin, consent, contacts, message, planning, sending
from console.cli import console as console_verbs
from console.cli.common import EXIT_FAILED, EXIT_USAGE, CliError, running, translator
from console.cli.console import ConsoleRunner, use_console
from console.cli.terminal import guarded_terminal
from console.config import Config, ConfigError, load_config, read_configuration
from console.i18n import Translator
from console.roles import PermissionDenied
from console.sending.providers.credentials import CredentialsError
from console.text import visible

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

Handler = Callable[[argparse.Namespace, Config], int]

GROUPS = (console_verbs, contacts, consent, sending, planning, message, admin)


def _parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command's parser; with `verb`, one with that verb's parser alone (or None
    if there is no such verb): the 60-odd others, built for nothing, were 0.01 s of
    `tocsin status`, a command monitoring runs every few seconds."""
    parser = (argparse.ArgumentParser if verb is None else _OneVerb)(
        prog="tocsin", description="SMS operations console for town halls."
    )
    parser.add_argument(
        "--config",
        help="config file (default: TOCSIN_CONFIG, "
        "/etc/tocsin/config.toml, then the user config dir)",
    )
    sub = parser.add_subparsers(dest="command", action=_Verbs, parser_class=argparse.ArgumentParser)
    cast(_Verbs, sub).only = verb
    for group in GROUPS:
        group.register(sub)
    return parser


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


class _Verbs(_SubParsers):
    """The verbs' parsers, every one or only the one `only` names."""

    only: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if self.only is None or name == self.only:
            return super().add_parser(name, **kwargs)
        return cast(argparse.ArgumentParser, _Unbuilt())


class _NotThisWay(Exception):
    pass


class _OneVerb(argparse.ArgumentParser):
    """The parser with one verb: what it would refuse itself (an argument no parser
    takes) the whole parser says, its usage naming every verb."""

    def error(self, message: str) -> NoReturn:
        raise _NotThisWay(message)


class _Unbuilt:
    """A verb's parser not built: whatever its group adds to it goes nowhere."""

    def __getattr__(self, _name: str) -> Callable[..., _Unbuilt]:
        return self._nothing

    def _nothing(self, *_args: object, **_kwargs: object) -> _Unbuilt:
        return self


def _arguments(given: Sequence[str]) -> argparse.Namespace:
    """The command line parsed; by the verb's parser alone when the line plainly
    names one (`--config FILE` before it, nothing else), else by the whole parser
    (no verb, --help, an abbreviated option, a verb that does not exist: the whole
    parser's answer, or its error, is the one to give)."""
    verb: str | None = None
    rest = list(given)
    while rest:
        if rest[0] == "--config" and len(rest) > 1:
            rest = rest[2:]
        elif rest[0].startswith("--config="):
            rest = rest[1:]
        else:
            verb = None if rest[0].startswith("-") else rest[0]
            break
    if verb is not None:
        parser = _parser(verb)
        if any(verb in action.choices for action in parser._actions if action.choices):
            with contextlib.suppress(_NotThisWay):
                return parser.parse_args(given)
    return _parser().parse_args(given)


def main(argv: Sequence[str] | None = None, *, run_console: ConsoleRunner | None = None) -> int:
    """Every failure a user can cause or meet ends here as one line on stderr and the
    documented exit status, never a traceback."""
    use_console(run_console)
    # Until the config is read, the default language (the config's own errors, which
    # name its keys, stay as the loader words them).
    t = translator(Config())
    given = list(sys.argv[1:] if argv is None else argv)
    undecodable = next((arg for arg in given if _not_utf8(arg)), None)
    if undecodable is not None:
        # The terminal sent bytes that are not UTF-8 (Python kept them as lone
        # surrogates): they would fail later, deep in a database driver.
        message = _language_of(given)("cli.not_utf8", arg=visible_arg(undecodable))
        return _fail(message, EXIT_USAGE)
    from console.service.client import forward, service_target

    args = _arguments(given)
    # The demo touches none of the town's files: it runs here, whoever asks.
    target = None if getattr(args, "config_free", False) else service_target()
    if target is not None:
        # The town's files are the service's: it runs the command on our behalf.
        return forward(target, given, _parser())
    running(given)
    handler: Handler = getattr(args, "handler", console_verbs.cmd_tui)
    # The console draws with escape sequences of its own (and shows residents' text
    # escaped itself); every other verb's terminal output is guarded.
    owns_terminal = handler is console_verbs.cmd_tui or getattr(args, "owns_terminal", False)
    try:
        config = Config() if getattr(args, "config_free", False) else _configuration(args.config)
        t = translator(config)
        with contextlib.nullcontext() if owns_terminal else guarded_terminal():
            status = handler(args, config)
            # Output buffered to a full disk fails here rather than at exit.
            sys.stdout.flush()
        return status
    except (ConfigError, CredentialsError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except CliError as exc:
        return _fail(str(exc), exc.status)
    except PermissionDenied as exc:
        return _fail(t.error(exc))
    except BrokenPipeError:
        # `tocsin export contacts | head`: the reader left; nothing to say.
        _silence_stdout()
        return EXIT_FAILED
    except OSError as exc:
        return _fail(_os_error(t, exc))
    except Exception as exc:
        # SQLAlchemy is loaded by the verbs that need it, not for every verb (nor
        # for --help): an error of its own can only come once it is.
        if not _is_database_error(exc):
            raise
        return _fail(t("cli.database", error=_database_error(t, exc)))
    except KeyboardInterrupt:
        return 130


def _configuration(explicit: str | None) -> Config:
    from console.service.identity import with_console_prefs

    loaded = read_configuration(explicit)
    if loaded.ignored:
        tables = ", ".join(f"[{name}]" for name in loaded.ignored)
        print(
            f"tocsin: note: {tables} of your own config ignored: {loaded.path} sets them "
            "for the town (yours may only set [console])",
            file=sys.stderr,
        )
    return with_console_prefs(loaded.config)


def _language_of(given: Sequence[str]) -> Translator:
    """The configured language when the config can be read before the arguments are
    parsed (an argument that is not UTF-8 stops them being parsed), else the default."""
    path: str | None = None
    for i, arg in enumerate(given):
        if arg == "--config" and i + 1 < len(given):
            path = given[i + 1]
        elif arg.startswith("--config="):
            path = arg.removeprefix("--config=")
    try:
        return translator(load_config(path))
    except (ConfigError, CredentialsError, OSError, ValueError):
        return translator(Config())


def _fail(message: str, status: int = EXIT_FAILED) -> int:
    # One line, whatever a message quotes (a provider's words, a file's name).
    print(f"tocsin: {visible(message)}", file=sys.stderr)
    return status


def _not_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def visible_arg(arg: str) -> str:
    """The argument as its bytes were, the undecodable ones shown as \\xNN."""
    raw = arg.encode("utf-8", "surrogateescape")
    return visible(raw.decode("utf-8", "backslashreplace"))


def _os_error(t: Translator, exc: OSError) -> str:
    # The system's own words (strerror) are in the system's language.
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return t("cli.disk_full", where=where)
    return f"{where}{exc.strerror or exc}"


def _is_database_error(exc: Exception) -> TypeGuard[SQLAlchemyError]:
    loaded = sys.modules.get("sqlalchemy.exc")
    return loaded is not None and isinstance(exc, loaded.SQLAlchemyError)


def _database_error(t: Translator, exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "disk is full" in first or "No space left" in first:
        return t("cli.database_full", error=first)
    if "readonly database" in first:
        return t("cli.database_readonly", error=first)
    if "database is locked" in first:
        return t("cli.database_locked", error=first)
    return first


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
