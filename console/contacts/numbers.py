"""Phone number normalisation to E.164, for metropolitan and overseas French towns.

`phonenumbers` is the authority. Town hall files are almost all French numbers in
a handful of habits, so a fast path classifies those against phonenumbers' own
metadata (same patterns, same type order) and everything else goes through
`phonenumbers.parse`. A property test keeps the two in agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc, PhoneNumberType

from console.errors import TocsinError
from console.regions import FRENCH_REGIONS

# Types that can receive an SMS.
SENDABLE_KINDS = frozenset({"mobile", "fixed_line_or_mobile"})

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

# Separators people type inside numbers, and the "(0)" of "+33 (0)6 ...".
_SEPARATORS = re.compile(r"[\s.\-/_()\u00a0\u202f]+")
_TRUNK_IN_PARENS = re.compile(r"\(\s*0\s*\)")
_DIGITS_ONLY = re.compile(r"\+?[0-9]+")
# What a spreadsheet shows for a number column it stored as a float: 6,12E+08.
_SCIENTIFIC = re.compile(r"\d+(?:[.,]\d+)?[eE][+-]?\d+")


# The reasons InvalidNumber gives, and their catalog codes (error.number_<code>).
_REASON_CODES = {
    "empty number": "empty",
    "letters inside the number": "letters",
    "unknown country code": "country",
    "not a phone number": "not_a_number",
    "too short": "too_short",
    "too long": "too_long",
    "invalid number": "invalid",
}


class InvalidNumber(TocsinError):
    """The text is not a phone number we can use; str() is the reason."""

    def __init__(self, reason: str) -> None:
        code = _REASON_CODES.get(reason, "scientific" if "scientific" in reason else "invalid")
        super().__init__(reason, f"number_{code}")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str
    kind: str
    region: str

    @property
    def sendable(self) -> bool:
        return self.kind in SENDABLE_KINDS


@dataclass(frozen=True)
class _Desc:
    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, nsn: str) -> bool:
        return len(nsn) in self.lengths and self.pattern.fullmatch(nsn) is not None

    def _of_length(self) -> str:
        # The numbers classified are digits alone: no newline for \Z to stop at.
        sizes = "|".join(f".{{{size}}}" for size in sorted(self.lengths))
        return f"(?=(?:{sizes})\\Z)"

    def as_lookahead(self) -> str:
        """Matches where `matches` would, consuming nothing."""
        return f"{self._of_length()}(?=(?:{self.pattern.pattern})\\Z)"

    def as_alternative(self) -> str:
        """Matches the whole number where `matches` would."""
        return f"{self._of_length()}(?:{self.pattern.pattern})\\Z"


@dataclass(frozen=True)
class _RegionPlan:
    region: str
    country_code: str
    general: _Desc
    ordered: tuple[tuple[str, _Desc], ...]  # special types in phonenumbers' order
    fixed: _Desc | None
    mobile: _Desc | None
    same_fixed_mobile: bool
    # phonenumbers picks a region for a shared country code by these, else by type.
    leading_digits: re.Pattern[str] | None
    # The national prefix is a plain "0" (no carrier codes, no transform rule).
    trunk_zero: bool

    def kind_of(self, nsn: str) -> str | None:
        """phonenumbers' number type for a national significant number, or None."""
        found = self.classify.fullmatch(nsn)
        if found is None:
            return None
        kind = found.lastgroup
        if kind == "fixed_line":
            if self.same_fixed_mobile or (self.mobile is not None and self.mobile.matches(nsn)):
                return "fixed_line_or_mobile"
            return "fixed_line"
        return kind

    @cached_property
    def classify(self) -> re.Pattern[str]:
        """One pattern for the walk phonenumbers makes: the general description,
        then the special types in order, the fixed line, the mobile; the group that
        matched names the type (a number that is both a fixed line and a mobile is
        told apart in kind_of). A regular expression tries its alternatives in
        order, so the first type that matches the whole number wins, as in
        phonenumbers; one search where each type was one, which made the
        importer's child, the slower side of an import, a tenth faster."""
        candidates = [*self.ordered]
        if self.fixed is not None:
            candidates.append(("fixed_line", self.fixed))
        if not self.same_fixed_mobile and self.mobile is not None:
            candidates.append(("mobile", self.mobile))
        alternatives = "|".join(f"(?P<{name}>{desc.as_alternative()})" for name, desc in candidates)
        return re.compile(f"{self.general.as_lookahead()}(?:{alternatives or '(?!)'})")


def _desc(raw: PhoneNumberDesc | None, general_lengths: frozenset[int]) -> _Desc | None:
    if raw is None or not raw.national_number_pattern:
        return None
    lengths = raw.possible_length or tuple(general_lengths)
    if tuple(lengths) == (-1,):
        return None
    return _Desc(frozenset(lengths), re.compile(raw.national_number_pattern))


def _metadata(region: str) -> PhoneMetadata:
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None or meta.country_code is None:
        raise ValueError(f"phonenumbers has no metadata for region {region!r}")
    return meta


@cache
def _plan(region: str) -> _RegionPlan:
    meta = _metadata(region)
    assert meta.general_desc is not None
    general_lengths = frozenset(meta.general_desc.possible_length)
    general = _Desc(general_lengths, re.compile(meta.general_desc.national_number_pattern or ""))
    ordered: list[tuple[str, _Desc]] = []
    for name, raw in (
        ("premium_rate", meta.premium_rate),
        ("toll_free", meta.toll_free),
        ("shared_cost", meta.shared_cost),
        ("voip", meta.voip),
        ("personal_number", meta.personal_number),
        ("pager", meta.pager),
        ("uan", meta.uan),
        ("voicemail", meta.voicemail),
    ):
        desc = _desc(raw, general_lengths)
        if desc is not None:
            ordered.append((name, desc))
    return _RegionPlan(
        region=region,
        country_code=str(meta.country_code),
        general=general,
        ordered=tuple(ordered),
        fixed=_desc(meta.fixed_line, general_lengths),
        mobile=_desc(meta.mobile, general_lengths),
        same_fixed_mobile=bool(meta.same_mobile_and_fixed_line_pattern),
        leading_digits=re.compile(meta.leading_digits) if meta.leading_digits else None,
        trunk_zero=meta.national_prefix_for_parsing == "0"
        and not meta.national_prefix_transform_rule,
    )


@cache
def _country_plans(country_code: str) -> tuple[_RegionPlan, ...]:
    """The regions sharing a country code, in the order phonenumbers tries them."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code), ())
    return tuple(_plan(region) for region in regions)


def _resolve(plans: tuple[_RegionPlan, ...], nsn: str) -> PhoneNumber | None:
    """region_code_for_number, then is_valid_number and number_type, as phonenumbers does."""
    for plan in plans:
        if plan.leading_digits is not None:
            if plan.leading_digits.match(nsn):
                kind = plan.kind_of(nsn)
                if kind is None:
                    return None
                return PhoneNumber(f"+{plan.country_code}{nsn}", kind, plan.region)
            continue
        kind = plan.kind_of(nsn)
        if kind is not None:
            return PhoneNumber(f"+{plan.country_code}{nsn}", kind, plan.region)
    return None


def _drop_trunk_zero(plans: tuple[_RegionPlan, ...], nsn: str) -> str | None:
    """The trunk 0 kept after a country code ("+33 06 ..."); None when unsure."""
    if not nsn.startswith("0"):
        return nsn
    if len(nsn) == 10 and all(
        plan.trunk_zero
        and 9 in plan.general.lengths
        and plan.general.pattern.fullmatch(nsn) is None
        for plan in plans
    ):
        return nsn[1:]
    return None


class NumberParser:
    """Parses what residents and town files contain, for one town's default region.

    The fast path answers only where it gives exactly what the phonenumbers path
    (`_slow`: parse, is_valid_number, number_type, region by region in this
    parser's order) gives; anything else returns None from `_fast` and goes slow.
    """

    def __init__(self, default_region: str) -> None:
        if default_region not in FRENCH_REGIONS:
            raise ValueError(f"unsupported region {default_region!r}")
        self.default_region = default_region
        others = [r for r in FRENCH_REGIONS if r != default_region]
        self._regions = (default_region, *others)
        # Regions that share the French trunk prefix "0" and 9-digit numbers.
        self._national_regions = tuple(
            r for r in self._regions if _plan(r).trunk_zero and 9 in _plan(r).general.lengths
        )
        # Country codes reachable from a national "0..." number, the town's first.
        self.national_country_codes = tuple(
            dict.fromkeys(f"+{_plan(r).country_code}" for r in self._national_regions)
        )
        self._country_codes = frozenset(_plan(r).country_code for r in self._regions)

    def parse(self, raw: str) -> PhoneNumber:
        text = raw.strip()
        if not text:
            raise InvalidNumber("empty number")
        if _SCIENTIFIC.fullmatch(text):
            raise InvalidNumber(
                "digits lost to a spreadsheet's scientific notation; format the column as text"
            )
        first_digit = next((i for i, c in enumerate(text) if c.isdigit()), len(text))
        if any(c.isalpha() for c in text[first_digit:]):
            # phonenumbers would read them as a keypad word (ABC = 222) or an extension.
            raise InvalidNumber("letters inside the number")
        compact = _SEPARATORS.sub("", _TRUNK_IN_PARENS.sub("", text))
        if _DIGITS_ONLY.fullmatch(compact):
            found = self._fast(compact)
            if found is not None:
                return found
        return self._slow(text)

    def _fast(self, compact: str) -> PhoneNumber | None:
        if compact.startswith("+"):
            return self._international(compact[1:])
        if compact.startswith("00"):
            return self._international(compact[2:])
        if len(compact) == 10 and compact[0] == "0":
            return self._national(compact[1:])
        if len(compact) == 9 and compact[0] != "0":
            # A spreadsheet that stored the number as an integer dropped the 0.
            return self._bare(compact)
        if len(compact) >= 11 and compact[0] != "0":
            # "33 6 12 34 56 78": a country code typed without + or 00.
            return self._international(compact)
        return None

    def _national(self, nsn: str) -> PhoneNumber | None:
        """A 0 + 9 digits number: each region's country code in turn, the town's first."""
        for code in dict.fromkeys(_plan(r).country_code for r in self._national_regions):
            found = _resolve(_country_plans(code), nsn)
            if found is not None:
                return found
        return None

    def _bare(self, digits: str) -> PhoneNumber | None:
        """9 digits without their 0, read region by region as phonenumbers would."""
        for region in self._regions:
            code = _plan(region).country_code
            if digits.startswith(code):
                # phonenumbers may take these digits as a country code: ask it.
                return None
            found = _resolve(_country_plans(code), digits)
            if found is not None:
                return found
        return None

    def _international(self, digits: str) -> PhoneNumber | None:
        for size in (1, 2, 3):
            code = digits[:size]
            if code not in self._country_codes:
                continue
            plans = _country_plans(code)
            nsn = _drop_trunk_zero(plans, digits[size:])
            return None if nsn is None else _resolve(plans, nsn)
        return None

    def _slow(self, text: str) -> PhoneNumber:
        last_error = "invalid number"
        for region in self._regions:
            try:
                number = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException as exc:
                last_error = _parse_error(exc)
                continue
            if phonenumbers.is_valid_number(number):
                kind = _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                found = phonenumbers.region_code_for_number(number) or region
                return PhoneNumber(e164, kind, found)
            if text.lstrip().startswith(("+", "00")):
                # An explicit country code does not depend on the region tried.
                break
        raise InvalidNumber(last_error)


def _parse_error(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "invalid number")


def mask(e164: str | None) -> str:
    """A number fit for logs: +33 6 ** ** ** 78."""
    if not e164:
        return "(none)"
    try:
        number = phonenumbers.parse(e164, None)
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        keep = len(str(number.country_code)) + 3
    except phonenumbers.NumberParseException:
        text, keep = e164, 4
    if len(text) <= keep + 2:
        return "*" * len(text)
    middle = "".join("*" if c.isdigit() else c for c in text[keep:-2])
    return f"{text[:keep]}{middle}{text[-2:]}"


def display(e164: str | None) -> str:
    """The national format the town is used to reading (06 12 34 56 78)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 33:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
