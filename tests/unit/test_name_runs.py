"""The row checker's child hands its rows over in runs sorted by name (NameRuns)."""

from __future__ import annotations

from typing import Any

from console.contacts.importer.rows import CHUNK_ROWS, VALUE_COLUMNS, Good, NameRuns


def good(line: int, key: str) -> Good:
    values: list[Any] = [""] * len(VALUE_COLUMNS)
    values[VALUE_COLUMNS.index("sort_key")] = key
    values[0] = f"+3360000{line:04d}"
    return (line, tuple(values), None)


def key_of(row: Good) -> str:
    return str(row[1][VALUE_COLUMNS.index("sort_key")])


def test_each_run_is_handed_on_in_name_order_then_file_order() -> None:
    delivered: list[list[Good]] = []
    runs = NameRuns(delivered.append, run_rows=4, long_from=0)
    runs.add([good(2, "martin"), good(3, "dupont"), good(4, "martin")])
    assert delivered == []  # three rows: not yet a run
    runs.add([good(5, "aubert"), good(6, "zola")])
    (first,) = delivered
    # The five rows gathered so far, sorted; the two Martins keep the file's order.
    assert [row[0] for row in first] == [5, 3, 2, 4, 6]
    runs.add([good(7, "bernard")])
    assert len(delivered) == 1
    runs.flush()
    assert [row[0] for row in delivered[1]] == [7]
    runs.flush()  # nothing left: nothing handed on
    assert len(delivered) == 2


def test_a_run_goes_in_chunks_and_every_row_once() -> None:
    delivered: list[list[Good]] = []
    runs = NameRuns(delivered.append, run_rows=3 * CHUNK_ROWS, long_from=0)
    names = [f"nom{(line * 7919) % 10007:05d}" for line in range(3 * CHUNK_ROWS + 10)]
    for start in range(0, len(names), 1000):
        runs.add([good(start + i, name) for i, name in enumerate(names[start : start + 1000])])
    runs.flush()
    assert [len(chunk) for chunk in delivered] == [CHUNK_ROWS, CHUNK_ROWS, CHUNK_ROWS, 10]
    first_run = [key_of(row) for chunk in delivered[:3] for row in chunk]
    assert first_run == sorted(first_run)
    assert sorted(row[0] for chunk in delivered for row in chunk) == list(range(len(names)))


def test_the_runs_are_one_chunk_long_until_long_from_rows() -> None:
    delivered: list[list[Good]] = []
    runs = NameRuns(delivered.append, run_rows=3 * CHUNK_ROWS, long_from=2 * CHUNK_ROWS)
    line = 0
    for _ in range(6):
        runs.add([good(line + i, f"nom{(line + i) * 7919 % 10007:05d}") for i in range(CHUNK_ROWS)])
        line += CHUNK_ROWS
    # Two chunks sorted each on its own as they came, then one run of three.
    assert [len(chunk) for chunk in delivered] == [CHUNK_ROWS] * 5
    starts = [min(row[0] for row in chunk) for chunk in delivered]
    assert starts[:2] == [0, CHUNK_ROWS]
    third_run = [key_of(row) for chunk in delivered[2:5] for row in chunk]
    assert third_run == sorted(third_run)
    assert {row[0] for chunk in delivered[2:5] for row in chunk} == set(
        range(2 * CHUNK_ROWS, 5 * CHUNK_ROWS)
    )
    runs.flush()
    assert len(delivered) == 6
