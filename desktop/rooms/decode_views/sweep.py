"""The SNR sweep plot: a chosen metric against the signal-to-noise ratio (log axis), for the decoded and the
shuffled-voxel condition, with the chance level dashed and this run's SNR marked. pyqtgraph loads with the first
plot, not when Hearth starts."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from desktop.rooms.decode_views.common import ACCENT, BLUE, METRIC, METRICS, MUTED, chance_level, pyqtgraph
from desktop.widgets.panels import muted
from desktop.widgets.palette import WARN
from desktop.widgets.plots import style_plot

RUN = WARN
EMPTY = "No sweep yet. Give SNRs in the sweep field: the decoder is refitted at each (simulated fMRI only)."


class SweepPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[dict] = []
        self.chance: dict = {}
        self.run_snr: float | None = None
        self.plot = None  # built with the first sweep
        self.metric_box = QComboBox(toolTip="The metric to plot against SNR", minimumWidth=220)
        self.metric_box.currentIndexChanged.connect(lambda _i: self._draw())
        self.metric_box.setEnabled(False)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Metric", objectName="Muted"))
        top.addWidget(self.metric_box)
        top.addStretch(1)
        # A legend beside the chooser rather than inside the plot, where it would cover points.
        self.legend = QLabel(textFormat=Qt.TextFormat.RichText, objectName="Muted")
        top.addWidget(self.legend)
        self.stack = QStackedWidget()
        self.empty = muted(EMPTY)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.empty)
        self.note = muted("Sweep points score the low-level and semantic decode (no img2img), refitted at each SNR.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.note)

    def _build_plot(self) -> None:
        pg = pyqtgraph()
        plot = pg.PlotWidget()
        style_plot(plot, bottom="SNR (log scale)")
        item = plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        plot.setMinimumHeight(160)
        self.decoded_curve = plot.plot([], [], pen=pg.mkPen(ACCENT, width=2), symbol="o", symbolSize=6,
                                       symbolBrush=ACCENT, symbolPen=None)
        self.shuffled_curve = plot.plot([], [], pen=pg.mkPen(BLUE, width=2), symbol="s", symbolSize=5,
                                        symbolBrush=BLUE, symbolPen=None)
        self.chance_curve = plot.plot([], [], pen=pg.mkPen(MUTED, width=1.5, style=Qt.PenStyle.DashLine))
        self.run_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(RUN, width=1, style=Qt.PenStyle.DotLine))
        plot.addItem(self.run_line)
        self.plot = plot
        self.stack.addWidget(plot)

    def clear(self) -> None:
        self.set_sweep([], {}, None)

    def set_sweep(self, points: list[dict], chance: dict, run_snr: float | None) -> None:
        self.points = sorted((p for p in points if p.get("snr")), key=lambda p: p["snr"])
        self.chance = chance or {}
        self.run_snr = run_snr
        keys = {k for p in self.points for k in (p.get("decoded") or {})}
        current = self.metric_box.currentData()
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        for info in METRICS:
            if info.key in keys:
                self.metric_box.addItem(info.title, info.key)
        self.metric_box.setCurrentIndex(max(0, self.metric_box.findData(current)))
        self.metric_box.setEnabled(self.metric_box.count() > 0)
        self.metric_box.blockSignals(False)
        if self.points and self.plot is None:
            self._build_plot()
        self._draw()

    def _draw(self) -> None:
        if not self.points or self.plot is None:
            self.stack.setCurrentWidget(self.empty)
            self.legend.setText("")
            return
        self.stack.setCurrentWidget(self.plot)
        key = self.metric_box.currentData()
        info = METRIC[key]
        scale = 100.0 if info.percent else 1.0  # as the metrics table shows them
        xs = [p["snr"] for p in self.points]
        # Ticks at the sweep's SNRs: pyqtgraph's own log ticks label every minor step, and they overlap.
        self.plot.getPlotItem().getAxis("bottom").setTicks([[(math.log10(x), f"{x:g}") for x in xs], []])
        self.decoded_curve.setData(*self.series("decoded"))
        self.shuffled_curve.setData(*self.series("shuffled"))
        level = chance_level(info, self.chance)
        if level is not None:
            self.chance_curve.setData([min(xs) / 1.5, max(xs) * 1.5], [scale * level, scale * level])
        else:
            self.chance_curve.setData([], [])
        if self.run_snr:
            self.run_line.setValue(math.log10(self.run_snr))  # a log-x plot places items in log10 coordinates
        self.run_line.setVisible(bool(self.run_snr))
        entries = [f"<span style='color:{ACCENT}'>●</span> decoded", f"<span style='color:{BLUE}'>■</span> shuffled"]
        if level is not None:
            entries.append(f"<span style='color:{MUTED}'>╌</span> chance")
        if self.run_snr:
            entries.append(f"<span style='color:{RUN}'>┆</span> this run (SNR {self.run_snr:g})")
        self.legend.setText(" &nbsp; ".join(entries))
        item = self.plot.getPlotItem()
        item.setLabel("left", "%" if info.percent else "", color=MUTED)
        item.enableAutoRange()

    def series(self, condition: str) -> tuple[list[float], list[float]]:
        """The plotted (SNR, value) points of a condition ("decoded", "shuffled") for the chosen metric;
        accuracies in percent."""
        key = self.metric_box.currentData()
        scale = 100.0 if key in METRIC and METRIC[key].percent else 1.0
        xs, ys = [], []
        for p in self.points:
            value = (p.get(condition) or {}).get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs.append(float(p["snr"]))
                ys.append(scale * float(value))
        return xs, ys
