"""Training runs on disk: the runs folder, one run's status and event log, and the list of past runs.

A run is a folder under ``HEARTH_HOME/runs`` written by ``main.py train`` (``job.json``,
``events.jsonl``, ``summary.json``, the adapter, ``checkpoints/``); the folder is the record, so
runs started from the CLI show up too. Reading the list is one small JSON file per run and runs
on the room's file worker, never on the GUI thread.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from engines.core import paths


def runs_dir() -> Path:
    path = paths.home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tune_dir(name: str) -> Path:
    """Where the room keeps job files and exported datasets (outside the run folders, which start empty)."""
    path = paths.home() / "tune" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RunInfo:
    folder: Path
    method: str = "?"
    status: str = "unknown"  # completed | cancelled | failed | running | unknown
    steps: int = 0
    max_steps: int = 0
    final_loss: float | None = None
    started: float = 0.0
    base_model: str = ""
    has_checkpoint: bool = False
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def has_adapter(self) -> bool:
        return (self.folder / "adapter_config.json").is_file()


def read_run(folder: Path) -> RunInfo:
    info = RunInfo(folder)
    job = _read_json(folder / "job.json")
    summary = _read_json(folder / "summary.json")
    info.method = (summary or job or {}).get("method", "?")
    info.max_steps = int((summary or job or {}).get("max_steps") or 0)
    info.base_model = (summary or job or {}).get("base_model", "")
    info.has_checkpoint = any((folder / "checkpoints").glob("checkpoint-*")) if (folder / "checkpoints").is_dir() else False
    try:
        info.started = (folder / "job.json").stat().st_mtime if (folder / "job.json").exists() else folder.stat().st_mtime
    except OSError:
        pass
    if summary:
        info.summary = summary
        info.status = summary.get("status", "unknown")
        info.steps = int(summary.get("steps") or 0)
        info.final_loss = summary.get("final_loss")
        info.started = summary.get("started") or info.started
    else:
        last = _last_event(folder / "events.jsonl")
        if last.get("event") == "error":
            info.status = "failed"
        elif last:
            info.status = "running" if time.time() - float(last.get("time", 0)) < 600 else "stopped"
        info.steps = int(last.get("step") or 0)
    return info


def list_runs() -> list[RunInfo]:
    """Every run folder, newest first (runs on a worker thread)."""
    out = []
    for folder in runs_dir().iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            out.append(read_run(folder))
    return sorted(out, key=lambda r: -r.started)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _last_event(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


class EventTail:
    """Reads the complete lines appended to ``events.jsonl`` since the last call (a partial line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(1 << 20)  # at most 1 MB a tick keeps each read short
                self.offset = fh.tell()
        except FileNotFoundError:
            return []
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out


def seconds_per_step(runs: list[RunInfo], method: str, base_model: str) -> float | None:
    """The median time per step of finished runs like this one (same method and base), or None."""
    samples = []
    for run in runs:
        if run.method != method or run.base_model != base_model or not run.summary:
            continue
        metrics = run.summary.get("train_metrics") or {}
        rate = metrics.get("train_steps_per_second")
        if rate:
            samples.append(1.0 / float(rate))
    if not samples:
        return None
    samples.sort()
    return samples[len(samples) // 2]


STATUS_COLOURS = {"completed": "#7fd49a", "cancelled": "#e7a04f", "failed": "#f06b5f", "running": "#e7c04f"}
STATUS_TEXT = {"completed": "✓ done", "cancelled": "cancelled", "failed": "failed", "running": "running…",
               "stopped": "stopped", "unknown": "?"}


class RunTable(QTableWidget):
    """Past runs, newest first; selecting one shows its curves."""

    run_selected = Signal(object)  # RunInfo

    COLUMNS = ("Run", "Method", "Status", "Steps", "Loss", "Started")

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setObjectName("RunTable")
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setShowGrid(False)
        self.setAlternatingRowColors(False)
        header = self.horizontalHeader()
        for col in range(len(self.COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(self.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.runs: list[RunInfo] = []
        self.itemSelectionChanged.connect(self._on_selection)

    def set_runs(self, runs: list[RunInfo], select: str | None = None) -> None:
        current = select or (self.selected().name if self.selected() else None)
        self.blockSignals(True)
        self.runs = runs
        self.setRowCount(len(runs))
        for row, run in enumerate(runs):
            loss = f"{run.final_loss:.4f}" if isinstance(run.final_loss, (int, float)) else "–"
            steps = f"{run.steps}/{run.max_steps}" if run.max_steps else str(run.steps)
            started = time.strftime("%d %b %H:%M", time.localtime(run.started)) if run.started else ""
            for col, text in enumerate((run.name, run.method, STATUS_TEXT.get(run.status, run.status), steps, loss, started)):
                item = QTableWidgetItem(text)
                if col == 2 and run.status in STATUS_COLOURS:
                    item.setForeground(QColor(STATUS_COLOURS[run.status]))
                if col >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(str(run.folder))
                self.setItem(row, col, item)
        self.blockSignals(False)
        if current:
            for row, run in enumerate(runs):
                if run.name == current:
                    self.selectRow(row)
                    break

    def selected(self) -> RunInfo | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        return self.runs[rows[0].row()] if rows and rows[0].row() < len(self.runs) else None

    def _on_selection(self) -> None:
        run = self.selected()
        if run is not None:
            self.run_selected.emit(run)
