"""Who is sending: worker heartbeats, and the single-sender lease on SQLite."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlmodel import col

# Kept here for its many readers; the status reads it without the ORM.
from console.sending.status import ALIVE_WITHIN_S as ALIVE_WITHIN_S
from storage.engine import read_session, write_session
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
