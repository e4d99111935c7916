"""The importer's row checker as a child process (see importer/checker_process.py).

Run as `python -m console.contacts.importer_child` by checker_process alone. It
needs the importer's pure modules (rows, header, decoding, report, options), not
the package's __init__, which loads SQLAlchemy and the ORM to write: a third of a
second of start-up the child has no use for. So the package is entered bare (its
path known, its __init__ not run) and this module lives outside it.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from types import ModuleType

PACKAGE = "console.contacts.importer"


def enter_bare(name: str) -> None:
    """Make `name`'s submodules importable without running its __init__."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"no package {name}")
    package = ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules[name] = package


def main() -> None:
    enter_bare(PACKAGE)
    from console.contacts.importer import frames
    from console.contacts.importer.report import ImportFailed, RowIssue
    from console.contacts.importer.rows import (
        LONG_RUNS_FROM,
        RUN_ROWS,
        Good,
        NameRuns,
        check_rows,
    )
    from console.contacts.numbers import NumberParser

    job = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the frames' pipe
    region, source, options = pickle.loads(job)
    issues: list[RowIssue] = []

    def send_issues() -> None:
        if issues:
            frames.send(out, frames.ISSUES, issues)
            # check_rows only appends: what is sent need not stay here too.
            issues.clear()

    def send_rows(chunk: list[Good]) -> None:
        send_issues()
        frames.send(out, frames.ROWS, chunk)
        out.flush()

    try:
        runs = NameRuns(send_rows, RUN_ROWS, LONG_RUNS_FROM)
        rows = check_rows(NumberParser(region), source, options, issues, runs.add)
        runs.flush()
        send_issues()
    except BrokenPipeError:
        return  # the parent gave up (its own failure): nothing to tell
    except Exception as exc:  # handed to the parent, which raises it
        try:
            frames.send(out, frames.FAILED, exc)
        except Exception:
            frames.send(out, frames.FAILED, ImportFailed(f"{source.path}: {exc}"))
        out.flush()
        return
    frames.send(out, frames.DONE, rows)
    out.flush()


if __name__ == "__main__":
    main()
