"""The state behind the Contacts table: query, keyset position and counts.

Kept out of the UI so paging is tested without Textual, and so the screen only
ever holds the pages the operator has scrolled through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlmodel import Session

from console.contacts.service import build_query
from console.context import Context
from storage.engine import read_session
from storage.queries import (
    ContactQuery,
    ContactRow,
    Cursor,
    count_contacts,
    count_live,
    page_contacts,
)


@dataclass(frozen=True)
class Filters:
    zone: str | None = None
    group: str | None = None
    topic: str | None = None
    consent: bool | None = None
    sendable: bool | None = None


# A search's matches are counted up to this many ("1000+"); filters alone are
# counted exactly (their counts are read off indexes).
SEARCH_COUNT_CAP = 1000


@dataclass(frozen=True)
class Counts:
    matching: int
    total: int
    sendable: int
    # True when `matching` is SEARCH_COUNT_CAP and there are more.
    more: bool = False

    @property
    def shown_matching(self) -> str:
        return f"{self.matching}+" if self.more else str(self.matching)


class ContactBrowser:
    def __init__(self, ctx: Context, page_size: int | None = None) -> None:
        self.ctx = ctx
        self.page_size = page_size or ctx.config.console.page_size
        self.search = ""
        self.filters = Filters()
        self._cursor: Cursor | None = None
        self.exhausted = False
        self.loaded = 0
        self._totals: tuple[int, int] | None = None
        # The matching count of the current query: scrolling does not change it, and
        # at 1,000,000 residents a count is a walk of the index.
        self._matching: tuple[ContactQuery, int, bool] | None = None

    def query(self) -> ContactQuery:
        f = self.filters
        public_safety = (
            f.topic is not None and self.ctx.config.topics[f.topic].legal_basis == "public_safety"
        )
        return build_query(
            self.ctx,
            self.search,
            zone=f.zone,
            group=f.group,
            topic=f.topic,
            consent=f.consent,
            topic_is_public_safety=public_safety,
            sendable=f.sendable,
        )

    def restart(self, search: str | None = None, filters: Filters | None = None) -> None:
        if search is not None:
            self.search = search
        if filters is not None:
            self.filters = filters
        self._cursor = None
        self.exhausted = False
        self.loaded = 0

    def with_filter(self, **changes: object) -> Filters:
        return replace(self.filters, **changes)  # type: ignore[arg-type]

    def next_page(self) -> list[ContactRow]:
        if self.exhausted:
            return []
        with read_session(self.ctx.engine) as session:
            rows = page_contacts(session, self.query(), after=self._cursor, limit=self.page_size)
        if len(rows) < self.page_size:
            self.exhausted = True
        if rows:
            self._cursor = rows[-1].cursor
        self.loaded += len(rows)
        return rows

    def counts(self, *, refresh_totals: bool = True) -> Counts:
        """Counts for the footer; the base-wide totals only change with the data, so a
        new search or filter passes refresh_totals=False and reuses them, and the
        matching count is kept until the query or the data changes."""
        query = self.query()
        with read_session(self.ctx.engine) as session:
            if refresh_totals or self._totals is None:
                self._totals = count_live(session)
            if (
                refresh_totals
                or self._matching is None
                or self._matching[0] != query
                # Scrolled to the end of a capped search: now it is known exactly.
                or (self._matching[2] and self.exhausted)
            ):
                # No search and no filter: the live total just read (at 1,000,000
                # residents on PostgreSQL each count reads the whole base).
                found = (self._totals[0], False) if query == ContactQuery() else None
                self._matching = (query, *(found or self._count(session, query)))
            _, matching, more = self._matching
        total, sendable = self._totals
        return Counts(
            matching=matching,
            total=total,
            sendable=sendable,
            more=more,
        )

    def _count(self, session: Session, query: ContactQuery) -> tuple[int, bool]:
        """The matching count, and whether there are more than it says."""
        if self.exhausted:
            return self.loaded, False  # every match is loaded since the restart
        if not self._capped(query):
            return count_contacts(session, query), False
        found = count_contacts(session, query, up_to=SEARCH_COUNT_CAP)
        return min(found, SEARCH_COUNT_CAP), found > SEARCH_COUNT_CAP

    @staticmethod
    def _capped(query: ContactQuery) -> bool:
        """A search (LIKE on every entry it counts) is counted up to the cap."""
        return bool(query.text or query.number_patterns)
