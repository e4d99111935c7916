"""Import a CSV from the console: preview the detected columns, then import."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RichLog, Static

from console.contacts.importer import ImportFailed, ImportOptions, ImportReport, import_contacts
from console.roles import PermissionDenied
from console.text import visible
from screens.widgets.modal import ALERT_KEY, TocsinModal


class PathInput(Input):
    def check_consume_key(self, key: str, character: str | None) -> bool:
        # `!` opens the alert from this dialog, even with the cursor in the path (a
        # path with a `!` in it can be pasted).
        return character != "!" and super().check_consume_key(key, character)


class ImportScreen(TocsinModal[bool]):
    CSS_PATH = "import_screen.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="import.close"),
        ALERT_KEY,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.changed = False

    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(id="import-box"):
            yield Static(Text(t("import.title"), style="bold"))
            with Horizontal(classes="form-row"):
                yield Label(t("import.path"))
                yield PathInput(id="path", compact=True)
            yield Static(id="detected")
            yield RichLog(id="report", wrap=True, markup=False, highlight=False, auto_scroll=False)
            with Horizontal(id="form-buttons"):
                yield Button(t("import.preview"), id="preview", compact=True)
                yield Button(t("import.run"), variant="primary", id="run", compact=True)
                yield Button(t("form.cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#preview")
    def _preview(self) -> None:
        self._run(dry_run=True)

    @on(Button.Pressed, "#run")
    def _import(self) -> None:
        self._run(dry_run=False)

    def action_cancel(self) -> None:
        # Closing after an import tells the table to reload.
        self.dismiss(self.changed)

    def _run(self, *, dry_run: bool) -> None:
        log = self.query_one("#report", RichLog)
        log.clear()
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            return
        try:
            report = import_contacts(
                self.ctx, Path(raw).expanduser(), ImportOptions(dry_run=dry_run)
            )
        except (ImportFailed, PermissionDenied, ValueError) as exc:
            log.write(Text(self.t("import.failed", reason=visible(str(exc)))))
            return
        self._show(report)
        if not dry_run:
            self.changed = True
            log.write(Text(self.t("import.done")))

    def _show(self, report: ImportReport) -> None:
        mapping = ", ".join(
            f"{field}={visible(column)}" for field, column in report.mapping.items()
        )
        delimiter = {"\t": "tab", ";": ";", ",": ","}.get(report.delimiter, report.delimiter)
        self.query_one("#detected", Static).update(
            Text(
                self.t(
                    "import.detected",
                    encoding=report.encoding,
                    delimiter=delimiter,
                    mapping=mapping,
                )
            )
        )
        log = self.query_one("#report", RichLog)
        # Text, never markup: cells from the file are shown as they are.
        for line in report.summary_lines(self.ctx.config.console.language):
            log.write(Text(visible(line)))
