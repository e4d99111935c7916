"""A token bucket: the provider's messages-per-second, with a burst of one second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._tokens = self.capacity
        self._monotonic = monotonic
        self._last = monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def delay_for(self, count: int) -> float:
        """Seconds until `count` tokens are there (0 if they are)."""
        self._refill()
        missing = min(count, self.capacity) - self._tokens
        return max(missing / self.rate, 0.0)

    async def take(self, count: int) -> None:
        """Wait for `count` tokens; a batch larger than the burst waits its share."""
        async with self._lock:
            remaining = count
            while remaining > 0:
                step = min(remaining, int(self.capacity))
                wait = self.delay_for(step)
                if wait > 0:
                    await asyncio.sleep(wait)
                    self._refill()
                self._tokens -= step
                remaining -= step
