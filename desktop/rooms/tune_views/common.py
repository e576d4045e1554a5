"""What the Tune views share: the host-job router, small widgets, the plot theme and the room's style."""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from desktop.job_router import JobRouter
from desktop.jobs import JobRunner
from desktop.widgets.background import FileWorker  # noqa: F401  (re-exported for the views)
from desktop.widgets.palette import ACCENT, BLUE, GOOD, LINE, MUTED, TEXT, VIOLET, themed  # noqa: F401  (for the views)
from desktop.widgets.panels import Card as _Card
from desktop.widgets.panels import muted, section  # noqa: F401  (re-exported for the views)
from desktop.widgets.plots import pyqtgraph  # noqa: F401  (re-exported for the views)


class TuneJobs(JobRouter):
    """Routes the job runner's signals for the Tune room's host jobs back to the view that asked (GUI thread)."""

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(runner, "tune", parent)


def system_name(system: str) -> str:
    """An Elo system ("model" or "model+adapter folder", see ``Candidate.system``) as a person reads it."""
    from pathlib import Path

    base, plus, adapter = system.partition("+")
    short = "bundled SmolLM2" if base == "default" else Path(base).name or base
    return f"{short} + {Path(adapter).name}" if plus else short


class Card(_Card):
    OBJECT_NAME = "TuneCard"


def set_state(widget: QWidget, name: str, value) -> None:
    """Set a style property and re-polish, so a QSS rule on ``[name="value"]`` applies."""
    if widget.property(name) != value:
        widget.setProperty(name, value)
        widget.style().unpolish(widget)
        widget.style().polish(widget)




def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_seconds(s: float) -> str:
    s = max(0.0, float(s))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


STYLE = themed("""
#TuneHeader { background: @HEADER@; border-bottom: 1px solid @FIELD@; }
#TuneCard { background: @PANEL@; border: 1px solid @EDGE@; border-radius: 10px; }
QTabBar#TuneTabBar { background: transparent; }
QTabBar#TuneTabBar::tab { background: transparent; color: @MUTED@; padding: 8px 16px; margin: 0 2px;
    border: none; border-bottom: 2px solid transparent; font-size: 10.5pt; }
QTabBar#TuneTabBar::tab:hover { color: @TEXT@; }
QTabBar#TuneTabBar::tab:selected { color: @ACCENT_LIGHT@; border-bottom: 2px solid @ACCENT@; }
#PromptBox { background: @CARD@; border: 1px solid @CARD_EDGE@; border-radius: 10px; }
#ReplyCard { background: @REPLY_CARD@; border: 1px solid @CARD_EDGE@; border-radius: 10px; }
#ReplyCard[flash="true"] { border: 1px solid @ACCENT@; background: @ACCENT_FLASH@; }
QLabel#ReplyTag { color: @ACCENT@; font-weight: 700; font-size: 11pt; }
QLabel#KeyCap { background: @BUTTON@; border: 1px solid @EDGE_STRONG@; border-bottom: 2px solid @EDGE_STRONG@; border-radius: 4px;
    padding: 0 6px; color: @TEXT@; font-family: "DejaVu Sans Mono"; font-size: 9pt; }
QTextBrowser#ReplyText, QTextBrowser#PromptText { background: transparent; border: none; font-size: 10.5pt; }
QLabel#BigNumber { font-size: 17pt; font-weight: 600; color: @TEXT@; }
QLabel#BigNumberCaption { color: @MUTED@; font-size: 8.5pt; }
QLabel#Good { color: @GOOD@; }
QLabel#Bad { color: @BAD@; }
QLabel#Estimate[fits="false"] { color: @BAD@; }
QLabel#RunStatus[state="running"] { color: @WARN@; }
QLabel#RunStatus[state="completed"] { color: @GOOD@; }
QLabel#RunStatus[state="failed"] { color: @BAD@; }
QLabel#RunStatus[state="cancelled"] { color: @CAUTION@; }
QPushButton#Method { padding: 6px 12px; border-radius: 6px; }
QPushButton#Method:checked { background: @ACCENT_WASH@; border-color: @ACCENT@; color: @ACCENT_LIGHT@; font-weight: 600; }
QPushButton#Choice { padding: 7px 14px; font-weight: 600; }
QPushButton#Choice:hover { border-color: @ACCENT@; }
QListWidget#RankList { background: @PLOT_BACKGROUND@; border: 1px solid @EDGE@; border-radius: 10px; padding: 4px; }
QListWidget#RankList::item { border-radius: 8px; margin: 3px 2px; }
QListWidget#PromptList, QTableWidget#RunTable { background: @PLOT_BACKGROUND@; border: 1px solid @EDGE@; border-radius: 8px; }
QListWidget#PromptList::item { padding: 5px 8px; border-radius: 5px; color: @QUIET_TEXT@; }
QListWidget#PromptList::item:selected { background: @SELECTED@; color: @WHITE@; }
QTableWidget#RunTable { gridline-color: @FIELD@; }
QTableWidget#RunTable::item { padding: 3px 6px; }
QTableWidget#RunTable::item:selected { background: @ACCENT_SELECTED@; color: @ACCENT_LIGHT@; }
QHeaderView::section { background: @PANEL@; color: @MUTED@; border: none; border-bottom: 1px solid @LINE@; padding: 5px 8px; }
QTableCornerButton::section { background: @PANEL@; border: none; }
QPlainTextEdit#RunLog { background: @CODE_PANEL@; border: 1px solid @EDGE@; border-radius: 8px; font-family: "DejaVu Sans Mono";
    font-size: 8.5pt; color: @SOFT_TEXT@; }
QProgressBar#TuneProgress { background: @FIELD@; border: none; border-radius: 3px; max-height: 6px; }
QProgressBar#TuneProgress::chunk { background: @ACCENT@; border-radius: 3px; }
QLabel#GuideChip { color: @MUTED@; padding: 2px 8px; border-radius: 9px; }
QLabel#GuideChip[state="current"] { color: @ACCENT_LIGHT@; background: @ACCENT_WASH@; border: 1px solid @ACCENT@; }
QLabel#GuideChip[state="done"] { color: @GOOD@; }
QLabel#ScriptedBanner { background: @INFO_WASH@; border: 1px solid @BLUE@; border-radius: 6px; padding: 6px 10px; color: @TEXT@; }
QCheckBox::indicator { width: 14px; height: 14px; border-radius: 4px; border: 1px solid @CHECK_EDGE@; background: @FIELD@; }
QCheckBox::indicator:checked { background: @ACCENT@; border-color: @ACCENT@; }
""")


