"""Reports for the town's DPO: the consent register of a topic (CSV or PDF), a
resident's right-of-access file (PDF or JSON), the withdrawals log (CSV).

PDFs are made with fpdf2 (pure Python), in the console's language, landscape A4,
paged; every page carries the town's name, the date, and both chains' keyed heads
(`tocsin audit head`), so a printed copy anchors the ledger outside the database.
Rows are set in a monospaced core font, one text run per line, so a register of
100,000 residents stays in seconds and tens of megabytes.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from sqlalchemy import select

from console.audit import chain_heads
from console.consent.coverage import suppressed_ids
from console.consent.journal import JournalFilter, JournalLine, journal, resident_history
from console.consent.replay import decisions_at
from console.consent.suppression import number_hash
from console.contacts.exporter import guard
from console.context import Context
from console.i18n import Translator
from console.roles import Role
from storage.engine import read_session
from storage.models import Suppression, consent_event_table, contact_table, suppression_table


def _town_time(ctx: Context, when: datetime, *, seconds: bool = False) -> str:
    local = when.astimezone(ZoneInfo(ctx.config.town.timezone))
    return local.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def _plain(text: str) -> str:
    """A resident's text as plain printable characters: controls (escape codes,
    newlines) become spaces; nothing is interpreted."""
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)


# --- PDF ----------------------------------------------------------------------------

_FONT = "Courier"
_SIZE = 7.0
_CHAR_MM = _SIZE * 0.6 * 25.4 / 72  # Courier's advance is 0.6 em
_LINE_MM = 3.3
_PAGES_ALIAS = "{nb_pages}"


_TYPOGRAPHY = str.maketrans(
    {
        "—": "-",
        "–": "-",
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "…": "...",
        "€": "EUR",
        "œ": "oe",
        "Œ": "OE",
    }
)


def _latin(text: str) -> str:
    """Core PDF fonts are Latin-1 (all of French's accents): typography becomes its
    plain equivalent, anything else (emoji, CJK) prints as '?'."""
    return _plain(text).translate(_TYPOGRAPHY).encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, title: str, town: str, issued: str, heads: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.title_text, self.town, self.issued, self.heads = title, town, issued, heads
        self.set_auto_page_break(auto=False)
        self.set_margins(10, 10, 10)
        # Wider than any page count, so the footer's layout never has to guess.
        self.alias_nb_pages(_PAGES_ALIAS)
        self.set_title(_latin(title))
        self.set_creator("Tocsin")
        self.page_label = "{page}/{pages}"
        self.columns = 0

    def header(self) -> None:
        self.set_font("Helvetica", "B", 11)
        self.set_xy(10, 8)
        self.cell(0, 5, _latin(self.town), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 9)
        self.cell(0, 4.5, _latin(self.title_text), new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 4.5, _latin(self.issued), new_x="LMARGIN", new_y="NEXT")
        self.line(10, 23, 287, 23)

    def footer(self) -> None:
        self.set_font(_FONT, "", 5.5)
        self.line(10, 196, 287, 196)
        self.text(10, 199.5, _latin(self.heads))
        self.set_font("Helvetica", "", 8)
        label = self.page_label.format(page=self.page_no(), pages=_PAGES_ALIAS)
        self.set_xy(10, 201)
        # cell(), not text(): fpdf2 fills in the page count in cells only.
        self.cell(0, 4, _latin(label))


@dataclass
class _Writer:
    pdf: _Pdf
    y: float = 0.0
    header_line: str = ""

    TOP = 27.0
    BOTTOM = 193.0

    def new_page(self) -> None:
        self.pdf.add_page()
        self.y = self.TOP
        if self.header_line:
            self.pdf.set_font(_FONT, "B", _SIZE)
            self.pdf.text(10, self.y, _latin(self.header_line))
            self.y += _LINE_MM + 0.7
        self.pdf.set_font(_FONT, "", _SIZE)

    def line(self, text: str, *, bold: bool = False) -> None:
        if self.y == 0.0 or self.y > self.BOTTOM:
            self.new_page()
        if bold:
            self.pdf.set_font(_FONT, "B", _SIZE)
        self.pdf.text(10, self.y, _latin(text))
        if bold:
            self.pdf.set_font(_FONT, "", _SIZE)
        self.y += _LINE_MM

    def gap(self) -> None:
        self.y += _LINE_MM / 2


def _fit(text: str, width: int) -> str:
    text = _plain(text)
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"


def _row(cells: Sequence[tuple[str, int]]) -> str:
    return " ".join(_fit(text, width) for text, width in cells).rstrip()


def _new_pdf(ctx: Context, t: Translator, title: str) -> _Pdf:
    heads = chain_heads(ctx.engine, ctx.hash_key)
    described = "  ".join(f"{chain} {head}" for chain, head in heads.items())
    pdf = _Pdf(
        title,
        ctx.config.town.name,
        t("report.generated", date=_town_time(ctx, ctx.clock.now())),
        t("report.heads", heads=described),
    )
    pdf.page_label = t("report.page", page="{page}", pages="{pages}")
    return pdf


# --- the register -------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterRow:
    contact_id: int
    name: str
    number: str
    zone: str
    state: str  # consented | withdrawn | never_asked | mission | stop
    source: str
    proof_ref: str
    text_version: str
    decided_at: datetime | None


def register_rows(ctx: Context, topic: str, at: datetime | None = None) -> Iterator[RegisterRow]:
    """Every live resident's state for `topic` at `at` (default: now), by id."""
    ctx.require(Role.VIEWER)
    if topic not in ctx.config.topics:
        from console.consent.ledger import ConsentError

        raise ConsentError(
            f"unknown topic {topic!r} (known: {', '.join(ctx.topics)})",
            "consent_topic",
            topic=topic,
        )
    when = at or ctx.clock.now()
    public = ctx.config.topics[topic].legal_basis == "public_safety"
    contact = contact_table
    event = consent_event_table
    decided = decisions_at(when, topic).subquery()
    query = (
        select(
            contact.c.id,
            contact.c.name,
            contact.c.number,
            contact.c.zone,
            decided.c.granted,
            event.c.source,
            event.c.proof_ref,
            event.c.text_version,
            event.c.occurred_at,
        )
        .outerjoin(decided, decided.c.contact_id == contact.c.id)
        .outerjoin(event, event.c.id == decided.c.id)
        .where(contact.c.erased_at.is_(None), contact.c.created_at <= when)
        .order_by(contact.c.id)
    )
    with read_session(ctx.engine) as session:
        conn = session.connection()
        stopped = suppressed_ids(conn, ctx)
        if stopped and at is not None:
            # Only the numbers already on the list on that date.
            since = {
                digest: created
                for digest, created in conn.execute(
                    select(suppression_table.c.number_hash, suppression_table.c.created_at)
                )
            }
            numbers: dict[int, str] = dict(
                conn.execute(
                    select(contact.c.id, contact.c.number).where(contact.c.id.in_(sorted(stopped)))
                ).all()
            )
            stopped = {
                cid
                for cid in stopped
                if (created := since.get(number_hash(ctx.hash_key, numbers[cid]))) is not None
                and _utc(created) <= when
            }
        for row in conn.execute(query.execution_options(yield_per=5000)):
            cid, name, number, zone, granted, source, proof, version, occurred = row
            if cid in stopped:
                state = "stop"
            elif granted is None:
                state = "mission" if public else "never_asked"
            else:
                state = "consented" if granted else "withdrawn"
            yield RegisterRow(
                cid,
                name,
                number or "",
                zone,
                state,
                source or "",
                proof or "",
                version or "",
                _utc(occurred) if occurred is not None else None,
            )


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _source(t: Translator, source: str) -> str:
    return t(f"source.{source}") if source else ""


def write_register_csv(ctx: Context, out: IO[str], topic: str, at: datetime | None = None) -> int:
    t = Translator(ctx.config.console.language)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            "id",
            t("cons.col.resident"),
            t("cons.col.number"),
            t("cons.col.zone"),
            t("cons.col.state"),
            t("cons.col.source"),
            t("cons.col.proof"),
            t("cons.col.version"),
            t("cons.col.date"),
        ]
    )
    count = 0
    for row in register_rows(ctx, topic, at):
        writer.writerow(
            [
                str(row.contact_id),
                guard(_plain(row.name)),
                guard(row.number),
                guard(_plain(row.zone)),
                t(f"cov.state.{row.state}"),
                _source(t, row.source),
                guard(_plain(row.proof_ref)),
                guard(row.text_version),
                _town_time(ctx, row.decided_at) if row.decided_at else "",
            ]
        )
        count += 1
    return count


_REGISTER_COLUMNS = (7, 28, 13, 16, 16, 22, 42, 10, 16)


def write_register_pdf(ctx: Context, path: Path, topic: str, at: datetime | None = None) -> int:
    t = Translator(ctx.config.console.language)
    label = ctx.config.topics[topic].label if topic in ctx.config.topics else topic
    title = t("report.register.title", topic=label)
    if at is not None:
        title += " — " + t("report.register.at", date=_town_time(ctx, at))
    pdf = _new_pdf(ctx, t, title)
    heads = (
        "#",
        t("cons.col.resident"),
        t("cons.col.number"),
        t("cons.col.zone"),
        t("cons.col.state"),
        t("cons.col.source"),
        t("cons.col.proof"),
        t("cons.col.version"),
        t("cons.col.date"),
    )
    writer = _Writer(pdf, header_line=_row(list(zip(heads, _REGISTER_COLUMNS, strict=True))))
    count = 0
    states = {
        s: t(f"cov.state.{s}") for s in ("consented", "withdrawn", "never_asked", "mission", "stop")
    }
    sources: dict[str, str] = {}
    for row in register_rows(ctx, topic, at):
        source = sources.get(row.source)
        if source is None:
            source = sources[row.source] = _source(t, row.source)
        cells = (
            str(row.contact_id),
            row.name,
            row.number,
            row.zone,
            states[row.state],
            source,
            row.proof_ref,
            row.text_version,
            _town_time(ctx, row.decided_at) if row.decided_at else "",
        )
        writer.line(_row(list(zip(cells, _REGISTER_COLUMNS, strict=True))))
        count += 1
    if count == 0:
        writer.line(t("report.none"))
    _output(pdf, path)
    return count


def _output(pdf: FPDF, path: Path) -> None:
    """Written whole or not at all: a half-written register is worse than none."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        pdf.output(str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


# --- the withdrawals log ------------------------------------------------------------


def withdrawals(ctx: Context, since: datetime) -> Iterator[JournalLine]:
    ctx.require(Role.VIEWER)
    last: int | None = None
    while True:
        page = journal(
            ctx, JournalFilter(since=since), before_seq=last, limit=5000, newest_first=False
        )
        if not page:
            return
        for line in page:
            if line.action == "withdraw":
                yield line
        last = page[-1].seq


def write_withdrawals_csv(ctx: Context, out: IO[str], since: datetime) -> int:
    t = Translator(ctx.config.console.language)
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            t("cons.col.date"),
            "id",
            t("cons.col.resident"),
            t("cons.col.topic"),
            t("cons.col.source"),
            t("cons.col.proof"),
            t("cons.col.operator"),
            "seq",
        ]
    )
    count = 0
    for line in withdrawals(ctx, since):
        writer.writerow(
            [
                _town_time(ctx, line.occurred_at),
                str(line.contact_id),
                guard(_plain(line.name)),
                line.topic,
                _source(t, line.source),
                guard(_plain(line.proof_ref)),
                guard(_plain(line.operator)),
                str(line.seq),
            ]
        )
        count += 1
    return count


# --- right of access ----------------------------------------------------------------


def access_data(ctx: Context, contact_id: int) -> dict[str, Any]:
    """Everything Tocsin holds on one resident (RGPD art. 15)."""
    ctx.require(Role.VIEWER)
    history = resident_history(ctx, contact_id, message_limit=1_000_000)
    contact = history.contact
    with read_session(ctx.engine) as session:
        suppressed = bool(contact.number) and (
            session.get(Suppression, number_hash(ctx.hash_key, contact.number or "")) is not None
        )
    return {
        "contact": {
            "id": contact.id,
            "name": contact.name,
            "number": contact.number or "",
            "zone": contact.zone,
            "groups": [g for g in contact.groups.split(",") if g],
            "notes": contact.notes,
            "source": contact.source,
            "created_at": _utc(contact.created_at).isoformat(),
            "updated_at": _utc(contact.updated_at).isoformat(),
            "erased_at": _utc(contact.erased_at).isoformat() if contact.erased_at else None,
        },
        "consents": [line.to_json() for line in history.decisions],
        "messages": [
            {
                "id": m.id,
                "campaign_id": m.campaign_id,
                "topic": m.topic,
                "created_at": _utc(m.created_at).isoformat(),
                "updated_at": _utc(m.updated_at).isoformat(),
                "state": m.state,
                "reason": m.reason,
                "text": m.text,
            }
            for m in history.messages
        ],
        "inbound": [
            {
                "id": i.id,
                "received_at": _utc(i.received_at).isoformat(),
                "text": i.text,
                "kind": i.kind,
                "status": i.status,
            }
            for i in history.inbound
        ],
        "suppressed": suppressed,
        "chain_heads": chain_heads(ctx.engine, ctx.hash_key),
    }


def access_json(ctx: Context, contact_id: int) -> str:
    return json.dumps(access_data(ctx, contact_id), ensure_ascii=False, indent=2, sort_keys=True)


def write_access_pdf(ctx: Context, path: Path, contact_id: int) -> None:
    t = Translator(ctx.config.console.language)
    data = access_data(ctx, contact_id)
    pdf = _new_pdf(ctx, t, t("report.access.title", id=contact_id))
    w = _Writer(pdf)
    c = data["contact"]

    def when(iso: str | None) -> str:
        return _town_time(ctx, datetime.fromisoformat(iso)) if iso else ""

    w.line(t("report.contact"), bold=True)
    for key, value in (
        ("name", c["name"]),
        ("number", c["number"]),
        ("zone", c["zone"]),
        ("groups", ", ".join(c["groups"])),
        ("notes", c["notes"]),
        ("source", c["source"]),
        ("created", when(c["created_at"])),
        ("updated", when(c["updated_at"])),
        ("erased", when(c["erased_at"])),
    ):
        w.line(_row([(t(f"report.field.{key}"), 16), (str(value), 160)]))
    w.line(
        _row(
            [
                (t("report.suppressed"), 28),
                (t("report.yes") if data["suppressed"] else t("report.no"), 10),
            ]
        )
    )
    w.gap()
    w.line(t("report.consents"), bold=True)
    for e in data["consents"] or []:
        w.line(
            _row(
                [
                    (when(e["occurred_at"]), 16),
                    (e["topic"], 12),
                    (t(f"consent.{e['action']}"), 9),
                    (_source(t, e["source"]), 24),
                    (e["proof_ref"], 60),
                    (e["text_version"], 10),
                    (e["operator"], 20),
                    (f"#{e['seq']}", 8),
                ]
            )
        )
    if not data["consents"]:
        w.line(t("report.none"))
    w.gap()
    w.line(t("report.messages"), bold=True)
    for m in data["messages"]:
        w.line(
            _row(
                [
                    (when(m["created_at"]), 16),
                    (m["topic"], 12),
                    (t(f"state.{m['state']}"), 14),
                    (m["text"], 130),
                ]
            )
        )
    if not data["messages"]:
        w.line(t("report.none"))
    w.gap()
    w.line(t("report.inbound"), bold=True)
    for i in data["inbound"]:
        w.line(_row([(when(i["received_at"]), 16), (i["text"], 150)]))
    if not data["inbound"]:
        w.line(t("report.none"))
    _output(pdf, path)
