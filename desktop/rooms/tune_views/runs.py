"""The table of past training runs, and where the room keeps its job files and datasets.

Run folders are read through their one owner, engines.store.runs, on the room's file worker,
never on the GUI thread.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from engines.core import paths
from engines.store.runs import RunInfo
from desktop.widgets.palette import BAD, CAUTION, GOOD, WARN


def tune_dir(name: str) -> Path:
    """Where the room keeps job files and exported datasets (outside the run folders, which start empty)."""
    path = paths.home() / "tune" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


STATUS_COLOURS = {"completed": GOOD, "cancelled": CAUTION, "failed": BAD, "running": WARN}
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
