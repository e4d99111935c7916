"""GSM 03.38 (GSM-7): which texts fit the default alphabet and which need UCS-2.

A text made only of the basic table and its extension table (the extension
characters cost two septets each) goes as 7-bit; any other character forces the
whole message to UCS-2 (70 characters per SMS instead of 160). French traps: é è
ù à and Ç (upper case only) are in the basic table; ê â î ô û ë ï ç œ, curly
quotes and no-break spaces are not.
"""

from __future__ import annotations

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


def segment_count(text: str) -> int:
    """SMS parts the text takes: 160 septets (153 per part when concatenated) in
    GSM-7, where an extension character costs two; 70 UTF-16 units (67) in UCS-2."""
    if needs_ucs2(text):
        units = len(text.encode("utf-16-be")) // 2
        single, part = 70, 67
    else:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, part = 160, 153
    if units <= single:
        return 1
    return -(-units // part)
