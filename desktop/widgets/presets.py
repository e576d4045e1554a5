"""A row to apply, save and delete named presets of one kind (``Settings.save_preset``)."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QToolButton, QWidget

from engines.store.settings import Settings

PLACEHOLDER = "Presets…"


class PresetBar(QWidget):
    applied = Signal(dict)

    def __init__(self, settings: Settings, kind: str, builtins: dict[str, dict], current: Callable[[], dict],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings, self._kind, self._builtins, self._current = settings, kind, builtins, current
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.combo = QComboBox(toolTip="Apply a preset")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        self.combo.activated.connect(self._apply_index)
        self.save_button = QToolButton(text="Save…", objectName="Flat", toolTip="Save the current values as a preset")
        self.save_button.clicked.connect(self._ask_and_save)
        self.delete_button = QToolButton(text="Delete", objectName="Flat", toolTip="Delete the selected preset (yours only)")
        self.delete_button.clicked.connect(self._delete_selected)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.save_button)
        layout.addWidget(self.delete_button)
        self.reload()

    def presets(self) -> dict[str, dict]:
        return {**self._builtins, **self._settings.presets(self._kind)}

    def reload(self, select: str = "") -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(PLACEHOLDER, None)
        for name in self._builtins:
            self.combo.addItem(name, name)
        for name in self._settings.presets(self._kind):
            if name not in self._builtins:
                self.combo.addItem(f"{name}  (yours)", name)
        index = self.combo.findData(select) if select else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)

    def apply(self, name: str) -> None:
        value = self.presets().get(name)
        if value is not None:
            self.applied.emit(dict(value))
            index = self.combo.findData(name)
            if index >= 0:
                self.combo.setCurrentIndex(index)

    def save(self, name: str) -> None:
        self._settings.save_preset(self._kind, name, self._current())
        self.reload(select=name)

    def _apply_index(self, index: int) -> None:
        name = self.combo.itemData(index)
        if name:
            self.apply(name)

    def _ask_and_save(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok and name.strip():
            self.save(name.strip())

    def _delete_selected(self) -> None:
        name = self.combo.currentData()
        if name and name not in self._builtins:
            self._settings.delete_preset(self._kind, name)
            self.reload()
