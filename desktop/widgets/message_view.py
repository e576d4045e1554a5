"""The conversation as a column of message bubbles with Markdown bodies.

Each body is a QTextBrowser sized to its document, so the column scrolls as one page; code
blocks get a monospace font and a darker background.
"""
from __future__ import annotations

import functools

import math
from typing import Callable, Iterable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication, QIcon, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QTextBrowser, QToolButton, QVBoxLayout, QWidget,
)

from engines.store.chat_images import ChatImage
from engines.store.conversations import Message
from engines.core.resources import resource
from desktop.widgets.palette import CODE_BACKGROUND, EDGE

ICONS = resource("desktop", "icons")
CODE_BACKGROUND = QColor(CODE_BACKGROUND)
INLINE_CODE_BACKGROUND = QColor(EDGE)


class MarkdownView(QTextBrowser):
    """Read-only Markdown whose height follows its content (no inner scroll bar)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBody")
        self.setOpenExternalLinks(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._fixed_font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._text = ""

    def set_markdown(self, text: str) -> None:
        if text == self._text:
            return
        self._text = text
        self.setMarkdown(text)
        self._style_code()

    def _style_code(self) -> None:
        doc = self.document()
        cursor = QTextCursor(doc)
        cursor.beginEditBlock()
        block = doc.begin()
        while block.isValid():
            fmt = block.blockFormat()
            if fmt.hasProperty(QTextFormat.Property.BlockCodeFence) or fmt.nonBreakableLines():
                cursor.setPosition(block.position())
                code_block = QTextBlockFormat()
                code_block.setBackground(CODE_BACKGROUND)
                code_block.setLeftMargin(6)
                code_block.setRightMargin(6)
                cursor.mergeBlockFormat(code_block)
                cursor.setPosition(block.position() + max(0, block.length() - 1), QTextCursor.MoveMode.KeepAnchor)
                code_char = QTextCharFormat()
                code_char.setFont(self._fixed_font)
                code_char.setBackground(CODE_BACKGROUND)
                cursor.mergeCharFormat(code_char)
            else:
                it = block.begin()
                while not it.atEnd():
                    fragment = it.fragment()
                    if fragment.isValid() and fragment.charFormat().fontFixedPitch():
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                        inline = QTextCharFormat()
                        inline.setFont(self._fixed_font)
                        inline.setBackground(INLINE_CODE_BACKGROUND)
                        cursor.mergeCharFormat(inline)
                    it += 1
            block = block.next()
        cursor.endEditBlock()

    def _fit_height(self, size) -> None:
        self.setFixedHeight(math.ceil(size.height()) + 2 * self.frameWidth() + 2)

    def wheelEvent(self, event) -> None:  # let the conversation scroll, not this fixed-height view
        event.ignore()


@functools.cache
def _thumb_icon(up: bool) -> QIcon:
    """Built once: parsing the SVGs for every new message cost several ms on the GUI thread."""
    name = "thumb-up" if up else "thumb-down"
    icon = QIcon(str(ICONS / f"{name}.svg"))
    icon.addFile(str(ICONS / f"{name}-on.svg"), QSize(), QIcon.Mode.Normal, QIcon.State.On)
    return icon


class MessageBubble(QFrame):
    edit_requested = Signal(object)  # Message
    regenerate_requested = Signal()
    thumb_requested = Signal(object, object)  # Message, True (up) | False (down) | None (cleared)

    def __init__(self, message: Message, parent: QWidget | None = None,
                 image_thumb: Callable[[ChatImage], QWidget] | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.setObjectName("Bubble")
        self.setProperty("role", message.role)
        layout = QVBoxLayout(self)
        margin = 12 if message.role == "user" else 4
        layout.setContentsMargins(margin, 8, margin, 8)
        layout.setSpacing(4)

        header = QHBoxLayout()
        header.setSpacing(2)
        self.role_label = QLabel({"user": "You", "assistant": "Assistant", "system": "System"}.get(message.role, message.role))
        self.role_label.setObjectName("RoleLabel")
        self.role_label.setProperty("role", message.role)
        header.addWidget(self.role_label)
        header.addStretch(1)
        self.copy_button = self._action("Copy", "Copy this message", self._copy)
        header.addWidget(self.copy_button)
        self.edit_button = self._action("Edit", "Edit this message and resend it (drops what follows)",
                                        lambda: self.edit_requested.emit(self.message))
        self.edit_button.setVisible(message.role == "user")
        header.addWidget(self.edit_button)
        self.regenerate_button = self._action("Regenerate", "Write this reply again", self.regenerate_requested.emit)
        self.regenerate_button.setVisible(False)
        header.addWidget(self.regenerate_button)
        # Thumbs feed the Tune room's label store (a reply you liked is one to learn from).
        self.thumb_buttons = {up: self._thumb_button(up) for up in (True, False)}
        for button in self.thumb_buttons.values():
            button.setVisible(message.role == "assistant")
            button.setEnabled(message.id is not None)
            header.addWidget(button)
        layout.addLayout(header)

        self.image_thumbs: list[QWidget] = []
        if message.images and image_thumb is not None:
            row = QHBoxLayout()
            row.setSpacing(6)
            self.image_thumbs = [image_thumb(image) for image in message.images]
            for thumb in self.image_thumbs:
                row.addWidget(thumb)
            row.addStretch(1)
            layout.addLayout(row)

        self.body = MarkdownView(self)
        layout.addWidget(self.body)
        self.stats_label = QLabel(objectName="Stats")
        self.stats_label.setVisible(False)
        layout.addWidget(self.stats_label)
        self.set_text(message.content)
        self.set_meta(message.meta)

    def _action(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton(text=text, objectName="Flat", toolTip=tip)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(slot)
        return button

    def _thumb_button(self, up: bool) -> QToolButton:
        button = QToolButton(objectName="Flat", checkable=True, icon=_thumb_icon(up), iconSize=QSize(14, 14),
                             toolTip="Good reply (a label for the Tune room)" if up else "Bad reply (a label for the Tune room)")
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(lambda checked: self._on_thumb(up, checked))
        return button

    def _on_thumb(self, up: bool, checked: bool) -> None:
        self.set_thumb(up if checked else None)
        self.thumb_requested.emit(self.message, up if checked else None)

    def set_thumb(self, up: bool | None) -> None:
        for value, button in self.thumb_buttons.items():
            button.setChecked(up is value)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.message.content)

    def set_text(self, text: str) -> None:
        self.message.content = text
        self.body.set_markdown(text if text else "…")
        self.body.setVisible(bool(text) or not self.image_thumbs)  # a picture sent without words has no "…" under it

    def set_meta(self, meta: dict) -> None:
        self.message.meta = dict(meta)
        line = format_stats(meta)
        self.stats_label.setText(line)
        self.stats_label.setVisible(bool(line))
        interrupted = bool(meta.get("interrupted"))
        if self.stats_label.property("interrupted") != interrupted:
            self.stats_label.setProperty("interrupted", interrupted)
            self.stats_label.style().unpolish(self.stats_label)
            self.stats_label.style().polish(self.stats_label)

    def set_actions_enabled(self, enabled: bool) -> None:
        self.edit_button.setEnabled(enabled)
        self.regenerate_button.setEnabled(enabled)
        for button in self.thumb_buttons.values():
            button.setEnabled(enabled and self.message.id is not None)


def format_stats(meta: dict) -> str:
    """The line under an assistant reply: tokens, speed, time to first token, why it stopped."""
    parts = []
    if meta.get("completion_tokens") is not None:
        parts.append(f"{meta['completion_tokens']} tokens")
    if meta.get("tokens_per_s"):
        parts.append(f"{float(meta['tokens_per_s']):.1f} tok/s")
    if meta.get("ttft_s") is not None:
        parts.append(f"first token {float(meta['ttft_s']):.2f} s")
    if meta.get("prompt_tokens") is not None:
        parts.append(f"prompt {meta['prompt_tokens']} tokens")
    if meta.get("dropped_messages"):
        parts.append(f"{meta['dropped_messages']} old messages dropped to fit")
    reason = meta.get("finish_reason")
    if reason == "length":
        parts.append("stopped at max tokens")
    elif reason == "cancelled":
        parts.append("stopped by you")
    if meta.get("model"):
        parts.append(str(meta["model"]))
    if meta.get("interrupted"):
        parts.insert(0, f"⚠ interrupted: {meta.get('error') or 'the reply did not finish'}")
    return "  ·  ".join(parts)


class MessageView(QScrollArea):
    edit_requested = Signal(object)  # Message
    regenerate_requested = Signal()
    thumb_requested = Signal(object, object)  # Message, True | False | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageList")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QWidget(objectName="MessageList")
        row = QHBoxLayout(outer)
        row.setContentsMargins(24, 16, 24, 16)
        self._column = QWidget(objectName="MessageList")
        self._column.setMaximumWidth(880)
        self._layout = QVBoxLayout(self._column)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(14)
        self._layout.addStretch(1)
        row.addStretch(1)
        row.addWidget(self._column, 100)
        row.addStretch(1)
        self.setWidget(outer)

        self.empty_state = QWidget(objectName="EmptyState")
        empty = QVBoxLayout(self.empty_state)
        empty.setContentsMargins(0, 140, 0, 0)
        empty.setSpacing(10)
        title = QLabel("Start a conversation", objectName="RoomTitle")
        hint = QLabel("Pick a model above (it loads on first Send), write below.\n"
                      "Enter sends · Shift+Enter adds a line · Esc stops a reply.", objectName="Hint")
        for label in (title, hint):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            empty.addWidget(label)
        self._layout.insertWidget(0, self.empty_state)

        self.bubbles: list[MessageBubble] = []
        self.thumb_state: Callable[[Iterable[int]], dict[int, bool]] | None = None  # message ids -> thumbs given
        self.image_thumb: Callable[[ChatImage], QWidget] | None = None  # a message image's thumbnail
        self._stick_to_bottom = True
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def set_messages(self, messages: list[Message]) -> None:
        for bubble in self.bubbles:
            bubble.setParent(None)
            bubble.deleteLater()
        self.bubbles = []
        for message in messages:
            self.add_message(message)
        if self.thumb_state is not None:
            thumbs = self.thumb_state([m.id for m in messages if m.role == "assistant" and m.id is not None])
            for bubble in self.bubbles:
                bubble.set_thumb(thumbs.get(bubble.message.id))
        self._stick_to_bottom = True
        self._update_actions()

    def add_message(self, message: Message) -> MessageBubble:
        bubble = MessageBubble(message, self._column, self.image_thumb)
        bubble.edit_requested.connect(self.edit_requested)
        bubble.regenerate_requested.connect(self.regenerate_requested)
        bubble.thumb_requested.connect(self.thumb_requested)
        self._layout.insertWidget(self._layout.count() - 1, bubble)
        self.bubbles.append(bubble)
        self._stick_to_bottom = True
        self._update_actions()
        return bubble

    def remove_from(self, bubble: MessageBubble) -> None:
        index = self.bubbles.index(bubble)
        for gone in self.bubbles[index:]:
            gone.setParent(None)
            gone.deleteLater()
        del self.bubbles[index:]
        self._update_actions()

    def set_busy(self, busy: bool) -> None:
        for bubble in self.bubbles:
            bubble.set_actions_enabled(not busy)

    def _update_actions(self) -> None:
        self.empty_state.setVisible(not self.bubbles)
        for i, bubble in enumerate(self.bubbles):
            last = i == len(self.bubbles) - 1
            bubble.regenerate_button.setVisible(last and bubble.message.role == "assistant")

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick_to_bottom:
            self.verticalScrollBar().setValue(maximum)
