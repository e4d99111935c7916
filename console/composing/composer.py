"""The message composer's domain: what a text costs, how to keep it in GSM-7, and the
templates' placeholders and STOP mention. Pure functions: no UI, no I/O.

The screens show `analyse(text)` live as the operator types; `tocsin message check`
prints the same analysis for scripts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from console.composing.gsm import GSM7_BASIC, GSM7_EXTENSION, layout, ucs2_characters
from console.text import fold

Encoding = Literal["GSM-7", "UCS-2"]

PLACEHOLDERS = ("commune", "date", "heure", "lieu", "zone")

# `{name}` where name looks like an identifier. Anything else in braces ("{", "{ }",
# "{1}") is plain text that residents and operators may type.
PLACEHOLDER_PATTERN = re.compile(r"\{([^\W\d]\w*)\}")


@dataclass(frozen=True)
class TextAnalysis:
    text: str
    characters: int
    encoding: Encoding
    units: int
    segments: int
    per_segment: int
    remaining: int
    ucs2_characters: list[str]
    gsm7_suggestion: str | None
    suggestion_segments: int | None
    suggestion_units: int | None

    def to_json(self) -> dict[str, Any]:
        """Stable keys, documented in the README (`tocsin message check --json`)."""
        return {
            "text": self.text,
            "characters": self.characters,
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
            "remaining": self.remaining,
            "ucs2_characters": list(self.ucs2_characters),
            "ucs2_code_points": [code_point(c) for c in self.ucs2_characters],
            "gsm7_suggestion": self.gsm7_suggestion,
            "suggestion_segments": self.suggestion_segments,
            "suggestion_units": self.suggestion_units,
        }


def code_point(char: str) -> str:
    """'ê' -> 'U+00EA': how the composer names a character an operator cannot see
    (a no-break space looks like a space)."""
    return f"U+{ord(char):04X}"


def describe_character(char: str) -> str:
    """'ê (U+00EA)'; an invisible one by its name: 'U+00A0 (NO-BREAK SPACE)'."""
    if char.isprintable() and not char.isspace():
        return f"{char} ({code_point(char)})"
    return f"{code_point(char)} ({unicodedata.name(char, 'unnamed')})"


def analyse(text: str) -> TextAnalysis:
    cut = layout(text)
    suggestion: str | None = None
    suggestion_segments: int | None = None
    suggestion_units: int | None = None
    if cut.ucs2:
        suggestion = to_gsm7(text)
        suggested = layout(suggestion)
        suggestion_segments, suggestion_units = suggested.segments, suggested.units
    return TextAnalysis(
        text=text,
        characters=len(text),
        encoding="UCS-2" if cut.ucs2 else "GSM-7",
        units=cut.units,
        segments=cut.segments,
        per_segment=cut.per_segment,
        remaining=cut.per_segment - cut.last_units,
        ucs2_characters=ucs2_characters(text) if cut.ucs2 else [],
        gsm7_suggestion=suggestion,
        suggestion_segments=suggestion_segments,
        suggestion_units=suggestion_units,
    )


# Substitutions decomposition alone gets wrong or misses. Every value is GSM-7.
_SUBSTITUTES: dict[str, str] = {
    "œ": "oe",
    "Œ": "OE",
    # Quotes: French guillemets and typographic quotes become straight ones.
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "‹": "'",
    "›": "'",
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "`": "'",
    "´": "'",
    # Spaces: French typography puts a (narrow) no-break space before : ; ! ? and
    # inside guillemets; residents' phones show a plain space just as well.
    "\u00a0": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2008": " ",
    "\u205f": " ",
    "\u3000": " ",
    "\t": " ",
    "…": "...",
    # Dashes and hyphens, the non-breaking one (U+2011) included; the minus sign too.
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "•": "-",
    "·": ".",
    "×": "x",
    "÷": "/",
    "⁄": "/",
    # N° (numéro) -> No, the usual ASCII spelling.
    "°": "o",
    "º": "o",
    "ª": "a",
    "\u2028": "\n",
    "\u2029": "\n",
}

# Invisible characters that carry nothing a reader would miss: zero-width space and
# non-joiner, word joiner, BOM, soft hyphen, variation selectors, emoji skin tones.
_DROPPED = frozenset(
    "\u200b\u200c\u2060\ufeff\u00ad"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0x1F3FB, 0x1F400))
)
_ZWJ = "\u200d"
# The spaces French typography puts inside guillemets: « Noël » reads "Noel", not
# " Noel ".
_GUILLEMET_SPACES = re.compile(r"([«‹])[ \u00a0\u202f\u2009]+|[ \u00a0\u202f\u2009]+([»›])")
_UNKNOWN = "?"


def _is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def _substitute(char: str) -> str | None:
    """The GSM-7 spelling of one character, or None when it has none."""
    if _is_gsm7(char):
        return char
    if char in _SUBSTITUTES:
        return _SUBSTITUTES[char]
    if char in _DROPPED:
        return ""
    # ê -> e + circumflex, ﬁ -> fi, ² -> 2, Ǆ -> DŽ -> DZ: keep the base letters.
    out: list[str] = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.combining(part):
            continue
        if _is_gsm7(part):
            out.append(part)
        elif part in _SUBSTITUTES:
            out.append(_SUBSTITUTES[part])
        else:
            return None
    if not out and not unicodedata.combining(char):
        return None
    return "".join(out)


def to_gsm7(text: str) -> str:
    """The closest text made only of GSM-7 characters: accents stripped where GSM-7
    lacks the letter (ê -> e, but é è à ù Ç stay), œ -> oe, typographic quotes,
    dashes and spaces made plain. A character with no sensible spelling (an emoji)
    becomes "?", once per emoji even when it is a sequence joined by ZWJ."""
    # NFC first so that an e followed by a combining acute is the GSM-7 é it shows.
    out: list[str] = []
    joined = False
    text = _GUILLEMET_SPACES.sub(lambda m: m.group(1) or m.group(2), text)
    for char in unicodedata.normalize("NFC", text):
        if char == _ZWJ:
            joined = bool(out) and out[-1] == _UNKNOWN
            continue
        spelled = _substitute(char)
        if spelled is None:
            if not joined:
                out.append(_UNKNOWN)
        elif spelled:
            out.append(spelled)
        joined = False
    return "".join(out)


def estimate_cost(segments: int, recipients: int, price_per_segment: float) -> float:
    """The price of a send, rounded half up to the cent (what an invoice shows)."""
    if segments < 0 or recipients < 0 or price_per_segment < 0:
        raise ValueError("segments, recipients and price must not be negative")
    # Decimal from the decimal string: 0.045 as a float is 0.04499..., which would
    # round a one-SMS send down to 0.04.
    total = Decimal(str(price_per_segment)) * segments * recipients
    return float(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Replace each `{name}` that has a value; leave the others for the operator.

    One pass with a regular expression, never str.format: braces typed by operators
    or residents stay text, and a value that itself contains `{lieu}` is not filled
    again."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else value

    return PLACEHOLDER_PATTERN.sub(replace, template)


def placeholders_in(text: str) -> list[str]:
    """Every `{name}` in the text, known or not, distinct, in order of appearance."""
    return list(dict.fromkeys(PLACEHOLDER_PATTERN.findall(text)))


def unfilled_placeholders(text: str) -> list[str]:
    """The known placeholders still in the text, e.g. ["lieu"]: a message must not
    reach residents with them."""
    return [name for name in placeholders_in(text) if name in PLACEHOLDERS]


def with_stop_mention(text: str, mention: str) -> str:
    """The text followed, on its own line, by the topic's STOP mention.

    Nothing is added when the mention is empty, when the text is empty (so that an
    empty message is still refused as such), or when the text already holds the
    mention: compared ignoring case, accents and spacing, so that the GSM-7 version
    of a text still counts as having it. Idempotent."""
    mention = mention.strip()
    if not mention or not text.strip():
        return text
    if _loose(mention) in _loose(text):
        return text
    return f"{text.rstrip()}\n{mention}"


def _loose(text: str) -> str:
    return fold(to_gsm7(text))


def template_values(town_name: str, now_local: datetime, zones: Sequence[str]) -> dict[str, str]:
    """Values for the placeholders Tocsin knows itself. `now_local` is already in the
    town's time zone. {lieu} is never filled (only the operator knows it), nor {zone}
    without zones."""
    values = {
        "commune": town_name,
        "date": now_local.strftime("%d/%m/%Y"),
        "heure": f"{now_local.hour:02d}h{now_local.minute:02d}",
    }
    if zones:
        values["zone"] = ", ".join(zones)
    return values
