"""Where the user writes: Enter sends, Shift+Enter adds a line, Esc stops the reply.

Images join the draft by the Attach button, by dropping files (or a picture) on the composer, or by pasting;
they wait as removable thumbnails above the text until Send.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QFileDialog, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QToolButton, QVBoxLayout, QWidget,
)

from desktop.widgets.image_thumbs import (
    IMAGE_FILTER, Attachment, ImageThumb, ThumbLoader, attachments_from_mime, mime_has_images,
)

THUMB = 60


class ComposerEdit(QPlainTextEdit):
    submitted = Signal()
    escaped = Signal()
    images_given = Signal(list)  # [Attachment]: dropped or pasted into the text

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return mime_has_images(source) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # both paste and drop land here
        found = attachments_from_mime(source)
        if found:
            self.images_given.emit(found)
        else:
            super().insertFromMimeData(source)

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

    def __init__(self, loader: ThumbLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ComposerFrame")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setAcceptDrops(True)
        self.loader = loader  # the room's: it shuts it down
        self._attachments: list[Attachment] = []
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

        self.thumb_strip = QWidget(objectName="ThumbStrip")
        self.thumb_row = QHBoxLayout(self.thumb_strip)
        self.thumb_row.setContentsMargins(0, 0, 0, 0)
        self.thumb_row.setSpacing(6)
        self.thumb_row.addStretch(1)
        self.thumb_scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame, objectName="ThumbStrip")
        self.thumb_scroll.viewport().setAutoFillBackground(False)
        self.thumb_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.thumb_scroll.setWidget(self.thumb_strip)
        self.thumb_scroll.setFixedHeight(THUMB + 4 + self.thumb_scroll.horizontalScrollBar().sizeHint().height())
        self.thumb_scroll.setVisible(False)
        layout.addWidget(self.thumb_scroll)

        row = QHBoxLayout()
        row.setSpacing(10)
        self.editor = ComposerEdit(objectName="Composer", placeholderText="Message the model…  (Enter sends, Shift+Enter new line)")
        self.editor.setFixedHeight(78)
        self.editor.submitted.connect(self._submit)
        self.editor.escaped.connect(self.stop_requested)
        self.editor.images_given.connect(self.add_attachments)
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
        hint_row = QHBoxLayout()
        hint_row.setSpacing(10)
        self.attach_button = QToolButton(text="+ Image…", objectName="Flat",
                                         toolTip="Attach images for a model that can see (or drop or paste them here)")
        self.attach_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.attach_button.clicked.connect(self.choose_images)
        self.hint = QLabel("", objectName="Hint")
        hint_row.addWidget(self.attach_button)
        hint_row.addWidget(self.hint, 1)
        layout.addLayout(hint_row)
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
        if self._can_send and (text or self._attachments):
            self.send_requested.emit(text)

    # -- images ------------------------------------------------------------
    def attachments(self) -> list[Attachment]:
        return list(self._attachments)

    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Attach images", "", IMAGE_FILTER)
        self.add_attachments([Attachment(Path(f).name, path=f) for f in files])

    def add_attachments(self, attachments: list[Attachment]) -> None:
        for attachment in attachments:
            self._attachments.append(attachment)
            source = attachment.data if attachment.data is not None else attachment.path
            thumb = ImageThumb(self.loader, attachment.key, source, attachment.name, THUMB, removable=True)
            thumb.attachment = attachment
            thumb.removed.connect(self._remove_thumb)
            self.thumb_row.insertWidget(self.thumb_row.count() - 1, thumb)
        self.thumb_scroll.setVisible(bool(self._attachments))

    def thumbs(self) -> list[ImageThumb]:
        return [self.thumb_row.itemAt(i).widget() for i in range(self.thumb_row.count() - 1)]

    def _remove_thumb(self, thumb: ImageThumb) -> None:
        self._attachments = [a for a in self._attachments if a is not thumb.attachment]
        thumb.setParent(None)
        thumb.deleteLater()
        self.thumb_scroll.setVisible(bool(self._attachments))

    def clear_attachments(self) -> None:
        for thumb in self.thumbs():
            thumb.setParent(None)
            thumb.deleteLater()
        self._attachments = []
        self.thumb_scroll.setVisible(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if mime_has_images(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        found = attachments_from_mime(event.mimeData())
        if found:
            self.add_attachments(found)
            event.acceptProposedAction()
