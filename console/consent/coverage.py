"""The coverage matrix: for each topic, how many residents are in each consent state,
and the share that a send on it would reach; per quartier (zone) on demand; and the
residents behind any figure, a page at a time.

States, one per live resident and topic:
- `consented` / `withdrawn`: the current decision (consent_state);
- `never_asked`: no decision, on a topic that needs an opt-in;
- `mission`: no decision, on a public-safety topic: reached by the town's mission;
- `stop`: the number is on the STOP list, whatever the topic's decision says.
Reachable: consented or mission, with a number that can take an SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Connection

from console.consent.suppression import key_fingerprint, number_hasher
from console.context import Context
from storage.engine import read_session
from storage.models import consent_state_table, contact_table, suppression_table

STATES = ("consented", "withdrawn", "never_asked", "mission", "stop")


@dataclass
class TopicCoverage:
    topic: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    reachable: int = 0
    total: int = 0

    @property
    def share(self) -> float:
        return self.reachable / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "total": self.total,
            "reachable": self.reachable,
            **self.counts,
        }


@dataclass(frozen=True)
class Coverage:
    # "" for the whole town, else the quartier (zone).
    zone: str
    topics: list[TopicCoverage]


# The last answer of suppressed_ids per database, with what it depended on: the
# screen asks again every time it draws the matrix, and hashing every number is most
# of the matrix's cost.
_STOP_CACHE: dict[str, tuple[tuple[Any, ...], frozenset[int]]] = {}


def suppressed_ids(conn: Connection, ctx: Context) -> set[int]:
    """Live contacts whose number is on the STOP list. The list holds keyed hashes
    only, so each number is hashed (about 1 µs each) unless the list is empty; on
    SQLite inside the query, so the numbers never cross into Python as rows. The
    answer is kept until a contact or the list changes (a number is only ever set
    with `updated_at`, and contacts are never deleted, only erased)."""
    table = suppression_table
    contact = contact_table
    listed = conn.execute(select(func.count(), func.max(table.c.created_at))).one()
    if not listed[0]:
        return set()
    known = conn.execute(
        select(func.count(), func.max(contact.c.updated_at), func.max(contact.c.id))
    ).one()
    fingerprint = (*listed, *known, key_fingerprint(ctx.hash_key))
    where = conn.engine.url.render_as_string(hide_password=True)
    cached = _STOP_CACHE.get(where)
    if cached is not None and cached[0] == fingerprint:
        return set(cached[1])
    found = _hash_and_match(conn, ctx, set(conn.execute(select(table.c.number_hash)).scalars()))
    _STOP_CACHE[where] = (fingerprint, frozenset(found))
    return found


def _hash_and_match(conn: Connection, ctx: Context, digests: set[str]) -> set[int]:
    digest = number_hasher(ctx.hash_key)
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection

        def on_list(number: str | None) -> int:
            return 1 if number and digest(number) in digests else 0

        raw.create_function("tocsin_on_stop_list", 1, on_list, deterministic=True)
        rows = conn.exec_driver_sql(
            "SELECT id FROM contact WHERE erased_at IS NULL AND tocsin_on_stop_list(number)"
        )
        return {int(cid) for (cid,) in rows}
    contact = contact_table
    rows = conn.execute(
        select(contact.c.id, contact.c.number).where(
            contact.c.erased_at.is_(None), contact.c.number.is_not(None)
        )
    )
    return {cid for cid, number in rows if digest(number) in digests}


def _grouped(
    conn: Connection, by_zone: bool
) -> tuple[dict[str, list[int]], dict[tuple[str, str, bool, bool], int]]:
    """Live residents per zone ([all, sendable]) and decisions per (zone, topic,
    granted, sendable). consent_state holds live contacts only (erasure deletes their
    rows), so the whole town's figures come off its index; the few residents without
    a usable number are taken back out."""
    contact = contact_table
    state = consent_state_table
    totals: dict[str, list[int]] = {}
    decided: dict[tuple[str, str, bool, bool], int] = {}
    if by_zone:
        for zone, sendable, count in conn.execute(
            select(contact.c.zone, contact.c.sendable, func.count())
            .where(contact.c.erased_at.is_(None))
            .group_by(contact.c.zone, contact.c.sendable)
        ):
            row = totals.setdefault(zone, [0, 0])
            row[0] += int(count)
            row[1] += int(count) if sendable else 0
        for zone, topic, granted, sendable, count in conn.execute(
            select(contact.c.zone, state.c.topic, state.c.granted, contact.c.sendable, func.count())
            .join(contact, contact.c.id == state.c.contact_id)
            .where(contact.c.erased_at.is_(None))
            .group_by(contact.c.zone, state.c.topic, state.c.granted, contact.c.sendable)
        ):
            key = (zone, topic, bool(granted), bool(sendable))
            decided[key] = decided.get(key, 0) + int(count)
        return totals, decided
    # Two counts off indexes instead of a scan of the table (an erased contact is
    # never sendable).
    live = conn.execute(select(func.count()).where(contact.c.erased_at.is_(None))).scalar_one()
    sendable = conn.execute(select(func.count()).where(contact.c.sendable.is_(True))).scalar_one()
    totals[""] = [int(live), int(sendable)]
    for topic, granted, count in conn.execute(
        select(state.c.topic, state.c.granted, func.count()).group_by(
            state.c.topic, state.c.granted
        )
    ):
        decided[("", topic, bool(granted), True)] = int(count)
    for topic, granted, count in conn.execute(
        select(state.c.topic, state.c.granted, func.count())
        .join(contact, contact.c.id == state.c.contact_id)
        .where(contact.c.sendable.is_(False))
        .group_by(state.c.topic, state.c.granted)
    ):
        decided[("", topic, bool(granted), True)] -= int(count)
        decided[("", topic, bool(granted), False)] = int(count)
    return totals, decided


def coverage(ctx: Context, *, by_zone: bool = False) -> list[Coverage]:
    """The whole town (one Coverage), or one per quartier, in zone order."""
    with read_session(ctx.engine) as session:
        conn = session.connection()
        totals, decided = _grouped(conn, by_zone)
        stopped = suppressed_ids(conn, ctx)
        stop_rows = _stop_rows(conn, stopped, by_zone, list(ctx.config.topics))
    result = []
    for zone in sorted(totals) if by_zone else [""]:
        all_count, sendable_count = totals.get(zone, [0, 0])
        topics = []
        for key, topic_config in ctx.config.topics.items():
            cover = TopicCoverage(key, total=all_count)
            public = topic_config.legal_basis == "public_safety"
            decided_all = decided_sendable = 0
            for granted in (True, False):
                for sendable in (True, False):
                    count = decided.get((zone, key, granted, sendable), 0)
                    cover.counts["consented" if granted else "withdrawn"] += count
                    decided_all += count
                    decided_sendable += count if sendable else 0
            undecided = all_count - decided_all
            cover.counts["mission" if public else "never_asked"] = undecided
            reach = decided.get((zone, key, True, True), 0)
            if public:
                reach += sendable_count - decided_sendable
            # Residents on the STOP list move out of the state they were counted in.
            for (z, topic, state_name, sendable), count in stop_rows.items():
                if z != zone or topic != key:
                    continue
                if state_name == "undecided":
                    state_name = "mission" if public else "never_asked"
                cover.counts[state_name] -= count
                cover.counts["stop"] += count
                if sendable and state_name in ("consented", "mission"):
                    reach -= count
            cover.reachable = reach
            topics.append(cover)
        result.append(Coverage(zone, topics))
    return result


def _stop_rows(
    conn: Connection, stopped: set[int], by_zone: bool, topics: list[str]
) -> dict[tuple[str, str, str, bool], int]:
    """(zone, topic, state it was counted in, sendable) -> residents on the STOP list."""
    if not stopped:
        return {}
    contact = contact_table
    state = consent_state_table
    info: dict[int, tuple[str, bool]] = {}
    decided: dict[int, dict[str, bool]] = {}
    ids = sorted(stopped)
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        for cid, zone, sendable in conn.execute(
            select(contact.c.id, contact.c.zone, contact.c.sendable).where(contact.c.id.in_(part))
        ):
            info[cid] = (zone if by_zone else "", bool(sendable))
        for cid, topic, granted in conn.execute(
            select(state.c.contact_id, state.c.topic, state.c.granted).where(
                state.c.contact_id.in_(part)
            )
        ):
            decided.setdefault(cid, {})[topic] = bool(granted)
    rows: dict[tuple[str, str, str, bool], int] = {}
    for cid, (zone, sendable) in info.items():
        for topic in topics:
            granted = decided.get(cid, {}).get(topic)
            name = "undecided" if granted is None else "consented" if granted else "withdrawn"
            key = (zone, topic, name, sendable)
            rows[key] = rows.get(key, 0) + 1
    return rows


@dataclass(frozen=True)
class Resident:
    id: int
    name: str
    number: str
    zone: str


def residents(
    ctx: Context,
    topic: str,
    state: str,
    *,
    zone: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Resident]:
    """The residents behind one figure of the matrix, by id, a page after `after_id`."""
    contact = contact_table
    cs = consent_state_table
    query = select(contact.c.id, contact.c.name, contact.c.number, contact.c.zone).where(
        contact.c.erased_at.is_(None), contact.c.id > after_id
    )
    if zone is not None:
        query = query.where(contact.c.zone == zone)
    decision = exists().where(and_(cs.c.contact_id == contact.c.id, cs.c.topic == topic))
    with read_session(ctx.engine) as session:
        conn = session.connection()
        stopped = suppressed_ids(conn, ctx)
        if state == "stop":
            query = query.where(contact.c.id.in_(sorted(stopped) or [-1]))
        else:
            if state in ("consented", "withdrawn"):
                query = query.where(
                    exists().where(
                        and_(
                            cs.c.contact_id == contact.c.id,
                            cs.c.topic == topic,
                            cs.c.granted == (state == "consented"),
                        )
                    )
                )
            else:
                query = query.where(~decision)
            if stopped:
                query = query.where(contact.c.id.not_in(sorted(stopped)))
        rows = conn.execute(query.order_by(contact.c.id).limit(limit)).all()
    return [Resident(int(r[0]), r[1], r[2] or "", r[3]) for r in rows]


def coverage_at(ctx: Context, at: datetime) -> Coverage:
    """The matrix on a past date, replayed from the ledger: residents then on file
    (created by `at`, not erased by it), their decisions in force then. The STOP
    column and the numbers' kinds are today's facts, not replayed: every undecided
    or consenting resident counts as reachable."""
    from console.consent.replay import counts_at

    contact = contact_table
    with read_session(ctx.engine) as session:
        total = int(
            session.execute(
                select(func.count()).where(
                    contact.c.created_at <= at,
                    (contact.c.erased_at.is_(None)) | (contact.c.erased_at > at),
                )
            ).scalar_one()
        )
    counts = counts_at(ctx.engine, at)
    topics = []
    for key, topic_config in ctx.config.topics.items():
        cover = TopicCoverage(key, total=total)
        decided = counts.get(key, {"consented": 0, "withdrawn": 0})
        cover.counts["consented"] = decided["consented"]
        cover.counts["withdrawn"] = decided["withdrawn"]
        undecided = max(0, total - decided["consented"] - decided["withdrawn"])
        public = topic_config.legal_basis == "public_safety"
        cover.counts["mission" if public else "never_asked"] = undecided
        cover.reachable = decided["consented"] + (undecided if public else 0)
        topics.append(cover)
    return Coverage("", topics)
