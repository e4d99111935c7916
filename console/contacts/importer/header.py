"""Finding the header line and which column holds what, from French or English
names, or from the operator's mapping."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.contacts.importer.decoding import BAD_BYTES, Text, detect_delimiter, scan
from console.contacts.importer.options import FIELDS, ImportOptions
from console.contacts.importer.report import ImportFailed
from console.contacts.numbers import InvalidNumber
from console.text import fold

if TYPE_CHECKING:
    from console.context import Context

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


def column_label(header: Sequence[str], index: int) -> str:
    name = header[index].strip() if index < len(header) else ""
    return name or f"column {index + 1}"


@dataclass
class Source:
    """A readable file with its header understood, before any data row is checked."""

    path: Path
    text: Text
    delimiter: str
    header: list[str]
    header_end: int  # physical line the header ends on
    mapping: dict[str, int]


def open_source(ctx: Context, path: Path, options: ImportOptions) -> Source:
    text = scan(path)
    delimiter = options.delimiter or detect_delimiter(text.head)
    if delimiter not in (";", ",", "\t", "|"):
        raise ImportFailed(f"{path}: unsupported separator {delimiter!r}")
    lines = text.lines()
    reader = csv.reader(lines, delimiter=delimiter)
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
    finally:
        lines.close()
    if header is None:
        raise ImportFailed(f"{path}: no header line (the file has only blank lines)")
    if text.maybe_bad and any(BAD_BYTES.search(cell) for cell in header):
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
    return Source(path, text, delimiter, header, reader.line_num, mapping)


def _looks_like_number(ctx: Context, cell: str) -> bool:
    if sum(c.isdigit() for c in cell) < 6:
        return False
    try:
        ctx.parser.parse(cell)
    except InvalidNumber:
        return False
    return True
