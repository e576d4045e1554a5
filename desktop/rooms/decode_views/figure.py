"""The MinD-Vis Figure 1 layout: one row per test stimulus with its fMRI pattern, the low-level decode, the
reconstruction and the two controls, under column titles that stay put while the rows scroll."""
from __future__ import annotations

import base64

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from desktop.rooms.decode_views.common import BAD, GOOD

# (row key, column title, tooltip)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("stimulus", "Stimulus", "The image shown (held out: the decoder never trained on it)."),
    ("pattern", "fMRI pattern", "The response pattern as a flat map: early visual cortex on the left (retinotopic), "
                                "ventral cortex on the right; red above a voxel's mean, blue below."),
    ("lowlevel", "Low-level decode", "The decoded VAE latent, decoded to pixels: layout and colour, blurry."),
    ("decoded", "Reconstruction", "img2img from the low-level decode, steered by the decoded caption embedding."),
    ("oracle", "Oracle (ceiling)", "The same pipeline fed the true latent and caption: the best it can do."),
    ("shuffled", "Shuffled (floor)", "The pattern's voxels shuffled: what the pipeline makes of no information."),
)
CELL = 96
SPACING = 8
EMPTY = "Run the demo: each held-out stimulus gets a row with its simulated fMRI pattern and what the decoder recovers."


def pixmap(png_b64: str) -> QPixmap:
    image = QPixmap()
    if png_b64:
        image.loadFromData(base64.b64decode(png_b64), "PNG")
    return image


class FigureGrid(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict] = []
        self.cells: list[dict[str, QLabel]] = []
        self.captions: list[QLabel] = []
        self.pattern_width = int(CELL * 1.6)
        self.header = QWidget()
        self.header_row = QHBoxLayout(self.header)
        self.header_row.setContentsMargins(0, 0, 0, 0)
        self.header_row.setSpacing(SPACING)
        self.titles: dict[str, QLabel] = {}
        for key, title, tip in COLUMNS:
            label = QLabel(title, objectName="ColumnTitle", toolTip=tip, wordWrap=True)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
            self.titles[key] = label
            self.header_row.addWidget(label)
        self.header_row.addStretch(1)
        self.scroll = QScrollArea(widgetResizable=True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.empty = QLabel(EMPTY, objectName="Muted", wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.scroll.setWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.scroll, 1)
        self._size_columns()

    def _size_columns(self) -> None:
        for key, label in self.titles.items():
            label.setFixedWidth(self.pattern_width if key == "pattern" else CELL)

    def clear(self) -> None:
        self.rows, self.cells, self.captions = [], [], []
        self.empty = QLabel(EMPTY, objectName="Muted", wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.scroll.setWidget(self.empty)  # the old rows widget is deleted with it

    def set_rows(self, rows: list[dict], reconstructed: bool = True) -> None:
        self.clear()
        self.rows = rows
        self.titles["decoded"].setText("Reconstruction" if reconstructed else "Decoded (VAE only)")
        if not rows:
            return
        first = pixmap(rows[0].get("pattern", ""))
        if not first.isNull() and first.height():
            self.pattern_width = max(CELL, min(3 * CELL, round(first.width() * CELL / first.height())))
        self._size_columns()
        body = QWidget(objectName="FigureRows")
        grid = QGridLayout(body)
        grid.setContentsMargins(0, 4, 0, 8)
        grid.setHorizontalSpacing(SPACING)
        grid.setVerticalSpacing(2)
        for r, row in enumerate(rows):
            cells = {}
            for c, (key, title, _tip) in enumerate(COLUMNS):
                width = self.pattern_width if key == "pattern" else CELL
                label = QLabel(objectName="Cell")
                label.setFixedSize(width, CELL)
                image = first if (key == "pattern" and r == 0) else pixmap(row.get(key, ""))
                if not image.isNull():
                    mode = (Qt.TransformationMode.FastTransformation if key == "pattern"
                            else Qt.TransformationMode.SmoothTransformation)
                    label.setPixmap(image.scaled(width, CELL, Qt.AspectRatioMode.IgnoreAspectRatio, mode))
                label.setToolTip(f"{title} · test image {r + 1}")
                grid.addWidget(label, 2 * r, c)
                cells[key] = label
            caption = QLabel(self._caption(row), objectName="RowCaption", textFormat=Qt.TextFormat.RichText)
            grid.addWidget(caption, 2 * r + 1, 0, 1, len(COLUMNS))
            grid.setRowMinimumHeight(2 * r + 1, 22)
            self.cells.append(cells)
            self.captions.append(caption)
        grid.setColumnStretch(len(COLUMNS), 1)
        grid.setRowStretch(2 * len(rows), 1)
        self.scroll.setWidget(body)

    @staticmethod
    def _caption(row: dict) -> str:
        from html import escape

        truth = row.get("label") or row.get("caption") or ""
        decoded = row.get("decoded_label") or ""
        if not truth and not decoded:
            return ""
        text = f"true: <b>{escape(truth)}</b>" if truth else ""
        if decoded:
            right = decoded == truth
            mark = f"<span style='color:{GOOD if right else BAD}'>{'✓' if right else '✗'}</span>"
            text += f" &nbsp;·&nbsp; decoded: <b>{escape(decoded)}</b> {mark}"
        return text
