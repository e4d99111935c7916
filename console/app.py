"""The Textual shell: modes on 1-4, help, command palette, keymap from config."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.context import Context
from console.i18n import Translator
from screens.contacts import ContactsScreen
from screens.help import HelpScreen
from screens.placeholder import CalendrierScreen, ConsentementsScreen, EnvoisScreen
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
        Binding("1", "switch_mode('envois')", "binding.mode_envois", id="mode.envois"),
        Binding("2", "switch_mode('contacts')", "binding.mode_contacts", id="mode.contacts"),
        Binding("3", "switch_mode('consentements')", "binding.mode_consentements",
                id="mode.consentements", show=False),
        Binding("4", "switch_mode('calendrier')", "binding.mode_calendrier",
                id="mode.calendrier", show=False),
        Binding("question_mark,f1", "help", "binding.help", id="app.help"),
        Binding("colon", "command_palette", "binding.palette", id="app.palette", show=False),
        Binding("q", "quit", "binding.quit", id="app.quit"),
    ]

    def __init__(self, ctx: Context, *, start_mode: str = "contacts") -> None:
        super().__init__()
        self.ctx = ctx
        self.t = Translator(ctx.config.console.language)
        self.start_mode = start_mode
        translate_bindings(self, self.t)
        if ctx.config.console.keymap:
            self.set_keymap(dict(ctx.config.console.keymap))

    def on_mount(self) -> None:
        self.title = f"Tocsin — {self.ctx.config.town.name}"
        self.switch_mode(self.start_mode)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        t = self.t
        for mode in self.MODES:
            yield SystemCommand(t(f"mode.{mode}"), t(f"binding.mode_{mode}"),
                                partial(self.switch_mode, mode))
        yield SystemCommand(t("binding.help"), t("help.title"), self.action_help)
        yield from screen_commands(screen)
        yield SystemCommand(t("binding.quit"), t("binding.quit"), self.exit)


def screen_commands(screen: Screen[Any]) -> Iterable[SystemCommand]:
    """Every shown binding of the current screen is also a palette command."""
    for key, bindings in screen._bindings.key_to_bindings.items():
        for binding in bindings:
            if binding.show and binding.description:
                yield SystemCommand(
                    binding.description, f"{key} — {binding.id or binding.action}",
                    partial(screen.app.call_later, screen.run_action, binding.action),
                )
