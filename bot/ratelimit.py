"""Per-user sliding-window rate limit shared by the chat adapters."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from bot.errors import RateLimited


class RateLimiter:
    """Allow ``count`` events per ``per`` seconds for each key; ``count == 0`` disables it.

    Thread-safe, in memory: each bot process limits its own users (good enough for one
    replica; several replicas each allow the rate).
    """

    def __init__(self, count: int, per: float, clock=time.monotonic):
        self.count, self.per, self._clock = count, per, clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Record one event for ``key`` or raise ``RateLimited`` with the wait in seconds."""
        if self.count <= 0:
            return
        now = self._clock()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self.per:
                hits.popleft()
            if len(hits) >= self.count:
                raise RateLimited(self.per - (now - hits[0]))
            hits.append(now)
