"""Text folding for ordering and search, and the guard for anything residents typed."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls and DEL, which would drive a terminal if printed raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced: 'Élodie  GARÇON' -> 'elodie garcon'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("œ", "oe").replace("æ", "ae").split())


def clean_field(text: str) -> str:
    """Keep what residents typed as typed: it is escaped on display (see visible), so
    nothing is lost. Only NUL goes, which PostgreSQL text cannot hold, and the
    surrounding spaces."""
    return text.replace("\x00", "").strip()


def visible(text: str) -> str:
    """Show control characters escaped (\\x1b) so nothing reaches the terminal raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
