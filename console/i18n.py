"""UI strings: one catalog per language, looked up by key.

A test checks that every catalog has the same keys and the same placeholders.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from console.locales import cli, consent
from console.locales.en import EN
from console.locales.fr import FR

# A capability with many strings of its own keeps them in console/locales/<name>.py,
# as two dicts FR and EN side by side, listed here.
_PARTS: tuple[tuple[Mapping[str, str], Mapping[str, str]], ...] = (
    (cli.FR, cli.EN),
    (consent.FR, consent.EN),
)


def _merged(base: Mapping[str, str], parts: tuple[Mapping[str, str], ...]) -> dict[str, str]:
    catalog = dict(base)
    for part in parts:
        catalog.update(part)
    return catalog


CATALOGS: Mapping[str, Mapping[str, str]] = {
    "fr": _merged(FR, tuple(fr for fr, _ in _PARTS)),
    "en": _merged(EN, tuple(en for _, en in _PARTS)),
}


class Translator:
    def __init__(self, language: str) -> None:
        if language not in CATALOGS:
            raise ValueError(f"no catalog for language {language!r}")
        self.language = language
        self._catalog = CATALOGS[language]

    def __call__(self, key: str, **values: object) -> str:
        template = self._catalog.get(key)
        if template is None:
            # A missing key is a bug the catalog test catches; never crash the UI on it.
            return key
        return template.format(**values) if values else template

    def __contains__(self, key: object) -> bool:
        return key in self._catalog

    def error(self, exc: BaseException) -> str:
        """An error in the operator's language when its code is in the catalog.

        Parameters named `*_code` are catalog codes themselves (error.<value>), given
        to the template without the suffix."""
        code = getattr(exc, "code", "")
        if not code or f"error.{code}" not in self._catalog:
            return str(exc)
        values: dict[str, object] = {}
        for name, value in dict(getattr(exc, "params", {})).items():
            if name.endswith("_code"):
                values[name.removesuffix("_code")] = self(f"error.{value}")
            else:
                values[name] = value
        return self(f"error.{code}", **values)


def placeholders(template: str) -> frozenset[str]:
    return frozenset(
        name for _, name, _, _ in string.Formatter().parse(template) if name is not None
    )
