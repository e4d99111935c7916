"""Text folding for ordering and search, and the guard for anything residents typed."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls and DEL, which would drive a terminal if printed raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _fold_char(char: str) -> str:
    """One character decomposed (NFKD), without its combining marks, case-folded."""
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold().replace("œ", "oe").replace("æ", "ae")


class _FoldTable(dict[int, str]):
    """str.translate table: each character as _fold_char makes it, on first use."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced: 'Élodie  GARÇON' -> 'elodie garcon'.

    Decomposing, dropping combining marks and case-folding all work character by
    character (canonical reordering only moves the combining marks that are dropped),
    so a table of folded characters gives what the whole string would, at a fraction
    of the cost: the importer folds every resident's name.
    """
    if text.isascii():
        return " ".join(text.lower().split())
    return " ".join(text.translate(_FOLD_TABLE).split())


def clean_field(text: str) -> str:
    """Keep what residents typed as typed: it is escaped on display (see visible), so
    nothing is lost. Only NUL goes, which PostgreSQL text cannot hold, and the
    surrounding spaces."""
    return text.replace("\x00", "").strip()


def visible(text: str) -> str:
    """Show control characters escaped (\\x1b) so nothing reaches the terminal raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
