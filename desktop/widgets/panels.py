"""Small building blocks shared by the rooms' side panels: section titles, muted notes, cards."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget


class _SideScroll(QScrollArea):
    """Scrolls only vertically, and asks for at least its panel's minimum width (measured when laid out, after the
    style sheet has set the paddings), so a splitter or layout never squeezes the panel into clipping."""

    def __init__(self, panel: QWidget, min_width: int | None) -> None:
        super().__init__(widgetResizable=True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(panel)
        self._min_width = min_width

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        needed = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(needed, self._min_width or 0), hint.height())


def side_scroll(panel: QWidget, width: int | None = None, min_width: int | None = None) -> QScrollArea:
    """``panel`` in a scroll area that scrolls only vertically: a side panel taller than the window scrolls
    instead of squeezing its controls. ``width`` fixes the width; otherwise it is at least the panel's own
    minimum (and ``min_width``), so nothing is cut off sideways."""
    scroll = _SideScroll(panel, min_width)
    if width is not None:
        scroll.setFixedWidth(width)
    return scroll


def eliding(combo: QComboBox, chars: int = 8) -> QComboBox:
    """Size ``combo`` for ``chars`` characters, not its longest item: long model names elide instead of widening
    a column past the window's minimum size (900x600)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


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
