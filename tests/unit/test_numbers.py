"""Phone number normalisation: every French habit, overseas towns, and fast == slow."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from console.config import FRENCH_REGIONS
from console.contacts.numbers import (
    _SEPARATORS,
    _TRUNK_IN_PARENS,
    InvalidNumber,
    NumberParser,
    PhoneNumber,
    _plan,
    _RegionPlan,
    display,
    mask,
)

FR = NumberParser("FR")
RE = NumberParser("RE")

METROPOLITAN_MOBILE = [
    "06 12 34 56 78",
    "06.12.34.56.78",
    "06-12-34-56-78",
    "0612345678",
    "06/12/34/56/78",
    " 06 12 34 56 78 ",
    "06\u00a012\u00a034\u00a056\u00a078",
    "06\u202f12\u202f34\u202f56\u202f78",
    "+33 6 12 34 56 78",
    "+33612345678",
    "+33 (0)6 12 34 56 78",
    "+33(0)612345678",
    "+33 06 12 34 56 78",
    "0033 6 12 34 56 78",
    "0033612345678",
    "0033 (0)6 12 34 56 78",
    "33 6 12 34 56 78",
    "33612345678",
    "612345678",  # Excel stored the number as an integer and dropped the 0
    "6 12 34 56 78",
    "Tél : 06 12 34 56 78",
]


@pytest.mark.parametrize("text", METROPOLITAN_MOBILE)
def test_metropolitan_habits(text: str) -> None:
    assert FR.parse(text) == PhoneNumber("+33612345678", "mobile", "FR")


@pytest.mark.parametrize("text", METROPOLITAN_MOBILE)
def test_reunion_town_reads_metropolitan_mobiles_as_plus_33(text: str) -> None:
    assert RE.parse(text) == PhoneNumber("+33612345678", "mobile", "FR")


@pytest.mark.parametrize(
    "text",
    [
        "0692 12 34 56",
        "0692123456",
        "06 92 12 34 56",
        "0692.12.34.56",
        "692123456",
        "+262 692 12 34 56",
        "+262 (0)692 12 34 56",
        "00262 692 12 34 56",
        "262692123456",
    ],
)
def test_reunion_town_mobiles(text: str) -> None:
    found = RE.parse(text)
    assert found == PhoneNumber("+262692123456", "mobile", "RE")
    assert not found.e164.startswith("+33")


@pytest.mark.parametrize(
    ("text", "e164", "region"),
    [
        ("0692 12 34 56", "+262692123456", "RE"),
        ("0690 12 34 56", "+590690123456", "GP"),
        ("0696 12 34 56", "+596696123456", "MQ"),
        ("0694 12 34 56", "+594694123456", "GF"),
        ("0639 01 23 45", "+262639012345", "YT"),
    ],
)
@pytest.mark.parametrize("town", ["FR", "RE", "GP", "YT"])
def test_overseas_mobiles_from_any_town(text: str, e164: str, region: str, town: str) -> None:
    found = NumberParser(town).parse(text)
    assert found == PhoneNumber(e164, "mobile", region)
    assert found.sendable


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("01 42 76 40 40", "+33142764040"),
        ("02 99 12 34 56", "+33299123456"),
        ("03 88 12 34 56", "+33388123456"),
        ("04 91 12 34 56", "+33491123456"),
        ("05 56 12 34 56", "+33556123456"),
    ],
)
def test_landlines_are_kept_but_not_sendable(text: str, e164: str) -> None:
    found = FR.parse(text)
    assert (found.e164, found.kind, found.sendable) == (e164, "fixed_line", False)


def test_reunion_landline() -> None:
    found = RE.parse("0262 12 34 56")
    assert (found.e164, found.kind, found.region, found.sendable) == (
        "+262262123456",
        "fixed_line",
        "RE",
        False,
    )


def test_voip_09_is_not_sendable() -> None:
    found = FR.parse("09 51 23 45 67")
    assert (found.e164, found.kind, found.sendable) == ("+33951234567", "voip", False)


def test_mobile_07() -> None:
    found = FR.parse("07 81 23 45 67")
    assert (found.e164, found.kind, found.sendable) == ("+33781234567", "mobile", True)


def test_toll_free_is_not_sendable() -> None:
    found = FR.parse("0800 12 34 56")
    assert (found.e164, found.kind, found.sendable) == ("+33800123456", "toll_free", False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty number"),
        ("   ", "empty number"),
        ("06 12", "invalid number"),
        ("061234567", "invalid number"),  # one digit short
        ("06 12 34 56 78 90", "invalid number"),  # two digits too many
        ("0700000000", "invalid number"),
        ("abc", "not a phone number"),
        ("0612ABCDEF", "letters inside the number"),  # not read as a keypad word
        ("06 12 34 56 78 (portable)", "letters inside the number"),
        ("06 12 34 56 78 poste 12", "letters inside the number"),
        ("6,12E+08", "digits lost to a spreadsheet's scientific notation"),
        ("6.12345678E+8", "digits lost to a spreadsheet's scientific notation"),
        ("+999 1234 5678", "unknown country code"),
        ("1234567890123456789012", "too long"),
    ],
)
def test_invalid_numbers_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as raised:
        FR.parse(text)
    assert str(raised.value).startswith(reason)


@pytest.mark.parametrize(
    ("text", "e164", "region", "kind"),
    [
        ("+44 7911 123456", "+447911123456", "GG", "mobile"),
        ("0044 20 7946 0018", "+442079460018", "GB", "fixed_line"),
        ("+32 470 12 34 56", "+32470123456", "BE", "mobile"),
        ("+41 79 123 45 67", "+41791234567", "CH", "mobile"),
    ],
)
def test_foreign_numbers(text: str, e164: str, region: str, kind: str) -> None:
    assert FR.parse(text) == PhoneNumber(e164, kind, region)


def test_foreign_number_needs_its_country_code() -> None:
    # A UK mobile typed nationally is not a French number either.
    with pytest.raises(InvalidNumber):
        FR.parse("07911 123456")


def test_unknown_region_refused() -> None:
    with pytest.raises(ValueError, match="unsupported region 'DE'"):
        NumberParser("DE")


def test_national_country_codes_start_with_the_towns_own() -> None:
    assert FR.national_country_codes[0] == "+33"
    assert RE.national_country_codes[0] == "+262"
    assert set(FR.national_country_codes) == set(RE.national_country_codes)
    assert {"+33", "+262", "+590", "+596", "+594", "+508"} == set(FR.national_country_codes)


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+33612345678", "+33 6 ** ** ** 78"),
        ("+33142764040", "+33 1 ** ** ** 40"),
        ("+262692123456", "+262 6** ** ** 56"),
        ("+447911123456", "+44 7*** ****56"),
        ("0612345678", "0612****78"),  # not E.164: digits still hidden
        (None, "(none)"),
        ("", "(none)"),
        ("+3361", "******"),  # too short to keep anything
    ],
)
def test_mask(e164: str | None, masked: str) -> None:
    assert mask(e164) == masked


def test_mask_never_shows_the_middle_digits() -> None:
    for e164 in ("+33612345678", "+262692123456", "+590690123456"):
        masked = mask(e164)
        assert "3456" not in masked and "1234" not in masked
        assert masked.endswith(e164[-2:])


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+33612345678", "06 12 34 56 78"),
        ("+33142764040", "01 42 76 40 40"),
        ("+262692123456", "+262 692 12 34 56"),
        ("+447911123456", "+44 7911 123456"),
        ("not a number", "not a number"),
        (None, ""),
        ("", ""),
    ],
)
def test_display(e164: str | None, shown: str) -> None:
    assert display(e164) == shown


def test_display_round_trips_through_the_parser() -> None:
    for e164 in ("+33612345678", "+262692123456", "+590690123456", "+447911123456"):
        assert FR.parse(display(e164)).e164 == e164


# --- fast path against phonenumbers --------------------------------------------------

# Leading digits that reach the interesting parts of the French numbering plans.
_LEADS = (
    "6", "7", "1", "2", "3", "4", "5", "8", "9",
    "69", "690", "691", "692", "693", "694", "696", "697", "639", "709",
    "262", "263", "269", "590", "594", "596", "508", "80", "89", "97",
)  # fmt: skip
_SHAPES = (
    "0{}",  # national
    "{}",  # Excel dropped the 0
    "+33{}",
    "+33 (0){}",
    "+33 0{}",
    "0033{}",
    "0033 0{}",
    "33{}",
    "33 0{}",
    "+262{}",
    "+590{}",
    "+596{}",
    "+594{}",
    "+262 0{}",
    "00262{}",
    "00590{}",
    "262{}",
    "596{}",
)
# Separators phonenumbers itself accepts, so the slow path sees the same number.
_SEPS = ("", "", " ", "  ", ".", "-", "/", "\u00a0")


@st.composite
def french_shaped(draw: st.DrawFn) -> tuple[str, str]:
    lead = draw(st.sampled_from(_LEADS))
    rest = draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    digits = (lead + rest)[:9]
    out = ""
    i = 0
    while i < len(digits):
        size = draw(st.integers(min_value=1, max_value=3))
        out += digits[i : i + size]
        i += size
        if i < len(digits):
            out += draw(st.sampled_from(_SEPS))
    text = draw(st.sampled_from(_SHAPES)).format(out)
    return draw(st.sampled_from(FRENCH_REGIONS)), text


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", _TRUNK_IN_PARENS.sub("", text.strip()))


def _phonenumbers_reading(text: str, parser: NumberParser) -> PhoneNumber | None:
    """parse + is_valid_number + number_type + E164, region after region, by hand."""
    regions = (parser.default_region, *(r for r in FRENCH_REGIONS if r != parser.default_region))
    for region in regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            kind = {
                phonenumbers.PhoneNumberType.MOBILE: "mobile",
                phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
                phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
                phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
                phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
                phonenumbers.PhoneNumberType.VOIP: "voip",
            }.get(phonenumbers.number_type(number), "other")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return PhoneNumber(e164, kind, phonenumbers.region_code_for_number(number))
        if text.lstrip().startswith(("+", "00")):
            break
    return None


@settings(max_examples=300, deadline=None)
@given(french_shaped())
@example(("FR", "0692 12 34 56"))
@example(("YT", "0898 74 34 09"))  # YT has no premium numbers: +262 goes to RE's plan
@example(("BL", "0690 12 34 56"))  # +590 is GP, BL, MF: phonenumbers says GP
@example(("PF", "805 88 65 56"))  # a bare 9 digits is a Polynesian toll-free in PF
@example(("PM", "508 20 20 11"))  # 508 is read as PM's country code by phonenumbers
@example(("MF", "+590 590 29 19 82"))  # a Saint-Barthélemy landline, not GP
@example(("RE", "0269 64 25 96"))  # a Mayotte landline
def test_fast_path_agrees_with_phonenumbers(case: tuple[str, str]) -> None:
    region, text = case
    parser = NumberParser(region)
    fast = parser._fast(_compact(text))
    try:
        slow: PhoneNumber | None = parser._slow(text)
    except InvalidNumber:
        slow = None
    if fast is not None:
        assert fast == slow
    if slow is not None:
        # _slow is phonenumbers itself: check it against a by-hand reading.
        reading = _phonenumbers_reading(text, parser)
        assert reading is not None
        assert (slow.e164, slow.region) == (reading.e164, reading.region)
        assert phonenumbers.is_valid_number(phonenumbers.parse(slow.e164, None))
    # Whichever path answers, parse() agrees with phonenumbers.
    try:
        parsed: PhoneNumber | None = parser.parse(text)
    except InvalidNumber:
        parsed = None
    assert parsed == slow


def test_fast_path_takes_the_common_habits() -> None:
    # The fast path exists for imports: the usual shapes must not fall through.
    for text in METROPOLITAN_MOBILE[:-1]:
        assert FR._fast(_compact(text)) == PhoneNumber("+33612345678", "mobile", "FR"), text
    assert RE._fast(_compact("0692 12 34 56")) == PhoneNumber("+262692123456", "mobile", "RE")


def test_unicode_digits_never_reach_e164() -> None:
    # Full-width digits are not ASCII: phonenumbers normalises them, the fast path must not
    # build an E.164 out of them.
    for text in ("０６１２３４５６７８", "0６１２３４５６７８", "073１２３４５６７"):
        try:
            found = FR.parse(text)
        except InvalidNumber:
            continue
        assert found.e164.isascii() and found.e164[1:].isdigit()


def _walk(plan: _RegionPlan, nsn: str) -> str | None:
    """phonenumbers' walk over the types, one description at a time."""
    if not plan.general.matches(nsn):
        return None
    for name, desc in plan.ordered:
        if desc.matches(nsn):
            return name
    if plan.fixed is not None and plan.fixed.matches(nsn):
        if plan.same_fixed_mobile or (plan.mobile is not None and plan.mobile.matches(nsn)):
            return "fixed_line_or_mobile"
        return "fixed_line"
    if not plan.same_fixed_mobile and plan.mobile is not None and plan.mobile.matches(nsn):
        return "mobile"
    return None


@pytest.mark.parametrize("region", FRENCH_REGIONS)
def test_one_pattern_classifies_as_the_walk_over_the_types(region: str) -> None:
    plan = _plan(region)
    rng = random.Random(region)
    sizes = sorted(plan.general.lengths | {min(plan.general.lengths) - 1, 10, 11})
    checked = 0
    for prefix in range(1000):
        for size in sizes:
            head = str(prefix)[:size]
            nsn = head + "".join(rng.choice("0123456789") for _ in range(size - len(head)))
            assert plan.kind_of(nsn) == _walk(plan, nsn), nsn
            checked += 1
    assert checked >= 4000
