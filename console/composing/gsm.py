"""GSM 03.38 (GSM-7): which texts fit the default alphabet and which need UCS-2.

A text made only of the basic table and its extension table (the extension
characters cost two septets each) goes as 7-bit; any other character forces the
whole message to UCS-2 (70 characters per SMS instead of 160). French traps: é è
ù à and Ç (upper case only) are in the basic table; ê â î ô û ë ï ç œ, curly
quotes and no-break spaces are not.
"""

from __future__ import annotations

from dataclasses import dataclass

# The basic table, in code-point order 0x00-0x7F (0x1B, the escape to the
# extension table, is left out: it is not a character).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# The extension table: each is sent as ESC + one septet.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")


def needs_ucs2(text: str) -> bool:
    """True when some character of `text` is in neither GSM-7 table."""
    return any(c not in GSM7_BASIC and c not in GSM7_EXTENSION for c in text)


def ucs2_characters(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    seen: dict[str, None] = {}
    for c in text:
        if c not in GSM7_BASIC and c not in GSM7_EXTENSION:
            seen.setdefault(c, None)
    return list(seen)


# Units per SMS: a single message, and each part of a concatenated one (the
# concatenation header takes the difference).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def char_units(char: str, ucs2: bool) -> int:
    """What one character costs: septets in GSM-7 (an extension character is ESC plus
    itself), UTF-16 code units in UCS-2 (a character beyond the BMP, such as most
    emoji, is a surrogate pair)."""
    if ucs2:
        return 2 if ord(char) > 0xFFFF else 1
    return 2 if char in GSM7_EXTENSION else 1


@dataclass(frozen=True)
class Layout:
    """How a text is cut into SMS parts."""

    ucs2: bool
    units: int
    segments: int  # 0 for an empty text
    per_segment: int  # units a part holds: single or concatenated
    last_units: int  # units used in the last part


def layout(text: str) -> Layout:
    """Cut `text` into parts the way handsets and SMSCs do.

    A character is never split across two parts: an extension character's ESC and
    septet, or a surrogate pair, travel together, so a part may end one unit short
    and the text can take one part more than ceil(units / part) says."""
    ucs2 = needs_ucs2(text)
    single, part = (UCS2_SINGLE, UCS2_PART) if ucs2 else (GSM7_SINGLE, GSM7_PART)
    costs = [char_units(c, ucs2) for c in text]
    units = sum(costs)
    if units <= single:
        return Layout(ucs2, units, 1 if units else 0, single, units)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return Layout(ucs2, units, segments, part, used)


def segment_count(text: str) -> int:
    """SMS parts the text takes (at least 1: an empty text still goes as one SMS):
    160 septets (153 per part when concatenated) in GSM-7, where an extension
    character costs two; 70 UTF-16 units (67) in UCS-2."""
    return max(1, layout(text).segments)
