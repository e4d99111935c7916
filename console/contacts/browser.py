"""The state behind the Contacts table: query, keyset position and counts.

Kept out of the UI so paging is tested without Textual, and so the screen only
ever holds the pages the operator has scrolled through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from console.contacts.service import build_query
from console.context import Context
from storage.engine import read_session
from storage.queries import ContactQuery, ContactRow, Cursor, count_contacts, page_contacts


@dataclass(frozen=True)
class Filters:
    zone: str | None = None
    group: str | None = None
    topic: str | None = None
    consent: bool | None = None
    sendable: bool | None = None


@dataclass(frozen=True)
class Counts:
    matching: int
    total: int
    sendable: int


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
        self._matching: tuple[ContactQuery, int] | None = None

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
            if refresh_totals or self._matching is None or self._matching[0] != query:
                self._matching = (query, count_contacts(session, query))
            matching = self._matching[1]
            if refresh_totals or self._totals is None:
                self._totals = (
                    count_contacts(session, ContactQuery()),
                    count_contacts(session, ContactQuery(sendable=True)),
                )
        total, sendable = self._totals
        return Counts(matching=matching, total=total, sendable=sendable)
