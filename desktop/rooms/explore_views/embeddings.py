"""Embeddings: analogies (a : b :: c : ?), nearest neighbours, and 2-D maps of word pairs,
all from the model's input-embedding matrix (cosine over normalised vectors)."""
from __future__ import annotations

import json
import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QSplitter, QVBoxLayout,
    QWidget,
)

from engines.core.requests.explore import AnalogyRequest, NeighboursRequest, ProjectionRequest
from engines.core.resources import assets_dir
from desktop.rooms.explore_views.common import ACCENT, Card, ExploreView, ScoreBars, muted, pyqtgraph, style_plot
from desktop.widgets.panels import side_scroll
from desktop.widgets.palette import MUTED, QUIET_TEXT, SERIES_BLUE

FROM_COLOUR = SERIES_BLUE
TO_COLOUR = ACCENT
ANALOGIES = (
    ("man", "king", "woman"),
    ("France", "Paris", "Japan"),
    ("walk", "walked", "swim"),
    ("big", "bigger", "small"),
    ("brother", "sister", "father"),
)
CUSTOM = "Your own words"


def load_relations() -> list[dict]:
    try:
        return json.loads((assets_dir() / "explore" / "relations.json").read_text(encoding="utf-8"))["relations"]
    except (OSError, ValueError, KeyError):
        return []


def parse_pairs(text: str) -> list[list[str]]:
    """One pair per line ('man woman', 'man, woman' or 'man -> woman'); a single word is a lone point."""
    pairs = []
    for line in text.splitlines():
        words = [w for w in line.replace("->", " ").replace("→", " ").replace(",", " ").split() if w]
        if words:
            pairs.append(words[:2])
    return pairs


def split_note(words: list[dict]) -> str:
    split = [w for w in words if w.get("multi_token")]
    if not split:
        return ""
    parts = [f"“{w['word']}” = {' + '.join(repr(p) for p in w['pieces'])}" for w in split]
    return "Split into several tokens, so their vectors were averaged: " + ";  ".join(parts)


class EmbeddingsView(ExploreView):
    title = "Embeddings"
    lane = "embeddings"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.relations = load_relations()
        self.analogy_result: dict | None = None
        self.neighbours_result: dict | None = None
        self.projection_result: dict | None = None
        self._built_for: str | None = None
        self._asked: dict[str, int] = {}

        # -- analogy ---------------------------------------------------
        analogy = Card("Analogy   a : b :: c : ?")
        row = QHBoxLayout()
        self.a, self.b, self.c = (QLineEdit(text=w, maximumWidth=120) for w in ANALOGIES[0])
        for widget, sep in ((self.a, ":"), (self.b, "::"), (self.c, ": ?")):
            row.addWidget(widget)
            row.addWidget(QLabel(sep, objectName="Muted"))
        row.addStretch(1)
        self.solve = QPushButton("Solve", objectName="Primary")
        self.solve.clicked.connect(self.run_analogy)
        row.addWidget(self.solve)
        analogy.body.addLayout(row)
        tries = QHBoxLayout()
        tries.addWidget(QLabel("Try", objectName="Muted"))
        self.try_box = QComboBox()
        for a, b, c in ANALOGIES:
            self.try_box.addItem(f"{a} : {b} :: {c} : ?", (a, b, c))
        self.try_box.activated.connect(self._try_analogy)
        tries.addWidget(self.try_box, 1)
        analogy.body.addLayout(tries)
        self.analogy_caption = muted("The words nearest to b − a + c, by cosine; a, b and c themselves are left out.")
        analogy.body.addWidget(self.analogy_caption)
        self.analogy_note = QLabel(objectName="Note", wordWrap=True)
        self.analogy_note.hide()
        analogy.body.addWidget(self.analogy_note)
        self.analogy_bars = ScoreBars()
        analogy.body.addWidget(self.analogy_bars)
        for edit in (self.a, self.b, self.c):
            edit.returnPressed.connect(self.run_analogy)

        # -- neighbours ------------------------------------------------
        near = Card("Nearest neighbours")
        row = QHBoxLayout()
        self.word = QLineEdit(text="Paris", placeholderText="a word")
        self.word.returnPressed.connect(self.run_neighbours)
        self.find = QPushButton("Find")
        self.find.clicked.connect(self.run_neighbours)
        row.addWidget(self.word, 1)
        row.addWidget(self.find)
        near.body.addLayout(row)
        self.near_note = QLabel(objectName="Note", wordWrap=True)
        self.near_note.hide()
        near.body.addWidget(self.near_note)
        self.near_bars = ScoreBars()
        near.body.addWidget(self.near_bars)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(12)
        left_layout.addWidget(analogy)
        left_layout.addWidget(near)
        left_layout.addStretch(1)
        left_scroll = side_scroll(left)

        # -- map ---------------------------------------------------------
        plot_card = Card("Map of word pairs (PCA to 2-D)")
        row = QHBoxLayout()
        self.preset = QComboBox()
        for relation in self.relations:
            self.preset.addItem(relation["name"], relation["pairs"])
        self.preset.addItem(CUSTOM, None)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.plot_button = QPushButton("Plot", objectName="Primary")
        self.plot_button.clicked.connect(self.run_projection)
        row.addWidget(self.preset, 1)
        row.addWidget(self.plot_button)
        plot_card.body.addLayout(row)
        self.pairs_edit = QPlainTextEdit(placeholderText="One pair per line, e.g.\ncat kitten\ndog puppy\n(or one word per line for plain points)")
        self.pairs_edit.setMaximumHeight(90)
        plot_card.body.addWidget(self.pairs_edit)
        pg = pyqtgraph()
        self.plot = pg.PlotWidget()
        style_plot(self.plot)
        self.plot.getPlotItem().setAspectLocked(True)
        self.plot.setMinimumHeight(300)
        plot_card.body.addWidget(self.plot, 1)
        self.plot_caption = muted("Each arrow goes from a pair's first word (blue) to its second (orange). Parallel arrows of "
                                  "similar length mean the model encodes the relation as a direction.")
        plot_card.body.addWidget(self.plot_caption)
        self.plot_note = QLabel(objectName="Note", wordWrap=True)
        self.plot_note.hide()
        plot_card.body.addWidget(self.plot_note)
        self._preset_changed(0)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_scroll)
        splitter.addWidget(plot_card)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([420, 760])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addWidget(splitter)

    # -- context --------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        for button in (self.solve, self.find, self.plot_button):
            button.setEnabled(ready)
        if ready and self._built_for != self.model():
            self.run_all()

    def model_changed(self) -> None:
        if self.context.host.is_ready:
            self.run_all()

    def run_all(self) -> None:
        self._built_for = self.model()
        self.run_analogy()
        self.run_neighbours()
        self.run_projection()

    def _try_analogy(self, index: int) -> None:
        for edit, word in zip((self.a, self.b, self.c), self.try_box.itemData(index)):
            edit.setText(word)
        self.run_analogy()

    def _preset_changed(self, index: int) -> None:
        pairs = self.preset.itemData(index)
        if pairs is None:
            if not self.pairs_edit.toPlainText().strip():
                self.pairs_edit.setPlainText("cat kitten\ndog puppy\ncow calf\nsheep lamb\nhorse foal")
            self.pairs_edit.setFocus()
        else:
            self.pairs_edit.setPlainText("\n".join(" ".join(p) for p in pairs))
            if self.context.host.is_ready and self._built_for is not None:
                self.run_projection()

    # -- requests -------------------------------------------------------
    def _ask(self, kind: str, request: AnalogyRequest | NeighboursRequest | ProjectionRequest, show, on_error,
             label: str) -> None:
        """Send one request; only the newest answer of each kind is shown (an older one that
        arrives late is dropped)."""
        self._asked[kind] = seq = self._asked.get(kind, 0) + 1

        def deliver(data: dict) -> None:
            if self._asked.get(kind) == seq:
                show(data)

        def fail(error) -> None:
            if self._asked.get(kind) == seq:
                on_error(error)

        if self.jobs.checked(request, fail):
            self.jobs.call(self.lane, lambda c: c.explore(request), deliver, label=label, on_error=fail)

    def run_analogy(self) -> None:
        request = AnalogyRequest(a=self.a.text(), b=self.b.text(), c=self.c.text(), model=self.model(), top=10)
        self._ask("analogy", request, self._show_analogy, lambda e: self._error(self.analogy_note, self.analogy_bars, e),
                  "Solving the analogy")

    def run_neighbours(self) -> None:
        request = NeighboursRequest(word=self.word.text(), model=self.model(), top=10)
        self._ask("neighbours", request, self._show_neighbours, lambda e: self._error(self.near_note, self.near_bars, e),
                  "Finding neighbours")

    def run_projection(self) -> None:
        request = ProjectionRequest(pairs=parse_pairs(self.pairs_edit.toPlainText()), model=self.model())
        self._ask("projection", request, self._show_projection, lambda e: self._error(self.plot_note, None, e), "Mapping words")

    @staticmethod
    def _error(note: QLabel, bars: ScoreBars | None, error) -> None:
        note.setText(str(error))
        note.show()
        if bars is not None:
            bars.set_rows([])

    @staticmethod
    def _set_note(note: QLabel, text: str) -> None:
        note.setText(text)
        note.setVisible(bool(text))

    def _show_analogy(self, data: dict) -> None:
        self.analogy_result = data
        a, b, c = (w["word"] for w in data["inputs"])
        self.analogy_caption.setText(f"Nearest to  {b} − {a} + {c}  (cosine); {a}, {b} and {c} are left out.")
        self._set_note(self.analogy_note, split_note(data["inputs"]))
        self.analogy_bars.set_rows((r["word"], r["score"]) for r in data["results"])

    def _show_neighbours(self, data: dict) -> None:
        self.neighbours_result = data
        self._set_note(self.near_note, split_note([data["word"]]))
        self.near_bars.set_rows((r["word"], r["score"]) for r in data["results"])

    def _show_projection(self, data: dict) -> None:
        self.projection_result = data
        pg = pyqtgraph()
        item = self.plot.getPlotItem()
        item.clear()
        points = data["points"]
        arrows = data["arrows"]
        starts = {i for i, _ in arrows}
        ends = {j for _, j in arrows}
        for i, j in arrows:
            p, q = points[i], points[j]
            dx, dy = q["x"] - p["x"], q["y"] - p["y"]
            item.addItem(pg.PlotCurveItem([p["x"], q["x"]], [p["y"], q["y"]], pen=pg.mkPen((240, 138, 75, 130), width=2)))
            if math.hypot(dx, dy) > 0:
                angle = math.degrees(math.atan2(dy, -dx))  # ArrowItem: 0 points left; screen y grows down
                item.addItem(pg.ArrowItem(pos=(q["x"], q["y"]), angle=angle, headLen=13, tipAngle=32,
                                          pen=None, brush=pg.mkBrush(240, 138, 75, 200)))
        for i, p in enumerate(points):
            colour = FROM_COLOUR if i in starts else TO_COLOUR if i in ends else QUIET_TEXT
            brush = pg.mkBrush(colour) if not p["multi_token"] else pg.mkBrush(None)
            item.addItem(pg.ScatterPlotItem([p["x"]], [p["y"]], size=9, brush=brush, pen=pg.mkPen(colour, width=1.5)))
            label = pg.TextItem(p["word"] + (" *" if p["multi_token"] else ""), color=colour, anchor=(0.5, 1.3))
            label.setPos(p["x"], p["y"])
            item.addItem(label)
        ev = data.get("explained_variance", [0, 0])
        item.setLabel("bottom", f"PC1 · {ev[0] * 100:.0f}% of the variance", color=MUTED)
        item.setLabel("left", f"PC2 · {ev[1] * 100:.0f}%", color=MUTED)
        item.autoRange(padding=0.12)
        note = split_note(points)
        self._set_note(self.plot_note, note.replace("Split into", "* Split into") if note else "")
