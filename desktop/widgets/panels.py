"""Small building blocks shared by the rooms' side panels: section titles, muted notes, cards."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget


def section(text: str) -> QLabel:
    return QLabel(text.upper(), objectName="SectionTitle")


def muted(text: str = "", wrap: bool = True, selectable: bool = False) -> QLabel:
    label = QLabel(text, objectName="Muted")
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class Card(QFrame):
    """A rounded panel with an optional title, holding a vertical layout (``self.body``).

    Rooms subclass it to set ``OBJECT_NAME``, which their QSS rules style."""

    OBJECT_NAME = "Card"

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.OBJECT_NAME)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(14, 10, 14, 12)
        self.body.setSpacing(8)
        if title:
            self.body.addWidget(section(title))
