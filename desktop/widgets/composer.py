"""Where the user writes: Enter sends, Shift+Enter adds a line, Esc stops the reply."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget


class ComposerEdit(QPlainTextEdit):
    submitted = Signal()
    escaped = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    edit_cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ComposerFrame")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 10, 24, 12)
        layout.setSpacing(6)

        self.edit_bar = QWidget()
        edit_row = QHBoxLayout(self.edit_bar)
        edit_row.setContentsMargins(0, 0, 0, 0)
        self.edit_label = QLabel("Editing a message: Send replaces it and drops everything after it.", objectName="Hint")
        cancel_edit = QToolButton(text="Cancel edit", objectName="Flat")
        cancel_edit.clicked.connect(self.edit_cancelled)
        edit_row.addWidget(self.edit_label, 1)
        edit_row.addWidget(cancel_edit)
        self.edit_bar.setVisible(False)
        layout.addWidget(self.edit_bar)

        row = QHBoxLayout()
        row.setSpacing(10)
        self.editor = ComposerEdit(objectName="Composer", placeholderText="Message the model…  (Enter sends, Shift+Enter new line)")
        self.editor.setFixedHeight(78)
        self.editor.submitted.connect(self._submit)
        self.editor.escaped.connect(self.stop_requested)
        row.addWidget(self.editor, 1)
        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        self.send_button = QPushButton("Send", objectName="Primary", minimumWidth=86)
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.clicked.connect(self._submit)
        self.stop_button = QPushButton("Stop", objectName="Danger", minimumWidth=86, toolTip="Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        layout.addLayout(row)
        self.hint = QLabel("", objectName="Hint")
        layout.addWidget(self.hint)
        self._can_send = False

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)

    def set_state(self, can_send: bool, busy: bool, hint: str) -> None:
        self._can_send = can_send and not busy
        self.send_button.setEnabled(self._can_send)
        self.stop_button.setEnabled(busy)
        self.hint.setText(hint)

    def set_editing(self, editing: bool) -> None:
        self.edit_bar.setVisible(editing)

    def _submit(self) -> None:
        text = self.text().strip()
        if self._can_send and text:
            self.send_requested.emit(text)
