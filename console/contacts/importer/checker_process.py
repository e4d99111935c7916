"""Checking a big file's rows in a process of its own, while this one writes them.

Checking a row (its number through phonenumbers' rules, its name folded for
sorting and search) is pure Python: in a thread beside the writer it held the GIL
against the writer's own Python work, and the two took turns on one core where the
server has two. A child process checks and hands the good rows back in chunks over
a pipe, pickled, with the issues found since the chunk before; this process only
unpickles them (in the writer thread: see frames.py) and writes.

The child is `python -m console.contacts.importer_child` from the same
interpreter, sent its job (the source, the options, the town's region) on stdin; it
answers frames on stdout (frames.py): rows and issues, then the number of rows
read or the exception that stopped it. Both ends are Tocsin, so pickle is safe
here: nothing else writes to these pipes. A file too small to pay for the child's
start, or a child that cannot start, is checked in this process as before.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from console.contacts.importer import frames
from console.contacts.importer.header import Source
from console.contacts.importer.options import ImportOptions
from console.contacts.importer.report import ImportFailed, RowIssue
from console.contacts.importer.rows import CHUNK_ROWS, RUN_ROWS
from console.contacts.importer.writing import Chunk

# Below this size the child's start (its interpreter and imports, about a tenth of
# a second) costs more than it saves: measured with bench_import.py, the child
# took 10,000 residents from 2.27 to 2.63 times phonenumbers' time, and 30,000
# from 2.28 to 1.76. 1 MB is about 20,000 residents.
CHILD_FROM_BYTES = 1_000_000

# The child's chunks (pickles, a fifth of their rows' memory) that may wait for
# the writer: two of its runs (rows.NameRuns). It hands a run's chunks over at
# once, then checks the next run's rows; with room for fewer, it waited for the
# writer to take them, and the writer then waited for the next run (measured at
# 1,000,000 residents, the import's time over the child's CPU time: 1.37 with room
# for two chunks, 1.21 with ten).
CHILD_QUEUE = 2 * RUN_ROWS // CHUNK_ROWS

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def child_command() -> list[str]:
    return [sys.executable, "-m", "console.contacts.importer_child"]


def worth_a_child(path: Path) -> bool:
    try:
        return path.stat().st_size >= CHILD_FROM_BYTES
    except OSError:
        return False


class CheckerChild:
    """The child, started before this process reads the file's header (its
    interpreter starts meanwhile) and handed its job once the header is known."""

    def __init__(self, process: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        self.process = process
        self.errors = errors

    @classmethod
    def start(cls) -> CheckerChild | None:
        """None when no child can start: the rows are then checked here."""
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            process = subprocess.Popen(
                child_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=_child_env(),
            )
        except OSError:
            errors.close()
            return None
        return cls(process, errors)

    def check_rows(
        self,
        region: str,
        source: Source,
        options: ImportOptions,
        issues: list[RowIssue],
        deliver: Callable[[Chunk], None],
    ) -> int:
        """check_rows of this source, run by the child; each chunk is delivered as
        its pickle."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            pickle.dump((region, source, options), stdin, pickle.HIGHEST_PROTOCOL)
            stdin.close()
        except OSError:
            pass  # it died at start: the frames' end below says why
        return _receive(stdout, issues, deliver, self._stderr_tail)

    def close(self) -> None:
        """Stop the child if it still runs (this side failed), and reap it."""
        process = self.process
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with suppress(OSError):
                    pipe.close()
        self.errors.close()

    def _stderr_tail(self) -> str:
        self.process.wait()
        self.errors.seek(0)
        lines = self.errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""


@contextmanager
def started_early(path: Path, options: ImportOptions) -> Iterator[CheckerChild | None]:
    """A child for a file big enough to pay for it (and none for a dry run, which
    writes nothing the child's work could overlap); stopped on the way out."""
    child = None
    if not options.dry_run and worth_a_child(path):
        child = CheckerChild.start()
    try:
        yield child
    finally:
        if child is not None:
            child.close()


def _receive(
    stream: IO[bytes],
    issues: list[RowIssue],
    deliver: Callable[[Chunk], None],
    why_not: Callable[[], str],
) -> int:
    """Hand each chunk on as its pickle (frames.py says why); return the rows read."""
    while True:
        try:
            kind, data = frames.receive(stream)
        except EOFError as exc:
            raise ImportFailed(
                f"the process checking the rows stopped: {why_not() or 'no reason given'}"
            ) from exc
        if kind == frames.ROWS:
            deliver(data)
            continue
        found = pickle.loads(data)
        if kind == frames.ISSUES:
            issues.extend(found)
        elif kind == frames.DONE:
            return int(found)
        else:
            raise found


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child imports this very package, wherever it was loaded from.
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{_PACKAGE_ROOT}{os.pathsep}{path}" if path else _PACKAGE_ROOT
    return env
