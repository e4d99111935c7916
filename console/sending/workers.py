"""Who is sending: worker heartbeats, and the single-sender lease on SQLite."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlmodel import col

from storage.engine import read_session, write_session
from storage.faults import Fault, disk_fault, probe
from storage.models import SenderLease, WorkerHeartbeat

SQLITE_LEASE = "sqlite-sender"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    expires_at: datetime


def acquire_sender_lease(
    engine: Engine, owner: str, now: datetime, ttl_seconds: int
) -> LeaseHolder | None:
    """Take or renew the SQLite sender lease; returns the other holder if it is alive."""
    with write_session(engine) as session:
        lease = session.get(SenderLease, SQLITE_LEASE)
        expires = now + timedelta(seconds=ttl_seconds)
        if lease is None:
            session.add(SenderLease(name=SQLITE_LEASE, owner=owner, expires_at=expires))
            return None
        if lease.owner != owner and lease.expires_at > now and not holder_is_dead(lease.owner):
            return LeaseHolder(lease.owner, lease.expires_at)
        lease.owner, lease.expires_at = owner, expires
        session.add(lease)
    return None


def holder_is_dead(owner: str) -> bool:
    """A holder on this host whose process is gone (killed, crashed) frees the lease at
    once: systemd's restart should not wait for the lease to run out."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def release_sender_lease(engine: Engine, owner: str) -> None:
    with write_session(engine) as session:
        session.execute(
            delete(SenderLease).where(
                col(SenderLease.name) == SQLITE_LEASE, col(SenderLease.owner) == owner
            )
        )


def beat(engine: Engine, owner: str, provider: str, now: datetime, sent: int = 0) -> None:
    with write_session(engine) as session:
        row = session.get(WorkerHeartbeat, owner)
        if row is None:
            host, pid = owner.split(":")[0], os.getpid()
            row = WorkerHeartbeat(
                owner=owner,
                host=host,
                pid=pid,
                provider=provider,
                started_at=now,
                last_seen=now,
                sent=sent,
            )
        else:
            row.last_seen = now
            row.sent += sent
        session.add(row)


def forget(engine: Engine, owner: str) -> None:
    with write_session(engine) as session:
        session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.owner) == owner))


# A worker whose last heartbeat is older than this is taken for dead (it beats every
# few seconds).
ALIVE_WITHIN_S = 15


def alive_workers(engine: Engine, now: datetime, within_seconds: int) -> list[WorkerHeartbeat]:
    since = now - timedelta(seconds=within_seconds)
    with read_session(engine) as session:
        return list(
            session.execute(
                select(WorkerHeartbeat)
                .where(col(WorkerHeartbeat.last_seen) >= since)
                .order_by(col(WorkerHeartbeat.owner))
            ).scalars()
        )


# A worker beats every few seconds; silent this long, it is waiting on something.
SILENT_AFTER_S = 8


def silent_database_fault(
    engine: Engine, workers: list[WorkerHeartbeat], now: datetime
) -> Fault | None:
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
