"""Checking each data row with the contact rules (console.contacts.service), and
the issues of the rows that fail them."""

from __future__ import annotations

import csv
import itertools
import re
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from console.contacts.importer.decoding import BAD_BYTES
from console.contacts.importer.header import Source
from console.contacts.importer.options import ImportOptions
from console.contacts.importer.report import ImportFailed, IssueCode, RowIssue, Status
from console.contacts.numbers import InvalidNumber, NumberParser
from console.contacts.rules import (
    CleanContact,
    ContactError,
    check_groups,
    check_name,
    check_notes,
    check_zone,
    groups_column,
    parse_number,
    search_key,
    sort_key,
)

# Good rows handed to the database at a time.
CHUNK_ROWS = 5_000
# Good rows the row checker's child sorts by name at a time (NameRuns), once it
# has handed LONG_RUNS_FROM over (a chunk at a time before).
RUN_ROWS = 25_000
LONG_RUNS_FROM = 200_000

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


def unguard(cell: str) -> str:
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


def issue(
    line: int, status: Status, code: IssueCode, reason: str, reason_fr: str, raw: list[str]
) -> RowIssue:
    return RowIssue(line, status, reason, raw, code, reason_fr)


def _contact_error(line: int, number: str, exc: ContactError, row: list[str]) -> RowIssue:
    if exc.field == "number":
        why = str(exc.__cause__) if isinstance(exc.__cause__, InvalidNumber) else str(exc)
        shown = number.strip()
        if len(shown) > 40:
            shown = shown[:39] + "…"
        return issue(
            line,
            "rejected",
            "invalid_number",
            f"invalid number: {shown}: {why}",
            f"numéro invalide ({shown} : {_WHY_FR.get(why, why)})",
            row,
        )
    return issue(line, "rejected", "invalid_field", str(exc), _field_error_fr(str(exc)), row)


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
        sort_key(clean.name),
        search_key(clean.name, clean.zone),
    )


def contact_values(clean: CleanContact) -> dict[str, Any]:
    """The Contact columns a CleanContact decides (what console.contacts.service.apply sets)."""
    return dict(zip(VALUE_COLUMNS, _values(clean), strict=True))


class RowChecker:
    """The contact rules (console.contacts.service) for the rows of one file, giving
    VALUE_COLUMNS tuples. The same check functions as check() in the same order, so
    a row fails exactly as the contact form would; the zone and group cells repeat
    from row to row (a town has a few quarters), so each distinct one is checked
    once per file."""

    def __init__(self, parser: NumberParser) -> None:
        self.parser = parser
        self.zones: dict[str, str] = {}
        self.groups: dict[str, str] = {}

    def values(self, number: str, name: str, zone: str, groups: str, notes: str) -> tuple[Any, ...]:
        phone = parse_number(self.parser, number)
        clean_name = check_name(name)
        clean_zone = self.zones.get(zone)
        if clean_zone is None:
            clean_zone = self.zones[zone] = check_zone(zone)
        clean_notes = check_notes(notes)
        column = self.groups.get(groups)
        if column is None:
            column = self.groups[groups] = groups_column(check_groups((groups,)))
        return (
            phone.e164,
            phone.kind,
            phone.sendable,
            clean_name,
            clean_zone,
            column,
            clean_notes,
            sort_key(clean_name),
            search_key(clean_name, clean_zone),
        )


# A good row: (physical line, VALUE_COLUMNS tuple, None). The cells of the rows
# kept are not reported (a flagged row's issue has no `raw`: only the rejects file
# shows cells, of rejected rows), so they are not kept either. A plain tuple on
# purpose: the garbage collector stops tracking tuples of plain values, and 100,000
# tracked rows made its full passes a sixth of the import's time.
Good = tuple[int, tuple[Any, ...], list[str] | None]


_SORT_KEY = VALUE_COLUMNS.index("sort_key")


class NameRuns:
    """Good rows gathered into runs, each handed on sorted by name (its sort key;
    file order among equals) in chunks of CHUNK_ROWS.

    Inserted in file order, a town's residents land on random pages of the two
    name indexes; at 1,000,000 these outgrow the import's page cache, so each
    insert read a page of its own and wrote it back. Sorted, a run walks the
    indexes in one sweep, and the more rows a sweep holds, the more of them share
    each page it reads and writes (measured at 1,000,000 residents: SQLite read
    9.2 GB and wrote 8.1 GB with runs of 5,000, and 4.4 and 3.8 with runs of
    25,000). A long run costs a wait, though: the writer waits for the first one,
    and writes the last one alone, after the file is read. So the runs are one
    chunk long for the first `long_from` rows, while the indexes still fit in the
    cache, and `run_rows` after.

    Which contact gets which id changes; nothing reads the ids in file order (the
    report speaks of lines, and a chunk's consent grants are sorted by line). Only
    the row checker's child does this: its sort runs beside the writer, and a
    run's rows are its memory, not the writer's.
    """

    def __init__(
        self, deliver: Callable[[list[Good]], None], run_rows: int, long_from: int
    ) -> None:
        self.deliver = deliver
        self.run_rows = run_rows
        self.long_from = long_from
        self.handed = 0
        self.rows: list[Good] = []

    def add(self, chunk: list[Good]) -> None:
        self.rows.extend(chunk)
        run = self.run_rows if self.handed >= self.long_from else CHUNK_ROWS
        if len(self.rows) >= run:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        rows.sort(key=lambda good: good[1][_SORT_KEY])
        self.handed += len(rows)
        for start in range(0, len(rows), CHUNK_ROWS):
            self.deliver(rows[start : start + CHUNK_ROWS])


def records(source: Source) -> Iterator[tuple[int, list[str]]]:
    """(physical line where it starts, cells) of each record after the header.

    Raises ImportFailed where csv gives up (a quote never closed).
    """
    lines = source.text.lines()
    reader = csv.reader(
        itertools.islice(lines, source.header_end, None), delimiter=source.delimiter
    )
    offset = source.header_end
    last = 0
    try:
        for row in reader:
            line, last = offset + last + 1, reader.line_num
            yield line, row
    except csv.Error as exc:
        raise ImportFailed(
            f"{source.path}: line {offset + last + 1}: {exc} (a quote opened there may "
            "never be closed)"
        ) from exc
    finally:
        lines.close()


def check_structure(source: Source) -> None:
    """Read the whole file as csv does, so that one that fails half-way (a quote
    never closed) is refused before an import commits its first rows."""
    for _ in records(source):
        pass


def check_rows(
    parser: NumberParser,
    source: Source,
    options: ImportOptions,
    issues: list[RowIssue],
    deliver: Callable[[list[Good]], None],
) -> int:
    """Check every data row; hand good rows over in chunks; return the rows read."""
    mapping = source.mapping
    num_i = mapping["number"]
    name_i = mapping.get("name")
    first_i = mapping.get("first_name")
    zone_i = mapping.get("zone")
    groups_i = mapping.get("groups")
    notes_i = mapping.get("notes")
    values_of = RowChecker(parser).values
    maybe_bad = source.text.maybe_bad
    width = 1 + max(mapping.values())
    padding = [""] * width
    # E.164 digits (an int takes half the memory of the string) and first lines.
    seen = FirstLines()
    # (line, E.164 digits, cells) of the rows whose number came before: reported
    # once the file is read, with the line it came on first (FirstLines).
    duplicates: list[tuple[int, int, list[str]]] = []
    chunk: list[Good] = []
    rows = 0
    for line, row in records(source):
        if not any(row) or (not row[0].strip() and not "".join(row).strip()):
            continue
        rows += 1
        if maybe_bad and any(BAD_BYTES.search(c) for c in row):
            issues.append(
                issue(
                    line,
                    "rejected",
                    "bad_encoding",
                    "bad encoding",
                    "encodage illisible (caractères ni UTF-8 ni Windows-1252)",
                    [BAD_BYTES.sub("\ufffd", cell) for cell in row],
                )
            )
            continue
        size = len(row)
        if num_i >= size:
            issues.append(
                issue(
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
            number = unguard(number)
        if not number or number.isspace():
            issues.append(
                issue(line, "rejected", "missing_number", "missing number", "numéro manquant", row)
            )
            continue
        name = "" if name_i is None else cells[name_i]
        if name[:1] == "'":
            name = unguard(name)
        if first_i is not None:
            given = unguard(cells[first_i]).strip()
            if given:
                name = f"{given} {name.strip()}".strip()
        zone = "" if zone_i is None else cells[zone_i]
        groups = "" if groups_i is None else cells[groups_i]
        notes = "" if notes_i is None else cells[notes_i]
        try:
            values = values_of(
                number,
                name,
                unguard(zone) if zone[:1] == "'" else zone,
                unguard(groups) if groups[:1] == "'" else groups,
                unguard(notes) if notes[:1] == "'" else notes,
            )
        except ContactError as exc:
            issues.append(_contact_error(line, number, exc, row))
            continue
        e164 = int(values[0][1:])
        if not seen.add(e164, line):
            duplicates.append((line, e164, row))
            continue
        if not values[2]:
            kind = values[1]
            issues.append(
                issue(
                    line,
                    "flagged",
                    "not_mobile",
                    "not a mobile",
                    f"pas un numéro mobile ({_KIND_FR.get(kind, kind)}) : "
                    "importé mais ne recevra pas de SMS",
                    [],
                )
            )
        chunk.append((line, values, None))
        if len(chunk) >= CHUNK_ROWS:
            deliver(chunk)
            chunk = []
    if chunk:
        deliver(chunk)
    firsts = seen.first_lines({e164 for _, e164, _ in duplicates})
    for line, e164, row in duplicates:
        first_line = firsts[e164]
        issues.append(
            issue(
                line,
                "rejected",
                "duplicate",
                f"duplicate of line {first_line}",
                f"doublon de la ligne {first_line}",
                row,
            )
        )
    return rows


class FirstLines:
    """The numbers seen so far, and the line each was first seen on.

    A dict of int to int took 105 bytes a number (1,000,000 residents: 105 MiB);
    a set of the numbers and two arrays in the order they came take about 76, and
    the lines are wanted only for duplicates, which are few: they are found at
    the end, in one pass over the arrays.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._numbers = array("q")
        self._lines = array("I")  # a line number fits in 4 bytes

    def add(self, number: int, line: int) -> bool:
        """Whether the number is new (then noted with its line)."""
        if number in self._seen:
            return False
        self._seen.add(number)
        self._numbers.append(number)
        self._lines.append(line)
        return True

    def first_lines(self, numbers: set[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        if numbers:
            for number, line in zip(self._numbers, self._lines, strict=True):
                if number in numbers and number not in found:
                    found[number] = line
        return found
