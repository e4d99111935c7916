"""The console itself: `tocsin` with no verb opens it on the configured town, and
`tocsin demo` on a demo town, with a worker alongside."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from console.cli.common import EXIT_OK, EXIT_USAGE, CliError, context, translator
from console.config import Config

if TYPE_CHECKING:
    from console.context import Context
    from console.sending.worker_launch import Launched

# Opens the Textual console on a context: given by the entry point that owns the UI
# (screens.entry), so nothing under console/ imports Textual.
ConsoleRunner: TypeAlias = "Callable[[Context, Callable[[], Launched] | None], None]"
_run_console: ConsoleRunner | None = None


def use_console(run_console: ConsoleRunner | None) -> None:
    global _run_console
    _run_console = run_console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="open a demo town (temporary SQLite, no config)")
    demo.add_argument("--dir", help="keep the demo town in this folder instead of a temp dir")
    demo.add_argument("--residents", type=int, default=5000)
    demo.add_argument("--seed", type=int, default=1789)
    demo.add_argument("--no-tui", action="store_true", help="build the town, print its path")

    # The demo reads no config: a broken one of the user's must not stop it.
    demo.set_defaults(handler=cmd_demo, config_free=True, owns_terminal=True)


def console_runner(config: Config) -> ConsoleRunner:
    if _run_console is None:
        raise CliError(translator(config)("cli.no_console"), EXIT_USAGE)
    return _run_console


def cmd_tui(args: argparse.Namespace, config: Config) -> int:
    from console.config import data_dir
    from console.sending.worker_launch import start_detached, worker_command

    def launch_worker() -> Launched:
        return start_detached(worker_command(args.config), data_dir() / "worker.log")

    console_runner(config)(context(config), launch_worker)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    from console.demo import build_demo_town

    town = build_demo_town(
        Path(args.dir) if args.dir else None, residents=args.residents, seed=args.seed
    )
    if args.no_tui:
        print(town.database_url)
        return EXIT_OK
    run_console = console_runner(town.context.config)
    from console.sending.demo_worker import DemoWorker
    from console.sending.worker_launch import Launched
    from console.sending.worker_main import quiet_http_logs

    # The console owns the terminal: the worker's log goes to a file of the town.
    handler = logging.FileHandler(town.folder / "worker.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    tocsin_log = logging.getLogger("tocsin")
    tocsin_log.addHandler(handler)
    tocsin_log.setLevel(logging.INFO)
    tocsin_log.propagate = False
    quiet_http_logs()
    worker = DemoWorker(town.context).start()

    def restart_worker() -> Launched:
        # The demo's worker lives in this process: it stops with the console anyway.
        nonlocal worker
        worker.stop()
        worker = DemoWorker(town.context).start()
        return Launched(os.getpid(), town.folder / "worker.log")

    try:
        run_console(town.context, restart_worker)
    finally:
        worker.stop()
    t = translator(town.context.config)
    if worker.error:
        print(t("cli.demo_worker_failed", error=worker.error), file=sys.stderr)
    print(t("cli.demo_kept", folder=town.folder), file=sys.stderr)
    return EXIT_OK
