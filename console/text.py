"""Text folding for ordering and search, and the guard for anything residents typed."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls and DEL, which would drive a terminal if printed raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Whole terminal escape sequences, so "\x1b[31mRouge" leaves "Rouge", not "[31mRouge":
# CSI (ESC [ or the C1 CSI, parameters, final byte), OSC (ESC ] ... BEL or ST, or
# unterminated), and the two-character escapes.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
)


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced: 'Élodie  GARÇON' -> 'elodie garcon'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("œ", "oe").replace("æ", "ae").split())


def clean_field(text: str) -> str:
    """Drop terminal escape sequences and control characters (NUL, which PostgreSQL
    text cannot hold, included) from stored text, and the surrounding spaces."""
    return _CONTROL.sub("", _ESCAPE.sub("", text)).strip()


def visible(text: str) -> str:
    """Show control characters as their escaped form so nothing reaches the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
