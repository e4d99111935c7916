"""The Textual shell: modes on 1-4, help, command palette, keymap from config."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.context import Context
from console.i18n import Translator
from console.sending.worker_launch import Launched
from screens.consent import ConsentementsScreen
from screens.contacts import ContactsScreen
from screens.envois import EnvoisScreen
from screens.help import HelpScreen
from screens.placeholder import CalendrierScreen
from screens.widgets.translate import translate_bindings


class TocsinApp(App[None]):
    TITLE = "Tocsin"
    ENABLE_COMMAND_PALETTE = True
    MODES: ClassVar[dict[str, Any]] = {
        "envois": EnvoisScreen,
        "contacts": ContactsScreen,
        "consentements": ConsentementsScreen,
        "calendrier": CalendrierScreen,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        # The mode bar shows the modes with their keys: the footer keeps its room.
        Binding("1", "switch_mode('envois')", "binding.mode_envois", id="mode.envois", show=False),
        Binding(
            "2", "switch_mode('contacts')", "binding.mode_contacts", id="mode.contacts", show=False
        ),
        Binding(
            "3",
            "switch_mode('consentements')",
            "binding.mode_consentements",
            id="mode.consentements",
            show=False,
        ),
        Binding(
            "4",
            "switch_mode('calendrier')",
            "binding.mode_calendrier",
            id="mode.calendrier",
            show=False,
        ),
        Binding("exclamation_mark", "emergency", "binding.emergency", id="app.emergency"),
        Binding("question_mark,f1", "help", "binding.help", id="app.help"),
        Binding("colon", "command_palette", "binding.palette", id="app.palette", show=False),
        Binding("q", "quit", "binding.quit", id="app.quit"),
    ]

    def __init__(
        self,
        ctx: Context,
        *,
        start_mode: str = "envois",
        worker_launcher: Callable[[], Launched] | None = None,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        # Starts a worker that outlives this console (the CLI knows how); None: the
        # operator is told how to start one.
        self.worker_launcher = worker_launcher
        self.t = Translator(ctx.config.console.language)
        self.start_mode = start_mode
        translate_bindings(self, self.t)
        if ctx.config.console.keymap:
            self.set_keymap(dict(ctx.config.console.keymap))

    def on_mount(self) -> None:
        self.title = f"Tocsin — {self.ctx.config.town.name}"
        self.switch_mode(self.start_mode)

    def action_emergency(self) -> None:
        from screens.emergency_template import TemplateStep

        if any(isinstance(screen, TemplateStep) for screen in self.screen_stack):
            return
        self.push_screen(TemplateStep())

    def show_live(self, campaign_id: int) -> None:
        """After an alert: back to the queue, the new campaign under the cursor."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.switch_mode("envois")
        screen = self.screen
        if isinstance(screen, EnvoisScreen):
            screen.show_campaign(campaign_id)

    def action_start_worker(self) -> None:
        from console.sending.workers import ALIVE_WITHIN_S, alive_workers

        t = self.t
        if alive_workers(self.ctx.engine, self.ctx.clock.now(), ALIVE_WITHIN_S):
            self.notify(t("worker.already_running"))
            return
        if self.worker_launcher is None:
            self.notify(t("worker.how_to_start"), severity="warning", timeout=10)
            return
        try:
            started = self.worker_launcher()
        except Exception as exc:  # shown to the operator: the console never crashes on it
            self.notify(t("worker.start_failed", error=str(exc)), severity="error", markup=False)
            return
        self.notify(t("worker.started", pid=started.pid, log=str(started.log)), markup=False)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        t = self.t
        for mode in self.MODES:
            yield SystemCommand(
                t(f"mode.{mode}"), t(f"binding.mode_{mode}"), partial(self.switch_mode, mode)
            )
        yield SystemCommand(t("binding.help"), t("help.title"), self.action_help)
        yield from screen_commands(screen)
        yield SystemCommand(t("binding.quit"), t("binding.quit"), self.exit)


def screen_commands(screen: Screen[Any]) -> Iterable[SystemCommand]:
    """Every shown binding of the current screen is also a palette command."""
    for key, bindings in screen._bindings.key_to_bindings.items():
        for binding in bindings:
            if binding.show and binding.description:
                yield SystemCommand(
                    binding.description,
                    f"{key} — {binding.id or binding.action}",
                    partial(screen.app.call_later, screen.run_action, binding.action),
                )
