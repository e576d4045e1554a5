"""Saving a finished run: the figure as PNG, the metrics as JSON or CSV, or all three into a folder in the same
layout and format as ``main.py decode --out`` (both use engines.store.decode_results). Writes are atomic and run on
the room's own file thread, so a slow disk never stalls the window; the outcome comes back on the GUI thread.
"""
from __future__ import annotations

from pathlib import Path

from desktop.widgets.background import FileWorker
from engines.store import decode_results


def save_figure(data: dict, path: str | Path) -> list[Path]:
    return [decode_results.save_figure(data, path)]


def save_metrics(data: dict, path: str | Path) -> list[Path]:
    """JSON, or CSV when the name ends in .csv."""
    return [decode_results.save_metrics(data, path)]


def save_folder(data: dict, folder: str | Path) -> list[Path]:
    """metrics.json, metrics.csv and figure.png, as ``main.py decode --out`` writes them."""
    return list(decode_results.write_results(data, folder).values())


def Exporter(parent=None) -> FileWorker:
    """The room's file thread for exports: ``submit(fn, on_done)``; ``on_done(paths, error)`` on the GUI thread."""
    return FileWorker(parent, name="decode-export")
