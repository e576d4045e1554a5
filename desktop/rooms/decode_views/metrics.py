"""The metrics table: one row per condition (decoded, low-level, oracle, shuffled) and the chance level, one column
per metric the run reported; each header's tooltip says how the metric is computed."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from desktop.rooms.decode_views.common import ACCENT, CONDITIONS, MUTED, chance_level, format_value, metric_columns


class MetricsTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent, objectName="MetricsTable")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(26)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self.columns: list[str] = []
        self.conditions: list[str] = []

    def clear_metrics(self) -> None:
        self.setRowCount(0)
        self.setColumnCount(0)
        self.columns, self.conditions = [], []

    def set_metrics(self, metrics: dict, chance: dict, n_way: int | None) -> None:
        columns = metric_columns(metrics)
        rows = [(key, title, tip) for key, title, tip in CONDITIONS if key in metrics]
        self.setColumnCount(len(columns))
        self.setRowCount(len(rows) + 1)
        self.columns = [m.key for m in columns]
        self.conditions = [key for key, _title, _tip in rows] + ["chance"]
        for c, info in enumerate(columns):
            title = info.title.replace("n-way", f"{n_way}-way") if n_way else info.title
            item = QTableWidgetItem(title.replace(" (", "\n("))  # two lines keep the columns narrow
            item.setToolTip(info.tip)
            self.setHorizontalHeaderItem(c, item)
        bold = QFont()
        bold.setBold(True)
        for r, (key, title, tip) in enumerate(rows):
            head = QTableWidgetItem(title)
            head.setToolTip(tip)
            self.setVerticalHeaderItem(r, head)
            for c, info in enumerate(columns):
                item = self._cell(format_value(info, metrics[key].get(info.key)))
                if key == "decoded":
                    item.setForeground(QColor(ACCENT))
                    item.setFont(bold)
                self.setItem(r, c, item)
        last = len(rows)
        head = QTableWidgetItem("Chance")
        head.setToolTip("What guessing scores (PixCorr 0, two-way 50%, n-way 1/n, semantic 1/number of labels).")
        self.setVerticalHeaderItem(last, head)
        for c, info in enumerate(columns):
            item = self._cell(format_value(info, chance_level(info, chance)))
            item.setForeground(QColor(MUTED))
            self.setItem(last, c, item)
        # Tall enough for every row, the two-line header and a horizontal scroll bar (many metrics, narrow window).
        header = self.horizontalHeader().sizeHint().height()
        scrollbar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(header + 26 * self.rowCount() + scrollbar + 2 * self.frameWidth() + 2)

    @staticmethod
    def _cell(text: str) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        return item

    def text(self, condition: str, metric: str) -> str:
        """The shown value of a condition ("decoded", ..., "chance") for a metric key ("pixcorr", ...)."""
        item = self.item(self.conditions.index(condition), self.columns.index(metric))
        return item.text() if item else ""
