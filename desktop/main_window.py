"""The shell: a sidebar of rooms, the notification area, the status bar. Rooms do the work.

Only Chat, the first room shown, is built with the window; every other room (and its imports) is built the first
time it is shown or another room hands it something, so the first paint waits for one room, not five.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QListWidget, QMainWindow, QProgressBar, QStackedWidget, QVBoxLayout, QWidget,
)

from desktop.session import Session
from desktop.widgets.notifications import NotificationArea

ROOMS = ("Chat", "Image", "Decode", "Tune", "Explore")
ICONS = {"Chat": "❝", "Image": "▣", "Decode": "◎", "Tune": "⚙", "Explore": "⌕"}  # glyphs DejaVu Sans has
CLASSES = {"Chat": ("desktop.rooms.chat", "ChatRoom"), "Image": ("desktop.rooms.image", "ImageRoom"),
           "Decode": ("desktop.rooms.decode", "DecodeRoom"), "Tune": ("desktop.rooms.tune", "TuneRoom"),
           "Explore": ("desktop.rooms.explore", "ExploreRoom")}


class Rooms(Mapping):
    """The rooms by name, each built the first time it is asked for."""

    def __init__(self, build) -> None:
        self._build = build
        self._built: dict[str, QWidget] = {}

    def __getitem__(self, name: str) -> QWidget:
        if name not in CLASSES:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def __iter__(self):
        return iter(ROOMS)

    def __len__(self) -> int:
        return len(ROOMS)

    def built(self) -> list[QWidget]:
        return list(self._built.values())


class MainWindow(QMainWindow):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.setWindowTitle("Hearth")
        self.setMinimumSize(900, 600)

        self.notifications = NotificationArea()
        self.stack = QStackedWidget()
        for _name in ROOMS:
            self.stack.addWidget(QWidget())  # a stand-in until the room is first shown
        self.rooms = Rooms(self._build_room)

        sidebar = QWidget(objectName="Sidebar")
        sidebar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        sidebar.setFixedWidth(168)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(0, 0, 0, 12)
        side.addWidget(QLabel("◆ Hearth", objectName="Brand"))
        self.room_list = QListWidget(objectName="RoomList")
        for name in ROOMS:
            self.room_list.addItem(f"{ICONS[name]}   {name}")
        self.room_list.currentRowChanged.connect(self._show_index)
        side.addWidget(self.room_list, 1)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.notifications)
        column.addWidget(self.stack, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(sidebar)
        row.addWidget(content, 1)
        self.setCentralWidget(central)

        self.host_indicator = QLabel(objectName="HostIndicator")
        self.job_label = QLabel()
        self.job_progress = QProgressBar(maximum=0, textVisible=False, maximumWidth=120)
        self.job_progress.setVisible(False)
        self.statusBar().addWidget(self.job_label, 1)
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().addPermanentWidget(self.host_indicator)
        self.statusBar().setSizeGripEnabled(False)

        host, runner = session.host, session.runner
        host.ready.connect(lambda url, _key: self._set_host_state("ready", f"Engine host ready · {url.rsplit(':', 1)[-1]}"))
        host.crashed.connect(self._on_host_crashed)
        host.restarting.connect(lambda: self._set_host_state("restarting", "Engine host restarting…"))
        host.stopped.connect(lambda: self._set_host_state("stopped", "Engine host stopped"))
        runner.started.connect(lambda _id, label: self._on_job_started(label))
        for signal in (runner.finished, runner.cancelled):
            signal.connect(lambda _id: self._on_job_ended())
        runner.failed.connect(lambda _id, _error: self._on_job_ended())
        self._set_host_state("starting", "Engine host starting…")
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&Self-test…", self.open_selftest)
        help_menu.addAction("&About Hearth", self._about)

        self.room_list.setCurrentRow(0)
        geometry = session.settings.get("window.geometry", "")
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        else:
            self.resize(1360, 860)

    # The rooms, built on first use.
    chat = property(lambda self: self.rooms["Chat"])
    image = property(lambda self: self.rooms["Image"])
    decode = property(lambda self: self.rooms["Decode"])
    tune = property(lambda self: self.rooms["Tune"])
    explore = property(lambda self: self.rooms["Explore"])

    def show_room(self, name: str) -> None:
        self.room_list.setCurrentRow(ROOMS.index(name))

    def _show_index(self, index: int) -> None:
        self.rooms[ROOMS[index]]  # built now if it is new
        self.stack.setCurrentIndex(index)

    def _build_room(self, name: str) -> QWidget:
        module, cls = CLASSES[name]
        room = getattr(importlib.import_module(module), cls)(self.session)
        room.notified.connect(self.notifications.notify)
        room.status_changed.connect(self.job_label.setText)
        if name in ("Image", "Decode"):
            room.chat_requested.connect(self._chat_with_images)
        elif name == "Tune":
            room.chat_requested.connect(self._chat_with_adapter)
            room.model_exported.connect(lambda _file: self.chat.refresh_models(refresh=True))
        index = ROOMS.index(name)
        stand_in = self.stack.widget(index)
        current = self.stack.currentIndex()
        self.stack.insertWidget(index, room)
        self.stack.removeWidget(stand_in)
        stand_in.deleteLater()
        self.stack.setCurrentIndex(current)
        return room

    def open_selftest(self) -> None:
        from desktop.widgets.selftest_dialog import SelfTestDialog

        dialog = SelfTestDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        dialog.start()
        self.selftest_dialog = dialog

    def _about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        from engines.core.version import __version__
        from engines.core.paths import home

        QMessageBox.about(self, "About Hearth", f"Hearth {__version__}\nLocal, offline generative AI studio.\n"
                                                f"Your data: {home()}")

    def _chat_with_adapter(self, adapter: str, base: str) -> None:
        self.show_room("Chat")
        self.chat.chat_with_adapter(adapter, base)

    def _chat_with_images(self, attachments: list) -> None:
        """A picture from the Image gallery or the Decode figure, attached in Chat's composer."""
        self.show_room("Chat")
        self.chat.attach(attachments)

    def _set_host_state(self, state: str, text: str) -> None:
        self.host_indicator.setText(f"● {text}")
        self.host_indicator.setProperty("state", state)
        self.host_indicator.style().unpolish(self.host_indicator)
        self.host_indicator.style().polish(self.host_indicator)

    def _on_host_crashed(self, message: str) -> None:
        self.notifications.notify("error", message)
        failed = self.session.host.state == "failed"
        self._set_host_state("failed" if failed else "crashed", "Engine host failed" if failed else "Engine host crashed")

    def _on_job_started(self, label: str) -> None:
        self.job_label.setText(f"{label}…")
        self.job_progress.setVisible(True)

    def _on_job_ended(self) -> None:
        if not self.session.runner.active_jobs():
            self.job_progress.setVisible(False)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.session.settings.set("window.geometry", bytes(self.saveGeometry().toBase64()).decode("ascii"))
        for room in self.rooms.built():
            room.shutdown()
        super().closeEvent(event)
