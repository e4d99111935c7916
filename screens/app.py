"""The Textual shell: modes on 1-4, help, command palette, keymap from config.

While an alert step or a dialog (a form, a typed-count confirmation, the import) is
on top, the App's single-key bindings are inert: what that screen asks the operator
to type is exactly what works. `q` asks first while an alert is being prepared or a
send is running."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.context import Context
from console.i18n import Translator
from console.sending.alerts import SendingNow, sending_now
from console.sending.figures import count
from console.sending.worker_launch import Launched
from console.text import visible
from screens.alert_flow import OpenAlert
from screens.calendar import CalendrierScreen
from screens.confirm_action import ConfirmActionScreen
from screens.consent import ConsentementsScreen
from screens.contacts import ContactsScreen
from screens.envois import EnvoisScreen
from screens.help import HelpScreen
from screens.widgets.inert import INERT_WHILE_TYPING, keys_inert_on
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
        Binding("q", "leave", "binding.quit", id="app.quit"),
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
        # The alert being prepared in this console, if any: one at a time.
        self.alert: OpenAlert | None = None
        self._quit_question: ConfirmActionScreen | None = None

    def on_mount(self) -> None:
        self.title = f"Tocsin — {self.ctx.config.town.name}"
        self.switch_mode(self.start_mode)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in INERT_WHILE_TYPING and self._typing())

    def _typing(self) -> bool:
        """An alert step or a dialog is on top: its keys are the only ones that work."""
        try:
            screen = self.screen
        except Exception:  # no screen yet, while starting
            return False
        return keys_inert_on(screen)

    # The alert -------------------------------------------------------------------------

    def action_emergency(self) -> None:
        self.open_alert()

    def open_alert(self) -> None:
        """`!`: the alert already open if there is one (wherever it was left), else a
        new one over the current screen, which comes back when the alert is done."""
        if self.alert is not None:
            self.alert.bring_back()
            return
        self.alert = OpenAlert(self, on_close=self._alert_closed)
        self.alert.start()

    def _alert_closed(self) -> None:
        self.alert = None

    def show_live(self, campaign_id: int) -> None:
        """After an alert: the live queue, the new campaign under the cursor. A view
        drilled into (a campaign) gives way; a dialog stays on top, as it was left."""
        self.switch_mode("envois")
        while len(self.screen_stack) > 1 and not self.screen.is_modal:
            self.pop_screen()
        queue = self.screen_stack[0]
        if isinstance(queue, EnvoisScreen):
            queue.show_campaign(campaign_id)

    # Quitting --------------------------------------------------------------------------

    def action_leave(self) -> None:
        """`q`: quit, asking first when something would be lost or stopped."""
        self.ask_before_quitting()

    async def action_quit(self) -> None:
        # ctrl+q and the palette: the same question as `q`, from any screen.
        self.ask_before_quitting()

    @work(thread=True, exclusive=True, group="quit")
    def ask_before_quitting(self) -> None:
        now: SendingNow | BaseException
        try:
            now = sending_now(self.ctx)
        except Exception as exc:  # the database unreachable: ask, saying so
            now = exc
        self.call_from_thread(self._quit_or_ask, now)

    def quit_reasons(self, now: SendingNow | BaseException) -> list[str]:
        t = self.t
        reasons = []
        if self.alert is not None:
            reasons.append(t("quit.alert_open", step=self.alert.where))
        if isinstance(now, BaseException):
            reasons.append(t("quit.unknown", error=visible(t.error(now))))
        elif now.waiting:
            reasons.append(
                t(
                    "quit.sending",
                    campaigns=len(now.campaigns),
                    waiting=count(t, now.waiting),
                )
            )
            if now.worker_in_this_process:
                reasons.append(t("quit.demo_worker"))
            elif now.workers_alive:
                reasons.append(t("quit.worker_goes_on"))
            else:
                reasons.append(t("quit.no_worker"))
        return reasons

    def _quit_or_ask(self, now: SendingNow | BaseException) -> None:
        reasons = self.quit_reasons(now)
        if not reasons:
            self.exit()
            return
        if self._quit_question is not None:
            return  # already asked: the question is on screen

        def answered(leave: bool | None) -> None:
            self._quit_question = None
            if leave:
                self.exit()

        t = self.t
        self._quit_question = ConfirmActionScreen(
            t("quit.title"), "\n".join(reasons), t("quit.confirm"), danger=True
        )
        self.push_screen(self._quit_question, answered)

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
        yield SystemCommand(t("binding.quit"), t("binding.quit"), self.action_leave)


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
