"""An import commits chunk by chunk: an alert is not held behind it, a crash half-way
leaves whole chunks and the same file run again converges, and the file is read a
line at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

import console.contacts.importer as importer
from console.audit import verify_chains
from console.contacts.importer import ImportFailed, ImportOptions, import_contacts
from console.contacts.importer.decoding import scan
from console.context import Context
from console.sending.alerts import AlertDraft, send_alert
from console.sending.queue import claim_batch
from storage.engine import read_session
from storage.models import ConsentEvent, ConsentState, Contact, ContactGroup


def write(tmp_path: Path, content: str | bytes, name: str = "habitants.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def town_file(tmp_path: Path, rows: int) -> Path:
    lines = ["Nom;Téléphone;Groupes"]
    lines += [f"Habitant {i};06 12 34 {i // 100:02d} {i % 100:02d};g{i % 3}" for i in range(rows)]
    return write(tmp_path, "".join(line + "\r\n" for line in lines))


def count(ctx: Context, table: type[object]) -> int:
    with read_session(ctx.engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer.rows, "CHUNK_ROWS", 4)
    monkeypatch.setattr(importer.writing, "CHUNK", 3)
    monkeypatch.setattr(importer.writing, "PAUSE_S", 0.0)
    # One chunk per transaction, whatever the timing.
    monkeypatch.setattr(importer.writing, "TRANSACTION_S", 0.0)


@pytest.mark.usefixtures("small_chunks")
def test_an_alert_confirmed_during_an_import_is_claimed_before_it_ends(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed: list[int] = []
    claimed: list[int] = []

    def between_chunks(rows: int) -> None:
        committed.append(rows)
        if len(committed) == 2:
            # Another connection, as the console and the worker are: with the
            # import holding SQLite's write lock it would wait and fail.
            send_alert(ctx, AlertDraft(text="Crue : montez à l'étage", sender_id="MAIRIE"))
            taken = claim_batch(ctx.engine, "worker", ctx.clock.now(), 60, 10)
            claimed.append(len(taken))

    monkeypatch.setattr(importer.writing, "chunk_committed", between_chunks)
    report = import_contacts(ctx, town_file(tmp_path, 20), ImportOptions())
    assert report.imported == 20
    assert len(committed) == 5
    # Claimed after the second chunk of five: while the import was running.
    assert claimed == [8]


@pytest.mark.usefixtures("small_chunks")
def test_a_crash_half_way_leaves_whole_chunks_and_a_rerun_converges(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = town_file(tmp_path, 18)
    options = ImportOptions(
        consent_topic="evenements", consent_source="paper_form", consent_proof="Fête 2026"
    )
    committed: list[int] = []

    def crash(rows: int) -> None:
        committed.append(rows)
        if len(committed) == 3:
            raise RuntimeError("the server lost power")

    monkeypatch.setattr(importer.writing, "chunk_committed", crash)
    with pytest.raises(RuntimeError):
        import_contacts(ctx, path, options)
    assert count(ctx, Contact) == 12
    assert count(ctx, ConsentEvent) == 12
    monkeypatch.setattr(importer.writing, "chunk_committed", lambda rows: None)

    again = import_contacts(ctx, path, options)
    counts = again.to_json()["counts"]
    assert (counts["rows"], counts["imported"], counts["unchanged"], counts["updated"]) == (
        18,
        6,
        12,
        0,
    )
    assert counts["consents_recorded"] == 6
    assert count(ctx, Contact) == 18
    assert count(ctx, ContactGroup) == 18
    assert count(ctx, ConsentEvent) == 18
    assert count(ctx, ConsentState) == 18
    chains = verify_chains(ctx.engine)
    assert chains["consent"] == (18, [])
    assert chains["audit"][1] == []

    third = import_contacts(ctx, path, options)
    assert (third.imported, third.unchanged, third.consents_recorded) == (0, 18, 0)
    assert count(ctx, ConsentEvent) == 18


@pytest.mark.usefixtures("small_chunks")
def test_a_file_that_fails_at_its_end_writes_no_chunk(ctx: Context, tmp_path: Path) -> None:
    lines = ["Nom;Téléphone"] + [f"H {i};06 12 34 56 {i:02d}" for i in range(30)]
    # A quote never closed: its field runs past csv's limit, over many short lines.
    tail = '"jamais fermé' + ("x" * 1000 + "\r\n") * 200
    path = write(tmp_path, "".join(line + "\r\n" for line in lines) + tail)
    with pytest.raises(ImportFailed, match="line 32"):
        import_contacts(ctx, path, ImportOptions())
    assert count(ctx, Contact) == 0


def test_lines_are_read_across_blocks_as_splitlines_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer.decoding, "_BLOCK", 5)
    # Windows-1252 with one UTF-8 line (read a line at a time), every kind of line
    # end, a \r\n cut between two blocks, and a UTF-8 BOM before it all.
    data = (
        b"\xef\xbb\xbfNom;T\xe9l\r\n"
        + "Gaëlle;0612\r".encode()
        + b"H\xe9l\xe8ne;0613\n"
        + b"Bad\x81;0614\r\n"
        + b"end"
    )
    text = scan(write(tmp_path, data))
    assert (text.encoding, text.mode, text.maybe_bad) == ("cp1252", "mixed", True)
    lines = list(text.lines())
    assert lines == [
        "Nom;Tél\r\n",
        "Gaëlle;0612\r",
        "Hélène;0613\n",
        "Bad\udc81;0614\r\n",
        "end",
    ]
    assert lines == [
        line.decode("utf-8") if i == 1 else line.decode("cp1252", "surrogateescape")
        for i, line in enumerate(data[3:].splitlines(keepends=True))
    ]
    assert text.head == lines


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("Nom;Tél\r\nÉlodie;06\rZoé;07\n".encode("utf-16"), "utf-16"),
        ("\ufeffNom;Tél\r\nÉlodie;06\rZoé;07\n".encode(), "utf-8-sig"),
        ("Nom;Tél\r\nÉlodie;06\rZoé;07\n".encode(), "utf-8"),
        ("Nom;Tél\r\nÉlodie;06\rZoé;07\n".encode("cp1252"), "cp1252"),
    ],
)
def test_each_encoding_reads_the_same_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, encoding: str
) -> None:
    monkeypatch.setattr(importer.decoding, "_BLOCK", 3)
    text = scan(write(tmp_path, data))
    assert text.encoding == encoding
    assert list(text.lines()) == ["Nom;Tél\r\n", "Élodie;06\r", "Zoé;07\n"]


@pytest.mark.usefixtures("small_chunks")
def test_a_number_added_between_two_chunks_is_updated_not_doubled(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The base is empty when the import starts, so its chunks are not looked up: the
    # number added meanwhile fails the INSERT, and that chunk is written again.
    from console.contacts.service import ContactInput, add_contact

    committed: list[int] = []

    def between_chunks(rows: int) -> None:
        committed.append(rows)
        if len(committed) == 1:
            add_contact(ctx, ContactInput(number="06 12 34 00 10", name="Ajouté au guichet"))

    looked_up: list[int] = []
    existing = importer.writing.Writer._existing

    def spy(self: importer.writing.Writer, chunk: list[importer.rows.Good]) -> object:
        looked_up.append(len(chunk))
        return existing(self, chunk)

    monkeypatch.setattr(importer.writing, "chunk_committed", between_chunks)
    monkeypatch.setattr(importer.writing.Writer, "_existing", spy)
    report = import_contacts(ctx, town_file(tmp_path, 16), ImportOptions())
    assert looked_up == [4]  # the third chunk, written again
    assert (report.imported, report.updated, report.unchanged) == (15, 1, 0)
    assert count(ctx, Contact) == 16
    with read_session(ctx.engine) as session:
        name = session.execute(
            select(Contact.name).where(Contact.number == "+33612340010")  # type: ignore[arg-type]
        ).scalar_one()
    assert name == "Habitant 10"
