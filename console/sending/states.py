"""The message ledger's states and the only moves between them.

A message moves forward only. Delivery reports arrive late, twice and out of order,
so a move that is not allowed is ignored rather than applied.
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = "queued"
SENDING: Final = "sending"
SUBMITTED: Final = "submitted"
DELIVERED: Final = "delivered"
UNDELIVERED: Final = "undelivered"
EXPIRED: Final = "expired"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
UNCERTAIN: Final = "uncertain"

# In the order the console and `--json` outputs list them.
STATES: Final = (
    QUEUED,
    SENDING,
    SUBMITTED,
    DELIVERED,
    UNDELIVERED,
    EXPIRED,
    REJECTED,
    FAILED,
    SKIPPED,
    UNCERTAIN,
)
FINAL: Final = frozenset({DELIVERED, UNDELIVERED, EXPIRED, REJECTED, FAILED, SKIPPED})

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
