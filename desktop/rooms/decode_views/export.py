"""Saving a finished run: the figure as PNG, the metrics as JSON or CSV, or all three into a folder in the same
layout and format as ``main.py decode --out`` (both use engines.core.decode_results). Writes are atomic and run on
the room's own file thread, so a slow disk never stalls the window; the outcome comes back on the GUI thread.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from engines.core import decode_results

def save_figure(data: dict, path: str | Path) -> list[Path]:
    return [decode_results.save_figure(data, path)]


def save_metrics(data: dict, path: str | Path) -> list[Path]:
    """JSON, or CSV when the name ends in .csv."""
    return [decode_results.save_metrics(data, path)]


def save_folder(data: dict, folder: str | Path) -> list[Path]:
    """metrics.json, metrics.csv and figure.png, as ``main.py decode --out`` writes them."""
    return list(decode_results.write_results(data, folder).values())


class Exporter(QObject):
    """One background thread for the room's file writes. ``on_done(paths, error)`` runs on the GUI thread."""

    _done = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-decode-export")
        self._callbacks: dict[int, Callable] = {}
        self._next = 0
        self._closed = False
        self._done.connect(self._deliver)

    def submit(self, fn: Callable[[], list[Path]], on_done: Callable[[list[Path] | None, Exception | None], None]) -> None:
        if self._closed:
            return
        self._next += 1
        token = self._next
        self._callbacks[token] = on_done

        def work() -> None:
            try:
                result, error = fn(), None
            except Exception as exc:  # OSError, a missing figure...: reported in the room
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
