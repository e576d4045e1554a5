"""The Chat room: conversations, model choice, streaming replies, presets, export/import.

The room binds to the session's store (SQLite, light enough for the GUI thread), the host
manager (ready/crashed) and the job runner (everything that talks to the host). A reply streams
into the last bubble at most ~30 times a second; it is saved when it ends, however it ends.
Images attached to a message are stored as files (engines/store/chat_images.py) when it is sent, and
go to the host as OpenAI content parts with data: URLs, read and encoded on the job's worker thread.
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMessageBox, QSplitter, QVBoxLayout, QWidget

from engines.store.chat_images import ChatImage, ChatImageStore
from engines.store.conversations import Conversation, Message
from engines.core.errors import HearthError, HostError, RequestError
from engines.core.events import Log, Progress, Result, Token
from engines.core.requests.text import ChatRequest, LoadRequest
from engines.store.labels import LabelStore
from desktop.job_router import JobRouter
from desktop.jobs import Job
from desktop.session import Session
from desktop.widgets.composer import Composer
from desktop.widgets.background import FileWorker
from desktop.widgets.conversation_list import ConversationList
from desktop.widgets.image_thumbs import Attachment, ImageThumb, ThumbLoader
from desktop.widgets.message_view import MessageBubble, MessageView
from desktop.widgets.model_picker import ModelPicker
from desktop.widgets.sampling_panel import DEFAULT_SAMPLING, DEFAULT_SYSTEM_PROMPT, SamplingPanel, SystemPromptPanel
from desktop.widgets.panels import SideToggle, side_scroll

REPAINT_MS = 33  # ~30 repaints a second while tokens stream



@dataclass
class _Reply:
    job_id: str
    request_id: str
    conversation_id: int
    model: str
    bubble: MessageBubble | None
    text: str = ""
    meta: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    tokens: int = 0
    dirty: bool = False
    error: str = ""


class ChatRoom(QWidget):
    notified = Signal(str, str)  # level, text
    status_changed = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.store, self.settings, self.runner, self.host = session.conversations, session.settings, session.runner, session.host
        self.conversation: Conversation | None = None
        self.loaded: dict | None = None  # {"model", "backend", "requested", "context_length"}
        self.reply: _Reply | None = None
        self.jobs = JobRouter(session.runner, "chat", self)  # lanes: "chat.text" (load, reply, unload in order), "chat.host"
        self._reload_after_restart: dict | None = None
        self._loading: dict[str, str] = {}  # load job id -> requested model
        self._editing: Message | None = None
        self._applying = False
        self._search = ""
        self._storing = False  # a message's images are being stored before it goes

        self._build()
        self._restore()
        self.host.ready.connect(self._on_host_ready)
        self.host.crashed.connect(self._on_host_down)
        self.host.restarting.connect(self._update_composer)
        self._update_composer()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.conversation_list = ConversationList()
        self.conversation_list.selected.connect(self.open_conversation)
        self.conversation_list.new_requested.connect(self.new_conversation)
        self.conversation_list.rename_requested.connect(self.rename_conversation)
        self.conversation_list.delete_requested.connect(self.delete_conversation)
        self.conversation_list.export_requested.connect(self.export_conversation)
        self.conversation_list.import_requested.connect(self.import_conversation)
        self.conversation_list.search_changed.connect(self._on_search)

        center = QWidget()
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        top = QWidget(objectName="TopBar")
        top.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(16, 10, 16, 10)
        self.model_picker = ModelPicker()
        self.model_picker.load_requested.connect(self.load_model)
        self.model_picker.unload_requested.connect(self.unload_model)
        self.model_picker.refresh_requested.connect(lambda: self.refresh_models(refresh=True))
        self.model_picker.folders_requested.connect(self.edit_model_folders)
        top_row = QHBoxLayout()
        top_row.setContentsMargins(0, 0, 0, 0)
        top_row.addWidget(self.model_picker, 1)
        top_layout.addLayout(top_row)
        self.thumbs = ThumbLoader(self)
        self._files = FileWorker(self, name="chat-files")
        self.message_view = MessageView()
        self.message_view.image_thumb = self._message_thumb
        self.message_view.edit_requested.connect(self._begin_edit)
        self.message_view.regenerate_requested.connect(self.regenerate)
        self.labels = LabelStore(self.session.db)
        self.message_view.thumb_state = self.labels.chat_thumbs
        self.message_view.thumb_requested.connect(self.thumb_reply)
        self.composer = Composer(self.thumbs)
        self.composer.send_requested.connect(self.send)
        self.composer.stop_requested.connect(self.stop)
        self.composer.edit_cancelled.connect(lambda: self._end_edit(clear=True))
        column.addWidget(top)
        column.addWidget(self.message_view, 1)
        column.addWidget(self.composer)

        side = QWidget(objectName="SidePanel")
        side.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(14, 10, 14, 14)
        side_layout.setSpacing(14)
        self.system_prompt = SystemPromptPanel(self.settings)
        self.sampling = SamplingPanel(self.settings)
        model_box = QVBoxLayout()
        model_box.setSpacing(6)
        model_box.addWidget(QLabel("MODEL", objectName="SectionTitle"))
        model_box.addWidget(self.model_picker.options)
        side_layout.addLayout(model_box)
        side_layout.addWidget(self.system_prompt)
        side_layout.addWidget(self.sampling)
        side_layout.addStretch(1)
        side_panel = side_scroll(side)
        self._save_panels_timer = QTimer(self, singleShot=True, interval=400)
        self._save_panels_timer.timeout.connect(self._save_panels)
        self.system_prompt.changed.connect(self._panels_changed)
        self.sampling.changed.connect(self._panels_changed)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.conversation_list)
        self.splitter.addWidget(center)
        self.splitter.addWidget(side_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 660, 300])
        self.splitter.setChildrenCollapsible(False)
        self.settings_toggle = SideToggle(self.splitter, side_panel, "Settings",
                                          "Show or hide the model, system prompt and sampling settings")
        top_row.addWidget(self.settings_toggle, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self._repaint_timer = QTimer(self, interval=REPAINT_MS)
        self._repaint_timer.timeout.connect(self._repaint_reply)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def _restore(self) -> None:
        self._applying = True
        self.sampling.set_values({**DEFAULT_SAMPLING, "overflow": self.settings.get("overflow_policy") or "truncate",
                                  **(self.settings.get("chat.sampling", {}) or {})})
        self.system_prompt.set_text(self.settings.get("chat.system_prompt", "") or self.settings.get("default_system_prompt")
                                    or DEFAULT_SYSTEM_PROMPT)
        self._applying = False
        self.model_picker.prefer(self.settings.get("last_model") or "default", self.settings.get("backend") or "auto",
                                 self.settings.get("context_length") or 4096)
        self.model_picker.set_load_options(self.settings.get("load_options", {}) or {})
        state = self.settings.get("chat.splitter", "")
        if state:
            self.splitter.restoreState(QByteArray.fromBase64(state.encode("ascii")))
        self.refresh_conversations(select=self.settings.get("chat.last_conversation", None))
        if self.conversation is None and self.conversation_list.list.count():
            self.conversation_list.list.setCurrentRow(0)

    # ------------------------------------------------------------------ host state
    @property
    def busy(self) -> bool:
        return self.reply is not None or self._storing

    def _on_host_ready(self, _base_url: str, _key: str) -> None:
        self.model_picker.set_available(True)
        self.refresh_models()
        if self._reload_after_restart:
            again, self._reload_after_restart = self._reload_after_restart, None
            self.load_model(again["requested"], again["backend"], again["context_length"], reloading=True,
                            adapter=again.get("adapter", ""))
        self._update_composer()

    def _on_host_down(self, _message: str) -> None:
        if self.loaded:
            self._reload_after_restart = self.loaded
        self._set_loaded(None)
        self.model_picker.set_available(False)
        self._update_composer()

    def _update_composer(self) -> None:
        state = self.host.state
        if state == "ready":
            hint = "Generating… Esc stops." if self.busy else ""
        elif state == "restarting":
            hint = "engine host restarting…"
        elif state == "failed":
            hint = "The engine host could not be started; see the message above."
        else:
            hint = "engine host starting…"
        self.composer.set_state(self.host.is_ready, self.busy, hint)
        self.message_view.set_busy(self.busy)

    # ------------------------------------------------------------------ models
    def refresh_models(self, refresh: bool = False) -> None:
        if not self.host.is_ready:
            return
        self.jobs.call("host", lambda c: {"models": c.models(refresh=refresh), "memory": c.memory()},
                       lambda data: self.model_picker.set_models(data.get("models", []), data.get("memory")),
                       "Looking for models", self._report)

    def load_model(self, model: str, backend: str = "auto", context_length: int = 4096, reloading: bool = False,
                   adapter: str | None = None) -> str:
        request = LoadRequest(model=model, backend=backend, context_length=int(context_length),
                              **self.model_picker.load_options())
        if adapter is not None:
            request.adapter = adapter
        job: list[str] = []

        def done(how: str, error: HearthError | None) -> None:
            self._loading.pop(job[0], None)
            if how == "failed":
                self.notified.emit("error", f"The model did not load: {error}")
                if self.reply and self.jobs.active(self.reply.job_id):
                    self.reply.error = "the model did not load"
                    self.jobs.cancel(self.reply.job_id)

        job_id = self.jobs.call(
            "text", lambda c: {**c.load(request), "requested": model, "context_length": request.context_length,
                               "reloading": reloading, "adapter": request.adapter},
            self._model_loaded, f"Loading {model}" + (f" + {Path(request.adapter).name}" if request.adapter else ""), done)
        if job_id:
            job.append(job_id)
            self._loading[job_id] = _load_key(model, request.adapter)
        return job_id or ""

    def chat_with_adapter(self, adapter: str, base: str = "") -> None:
        """Load a Tune run's adapter on its base model (the Tune room's "Chat with this")."""
        self.model_picker.choose_adapter(adapter, base)
        if self.host.is_ready:
            self.load_model(self.model_picker.current_model() or base or "default", self.model_picker.backend.currentText(),
                            self.model_picker.context.value())
        else:
            self.notified.emit("info", f"{Path(adapter).name} loads with the next reply, once the engine host is ready.")

    def edit_model_folders(self) -> None:
        from engines.core import paths
        from desktop.widgets.model_folders import ModelFoldersDialog

        dialog = ModelFoldersDialog(list(self.settings.get("model_folders") or []), str(paths.models_dir()), self)
        if dialog.exec():
            self.settings.set("model_folders", dialog.folders())
            self.refresh_models(refresh=True)

    def unload_model(self) -> None:
        if self.loaded:
            model = self.loaded["model"]
            self.jobs.call("text", lambda c: c.unload(model), self._model_unloaded, f"Unloading {model}", self._report)

    def _set_loaded(self, loaded: dict | None) -> None:
        self.loaded = loaded
        self.host.loaded_model = loaded["model"] if loaded else ""
        self.model_picker.set_loaded(loaded)

    # ------------------------------------------------------------------ conversations
    def refresh_conversations(self, select: int | None = None) -> None:
        conversations = self.store.list(self._search)
        current = select if select is not None else (self.conversation.id if self.conversation else None)
        self.conversation_list.set_conversations(conversations, current)
        if select is not None and any(c.id == select for c in conversations):
            self.open_conversation(select)

    def _on_search(self, text: str) -> None:
        self._search = text
        self.refresh_conversations()

    def open_conversation(self, conversation_id: int | None) -> None:
        if self._save_panels_timer.isActive():  # edits belong to the conversation they were made in
            self._save_panels_timer.stop()
            self._save_panels()
        self._end_edit(clear=False)
        if conversation_id is None:
            self.conversation = None
            self.message_view.set_messages([])
            return
        try:
            self.conversation = self.store.get(conversation_id)
        except HearthError as exc:
            self.notified.emit("error", str(exc))
            return
        self.settings.set("chat.last_conversation", conversation_id)
        self.message_view.set_messages(self.conversation.messages)
        if self.reply and self.reply.conversation_id == conversation_id:  # still streaming into it
            self.reply.bubble = self.message_view.add_message(Message("assistant", self.reply.text))
        elif self.reply:
            self.reply.bubble = None
        self._applying = True
        if self.conversation.system_prompt:
            self.system_prompt.set_text(self.conversation.system_prompt)
        if self.conversation.settings:
            self.sampling.set_values(self.conversation.settings)
        self._applying = False
        self._update_composer()

    def new_conversation(self) -> Conversation:
        conv = self.store.create("New chat", self.system_prompt.text(), self.model_picker.current_model(), self.sampling.values())
        self._search = ""
        self.conversation_list.search_box.blockSignals(True)
        self.conversation_list.search_box.clear()
        self.conversation_list.search_box.blockSignals(False)
        self.refresh_conversations(select=conv.id)
        self.composer.editor.setFocus()
        return conv

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self.store.rename(conversation_id, title)
        if self.conversation and self.conversation.id == conversation_id:
            self.conversation.title = title

    def delete_conversation(self, conversation_id: int, confirm: bool = True) -> None:
        if confirm:
            title = next((c.title for c in self.store.list() if c.id == conversation_id), "this conversation")
            answer = QMessageBox.question(self, "Delete conversation", f"Delete “{title}” and all its messages?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        if self.reply and self.reply.conversation_id == conversation_id:
            self.reply.error = "discard"
            self.jobs.cancel(self.reply.job_id)
        self.store.delete(conversation_id)
        if self.conversation and self.conversation.id == conversation_id:
            self.conversation = None
            self.message_view.set_messages([])
        self.refresh_conversations()
        if self.conversation is None and self.conversation_list.list.count():
            self.conversation_list.list.setCurrentRow(0)

    def export_conversation(self, conversation_id: int, kind: str) -> None:
        conv = self.store.get(conversation_id)
        suffix, label = (".json", "JSON (*.json)") if kind == "json" else (".md", "Markdown (*.md)")
        start = str(Path.home() / (_safe_filename(conv.title) + suffix))
        path, _ = QFileDialog.getSaveFileName(self, "Export conversation", start, label)
        if not path:
            return
        if not path.endswith(suffix):
            path += suffix
        try:
            (self.store.export_json if kind == "json" else self.store.export_markdown)(conversation_id, path)
        except (HearthError, OSError) as exc:
            self.notified.emit("error", f"Could not export to {path}: {exc}")
            return
        self.notified.emit("info", f"Exported “{conv.title}” to {path}")

    def import_conversation(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import conversation", str(Path.home()),
                                              "Hearth conversations (*.json *.md *.markdown)")
        if not path:
            return
        try:
            conv = self.store.import_file(path)
        except HearthError as exc:
            self.notified.emit("error", str(exc))
            return
        self.refresh_conversations(select=conv.id)
        self.notified.emit("info", f"Imported “{conv.title}” ({len(conv.messages)} messages)")

    def _panels_changed(self) -> None:
        if not self._applying:
            self._save_panels_timer.start()

    def _save_panels(self) -> None:
        values, prompt = self.sampling.values(), self.system_prompt.text()
        self.settings.set("chat.sampling", values)
        self.settings.set("chat.system_prompt", prompt)
        if self.conversation:
            self.store.update(self.conversation.id, system_prompt=prompt, settings=values)

    # ------------------------------------------------------------------ images
    def attach(self, attachments: list[Attachment]) -> None:
        """Put images in the composer (the Image room's and the Decode room's "Send to Chat")."""
        self.composer.add_attachments(attachments)
        self.composer.editor.setFocus()

    def _message_thumb(self, image: ChatImage) -> ImageThumb:
        images = self.store.images
        path = str(images.path(image)) if images.exists(image) else None
        note = (f"{image.name or 'This image'} is missing: {image.file or 'its file'} is no longer in {images.folder} "
                "(deleted or moved). The model gets a note instead; attach it again to show it.")
        return ImageThumb(self.thumbs, path or image.file, path, image.name or image.file, 96, missing_note=note)

    def _vision_refusal(self) -> str:
        """Why the chosen model cannot take images ("" when it can, or when the registry does not say)."""
        entry = self.model_picker.current_entry() or {}
        if entry.get("vision") is False:  # an entry without the flag: the host decides, and says so if not
            name = entry.get("name") or entry.get("id") or "This model"
            return (f"{name} is text-only: it cannot see images. Choose a model marked “vision” in the model list, "
                    "or remove the images. Your message and images are still in the composer.")
        return ""

    # ------------------------------------------------------------------ sending
    def send(self, text: str) -> None:
        attachments = self.composer.attachments()
        if self.busy or not self.host.is_ready or not (text.strip() or attachments):
            return
        if attachments and (refusal := self._vision_refusal()):
            self.notified.emit("error", refusal)
            return
        if not attachments:
            self._send(text, [])
            return
        # Reading, hashing and writing a photo takes tens of ms: on the file thread, then the send goes on here.
        # Stored before an edit truncates the conversation, so a bad image loses nothing.
        self._storing = True
        self._update_composer()
        images = self.store.images

        def stored(result, error) -> None:
            self._storing = False
            if error is not None:
                self.notified.emit("error", str(error) if isinstance(error, HearthError)
                                   else f"Could not store the images in {images.folder}: {error}")
                self._update_composer()
                return
            self._send(text, result)

        self._files.submit(lambda: store_attachments(attachments, images), stored)

    def _send(self, text: str, images: list[ChatImage]) -> None:
        if self._save_panels_timer.isActive():
            self._save_panels_timer.stop()
            self._save_panels()
        if self.conversation is None:
            self.new_conversation()
        conv = self.conversation
        edited = self._editing is not None
        if edited:
            self.store.truncate_from(conv.id, self._editing.id, prune=False)  # the images may be coming back
            bubble = next((b for b in self.message_view.bubbles if b.message.id == self._editing.id), None)
            if bubble:
                self.message_view.remove_from(bubble)
            self._end_edit(clear=False)
        if not self.store.get(conv.id).messages and conv.title == "New chat":
            conv.title = _title_from(text or "Picture: " + ", ".join(i.name for i in images))
            self.store.rename(conv.id, conv.title)
        message = self.store.add_message(conv.id, "user", text, images=images)
        if edited:
            self.store.prune_images()  # what the edit dropped and did not bring back
        self.message_view.add_message(message)
        self.composer.set_text("")
        self.composer.clear_attachments()
        self._start_reply()
        # The list shows the new title a moment later: refreshing it here would lengthen the
        # one GUI-thread block that sending is (measured by benchmarks/ui_stall.py).
        QTimer.singleShot(0, self.refresh_conversations)

    def regenerate(self) -> None:
        if self.busy or not self.host.is_ready or not self.conversation or not self.message_view.bubbles:
            return
        last = self.message_view.bubbles[-1]
        if last.message.role != "assistant":
            return
        if last.message.id is not None:
            self.store.truncate_from(self.conversation.id, last.message.id)
        self.message_view.remove_from(last)
        self._start_reply()

    def stop(self) -> None:
        if self._editing is not None and not self.busy:
            self._end_edit(clear=True)
            return
        if self.reply:
            self.jobs.cancel(self.reply.job_id)
            self.status_changed.emit("Stopping…")

    def _start_reply(self) -> None:
        conv = self.store.get(self.conversation.id)
        requested = self.model_picker.current_model() or "default"
        backend, context_length = self.model_picker.backend.currentText(), self.model_picker.context.value()
        wanted = _load_key(requested, self.model_picker.adapter.current_adapter())
        already = _load_key((self.loaded or {}).get("requested"), (self.loaded or {}).get("adapter", "")) == wanted \
            or wanted in self._loading.values()
        if not already:
            self.load_model(requested, backend, context_length)
            model = requested
        else:
            model = self.loaded["model"] if self.loaded else requested
        system = self.system_prompt.text().strip()
        history = [Message("system", system)] if system else []
        history += [m for m in conv.messages if (m.content or m.images) and m.role != "system"]
        missing = sum(not self.store.images.exists(i) for m in history for i in m.images)
        if missing:
            self.notified.emit("warning", f"{missing} image(s) of this conversation are missing from {self.store.images.folder}; "
                                          "the model gets a note in their place.")
        sampling = self.sampling.values()
        request = ChatRequest(request_id=uuid.uuid4().hex, model=model, conversation_id=str(conv.id),
                              **{k: v for k, v in sampling.items() if v is not None})
        self.store.update(conv.id, model=requested)
        bubble = self.message_view.add_message(Message("assistant", ""))
        images = self.store.images

        def run(client):  # on the job's worker thread: reading and base64-encoding images never stalls the window
            request.messages = [request_message(m, images) for m in history]
            return client.stream_chat(request)

        job = Job("chat.text", run, label="Generating reply", request_id=request.request_id)
        self.reply = _Reply(job.id, request.request_id, conv.id, requested, bubble)
        if self.jobs.submit(job, lambda event: self._on_reply_event(job.id, event),
                            lambda how, error: self._finish_reply(job.id, how, error)) is None:
            self.reply = None  # the window is closing
        self._update_composer()

    def thumb_reply(self, message: Message, up: bool | None) -> None:
        """A thumb on a reply is a label in the Tune room's store; its prompt is the conversation before it."""
        if message.id is None or self.conversation is None:
            return
        before = []
        for m in self.store.get(self.conversation.id).messages:
            if m.id == message.id:
                break
            if m.role != "system" and m.content:
                before.append({"role": m.role, "content": m.content})
        if not before:
            return
        prompt = before[0]["content"] if len(before) == 1 else before
        self.labels.thumb_chat_reply(message.id, up, prompt, message.content, model=str(message.meta.get("model", "")))
        self.status_changed.emit({True: "Marked as a good reply", False: "Marked as a bad reply", None: "Thumb removed"}[up])

    def _begin_edit(self, message: Message) -> None:
        if self.busy or message.id is None:
            return
        self._editing = message
        self.composer.set_text(message.content)
        self.composer.clear_attachments()
        self.composer.add_attachments([Attachment(i.name or i.file, path=str(self.store.images.path(i)))
                                       for i in message.images if self.store.images.exists(i)])
        self.composer.set_editing(True)
        self.composer.editor.setFocus()

    def _end_edit(self, clear: bool) -> None:
        if self._editing is not None and clear:
            self.composer.set_text("")
            self.composer.clear_attachments()
        self._editing = None
        self.composer.set_editing(False)

    # ------------------------------------------------------------------ jobs
    def _on_reply_event(self, job_id: str, event) -> None:
        reply = self.reply
        if reply is None or reply.job_id != job_id:
            return
        if isinstance(event, Token):
            reply.text += event.text
            reply.tokens += 1
            reply.dirty = True
            if not self._repaint_timer.isActive():
                self._repaint_timer.start()
        elif isinstance(event, Result):
            reply.meta = {**event.data, "finish_reason": event.finish_reason}
            reply.meta.pop("text", None)
            if event.data.get("text"):
                reply.text = event.data["text"]
                reply.dirty = True
        elif isinstance(event, (Progress, Log)):
            self.status_changed.emit(getattr(event, "message", "") or "Working…")

    def _model_loaded(self, data: dict) -> None:
        info = data.get("info") or {}
        adapter = (info.get("load") or {}).get("adapter") or data.get("adapter") or ""
        self._set_loaded({"model": data.get("model") or data["requested"], "backend": data.get("backend", "?"),
                          "requested": data["requested"], "context_length": data["context_length"],
                          "name": info.get("name") or "", "adapter": adapter})
        self.settings.set("last_model", data["requested"])
        self.settings.set("backend", self.model_picker.backend.currentText())
        self.settings.set("context_length", data["context_length"])
        self.settings.set("load_options", self.model_picker.load_options())
        if data.get("reloading"):
            self.notified.emit("info", f"The engine host is back; {self.loaded['model']} is loaded again.")
        self._check_memory()

    def _model_unloaded(self, _data: dict) -> None:
        self._set_loaded(None)
        self._check_memory()

    def _check_memory(self) -> None:
        self.jobs.call("host", lambda c: c.memory(), self.model_picker.set_memory, "Checking memory", self._report)

    def _report(self, how: str, error: HearthError | None) -> None:
        """A failed host call, unless it failed because the host is restarting (the status bar says so)."""
        if how == "failed" and not (isinstance(error, HostError) and not self.host.is_ready):
            self.notified.emit("error", str(error))

    def _repaint_reply(self) -> None:
        reply = self.reply
        if reply is None:
            self._repaint_timer.stop()
            return
        if reply.dirty and reply.bubble is not None:
            reply.bubble.set_text(reply.text)
            reply.dirty = False
        elapsed = time.monotonic() - reply.started
        self.status_changed.emit(f"Generating… {reply.tokens} tokens" + (f", {reply.tokens / elapsed:.1f} tok/s" if elapsed > 0.5 else ""))

    def _finish_reply(self, job_id: str, how: str, error: HearthError | None) -> None:
        reply = self.reply
        if reply is None or reply.job_id != job_id:
            return
        self.reply = None
        self._repaint_timer.stop()
        meta = {**reply.meta, "model": reply.meta.get("model") or (self.loaded or {}).get("model") or reply.model}
        if how == "cancelled":
            meta.setdefault("finish_reason", "cancelled")
            if reply.error and reply.error != "discard":
                meta.update(interrupted=True, error=reply.error)
        elif how == "failed":
            meta.update(interrupted=True, error=_first_line(str(error)))
            self.notified.emit("error", f"The reply was interrupted: {error}"
                               + (" The partial reply is kept." if reply.text else ""))
        self._save_reply(reply, meta)
        self._update_composer()
        self.status_changed.emit({"finished": "Reply done", "cancelled": "Reply stopped", "failed": "Reply interrupted"}[how])

    def _save_reply(self, reply: _Reply, meta: dict) -> None:
        if reply.error == "discard":
            return
        try:
            message = self.store.add_message(reply.conversation_id, "assistant", reply.text, meta)
        except (sqlite3.DatabaseError, HearthError):
            return  # the conversation was deleted meanwhile
        if reply.bubble is not None:
            reply.bubble.message.id = message.id
            reply.bubble.set_text(reply.text)
            reply.bubble.set_meta(meta)
            self.message_view.set_busy(False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.model_picker.adapter.refresh()  # runs finished in the Tune room since

    def shutdown(self) -> None:
        """Keep what was streaming (marked interrupted) and the layout, before the host goes away."""
        self.model_picker.adapter.shutdown()
        self.thumbs.shutdown()
        self._files.shutdown()
        self._save_panels_timer.stop()
        self._save_panels()
        self.settings.set("chat.splitter", bytes(self.splitter.saveState().toBase64()).decode("ascii"))
        if self.reply is not None:
            reply, self.reply = self.reply, None
            self._repaint_timer.stop()
            self._save_reply(reply, {**reply.meta, "interrupted": True, "error": "Hearth was closed during the reply"})


def store_attachments(attachments: list[Attachment], images: ChatImageStore) -> list[ChatImage]:
    """The composer's images stored beside the database (on the file thread); a HearthError naming the one that failed."""
    stored = []
    for attachment in attachments:
        try:
            data = attachment.read()
        except OSError as exc:
            raise RequestError(f"Cannot read {attachment.path or attachment.name}: {exc.strerror or exc}.",
                               hint="Remove it from the message or attach it again.") from exc
        stored.append(images.add(data, attachment.name))
    return stored


def request_message(message: Message, images: ChatImageStore) -> dict:
    """A message as the host takes it: plain text, or OpenAI content parts (images as data: URLs, then the text)."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts = []
    for image in message.images:
        if images.exists(image):
            parts.append({"type": "image_url", "image_url": {"url": images.data_url(image)}})
        else:
            parts.append({"type": "text", "text": f"[An image ({image.name or 'unnamed'}) was here; its file is missing.]"})
    if message.content:
        parts.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": parts}


def _load_key(model: str | None, adapter: str) -> str:
    """What a load is of: the model, plus the adapter on it."""
    return f"{model}+{adapter}" if adapter else str(model)


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 48 else line[:47].rstrip() + "…"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _safe_filename(title: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in title).strip()
    return keep[:60] or "conversation"
