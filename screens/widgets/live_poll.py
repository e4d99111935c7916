"""What the live screens share: read the database in a thread twice a second, never on
the UI thread, one read at a time; show a lost database in place and keep polling."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from rich.text import Text
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from console.i18n import Translator
from console.text import visible

# Twice a second: live enough to watch, cheap enough for several SSH sessions at once.
POLL_S = 0.5

ReadT = TypeVar("ReadT")


class LivePoll(Generic[ReadT]):
    """Mixed into a Screen. `read_figures` runs in a thread, `show_figures` on the UI
    thread."""

    t: Translator
    # The Static that says the database is unreachable.
    ERROR_TARGET = ""

    polls = 0
    _busy = False
    _timer: Timer | None = None

    def read_figures(self) -> ReadT:
        raise NotImplementedError

    def show_figures(self, data: ReadT) -> None:
        raise NotImplementedError

    def _screen(self) -> Screen[Any]:
        assert isinstance(self, Screen)
        return self

    def start_polling(self) -> None:
        screen = self._screen()
        self._timer = screen.set_interval(POLL_S, self.poll)
        self.poll_soon()

    def poll_soon(self) -> None:
        self._screen().call_after_refresh(self.poll)

    def pause_polling(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def resume_polling(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        self.poll_soon()

    async def poll(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            data = await asyncio.to_thread(self.read_figures)
        except Exception as exc:  # the database went away: say so, keep polling
            self._screen().query_one(self.ERROR_TARGET, Static).update(
                Text(self.t("envois.db_error", error=visible(str(exc))[:200]), style="red")
            )
            return
        finally:
            self._busy = False
        self.polls += 1
        self.show_figures(data)
