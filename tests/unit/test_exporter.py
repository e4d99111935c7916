"""Exporting the contact base: Excel-safe cells, paging, and a lossless round trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import col

import console.contacts.exporter as exporter
from console.clock import FrozenClock
from console.config import Config, TownConfig
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.exporter import HEADER, export_contacts, export_file, guard
from console.contacts.importer import ImportOptions, import_contacts
from console.contacts.importer.rows import unguard
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from console.roles import PermissionDenied, Role
from storage import queries
from storage.engine import read_session
from storage.models import AuditEntry, Contact
from storage.queries import ContactQuery
from tests.conftest import make_context


def exported(ctx: Context, **kwargs: object) -> tuple[str, list[list[str]]]:
    out = io.StringIO(newline="")
    written = export_contacts(ctx, out, **kwargs)  # type: ignore[arg-type]
    text = out.getvalue()
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert written == len(rows) - 1
    return text, rows


def snapshot(ctx: Context) -> dict[str, tuple[object, ...]]:
    with read_session(ctx.engine) as session:
        return {
            c.number or f"erased:{c.id}": (
                c.id,
                c.name,
                c.zone,
                c.groups,
                c.notes,
                c.source,
                c.sendable,
                c.sort_key,
                c.search_key,
                c.updated_at,
            )
            for c in session.execute(select(Contact)).scalars()
        }


def audit_actions(ctx: Context) -> list[str]:
    with read_session(ctx.engine) as session:
        return list(
            session.execute(select(col(AuditEntry.action)).order_by(col(AuditEntry.seq))).scalars()
        )


def test_bom_header_and_cells(ctx: Context) -> None:
    c = add_contact(
        ctx,
        ContactInput(
            number="+33 6 12 34 56 78",
            name="Élodie Garçon",
            zone="Les Prés",
            groups=("parents", "aînés"),
            notes="portail vert",
        ),
    )
    record_consent(
        ctx,
        ConsentRequest(contact_id=c.id or 0, topic="infos", action="grant", source="counter"),
    )
    record_consent(
        ctx,
        ConsentRequest(contact_id=c.id or 0, topic="travaux", action="withdraw", source="counter"),
    )
    add_contact(ctx, ContactInput(number="01 42 68 53 00", name="Mairie"))
    text, rows = exported(ctx)
    assert text.startswith("\ufeff")
    assert "\r\n" in text
    assert rows[0] == list(HEADER)
    assert rows[1:] == [
        [
            "06 12 34 56 78",
            "Élodie Garçon",
            "Les Prés",
            "aînés,parents",
            "portail vert",
            "oui",
            "infos",
        ],
        ["01 42 68 53 00", "Mairie", "", "", "", "non", ""],
    ]
    assert audit_actions(ctx)[-1] == "contact.export"


def test_formula_injection_is_guarded(ctx: Context) -> None:
    add_contact(
        ctx,
        ContactInput(
            number="06 12 34 56 78",
            name='=HYPERLINK("http://x";"clic")',
            zone="+zone",
            groups=("=cmd(' /c calc')",),
            notes="-2+3",
        ),
    )
    add_contact(ctx, ContactInput(number="06 12 34 56 79", name="@SUM(A1)", notes="'=déjà"))
    add_contact(ctx, ContactInput(number="+262 692 12 34 56", name="Réunion"))
    _, rows = exported(ctx)
    by_number = {row[0]: row for row in rows[1:]}
    first = by_number["06 12 34 56 78"]
    assert first[1] == '\'=HYPERLINK("http://x";"clic")'
    assert first[2] == "'+zone"
    assert first[3] == "'=cmd(' /c calc')"
    assert first[4] == "'-2+3"
    second = by_number["06 12 34 56 79"]
    assert (second[1], second[4]) == ("'@SUM(A1)", "''=déjà")
    # Excel reads "+262 692 ..." as a formula too: guarded, and read back as the
    # number by the importer (see the round trips).
    assert "'+262 692 12 34 56" in by_number
    assert by_number["'+262 692 12 34 56"][1] == "Réunion"


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("", ""),
        ("Jean", "Jean"),
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("'x", "'x"),
        ("''-x", "'''-x"),
    ],
)
def test_guard(cell: str, shown: str) -> None:
    assert guard(cell) == shown


@given(st.text(alphabet=st.sampled_from(list("'=+-@\t\rax ")), max_size=8))
def test_importer_removes_exactly_the_guard(cell: str) -> None:
    assert unguard(guard(cell)) == cell


def test_round_trip_reimports_with_zero_changes(ctx: Context, tmp_path: Path) -> None:
    people = [
        ContactInput(
            number="06 12 34 56 78",
            name="Élodie Garçon",
            zone="Les Prés",
            groups=("parents", "aînés"),
            notes='clé; chez "la" voisine',
        ),
        ContactInput(number="07 81 23 45 67", name="Dupont, Jean", zone="Centre"),
        ContactInput(number="01 42 68 53 00", name="Mairie", groups=("élus",)),
        ContactInput(number="+262 692 12 34 56", name="=Cousin\nRéunion", notes="@midi"),
        ContactInput(number="06 12 34 56 79", name="", zone="-", notes="'+1"),
        ContactInput(number="0696 12 34 56", name="Œdipe Æsir", zone="Côte Saint-Jean"),
    ]
    for person in people:
        add_contact(ctx, person)
    gone = add_contact(ctx, ContactInput(number="06 12 34 56 80", name="Parti"))
    erase_contact(ctx, gone.id or 0)
    before = snapshot(ctx)
    path = tmp_path / "export.csv"
    assert export_file(ctx, path) == len(people)
    report = import_contacts(ctx, path, ImportOptions())
    assert report.issues == [i for i in report.issues if i.code == "not_mobile"]
    assert (report.rows, report.unchanged, report.imported, report.updated) == (6, 6, 0, 0)
    assert snapshot(ctx) == before
    assert audit_actions(ctx)[-2:] == ["contact.export", "contact.import"]


def test_round_trip_in_an_overseas_town(engine: Engine, clock: FrozenClock, tmp_path: Path) -> None:
    town = make_context(
        engine,
        Config(town=TownConfig(region="RE", timezone="Indian/Reunion")),
        clock,
    )
    # A metropolitan freephone number reads as a Réunion one in its national form.
    add_contact(town, ContactInput(number="+33 800 12 34 56", name="Numéro vert"))
    add_contact(town, ContactInput(number="0692 12 34 56", name="Voisine"))
    path = tmp_path / "export.csv"
    export_file(town, path)
    cells = {
        row[1]: row[0]
        for row in csv.reader(io.StringIO(path.read_text("utf-8-sig")), delimiter=";")
    }
    assert cells["Numéro vert"] == "'+33800123456"
    before = snapshot(town)
    report = import_contacts(town, path, ImportOptions())
    assert (report.unchanged, report.imported) == (2, 0)
    assert snapshot(town) == before


def test_pages_through_the_base(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(11):
        add_contact(ctx, ContactInput(number=f"06 12 34 56 {i:02d}", name=f"Nom {10 - i:02d}"))
    calls: list[int] = []
    real = queries.page_contacts

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs["limit"])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(exporter, "page_contacts", spy)
    _, rows = exported(ctx, page_size=4)
    assert [row[1] for row in rows[1:]] == [f"Nom {i:02d}" for i in range(11)]
    assert calls == [4, 4, 4]
    calls.clear()
    _, rows = exported(ctx, page_size=11)
    assert len(rows) == 12 and calls == [11, 11]


def test_query_and_erased_contacts(ctx: Context) -> None:
    add_contact(ctx, ContactInput(number="06 12 34 56 78", name="A", zone="Centre"))
    add_contact(ctx, ContactInput(number="06 12 34 56 79", name="B", zone="Les Prés"))
    gone = add_contact(ctx, ContactInput(number="06 12 34 56 80", name="C", zone="Centre"))
    erase_contact(ctx, gone.id or 0)
    _, rows = exported(ctx, query=ContactQuery(zone="Centre"))
    assert [row[1] for row in rows[1:]] == ["A"]
    _, rows = exported(ctx)
    assert [row[1] for row in rows[1:]] == ["A", "B"]


def test_viewer_may_not_export(engine: Engine, config: Config, clock: FrozenClock) -> None:
    viewer = make_context(engine, config, clock, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        export_contacts(viewer, io.StringIO())


def test_one_bom_whatever_the_stream(ctx: Context, tmp_path: Path) -> None:
    add_contact(ctx, ContactInput(number="06 12 34 56 78", name="Élodie"))
    for encoding in ("utf-8", "utf-8-sig"):
        path = tmp_path / f"{encoding}.csv"
        with path.open("w", encoding=encoding, newline="") as out:
            export_contacts(ctx, out)
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbftelephone;")
        assert data.count(b"\xef\xbb\xbf") == 1
