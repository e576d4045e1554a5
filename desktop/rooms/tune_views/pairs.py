"""Blind A/B labelling: two replies to one prompt, in random order; 1 / 2 / T / S / Z from the keyboard.

The queue holds every pair of replies (within one prompt) that no live label covers yet -- a
pairwise judgement or a ranking that implies it -- shuffled across prompts, sides swapped at
random so position says nothing about which sampling setting wrote a reply.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QStackedWidget, QTextBrowser, QVBoxLayout, QWidget,
)

from engines.store.labels import Candidate, LabelStore, Prompt, ranking_to_pairs
from desktop.rooms.tune_views.common import muted

KEYS = {Qt.Key.Key_1: "a", Qt.Key.Key_2: "b", Qt.Key.Key_T: "tie", Qt.Key.Key_S: "skip"}


@dataclass
class PairTask:
    prompt: Prompt
    left: Candidate
    right: Candidate


def covered_pairs(store: LabelStore) -> set[frozenset[int]]:
    """Pairs of replies some live label already speaks for (skips count: the user saw them)."""
    seen: set[frozenset[int]] = set()
    for label in store.labels():
        if label.kind == "pair":
            seen.add(frozenset((label.a_id, label.b_id)))
        elif label.kind == "ranking":
            seen.update(frozenset((p.winner, p.loser)) for p in ranking_to_pairs(label.ranking))
    return seen


def pair_tasks(store: LabelStore, set_id: int, rng: random.Random) -> tuple[list[PairTask], int]:
    """(pending pairs of the set in random order with random sides, the set's total number of pairs)."""
    seen = covered_pairs(store)
    tasks, total = [], 0
    for prompt in store.prompts(set_id):
        for a, b in combinations(store.candidates(prompt.id), 2):
            total += 1
            if frozenset((a.id, b.id)) not in seen:
                tasks.append(PairTask(prompt, *((a, b) if rng.random() < 0.5 else (b, a))))
    rng.shuffle(tasks)
    return tasks, total


def as_markdown(value) -> str:
    """Text, or a chat-message list shown as labelled turns."""
    if isinstance(value, str):
        return value
    return "\n\n".join(f"**{m.get('role', '')}:** {m.get('content', '')}" for m in value)


def key_cap(text: str) -> QLabel:
    label = QLabel(text, objectName="KeyCap")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


class ReplyCard(QFrame):
    def __init__(self, tag: str, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReplyCard")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 12)
        layout.setSpacing(6)
        head = QHBoxLayout()
        head.addWidget(QLabel(f"Reply {tag}", objectName="ReplyTag"))
        head.addStretch(1)
        if key:  # a card that is only shown (not chosen with a key) has no hint
            head.addWidget(muted("press", wrap=False))
            head.addWidget(key_cap(key))
        layout.addLayout(head)
        self.text = QTextBrowser(objectName="ReplyText", openExternalLinks=True)
        self.text.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(self.text, 1)

    def set_text(self, markdown: str) -> None:
        self.text.setMarkdown(markdown or "*(empty reply)*")


def prompt_box(parent: QWidget | None = None) -> tuple[QFrame, QTextBrowser, QLabel]:
    box = QFrame(parent, objectName="PromptBox")
    layout = QVBoxLayout(box)
    layout.setContentsMargins(14, 8, 14, 8)
    layout.setSpacing(2)
    caption = muted("PROMPT", wrap=False)
    caption.setObjectName("SectionTitle")
    layout.addWidget(caption)
    text = QTextBrowser(objectName="PromptText")
    text.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    text.setMaximumHeight(110)
    # As tall as the prompt needs (up to the maximum), so a one-line prompt leaves room for the replies.
    text.document().documentLayout().documentSizeChanged.connect(
        lambda size: text.setFixedHeight(min(110, int(size.height()) + 12)))
    layout.addWidget(text)
    return box, text, caption


class PairView(QWidget):
    """One pair at a time; every key press is committed to the store before the next pair shows."""

    labelled = Signal()  # the store changed (a label, or an undo)

    def __init__(self, store: LabelStore, parent: QWidget | None = None, seed: int | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.rng = random.Random(seed)
        self.set_id: int | None = None
        self.tasks: list[PairTask] = []
        self.total = 0
        self.history: list[tuple[int, PairTask]] = []  # (label id, task) of this session's pair labels
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.progress = QProgressBar(objectName="TuneProgress", textVisible=False)
        self.progress_label = muted(wrap=False)
        top = QHBoxLayout()
        top.addWidget(self.progress_label)
        top.addWidget(self.progress, 1)

        self.box, self.prompt_text, _ = prompt_box()
        self.card_a, self.card_b = ReplyCard("A", "1"), ReplyCard("B", "2")
        cards = QHBoxLayout()
        cards.setSpacing(12)
        cards.addWidget(self.card_a, 1)
        cards.addWidget(self.card_b, 1)

        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        self.buttons: dict[str, QPushButton] = {}
        for outcome, text, tip in (("a", "A is better   1", "Reply A is better (key 1)"),
                                   ("tie", "Tie   T", "Both are as good (key T)"),
                                   ("skip", "Skip   S", "Can't tell or don't care; don't ask again (key S)"),
                                   ("b", "B is better   2", "Reply B is better (key 2)")):
            button = QPushButton(text, objectName="Choice", toolTip=tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, o=outcome: self.choose(o))
            self.buttons[outcome] = button
            buttons.addWidget(button, 2 if outcome in ("a", "b") else 1)
        self.undo_button = QPushButton("Undo   Z", objectName="Flat", toolTip="Take back the last label (key Z)")
        self.undo_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.undo_button.clicked.connect(self.undo)
        buttons.addSpacing(12)
        buttons.addWidget(self.undo_button)

        work = QWidget()
        column = QVBoxLayout(work)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(10)
        column.addLayout(top)
        column.addWidget(self.box)
        column.addLayout(cards, 1)
        column.addLayout(buttons)

        self.empty = QWidget()
        empty = QVBoxLayout(self.empty)
        empty.addStretch(1)
        self.empty_title = QLabel("", objectName="RoomSubtitle", alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty_hint = muted()
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.addWidget(self.empty_title)
        empty.addWidget(self.empty_hint)
        self.empty_undo = QPushButton("Undo the last label   Z", objectName="Flat")
        self.empty_undo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.empty_undo.clicked.connect(self.undo)
        empty.addWidget(self.empty_undo, 0, Qt.AlignmentFlag.AlignHCenter)
        empty.addStretch(2)

        self.stack = QStackedWidget()
        self.stack.addWidget(work)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    # -- queue ------------------------------------------------------------------------
    def load(self, set_id: int | None) -> None:
        """(Re)build the queue for a prompt set, e.g. after new replies were generated; the pair on
        screen stays first (same sides) if it is still unlabelled."""
        showing = self.current if set_id == self.set_id else None
        self.set_id = set_id
        self.tasks, self.total = pair_tasks(self.store, set_id, self.rng) if set_id is not None else ([], 0)
        if showing is not None:
            key = {showing.left.id, showing.right.id}
            index = next((i for i, t in enumerate(self.tasks) if {t.left.id, t.right.id} == key), None)
            if index is not None:
                self.tasks.pop(index)
                self.tasks.insert(0, showing)
        self._show()

    @property
    def current(self) -> PairTask | None:
        return self.tasks[0] if self.tasks else None

    def _show(self) -> None:
        done = self.total - len(self.tasks)
        self.progress.setRange(0, max(1, self.total))
        self.progress.setValue(done)
        self.progress_label.setText(f"{done} of {self.total} pairs labelled" if self.total else "")
        task = self.current
        if task is None:
            if self.set_id is None:
                self.empty_title.setText("Choose a prompt set")
                self.empty_hint.setText("Start with the starter set, import a CSV/JSONL file, or use your chat questions.")
            elif self.total == 0:
                self.empty_title.setText("No replies to compare yet")
                self.empty_hint.setText("Generate two or more replies per prompt with the model (on the left).")
            else:
                self.empty_title.setText("Every pair in this set is labelled ✓")
                self.empty_hint.setText("Generate more replies, rank them, or go on to Train.")
            self.empty_undo.setVisible(bool(self.store.labels()))
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentIndex(0)
        self.prompt_text.setMarkdown(as_markdown(task.prompt.prompt))
        self.card_a.set_text(as_markdown(task.left.completion))
        self.card_b.set_text(as_markdown(task.right.completion))

    # -- actions ----------------------------------------------------------------------
    def choose(self, outcome: str, meta: dict | None = None) -> int | None:
        """Label the current pair (``a`` = the left reply is better); returns the label id. ``meta`` is
        stored with the label (the guided path's scripted labeler marks its labels there)."""
        task = self.current
        if task is None:
            return None
        label_id = self.store.judge(task.left.id, task.right.id, outcome, meta=meta)  # committed before we move on
        self.tasks.pop(0)
        self.history.append((label_id, task))
        self._show()
        self.labelled.emit()
        return label_id

    def undo(self) -> None:
        label = self.store.undo()
        if label is None:
            return
        if label.kind == "pair" and self.history and self.history[-1][0] == label.id:
            _, task = self.history.pop()
            self.tasks.insert(0, task)  # ask again, same sides
        elif label.kind == "pair" and self.set_id is not None and self.store.prompt(label.prompt_id).set_id == self.set_id:
            left, right = self.store.candidate(label.a_id), self.store.candidate(label.b_id)
            self.tasks.insert(0, PairTask(self.store.prompt(label.prompt_id), left, right))
        elif self.set_id is not None:
            self.load(self.set_id)  # a ranking or thumb was taken back: the queue may grow
        self._show()
        self.labelled.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            return super().keyPressEvent(event)
        if event.key() in KEYS:
            self.choose(KEYS[event.key()])
        elif event.key() == Qt.Key.Key_Z:
            self.undo()
        else:
            super().keyPressEvent(event)
