"""The Explore room: look inside a language model -- tokens, embeddings, attention, few-shot,
code -> live page, and what local use would have cost on paid APIs.

Every computation runs in the engine host (``/hearth/explore/...``) on the job runner's lanes;
each view is its own module under ``explore_views`` and is built the first time its tab opens,
so the room costs nothing at start-up (the plots' pyqtgraph loads only with the first plot).
"""
from __future__ import annotations

import importlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget, QTabBar, QToolButton, QVBoxLayout, QWidget

from engines.core.errors import HearthError
from desktop.rooms.explore_views.common import STYLE, ExploreJobs, ExploreView
from desktop.session import Session
from desktop.widgets.panels import eliding
from desktop.widgets.plots import warm_up

# (tab title, module under desktop.rooms.explore_views, class)
VIEWS: tuple[tuple[str, str, str], ...] = (
    ("Tokens", "tokens", "TokensView"),
    ("Embeddings", "embeddings", "EmbeddingsView"),
    ("Attention", "attention", "AttentionView"),
    ("Few-shot", "fewshot", "FewShotView"),
    ("Code → page", "page", "PageView"),
    ("Usage & cost", "usage", "UsageView"),  # "&&" in the tab: a plain "&" would be a shortcut marker
)


class ExploreRoom(QWidget):
    notified = Signal(str, str)  # level, text
    status_changed = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.settings, self.host, self.runner = session.settings, session.host, session.runner
        self.db = session.db
        self.jobs = ExploreJobs(session.runner, self._on_error, self)
        self.views: dict[str, ExploreView] = {}
        self.models: list[dict] = []
        self._models_job: str | None = None
        self.setStyleSheet(STYLE)
        self._build()
        self.host.ready.connect(lambda *_: self._set_ready(True))
        self.host.crashed.connect(lambda *_: self._set_ready(False))
        self.host.restarting.connect(lambda: self._set_ready(False))
        if self.host.is_ready:
            self._set_ready(True)

    def _build(self) -> None:
        header = QWidget(objectName="ExploreHeader")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(QLabel("Explore", objectName="RoomTitle"))
        subtitle = QLabel("See how a language model reads, relates and predicts text.", objectName="RoomSubtitle")
        subtitle.setWordWrap(True)
        titles.addWidget(subtitle)
        row.addLayout(titles, 1)
        row.addWidget(QLabel("Model", objectName="Muted"))
        self.model_box = eliding(QComboBox(toolTip="The model every view uses (tokens can compare two)"), 20)
        self.model_box.addItem("SmolLM2-135M-Instruct · bundled", "default")
        self.model_box.currentIndexChanged.connect(self._on_model_changed)
        row.addWidget(self.model_box)
        refresh = QToolButton(text="⟳", objectName="Flat", toolTip="Look for models again")
        refresh.clicked.connect(lambda: self.refresh_models(True))
        row.addWidget(refresh)

        # A tab bar in the header strip over a stack of views (built on first show).
        self.tab_bar = QTabBar(objectName="ExploreTabBar", expanding=False, drawBase=False, usesScrollButtons=False)
        self.stack = QStackedWidget()
        for title, _module, _cls in VIEWS:
            self.tab_bar.addTab(title.replace("&", "&&"))
            self.stack.addWidget(QWidget())
        self.tab_bar.currentChanged.connect(self._on_tab)

        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        column.addLayout(row)
        column.addWidget(self.tab_bar, 0, Qt.AlignmentFlag.AlignLeft)
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(22, 12, 16, 0)
        header_layout.addLayout(column)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(self.stack, 1)

    # -- views ----------------------------------------------------------
    def view(self, title: str) -> ExploreView:
        """The view with this tab title, built now if it was not yet."""
        index = [v[0] for v in VIEWS].index(title)
        self._ensure_view(index)
        return self.views[title]

    def show_view(self, title: str) -> ExploreView:
        view = self.view(title)
        self.tab_bar.setCurrentIndex([v[0] for v in VIEWS].index(title))
        return view

    def _on_tab(self, index: int) -> None:
        if self.isVisible():
            self._ensure_view(index)
        self.stack.setCurrentIndex(index)

    def _ensure_view(self, index: int) -> None:
        if index < 0:
            return
        title, module, cls = VIEWS[index]
        if title in self.views:
            return
        view_cls = getattr(importlib.import_module(f"desktop.rooms.explore_views.{module}"), cls)
        view = view_cls(self)
        self.views[title] = view
        old = self.stack.widget(index)
        self.stack.insertWidget(index, view)
        self.stack.removeWidget(old)
        old.deleteLater()
        self.stack.setCurrentIndex(self.tab_bar.currentIndex())
        view.set_ready(self.host.is_ready)
        if self.models and hasattr(view, "models_listed"):
            view.models_listed(self.models)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        first = not self.views
        if first:
            warm_up()
        self._ensure_view(self.tab_bar.currentIndex())
        if first and self.host.is_ready:
            self.refresh_models(False)

    # -- context for the views ------------------------------------------
    def current_model(self) -> str:
        return self.model_box.currentData() or "default"

    def model_name(self, model_id: str) -> str:
        for m in self.models:
            if m.get("id") == model_id:
                return m.get("name") or model_id
        return "SmolLM2-135M-Instruct (bundled)" if model_id == "default" else model_id

    def notify(self, level: str, text: str) -> None:
        self.notified.emit(level, text)

    def _on_error(self, error: HearthError) -> None:
        self.notified.emit("error", str(error))

    # -- host and models ------------------------------------------------
    def _set_ready(self, ready: bool) -> None:
        for view in self.views.values():
            view.set_ready(ready)
        if ready and self.views:  # the model list is fetched once the room has been opened
            self.refresh_models(False)

    def refresh_models(self, refresh: bool) -> None:
        if self.jobs.active(self._models_job):
            return
        self._models_job = self.jobs.call("models", lambda c: {"models": c.models(refresh)}, self._set_models,
                                          label="Listing models", on_error=lambda _e: None)

    def _set_models(self, data: dict) -> None:
        self.models = [m for m in data.get("models", []) if m.get("kind", "text") == "text"]
        current = self.current_model()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for m in self.models:
            label = m.get("name") or m.get("id")
            if m.get("id") == "default":
                label = f"{label} · bundled"
            self.model_box.addItem(label, m.get("id"))
        if self.model_box.count() == 0:
            self.model_box.addItem("SmolLM2-135M-Instruct (bundled)", "default")
        index = self.model_box.findData(current)
        self.model_box.setCurrentIndex(max(0, index))
        self.model_box.blockSignals(False)
        for view in self.views.values():
            if hasattr(view, "models_listed"):
                view.models_listed(self.models)
        if index < 0:
            self._on_model_changed()

    def _on_model_changed(self, *_args) -> None:
        for view in self.views.values():
            view.model_changed()

    def shutdown(self) -> None:
        for view in self.views.values():
            view.shutdown()
