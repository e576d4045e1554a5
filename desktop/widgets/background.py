"""A room's own background thread for file work, so a slow disk never stalls the window."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal


class FileWorker(QObject):
    """One background thread for a room's file work (listing runs, exporting datasets or results, reading logs).

    ``submit(fn, on_done)`` runs ``fn()`` there; ``on_done(result, error)`` is called on the GUI
    thread. ``shutdown()`` joins the thread (the room calls it when the window closes).
    """

    _done = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None, name: str = "files") -> None:
        super().__init__(parent)
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hearth-{name}")
        self._callbacks: dict[int, Callable] = {}
        self._next = 0
        self._closed = False
        self._done.connect(self._deliver)

    def submit(self, fn: Callable, on_done: Callable[[object, Exception | None], None]) -> None:
        if self._closed:
            return
        self._next += 1
        token = self._next
        self._callbacks[token] = on_done

        def work() -> None:
            try:
                result, error = fn(), None
            except Exception as exc:  # handed to the GUI thread, which reports it
                result, error = None, exc
            self._done.emit(token, result, error)

        self._pool.submit(work)

    def _deliver(self, token: int, result, error) -> None:
        callback = self._callbacks.pop(token, None)
        if callback is not None and not self._closed:
            callback(result, error)

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
