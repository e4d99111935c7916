"""Snapshots of every screen at 80x24 and 120x40, on a seeded town and a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.ui.conftest import AppFactory

REPO = Path(__file__).resolve().parents[2]
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES)
def test_contacts(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_contacts_english(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(language="en"), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_contacts_search(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def search(pilot: Pilot[None]) -> None:
        await pilot.press("slash", *"garcon", "enter")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=search)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["question_mark"], terminal_size=size,
                        run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_placeholder_mode(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["1"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_add_form(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def fill(pilot: Pilot[None]) -> None:
        await pilot.press("a", *"01 42 76 40 41")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=fill)


@pytest.mark.parametrize("size", SIZES)
def test_consent_form(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["c"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_erase_confirmation(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["d"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_import_screen(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["i"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_import_preview(snap_compare, make_app: AppFactory, size: tuple[int, int],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative path, so the screen is the same wherever the repository is cloned.
    monkeypatch.chdir(REPO)

    async def preview(pilot: Pilot[None]) -> None:
        await pilot.press("i", *"tests/fixtures/habitants-exemple.csv", "enter")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=preview)
