"""Tokens: the text as the model sees it -- coloured spans, ids, counts, characters per token,
the chat template's special tokens, and a second model's tokenizer side by side."""
from __future__ import annotations

import html

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QTextBrowser, QVBoxLayout, QWidget,
)

from engines.core.requests.explore import TokensRequest
from desktop.rooms.explore_views.common import TOKEN_COLOURS, Card, ExploreView, mono_font, muted
from desktop.widgets.panels import eliding
from desktop.widgets.palette import ACCENT_LIGHT, ACCENT_TOKEN, TOKEN_ID, TOKEN_TEXT

SAMPLES = {
    "A sentence": "Hearth runs language models on your own computer. A tokenizer cuts text into pieces before the model reads it.",
    "Rare and long words": "Antidisestablishmentarianism is unbelievably long; 'cat' and 'the' are one token each.",
    "Numbers and code": "for i in range(10):\n    total += i * 3.14159  # 2025-06-01, 1,234,567",
    "Other languages": "Bonjour, ça va ? Guten Morgen! こんにちは世界 Привет, мир",
    "Emoji and symbols": "I ❤️ tokens 🙂🚀 — “quotes”, ½ and ∑",
}
DEBOUNCE_MS = 300
MAX_SPANS = 3000  # laying out more coloured spans than this would hold up the window


def spans_html(tokens: list[dict], show_ids: bool) -> str:
    """The tokens as coloured inline spans; special tokens in the accent style; newlines kept."""
    parts = []
    for i, t in enumerate(tokens):
        text = t["text"]
        shown = html.escape(text).replace("\t", "→&nbsp;&nbsp;&nbsp;").replace(" ", "&nbsp;")
        shown = shown.replace("\r", "").replace("\n", "↵<br/>")
        if not text:
            shown = "∅"
        if t.get("special"):
            style = f"background-color:{ACCENT_TOKEN}; color:{ACCENT_LIGHT}; font-weight:600;"
        else:
            style = f"background-color:{TOKEN_COLOURS[i % len(TOKEN_COLOURS)]}; color:{TOKEN_TEXT};"
        ids = f"<sub style=f'color:{TOKEN_ID}; font-size:7pt;'>{t['id']}</sub>" if show_ids else ""
        parts.append(f"<span style='{style}'>{shown}{ids}</span>")
    return ("<div style='font-family:\"DejaVu Sans Mono\",monospace; font-size:11pt; line-height:160%;'>"
            + "".join(parts) + "</div>")


class TokenPanel(Card):
    """One model's tokens of the text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.title = QLabel(objectName="RoleLabel")
        self.title.setProperty("role", "assistant")
        self.body.addWidget(self.title)
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(28)
        self.count, self.chars, self.ratio = (QLabel("–", objectName="BigNumber") for _ in range(3))
        for column, (label, caption) in enumerate(((self.count, "tokens"), (self.chars, "characters"),
                                                   (self.ratio, "characters per token"))):
            numbers.addWidget(label, 0, column)
            numbers.addWidget(QLabel(caption, objectName="BigNumberCaption"), 1, column)
        numbers.setColumnStretch(3, 1)
        self.body.addLayout(numbers)
        self.spans = QTextBrowser(objectName="TokenSpans", openLinks=False)
        self.spans.setMinimumHeight(150)
        self.body.addWidget(self.spans, 1)
        self.ids = QPlainTextEdit(readOnly=True, objectName="Code", maximumHeight=74)
        self.ids.setFont(mono_font(9))
        self.body.addWidget(self.ids)
        self.note = muted()
        self.body.addWidget(self.note)
        self.result: dict | None = None

    def show_result(self, name: str, result: dict, show_ids: bool) -> None:
        self.result = result
        self.title.setText(name)
        self.count.setText(f"{result['count']:,}")
        self.chars.setText(f"{result['chars']:,}")
        self.ratio.setText(f"{result['chars_per_token']:.2f}")
        tokens = result["tokens"]
        self.spans.setHtml(spans_html(tokens[:MAX_SPANS], show_ids))
        self.ids.setPlainText(", ".join(str(t["id"]) for t in tokens[:MAX_SPANS * 4]))
        special = sorted({t["text"] for t in tokens if t["special"]})
        note = ("Special tokens (from the chat template): " + "  ".join(special)) if special else \
            "No special tokens: tick “Chat template” to see what the model really receives in a chat."
        if len(tokens) > MAX_SPANS:
            note = f"Showing the first {MAX_SPANS:,} of {len(tokens):,} tokens. " + note
        self.note.setText(note)

    def show_message(self, name: str, text: str) -> None:
        self.title.setText(name)
        self.note.setText(text)


class TokensView(ExploreView):
    title = "Tokens"
    lane = "tokens"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._jobs: dict[str, str | None] = {"a": None, "b": None}
        self._dirty = False
        self.results: dict[str, dict] = {}

        input_card = Card("Text")
        self.editor = QPlainTextEdit(placeholderText="Type or paste text…")
        self.editor.setFont(mono_font(10.5))
        self.editor.setMaximumHeight(120)
        self.editor.setPlainText(SAMPLES["A sentence"])
        input_card.body.addWidget(self.editor)
        options = QHBoxLayout()
        self.samples = eliding(QComboBox(toolTip="Example texts that tokenize in telling ways"), 6)
        self.samples.addItem("Examples…")
        self.samples.addItems(list(SAMPLES))
        self.samples.activated.connect(self._use_sample)
        self.chat = QCheckBox("Chat template", toolTip="Wrap the text in the model's chat template, as a chat does: "
                                                       "its special tokens show in orange")
        self.show_ids = QCheckBox("Ids in the text", toolTip="Write each token's id after it")
        self.compare = eliding(QComboBox(toolTip="A second model: see how its tokenizer splits the same text"), 9)
        self.compare.addItem("— none —", "")
        options.addWidget(self.samples)
        options.addSpacing(8)
        options.addWidget(self.chat)
        options.addWidget(self.show_ids)
        options.addStretch(1)
        options.addWidget(QLabel("Compare with", objectName="Muted"))
        options.addWidget(self.compare)
        input_card.body.addLayout(options)

        self.panel_a, self.panel_b = TokenPanel(), TokenPanel()
        self.panel_b.hide()
        panels = QHBoxLayout()
        panels.setSpacing(12)
        panels.addWidget(self.panel_a, 1)
        panels.addWidget(self.panel_b, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(input_card)
        layout.addLayout(panels, 1)

        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.run)
        self.editor.textChanged.connect(self._timer.start)
        self.chat.toggled.connect(self.run)
        self.show_ids.toggled.connect(self._repaint)
        self.compare.currentIndexChanged.connect(self.run)

    # -- context --------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        if ready:
            self.run()
        else:
            self.panel_a.show_message(self.context.model_name(self.model()), "Waiting for the engine host…")

    def model_changed(self) -> None:
        self.run()

    def models_listed(self, models: list[dict]) -> None:
        current = self.compare.currentData()
        self.compare.blockSignals(True)
        self.compare.clear()
        self.compare.addItem("— none —", "")
        for m in models:
            self.compare.addItem(m.get("name") or m["id"], m["id"])
        self.compare.setCurrentIndex(max(0, self.compare.findData(current)))
        self.compare.blockSignals(False)

    def _use_sample(self, index: int) -> None:
        if index > 0:
            self.editor.setPlainText(SAMPLES[self.samples.itemText(index)])
        self.samples.setCurrentIndex(0)

    # -- work -----------------------------------------------------------
    def run(self) -> None:
        if not self.context.host.is_ready:
            return
        if any(self.jobs.active(j) for j in self._jobs.values()):
            self._dirty = True  # one run at a time; the newest text goes next
            return
        self._dirty = False
        text = self.editor.toPlainText()
        pairs = [("a", self.model())]
        second = self.compare.currentData()
        if second:
            pairs.append(("b", second))
        self.panel_b.setVisible(bool(second))
        for key, model in pairs:
            request = TokensRequest(text=text, model=model, chat=self.chat.isChecked())
            if not self.jobs.checked(request, lambda error, key=key: self._failed(key, error)):
                continue
            self._jobs[key] = self.jobs.call(
                self.lane, lambda c, request=request: c.explore(request),
                lambda data, key=key: self._show(key, data), label="Tokenizing",
                on_error=lambda error, key=key: self._failed(key, error), on_done=self._done)

    def _done(self, _how: str) -> None:
        if self._dirty and not any(self.jobs.active(j) for j in self._jobs.values()):
            QTimer.singleShot(0, self.run)

    def _show(self, key: str, data: dict) -> None:
        self.results[key] = data
        panel = self.panel_a if key == "a" else self.panel_b
        panel.show_result(self.context.model_name(data.get("model", "")), data, self.show_ids.isChecked())

    def _failed(self, key: str, error) -> None:
        panel = self.panel_a if key == "a" else self.panel_b
        panel.show_message(self.context.model_name(self.model() if key == "a" else self.compare.currentData()), str(error))

    def _repaint(self) -> None:
        for key, panel in (("a", self.panel_a), ("b", self.panel_b)):
            if key in self.results:
                panel.show_result(self.context.model_name(self.results[key].get("model", "")), self.results[key],
                                  self.show_ids.isChecked())
