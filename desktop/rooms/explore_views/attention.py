"""Attention: every layer's and head's token-by-token weights as a heatmap, with layer and head
pickers, the mean over heads, and what one clicked token looks at. Exports the heatmap as PNG."""
from __future__ import annotations

import base64

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSlider, QSplitter,
    QToolTip, QVBoxLayout, QWidget,
)

from engines.core.requests.explore import AttentionRequest
from desktop.rooms.explore_views.common import ACCENT, MUTED, Card, ExploreView, ScoreBars, muted
from desktop.widgets.panels import eliding
from desktop.widgets.palette import BASE, QUIET_TEXT

# The same dark-to-bright ramp as the CLI's PNG (engines/text/explore_attention.RAMP).
RAMP = ((0.0, (16, 17, 24)), (0.25, (72, 31, 110)), (0.5, (180, 54, 121)), (0.75, (246, 128, 76)), (1.0, (252, 236, 170)))
DEFAULT_TEXT = "The animal didn't cross the street because it was too tired."


def _lut() -> list[int]:
    out = []
    for i in range(256):
        v = i / 255
        for (p0, c0), (p1, c1) in zip(RAMP, RAMP[1:]):
            if v <= p1:
                t = (v - p0) / (p1 - p0)
                r, g, b = (int(round(a + (b_ - a) * t)) for a, b_ in zip(c0, c1))
                out.append(QColor(r, g, b).rgb())
                break
    return out


LUT = _lut()


def decode_weights(data: dict) -> np.ndarray:
    """The host's base64 float16 weights as a float32 array, layers x heads x T x T."""
    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype="<f2").reshape(data["shape"]).astype(np.float32)


def label_of(token: str) -> str:
    text = token.replace("\n", "↵").replace("\t", "→")
    text = text if text.strip() else text.replace(" ", "␣")
    return text if len(text) <= 14 else text[:13] + "…"


class Heatmap(QWidget):
    """Rows attend to columns. Click a cell or a row label to pick the row's token."""

    row_clicked = Signal(int)
    LEGEND = 78  # room on the right for the colour scale

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: np.ndarray | None = None
        self.tokens: list[str] = []
        self.selected: int | None = None
        self.sqrt_scale = False
        self.title = ""
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(360, 360)

    def set_data(self, matrix: np.ndarray, tokens: list[str], title: str) -> None:
        self.matrix, self.tokens, self.title = matrix, tokens, title
        if self.selected is not None and self.selected >= len(tokens):
            self.selected = None
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(640, 640)

    def _geometry(self) -> tuple[float, float, float]:
        """(left margin, top margin, cell size) for the current size."""
        metrics = self.fontMetrics()
        label = max((metrics.horizontalAdvance(label_of(t)) for t in self.tokens), default=40) + 14
        title_h = metrics.height() + 10
        n = max(1, len(self.tokens))
        cell = max(4.0, min((self.width() - label - 12 - self.LEGEND) / n, (self.height() - label - title_h - 12) / n, 44.0))
        return float(label), float(label + title_h), cell

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        if self.matrix is None:
            return None
        left, top, cell = self._geometry()
        n = len(self.tokens)
        i, j = int((pos.y() - top) // cell), int((pos.x() - left) // cell)
        if 0 <= i < n and pos.x() < left and pos.y() >= top:
            return i, -1  # a row label
        if 0 <= i < n and 0 <= j < n:
            return i, j
        return None

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(BASE))
        if self.matrix is None:
            painter.setPen(QColor(MUTED))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Type a short text and press “Show attention”.")
            painter.end()
            return
        left, top, cell = self._geometry()
        n = len(self.tokens)
        values = np.sqrt(self.matrix) if self.sqrt_scale else self.matrix
        peak = float(values.max()) or 1.0
        index = np.clip(np.round(values / peak * 255), 0, 255).astype(np.uint8)
        image = QImage(n, n, QImage.Format.Format_RGB32)
        for i in range(n):
            for j in range(n):
                image.setPixel(j, i, LUT[index[i, j]])
        painter.drawImage(QRectF(left, top, cell * n, cell * n), image)
        painter.setPen(QColor(MUTED))
        painter.drawText(QRectF(0, 2, self.width(), top - left - 4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         "  " + self.title)
        metrics = painter.fontMetrics()
        for k, token in enumerate(self.tokens):
            label = label_of(token)
            chosen = k == self.selected
            painter.setPen(QColor(ACCENT if chosen else QUIET_TEXT))
            painter.drawText(QRectF(0, top + k * cell, left - 8, cell), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
            painter.save()
            painter.translate(left + k * cell + cell / 2 + metrics.ascent() / 2 - 2, top - 6)
            painter.rotate(-90)
            painter.drawText(QPointF(0, 0), label)
            painter.restore()
        if self.selected is not None:
            painter.setPen(QPen(QColor(ACCENT), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(left, top + self.selected * cell, cell * n, cell))
        self._paint_legend(painter, left + cell * n + 18, top, min(cell * n, 220.0), float(self.matrix.max()))
        painter.end()

    def _paint_legend(self, painter: QPainter, x: float, y: float, height: float, peak: float) -> None:
        """A vertical colour bar from 0 (bottom) to the largest weight shown (top)."""
        bar = QImage(1, 256, QImage.Format.Format_RGB32)
        for k in range(256):
            bar.setPixel(0, 255 - k, LUT[k])
        painter.drawImage(QRectF(x, y, 12, height), bar)
        painter.setPen(QColor(MUTED))
        top_label = f"{peak:.2f}" + (" (√)" if self.sqrt_scale else "")
        painter.drawText(QRectF(x + 16, y - 2, 60, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, top_label)
        painter.drawText(QRectF(x + 16, y + height - 14, 60, 16), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, "0")

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.cell_at(event.position())
        if hit and hit[1] >= 0:
            i, j = hit
            QToolTip.showText(event.globalPosition().toPoint(),
                              f"“{label_of(self.tokens[i])}” → “{label_of(self.tokens[j])}”: {self.matrix[i, j]:.3f}", self)
        else:
            QToolTip.hideText()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        hit = self.cell_at(event.position())
        if hit:
            self.selected = hit[0]
            self.update()
            self.row_clicked.emit(hit[0])


class AttentionView(ExploreView):
    title = "Attention"
    lane = "attention"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.data: dict | None = None
        self.weights: np.ndarray | None = None
        self._job: str | None = None

        top = Card("Text")
        row = QHBoxLayout()
        self.text = QLineEdit(text=DEFAULT_TEXT, placeholderText="A short sentence (up to 64 tokens)")
        self.text.returnPressed.connect(self.run)
        self.go = QPushButton("Show attention", objectName="Primary")
        self.go.clicked.connect(self.run)
        self.export = QPushButton("Export PNG…", enabled=False)
        self.export.clicked.connect(self._export_dialog)
        row.addWidget(self.text, 1)
        row.addWidget(self.go)
        row.addWidget(self.export)
        top.body.addLayout(row)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer", objectName="Muted"))
        self.layer = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0, minimumWidth=120)
        self.layer.valueChanged.connect(self._redraw)
        self.layer_label = QLabel("–", minimumWidth=70)
        controls.addWidget(self.layer)
        controls.addWidget(self.layer_label)
        controls.addSpacing(14)
        controls.addWidget(QLabel("Head", objectName="Muted"))
        self.head = eliding(QComboBox(), 10)
        self.head.addItem("Mean over heads", None)
        self.head.currentIndexChanged.connect(self._redraw)
        controls.addWidget(self.head)
        self.sqrt = QCheckBox("√ colour scale", toolTip="Brighten small weights (the first token often takes most "
                                                       "attention, as a resting place, and dims the rest)")
        self.sqrt.toggled.connect(self._redraw)
        controls.addSpacing(14)
        controls.addWidget(self.sqrt)
        controls.addStretch(1)
        top.body.addLayout(controls)
        self.status = muted("Row i shows how much token i attends to each earlier token; each row sums to 1. "
                            "Computed with transformers (eager attention); the first run on a GGUF model converts it once, "
                            "which takes about a minute.")
        top.body.addWidget(self.status)

        self.heatmap = Heatmap()
        self.heatmap.row_clicked.connect(self._pick_row)
        side = Card("What one token looks at")
        self.side_caption = muted("Click a token (a row) in the heatmap.")
        side.body.addWidget(self.side_caption)
        self.row_bars = ScoreBars(ranked=False)
        side.body.addWidget(self.row_bars)
        side.body.addStretch(1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.heatmap)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([760, 340])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(top)
        layout.addWidget(splitter, 1)

    def set_ready(self, ready: bool) -> None:
        self.go.setEnabled(ready)

    def model_changed(self) -> None:
        if self.data is not None and self.context.host.is_ready:
            self.run()

    def run(self) -> None:
        if self.jobs.active(self._job):
            return
        request = AttentionRequest(text=self.text.text(), model=self.model(), max_tokens=64)
        if not self.jobs.checked(request, self._failed):
            return
        self.go.setEnabled(False)
        self.status.setText("Computing attention…")
        self._job = self.jobs.call(self.lane, lambda c: c.explore(request), self._show,
                                   label="Computing attention", on_error=self._failed,
                                   on_done=lambda _how: self.go.setEnabled(self.context.host.is_ready))

    def _failed(self, error) -> None:
        self.status.setText(str(error))

    def _show(self, data: dict) -> None:
        first = self.weights is None or self.layer.maximum() != data["layers"] - 1
        self.data = data
        self.weights = decode_weights(data)
        layers, heads = data["layers"], data["heads"]
        self.layer.blockSignals(True)
        self.layer.setMaximum(layers - 1)
        if first:
            self.layer.setValue(layers // 2)  # middle layers show the most varied patterns
        self.layer.blockSignals(False)
        self.head.blockSignals(True)
        current = self.head.currentData()
        self.head.clear()
        self.head.addItem("Mean over heads", None)
        for h in range(heads):
            self.head.addItem(f"Head {h}", h)
        self.head.setCurrentIndex(max(0, self.head.findData(current)) if current is not None else 0)
        self.head.blockSignals(False)
        self.status.setText(f"{len(data['tokens'])} tokens · {layers} layers × {heads} heads. Row i shows how much token i "
                            "attends to each earlier token (each row sums to 1); hover a cell for its weight.")
        self.export.setEnabled(True)
        if self.heatmap.selected is None:
            self.heatmap.selected = len(data["tokens"]) - 1
        self._redraw()

    def matrix(self) -> np.ndarray | None:
        if self.weights is None:
            return None
        layer, head = self.layer.value(), self.head.currentData()
        return self.weights[layer].mean(axis=0) if head is None else self.weights[layer, head]

    def _redraw(self, *_args) -> None:
        if self.weights is None:
            return
        layer, head = self.layer.value(), self.head.currentData()
        self.layer_label.setText(f"{layer} of {self.weights.shape[0] - 1}")
        which = "mean over heads" if head is None else f"head {head}"
        self.heatmap.sqrt_scale = self.sqrt.isChecked()
        self.heatmap.set_data(self.matrix(), self.data["tokens"], f"Layer {layer}, {which}")
        if self.heatmap.selected is not None:
            self._pick_row(self.heatmap.selected)

    def _pick_row(self, row: int) -> None:
        matrix = self.matrix()
        if matrix is None:
            return
        tokens = self.data["tokens"]
        weights = matrix[row, : row + 1]
        order = np.argsort(-weights)[:12]
        self.side_caption.setText(f"“{label_of(tokens[row])}” (token {row}) attends to:")
        self.row_bars.set_rows([(f"{label_of(tokens[j])}  ·{j}", float(weights[j])) for j in order])

    def export_png(self, path: str) -> bool:
        return self.heatmap.grab().save(path, "PNG")

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export heatmap", "attention.png", "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            if not self.export_png(path):
                self.context.notify("error", f"Could not write {path}.")
