"""K-way ranking: drag the replies into order (best at the top), mark ties, submit with Enter.

A ranking is stored as one label (groups of tied replies, best first); the store expands it to
every pairwise comparison it implies, so one ranking of K replies gives K*(K-1)/2 pairs.
"""
from __future__ import annotations

import random

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QPainter, QPen, QTextOption
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QStackedWidget,
    QStyle, QStyledItemDelegate, QStyleOptionViewItem, QVBoxLayout, QWidget,
)

from engines.store.labels import LabelStore, Prompt
from desktop.rooms.tune_views.common import ACCENT, MUTED, TEXT, muted
from desktop.rooms.tune_views.pairs import as_markdown, prompt_box
from desktop.widgets.palette import ACCENT_WASH, CARD, EDGE_STRONG, LINE, ON_ACCENT

CANDIDATE = Qt.ItemDataRole.UserRole
TIED = Qt.ItemDataRole.UserRole + 1  # ties with the item above
MAX_LINES = 7


def ranked_prompts(store: LabelStore, set_id: int, rng: random.Random) -> list[Prompt]:
    """The set's prompts with three or more replies and no live ranking yet, in random order."""
    ranked = {label.prompt_id for label in store.labels(kind="ranking")}
    out = [p for p in store.prompts(set_id) if p.id not in ranked and len(store.candidates(p.id)) >= 3]
    rng.shuffle(out)
    return out


class RankDelegate(QStyledItemDelegate):
    """A card per reply: its rank badge (tied replies share a number) and the first lines of the text."""

    PAD, BADGE = 10, 26

    def _ranks(self, view: QListWidget) -> list[int]:
        ranks, rank = [], 0
        for row in range(view.count()):
            if row == 0 or not view.item(row).data(TIED):
                rank = row + 1
            ranks.append(rank)
        return ranks

    def _text_rect(self, rect: QRect) -> QRect:
        return rect.adjusted(self.PAD * 2 + self.BADGE, self.PAD, -self.PAD, -self.PAD)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        width = max(200, (option.widget.viewport().width() if option.widget else 600) - 12)
        metrics = QFontMetrics(option.font)
        text_width = width - self.PAD * 3 - self.BADGE
        bound = metrics.boundingRect(QRect(0, 0, text_width, 10_000), int(Qt.TextFlag.TextWordWrap), index.data())
        height = min(bound.height(), metrics.lineSpacing() * MAX_LINES)
        return QSize(width, max(height, self.BADGE) + self.PAD * 2 + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        view = option.widget
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(option.rect.adjusted(2, 2, -2, -2))
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(QPen(QColor(ACCENT if selected else LINE), 1))
        painter.setBrush(QColor(ACCENT_WASH if selected else CARD))
        painter.drawRoundedRect(rect, 8, 8)
        rank = self._ranks(view)[index.row()] if view is not None else index.row() + 1
        tied = bool(index.data(TIED)) and index.row() > 0
        badge = QRectF(option.rect.left() + self.PAD + 2, option.rect.top() + self.PAD + 2, self.BADGE, self.BADGE)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(ACCENT if rank == 1 else EDGE_STRONG))
        painter.drawEllipse(badge)
        painter.setPen(QColor(ON_ACCENT if rank == 1 else TEXT))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, str(rank))
        if tied:
            painter.setPen(QColor(MUTED))
            painter.drawText(QRectF(badge.left() - 4, badge.bottom() + 2, self.BADGE + 8, 16), Qt.AlignmentFlag.AlignCenter, "tie")
        font.setBold(False)
        painter.setFont(font)
        painter.setPen(QColor(TEXT))
        text_rect = QRectF(self._text_rect(option.rect))
        metrics = QFontMetrics(font)
        text = index.data() or ""
        lines = metrics.boundingRect(self._text_rect(option.rect), int(Qt.TextFlag.TextWordWrap), text).height() // max(1, metrics.lineSpacing())
        if lines > MAX_LINES:  # cut at a word and say so
            while text and metrics.boundingRect(self._text_rect(option.rect), int(Qt.TextFlag.TextWordWrap), text + " …").height() > metrics.lineSpacing() * MAX_LINES:
                text = text[: int(len(text) * 0.9)].rsplit(" ", 1)[0]
            text += " …"
        option_text = QTextOption()
        option_text.setWrapMode(QTextOption.WrapMode.WordWrap)
        painter.drawText(text_rect, text, option_text)
        painter.restore()


class RankList(QListWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RankList")
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setItemDelegate(RankDelegate(self))
        self.setWordWrap(True)
        self.model().rowsMoved.connect(lambda *_: self.viewport().update())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.doItemsLayout()  # wrapped heights follow the width


class RankView(QWidget):
    labelled = Signal()

    def __init__(self, store: LabelStore, parent: QWidget | None = None, seed: int | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.rng = random.Random(seed)
        self.set_id: int | None = None
        self.queue: list[Prompt] = []
        self.total = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.progress_label = muted(wrap=False)
        self.box, self.prompt_text, _ = prompt_box()
        self.list = RankList()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        hint = muted("Drag replies into order, best at the top  ·  Ctrl+↑/↓ moves the selected one  ·  "
                     "= ties it with the one above  ·  Enter submits  ·  S skips  ·  Z undoes")
        buttons = QHBoxLayout()
        for text, tip, slot in (("↑", "Move the selected reply up (Ctrl+Up)", lambda: self.move_selected(-1)),
                                ("↓", "Move the selected reply down (Ctrl+Down)", lambda: self.move_selected(1)),
                                ("= Tie with above", "Rank the selected reply equal to the one above (=)", self.toggle_tie)):
            button = QPushButton(text, toolTip=tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        for text, tip, slot, name in (("Undo   Z", "Take back the last label (Z)", self.undo, "Flat"),
                                      ("Skip   S", "Next prompt without ranking (S)", self.skip, ""),
                                      ("Submit ranking   ⏎", "Save this order (Enter)", self.submit, "Primary")):
            button = QPushButton(text, toolTip=tip, objectName=name)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(slot)
            buttons.addWidget(button)

        work = QWidget()
        column = QVBoxLayout(work)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(10)
        column.addWidget(self.progress_label)
        column.addWidget(self.box)
        column.addWidget(self.list, 1)
        column.addWidget(hint)
        column.addLayout(buttons)

        self.empty = QWidget()
        empty = QVBoxLayout(self.empty)
        empty.addStretch(1)
        self.empty_title = QLabel("", objectName="RoomSubtitle", alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty_hint = muted()
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.addWidget(self.empty_title)
        empty.addWidget(self.empty_hint)
        empty.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(work)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    def load(self, set_id: int | None) -> None:
        self.set_id = set_id
        self.queue = ranked_prompts(self.store, set_id, self.rng) if set_id is not None else []
        self.total = len(self.queue)
        self._show()

    @property
    def current(self) -> Prompt | None:
        return self.queue[0] if self.queue else None

    def _show(self) -> None:
        prompt = self.current
        if prompt is None:
            self.empty_title.setText("Nothing to rank" if self.set_id is not None else "Choose a prompt set")
            self.empty_hint.setText("Ranking needs three or more replies per prompt: raise “Replies per prompt” and "
                                    "generate. Prompts you ranked already are not asked again.")
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentIndex(0)
        self.progress_label.setText(f"{len(self.queue)} prompts left to rank")
        self.prompt_text.setMarkdown(as_markdown(prompt.prompt))
        self.list.clear()
        candidates = self.store.candidates(prompt.id)
        self.rng.shuffle(candidates)
        for c in candidates:
            item = QListWidgetItem(as_markdown(c.completion).strip() or "(empty reply)")
            item.setData(CANDIDATE, c.id)
            item.setData(TIED, False)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsDragEnabled)
            self.list.addItem(item)
        self.list.setCurrentRow(0)

    def order(self) -> list[int]:
        return [self.list.item(row).data(CANDIDATE) for row in range(self.list.count())]

    def groups(self) -> list[list[int]]:
        out: list[list[int]] = []
        for row in range(self.list.count()):
            item = self.list.item(row)
            if row > 0 and item.data(TIED):
                out[-1].append(item.data(CANDIDATE))
            else:
                out.append([item.data(CANDIDATE)])
        return out

    def move_selected(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)

    def toggle_tie(self) -> None:
        item = self.list.currentItem()
        if item is not None and self.list.currentRow() > 0:
            item.setData(TIED, not item.data(TIED))
            self.list.viewport().update()

    def submit(self) -> int | None:
        if self.current is None:
            return None
        label_id = self.store.rank(self.groups())
        self.queue.pop(0)
        self._show()
        self.labelled.emit()
        return label_id

    def skip(self) -> None:
        if self.queue:
            skipped = self.queue.pop(0)
            if self.queue:
                self.queue.append(skipped)  # asked again after the others
            self._show()

    def undo(self) -> None:
        label = self.store.undo()
        if label is None:
            return
        if self.set_id is not None:
            self.load(self.set_id)
            if label.kind == "ranking":  # show the prompt just taken back first
                for i, p in enumerate(self.queue):
                    if p.id == label.prompt_id:
                        self.queue.insert(0, self.queue.pop(i))
                        self._show()
                        break
        self.labelled.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.move_selected(-1 if key == Qt.Key.Key_Up else 1)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            row = self.list.currentRow() + (-1 if key == Qt.Key.Key_Up else 1)
            if 0 <= row < self.list.count():
                self.list.setCurrentRow(row)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submit()
        elif key == Qt.Key.Key_S:
            self.skip()
        elif key == Qt.Key.Key_Z:
            self.undo()
        elif key == Qt.Key.Key_Equal:
            self.toggle_tie()
        else:
            super().keyPressEvent(event)
