"""A big file's rows are checked in a child process: the same rows, the same issues
and the same base as when this process checks them; a child that fails or cannot
start neither loses rows nor hides why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

import console.contacts.importer as importer
from console.contacts.importer import ImportFailed, ImportOptions, checker_process, import_contacts
from console.context import Context
from storage.engine import read_session
from storage.models import Contact, ContactGroup

HOSTILE = "[b]Zoé[/b] \x1b[2J 🚨 " + "x" * 150


def tricky_file(tmp_path: Path) -> Path:
    """Every kind of row an import meets, good and bad, as cp1252 bytes."""
    lines = [
        "Nom;Prénom;Téléphone;Quartier;Groupes;Remarques",
        "DUPONT;Jean;06 12 34 56 78;Centre;parents,aînés;",
        f"{HOSTILE};Léa;+33 6 12 34 56 79;Les Prés;élus;[red]note[/red]",
        "MARTIN;Paul;01 23 45 67 89;La Gare;;fixe",  # flagged: not a mobile
        "DOUBLE;Jean;0612345678;Centre;;",  # a duplicate of line 2
        "FAUX;Noé;06 12 34;Centre;;",  # invalid number
        "COURT;Anaïs",  # the number's column is missing
        "VIDE;Loïc;;Centre;;",  # no number
        "'=CMD;Zoé;'+33 7 51 23 45 67;Centre;;",  # guarded cells
        'GUILLEMETS;Inès;07 51 23 45 68;"Côte; Saint-Jean";;"dit ""le maire"""',
        "LONG;" + "n" * 250 + ";07 51 23 45 69;Centre;;",  # name too long
    ]
    lines += [
        f"HABITANT{i};Jean;06 20 00 {i // 100:02d} {i % 100:02d};Z{i % 3};g{i % 4};"
        for i in range(300)
    ]
    path = tmp_path / "habitants.csv"
    path.write_bytes("\r\n".join(lines).encode("cp1252", errors="replace") + b"\r\n")
    return path


def contacts(ctx: Context) -> list[tuple[object, ...]]:
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(
                Contact.number,
                Contact.name,
                Contact.zone,
                Contact.groups,
                Contact.notes,
                Contact.sendable,
                Contact.sort_key,
                Contact.search_key,
            ).order_by(Contact.number)
        )
        return [tuple(row) for row in rows]


def groups(ctx: Context) -> int:
    with read_session(ctx.engine) as session:
        return int(session.execute(select(func.count()).select_from(ContactGroup)).scalar_one())


@pytest.fixture
def in_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", 0)


def issues_of(report: importer.ImportReport) -> list[tuple[object, ...]]:
    return [(i.line, i.status, i.code, i.reason, i.reason_fr, i.raw) for i in report.issues]


def test_the_child_checks_every_row_as_this_process_would(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tricky_file(tmp_path)
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", 0)

    def not_here(*args: object, **kwargs: object) -> int:
        raise AssertionError("the rows were checked in this process")

    # The parent's own checker would fail the import: the child did the checking.
    monkeypatch.setattr(importer, "check_rows", not_here)
    first = import_contacts(ctx, path, ImportOptions())
    base = contacts(ctx)
    assert first.imported == len(base) == 305
    assert (first.rejected, first.flagged) == (5, 1)
    assert groups(ctx) == 3 + 300
    # Residents' text comes back from the child as it was typed, markup included.
    assert any(str(row[1]).startswith("Léa [b]Zoé[/b]") for row in base)
    assert any(row[4] == "[red]note[/red]" for row in base)

    # The same file checked here finds the very same rows: all unchanged, the same issues.
    monkeypatch.undo()
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", 10**12)
    again = import_contacts(ctx, path, ImportOptions())
    assert (again.imported, again.updated, again.unchanged) == (0, 0, first.imported)
    assert issues_of(again) == issues_of(first)
    assert contacts(ctx) == base


def ids_in_name_order(ctx: Context) -> bool:
    with read_session(ctx.engine) as session:
        keys = list(session.scalars(select(Contact.sort_key).order_by(Contact.id)))
    return keys == sorted(keys)


def test_the_child_hands_its_rows_over_in_name_order(
    ctx: Context, tmp_path: Path, in_child: None
) -> None:
    # The file's 305 good rows are one run (fewer than rows.CHUNK_ROWS): inserted in
    # name order, so the ids follow the names, where the file has them in no order.
    report = import_contacts(ctx, tricky_file(tmp_path), ImportOptions())
    assert report.imported == 305
    assert ids_in_name_order(ctx)


def test_checked_here_the_rows_keep_the_files_order(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", 10**12)
    import_contacts(ctx, tricky_file(tmp_path), ImportOptions())
    assert not ids_in_name_order(ctx)


@pytest.mark.usefixtures("in_child")
def test_a_child_that_dies_names_its_reason_and_keeps_what_it_sent(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        "import sys; sys.stdin.buffer.read();"
        "sys.stderr.write('Traceback...\\nMemoryError: the checker ran out of memory\\n');"
        "sys.exit(1)"
    )
    monkeypatch.setattr(checker_process, "child_command", lambda: [sys.executable, "-c", script])
    with pytest.raises(ImportFailed, match="MemoryError: the checker ran out of memory"):
        import_contacts(ctx, tricky_file(tmp_path), ImportOptions())
    assert contacts(ctx) == []


@pytest.mark.usefixtures("in_child")
def test_without_a_child_the_rows_are_checked_here(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checker_process, "child_command", lambda: [str(tmp_path / "no-python")])
    report = import_contacts(ctx, tricky_file(tmp_path), ImportOptions())
    assert report.imported == 305


@pytest.mark.usefixtures("in_child")
def test_a_writer_that_fails_stops_the_child(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(child)
        return child  # type: ignore[no-any-return]

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(importer.writing.Writer, "_chunk", broken)
    with pytest.raises(OSError, match="No space left"):
        import_contacts(ctx, tricky_file(tmp_path), ImportOptions())
    assert len(started) == 1
    assert started[0].returncode is not None


def test_the_child_loads_neither_the_orm_nor_the_config() -> None:
    probe = (
        "import sys, console.contacts.importer_child as child;"
        "child.enter_bare(child.PACKAGE);"
        "import console.contacts.importer.rows;"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'textual');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_child_only_for_a_big_file_that_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tricky_file(tmp_path)
    size = path.stat().st_size
    assert size < checker_process.CHILD_FROM_BYTES  # a village's file is checked here
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", size + 1)
    assert not checker_process.worth_a_child(path)
    monkeypatch.setattr(checker_process, "CHILD_FROM_BYTES", size)
    assert checker_process.worth_a_child(path)
    assert not checker_process.worth_a_child(tmp_path / "gone.csv")
    with checker_process.started_early(path, ImportOptions(dry_run=True)) as child:
        assert child is None
    with checker_process.started_early(path, ImportOptions()) as child:
        assert child is not None
        process = child.process
    assert process.returncode is not None  # stopped and reaped, unused
