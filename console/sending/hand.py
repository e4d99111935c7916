"""What a worker holds in memory: claimed messages, committed `sending`, that no
provider has seen yet.

They wait per campaign and are handed to the senders in turns: every alert in hand
gets a provider call in turn (a small alert does not wait behind the rest of an
all-town one), and planned sends only when no alert is in hand. Nothing here touches
the database: the worker gives back (releases) what it takes out with `drop` and
`give_back`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable

from console.sending.queue import Claimed


class Hand:
    def __init__(self) -> None:
        self._queues: dict[int, deque[Claimed]] = {}
        self._emergency: dict[int, bool] = {}
        # Campaigns in the order they get their next turn.
        self._turns: deque[int] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def add(self, claimed: Iterable[Claimed]) -> None:
        for item in claimed:
            queue = self._queues.get(item.campaign_id)
            if queue is None:
                queue = self._queues[item.campaign_id] = deque()
                self._emergency[item.campaign_id] = item.emergency
                self._turns.append(item.campaign_id)
            queue.append(item)
            self._size += 1

    def campaigns(self) -> set[int]:
        return set(self._queues)

    def planned(self) -> set[int]:
        return {cid for cid, emergency in self._emergency.items() if not emergency}

    def take(self, size: int) -> list[Claimed]:
        """Up to `size` messages of the campaign whose turn it is (one provider call)."""
        if not self._size:
            return []
        alerts = any(self._emergency.values())
        for _ in range(len(self._turns)):
            campaign_id = self._turns[0]
            self._turns.rotate(-1)
            if alerts and not self._emergency[campaign_id]:
                continue  # planned sends wait while an alert is in hand
            queue = self._queues[campaign_id]
            chunk = [queue.popleft() for _ in range(min(size, len(queue)))]
            self._size -= len(chunk)
            if not queue:
                self._forget(campaign_id)
            return chunk
        return []  # unreachable: a non-empty hand has a campaign to serve

    def drop(self, campaign_ids: Collection[int]) -> list[Claimed]:
        """Take out everything held for these campaigns."""
        dropped: list[Claimed] = []
        for campaign_id in campaign_ids:
            queue = self._queues.get(campaign_id)
            if queue is not None:
                dropped.extend(queue)
                self._size -= len(queue)
                self._forget(campaign_id)
        return dropped

    def give_back(self, count: int) -> list[Claimed]:
        """Take out `count` messages from the end of the largest queues (the last
        claimed, the last to be sent): room for an alert that has just come."""
        given: list[Claimed] = []
        while len(given) < count and self._size:
            campaign_id = max(self._queues, key=lambda cid: len(self._queues[cid]))
            queue = self._queues[campaign_id]
            given.append(queue.pop())
            self._size -= 1
            if not queue:
                self._forget(campaign_id)
        return given

    def drain(self) -> list[Claimed]:
        return self.drop(list(self._queues))

    def _forget(self, campaign_id: int) -> None:
        del self._queues[campaign_id]
        del self._emergency[campaign_id]
        self._turns.remove(campaign_id)
