"""The `tocsin` command: the console by default, and the scripting verbs, one module
per verb group. Each group's `register` adds its verbs, each with its handler
(`set_defaults(handler=...)`, called with the arguments and the config).

Exit status: 0 done, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from console.cli import admin, consent, contacts, message, sending
from console.cli import console as console_verbs
from console.cli.common import EXIT_FAILED, EXIT_USAGE, CliError
from console.cli.console import ConsoleRunner, use_console
from console.config import Config, ConfigError, load_config
from console.roles import PermissionDenied

Handler = Callable[[argparse.Namespace, Config], int]

GROUPS = (console_verbs, contacts, consent, sending, message, admin)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="SMS operations console for town halls."
    )
    parser.add_argument(
        "--config",
        help="config file (default: TOCSIN_CONFIG, "
        "/etc/tocsin/config.toml, then the user config dir)",
    )
    sub = parser.add_subparsers(dest="command")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, run_console: ConsoleRunner | None = None) -> int:
    use_console(run_console)
    args = _parser().parse_args(argv)
    handler: Handler = getattr(args, "handler", console_verbs.cmd_tui)
    try:
        config = Config() if getattr(args, "config_free", False) else load_config(args.config)
        return handler(args, config)
    except ConfigError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return exc.status
    except PermissionDenied as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
