"""What the operator asks of an import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

FIELDS = ("number", "name", "first_name", "zone", "groups", "notes")


@dataclass(frozen=True)
class ImportOptions:
    # field (number, name, first_name, zone, groups, notes) -> header name or 1-based
    # column number as a string; "" ignores a column the detection would have used.
    mapping: Mapping[str, str] = field(default_factory=dict)
    # Contact.source for new contacts; "" means "import:<file name>".
    source: str = ""
    dry_run: bool = False
    # ";", ",", "\t" or "" to detect.
    delimiter: str = ""
    consent_topic: str | None = None
    consent_source: str = ""
    consent_proof: str = ""
    consent_text_version: str = ""
    # More topics granted on the same terms (a rented list covers several), and when
    # the residents consented (the list's date; default: now).
    consent_more_topics: tuple[str, ...] = ()
    consent_at: datetime | None = None

    @property
    def consent_topics(self) -> tuple[str, ...]:
        first = (self.consent_topic,) if self.consent_topic else ()
        return tuple(dict.fromkeys((*first, *self.consent_more_topics)))
