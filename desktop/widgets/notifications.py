"""A dismissable list of banners above the rooms: where errors and news go (never a modal)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

_ICONS = {"error": "⚠", "warning": "⚠", "info": "ℹ"}


class Notification(QFrame):
    def __init__(self, level: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Notification")
        self.setProperty("level", level)
        self.level, self.text = level, text
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.setSpacing(10)
        icon = QLabel(_ICONS.get(level, "•"))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(text="✕", objectName="Flat", toolTip="Dismiss")
        layout.addWidget(icon)
        layout.addWidget(label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)


class NotificationArea(QWidget):
    MAX_SHOWN = 4
    INFO_TIMEOUT_MS = 8000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 8, 12, 0)
        self._layout.setSpacing(6)
        self._banners: list[Notification] = []
        self.history: list[tuple[str, str]] = []  # everything shown this session, newest last
        self.setVisible(False)

    def notify(self, level: str, text: str) -> None:
        self.history.append((level, text))
        for old in [b for b in self._banners if b.text == text]:  # the same news twice is noise
            self.dismiss(old)
        banner = Notification(level, text, self)
        banner.close_button.clicked.connect(lambda: self.dismiss(banner))
        self._banners.append(banner)
        self._layout.addWidget(banner)
        while len(self._banners) > self.MAX_SHOWN:
            self.dismiss(self._banners[0])
        if level == "info":
            QTimer.singleShot(self.INFO_TIMEOUT_MS, banner, lambda: self.dismiss(banner))
        self.setVisible(True)

    def dismiss(self, banner: Notification) -> None:
        if banner in self._banners:
            self._banners.remove(banner)
            banner.hide()
            banner.deleteLater()
        self.setVisible(bool(self._banners))

    def texts(self) -> list[str]:
        return [b.text for b in self._banners]

    def clear(self) -> None:
        for banner in list(self._banners):
            self.dismiss(banner)
