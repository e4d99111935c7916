"""The ledger's names in one place: message states, campaign statuses, report states,
and the only moves between message states.

A message moves forward only. Delivery reports arrive late, twice and out of order,
so a move that is not allowed is ignored rather than applied.

The enums are `StrEnum`s: a member is the string stored in the database and printed
in `--json` output, so rows read back as plain strings compare equal to them. The
CHECK constraints of migration 0009 hold the database to the same values.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class MessageState(StrEnum):
    """Where one message (one recipient of a campaign) stands."""

    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"


class ReportState(StrEnum):
    """What a provider's delivery report may say: the message states a report can
    move a message to (each value is a `MessageState`'s)."""

    SUBMITTED = MessageState.SUBMITTED.value
    DELIVERED = MessageState.DELIVERED.value
    UNDELIVERED = MessageState.UNDELIVERED.value
    EXPIRED = MessageState.EXPIRED.value
    REJECTED = MessageState.REJECTED.value
    FAILED = MessageState.FAILED.value


class CampaignStatus(StrEnum):
    """Where a campaign stands: queued until its first claim, running while it sends,
    paused by the operator or by refused credentials, then cancelled or done."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


# Short names for the message states, the way the queue and its callers use them.
QUEUED: Final = MessageState.QUEUED
SENDING: Final = MessageState.SENDING
SUBMITTED: Final = MessageState.SUBMITTED
DELIVERED: Final = MessageState.DELIVERED
UNDELIVERED: Final = MessageState.UNDELIVERED
EXPIRED: Final = MessageState.EXPIRED
REJECTED: Final = MessageState.REJECTED
FAILED: Final = MessageState.FAILED
SKIPPED: Final = MessageState.SKIPPED
UNCERTAIN: Final = MessageState.UNCERTAIN

# In the order the console and `--json` outputs list them (the enum's order).
STATES: Final[tuple[MessageState, ...]] = tuple(MessageState)
FINAL: Final = frozenset({DELIVERED, UNDELIVERED, EXPIRED, REJECTED, FAILED, SKIPPED})

# Campaigns whose messages a worker may claim, and those still on the live queue.
CLAIMABLE_STATUSES: Final = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)
ACTIVE_STATUSES: Final = (*CLAIMABLE_STATUSES, CampaignStatus.PAUSED)

# A delivery report settles a message wherever it stands: it may overtake the
# provider's answer to the submit (sending) or prove an uncertain one was sent.
_REPORTED: Final = frozenset({DELIVERED, UNDELIVERED, EXPIRED, REJECTED})
_MOVES: Final[dict[str, frozenset[str]]] = {
    # Skipped later than enqueue only when the operator cancels the campaign.
    QUEUED: frozenset({SENDING, SKIPPED}),
    # Back to queued for a retryable failure, or a pause, before the provider took it;
    # skipped when the campaign is cancelled before the provider took it.
    SENDING: frozenset({SUBMITTED, QUEUED, SKIPPED, FAILED, UNCERTAIN}) | _REPORTED,
    SUBMITTED: _REPORTED | {FAILED},
    # The operator (or an emergency policy) re-sends, or marks it as sent.
    UNCERTAIN: frozenset({QUEUED, SUBMITTED}) | _REPORTED,
}


def can_move(current: str, new: str) -> bool:
    if current not in STATES or new not in STATES:
        raise ValueError(f"unknown state {current if current not in STATES else new!r}")
    return new in _MOVES.get(current, frozenset())


def is_final(state: str) -> bool:
    return state in FINAL
