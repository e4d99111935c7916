"""The `tocsin status` figures, read with plain SQL through the engine alone.

`tocsin status` is a process of its own, asked by scripts and monitoring every few
seconds: loading the ORM and the tables' models would be most of its time. So this
module reads the same rows the ORM would, by name, and converts times as the
models' UTC columns do (aware, in UTC). Envois' live figures (send_queue) and the
console reach the same answers through `campaign_ops.queue_status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import DateTime, Engine, bindparam, text

from console.sending.states import ACTIVE_STATUSES, SENDING, STATES, SUBMITTED
from storage.faults import Fault, disk_fault, probe

# A worker whose last heartbeat is older than this is taken for dead (it beats every
# few seconds).
ALIVE_WITHIN_S = 15
# A worker beats every few seconds; silent this long, it is waiting on something.
SILENT_AFTER_S = 8

# As the models' UTCDateTime binds and reads them (text on SQLite, timestamptz on
# PostgreSQL).
_TIME = DateTime(timezone=True)


@dataclass(frozen=True)
class Heartbeat:
    owner: str
    host: str
    provider: str
    last_seen: datetime
    sent: int


class _Seen(Protocol):
    @property
    def last_seen(self) -> datetime: ...


def silent_database_fault(engine: Engine, workers: Sequence[_Seen], now: datetime) -> Fault | None:
    """Why sending is paused: a full disk, seen at once; a locked or unreachable
    database, asked only when no worker has been heard from lately (a worker waiting
    it out cannot say so in the database, and the question takes the lock)."""
    full = disk_fault(engine)
    if full is not None:
        return full
    newest = max((w.last_seen for w in workers), default=None)
    if newest is not None and (now - newest).total_seconds() < SILENT_AFTER_S:
        return None
    return probe(engine)


_COUNTS = text(
    "SELECT state, sum(n) FROM campaign_tally GROUP BY state"
    # Per-campaign tallies the ledger keeps (console.sending.tallies).
)
_LAST_MINUTE = text(
    "SELECT count(*) FROM delivery_event "
    "WHERE source = 'send' AND state = :submitted AND at >= :since"
).bindparams(bindparam("since", type_=_TIME))
_NO_REPORT = text(
    "SELECT count(*) FROM message WHERE state = :submitted AND updated_at < :deadline"
).bindparams(bindparam("deadline", type_=_TIME))
_ACTIVE = text("SELECT count(*) FROM campaign WHERE status IN :statuses").bindparams(
    bindparam("statuses", expanding=True)
)
_WORKERS = (
    text(
        "SELECT owner, host, provider, last_seen, sent FROM worker_heartbeat "
        "WHERE last_seen >= :since ORDER BY owner"
    )
    .bindparams(bindparam("since", type_=_TIME))
    .columns(last_seen=_TIME)
)


def _utc(value: datetime) -> datetime:
    # Databases without time zones store UTC without an offset.
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def read_alive_workers(engine: Engine, now: datetime) -> list[Heartbeat]:
    """The workers heard from in the last ALIVE_WITHIN_S seconds, by owner."""
    since = (now - timedelta(seconds=ALIVE_WITHIN_S)).astimezone(UTC)
    with engine.connect() as conn:
        rows = conn.execute(_WORKERS, {"since": since}).all()
    return [
        Heartbeat(
            owner=owner, host=host, provider=provider, last_seen=_utc(last_seen), sent=int(sent)
        )
        for owner, host, provider, last_seen, sent in rows
    ]


def read_queue_status(engine: Engine, now: datetime, report_timeout_minutes: int) -> dict[str, Any]:
    """The `tocsin status` figures: messages per state, in flight, rate, workers."""
    by_state: dict[str, int] = dict.fromkeys(STATES, 0)
    with engine.connect() as conn:
        for state, n in conn.execute(_COUNTS):
            by_state[state] = int(n)
        last_minute = conn.execute(
            _LAST_MINUTE,
            {"submitted": str(SUBMITTED), "since": (now - timedelta(minutes=1)).astimezone(UTC)},
        ).scalar_one()
        # Submitted long ago and never reported on: the provider's silence is shown.
        deadline = now - timedelta(minutes=report_timeout_minutes)
        no_report = conn.execute(
            _NO_REPORT, {"submitted": str(SUBMITTED), "deadline": deadline.astimezone(UTC)}
        ).scalar_one()
        active = conn.execute(
            _ACTIVE, {"statuses": [str(status) for status in ACTIVE_STATUSES]}
        ).scalar_one()
    workers = read_alive_workers(engine, now)
    fault = silent_database_fault(engine, workers, now)
    return {
        "messages": {state: int(by_state.get(state, 0)) for state in STATES},
        "in_flight": int(by_state.get(SENDING, 0)),
        "no_report": int(no_report),
        "rate_per_second": round(int(last_minute) / 60, 2),
        "active_campaigns": int(active),
        "worker_alive": bool(workers),
        "workers": [
            {
                "owner": w.owner,
                "host": w.host,
                "provider": w.provider,
                "last_seen": w.last_seen.isoformat(),
                "sent": w.sent,
            }
            for w in workers
        ],
        "database_fault": fault and str(fault),
    }
