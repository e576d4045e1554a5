"""Small building blocks shared by the rooms' side panels: section titles, muted notes, cards."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QSplitter, QToolButton, QVBoxLayout, QWidget


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


def scrolling(panel: QWidget) -> QScrollArea:
    """``panel`` in a scroll area that scrolls both ways, for a main area that is wider or taller than the window
    at its minimum size: it scrolls rather than overlapping its neighbours."""
    scroll = QScrollArea(widgetResizable=True)
    scroll.setWidget(panel)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    return scroll


def side_scroll(panel: QWidget, width: int | None = None, min_width: int | None = None) -> QScrollArea:
    """``panel`` in a scroll area that scrolls only vertically: a side panel taller than the window scrolls
    instead of squeezing its controls. ``width`` fixes the width; otherwise it is at least the panel's own
    minimum (and ``min_width``), so nothing is cut off sideways."""
    scroll = _SideScroll(panel, min_width)
    if width is not None:
        scroll.setFixedWidth(width)
    return scroll


class SideToggle(QToolButton):
    """Shows or hides ``panel``, one of ``splitter``'s widgets. The panel also steps aside by itself when the
    splitter is too narrow for every widget's minimum (the window at its minimum size) and comes back when there
    is room again, unless the user hid it with this button."""

    def __init__(self, splitter: QSplitter, panel: QWidget, text: str, tooltip: str) -> None:
        super().__init__(text=text, checkable=True, checked=True, objectName="Flat", toolTip=tooltip)
        self.splitter, self.panel = splitter, panel
        self._auto_hidden = False
        self.toggled.connect(self._on_toggled)
        splitter.installEventFilter(self)

    def _on_toggled(self, shown: bool) -> None:
        self._auto_hidden = False
        self.panel.setVisible(shown)

    def _needed(self) -> int:
        widgets = [self.splitter.widget(i) for i in range(self.splitter.count())]
        return (sum(w.minimumSizeHint().width() for w in widgets if w is self.panel or not w.isHidden())
                + self.splitter.handleWidth() * (len(widgets) - 1))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            width = event.size().width()
            if not self.panel.isHidden() and width < self._needed():
                self._set_shown(False)
                self._auto_hidden = True
            elif self._auto_hidden and width >= self._needed():
                self._set_shown(True)
        return False

    def _set_shown(self, shown: bool) -> None:
        self.blockSignals(True)
        self.setChecked(shown)
        self.blockSignals(False)
        self.panel.setVisible(shown)
        self._auto_hidden = False


def eliding(combo: QComboBox, chars: int = 8) -> QComboBox:
    """Size ``combo`` for ``chars`` characters, not its longest item: long model names elide instead of widening
    a column past the window's minimum size (900x600)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def section(text: str) -> QLabel:
    return QLabel(text.upper(), objectName="SectionTitle")


def muted(text: str = "", wrap: bool = True, selectable: bool = False) -> QLabel:
    label = WrappedLabel(text, objectName="Muted") if wrap else QLabel(text, objectName="Muted")
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class WrappedLabel(QLabel):
    """A word-wrapped label that asks its layout for the height its text needs at its current width.

    A wrapped QLabel's minimum height is one line: a layout short of room (a 900x600 window) may give it less than
    its heightForWidth and cut its last lines off. Qt's layouts do not push heightForWidth into the minimum, so this
    label sets it whenever its width or text changes."""

    def __init__(self, text: str = "", **kwargs) -> None:
        super().__init__(text, **kwargs)
        self.setWordWrap(True)

    def _fit(self) -> None:
        needed = self.heightForWidth(self.width()) if self.width() > 0 else -1
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()


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
