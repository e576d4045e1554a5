"""The conversation list: search, new, rename (edit in place), delete, import/export."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton, QToolButton, QVBoxLayout, QWidget,
)

from engines.store.conversations import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    """Shows conversations; says what the user asked for through signals, owns no data."""

    selected = Signal(object)  # conversation id, or None
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    export_requested = Signal(int, str)  # id, "json" | "md"
    import_requested = Signal()
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ConversationPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 12, 10, 10)
        layout.setSpacing(8)

        top = QHBoxLayout()
        title = QLabel("CONVERSATIONS", objectName="SectionTitle")
        top.addWidget(title)
        top.addStretch(1)
        self.import_button = QToolButton(text="Import", objectName="Flat", toolTip="Import a conversation (.json or .md)")
        self.import_button.clicked.connect(self.import_requested)
        top.addWidget(self.import_button)
        layout.addLayout(top)

        self.new_button = QPushButton("+  New chat", objectName="Primary")
        self.new_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.new_button.clicked.connect(self.new_requested)
        layout.addWidget(self.new_button)

        self.search_box = QLineEdit(placeholderText="Search titles and messages…", clearButtonEnabled=True)
        layout.addWidget(self.search_box)
        self._search_timer = QTimer(self, singleShot=True, interval=150)
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search_box.text().strip()))

        self.list = QListWidget(objectName="Conversations")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)
        self.list.setEditTriggers(QListWidget.EditTrigger.DoubleClicked | QListWidget.EditTrigger.EditKeyPressed)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_changed)
        layout.addWidget(self.list, 1)

        bottom = QHBoxLayout()
        self.rename_button = QToolButton(text="Rename", objectName="Flat")
        self.rename_button.clicked.connect(self._edit_current)
        self.delete_button = QToolButton(text="Delete", objectName="Flat")
        self.delete_button.clicked.connect(self._delete_current)
        self.export_button = QToolButton(text="Export", objectName="Flat")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(self.export_button)
        export_menu.addAction("As JSON…", lambda: self._export_current("json"))
        export_menu.addAction("As Markdown…", lambda: self._export_current("md"))
        self.export_button.setMenu(export_menu)
        for button in (self.rename_button, self.delete_button, self.export_button):
            bottom.addWidget(button)
        bottom.addStretch(1)
        layout.addLayout(bottom)
        self._filling = False

    # -- filled by the room --------------------------------------------
    def set_conversations(self, conversations: list[Conversation], current_id: int | None) -> None:
        self._filling = True
        self.list.clear()
        for conv in conversations:
            item = QListWidgetItem(conv.title)
            item.setData(ID_ROLE, conv.id)
            item.setToolTip(f"{conv.title}\nlast change {time.strftime('%Y-%m-%d %H:%M', time.localtime(conv.updated))}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if conv.id == current_id:
                self.list.setCurrentItem(item)
        self._filling = False
        has = self.current_id() is not None
        for button in (self.rename_button, self.delete_button, self.export_button):
            button.setEnabled(has)

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item else None

    def select(self, conversation_id: int | None) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == conversation_id:
                self.list.setCurrentRow(i)
                return

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    # -- user actions ---------------------------------------------------
    def _on_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if not self._filling:
            self.selected.emit(current.data(ID_ROLE) if current else None)
        for button in (self.rename_button, self.delete_button, self.export_button):
            button.setEnabled(current is not None)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        title = item.text().strip()
        if title:
            self.rename_requested.emit(item.data(ID_ROLE), title)

    def _edit_current(self) -> None:
        item = self.list.currentItem()
        if item:
            self.list.editItem(item)

    def _delete_current(self) -> None:
        cid = self.current_id()
        if cid is not None:
            self.delete_requested.emit(cid)

    def _export_current(self, kind: str) -> None:
        cid = self.current_id()
        if cid is not None:
            self.export_requested.emit(cid, kind)

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Rename", self._edit_current)
        menu.addAction("Export as JSON…", lambda: self._export_current("json"))
        menu.addAction("Export as Markdown…", lambda: self._export_current("md"))
        menu.addSeparator()
        menu.addAction("Delete", self._delete_current)
        menu.popup(self.list.viewport().mapToGlobal(pos))
