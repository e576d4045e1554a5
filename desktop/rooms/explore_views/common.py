"""What the Explore views share: the job router, the view base class and a few small widgets."""
from __future__ import annotations

import uuid
from typing import Callable, Iterable

from PySide6.QtCore import QObject, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from engines.core.errors import HearthError, RequestError
from engines.core.events import Event
from engines.core.resources import resource
from desktop.job_router import JobRouter
from desktop.jobs import Job, JobRunner
from desktop.widgets.panels import Card as _Card
from desktop.widgets.panels import muted as _muted
from desktop.widgets.panels import section  # noqa: F401  (re-exported for the views)
from desktop.widgets.palette import (  # noqa: F401  (for the views)
    ACCENT, ACCENT_DIM, BASE, EDGE, LINE, MUTED, PANEL, TEXT, TOKEN_COLOURS, themed,
)
from desktop.widgets.plots import pyqtgraph, style_plot  # noqa: F401  (for the views)

# Token colours: distinct hues, dark enough for light text on the dark theme.
SPECIAL_COLOUR = ACCENT


def mono_font(size: float = 10.0) -> QFont:
    font = QFont("DejaVu Sans Mono")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(size)
    return font


class ExploreJobs(JobRouter):
    """Runs the views' host calls on the job runner's lanes and hands the outcome back on the GUI thread.

    ``call`` is for a request that answers once (its dict reaches ``on_result``); ``stream`` for
    a job that streams events. Each view uses its own lane, so a slow attention map never holds
    up tokenizing. A failure reaches ``on_done("failed")`` and then ``on_error`` (or the room's handler).
    """

    def __init__(self, runner: JobRunner, on_error: Callable[[HearthError], None], parent: QObject | None = None) -> None:
        super().__init__(runner, "explore", parent)
        self._default_error = on_error

    def call(self, lane: str, fn: Callable, on_result: Callable[[dict], None], label: str = "",
             on_error: Callable[[HearthError], None] | None = None, on_done: Callable[[str], None] | None = None) -> str:
        return super().call(lane, fn, on_result, label, self._done(on_done, on_error)) or ""

    def stream(self, lane: str, make_events: Callable, on_event: Callable[[Event], None], label: str = "",
               on_done: Callable[[str], None] | None = None, on_error: Callable[[HearthError], None] | None = None,
               request_id: str | None = None) -> str:
        job = Job(f"explore.{lane}", make_events, label=label, request_id=request_id or uuid.uuid4().hex)
        return self.submit(job, on_event, self._done(on_done, on_error)) or job.id

    def checked(self, request, on_error: Callable[[HearthError], None] | None = None) -> bool:
        """``request.validate()`` before its job is queued (the host checks it again): a RequestError goes to
        ``on_error`` (or the room's handler), where the host's answer to a bad field would have gone."""
        try:
            request.validate()
        except RequestError as exc:
            (on_error or self._default_error)(exc)
            return False
        return True

    def _done(self, on_done, on_error):
        def done(how: str, error: HearthError | None) -> None:
            if on_done:
                on_done(how)
            if error is not None:
                (on_error or self._default_error)(error)
        return done


class ExploreView(QWidget):
    """A view in the Explore room. ``context`` gives it the jobs router, the chosen model and settings."""

    title = ""
    lane = ""

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.jobs: ExploreJobs = context.jobs

    def model(self) -> str:
        return self.context.current_model()

    def set_ready(self, ready: bool) -> None:
        """The engine host came up (True) or went away (False)."""

    def model_changed(self) -> None:
        """The room's model picker changed."""

    def shutdown(self) -> None:
        """The window is closing: stop what runs."""


def muted(text: str = "", wrap: bool = True) -> QLabel:
    return _muted(text, wrap, selectable=True)


class Card(_Card):
    OBJECT_NAME = "ExploreCard"


class ScoreBars(QWidget):
    """A ranked list of (label, value in 0..1) as rows with horizontal bars, painted directly."""

    ROW = 24

    def __init__(self, parent: QWidget | None = None, *, ranked: bool = True, fmt: str = "{:.3f}") -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.ranked = ranked
        self.fmt = fmt
        self.highlight: int | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_rows(self, rows: Iterable[tuple[str, float]], highlight: int | None = None) -> None:
        self.rows = list(rows)
        self.highlight = highlight
        self.updateGeometry()
        self.setMinimumHeight(self.sizeHint().height())
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(260, max(self.ROW, len(self.rows) * self.ROW + 4))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = self.width()
        label_w = min(170, max(90, int(width * 0.38)))
        value_w = 56
        bar_w = max(20, width - label_w - value_w - 12)
        peak = max((v for _, v in self.rows), default=1.0) or 1.0
        metrics = painter.fontMetrics()
        for i, (label, value) in enumerate(self.rows):
            y = 2 + i * self.ROW
            text = f"{i + 1}.  {label}" if self.ranked else label
            colour = QColor(ACCENT if (i == 0 and self.ranked) or i == self.highlight else TEXT)
            painter.setPen(colour)
            painter.drawText(QRectF(0, y, label_w - 8, self.ROW), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             metrics.elidedText(text, Qt.TextElideMode.ElideRight, label_w - 8))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(EDGE))
            painter.drawRoundedRect(QRectF(label_w, y + 7, bar_w, self.ROW - 14), 4, 4)
            fill = QColor(ACCENT if (i == 0 and self.ranked) or i == self.highlight else ACCENT_DIM)
            fill.setAlpha(230 if (i == 0 and self.ranked) or i == self.highlight else 150)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(label_w, y + 7, max(3.0, bar_w * max(0.0, value) / peak), self.ROW - 14), 4, 4)
            painter.setPen(QColor(MUTED))
            painter.drawText(QRectF(label_w + bar_w + 4, y, value_w + 8, self.ROW),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.fmt.format(value))
        painter.end()


STYLE = themed("""
#ExploreHeader { background: @HEADER@; border-bottom: 1px solid @FIELD@; }
#ExploreCard { background: @PANEL@; border: 1px solid @EDGE@; border-radius: 10px; }
QTabWidget#ExploreTabs::pane { border: none; background: @BASE@; }
QTabBar#ExploreTabBar { background: transparent; }
QTabBar#ExploreTabBar::tab { background: transparent; color: @MUTED@; padding: 8px 16px; margin: 0 2px;
    border: none; border-bottom: 2px solid transparent; font-size: 10.5pt; }
QTabBar#ExploreTabBar::tab:hover { color: @TEXT@; }
QTabBar#ExploreTabBar::tab:selected { color: @ACCENT_LIGHT@; border-bottom: 2px solid @ACCENT@; }
QTextBrowser#TokenSpans { background: @PLOT_BACKGROUND@; border: 1px solid @EDGE@; border-radius: 8px; padding: 6px; }
QLabel#BigNumber { font-size: 18pt; font-weight: 600; color: @TEXT@; }
QLabel#BigNumberCaption { color: @MUTED@; font-size: 8.5pt; }
QLabel#Note { color: @WARN@; }
QLabel#Good { color: @GOOD@; font-weight: 600; }
QLabel#Bad { color: @BAD@; font-weight: 600; }
QTableWidget { background: @PLOT_BACKGROUND@; border: 1px solid @EDGE@; border-radius: 8px; gridline-color: @FIELD@; }
QHeaderView::section { background: @PANEL@; color: @MUTED@; border: none; border-bottom: 1px solid @LINE@; padding: 5px 8px; }
QTableWidget::item { padding: 3px 6px; }
QTableWidget::item:selected { background: @ACCENT_SELECTED@; color: @ACCENT_LIGHT@; }
QTableCornerButton::section { background: @PANEL@; border: none; }
QPlainTextEdit#Code { background: @CODE_PANEL@; border: 1px solid @EDGE@; border-radius: 8px; }
QCheckBox::indicator { width: 14px; height: 14px; border-radius: 4px; border: 1px solid @CHECK_EDGE@; background: @FIELD@; }
QCheckBox::indicator:hover { border-color: @ACCENT@; }
QCheckBox::indicator:checked { background: @ACCENT@; border-color: @ACCENT@; image: url(@CHECK@); }
QSlider::groove:horizontal { height: 4px; background: @LINE@; border-radius: 2px; }
QSlider::sub-page:horizontal { background: @ACCENT_DEEP@; border-radius: 2px; }
QSlider::handle:horizontal { background: @ACCENT@; width: 14px; height: 14px; margin: -5px 0; border-radius: 7px; }
QProgressBar#JobProgress { background: @FIELD@; border: none; border-radius: 3px; max-height: 6px; }
QProgressBar#JobProgress::chunk { background: @ACCENT@; border-radius: 3px; }
QTextBrowser#PagePreview { background: @WHITE@; color: @PAGE_TEXT@; border: 1px solid @EDGE@; border-radius: 8px; }
""").replace("@CHECK@", resource("desktop", "icons", "check.svg").as_posix())
