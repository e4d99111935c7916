"""The `tocsin` command: the CLI of console.cli, with the Textual console wired in.

The UI is imported only when the console opens, so `tocsin worker` and the scripting
verbs never load Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from console import cli
from console.context import Context
from console.sending.worker_launch import Launched


def run_console(ctx: Context, worker_launcher: Callable[[], Launched] | None) -> None:
    from screens.app import TocsinApp

    TocsinApp(ctx, worker_launcher=worker_launcher).run()


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, run_console=run_console)
