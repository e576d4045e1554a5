"""Saving a finished run: the figure as PNG, the metrics as JSON or CSV, or all three into a folder in the same
layout and format as ``main.py decode --out`` (engines.decode.outputs; the desktop may import only engines.core, so
the two small writers are mirrored here and a GUI test checks that both write the same files). Writes are atomic and
run on the room's own file thread, so a slow disk never stalls the window; the outcome comes back on the GUI thread.
"""
from __future__ import annotations

import base64
import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from engines.core.paths import atomic_write_bytes, atomic_write_text

CONDITIONS = ("decoded", "oracle", "shuffled", "lowlevel")


def metrics_document(data: dict) -> dict:
    """The conditions' metrics plus the chance levels, the sweep, the settings, alphas and timings."""
    doc = {name: data["metrics"][name] for name in CONDITIONS if name in data.get("metrics", {})}
    for key in ("chance", "n_way", "sweep", "alphas", "timings", "voxels", "n_train", "n_test", "source", "request"):
        if key in data:
            doc[key] = data[key]
    return doc


def metrics_csv(data: dict) -> str:
    """One row per (SNR, condition, metric): this run's conditions, then the sweep's points."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["snr", "condition", "metric", "value"])
    snr = (data.get("request") or {}).get("snr", "")
    for name in CONDITIONS:
        for metric, value in (data.get("metrics", {}).get(name) or {}).items():
            out.writerow([snr, name, metric, value])
    for point in data.get("sweep") or []:
        for name in ("decoded", "shuffled"):
            for metric, value in point[name].items():
                out.writerow([point["snr"], f"sweep-{name}", metric, value])
    return buf.getvalue()


def save_figure(data: dict, path: str | Path) -> list[Path]:
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    atomic_write_bytes(path, base64.b64decode(data["figure_png"]))
    return [path]


def save_metrics(data: dict, path: str | Path) -> list[Path]:
    """JSON, or CSV when the name ends in .csv."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".csv":
        atomic_write_text(path, metrics_csv(data))
    else:
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        atomic_write_text(path, json.dumps(metrics_document(data), indent=2) + "\n")
    return [path]


def save_folder(data: dict, folder: str | Path) -> list[Path]:
    """metrics.json, metrics.csv and figure.png, as the CLI writes them."""
    out = Path(folder).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return [*save_metrics(data, out / "metrics.json"), *save_metrics(data, out / "metrics.csv"),
            *save_figure(data, out / "figure.png")]


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
