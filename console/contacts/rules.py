"""The rules a contact's fields obey, shared by the contact form and the importer.

Plain functions of text, free of the database, so that the importer can check a
file's rows in a process that loads nothing else (see importer/checker_process.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from console.contacts.numbers import InvalidNumber, NumberParser, PhoneNumber
from console.errors import TocsinError
from console.text import clean_field, fold

MAX_NAME = 200
MAX_ZONE = 100
MAX_NOTES = 2000


class ContactError(TocsinError):
    """A contact change that cannot be made; str() says why, for the operator."""

    def __init__(self, message: str, field: str = "", code: str = "", **params: object) -> None:
        super().__init__(message, code, **params)
        self.field = field


@dataclass(frozen=True)
class CleanContact:
    number: PhoneNumber
    name: str
    zone: str
    groups: tuple[str, ...]
    notes: str
    source: str


_GROUP_SEPARATORS = re.compile(r"[,;|]")
MAX_GROUPS_COLUMN = 500


def split_groups(text: str) -> tuple[str, ...]:
    return normalise_groups((text,))


def normalise_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Lower-case, sorted, unique; a separator inside a name splits it, since the
    groups column and CSV files use them."""
    seen: dict[str, None] = {}
    for group in groups:
        for part in _GROUP_SEPARATORS.split(group):
            name = clean_field(part).lower()
            if name:
                seen.setdefault(name[:100], None)
    return tuple(sorted(seen))


def groups_column(groups: tuple[str, ...]) -> str:
    return ",".join(groups)


# The rules for each field, one function each: service.check() applies them all to one
# contact, the importer to each row of a file (caching the zone and group cells that
# repeat), so both obey the very same rules. Each raises ContactError naming the field.


def parse_number(parser: NumberParser, raw: str) -> PhoneNumber:
    """The number, or ContactError naming the field and phonenumbers' reason."""
    try:
        return parser.parse(raw)
    except InvalidNumber as exc:
        raise ContactError(
            f"{raw.strip() or '(empty)'}: {exc}",
            "number",
            "contact_number",
            number=raw.strip(),
            reason_code=exc.code,
        ) from exc


def _too_long(field: str, limit: int) -> ContactError:
    return ContactError(
        f"{field} longer than {limit} characters",
        field,
        "contact_too_long",
        field_code=f"field_{field}",
        limit=limit,
    )


def check_name(text: str) -> str:
    name = clean_field(text)
    if len(name) > MAX_NAME:
        raise _too_long("name", MAX_NAME)
    return name


def check_zone(text: str) -> str:
    zone = clean_field(text)
    if len(zone) > MAX_ZONE:
        raise _too_long("zone", MAX_ZONE)
    return zone


def check_notes(text: str) -> str:
    notes = clean_field(" ".join(text.splitlines()))
    if len(notes) > MAX_NOTES:
        raise _too_long("notes", MAX_NOTES)
    return notes


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    clean = normalise_groups(groups)
    if len(groups_column(clean)) > MAX_GROUPS_COLUMN:
        raise _too_long("groups", MAX_GROUPS_COLUMN)
    return clean


def sort_key(name: str) -> str:
    return fold(name)[:200]


def search_key(name: str, zone: str) -> str:
    return fold(f"{name} {zone}")[:320]
