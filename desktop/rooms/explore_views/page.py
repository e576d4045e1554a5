"""Code -> live page: describe a layout, the model writes HTML/CSS, and the page renders beside
the code as it streams.

The generated code is untrusted, so the preview is Qt's rich-text renderer (QTextBrowser: a
subset of HTML 4 and CSS 2, no JavaScript engine at all) with every resource load refused -- no
network, no files -- and links inert. Scripts and event handlers are also stripped before
rendering, so they do not even show as text.
"""
from __future__ import annotations

import re
import uuid

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSpinBox, QSplitter, QTextBrowser, QVBoxLayout, QWidget,
)

from engines.core.events import Result, Token
from engines.core.requests.explore import PageRequest
from desktop.rooms.explore_views.common import Card, ExploreView, mono_font, muted

DESCRIPTIONS = {
    "Bakery landing page": "A landing page for a bakery with a big orange heading, a short welcome paragraph and a list of three breads.",
    "Profile card": "A profile card for a cat called Milo with a blue border, his age and his favourite food.",
    "Pricing table": "A pricing table with three plans (Basic, Pro, Team), their prices per month and one feature each.",
    "Event invitation": "An invitation to a garden party on Saturday at 4 pm, with a green title and a short list of what to bring.",
}
REPAINT_MS = 200

_SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|$)", re.IGNORECASE | re.DOTALL)
_ACTIVE_TAGS = re.compile(r"</?(?:iframe|object|embed|applet|link|meta|base|form|frame|frameset)\b[^>]*>", re.IGNORECASE)
_HANDLERS = re.compile(r"""\s+on[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_JS_URLS = re.compile(r"""(href|src)\s*=\s*(["']?)\s*(?:javascript|vbscript|data):[^"'\s>]*\2""", re.IGNORECASE)


_STYLE = re.compile(r"<style\b[^>]*>(.*?)(?:</style\s*>|$)", re.IGNORECASE | re.DOTALL)
_FRAME = re.compile(r"<!DOCTYPE[^>]*>|</?(?:html|head|body)\b[^>]*>|<title\b.*?(?:</title\s*>|$)", re.IGNORECASE | re.DOTALL)


def safe_html(text: str) -> str:
    """The page with scripts, embedded frames/objects, event handlers and script URLs removed."""
    text = _SCRIPT.sub("", text)
    text = _ACTIVE_TAGS.sub("", text)
    text = _HANDLERS.sub("", text)
    return _JS_URLS.sub(r'\1="#"', text)


def preview_html(code: str) -> str:
    """A safe, well-formed document from a page that may be half written.

    Small models often put the body inside an unclosed <head> (which Qt would not show), and a
    streaming page is cut anywhere; so the CSS of every <style> block goes into one head and
    everything else into the body.
    """
    text = safe_html(code)
    css = "\n".join(m.group(1) for m in _STYLE.finditer(text))
    body = _FRAME.sub("", _STYLE.sub("", text))
    return f"<html><head><style>{css}</style></head><body>{body}</body></html>"


class SafePreview(QTextBrowser):
    """QTextBrowser that never loads anything: images, stylesheets and links stay inert."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PagePreview")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.blocked: list[str] = []

    def loadResource(self, kind: int, url):  # noqa: N802 (Qt's name)
        if url.toString() not in self.blocked:
            self.blocked.append(url.toString())
        return None


class PageView(ExploreView):
    title = "Code → page"
    lane = "page"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.code = ""
        self.done = False
        self._job: str | None = None
        self._dirty = False
        self._ready = False

        top = Card("Describe a layout")
        row = QHBoxLayout()
        self.description = QPlainTextEdit(DESCRIPTIONS["Bakery landing page"])
        self.description.setMaximumHeight(64)
        row.addWidget(self.description, 1)
        buttons = QVBoxLayout()
        self.generate_button = QPushButton("Write the page", objectName="Primary")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop", enabled=False)
        self.stop_button.clicked.connect(lambda: self.jobs.cancel(self._job))
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        top.body.addLayout(row)
        options = QHBoxLayout()
        self.presets = QComboBox()
        self.presets.addItem("Ideas…")
        self.presets.addItems(list(DESCRIPTIONS))
        self.presets.activated.connect(self._use_preset)
        options.addWidget(self.presets)
        options.addSpacing(10)
        options.addWidget(QLabel("Max tokens", objectName="Muted"))
        self.max_tokens = QSpinBox(minimum=50, maximum=4000, value=400, singleStep=50)
        options.addWidget(self.max_tokens)
        options.addSpacing(16)
        self.status = muted("The prompt shows the model one small example page, then your description; it writes the "
                            "rest of a new page.")
        options.addWidget(self.status, 1)
        top.body.addLayout(options)

        code_card = Card("HTML / CSS, as it streams")
        self.code_view = QPlainTextEdit(readOnly=True, objectName="Code")
        self.code_view.setFont(mono_font(9.5))
        self.code_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        code_card.body.addWidget(self.code_view, 1)
        preview_card = Card("Live preview")
        self.preview = SafePreview()
        preview_card.body.addWidget(self.preview, 1)
        preview_card.body.addWidget(muted("Rendered by Qt's rich-text engine (a subset of HTML and CSS). The code is untrusted: "
                                          "scripts never run and nothing is loaded — no network, no files."))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(code_card)
        splitter.addWidget(preview_card)
        splitter.setSizes([560, 640])
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(top)
        layout.addWidget(splitter, 1)
        self._timer = QTimer(self, interval=REPAINT_MS)
        self._timer.timeout.connect(self._repaint)

    def set_ready(self, ready: bool) -> None:
        self._ready = ready
        self.generate_button.setEnabled(ready and not self.jobs.active(self._job))

    def _use_preset(self, index: int) -> None:
        if index > 0:
            self.description.setPlainText(DESCRIPTIONS[self.presets.itemText(index)])
        self.presets.setCurrentIndex(0)

    def generate(self) -> None:
        if self.jobs.active(self._job):
            return
        request_id = uuid.uuid4().hex
        request = PageRequest(description=self.description.toPlainText(), model=self.model(),
                              max_tokens=self.max_tokens.value(), request_id=request_id)
        if not self.jobs.checked(request, self._failed):
            return
        self.code, self.done = "", False
        self.code_view.clear()
        self.preview.clear()
        self.generate_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Writing…")
        self._timer.start()
        self._job = self.jobs.stream(self.lane, lambda c: c.stream_page(request), self._on_event,
                                     label="Writing a page", on_done=self._finished, request_id=request_id,
                                     on_error=self._failed)

    def _failed(self, error) -> None:
        self.status.setText(str(error))

    def _on_event(self, event) -> None:
        if isinstance(event, Token):
            self.code += event.text
            self._dirty = True
        elif isinstance(event, Result):
            self.code = event.data.get("text", self.code)
            self._dirty = True
            n = event.data.get("completion_tokens", 0)
            speed = event.data.get("tokens_per_s") or 0
            how = {"length": " (stopped at the token limit)", "cancelled": " (stopped)"}.get(event.finish_reason, "")
            self.status.setText(f"{n} tokens at {speed:.0f} tokens/s{how}.")

    def _repaint(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.code_view.setPlainText(self.code)
        self.code_view.verticalScrollBar().setValue(self.code_view.verticalScrollBar().maximum())
        self.preview.setHtml(preview_html(self.code))

    def _finished(self, _how: str) -> None:
        self._repaint()
        self._timer.stop()
        self.done = True
        self.generate_button.setEnabled(self._ready)
        self.stop_button.setEnabled(False)

    def shutdown(self) -> None:
        self._timer.stop()
        self.jobs.cancel(self._job)
