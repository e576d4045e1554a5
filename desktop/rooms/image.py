"""The Image room: prompt and parameters, live step previews, queue, gallery, PNG drag-and-drop.

Every generation is a job on the "image" lane that streams the engine host's
/hearth/image/generate events; previews arrive as small PNGs and are painted at most ~10 times
a second (the newest wins). The gallery reads the SQLite index directly (engines.store.gallery):
browsing never waits for the host.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QMenu, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox, QSplitter, QToolButton,
    QVBoxLayout, QWidget,
)

from engines.core.errors import HearthError, RequestError
from engines.core.events import Preview, Progress, Result
from engines.core.requests.image import MODES, SCHEDULERS, ImageRequest, LoraSpec
from engines.store.gallery import Gallery
from desktop.job_router import JobRouter
from desktop.jobs import Job
from desktop.session import Session
from desktop.widgets.background import FileWorker
from desktop.widgets.image_thumbs import Attachment
from desktop.widgets.panels import eliding, side_scroll

PREVIEW_MS = 100
THUMB = 96
FILTER_DEBOUNCE_MS = 250


class MaskCanvas(QLabel):
    """Shows the init image; dragging paints the inpaint mask (white = repaint) over it."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(160, 160)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image: QImage | None = None
        self.mask: QImage | None = None
        self.brush = 12

    def set_image(self, path: str | None) -> None:
        self.image = QImage(path) if path else None
        if self.image is not None and self.image.isNull():
            self.image = None
        self.clear_mask()

    def clear_mask(self) -> None:
        if self.image is None:
            self.mask = None
            self.setText("No init image")
            return
        self.mask = QImage(self.image.size(), QImage.Format.Format_Grayscale8)
        self.mask.fill(0)
        self._repaint()

    def has_mask(self) -> bool:
        if self.mask is None:
            return False
        bits = self.mask.constBits()
        return any(bytes(bits))

    def _to_image(self, pos) -> tuple[float, float] | None:
        pix = self.pixmap()
        if self.image is None or pix is None or pix.isNull():
            return None
        x0, y0 = (self.width() - pix.width()) / 2, (self.height() - pix.height()) / 2
        scale = self.image.width() / pix.width()
        return (pos.x() - x0) * scale, (pos.y() - y0) * scale

    def mouseMoveEvent(self, event) -> None:
        self._paint(event.position())

    def mousePressEvent(self, event) -> None:
        self._paint(event.position())

    def _paint(self, pos) -> None:
        point = self._to_image(pos)
        if point is None or self.mask is None:
            return
        painter = QPainter(self.mask)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255))
        r = self.brush * self.image.width() / 256
        painter.drawEllipse(int(point[0] - r), int(point[1] - r), int(2 * r), int(2 * r))
        painter.end()
        self._repaint()

    def _repaint(self) -> None:
        if self.image is None:
            return
        shown = self.image.convertToFormat(QImage.Format.Format_ARGB32)
        painter = QPainter(shown)
        painter.setOpacity(0.45)
        overlay = QImage(self.mask.size(), QImage.Format.Format_ARGB32)
        overlay.fill(QColor(255, 60, 60))
        overlay.setAlphaChannel(self.mask)
        painter.drawImage(0, 0, overlay)
        painter.end()
        self.setPixmap(QPixmap.fromImage(shown).scaled(QSize(200, 200), Qt.AspectRatioMode.KeepAspectRatio))

    def save_mask(self, path: Path) -> str:
        self.mask.save(str(path), "PNG")
        return str(path)


class ImageRoom(QWidget):
    notified = Signal(str, str)  # level, text
    status_changed = Signal(str)
    chat_requested = Signal(list)  # [Attachment]: "Send to Chat" on a gallery image

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = session.runner
        self.gallery = Gallery(session.db)
        self.jobs = JobRouter(self.runner, "image", self)
        self._queue: list[str] = []  # generation job ids, oldest first
        self._running: str | None = None
        self._latest_preview: bytes | None = None
        self._preview_timer = QTimer(self, interval=PREVIEW_MS)
        self._preview_timer.timeout.connect(self._paint_preview)
        # Typing in a filter waits for a pause; thumbnails decode on the room's file thread, never the GUI thread.
        self._filter_timer = QTimer(self, singleShot=True, interval=FILTER_DEBOUNCE_MS)
        self._filter_timer.timeout.connect(self.refresh_gallery)
        self._thumbs = FileWorker(self, name="thumbnails")
        self._thumb_cache: dict[str, QIcon] = {}
        self._gallery_generation = 0
        self._build()
        self.setAcceptDrops(True)
        session.host.ready.connect(lambda *_: self.refresh_models())
        if session.host.is_ready:  # built after the host started (rooms are built when first shown)
            self.refresh_models()
        self.refresh_gallery()

    # -- layout ----------------------------------------------------------
    def _build(self) -> None:
        self.prompt = QPlainTextEdit(placeholderText="a large red circle on the left on a blue background")
        self.prompt.setMaximumHeight(70)
        self.negative = QPlainTextEdit(placeholderText="negative prompt")
        self.negative.setMaximumHeight(46)
        self.model = QComboBox(editable=True)
        self.model.addItem("Hearth shapes (bundled, 64x64)", "default")
        self.lora = QComboBox(editable=True)
        self.lora.addItem("(no LoRA)", "")
        self.lora_weight = QDoubleSpinBox(minimum=-2, maximum=2, singleStep=0.1, value=1.0)
        self.steps = QSpinBox(minimum=1, maximum=150, value=20)
        self.guidance = QDoubleSpinBox(minimum=0, maximum=30, singleStep=0.5, value=7.0)
        self.width_box = QSpinBox(minimum=64, maximum=2048, singleStep=8, value=64)
        self.height_box = QSpinBox(minimum=64, maximum=2048, singleStep=8, value=64)
        self.seed = QSpinBox(minimum=-1, maximum=2**31 - 1, value=-1, specialValueText="random")
        self.scheduler = QComboBox()
        self.scheduler.addItems(SCHEDULERS)
        self.batch = QSpinBox(minimum=1, maximum=16, value=1)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.75)
        self.init_path = QLineEdit(placeholderText="init image (img2img / inpaint)")
        pick_init = QToolButton(text="…", clicked=self._pick_init)
        self.canvas = MaskCanvas()
        clear_mask = QPushButton("Clear mask", clicked=lambda: self.canvas.clear_mask())
        self.generate_button = QPushButton("Generate", clicked=self.generate, objectName="Primary")
        self.cancel_button = QPushButton("Cancel", clicked=self.cancel, enabled=False)
        self.queue_label = QLabel("", objectName="Muted")
        for combo in (self.model, self.lora, self.scheduler, self.mode):
            eliding(combo)

        form = QFormLayout()
        form.addRow("Model", self.model)
        lora_row = QHBoxLayout()
        lora_row.addWidget(self.lora, 1)
        lora_row.addWidget(self.lora_weight)
        form.addRow("LoRA", lora_row)
        form.addRow("Mode", self.mode)
        form.addRow("Steps", self.steps)
        form.addRow("CFG scale", self.guidance)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        form.addRow("Size", size_row)
        form.addRow("Seed", self.seed)
        form.addRow("Sampler", self.scheduler)
        form.addRow("Batch", self.batch)
        form.addRow("Strength", self.strength)
        init_row = QHBoxLayout()
        init_row.addWidget(self.init_path, 1)
        init_row.addWidget(pick_init)
        form.addRow("Init", init_row)

        settings = QWidget()
        col = QVBoxLayout(settings)
        col.setContentsMargins(0, 0, 6, 0)
        col.addWidget(QLabel("Prompt"))
        col.addWidget(self.prompt)
        col.addWidget(self.negative)
        col.addLayout(form)
        col.addWidget(self.canvas)
        col.addWidget(clear_mask)
        col.addStretch(1)
        # The settings scroll when the window is short; Generate and Cancel stay in view under them.
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.addWidget(side_scroll(settings), 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        lcol.addLayout(buttons)
        lcol.addWidget(self.queue_label)

        self.preview = QLabel("Your image appears here", alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(200, 200)
        self.progress = QProgressBar(textVisible=True, value=0)
        center = QWidget()
        ccol = QVBoxLayout(center)
        ccol.addWidget(self.preview, 1)
        ccol.addWidget(self.progress)

        self.search = QLineEdit(placeholderText="Filter by prompt", textChanged=lambda _t: self._filter_timer.start())
        self.model_filter = QLineEdit(placeholderText="Filter by model", textChanged=lambda _t: self._filter_timer.start())
        self.gallery_list = QListWidget(viewMode=QListWidget.ViewMode.IconMode, iconSize=QSize(THUMB, THUMB),
                                        resizeMode=QListWidget.ResizeMode.Adjust, movement=QListWidget.Movement.Static)
        self.gallery_list.itemDoubleClicked.connect(lambda item: self.reuse(item.data(Qt.ItemDataRole.UserRole)))
        # Reuse is a button; every action is in the gallery's right-click menu and under "More ▾" (a row of six
        # buttons would not fit the window's minimum size).
        for text, slot in (("Reuse", lambda: self.reuse(self._selected())), ("To img2img", lambda: self.send_to("img2img")),
                           ("To inpaint", lambda: self.send_to("inpaint")), ("Send to Chat", self.send_to_chat),
                           ("Open folder", self.open_folder), ("Delete", self.delete_selected)):
            self.gallery_list.addAction(QAction(text, self.gallery_list, triggered=slot))
        self.gallery_list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.gallery_menu = QMenu(self)
        self.gallery_menu.addActions(self.gallery_list.actions()[1:])
        more = QPushButton("More ▾")
        more.setMenu(self.gallery_menu)
        actions = QHBoxLayout()
        actions.addWidget(QPushButton("Reuse", clicked=lambda: self.reuse(self._selected())), 1)
        actions.addWidget(more, 1)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.addWidget(self.search)
        rcol.addWidget(self.model_filter)
        rcol.addWidget(self.gallery_list, 1)
        rcol.addLayout(actions)

        split = QSplitter()
        for w in (left, center, right):
            split.addWidget(w)
        split.setSizes([340, 420, 360])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(split)

    # -- actions ---------------------------------------------------------
    def request(self) -> ImageRequest:
        """The image request the settings describe (not yet validated)."""
        mode = self.mode.currentText()
        request = ImageRequest(
            request_id=uuid.uuid4().hex, prompt=self.prompt.toPlainText().strip(),
            negative_prompt=self.negative.toPlainText().strip(),
            model=self.model.currentData() or self.model.currentText().strip() or "default", mode=mode,
            steps=self.steps.value(), guidance=self.guidance.value(), width=self.width_box.value(),
            height=self.height_box.value(), seed=None if self.seed.value() < 0 else self.seed.value(),
            scheduler=self.scheduler.currentText(), batch_size=self.batch.value(), strength=self.strength.value(),
            loras=[LoraSpec(p, self.lora_weight.value())] if (p := self.lora.currentData() or "") else [],
        )
        if mode != "txt2img":
            request.init_image = self.init_path.text().strip() or None
        if mode == "inpaint" and self.canvas.mask is not None:
            from engines.core import paths

            request.mask = self.canvas.save_mask(paths.cache_dir() / f"mask-{request.request_id}.png")
        return request

    def generate(self) -> str:
        if self.mode.currentText() == "inpaint" and not self.canvas.has_mask():
            self.status_changed.emit("Paint the area to repaint on the init image first (drag over it).")
            return ""
        request = self.request()
        try:
            request.validate()  # the host checks again; here a wrong setting is told before a job is queued
        except RequestError as exc:
            self.status_changed.emit(str(exc) + (f" {exc.hint}" if exc.hint else ""))
            return ""
        job = Job("image.generate", lambda c: c.stream_image(request), label="Generating image",
                  request_id=request.request_id)
        self._queue.append(job.id)
        self._update_buttons()
        submitted = self.jobs.submit(job, lambda event: self._on_generate_event(job.id, event),
                                     lambda how, error: self._on_generate_end(job.id, how, error))
        if submitted is None:  # the window is closing
            self._queue.remove(job.id)
        return submitted or ""

    def cancel(self) -> None:
        """Cancel the running generation (queued ones stay queued)."""
        if self._running:
            self.jobs.cancel(self._running)
            self.status_changed.emit("Cancelling…")

    def refresh_models(self) -> None:
        self.jobs.call("host", lambda c: c.image_models(), self._models_listed, "Listing image models", self._report)

    def refresh_gallery(self) -> None:
        """List the matching images now; their thumbnails follow from the file thread (cached by path)."""
        self._filter_timer.stop()
        self._gallery_generation += 1
        generation = self._gallery_generation
        self.gallery_list.clear()
        missing: dict[int, str] = {}
        for image in self.gallery.list(self.search.text(), self.model_filter.text(), limit=300):
            item = QListWidgetItem(self._thumb_cache.get(image.path, QIcon()), image.prompt[:28])
            item.setToolTip(f"{image.prompt}\nseed {image.seed} · {image.model}\nRight-click: Send to Chat, img2img, …")
            item.setData(Qt.ItemDataRole.UserRole, image.id)
            self.gallery_list.addItem(item)
            if image.path not in self._thumb_cache:
                missing[image.id] = image.path
        if missing:
            self._thumbs.submit(lambda: _load_thumbnails(missing),
                                lambda thumbs, error: self._show_thumbnails(generation, thumbs or {}))

    def _show_thumbnails(self, generation: int, thumbs: dict[int, tuple[str, QImage]]) -> None:
        for path, image in thumbs.values():
            self._thumb_cache[path] = QIcon(QPixmap.fromImage(image))  # pixmaps only on the GUI thread
        if generation != self._gallery_generation:
            return  # the list changed meanwhile; the cache keeps what was decoded
        for row in range(self.gallery_list.count()):
            item = self.gallery_list.item(row)
            found = thumbs.get(item.data(Qt.ItemDataRole.UserRole))
            if found is not None:
                item.setIcon(self._thumb_cache[found[0]])

    def _selected(self) -> int | None:
        item = self.gallery_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def reuse(self, image_id: int | None) -> None:
        image = self.gallery.get(image_id) if image_id is not None else None
        if image is not None:
            self.apply_request(image.request)

    def apply_request(self, req: dict) -> None:
        """Fill the form from a stored request (Hearth JSON) or parsed A1111 parameters."""
        self.prompt.setPlainText(req.get("prompt", ""))
        self.negative.setPlainText(req.get("negative_prompt", ""))
        model = req.get("model")
        if model:
            index = self.model.findData(model)
            if index < 0:
                self.model.addItem(Path(model).name if model != "default" else model, model)
                index = self.model.count() - 1
            self.model.setCurrentIndex(index)
        for key, box in (("steps", self.steps), ("width", self.width_box), ("height", self.height_box),
                         ("batch_size", self.batch)):
            if isinstance(req.get(key), int):
                box.setValue(req[key])
        if isinstance(req.get("guidance"), (int, float)):
            self.guidance.setValue(req["guidance"])
        if isinstance(req.get("seed"), int):
            self.seed.setValue(min(req["seed"], self.seed.maximum()))
        if req.get("scheduler") in SCHEDULERS:
            self.scheduler.setCurrentText(req["scheduler"])
        if req.get("mode") in MODES:
            self.mode.setCurrentText(req["mode"])

    def send_to(self, mode: str) -> None:
        image = self.gallery.get(self._selected()) if self._selected() is not None else None
        if image is None:
            return
        self.apply_request(image.request)
        self.mode.setCurrentText(mode)
        self.init_path.setText(image.path)
        self.canvas.set_image(image.path)

    def send_to_chat(self) -> None:
        """The selected gallery image into the Chat room's composer, to ask a model that can see about it."""
        image = self.gallery.get(self._selected()) if self._selected() is not None else None
        if image is None:
            return
        if not Path(image.path).is_file():
            self.notified.emit("error", f"{image.path} is gone (moved or deleted), so it cannot go to Chat.")
            return
        self.chat_requested.emit([Attachment(Path(image.path).name, path=image.path)])

    def open_folder(self) -> None:
        image = self.gallery.get(self._selected()) if self._selected() is not None else None
        if image is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(image.path).parent)))

    def delete_selected(self) -> None:
        image_id = self._selected()
        if image_id is not None:
            self.gallery.delete(image_id)
            self.refresh_gallery()

    def _pick_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Init image", "", "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.init_path.setText(path)
            self.canvas.set_image(path)

    def read_png(self, path: str) -> None:
        """Read a dropped PNG's parameters through the host (A1111 text or Hearth's request)."""
        self.jobs.call("host", lambda c: c.image_metadata(path), self._metadata_read, "Reading image parameters",
                       self._report)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.read_png(url.toLocalFile())
                break

    # -- events ----------------------------------------------------------
    def _on_generate_event(self, job_id: str, event) -> None:
        self._running = job_id
        self._update_buttons()
        if isinstance(event, Progress):
            self.progress.setMaximum(event.total)
            self.progress.setValue(event.step)
            self.status_changed.emit(f"Image: {event.message}")
        elif isinstance(event, Preview):
            self._latest_preview = event.png
            if not self._preview_timer.isActive():
                self._preview_timer.start()
        elif isinstance(event, Result):
            images = event.data.get("images", [])
            if images:
                self._latest_preview = None
                self._show(QImage(images[-1]["path"]))
            self.refresh_gallery()
            done = "cancelled" if event.finish_reason == "cancelled" else f"{len(images)} image(s), seed {event.data.get('seed')}"
            self.status_changed.emit(f"Image: {done}")

    def _on_generate_end(self, job_id: str, how: str, error: HearthError | None) -> None:
        if job_id in self._queue:
            self._queue.remove(job_id)
        if self._running == job_id:
            self._running = None
        self._preview_timer.stop()
        self._paint_preview()
        if how == "cancelled":
            self.progress.setValue(0)
        self._update_buttons()
        self._report(how, error)

    def _models_listed(self, data: dict) -> None:
        current, current_name = self.model.currentData(), self.model.currentText()
        self.model.clear()
        for m in data.get("models", []):
            self.model.addItem(m["name"], m["id"])
        if current and self.model.findData(current) < 0:  # a model the user chose by path stays chosen
            self.model.addItem(current_name, current)
        self.model.setCurrentIndex(max(self.model.findData(current), 0))
        self.lora.clear()
        self.lora.addItem("(no LoRA)", "")
        for l in data.get("loras", []):
            self.lora.addItem(l["name"], l["path"])

    def _metadata_read(self, data: dict) -> None:
        if data.get("hearth"):
            self.apply_request(data["hearth"])
        elif data.get("parsed"):
            p = data["parsed"]
            self.apply_request({"prompt": p.get("prompt", ""), "negative_prompt": p.get("negative_prompt", ""),
                                "steps": p.get("Steps"), "guidance": p.get("CFG scale"), "seed": p.get("Seed"),
                                "scheduler": p.get("Sampler"), "width": p.get("width"), "height": p.get("height")})
        else:
            self.notified.emit("info", "That image carries no generation parameters.")

    def _report(self, how: str, error: HearthError | None) -> None:
        if how == "failed" and error is not None:
            self.notified.emit("error", str(error))

    def _paint_preview(self) -> None:
        data, self._latest_preview = self._latest_preview, None
        if data:
            self._show(QImage.fromData(data, "PNG"))

    def _show(self, image: QImage) -> None:
        if not image.isNull():
            side = min(self.preview.width(), self.preview.height())
            self.preview.setPixmap(QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                                   Qt.TransformationMode.FastTransformation))

    def _update_buttons(self) -> None:
        self.cancel_button.setEnabled(self._running is not None)
        waiting = len(self._queue) - (1 if self._running else 0)
        self.queue_label.setText(f"{waiting} queued" if waiting > 0 else "")

    def shutdown(self) -> None:
        self._preview_timer.stop()
        self._filter_timer.stop()
        self._thumbs.shutdown()


def _load_thumbnails(paths: dict[int, str]) -> dict[int, tuple[str, QImage]]:
    """Decode and scale gallery images on the file thread (QImage, unlike QPixmap, is safe off the GUI thread)."""
    thumbs = {}
    for image_id, path in paths.items():
        image = QImage(path)
        if not image.isNull():
            thumbs[image_id] = (path, image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                   Qt.TransformationMode.SmoothTransformation))
    return thumbs
