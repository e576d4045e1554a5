"""Live training curves (pyqtgraph) from the Metric events of a training run (engines.store.runs.typed_events).

Four panels: loss; learning rate; reward accuracy and margin (reward, DPO); KL and reward (KTO,
RL). pyqtgraph is imported when the first panel is built, not when Hearth starts.
"""
from __future__ import annotations

import math

from PySide6.QtWidgets import QGridLayout, QWidget

from engines.core.events import Event, Metric
from desktop.rooms.tune_views.common import ACCENT, BLUE, GOOD, MUTED, VIOLET, pyqtgraph
from desktop.widgets.palette import PANEL, WARN
from desktop.widgets.plots import style_plot

# panel title -> [(metric name, legend, colour)]
PANELS: dict[str, list[tuple[str, str, str]]] = {
    "Loss": [("loss", "loss", ACCENT)],
    "Learning rate": [("learning_rate", "learning rate", BLUE)],
    "Reward accuracy / margin": [("reward_accuracy", "accuracy", GOOD), ("reward_margin", "margin", VIOLET)],
    "KL / reward": [("kl", "KL", WARN), ("reward", "reward", GOOD)],
}


class Curves(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg = pyqtgraph()
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.curves: dict[str, object] = {}
        self.plots: dict[str, object] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(8)
        for i, (title, lines) in enumerate(PANELS.items()):
            plot = pg.PlotWidget()
            item = plot.getPlotItem()
            item.setTitle(f"<span style='color:{MUTED};font-size:9pt'>{title}</span>")
            style_plot(plot, bottom="step")
            plot.setMinimumHeight(150)
            if len(lines) > 1:
                legend = item.addLegend(offset=(-8, 8), labelTextColor=MUTED, brush=pg.mkBrush(f"{PANEL}cc"))
                legend.setParentItem(item.vb)
            for key, name, colour in lines:
                self.series[key] = ([], [])
                self.curves[key] = plot.plot([], [], name=name, pen=pg.mkPen(colour, width=2),
                                             symbol="o", symbolSize=4, symbolBrush=colour, symbolPen=None)
            self.plots[title] = plot
            grid.addWidget(plot, i // 2, i % 2)

    def clear(self) -> None:
        for key, (xs, ys) in self.series.items():
            xs.clear()
            ys.clear()
            self.curves[key].setData([], [])

    def add_events(self, events: list[Event]) -> int:
        """Add the runs' Metric events that a panel plots; returns how many points were added."""
        added, touched = 0, set()
        for event in events:
            if not isinstance(event, Metric) or event.name not in self.series or not math.isfinite(event.value):
                continue
            xs, ys = self.series[event.name]
            if xs and event.step <= xs[-1]:  # a resumed run repeats steps after its checkpoint: keep the newest
                while xs and xs[-1] >= event.step:
                    xs.pop()
                    ys.pop()
            xs.append(event.step)
            ys.append(event.value)
            touched.add(event.name)
            added += 1
        for key in touched:
            self.curves[key].setData(*self.series[key])
        return added

    def points(self, key: str) -> int:
        return len(self.series[key][0])
