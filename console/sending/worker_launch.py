"""Start `tocsin worker` detached from the operator's session, for the night no worker
is running: a new session and no terminal, so a dropped SSH connection cannot stop it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launched:
    pid: int
    log: Path


def worker_command(config_file: str | None) -> list[str]:
    # The same interpreter and code as the console, whatever PATH says.
    command = [sys.executable, "-m", "console"]
    if config_file:
        command += ["--config", config_file]
    return [*command, "worker"]


def start_detached(command: Sequence[str], log: Path) -> Launched:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            env=dict(os.environ),
        )
    return Launched(process.pid, log)
