"""What the operator asks of an import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
