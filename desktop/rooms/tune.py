"""The Tune room: label your model's replies, train on the labels with LoRA, watch it learn.

Three tabs, each a module under ``tune_views``: Label (prompt sets, replies written by the loaded
model through the engine host, blind A/B and K-way ranking into the label store), Train (a form
per method, ``main.py train`` as a child process, live curves, past runs and what to do with them:
chat, compare, merge, export) and Compare (base vs tuned on held-out prompts, reward-model win
rate, blind A/B into the label store). The label
store is light SQLite used straight from the GUI thread; host calls run on ``tune.*`` lanes of
the job runner and file work on the room's own worker thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedWidget, QTabBar, QVBoxLayout, QWidget

from engines.store.labels import LabelStore
from desktop.rooms.tune_views.common import STYLE, FileWorker, TuneJobs
from desktop.rooms.tune_views.compare import CompareView
from desktop.rooms.tune_views.guide import GuidePanel, GuideSettings
from desktop.rooms.tune_views.label import LabelView
from desktop.rooms.tune_views.run_actions import RunActions
from desktop.rooms.tune_views.train import TrainView
from desktop.session import Session


class TuneRoom(QWidget):
    notified = Signal(str, str)  # level, text
    status_changed = Signal(str)
    chat_requested = Signal(str, str)  # "Chat with this": adapter folder, base model
    model_exported = Signal(str)  # a new model file (a GGUF export) for Chat's model list

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.host = session.host
        self.store = LabelStore(session.db)
        self.jobs = TuneJobs(session.runner, self)
        self.files = FileWorker(self)
        self.setStyleSheet(STYLE)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)

        self.label_view = LabelView(self.store, self.jobs, self.host, session.settings)
        self.train_view = TrainView(self.store, session.settings, self.files, self.jobs)
        self.compare_view = CompareView(self.store, self.jobs, self.host, session.settings, self.files)
        for view in (self.label_view, self.train_view, self.compare_view):
            view.notified.connect(self.notified)
            view.status_changed.connect(self.status_changed)
        self.label_view.labels_changed.connect(self.train_view.update_dataset_info)
        self.compare_view.labels_changed.connect(self.train_view.update_dataset_info)
        self.run_actions = RunActions(self.jobs)
        self.train_view.runs_card.body.insertWidget(2, self.run_actions)  # under the card's title and folder line
        self.train_view.run_table.run_selected.connect(self.run_actions.set_run)
        self.run_actions.notified.connect(self.notified)
        self.run_actions.chat_requested.connect(self.chat_requested)
        self.run_actions.gguf_exported.connect(self.model_exported)
        self.run_actions.compare_requested.connect(self.compare_run)

        header = QWidget(objectName="TuneHeader")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 12, 20, 0)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(QLabel("Tune", objectName="RoomTitle"))
        subtitle = QLabel("Label your model's replies, train on your labels, watch it change.", objectName="RoomSubtitle")
        subtitle.setWordWrap(True)
        titles.addWidget(subtitle)
        row.addLayout(titles, 1)
        self.guide_button = QPushButton("Teach the model a preference…", objectName="Flat",
                                        toolTip="A guided path: replies, labels, reward model, DPO, RL, then before/after")
        self.guide_button.clicked.connect(lambda: self.open_guide())
        row.addWidget(self.guide_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.guide: GuidePanel | None = None  # built when first opened
        self.tab_bar = QTabBar(objectName="TuneTabBar", expanding=False, drawBase=False, usesScrollButtons=False)
        for title in ("Label", "Train", "Compare"):
            self.tab_bar.addTab(title)
        row.addWidget(self.tab_bar, 0, Qt.AlignmentFlag.AlignBottom)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.label_view)
        self.stack.addWidget(self.train_view)
        self.stack.addWidget(self.compare_view)
        self.tab_bar.currentChanged.connect(self.show_tab)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        self.guide_slot = QVBoxLayout()
        self.guide_slot.setContentsMargins(20, 8, 20, 0)
        layout.addLayout(self.guide_slot)
        layout.addWidget(self.stack, 1)

        self.host.ready.connect(self._on_host_ready)
        if self.host.is_ready:
            self._on_host_ready()

    def show_tab(self, index: int) -> None:
        self.tab_bar.setCurrentIndex(index)
        self.stack.setCurrentIndex(index)
        if index == 0:
            self.label_view.refresh_counts()
            self.label_view.update_model_label()
        elif index == 1:
            self.train_view.update_dataset_info()
        else:
            self.compare_view.refresh_runs()
            self.compare_view.refresh_sources()
            self.compare_view.refresh_comparisons()

    def open_guide(self, settings: GuideSettings | None = None) -> GuidePanel:
        """Show the "Teach the model a preference" strip (``settings``: the guide's sizes, for tests)."""
        if self.guide is None:
            self.guide = GuidePanel(self, settings)
            self.guide.step_changed.connect(lambda step: self.status_changed.emit(f"Guide: {step}"))
            self.guide_slot.addWidget(self.guide)
        self.guide.show()
        return self.guide

    def compare_run(self, adapter: str) -> None:
        """The runs view's "Compare": the Compare tab with that run chosen."""
        self.show_tab(2)
        self.compare_view.select_run(adapter)

    def _on_host_ready(self, *_args) -> None:
        """The host's memory figures (GPU name, free VRAM) make the training estimate honest."""
        self.jobs.call("host", lambda client: client.memory(), self.train_view.set_memory, "Checking memory")

    def shutdown(self) -> None:
        """The window is closing: stop writing replies, checkpoint a running training job, join the file worker."""
        if self.guide is not None:
            self.guide.hide()  # stops the scripted labeler
        self.label_view.shutdown()
        self.train_view.shutdown()
        self.compare_view.shutdown()
        self.run_actions.shutdown()
        self.files.shutdown()
