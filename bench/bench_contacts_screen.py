"""Contacts screen on a 100,000-contact base: time to first rows, to a search result,
and peak memory.

Times are printed as they are and as a ratio to a baseline run in the same process:
a bare Textual app showing the same number of rows from a Python list (what any
DataTable costs), so a noisy machine moves both sides together.

    .venv/bin/python bench/bench_contacts_screen.py [--residents 100000]

Targets (issue 2): first rows under 0.5 s, a search result under 0.15 s, peak memory
under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input

from console.demo import build_demo_town
from screens.app import TocsinApp
from screens.contacts import ContactsScreen

SIZE = (120, 40)
SEARCHES = ("martin", "06 12", "les pres", "zoe dubois", "0692")


class BareTable(App[None]):
    """The baseline: a DataTable filled from a list already in memory."""

    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield Input(id="search")
        yield DataTable()

    def on_mount(self) -> None:
        self.fill(self.rows)

    def fill(self, rows: list[tuple[str, ...]]) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("Nom", "Numéro", "Quartier", "Groupes", "SMS", "Consent.")
        for row in rows:
            table.add_row(*row)


async def _until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the screen never showed its rows")
        await asyncio.sleep(0.001)


async def bare_first_rows(rows: list[tuple[str, ...]]) -> float:
    app = BareTable(rows)
    start = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: app.query_one(DataTable).row_count == len(rows))
        elapsed = time.perf_counter() - start
        await pilot.pause()
    return elapsed


async def bare_search(rows: list[tuple[str, ...]]) -> float:
    app = BareTable(rows)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        for _ in SEARCHES:
            app.fill(rows[: len(rows) // 2])
            await pilot.pause()
        return (time.perf_counter() - start) / len(SEARCHES)


async def tocsin_first_rows(town) -> tuple[float, list[tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    # The console opens on Envois: straight to Contacts, as `2` would.
    app = TocsinApp(town.context, start_mode="contacts")
    start = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await _until(
            lambda: (
                isinstance(app.screen, ContactsScreen)
                and app.screen.query_one(DataTable).row_count > 0
            )
        )
        elapsed = time.perf_counter() - start
        table = app.screen.query_one(DataTable)
        rows = [tuple(c.plain for c in table.get_row_at(i)) for i in range(table.row_count)]
        await pilot.pause()
    return elapsed, rows


async def tocsin_search(town) -> float:  # type: ignore[no-untyped-def]
    app = TocsinApp(town.context, start_mode="contacts")
    async with app.run_test(size=SIZE) as pilot:
        await _until(
            lambda: (
                isinstance(app.screen, ContactsScreen)
                and app.screen.query_one(DataTable).row_count > 0
            )
        )
        screen = app.screen
        assert isinstance(screen, ContactsScreen)
        total = 0.0
        for text in SEARCHES:
            start = time.perf_counter()
            screen._search(text)  # what Enter in the search box calls
            await pilot.pause()
            total += time.perf_counter() - start
            assert screen.browser.search == text
        return total / len(SEARCHES)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--contacts", dest="contacts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as folder:
        start = time.perf_counter()
        # Built in a child process, so the peak memory below is the console's alone.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from console.demo import build_demo_town;"
                "build_demo_town(Path(sys.argv[1]), residents=int(sys.argv[2]))",
                folder,
                str(args.contacts),
            ],
            check=True,
            cwd=ROOT,
        )
        print(f"built a {args.contacts:,}-contact town in {time.perf_counter() - start:.1f} s")
        town = build_demo_town(Path(folder))  # opens the existing town

        first, rows = asyncio.run(tocsin_first_rows(town))
        base_first = asyncio.run(bare_first_rows(rows))
        search = asyncio.run(tocsin_search(town))
        base_search = asyncio.run(bare_search(rows))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"rows per page: {len(rows)}")
        print(
            f"first rows:    {first:.3f} s  (bare DataTable {base_first:.3f} s, "
            f"ratio {first / base_first:.2f})  target < 0.5 s"
        )
        print(
            f"search result: {search:.3f} s  (bare DataTable refill {base_search:.3f} s, "
            f"ratio {search / base_search:.2f})  target < 0.15 s"
        )
        print(f"peak memory:   {peak_mb:.0f} MB  target < 150 MB")


if __name__ == "__main__":
    main()
