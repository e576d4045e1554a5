"""Usage and cost: tokens in and out per day and per model (chat replies and the host's other
jobs), local time spent, and what the same tokens would have cost on paid APIs at prices the
user edits (saved in settings)."""
from __future__ import annotations

from datetime import date, timedelta

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QPushButton, QScrollArea, QSplitter, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from engines.core.errors import RequestError
from engines.store.usage import (
    DEFAULT_PRICES, EMAIL_COMPLETION_TOKENS, EMAIL_PROMPT_TOKENS, Price, UsageLog, email_cost, load_prices, save_prices,
    totals,
)
from desktop.rooms.explore_views.common import ACCENT, Card, ExploreView, muted, pyqtgraph, style_plot
from desktop.widgets.palette import BAD, QUIET_TEXT, SERIES_BLUE

IN_COLOUR = SERIES_BLUE
PRICE_COLUMNS = ("API", "$ / M input", "$ / M output", "Your tokens would cost", "One email", "1,000 emails")
CHART_DAYS = 14


def money(value: float) -> str:
    if value == 0:
        return "$0"
    if value < 1:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min"


class UsageView(ExploreView):
    title = "Usage & cost"
    lane = "usage"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.log = UsageLog(context.db)
        self.rows = []
        self.total = totals([])
        self.prices: list[Price] = load_prices(context.settings)
        self._filling = False

        numbers = QHBoxLayout()
        numbers.setSpacing(12)
        self.stats: dict[str, QLabel] = {}
        for key, caption in (("in", "tokens in (prompts)"), ("out", "tokens out (replies)"), ("requests", "replies and jobs"),
                             ("time", "local time spent")):
            card = Card()
            value = QLabel("–", objectName="BigNumber")
            card.body.addWidget(value)
            card.body.addWidget(QLabel(caption, objectName="BigNumberCaption"))
            self.stats[key] = value
            numbers.addWidget(card, 1)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        numbers.addWidget(refresh, 0, Qt.AlignmentFlag.AlignTop)

        table_card = Card("Per day and model")
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Day", "Model", "Replies/jobs", "Tokens in", "Tokens out", "Local time"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table_card.body.addWidget(self.table, 1)
        self.empty = muted("Nothing yet: chat, or run a few-shot measurement or a page, and the tokens show up here.")
        table_card.body.addWidget(self.empty)

        chart_card = Card(f"Tokens per day (last {CHART_DAYS} days)")
        pg = pyqtgraph()
        self.chart = pg.PlotWidget()
        style_plot(self.chart, left="tokens")
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.setMinimumHeight(170)
        self.chart.getPlotItem().addLegend(offset=(10, 8), labelTextColor=QUIET_TEXT)
        chart_card.body.addWidget(self.chart, 1)

        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.addWidget(table_card)
        middle.addWidget(chart_card)
        middle.setSizes([640, 520])
        middle.setChildrenCollapsible(False)

        cost_card = Card("What the same tokens would have cost on paid APIs")
        self.prices_table = QTableWidget(0, len(PRICE_COLUMNS))
        self.prices_table.setHorizontalHeaderLabels(PRICE_COLUMNS)
        self.prices_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.prices_table.verticalHeader().setVisible(False)
        self.prices_table.itemChanged.connect(self._price_edited)
        self.prices_table.setMinimumHeight(170)
        cost_card.body.addWidget(self.prices_table, 1)
        row = QHBoxLayout()
        add = QPushButton("Add a price")
        add.clicked.connect(self._add_price)
        remove = QPushButton("Remove selected")
        remove.clicked.connect(self._remove_price)
        reset = QPushButton("Starting prices")
        reset.clicked.connect(self._reset_prices)
        row.addWidget(add)
        row.addWidget(remove)
        row.addWidget(reset)
        row.addSpacing(12)
        self.price_note = muted(
            f"US dollars per million tokens; edit any cell. One email = {EMAIL_PROMPT_TOKENS} prompt + "
            f"{EMAIL_COMPLETION_TOKENS} output tokens. The starting prices are list prices from late 2024: check today's.")
        row.addWidget(self.price_note, 1)
        cost_card.body.addLayout(row)

        # The cards need more height than a 900x600 window leaves: the page scrolls instead of squeezing them.
        page = QWidget(objectName="UsagePage")
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(12)
        layout.addLayout(numbers)
        layout.addWidget(middle, 1)
        layout.addWidget(cost_card, 1)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()

    # -- usage ------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the database (two small aggregate queries; cheap enough for the GUI thread)."""
        self.rows = self.log.by_day_and_model()
        self.total = totals(self.rows)
        self.stats["in"].setText(f"{self.total.prompt_tokens:,}")
        self.stats["out"].setText(f"{self.total.completion_tokens:,}")
        self.stats["requests"].setText(f"{self.total.requests:,}")
        self.stats["time"].setText(duration(self.total.seconds))
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (row.day, row.model, f"{row.requests:,}", f"{row.prompt_tokens:,}", f"{row.completion_tokens:,}",
                      duration(row.seconds))
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.empty.setVisible(not self.rows)
        self._draw_chart()
        self._fill_prices()

    def _draw_chart(self) -> None:
        pg = pyqtgraph()
        item = self.chart.getPlotItem()
        item.clear()
        today = date.today()
        days = [(today - timedelta(days=CHART_DAYS - 1 - i)).isoformat() for i in range(CHART_DAYS)]
        tokens_in = {d: 0 for d in days}
        tokens_out = {d: 0 for d in days}
        for row in self.rows:
            if row.day in tokens_in:
                tokens_in[row.day] += row.prompt_tokens
                tokens_out[row.day] += row.completion_tokens
        xs = list(range(CHART_DAYS))
        ins = [tokens_in[d] for d in days]
        outs = [tokens_out[d] for d in days]
        item.addItem(pg.BarGraphItem(x=xs, height=ins, width=0.6, brush=IN_COLOUR, pen=None, name="in"))
        item.addItem(pg.BarGraphItem(x=xs, y0=ins, height=outs, width=0.6, brush=ACCENT, pen=None, name="out"))
        legend = item.legend
        if legend is not None:
            legend.clear()
            legend.addItem(pg.BarGraphItem(x=[0], height=[0], width=0.6, brush=IN_COLOUR, pen=None), "tokens in")
            legend.addItem(pg.BarGraphItem(x=[0], height=[0], width=0.6, brush=ACCENT, pen=None), "tokens out")
        item.getAxis("bottom").setTicks([[(i, days[i][5:]) for i in range(0, CHART_DAYS, 2)]])
        item.setXRange(-0.6, CHART_DAYS - 0.4, padding=0)
        item.setYRange(0, max(1, max(i + o for i, o in zip(ins, outs))) * 1.15, padding=0)

    # -- prices -----------------------------------------------------------
    def _fill_prices(self) -> None:
        self._filling = True
        self.prices_table.setRowCount(len(self.prices))
        for r, price in enumerate(self.prices):
            self._set_row(r, price)
        self._filling = False

    def _set_row(self, r: int, price: Price) -> None:
        cells = (price.name, f"{price.input_per_million:g}", f"{price.output_per_million:g}",
                 money(price.cost(self.total.prompt_tokens, self.total.completion_tokens)),
                 money(email_cost(price)), money(email_cost(price, 1000)))
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c >= 3:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                item.setForeground(QColor(ACCENT if c == 3 else QUIET_TEXT))
            if c >= 1:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.prices_table.setItem(r, c, item)

    def _price_edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() > 2:
            return
        r = item.row()
        cells = [self.prices_table.item(r, c).text() if self.prices_table.item(r, c) else "" for c in range(3)]
        try:
            price = Price.from_dict({"name": cells[0], "input_per_million": cells[1].replace("$", "").strip(),
                                     "output_per_million": cells[2].replace("$", "").strip()})
        except RequestError as exc:
            self.price_note.setText(str(exc))
            item.setForeground(QColor(BAD))
            return
        self.prices[r] = price
        save_prices(self.context.settings, self.prices)
        self._filling = True
        self._set_row(r, price)
        self._filling = False

    def _add_price(self) -> None:
        self.prices.append(Price("My API", 1.0, 4.0))
        save_prices(self.context.settings, self.prices)
        self._fill_prices()
        self.prices_table.editItem(self.prices_table.item(len(self.prices) - 1, 0))

    def _remove_price(self) -> None:
        rows = sorted({i.row() for i in self.prices_table.selectedItems()}, reverse=True)
        for r in rows:
            del self.prices[r]
        save_prices(self.context.settings, self.prices)
        self._fill_prices()

    def _reset_prices(self) -> None:
        self.prices = list(DEFAULT_PRICES)
        save_prices(self.context.settings, self.prices)
        self._fill_prices()

    def set_prices(self, prices: list[Price]) -> None:
        self.prices = list(prices)
        save_prices(self.context.settings, self.prices)
        self._fill_prices()
