"""The Contacts footer's counts: a search counted up to a cap, every match loaded
counted without a query, filters counted exactly."""

from __future__ import annotations

import pytest

from console.contacts import browser as browser_module
from console.contacts.browser import ContactBrowser
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from storage.engine import read_session
from storage.queries import ContactQuery, count_contacts, count_live


def _town(ctx: Context) -> None:
    for i in range(7):
        add_contact(ctx, ContactInput(number=f"06 31 00 00 0{i}", name=f"Joël {i}", zone="Gare"))
    add_contact(ctx, ContactInput(number="06 31 00 00 09", name="Ana", zone="Centre"))


def test_a_common_search_is_counted_up_to_the_cap(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _town(ctx)
    monkeypatch.setattr(browser_module, "SEARCH_COUNT_CAP", 3)
    browser = ContactBrowser(ctx, page_size=2)
    browser.next_page()
    assert browser.counts().total == 8
    browser.restart(search="joel")
    browser.next_page()
    counts = browser.counts(refresh_totals=False)
    assert (counts.matching, counts.more, counts.shown_matching) == (3, True, "3+")
    # A filter alone is counted exactly.
    browser.restart(search="", filters=browser.with_filter(zone="Gare"))
    browser.next_page()
    counts = browser.counts(refresh_totals=False)
    assert (counts.matching, counts.more) == (7, False)


def test_a_search_whose_matches_are_all_loaded_is_not_counted_again(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _town(ctx)
    browser = ContactBrowser(ctx, page_size=50)
    browser.restart(search="joel 3")
    browser.next_page()
    assert browser.exhausted

    def no_count(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("counted again")

    monkeypatch.setattr(browser_module, "count_contacts", no_count)
    browser._totals = (8, 8)
    assert browser.counts(refresh_totals=False).shown_matching == "1"


def test_count_contacts_stops_past_its_limit(ctx: Context) -> None:
    _town(ctx)
    with read_session(ctx.engine) as session:
        query = ContactQuery(text="joel")
        assert count_contacts(session, query) == 7
        assert count_contacts(session, query, up_to=4) == 5
        assert count_contacts(session, query, up_to=10) == 7


def test_the_base_is_counted_once_when_nothing_is_filtered(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The opened screen's counts: the live total (and its SMS-reachable part) in one
    read, the matching count taken from it; a filter is still counted on its own."""
    _town(ctx)
    add_contact(ctx, ContactInput(number="01 23 45 67 89", name="Mairie annexe"))  # a landline
    gone = add_contact(ctx, ContactInput(number="06 31 00 00 08", name="Parti"))
    assert gone.id is not None
    erase_contact(ctx, gone.id)
    with read_session(ctx.engine) as session:
        assert count_live(session) == (9, 8)
    real_count = count_contacts

    def no_count(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("counted again")

    monkeypatch.setattr(browser_module, "count_contacts", no_count)
    browser = ContactBrowser(ctx, page_size=2)
    browser.next_page()
    counts = browser.counts()
    assert (counts.matching, counts.total, counts.sendable, counts.more) == (9, 9, 8, False)
    monkeypatch.setattr(browser_module, "count_contacts", real_count)
    browser.restart(filters=browser.with_filter(zone="Gare"))
    browser.next_page()
    assert browser.counts(refresh_totals=False).matching == 7
