"""Checking a big file's rows in a process of its own, while this one writes them.

Checking a row (its number through phonenumbers' rules, its name folded for
sorting and search) is pure Python: in a thread beside the writer it held the GIL
against the writer's own Python work, and the two took turns on one core where the
server has two. A child process checks and hands the good rows back in chunks over
a pipe, pickled, with the issues found since the chunk before; this process only
unpickles them and writes.

The child is `python -m console.contacts.importer_child` from the same
interpreter, sent its job (the source, the options, the town's region) on stdin; it
answers frames on stdout: ("chunk", rows, issues), then ("done", rows read, issues)
or ("failed", exception). Both ends are Tocsin, so pickle is safe here: nothing
else writes to these pipes. A file too small to pay for the child's start, or a
child that cannot start, is checked in this process as before.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from console.contacts.importer.header import Source
from console.contacts.importer.options import ImportOptions
from console.contacts.importer.report import ImportFailed, RowIssue
from console.contacts.importer.rows import Good

# Below this size the child's start (its interpreter and imports, about a third of
# a second) costs more than checking in a thread; 2 MB is about 30,000 residents.
CHILD_FROM_BYTES = 2_000_000

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def child_command() -> list[str]:
    return [sys.executable, "-m", "console.contacts.importer_child"]


def worth_a_child(source: Source) -> bool:
    try:
        return source.path.stat().st_size >= CHILD_FROM_BYTES
    except OSError:
        return False


def check_rows_in_child(
    region: str,
    source: Source,
    options: ImportOptions,
    issues: list[RowIssue],
    deliver: Callable[[list[Good]], None],
) -> int | None:
    """check_rows, run by a child process; None when no child could start (the
    caller then checks the rows itself, nothing having been delivered)."""
    with tempfile.TemporaryFile() as errors:
        try:
            child = subprocess.Popen(
                child_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=_child_env(),
            )
        except OSError:
            return None
        assert child.stdin is not None and child.stdout is not None
        try:
            try:
                pickle.dump((region, source, options), child.stdin, pickle.HIGHEST_PROTOCOL)
                child.stdin.close()
            except OSError:
                pass  # it died at start: the frames' end below says why
            return _receive(child.stdout, issues, deliver, lambda: _stderr_tail(errors))
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()


def _receive(
    frames: IO[bytes],
    issues: list[RowIssue],
    deliver: Callable[[list[Good]], None],
    why_not: Callable[[], str],
) -> int:
    while True:
        try:
            # One pickle per frame: a pickler's memo spans every dump, so the rows
            # it has sent would stay alive in both processes.
            kind, payload, found = pickle.load(frames)
        except (EOFError, pickle.UnpicklingError) as exc:
            raise ImportFailed(
                f"the process checking the rows stopped: {why_not() or 'no reason given'}"
            ) from exc
        if kind == "failed":
            raise payload
        issues.extend(found)
        if kind == "done":
            return int(payload)
        deliver(payload)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child imports this very package, wherever it was loaded from.
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{_PACKAGE_ROOT}{os.pathsep}{path}" if path else _PACKAGE_ROOT
    return env


def _stderr_tail(errors: IO[bytes]) -> str:
    errors.seek(0)
    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""
