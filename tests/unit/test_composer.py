"""The composer's domain: SMS cost of real French texts, the GSM-7 suggestion,
templates and the STOP mention."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.composing.composer import (
    PLACEHOLDERS,
    analyse,
    describe_character,
    estimate_cost,
    fill_template,
    template_values,
    to_gsm7,
    unfilled_placeholders,
    with_stop_mention,
)
from console.composing.gsm import GSM7_BASIC, GSM7_EXTENSION, char_units, needs_ucs2, segment_count

# A GSM-7 sentence a mairie would send, cut to exact lengths below.
_GSM7_LONG = (
    "Rappel : la collecte des encombrants a lieu le premier lundi du mois. Sortez-les "
    "la veille au soir sans gener le passage des pietons. Merci de votre aide ! "
) * 4
_UCS2_LONG = "Fête du village : la rue du Château sera fermée de 8h à 23h. " * 6

# (text, encoding, units, segments, remaining, characters forcing UCS-2), counted by hand.
CASES: list[tuple[str, str, int, int, int, list[str]]] = [
    ("Coupure d'eau jeudi de 9h à 12h", "GSM-7", 31, 1, 129, []),
    ("Fête de la musique ce soir place de l'Église", "UCS-2", 44, 1, 26, ["ê"]),
    ("Marché de Noël : 5 € l'entrée", "UCS-2", 29, 1, 41, ["ë"]),  # € is 1 unit in UCS-2
    ("Cantine : 3,50 € le repas", "GSM-7", 26, 1, 134, []),  # € is ESC + septet
    ("Inscriptions [urgent] au 05 55 12 34 56", "GSM-7", 41, 1, 119, []),
    ("Fête des voisins 🎉", "UCS-2", 19, 1, 51, ["ê", "🎉"]),  # emoji: surrogate pair
    ("La mairie vous dit “merci” !", "UCS-2", 28, 1, 42, ["“", "”"]),
    ("Réunion « Bien vieillir » à 15h", "UCS-2", 31, 1, 39, ["«", "»"]),
    ("Attention\u00a0: route barrée\u00a0!", "UCS-2", 26, 1, 44, ["\u00a0"]),
    ("Vote\u202f: dimanche de 8h à 18h", "UCS-2", 27, 1, 43, ["\u202f"]),
    ("Bientôt… la fibre", "UCS-2", 17, 1, 53, ["ô", "…"]),
    ("Travaux – rue Pasteur — 8h-12h", "UCS-2", 30, 1, 40, ["–", "—"]),
    ("Ça y est : la fibre arrive à Cœuvres", "UCS-2", 36, 1, 34, ["œ"]),  # Ç is GSM-7
    ("ÉLECTIONS : BUREAU N°3", "UCS-2", 22, 1, 48, ["°"]),
    ("Müller, Muñoz, Strauß et Ødegård : bienvenue", "GSM-7", 44, 1, 116, []),
    ("Piscine fermée {travaux} ~ réouverture lundi", "GSM-7", 47, 1, 113, []),
    ("", "GSM-7", 0, 0, 160, []),
    # The single-SMS limits and the first concatenated part.
    (_GSM7_LONG[:160], "GSM-7", 160, 1, 0, []),
    (_GSM7_LONG[:161], "GSM-7", 161, 2, 145, []),
    (_GSM7_LONG[:306], "GSM-7", 306, 2, 0, []),
    (_GSM7_LONG[:307], "GSM-7", 307, 3, 152, []),
    (_UCS2_LONG[:70], "UCS-2", 70, 1, 0, ["ê", "â"]),
    (_UCS2_LONG[:71], "UCS-2", 71, 2, 63, ["ê", "â"]),
    (_UCS2_LONG[:134], "UCS-2", 134, 2, 0, ["ê", "â"]),
    (_UCS2_LONG[:135], "UCS-2", 135, 3, 66, ["ê", "â"]),
    # An extension character is never split from its ESC: at septet 153 of a
    # concatenated text it moves to the next part.
    ("a" * 151 + "€" + "b" * 10, "GSM-7", 163, 2, 143, []),  # € fills part 1 exactly
    ("a" * 152 + "€" + "b" * 10, "GSM-7", 164, 2, 141, []),  # € opens part 2
    ("a" * 152 + "€" + "b" * 152, "GSM-7", 306, 3, 152, []),  # 306 septets, yet 3 parts
    ("a" * 80 + "€" * 40, "GSM-7", 160, 1, 0, []),  # 160 septets still fit in one
    # A surrogate pair is not split either.
    ("ê" + "a" * 65 + "🎉" + "b", "UCS-2", 69, 1, 1, ["ê", "🎉"]),
    ("ê" + "a" * 64 + "🎉" + "b" * 5, "UCS-2", 72, 2, 62, ["ê", "🎉"]),  # 🎉 ends part 1
    ("ê" + "a" * 65 + "🎉" + "b" * 5, "UCS-2", 73, 2, 60, ["ê", "🎉"]),  # 🎉 opens part 2
    (_UCS2_LONG, "UCS-2", 366, 6, 36, ["ê", "â"]),
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments", "remaining", "ucs2"), CASES)
def test_real_french_texts(
    text: str, encoding: str, units: int, segments: int, remaining: int, ucs2: list[str]
) -> None:
    analysis = analyse(text)
    assert (analysis.encoding, analysis.units, analysis.segments, analysis.remaining) == (
        encoding,
        units,
        segments,
        remaining,
    )
    assert analysis.ucs2_characters == ucs2
    assert analysis.characters == len(text)
    single = units <= (160 if encoding == "GSM-7" else 70)
    assert (
        analysis.per_segment
        == {("GSM-7", True): 160, ("GSM-7", False): 153, ("UCS-2", True): 70, ("UCS-2", False): 67}[
            (encoding, single)
        ]
    )
    assert segment_count(text) == max(1, segments)  # what the Kannel provider checks


@pytest.mark.parametrize(
    ("text", "suggestion", "segments"),
    [
        (
            "Fête de la musique ce soir place de l'Église",
            "Fete de la musique ce soir place de l'Église",
            1,
        ),
        ("Réunion « Bien vieillir » à 15h", 'Réunion "Bien vieillir" à 15h', 1),
        ("Réunion «\u00a0Bien vieillir\u00a0» à 15h", 'Réunion "Bien vieillir" à 15h', 1),
        ("Attention\u00a0: route barrée\u00a0!", "Attention : route barrée !", 1),
        ("L’accueil de la mairie est fermé", "L'accueil de la mairie est fermé", 1),
        ("Bientôt… la fibre", "Bientot... la fibre", 1),
        ("Travaux – rue Pasteur — 8h‑12h", "Travaux - rue Pasteur - 8h-12h", 1),
        ("Ça y est : la fibre arrive à Cœuvres", "Ça y est : la fibre arrive à Coeuvres", 1),
        ("ŒUVRES : leçon, maïs, août, Noël", "OEUVRES : lecon, mais, aout, Noel", 1),
        ("À l'école, fête de l'Été", "A l'école, fete de l'Été", 1),
        ("ÊTRE, CÂBLE, ÎLE, HÔTEL, FLÛTE, ÈRE", "ETRE, CABLE, ILE, HOTEL, FLUTE, ERE", 1),
        ("Élections : bureau n°3", "Élections : bureau no3", 1),
        ("Fête des voisins 🎉", "Fete des voisins ?", 1),
        ("Bravo 👍🏽 à tous ❤️", "Bravo ? à tous ?", 1),
        ("La famille 👨‍👩‍👧 est là", "La famille ? est là", 1),
        ("Müller, Muñoz et Ødegård : «\u202fmerci\u202f»", 'Müller, Muñoz et Ødegård : "merci"', 1),
        ("e\u0301te\u0301 2026", "été 2026", 1),  # decomposed accents recomposed
        ("Zone\u200b bleue\u00ad", "Zone bleue", 1),  # invisible characters dropped
        ("Surface 20 m² ½ tarif", "Surface 20 m2 1/2 tarif", 1),
        (_UCS2_LONG[:135], _UCS2_LONG[:135].replace("ê", "e").replace("â", "a"), 1),
    ],
)
def test_gsm7_suggestion(text: str, suggestion: str, segments: int) -> None:
    analysis = analyse(text)
    assert analysis.encoding == "UCS-2"
    assert analysis.gsm7_suggestion == suggestion
    assert analysis.suggestion_segments == segments
    assert analysis.suggestion_units == analyse(suggestion).units
    assert not needs_ucs2(suggestion)


def test_gsm7_characters_stay_as_they_are() -> None:
    every = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
    assert to_gsm7(every) == every
    assert to_gsm7("é è ù à ì ò Ç É ä ö ñ ü Ä Ö Ñ Ü Å å Æ æ ß Ø ø £ ¥ § ¿ ¡") == (
        "é è ù à ì ò Ç É ä ö ñ ü Ä Ö Ñ Ü Å å Æ æ ß Ø ø £ ¥ § ¿ ¡"
    )


def test_lone_surrogates_from_a_mangled_argument() -> None:
    # sys.argv carries undecodable bytes as lone surrogates (surrogateescape).
    analysis = analyse("Caf\udce9")
    assert analysis.encoding == "UCS-2" and analysis.units == 4
    assert analysis.gsm7_suggestion == "Caf?"


def test_to_json_has_stable_keys_and_integer_counts() -> None:
    data = analyse("Fête\u00a0!").to_json()
    assert data == {
        "text": "Fête\u00a0!",
        "characters": 6,
        "encoding": "UCS-2",
        "units": 6,
        "segments": 1,
        "per_segment": 70,
        "remaining": 64,
        "ucs2_characters": ["ê", "\u00a0"],
        "ucs2_code_points": ["U+00EA", "U+00A0"],
        "gsm7_suggestion": "Fete !",
        "suggestion_segments": 1,
        "suggestion_units": 6,
    }
    plain = analyse("Bonjour").to_json()
    assert plain["gsm7_suggestion"] is None and plain["suggestion_segments"] is None
    assert plain["ucs2_characters"] == [] and plain["ucs2_code_points"] == []


@pytest.mark.parametrize(
    ("segments", "recipients", "price", "cost"),
    [
        (1, 1, 0.045, 0.05),
        (1, 2, 0.045, 0.09),
        (2, 1000, 0.045, 90.0),
        (3, 4321, 0.0375, 486.11),
        (0, 1000, 0.045, 0.0),
        (1, 0, 0.045, 0.0),
        (1, 7, 0.0, 0.0),
    ],
)
def test_estimate_cost_in_cents(segments: int, recipients: int, price: float, cost: float) -> None:
    assert estimate_cost(segments, recipients, price) == cost


def test_estimate_cost_refuses_negatives() -> None:
    with pytest.raises(ValueError):
        estimate_cost(-1, 1, 0.045)


# ---- templates and the STOP mention ------------------------------------------------


def test_fill_template_leaves_what_it_does_not_know() -> None:
    template = "{commune} : coupure d'eau le {date} à {heure}, {lieu} ({zone})."
    values = {"commune": "Val-Tocsin", "date": "14/03/2026", "heure": "21h05"}
    filled = fill_template(template, values)
    assert filled == "Val-Tocsin : coupure d'eau le 14/03/2026 à 21h05, {lieu} ({zone})."
    assert unfilled_placeholders(filled) == ["lieu", "zone"]
    assert (
        unfilled_placeholders(fill_template(filled, {"lieu": "rue Haute", "zone": "Centre"})) == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "}",
        "{}",
        "{{lieu}}",
        "{0}",
        "{commune!r}",
        "{commune:>10}",
        "{ lieu }",
        "{lieu",
        "a {b} c",
        "{__class__}",
        "%(commune)s",
        "{commune.__class__}",
    ],
)
def test_braces_are_text(text: str) -> None:
    # str.format would raise or reach into objects on most of these.
    assert fill_template(text, {"commune": "X"}) == text.replace("{commune}", "X")


def test_a_value_is_not_filled_again() -> None:
    assert fill_template("{lieu} / {commune}", {"lieu": "{commune}", "commune": "Brest"}) == (
        "{commune} / Brest"
    )


def test_unknown_placeholders_are_not_reported_as_unfilled() -> None:
    assert unfilled_placeholders("Bonjour {prenom}, RDV {lieu} {lieu} {date}") == ["lieu", "date"]


def test_stop_mention_is_appended_once() -> None:
    mention = "Désinscription : répondez STOP"
    once = with_stop_mention("Fête du village samedi  \n", mention)
    assert once == "Fête du village samedi\nDésinscription : répondez STOP"
    assert with_stop_mention(once, mention) == once
    # Already there in another case, or in its GSM-7 spelling: not added again.
    assert with_stop_mention("Infos. DESINSCRIPTION : REPONDEZ STOP", mention) == (
        "Infos. DESINSCRIPTION : REPONDEZ STOP"
    )
    assert with_stop_mention("Texte", "") == "Texte"
    assert with_stop_mention("Texte", "  ") == "Texte"
    assert with_stop_mention("   ", mention) == "   "  # still refused as empty


def test_template_values_in_french_style() -> None:
    values = template_values("Val-Tocsin", datetime(2026, 3, 4, 9, 5), ["Les Prés", "La Gare"])
    assert values == {
        "commune": "Val-Tocsin",
        "date": "04/03/2026",
        "heure": "09h05",
        "zone": "Les Prés, La Gare",
    }
    assert "zone" not in template_values("X", datetime(2026, 3, 4, 21, 5), [])
    assert template_values("X", datetime(2026, 3, 4, 21, 5), [])["heure"] == "21h05"
    assert set(values) <= set(PLACEHOLDERS)


# ---- properties ---------------------------------------------------------------------

_GSM7_ALPHABET = sorted(GSM7_BASIC | GSM7_EXTENSION)
_FRENCH = st.sampled_from(
    _GSM7_ALPHABET + list("êâîôûëïçœŒÊÂÎÔÛÀÈ«»“”’…–—°\u00a0\u202f") + ["🎉", "👍🏽"]
)
_texts = st.one_of(st.text(), st.lists(_FRENCH, max_size=300).map("".join))


@given(_texts, st.integers(min_value=0, max_value=400))
def test_segments_never_drop_as_the_text_grows(text: str, cut: int) -> None:
    assert analyse(text[:cut]).segments <= analyse(text).segments


@given(_texts)
def test_to_gsm7_is_always_gsm7(text: str) -> None:
    converted = to_gsm7(text)
    assert not needs_ucs2(converted)
    assert to_gsm7(converted) == converted


@given(st.text(alphabet=_GSM7_ALPHABET, max_size=400))
def test_gsm7_text_has_no_suggestion(text: str) -> None:
    analysis = analyse(text)
    assert analysis.encoding == "GSM-7"
    assert analysis.gsm7_suggestion is None and analysis.suggestion_segments is None
    assert analysis.ucs2_characters == []
    assert to_gsm7(text) == text


@given(_texts)
def test_units_are_the_sum_of_each_character(text: str) -> None:
    analysis = analyse(text)
    ucs2 = analysis.encoding == "UCS-2"
    assert analysis.units == sum(char_units(c, ucs2) for c in text)
    if ucs2:
        assert analysis.units == len(text.encode("utf-16-le")) // 2
    assert 0 <= analysis.remaining <= analysis.per_segment
    # Only a two-unit character at a part's edge costs a part more than the formula.
    single, part = (70, 67) if ucs2 else (160, 153)
    formula = 0 if not text else 1 if analysis.units <= single else math.ceil(analysis.units / part)
    assert formula <= analysis.segments
    if all(char_units(c, ucs2) == 1 for c in text):
        assert analysis.segments == formula


@given(
    st.text(alphabet=st.sampled_from("{}ab:!0 _" + "".join(PLACEHOLDERS)), max_size=60),
    st.dictionaries(st.sampled_from([*PLACEHOLDERS, "x", "0", ""]), st.text(max_size=10)),
)
def test_fill_template_never_raises(template: str, values: dict[str, str]) -> None:
    filled = fill_template(template, values)
    for name in unfilled_placeholders(filled):
        assert name not in values or f"{{{name}}}" in "".join(values.values())


@given(st.text(max_size=200), st.text(max_size=40))
def test_stop_mention_is_idempotent(text: str, mention: str) -> None:
    once = with_stop_mention(text, mention)
    assert with_stop_mention(once, mention) == once


def test_describe_character() -> None:
    assert describe_character("ê") == "ê (U+00EA)"
    assert describe_character("🎉") == "🎉 (U+1F389)"
    assert describe_character("\u202f") == "U+202F (NARROW NO-BREAK SPACE)"
    assert describe_character("\u200b") == "U+200B (ZERO WIDTH SPACE)"
