"""Import a town hall's resident CSV into the contact base.

What town halls really have: Excel exports in Windows-1252 or UTF-8 (with or without
BOM), sometimes UTF-16 ("texte Unicode"), separated by `;`, `,` or tabs, with French
or English headers. One run imports every good row and reports every other one with
the line a spreadsheet user would look at.

Decisions:

- Columns the file does not have are left untouched on existing contacts; a column
  the file has is authoritative, an empty cell included. So a list of numbers and
  names never wipes the zones and notes typed in the console.
- Counts: `rows = imported + updated + unchanged + rejected`; `flagged` counts rows
  that were kept but carry a warning (not a mobile, STOP, withdrawn consent), so it
  overlaps the first three.
- `--consent` never re-grants a consent the resident withdrew: a bulk list must not
  undo an individual decision. Such rows are flagged (`withdrawn`).
- A cell the exporter guarded against formula injection ('=..., '+..., ...) loses
  its apostrophe again, so an export re-imports unchanged.
- One transaction for the whole file: a file that fails half-way writes nothing.

Speed (bench/bench_import.py: 100,000 rows in about 1.2 times what
phonenumbers.parse alone takes on the same numbers): rows are checked in the main
thread and handed over in chunks to one worker thread that writes them, each chunk
as one INSERT ... SELECT from a JSON parameter, during which the driver releases
the GIL; good rows are kept as plain tuples, which the garbage collector soon stops
tracking. The worker is the only user of the session until it is done.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Connection, String, Table, bindparam, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session

from console.audit import CONSENT_CHAIN, append_audit, consent_fields
from console.consent.ledger import ConsentError, ConsentRequest, validate
from console.consent.suppression import number_hash
from console.contacts.numbers import InvalidNumber
from console.contacts.service import (
    MAX_NAME,
    MAX_NOTES,
    MAX_ZONE,
    CleanContact,
    ContactError,
    ContactInput,
    check,
    groups_column,
    normalise_groups,
)
from console.context import Context
from console.roles import Role
from console.text import clean_field, fold
from storage.chain import commit_link, reserve_links
from storage.engine import read_session, write_session
from storage.models import (
    ConsentEvent,
    ConsentState,
    Contact,
    ContactGroup,
    Suppression,
)

FIELDS = ("number", "name", "first_name", "zone", "groups", "notes")
MAX_GROUPS_COLUMN = 500  # Contact.groups is VARCHAR(500)
# SQLite's default limit on bound variables is 999 on older builds.
CHUNK = 900
# Good rows handed to the database at a time.
CHUNK_ROWS = 5_000
# SQLite page cache while importing (see _big_cache).
IMPORT_CACHE_KIB = 64 * 1024

Status = Literal["rejected", "flagged"]
IssueCode = Literal[
    "invalid_number",
    "missing_number",
    "missing_column",
    "duplicate",
    "bad_encoding",
    "invalid_field",
    "not_mobile",
    "suppressed",
    "withdrawn",
]

_CONTACT = cast(Table, cast(Any, Contact).__table__)
_GROUP = cast(Table, cast(Any, ContactGroup).__table__)
_EVENT = cast(Table, cast(Any, ConsentEvent).__table__)
_STATE = cast(Table, cast(Any, ConsentState).__table__)
_SUPPRESSION = cast(Table, cast(Any, Suppression).__table__)

# The columns a CleanContact decides, in the order _values() returns them.
VALUE_COLUMNS = (
    "number",
    "number_kind",
    "sendable",
    "name",
    "zone",
    "groups",
    "notes",
    "sort_key",
    "search_key",
)


class ImportFailed(Exception):
    """The file cannot be imported at all; str() names the file and the reason."""


@dataclass(frozen=True)
class ImportOptions:
    # field (number, name, first_name, zone, groups, notes) -> header name or 1-based
    # column number as a string; "" ignores a column the detection would have used.
    mapping: Mapping[str, str] = field(default_factory=dict)
    # Contact.source for new contacts; "" means "import:<file name>".
    source: str = ""
    dry_run: bool = False
    # ";", ",", "\t" or "" to detect.
    delimiter: str = ""
    consent_topic: str | None = None
    consent_source: str = ""
    consent_proof: str = ""
    consent_text_version: str = ""
    # More topics granted on the same terms (a rented list covers several), and when
    # the residents consented (the list's date; default: now).
    consent_more_topics: tuple[str, ...] = ()
    consent_at: datetime | None = None

    @property
    def consent_topics(self) -> tuple[str, ...]:
        first = (self.consent_topic,) if self.consent_topic else ()
        return tuple(dict.fromkeys((*first, *self.consent_more_topics)))


@dataclass
class RowIssue:
    line: int
    status: Status
    reason: str
    raw: list[str]
    code: IssueCode
    reason_fr: str = ""

    def message(self, language: str) -> str:
        return (self.reason_fr or self.reason) if language == "fr" else self.reason


@dataclass
class ImportReport:
    file: str
    encoding: str
    delimiter: str
    mapping: dict[str, str]
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    flagged: int = 0
    rejected: int = 0
    consents_recorded: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    dry_run: bool = False
    consent_topic: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable shape scripts rely on.

        {"file", "encoding", "delimiter", "dry_run", "mapping": {field: header},
         "counts": {"rows", "imported", "updated", "unchanged", "flagged", "rejected",
                    "consents_recorded"} (integers),
         "rejected": [{"line", "code", "reason"}], "flagged": [{"line", "code", "reason"}]}
        Reasons are English; codes are the IssueCode values.
        """
        issues = sorted(self.issues, key=lambda i: i.line)
        return {
            "file": self.file,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "dry_run": self.dry_run,
            "mapping": dict(self.mapping),
            "counts": {
                "rows": self.rows,
                "imported": self.imported,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "flagged": self.flagged,
                "rejected": self.rejected,
                "consents_recorded": self.consents_recorded,
            },
            "rejected": [
                {"line": i.line, "code": i.code, "reason": i.reason}
                for i in issues
                if i.status == "rejected"
            ],
            "flagged": [
                {"line": i.line, "code": i.code, "reason": i.reason}
                for i in issues
                if i.status == "flagged"
            ],
        }

    def write_rejects(self, path: Path, language: str = "en") -> int:
        """Write the rejected rows so they can be fixed in Excel and imported again.

        Columns: line, reason, then the original header. UTF-8 with a BOM (Excel reads
        accents right) and the file's own separator. The two extra columns are never
        taken for data on re-import; a mapping given by column number must add 2.
        """
        rejected = sorted((i for i in self.issues if i.status == "rejected"), key=lambda i: i.line)
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.delimiter or ";")
            writer.writerow(["line", "reason", *self.header])
            for issue in rejected:
                writer.writerow([str(issue.line), issue.message(language), *issue.raw])
        return len(rejected)

    def summary_lines(self, language: str = "fr") -> list[str]:
        lines: list[str] = []
        if language == "fr":
            if self.dry_run:
                lines.append("Essai à blanc : rien n'a été enregistré.")
            lines.append(
                f"{_fr(self.rows, 'ligne lue', 'lignes lues')} : "
                f"{_fr(self.imported, 'importée', 'importées')}, "
                f"{_fr(self.updated, 'mise à jour', 'mises à jour')}, "
                f"{_fr(self.unchanged, 'inchangée', 'inchangées')}, "
                f"{_fr(self.flagged, 'signalée', 'signalées')}, "
                f"{_fr(self.rejected, 'rejetée', 'rejetées')}"
            )
            if self.consent_topic:
                lines.append(
                    _fr(
                        self.consents_recorded,
                        "consentement enregistré",
                        "consentements enregistrés",
                    )
                    + f" pour « {self.consent_topic} »"
                )
        else:
            if self.dry_run:
                lines.append("Dry run: nothing was written.")
            lines.append(
                f"{_en(self.rows, 'row')} read: {self.imported} imported, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.flagged} flagged, {self.rejected} rejected"
            )
            if self.consent_topic:
                lines.append(
                    f"{_en(self.consents_recorded, 'consent')} recorded for {self.consent_topic!r}"
                )
        for issue in sorted(self.issues, key=lambda i: (i.line, i.status)):
            if language == "fr":
                lines.append(f"ligne {issue.line} : {issue.message('fr')}")
            else:
                lines.append(f"line {issue.line}: {issue.reason}")
        return lines


def _fr(count: int, singular: str, plural: str) -> str:
    # French uses the singular for 0 and 1.
    return f"{count} {singular if count <= 1 else plural}"


def _en(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


# --- reading the file ---------------------------------------------------------------

_BAD_BYTES = re.compile("[\udc80-\udcff]")
# A lead byte and a continuation byte: any non-ASCII UTF-8 text has one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_EXCEL_SIGNATURES = {
    b"PK\x03\x04": "an Excel or LibreOffice workbook (.xlsx/.ods)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}


@dataclass
class _Text:
    lines: list[str]
    encoding: str
    # True when some line has bytes that mean nothing in the encodings we try.
    maybe_bad: bool


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImportFailed(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise ImportFailed(f"{path}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise ImportFailed(f"{path}: permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc
    for signature, what in _EXCEL_SIGNATURES.items():
        if data.startswith(signature):
            raise ImportFailed(
                f"{path}: this is {what}, not a CSV file; in the spreadsheet use "
                "File > Save as > CSV (separator: semicolon)"
            )
    return data


def _split(text: str) -> list[str]:
    # Lines end at \r, \n or \r\n only, as csv expects with newline="".
    return list(io.StringIO(text, newline=""))


def _decode(path: Path, data: bytes) -> _Text:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export.
        try:
            return _Text(_split(data.decode("utf-16")), "utf-16", False)
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{path}: not valid UTF-16 ({exc.reason})") from exc
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data, encoding = data[len(codecs.BOM_UTF8) :], "utf-8-sig"
    try:
        return _Text(_split(data.decode("utf-8")), encoding, False)
    except UnicodeDecodeError:
        pass
    # Windows-1252. Bytes it leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d) become
    # lone surrogates, so that their row is rejected and not the whole file.
    if _UTF8_SEQUENCE.search(data) is None:
        text = data.decode("cp1252", errors="surrogateescape")
        return _Text(_split(text), "cp1252", _BAD_BYTES.search(text) is not None)
    # Some lines look like UTF-8 (pasted from another file): decode line by line.
    lines: list[str] = []
    maybe_bad = False
    # bytes.splitlines breaks at \r, \n and \r\n only, like _split.
    for raw in data.splitlines(keepends=True):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="surrogateescape")
            maybe_bad = maybe_bad or _BAD_BYTES.search(line) is not None
            lines.append(line)
    return _Text(lines, "cp1252", maybe_bad)


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _detect_delimiter(lines: Sequence[str]) -> str:
    """The separator the header line uses most (then the first data lines)."""
    candidates = (";", "\t", ",")  # ties go to the French Excel habit
    sample = [line for line in lines[:20] if line.strip()][:6]
    for line in sample:
        count, best = max((_count_outside_quotes(line, c), -i) for i, c in enumerate(candidates))
        if count > 0:
            return candidates[-best]
    return ";"


# --- header detection ---------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _norm(header: str) -> str:
    return " ".join(_NOT_ALNUM.sub(" ", fold(header)).split())


_MOBILE_WORDS = frozenset({"mobile", "portable", "gsm", "cellulaire", "cell", "mob", "port"})
_PHONE_WORDS = frozenset({"telephone", "tel", "phone", "tel1", "telephone1", "sms"})
_BARE_NUMBER = frozenset({"numero", "num", "no", "n", "number", "numero de telephone"})
_LANDLINE_WORDS = frozenset({"fixe", "fix", "domicile", "home", "landline", "bureau", "work"})
_NOT_PHONE_WORDS = frozenset(
    {"fax", "rue", "voie", "adresse", "address", "street", "postal", "cp", "email", "mail"}
)
_FULL_NAME = frozenset(
    {
        "nom complet",
        "nom et prenom",
        "nom et prenoms",
        "nom prenom",
        "prenom nom",
        "prenom et nom",
        "full name",
        "fullname",
        "name",
        "identite",
        "habitant",
        "resident",
    }
)
_LAST_NAME = frozenset(
    {"nom", "nom de famille", "nom usuel", "last name", "lastname", "surname", "family name"}
)
_FIRST_NAME = frozenset({"prenom", "prenoms", "first name", "firstname", "given name"})
_ZONE_WORDS = frozenset(
    {"quartier", "zone", "secteur", "hameau", "district", "area", "sector", "neighbourhood"}
)
_GROUPS = frozenset({"groupes", "groupe", "groups", "group", "tags"})
_NOTES = frozenset(
    {
        "notes",
        "note",
        "remarques",
        "remarque",
        "commentaire",
        "commentaires",
        "comment",
        "comments",
        "observations",
        "observation",
        "remarks",
    }
)


def _number_score(norm: str) -> float:
    words = set(norm.split())
    if not words or words & _NOT_PHONE_WORDS:
        return 0.0
    if words & _MOBILE_WORDS:
        score = 3.0
    elif words & _PHONE_WORDS:
        score = 2.0
    elif norm in _BARE_NUMBER:
        score = 1.0
    else:
        return 0.0
    # A file with both a landline and a mobile column: the mobile is the one to text.
    if words & _LANDLINE_WORDS:
        score -= 1.5
    return score


def _detect(header: Sequence[str]) -> dict[str, int]:
    """Field -> column index, from header names in French or English."""
    norms = [_norm(h) for h in header]
    found: dict[str, int] = {}
    score, index = max(((_number_score(n), -i) for i, n in enumerate(norms)), default=(0.0, 0))
    if score > 0:
        found["number"] = -index

    def first(names: frozenset[str], words: bool = False) -> int | None:
        for i, norm in enumerate(norms):
            if i in found.values():
                continue
            if norm in names or (words and not set(norm.split()).isdisjoint(names)):
                return i
        return None

    full = first(_FULL_NAME)
    if full is not None:
        found["name"] = full
    else:
        last = first(_LAST_NAME)
        if last is not None:
            found["name"] = last
        given = first(_FIRST_NAME)
        if given is not None:
            found["first_name"] = given
    for name, names, words in (
        ("zone", _ZONE_WORDS, True),
        ("groups", _GROUPS, False),
        ("notes", _NOTES, False),
    ):
        column = first(names, words)
        if column is not None:
            found[name] = column
    return found


def _resolve_mapping(
    path: Path, header: Sequence[str], detected: dict[str, int], overrides: Mapping[str, str]
) -> dict[str, int]:
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ImportFailed(
            f"{path}: unknown field(s) in the mapping: {', '.join(unknown)} "
            f"(known: {', '.join(FIELDS)})"
        )
    mapping = dict(detected)
    for name, target in overrides.items():
        target = target.strip()
        if not target:
            mapping.pop(name, None)
            continue
        if target.isdigit():
            index = int(target) - 1
            if not 0 <= index < len(header):
                raise ImportFailed(
                    f"{path}: mapping {name}={target}: the file has {len(header)} columns"
                )
        else:
            found = _find_header(header, target)
            if found is None:
                raise ImportFailed(
                    f"{path}: mapping {name}={target!r}: no such column; "
                    f"headers seen: {_headers_seen(header)}"
                )
            index = found
        # A column given explicitly to one field is not also guessed for another.
        mapping = {k: v for k, v in mapping.items() if v != index}
        mapping[name] = index
    return mapping


def _find_header(header: Sequence[str], target: str) -> int | None:
    for i, h in enumerate(header):
        if h.strip() == target:
            return i
    wanted = _norm(target)
    for i, h in enumerate(header):
        if _norm(h) == wanted:
            return i
    return None


def _headers_seen(header: Sequence[str]) -> str:
    shown = [h.strip() or f"(column {i + 1} has no name)" for i, h in enumerate(header)]
    return ", ".join(shown) if shown else "(none)"


def _column_label(header: Sequence[str], index: int) -> str:
    name = header[index].strip() if index < len(header) else ""
    return name or f"column {index + 1}"


# --- per-row checks -----------------------------------------------------------------

_GROUP_SPLIT = re.compile(r"[,;|]")
_GUARDED = re.compile("'+[=+\\-@\t\r]")

_WHY_FR = {
    "empty number": "numéro vide",
    "too short": "trop court",
    "too long": "trop long",
    "not a phone number": "pas un numéro de téléphone",
    "unknown country code": "indicatif pays inconnu",
    "invalid number": "hors du plan de numérotation",
    "letters inside the number": "lettres dans le numéro",
}
_KIND_FR = {
    "fixed_line": "ligne fixe",
    "voip": "numéro VoIP",
    "toll_free": "numéro vert",
    "premium_rate": "numéro surtaxé",
    "shared_cost": "numéro à coût partagé",
}
_FIELD_FR = {"name": "nom", "zone": "quartier", "notes": "notes", "groups": "groupes"}
_LONGER = re.compile(r"^(\w+) longer than (\d+) characters$")


def _unguard(cell: str) -> str:
    """Undo the exporter's formula-injection guard ("'=..." back to "=...").

    The exporter prefixes an apostrophe to any cell matching '*[=+-@ tab CR], so
    exactly one comes off any cell matching '+[=+-@ tab CR].
    """
    return cell[1:] if _GUARDED.match(cell) else cell


def _field_error_fr(message: str) -> str:
    match = _LONGER.match(message)
    if match is None:
        return message
    name, size = match.groups()
    return f"{_FIELD_FR.get(name, name)} de plus de {size} caractères"


def _issue(
    line: int, status: Status, code: IssueCode, reason: str, reason_fr: str, raw: list[str]
) -> RowIssue:
    return RowIssue(line, status, reason, raw, code, reason_fr)


def _contact_error(line: int, number: str, exc: ContactError, row: list[str]) -> RowIssue:
    if exc.field == "number":
        why = str(exc.__cause__) if isinstance(exc.__cause__, InvalidNumber) else str(exc)
        shown = number.strip()
        if len(shown) > 40:
            shown = shown[:39] + "…"
        return _issue(
            line,
            "rejected",
            "invalid_number",
            f"invalid number: {shown}: {why}",
            f"numéro invalide ({shown} : {_WHY_FR.get(why, why)})",
            row,
        )
    return _issue(line, "rejected", "invalid_field", str(exc), _field_error_fr(str(exc)), row)


class _FoldTable(dict[int, str]):
    """str.translate table: each character as fold() turns it, computed on first use."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        self[code] = folded
        return folded


def _fold_char(char: str) -> str:
    """What fold() makes of one character, before it collapses whitespace."""
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold().replace("œ", "oe").replace("æ", "ae")


_FOLD_TABLE = _FoldTable()


def _fold(text: str) -> str:
    """console.text.fold, a character at a time from a table (a test holds them equal).

    fold() decomposes, drops combining marks and case-folds, all character by
    character (canonical reordering only moves the combining marks it drops), then
    collapses whitespace: so a per-character table gives the same result.
    """
    if text.isascii():
        return " ".join(text.lower().split())
    return " ".join(text.translate(_FOLD_TABLE).split())


def _search_key(name: str, zone: str) -> str:
    return fold(f"{name} {zone}")[:320]


def _values(clean: CleanContact) -> tuple[Any, ...]:
    """VALUE_COLUMNS for a CleanContact, as console.contacts.service.apply sets them."""
    number = clean.number
    return (
        number.e164,
        number.kind,
        number.sendable,
        clean.name,
        clean.zone,
        groups_column(clean.groups),
        clean.notes,
        fold(clean.name)[:200],
        _search_key(clean.name, clean.zone),
    )


def contact_values(clean: CleanContact) -> dict[str, Any]:
    """The Contact columns a CleanContact decides (what console.contacts.service.apply sets)."""
    return dict(zip(VALUE_COLUMNS, _values(clean), strict=True))


class _Cleaner:
    """console.contacts.service.check for the rows of one file, as VALUE_COLUMNS tuples.

    Gives exactly _values(check(ctx, ContactInput(...))) (a property test holds the
    two together) for a tenth of the cost: it handles only the usual row itself,
    text without control or line-break characters, which check() merely strips,
    and cleans each distinct quarter and group list once per file. Anything else
    (a multi-line note, a name too long...) goes through check() itself, whose
    rules then apply and which raises the ContactError.
    """

    def __init__(self, ctx: Context, source: str) -> None:
        self.ctx = ctx
        self.parse = ctx.parser.parse
        self.source = source
        # cell -> (clean zone, folded zone), or None when check() must see it
        self.zones: dict[str, tuple[str, str] | None] = {}
        # cell -> groups column
        self.groups: dict[str, str] = {}

    def values(self, number: str, name: str, zone: str, groups: str, notes: str) -> tuple[Any, ...]:
        try:
            phone = self.parse(number)
        except InvalidNumber as exc:
            # check()'s error, without parsing a bad number twice (bad numbers take
            # the slow path, region by region).
            raise ContactError(f"{number.strip() or '(empty)'}: {exc}", "number") from exc
        if zone in self.zones:
            known = self.zones[zone]
        else:
            clean_zone = zone.strip()
            fits = zone.isprintable() and len(clean_zone) <= MAX_ZONE
            known = self.zones[zone] = (clean_zone, _fold(clean_zone)) if fits else None
        if (
            known is None
            or not name.isprintable()
            or not notes.isprintable()
            or len(name) > MAX_NAME
            or len(notes) > MAX_NOTES
        ):
            return self.checked(number, name, zone, groups, notes)
        column = self.groups.get(groups)
        if column is None:
            parts = _GROUP_SPLIT.split(groups) if groups else ()
            column = self.groups[groups] = groups_column(normalise_groups(parts))
        clean_name = name.strip()
        # _fold inlined: this runs once per resident.
        if clean_name.isascii():
            name_key = " ".join(clean_name.lower().split())
        else:
            name_key = " ".join(clean_name.translate(_FOLD_TABLE).split())
        # fold() works character by character, then collapses whitespace: joining
        # the folded parts is fold(f"{name} {zone}") without folding a quarter's
        # name again for each of its residents.
        zone_key = known[1]
        search = f"{name_key} {zone_key}" if name_key and zone_key else name_key or zone_key
        return (
            phone.e164,
            phone.kind,
            phone.sendable,
            clean_name,
            known[0],
            column,
            notes.strip(),
            name_key[:200],
            search[:320],
        )

    def checked(
        self, number: str, name: str, zone: str, groups: str, notes: str
    ) -> tuple[Any, ...]:
        data = ContactInput(
            number=number,
            name=name,
            zone=zone,
            groups=tuple(_GROUP_SPLIT.split(groups)) if groups else (),
            notes=notes,
            source=self.source,
        )
        return _values(check(self.ctx, data))


# A good row: (physical line, VALUE_COLUMNS tuple, original cells when a consent
# check may need to report it). A plain tuple on purpose: the garbage collector
# stops tracking tuples of plain values, and 100,000 tracked rows made its full
# passes a sixth of the import's time.
_Good = tuple[int, tuple[Any, ...], list[str] | None]


@dataclass
class _Source:
    """A readable file with its header understood, before any data row is checked."""

    path: Path
    text: _Text
    delimiter: str
    header: list[str]
    header_end: int  # physical line the header ends on
    mapping: dict[str, int]


def _open_source(ctx: Context, path: Path, options: ImportOptions) -> _Source:
    data = _read_bytes(path)
    if not data.strip():
        raise ImportFailed(f"{path}: the file is empty")
    text = _decode(path, data)
    delimiter = options.delimiter or _detect_delimiter(text.lines)
    if delimiter not in (";", ",", "\t", "|"):
        raise ImportFailed(f"{path}: unsupported separator {delimiter!r}")
    reader = csv.reader(text.lines, delimiter=delimiter)
    header: list[str] | None = None
    start = 0
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
            start = reader.line_num
    except csv.Error as exc:
        raise ImportFailed(f"{path}: line {start + 1}: {exc}") from exc
    if header is None:
        raise ImportFailed(f"{path}: no header line (the file has only blank lines)")
    if text.maybe_bad and any(_BAD_BYTES.search(cell) for cell in header):
        raise ImportFailed(
            f"{path}: line {start + 1}: the header has bytes that are neither UTF-8 nor "
            "Windows-1252; save the file again as CSV UTF-8"
        )
    mapping = _resolve_mapping(path, header, _detect(header), options.mapping)
    if "number" not in mapping:
        if any(_looks_like_number(ctx, cell) for cell in header):
            raise ImportFailed(
                f"{path}: no header line: line {start + 1} already holds data "
                f"({_headers_seen(header)}); add a first line naming the columns "
                "(téléphone;nom;quartier...)"
            )
        raise ImportFailed(
            f"{path}: no phone number column found; headers seen: {_headers_seen(header)}. "
            "Name it téléphone, portable or mobile, or give a mapping (number=<header or "
            "column number>)"
        )
    return _Source(path, text, delimiter, header, reader.line_num, mapping)


def _looks_like_number(ctx: Context, cell: str) -> bool:
    if sum(c.isdigit() for c in cell) < 6:
        return False
    try:
        ctx.parser.parse(cell)
    except InvalidNumber:
        return False
    return True


def _check_rows(
    ctx: Context,
    source: _Source,
    options: ImportOptions,
    issues: list[RowIssue],
    deliver: Callable[[list[_Good]], None],
) -> int:
    """Check every data row; hand good rows over in chunks; return the rows read."""
    mapping = source.mapping
    num_i = mapping["number"]
    name_i = mapping.get("name")
    first_i = mapping.get("first_name")
    zone_i = mapping.get("zone")
    groups_i = mapping.get("groups")
    notes_i = mapping.get("notes")
    cleaner = _Cleaner(ctx, options.source or f"import:{source.path.name}")
    values_of = cleaner.values
    keep_raw = options.consent_topic is not None
    maybe_bad = source.text.maybe_bad
    width = 1 + max(mapping.values())
    padding = [""] * width
    seen: dict[str, int] = {}
    chunk: list[_Good] = []
    rows = 0
    # The lines before and including the header, then one record at a time.
    reader = csv.reader(source.text.lines[source.header_end :], delimiter=source.delimiter)
    offset = source.header_end
    last = 0
    try:
        for row in reader:
            line, last = offset + last + 1, reader.line_num
            if not any(row) or (not row[0].strip() and not "".join(row).strip()):
                continue
            rows += 1
            if maybe_bad and any(_BAD_BYTES.search(c) for c in row):
                issues.append(
                    _issue(
                        line,
                        "rejected",
                        "bad_encoding",
                        "bad encoding",
                        "encodage illisible (caractères ni UTF-8 ni Windows-1252)",
                        [_BAD_BYTES.sub("\ufffd", cell) for cell in row],
                    )
                )
                continue
            size = len(row)
            if num_i >= size:
                issues.append(
                    _issue(
                        line,
                        "rejected",
                        "missing_column",
                        "missing column",
                        f"colonne manquante (le numéro est en colonne {num_i + 1}, "
                        f"la ligne n'a que {size} cellule{'s' if size > 1 else ''})",
                        row,
                    )
                )
                continue
            # Cells missing at the end of a short row read as empty, as in a spreadsheet.
            cells = row if size >= width else row + padding[size:]
            number = cells[num_i]
            if number[:1] == "'":
                number = _unguard(number)
            if not number or number.isspace():
                issues.append(
                    _issue(
                        line, "rejected", "missing_number", "missing number", "numéro manquant", row
                    )
                )
                continue
            name = "" if name_i is None else cells[name_i]
            if name[:1] == "'":
                name = _unguard(name)
            if first_i is not None:
                given = _unguard(cells[first_i]).strip()
                if given:
                    name = f"{given} {name.strip()}".strip()
            zone = "" if zone_i is None else cells[zone_i]
            groups = "" if groups_i is None else cells[groups_i]
            notes = "" if notes_i is None else cells[notes_i]
            try:
                values = values_of(
                    number,
                    name,
                    _unguard(zone) if zone[:1] == "'" else zone,
                    _unguard(groups) if groups[:1] == "'" else groups,
                    _unguard(notes) if notes[:1] == "'" else notes,
                )
            except ContactError as exc:
                issues.append(_contact_error(line, number, exc, row))
                continue
            e164 = values[0]
            first_line = seen.get(e164)
            if first_line is not None:
                issues.append(
                    _issue(
                        line,
                        "rejected",
                        "duplicate",
                        f"duplicate of line {first_line}",
                        f"doublon de la ligne {first_line}",
                        row,
                    )
                )
                continue
            if len(values[5]) > MAX_GROUPS_COLUMN:
                issues.append(
                    _issue(
                        line,
                        "rejected",
                        "invalid_field",
                        f"groups longer than {MAX_GROUPS_COLUMN} characters",
                        f"groupes de plus de {MAX_GROUPS_COLUMN} caractères",
                        row,
                    )
                )
                continue
            seen[e164] = line
            if not values[2]:
                kind = values[1]
                issues.append(
                    _issue(
                        line,
                        "flagged",
                        "not_mobile",
                        "not a mobile",
                        f"pas un numéro mobile ({_KIND_FR.get(kind, kind)}) : "
                        "importé mais ne recevra pas de SMS",
                        row,
                    )
                )
            chunk.append((line, values, row if keep_raw else None))
            if len(chunk) >= CHUNK_ROWS:
                deliver(chunk)
                chunk = []
    except csv.Error as exc:
        raise ImportFailed(
            f"{source.path}: line {offset + last + 1}: {exc} (a quote opened there may "
            "never be closed)"
        ) from exc
    if chunk:
        deliver(chunk)
    return rows


# --- database work ------------------------------------------------------------------

_EXISTING_COLUMNS = ("id", "number", "number_kind", "sendable", "name", "zone", "groups", "notes")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Bulk:
    """Many rows in one statement, which the driver runs without the GIL.

    SQLite and PostgreSQL read the rows from one JSON parameter (json_each,
    json_array_elements), so a chunk is a single call into the database: the
    worker thread inserts while the main thread parses the next chunk. Other
    databases, or a SQLite built without JSON, get a plain executemany.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.quote = self.dialect.identifier_preparer.quote
        style = self.dialect.paramstyle
        if style == "qmark":
            self.mark = "?"
        elif style in ("format", "pyformat"):
            self.mark = "%s"
        else:
            raise RuntimeError(f"unsupported DB-API paramstyle {style}")
        self.json = self._json_available()

    def _json_available(self) -> bool:
        if self.dialect.name == "postgresql":
            return True
        if self.dialect.name != "sqlite":
            return False
        try:
            self.conn.exec_driver_sql("SELECT json_extract('[1]', '$[0]')")
        except DBAPIError:
            return False
        return True

    def _rows_from(self, count: int, casts: Sequence[str] = ()) -> tuple[list[str], str]:
        """Expressions for the fields of each JSON row, and the FROM clause."""
        if self.dialect.name == "sqlite":
            return [f"json_extract(j.value, '$[{i}]')" for i in range(count)], (
                f"json_each({self.mark}) AS j"
            )
        exprs = [
            f"CAST(j.value->>{i} AS {cast})" if cast else f"j.value->>{i}"
            for i, cast in enumerate(casts or [""] * count)
        ]
        return exprs, f"json_array_elements(CAST({self.mark} AS json)) AS j(value)"

    def _constants(self, table: Table, constants: Mapping[str, Any]) -> tuple[Any, ...]:
        # Processed once by their column type, not once per row.
        processed: tuple[Any, ...] = ()
        for name, value in constants.items():
            processor = table.c[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            processed += (processor(value) if processor else value,)
        return processed

    def insert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows (values the driver takes as they are: str, int, bool)."""
        if not rows:
            return
        const = dict(constants or {})
        names = ", ".join(self.quote(n) for n in (*columns, *const))
        extra = self._constants(table, const)
        marks = [self.mark] * len(const)
        if not self.json:
            sql = (
                f"INSERT INTO {self.quote(table.name)} ({names}) "
                f"VALUES ({', '.join([self.mark] * len(columns) + marks)})"
            )
            self.conn.exec_driver_sql(sql, [row + extra for row in rows])
            return
        # Text stays text: a CAST to VARCHAR(n) would cut a long value silently where
        # the INSERT's own conversion refuses it.
        casts = [
            "" if _is_text(table.c[n].type) else table.c[n].type.compile(self.dialect)
            for n in columns
        ]
        exprs, source = self._rows_from(len(columns), casts)
        sql = (
            f"INSERT INTO {self.quote(table.name)} ({names}) "
            f"SELECT {', '.join(exprs + marks)} FROM {source}"
        )
        self.conn.exec_driver_sql(sql, (*extra, _to_json(rows)))

    def insert_groups(self, pairs: Sequence[tuple[str, str]]) -> None:
        """ContactGroup rows for (E.164 number, group) pairs of contacts just inserted."""
        if not pairs:
            return
        group, contact = self.quote(_GROUP.name), self.quote(_CONTACT.name)
        if not self.json:
            self.conn.exec_driver_sql(
                f"INSERT INTO {group} (contact_id, name) "
                f"SELECT id, {self.mark} FROM {contact} WHERE number = {self.mark}",
                [(name, number) for number, name in pairs],
            )
            return
        (number, name), source = self._rows_from(2)
        self.conn.exec_driver_sql(
            f"INSERT INTO {group} (contact_id, name) SELECT c.id, {name} FROM {source} "
            f"JOIN {contact} AS c ON c.number = {number}",
            (_to_json(pairs),),
        )


def _is_text(type_: TypeEngine[Any]) -> bool:
    base = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    return isinstance(base, String)


def _to_json(rows: Sequence[tuple[Any, ...]]) -> str:
    # Rows hold only validated text, numbers and booleans.
    return json.dumps(rows, ensure_ascii=False, check_circular=False, separators=(",", ":"))


@dataclass
class _Outcome:
    new: list[_Good] = field(default_factory=list)
    # (row, contact id) of existing contacts
    updated: list[tuple[_Good, int]] = field(default_factory=list)
    unchanged: list[tuple[_Good, int]] = field(default_factory=list)


class _Writer:
    """The database side of an import, fed chunk by chunk in the caller's transaction.

    When writing it runs in one worker thread; the main thread only touches the
    session again once the worker is done.
    """

    def __init__(
        self,
        conn: Connection,
        mapping: Mapping[str, int],
        now: datetime,
        source: str,
        write: bool,
        expected_rows: int,
    ) -> None:
        self.conn = conn
        self.now = now
        self.source = source
        self.write = write
        self.has_name = "name" in mapping or "first_name" in mapping
        self.has_zone = "zone" in mapping
        self.has_groups = "groups" in mapping
        self.has_notes = "notes" in mapping
        self.outcome = _Outcome()
        self.bulk = _Bulk(conn)
        self.first_new_id = _max_id(conn) + 1
        cols = [_CONTACT.c[name] for name in _EXISTING_COLUMNS]
        number = _CONTACT.c.number
        self.select = select(*cols)
        live = conn.execute(
            select(func.count()).select_from(_CONTACT).where(number.is_not(None))
        ).scalar_one()
        # None: look each chunk up with IN lists. Otherwise what is known now holds
        # for the whole import: this file's numbers are unique already, SQLite's
        # write lock keeps other writers out, and on PostgreSQL a number someone
        # adds meanwhile makes the INSERT, hence the import, fail.
        self.known: dict[str, tuple[Any, ...]] | None = None
        if not live:
            self.known = {}
        elif live <= expected_rows:
            # The base is no bigger than the file: one scan beats many IN lists.
            self.known = {
                row[1]: tuple(row) for row in conn.execute(self.select.where(number.is_not(None)))
            }

    def _existing(self, chunk: Sequence[_Good]) -> dict[str, tuple[Any, ...]]:
        if self.known is not None:
            return self.known
        found: dict[str, tuple[Any, ...]] = {}
        numbers = [good[1][0] for good in chunk]
        for part in _chunks(numbers):
            for row in self.conn.execute(self.select.where(_CONTACT.c.number.in_(part))):
                found[row[1]] = tuple(row)
        return found

    def __call__(self, chunk: list[_Good]) -> None:
        existing = self._existing(chunk)
        outcome = self.outcome
        new: list[_Good] = []
        changed: list[tuple[int, tuple[Any, ...], bool]] = []
        for good in chunk:
            values = good[1]
            old = existing.get(values[0]) if existing else None
            if old is None:
                new.append(good)
                continue
            contact_id, number, kind, sendable, name, zone, groups, notes = old
            merged = (
                values[0],
                values[1],
                values[2],
                values[3] if self.has_name else name,
                values[4] if self.has_zone else zone,
                values[5] if self.has_groups else groups,
                values[6] if self.has_notes else notes,
            )
            if merged == (number, kind, bool(sendable), name, zone, groups, notes):
                outcome.unchanged.append((good, contact_id))
                continue
            outcome.updated.append((good, contact_id))
            keys = (_fold(merged[3])[:200], _search_key(merged[3], merged[4]))
            changed.append((contact_id, merged + keys, merged[5] != groups))
        outcome.new.extend(new)
        if self.write:
            self._update(changed)
            self._insert(new)

    def _insert(self, new: Sequence[_Good]) -> None:
        if not new:
            return
        self.bulk.insert(
            _CONTACT,
            VALUE_COLUMNS,
            [good[1] for good in new],
            {"source": self.source, "created_at": self.now, "updated_at": self.now},
        )
        self.bulk.insert_groups(
            [(good[1][0], name) for good in new if good[1][5] for name in good[1][5].split(",")]
        )

    def _update(self, changed: Sequence[tuple[int, tuple[Any, ...], bool]]) -> None:
        if not changed:
            return
        names = (*VALUE_COLUMNS[1:], "updated_at")
        stmt = (
            update(_CONTACT)
            .where(_CONTACT.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in names})
        )
        self.conn.execute(
            stmt,
            [
                {
                    "b_id": contact_id,
                    **{f"b_{n}": v for n, v in zip(VALUE_COLUMNS[1:], merged[1:], strict=True)},
                    "b_updated_at": self.now,
                }
                for contact_id, merged, _ in changed
            ],
        )
        regroup = [(contact_id, merged[5]) for contact_id, merged, moved in changed if moved]
        for part in _chunks([contact_id for contact_id, _ in regroup]):
            self.conn.execute(delete(_GROUP).where(_GROUP.c.contact_id.in_(part)))
        self.bulk.insert(
            _GROUP,
            ("contact_id", "name"),
            [(cid, name) for cid, groups in regroup for name in groups.split(",") if name],
        )

    def new_ids(self) -> dict[str, int]:
        """E.164 -> id of the contacts this import inserted."""
        wanted = {good[1][0] for good in self.outcome.new}
        if not wanted or not self.write:
            return {}
        found: dict[str, int] = {}
        for contact_id, number in self.conn.execute(
            select(_CONTACT.c.id, _CONTACT.c.number).where(_CONTACT.c.id >= self.first_new_id)
        ):
            if number in wanted:
                found[number] = contact_id
        return found


def _max_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(_CONTACT.c.id), 0))).scalar_one())


# --- consent ------------------------------------------------------------------------


def _suppressed(conn: Connection, ctx: Context, numbers: Sequence[str]) -> set[str]:
    by_hash = {number_hash(ctx.hash_key, n): n for n in numbers}
    found: set[str] = set()
    col = _SUPPRESSION.c.number_hash
    for part in _chunks(list(by_hash)):
        for (digest,) in conn.execute(select(col).where(col.in_(part))):
            found.add(by_hash[digest])
    return found


def _states(conn: Connection, topic: str, ids: Sequence[int]) -> dict[int, bool]:
    found: dict[int, bool] = {}
    for part in _chunks(ids):
        for contact_id, granted in conn.execute(
            select(_STATE.c.contact_id, _STATE.c.granted).where(
                _STATE.c.topic == topic, _STATE.c.contact_id.in_(part)
            )
        ):
            found[contact_id] = bool(granted)
    return found


def _consents(
    conn: Connection,
    ctx: Context,
    options: ImportOptions,
    kept: Sequence[tuple[_Good, int]],
    report: ImportReport,
    write: bool,
    topic: str,
) -> None:
    """Grant the topic to each kept row with no decision on it yet."""
    suppressed = _suppressed(conn, ctx, [good[1][0] for good, _ in kept])
    states = _states(conn, topic, [cid for _, cid in kept if cid])
    to_grant: list[int] = []
    for good, contact_id in kept:
        if good[1][0] in suppressed:
            report.issues.append(
                _issue(
                    good[0],
                    "flagged",
                    "suppressed",
                    "on the suppression list (STOP): consent not recorded",
                    "a répondu STOP (liste d'opposition) : consentement non enregistré",
                    good[2] or [],
                )
            )
        elif states.get(contact_id) is False:
            report.issues.append(
                _issue(
                    good[0],
                    "flagged",
                    "withdrawn",
                    "consent withdrawn earlier: not granted again by an import",
                    "consentement retiré auparavant : un import ne le rétablit pas",
                    good[2] or [],
                )
            )
        elif contact_id not in states:
            to_grant.append(contact_id)
    report.consents_recorded += len(to_grant)
    if write and to_grant:
        _append_grants(conn, ctx, options, topic, to_grant)


@dataclass(slots=True)
class _EventFields:
    """What console.audit.consent_fields reads from a ConsentEvent."""

    seq: int
    contact_id: int
    topic: str
    action: str
    source: str
    proof_ref: str
    text_version: str
    operator: str
    occurred_at: datetime
    recorded_at: datetime


def _append_grants(
    conn: Connection, ctx: Context, options: ImportOptions, topic: str, contact_ids: list[int]
) -> None:
    """console.consent.ledger.append_consent for many contacts with no consent state yet."""
    now = ctx.clock.now()
    occurred = options.consent_at or now
    link = reserve_links(conn, CONSENT_CHAIN, len(contact_ids))
    first, prev = link.seq, link.prev_hash
    text_version = options.consent_text_version or ctx.config.topics[topic].consent_text_version
    proof = options.consent_proof.strip()
    rows: list[tuple[Any, ...]] = []
    for offset, contact_id in enumerate(contact_ids):
        event = _EventFields(
            seq=first + offset,
            contact_id=contact_id,
            topic=topic,
            action="grant",
            source=options.consent_source,
            proof_ref=proof,
            text_version=text_version,
            operator=ctx.operator,
            occurred_at=occurred,
            recorded_at=now,
        )
        # consent_fields only reads attributes; an ORM object per grant would cost
        # more than everything else here.
        digest = link.digest(prev, consent_fields(cast(ConsentEvent, event)))
        rows.append(
            (
                event.seq,
                contact_id,
                topic,
                "grant",
                options.consent_source,
                proof,
                text_version,
                ctx.operator,
                prev,
                digest,
            )
        )
        prev = digest
    bulk = _Bulk(conn)
    bulk.insert(
        _EVENT,
        (
            "seq",
            "contact_id",
            "topic",
            "action",
            "source",
            "proof_ref",
            "text_version",
            "operator",
            "prev_hash",
            "hash",
        ),
        rows,
        {"occurred_at": occurred, "recorded_at": now},
    )
    commit_link(conn, CONSENT_CHAIN, prev)
    last = first + len(contact_ids) - 1
    event_ids = dict(
        conn.execute(
            select(_EVENT.c.contact_id, _EVENT.c.id).where(_EVENT.c.seq.between(first, last))
        ).all()
    )
    bulk.insert(
        _STATE,
        ("contact_id", "topic", "granted", "event_id"),
        [(cid, topic, True, event_ids[cid]) for cid in contact_ids],
        {"updated_at": now},
    )


def _validate_consent(ctx: Context, options: ImportOptions) -> None:
    assert options.consent_topic is not None
    try:
        for topic in options.consent_topics:
            validate(
                ctx,
                ConsentRequest(
                    contact_id=0,
                    topic=topic,
                    action="grant",
                    source=options.consent_source,
                    proof_ref=options.consent_proof,
                    text_version=options.consent_text_version,
                    occurred_at=options.consent_at,
                ),
            )
    except ConsentError as exc:
        raise ImportFailed(f"consent for the import: {exc}") from exc
    # The grants are inserted in bulk: check what the columns would refuse.
    for what, value, limit in (
        ("proof reference", options.consent_proof.strip(), 500),
        ("consent text version", options.consent_text_version, 50),
        ("operator name", ctx.operator, 100),
    ):
        if len(value) > limit:
            raise ImportFailed(f"consent for the import: {what} longer than {limit} characters")


# --- entry point --------------------------------------------------------------------


def import_contacts(ctx: Context, path: Path, options: ImportOptions) -> ImportReport:
    """Import the good rows of a resident CSV and report every other one.

    Raises ImportFailed when the file cannot be imported at all (nothing is then
    written), PermissionDenied below the operator role.
    """
    ctx.require(Role.OPERATOR)
    if options.consent_topic is not None:
        _validate_consent(ctx, options)
    path = Path(path)
    source = _open_source(ctx, path, options)
    report = ImportReport(
        file=str(path),
        encoding=source.text.encoding,
        delimiter=source.delimiter,
        mapping={name: _column_label(source.header, i) for name, i in source.mapping.items()},
        header=source.header,
        dry_run=options.dry_run,
        consent_topic=options.consent_topic,
    )
    contact_source = clean_field(options.source or f"import:{path.name}")[:100]
    try:
        if options.dry_run:
            with read_session(ctx.engine) as session:
                _run(session, ctx, source, options, report, contact_source, threaded=False)
        else:
            with write_session(ctx.engine) as session:
                _run(session, ctx, source, options, report, contact_source, threaded=True)
    except IntegrityError as exc:
        raise ImportFailed(
            f"{path}: the contact base changed during the import (someone added one of "
            "these numbers meanwhile); nothing was imported, run it again"
        ) from exc
    return report


def _run(
    session: Session,
    ctx: Context,
    source: _Source,
    options: ImportOptions,
    report: ImportReport,
    contact_source: str,
    *,
    threaded: bool,
) -> None:
    now = ctx.clock.now()
    write = not options.dry_run
    conn = session.connection()
    with _big_cache(conn):
        writer = _Writer(conn, source.mapping, now, contact_source, write, len(source.text.lines))
        if threaded:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as pool:
                pending: list[Future[None]] = []

                def deliver(chunk: list[_Good]) -> None:
                    # Stop parsing early when the database already said no.
                    for done in pending:
                        if done.done() and done.exception() is not None:
                            done.result()
                    pending.append(pool.submit(writer, chunk))

                try:
                    report.rows = _check_rows(ctx, source, options, report.issues, deliver)
                finally:
                    # The worker must be done with the connection whatever happened.
                    wait(pending)
                for done in pending:
                    done.result()
        else:
            report.rows = _check_rows(ctx, source, options, report.issues, writer)
        outcome = writer.outcome
        report.imported = len(outcome.new)
        report.updated = len(outcome.updated)
        report.unchanged = len(outcome.unchanged)
        if options.consent_topic is not None:
            ids = writer.new_ids()
            kept = [
                *((good, ids.get(good[1][0], 0)) for good in outcome.new),
                *outcome.updated,
                *outcome.unchanged,
            ]
            kept.sort(key=lambda pair: pair[0][0])
            for topic in options.consent_topics:
                _consents(conn, ctx, options, kept, report, write, topic)
    report.issues.sort(key=lambda issue: issue.line)
    report.rejected = sum(1 for issue in report.issues if issue.status == "rejected")
    report.flagged = len({issue.line for issue in report.issues if issue.status == "flagged"})
    if write:
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="contact.import",
            target=f"file:{source.path.name}"[:200],
            details={
                "file": source.path.name,
                "encoding": report.encoding,
                "consent_topic": options.consent_topic,
                **report.to_json()["counts"],
            },
        )


@contextmanager
def _big_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache that holds the indexes a big import writes to.

    With the default 2 MiB, inserting 100,000 residents in random number and name
    order spills and re-reads index pages in the middle of the transaction (0.7 s
    of inserts became 1.1 s when measured).
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size={-IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={before}")
