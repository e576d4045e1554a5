"""Adapter choice for Chat: none, one of the Tune room's finished runs, or a folder the user browses to.

Runs are listed from the runs folder (one small JSON file per run) on a background thread; a run
that trained a reward model is left out, since it scores replies and cannot write them.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from engines.store.runs import RunInfo, list_runs, read_run, runs_dir
from desktop.widgets.background import FileWorker

NONE, BROWSE = "", "browse"
BASE_ROLE = Qt.ItemDataRole.UserRole + 1


def chat_runs(runs: list[RunInfo]) -> list[RunInfo]:
    """Runs whose adapter can chat: finished, with an adapter, not a reward model."""
    return [r for r in runs if r.status == "completed" and r.has_adapter and r.method != "reward"]


class AdapterPicker(QComboBox):
    adapter_chosen = Signal(str, str)  # adapter folder ("" for none), its base model ("" when unknown)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("A LoRA adapter from a Tune run, applied on its base model (loads with transformers)")
        self.files = FileWorker(self)
        self.addItem("None", NONE)
        self.addItem("Browse…", BROWSE)
        self._previous = 0
        self.activated.connect(self._on_activated)

    # -- the list ------------------------------------------------------------------------
    def refresh(self) -> None:
        """List the finished runs again (in the background)."""
        def done(runs, error) -> None:
            if error is None:
                self.set_runs(chat_runs(runs))

        self.files.submit(list_runs, done)

    def set_runs(self, runs: list[RunInfo]) -> None:
        current = self.current_adapter()
        self.blockSignals(True)
        for i in range(self.count() - 2, 0, -1):
            if self.itemData(i, Qt.ItemDataRole.ToolTipRole) != "browsed":
                self.removeItem(i)
        for run in runs:
            self._insert(str(run.folder), f"{run.name}  ·  {run.method}", run.base_model)
        self.blockSignals(False)
        self.set_adapter(current)

    def _insert(self, folder: str, text: str, base: str, browsed: bool = False) -> int:
        index = self.findData(folder)
        if index < 0:
            index = self.count() - 1  # before Browse…
            self.insertItem(index, text, folder)
            self.setItemData(index, "browsed" if browsed else folder, Qt.ItemDataRole.ToolTipRole)
        if base:
            self.setItemData(index, base, BASE_ROLE)
        return index

    # -- choice --------------------------------------------------------------------------
    def current_adapter(self) -> str:
        data = self.currentData()
        return data if data not in (None, BROWSE) else ""

    def current_base(self) -> str:
        return self.itemData(self.currentIndex(), BASE_ROLE) or ""

    def set_adapter(self, folder: str, base: str = "") -> None:
        """Select ``folder`` (added to the list if it is not there); "" selects None."""
        if not folder:
            self.setCurrentIndex(0)
        else:
            self.setCurrentIndex(self._insert(folder, Path(folder).name, base))
        self._previous = self.currentIndex()

    def _on_activated(self, index: int) -> None:
        if self.itemData(index) != BROWSE:
            self._previous = index
            self.adapter_chosen.emit(self.current_adapter(), self.current_base())
            return
        folder = QFileDialog.getExistingDirectory(self, "Adapter folder (a Tune run)", str(runs_dir()))
        if not folder:
            self.setCurrentIndex(self._previous)
            return
        self.choose_folder(folder)

    def choose_folder(self, folder: str) -> None:
        """Use a folder picked by hand; its run summary says which base model it needs."""
        def done(run, error) -> None:
            base = run.base_model if error is None and run is not None else ""
            self.setCurrentIndex(self._insert(folder, Path(folder).name, base, browsed=True))
            self._previous = self.currentIndex()
            self.adapter_chosen.emit(folder, base)

        self.files.submit(lambda: read_run(Path(folder)), done)

    def shutdown(self) -> None:
        self.files.shutdown()
