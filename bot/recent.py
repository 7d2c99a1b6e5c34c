"""A bounded memory for the chat adapters (conversations, seen event ids)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class Recent:
    """A bounded, thread-safe map that forgets its oldest keys first, so memory stays flat
    however long a bot runs."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable | None) -> Any:
        with self._lock:
            return None if key is None else self._items.get(key)

    def put(self, key: Hashable, value: Any = None) -> None:
        with self._lock:
            self._put(key, value)

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was already remembered (checked and set at once)."""
        with self._lock:
            if key in self._items:
                return False
            self._put(key, True)
            return True

    def _put(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
