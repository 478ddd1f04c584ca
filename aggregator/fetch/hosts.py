"""At most N requests in flight to any one host, whichever source asks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aggregator.process.urls import host_of


class HostLimiter:
    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the host's slots for the duration of the block."""
        host = host_of(url)
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.BoundedSemaphore(self.per_host))
        with semaphore:
            yield
