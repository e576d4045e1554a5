"""The user's model folders (the "model_folders" setting), which the engine host scans."""
from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget,
)


class ModelFoldersDialog(QDialog):
    def __init__(self, folders: list[str], default_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model folders")
        self.resize(560, 320)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(
            f"Hearth looks for GGUF files and model folders (including A1111/ComfyUI layouts) here, "
            f"besides {default_folder} and the Hugging Face cache."))
        self.list = QListWidget()
        self.list.addItems(folders)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add)
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda: [self.list.takeItem(self.list.row(i)) for i in self.list.selectedItems()])
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _add(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder")
        if folder and not self.list.findItems(folder, self._exact()):
            self.list.addItem(folder)

    @staticmethod
    def _exact():
        from PySide6.QtCore import Qt

        return Qt.MatchFlag.MatchExactly

    def folders(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]
