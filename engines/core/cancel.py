"""Cooperative cancellation: engines check the token at every yield point."""
from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside an engine when its token was cancelled; engines turn it into a final Result."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancel. Returns ``cancelled``."""
        return self._event.wait(timeout)
