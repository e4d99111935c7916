"""What an import reports: every row it did not import as it was, with the line a
spreadsheet user looks at, the counts, the `--json` shape and the rejects file."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["rejected", "flagged"]
IssueCode = Literal[
    "invalid_number",
    "missing_number",
    "missing_column",
    "duplicate",
    "bad_encoding",
    "invalid_field",
    "not_mobile",
    "suppressed",
    "withdrawn",
]


class ImportFailed(Exception):
    """The file cannot be imported at all; str() names the file and the reason."""


@dataclass(slots=True)
class RowIssue:
    line: int
    status: Status
    reason: str
    # The row's cells, for the rejects file: a rejected row's (a flagged row is
    # imported, and its cells are not kept: an import holds no row longer than
    # its chunk).
    raw: list[str]
    code: IssueCode
    reason_fr: str = ""

    def message(self, language: str) -> str:
        return (self.reason_fr or self.reason) if language == "fr" else self.reason


@dataclass
class ImportReport:
    file: str
    encoding: str
    delimiter: str
    mapping: dict[str, str]
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    flagged: int = 0
    rejected: int = 0
    consents_recorded: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    dry_run: bool = False
    consent_topic: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable shape scripts rely on.

        {"file", "encoding", "delimiter", "dry_run", "mapping": {field: header},
         "counts": {"rows", "imported", "updated", "unchanged", "flagged", "rejected",
                    "consents_recorded"} (integers),
         "rejected": [{"line", "code", "reason"}], "flagged": [{"line", "code", "reason"}]}
        Reasons are English; codes are the IssueCode values.
        """
        issues = sorted(self.issues, key=lambda i: i.line)
        return {
            "file": self.file,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "dry_run": self.dry_run,
            "mapping": dict(self.mapping),
            "counts": {
                "rows": self.rows,
                "imported": self.imported,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "flagged": self.flagged,
                "rejected": self.rejected,
                "consents_recorded": self.consents_recorded,
            },
            "rejected": [
                {"line": i.line, "code": i.code, "reason": i.reason}
                for i in issues
                if i.status == "rejected"
            ],
            "flagged": [
                {"line": i.line, "code": i.code, "reason": i.reason}
                for i in issues
                if i.status == "flagged"
            ],
        }

    def write_rejects(self, path: Path, language: str = "en") -> int:
        """Write the rejected rows so they can be fixed in Excel and imported again.

        Columns: line, reason, then the original header. UTF-8 with a BOM (Excel reads
        accents right) and the file's own separator. The two extra columns are never
        taken for data on re-import; a mapping given by column number must add 2.
        """
        rejected = sorted((i for i in self.issues if i.status == "rejected"), key=lambda i: i.line)
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.delimiter or ";")
            writer.writerow(["line", "reason", *self.header])
            for issue in rejected:
                writer.writerow([str(issue.line), issue.message(language), *issue.raw])
        return len(rejected)

    def summary_lines(self, language: str = "fr") -> list[str]:
        lines: list[str] = []
        if language == "fr":
            if self.dry_run:
                lines.append("Essai à blanc : rien n'a été enregistré.")
            lines.append(
                f"{_fr(self.rows, 'ligne lue', 'lignes lues')} : "
                f"{_fr(self.imported, 'importée', 'importées')}, "
                f"{_fr(self.updated, 'mise à jour', 'mises à jour')}, "
                f"{_fr(self.unchanged, 'inchangée', 'inchangées')}, "
                f"{_fr(self.flagged, 'signalée', 'signalées')}, "
                f"{_fr(self.rejected, 'rejetée', 'rejetées')}"
            )
            if self.consent_topic:
                lines.append(
                    _fr(
                        self.consents_recorded,
                        "consentement enregistré",
                        "consentements enregistrés",
                    )
                    + f" pour « {self.consent_topic} »"
                )
        else:
            if self.dry_run:
                lines.append("Dry run: nothing was written.")
            lines.append(
                f"{_en(self.rows, 'row')} read: {self.imported} imported, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.flagged} flagged, {self.rejected} rejected"
            )
            if self.consent_topic:
                lines.append(
                    f"{_en(self.consents_recorded, 'consent')} recorded for {self.consent_topic!r}"
                )
        for issue in sorted(self.issues, key=lambda i: (i.line, i.status)):
            if language == "fr":
                lines.append(f"ligne {issue.line} : {issue.message('fr')}")
            else:
                lines.append(f"line {issue.line}: {issue.reason}")
        return lines


def _fr(count: int, singular: str, plural: str) -> str:
    # French uses the singular for 0 and 1.
    return f"{count} {singular if count <= 1 else plural}"


def _en(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"
