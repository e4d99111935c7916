"""The real console in a real terminal: tmux runs `tocsin demo`, send-keys types,
capture-pane reads the screen."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import missing_component

pytestmark = pytest.mark.e2e

TOCSIN = str(Path(sys.executable).with_name("tocsin"))


class Tmux:
    def __init__(self, session: str) -> None:
        self.session = session

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)
        # A person does not type faster than the screen answers; neither do we.
        time.sleep(0.3)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.session], capture_output=True
            ).returncode
            == 0
        )


def _console(tmp_path: Path, width: int, height: int) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        missing_component("tmux is not installed (apt-get install tmux)")
    if not os.access(TOCSIN, os.X_OK):
        missing_component(f"{TOCSIN} is not installed (scripts/setup-venv)")
    session = f"tocsin-{uuid.uuid4().hex[:8]}"
    town = tmp_path / "town"
    command = f"{TOCSIN} demo --dir {town} --residents 300; echo EXITED-$?; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command],
        check=True,
        env={**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8"},
    )
    yield Tmux(session)
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    yield from _console(tmp_path, 100, 30)


@pytest.fixture
def tmux80(tmp_path: Path) -> Iterator[Tmux]:
    """The smallest terminal the console is made for."""
    yield from _console(tmp_path, 80, 24)


def test_demo_search_add_and_quit(tmux: Tmux) -> None:
    # The console opens on the live queue (Envois); Contacts is mode 2.
    tmux.wait_for("Aucun envoi")
    tmux.keys("2")
    screen = tmux.wait_for("joignables par SMS")
    assert "2 Contacts" in screen and "Val-Tocsin" in screen
    assert "300 contacts" in screen
    time.sleep(0.5)  # the first frame is drawn before focus lands on the table

    tmux.keys("/")
    tmux.keys("zz-nobody", literal=True)
    tmux.keys("Enter")
    tmux.wait_for("Aucun contact ne correspond")

    tmux.keys("Escape")
    time.sleep(0.6)  # tmux's escape-time: let the lone Escape through
    tmux.keys("Escape")
    tmux.wait_for("300 correspondent")

    tmux.keys("a")
    tmux.wait_for("Nouveau contact")
    tmux.keys("06 98 76 54 32", literal=True)
    tmux.wait_for("+33698765432")
    tmux.keys("Tab")
    tmux.keys("[bold]Gaston[/] Lagaffe", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for("301 contacts")
    # The name is shown as typed, brackets included, never as markup.
    assert "[bold]Gaston[/] Lagaffe" in screen

    tmux.keys("?")
    tmux.wait_for("contacts.search")
    tmux.keys("?")
    time.sleep(0.3)
    tmux.keys("q")
    tmux.wait_for("EXITED-0")


def test_demo_emergency_alert_to_completion(tmux: Tmux) -> None:
    tmux.wait_for("Aucun envoi")
    tmux.wait_for("Worker actif")  # the demo's worker beats
    time.sleep(0.5)
    tmux.keys("!")
    tmux.wait_for("étape 1/4")
    tmux.keys("Enter")  # Inondation
    tmux.wait_for("étape 2/4")
    screen = tmux.wait_for("destinataires")
    tmux.keys("Enter")  # every resident, ticked already
    tmux.wait_for("étape 3/4")
    tmux.wait_for("GSM-7")
    tmux.keys("C-n")
    screen = tmux.wait_for("tapez le nombre de destinataires")
    found = re.search(r"tapez le nombre de destinataires : ([\d ]+)", screen)
    assert found is not None, screen
    count = found.group(1).replace(" ", "")
    # The count field has the focus: the count, as the screen says, and Enter.
    tmux.keys(count, literal=True)
    tmux.keys("Enter")
    tmux.wait_for("en file")
    screen = tmux.wait_for("terminée", timeout=90)
    assert "ALERTE" in screen and "100 %" in screen
    assert "en attente 0" in screen.replace("\u00a0", " ")
    tmux.keys("q")
    tmux.wait_for("EXITED-0")


def _count_asked(screen: str) -> str:
    found = re.search(r"tapez le nombre de destinataires : ([\d  ]+)", screen)
    assert found is not None, screen
    return re.sub(r"\D", "", found.group(1))


def _stray_keys(tmux: Tmux, step: str, keys: str = "q2!") -> str:
    """Keys an operator under stress may hit: nothing happens, the step stays."""
    for key in keys:
        tmux.keys(key, literal=True)
    time.sleep(0.5)
    screen = tmux.wait_for(step)
    assert "EXITED" not in screen and "Aucun envoi" not in screen, screen
    return screen


def test_alert_at_80x24_keys_do_what_the_screen_says(tmux80: Tmux) -> None:
    tmux = tmux80
    tmux.wait_for("Aucun envoi")
    tmux.wait_for("Worker actif")
    time.sleep(0.5)
    tmux.keys("!")
    tmux.wait_for("étape 1/4")
    _stray_keys(tmux, "étape 1/4")
    tmux.keys("Enter")  # Inondation, as the screen says
    tmux.wait_for("étape 2/4")
    screen = _stray_keys(tmux, "étape 2/4")
    assert "[x] Tous les habitants" in screen and "[ ] " in screen
    tmux.keys("Down")
    tmux.keys("Space")  # the first quartier ticked: "Tous les habitants" unticked
    screen = tmux.wait_for("[ ] Tous les habitants")
    assert "[x] " in screen
    tmux.keys("Up")
    tmux.keys("Space")  # everyone again: a send long enough to quit during it
    screen = tmux.wait_for("[x] Tous les habitants")
    assert screen.count("[x]") == 1
    tmux.keys("Enter")
    tmux.wait_for("étape 3/4")
    tmux.wait_for("GSM-7")
    # At step 3 every key is text: typed, seen, then rubbed out.
    tmux.keys("End")
    tmux.keys("q2!", literal=True)
    tmux.wait_for("q2!")
    tmux.keys("BSpace", "BSpace", "BSpace")
    # Back a step and forward again: the text is kept (the prefilled one follows).
    tmux.keys("Escape")
    time.sleep(0.6)  # tmux's escape-time
    tmux.wait_for("étape 2/4")
    tmux.keys("Enter")
    tmux.wait_for("étape 3/4")
    tmux.keys("C-n")
    screen = tmux.wait_for("tapez le nombre de destinataires")
    assert "étape 4/4" in screen
    count = _count_asked(screen)
    # A reflex Enter on the empty field sends nothing.
    tmux.keys("Enter")
    tmux.wait_for("Ce n'est pas le nombre de destinataires")
    _stray_keys(tmux, "étape 4/4", "q!")
    # Digits typed go into the field, even from a button, Enter right after them.
    tmux.keys("Tab")
    tmux.keys(count, literal=True)
    tmux.keys("Enter")
    tmux.wait_for("en file")
    # q while it sends: asked first, and the demo's worker named.
    tmux.keys("q")
    screen = tmux.wait_for("Quitter Tocsin ?")
    assert "de la démo" in screen
    tmux.keys("Enter")  # the focus is on the harmless button
    time.sleep(0.5)
    assert "EXITED" not in tmux.screen()
    screen = tmux.wait_for("terminée", timeout=90)
    assert "ALERTE" in screen
    tmux.keys("q")
    tmux.wait_for("EXITED-0")
