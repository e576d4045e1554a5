"""Chat image thumbnails: decoded off the GUI thread, clickable to enlarge, removable in the composer.

Decoding a photo can take tens of milliseconds, so ``ThumbLoader`` reads and scales images on its own file thread
(QImageReader scales while decoding; QImage, unlike QPixmap, is safe off the GUI thread) and hands the small result
back. A missing or unreadable file becomes a placeholder that says so, never an exception.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import shiboken6
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QToolButton, QToolTip, QVBoxLayout, QWidget

from desktop.widgets.background import FileWorker

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")"


@dataclass(frozen=True)
class Attachment:
    """An image waiting in the composer: a file (``path``) or bytes (pasted, from the Decode figure)."""
    name: str
    path: str = ""
    data: bytes | None = None

    @property
    def key(self) -> str:
        return self.path or f"bytes:{id(self.data)}"

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        return Path(self.path).read_bytes()


def qimage_png(image: QImage) -> bytes:
    """A QImage (a pasted screenshot) as PNG bytes."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def decode_scaled(source: str | bytes, longest: int) -> tuple[QImage, QSize]:
    """``source`` decoded with its longest side at most ``longest`` px, and its full size; a null image if unreadable."""
    reader = QImageReader()
    if isinstance(source, bytes):
        buffer = QBuffer()
        buffer.setData(QByteArray(source))
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        reader.setDevice(buffer)
    else:
        reader.setFileName(source)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > longest:
        reader.setScaledSize(size.scaled(longest, longest, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return image, size


class ThumbLoader(FileWorker):
    """Scaled images by key, decoded on one background thread; thumbnails of files are cached (the newest few hundred)."""
    CACHED = 400  # about 15 MB of 96 px pixmaps

    def __init__(self, parent=None) -> None:
        super().__init__(parent, name="chat-thumbs")
        self._cache: dict[tuple[str, int], QPixmap] = {}

    def load(self, key: str, source: str | bytes, longest: int, on_ready) -> None:
        """``on_ready(pixmap | None, full_size)`` on the GUI thread (None: unreadable or missing)."""
        cached = self._cache.get((key, longest))
        if cached is not None:
            on_ready(cached, cached.size())
            return

        def done(result, error) -> None:
            image, size = result if result else (QImage(), QSize())
            pixmap = None if image.isNull() else QPixmap.fromImage(image)  # pixmaps only on the GUI thread
            if pixmap is not None and longest <= 256 and isinstance(source, str):  # files: their key is their path
                self._cache[(key, longest)] = pixmap
                if len(self._cache) > self.CACHED:
                    del self._cache[next(iter(self._cache))]
            on_ready(pixmap, size)

        self.submit(lambda: decode_scaled(source, longest), done)


class ImageThumb(QWidget):
    """A clickable thumbnail (click enlarges), with a remove button in the composer."""
    removed = Signal(object)  # the thumb

    def __init__(self, loader: ThumbLoader, key: str, source: str | bytes | None, name: str, size: int = 64,
                 removable: bool = False, missing_note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader, self.key, self.source, self.name = loader, key, source, name
        self.setFixedSize(size, size)
        self.button = QToolButton(self, objectName="ImageThumb")
        self.button.setGeometry(0, 0, size, size)
        self.button.setIconSize(QSize(size - 6, size - 6))
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.clicked.connect(self.enlarge)
        self.viewer: ImageViewer | None = None
        self.missing = source is None
        if self.missing:
            self._placeholder(missing_note or f"{name} is missing")
        else:
            self.button.setText("…")
            self.button.setToolTip(f"{name}: click to enlarge")
            loader.load(key, source, size, self._ready)
        self.remove_button = None
        if removable:
            self.remove_button = QToolButton(self, text="×", objectName="ThumbRemove", toolTip=f"Remove {name}")
            self.remove_button.setGeometry(size - 20, 2, 18, 18)
            self.remove_button.clicked.connect(lambda: self.removed.emit(self))

    def _placeholder(self, note: str) -> None:
        self.missing = True
        self.button.setText("missing")
        self.button.setIcon(QPixmap())
        self.button.setToolTip(note)

    def _ready(self, pixmap: QPixmap | None, _size: QSize) -> None:
        if not shiboken6.isValid(self):
            return  # the thumb went (message list redrawn) while its image was decoding
        if pixmap is None:
            self._placeholder(f"{self.name} could not be read as an image")
            return
        self.button.setText("")
        self.button.setIcon(pixmap)

    def has_image(self) -> bool:
        return not self.button.icon().isNull()

    def enlarge(self) -> None:
        if self.missing:  # nothing to enlarge: say why at once instead of waiting for a hover
            QToolTip.showText(self.button.mapToGlobal(self.button.rect().center()), self.button.toolTip(), self.button)
            return
        self.viewer = ImageViewer(self.loader, self.key, self.source, self.name, self.window())
        self.viewer.open()


class ImageViewer(QDialog):
    """The image large, fitted to the screen; Esc, a click or Close shuts it."""
    LONGEST = 1600

    def __init__(self, loader: ThumbLoader, key: str, source: str | bytes, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(name or "Image")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.label = QLabel("Loading…", alignment=Qt.AlignmentFlag.AlignCenter)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.caption = QLabel(name, objectName="Hint", alignment=Qt.AlignmentFlag.AlignCenter)
        close = QToolButton(text="Close", objectName="Flat")
        close.clicked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.caption)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        screen = (parent.screen() if parent else self.screen()).availableGeometry()
        self.resize(min(900, int(screen.width() * 0.8)), min(700, int(screen.height() * 0.8)))
        self._pixmap: QPixmap | None = None
        loader.load(key, source, self.LONGEST, self._ready)

    def _ready(self, pixmap: QPixmap | None, size: QSize) -> None:
        if not shiboken6.isValid(self):
            return
        if pixmap is None:
            self.label.setText("This image could not be read.")
            return
        self._pixmap = pixmap
        if size.isValid():
            self.caption.setText(f"{self.windowTitle()}  ·  {size.width()}×{size.height()}")
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None:
            self.label.setPixmap(self._pixmap.scaled(self.label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def mouseReleaseEvent(self, event) -> None:
        self.accept()


def _image_files(mime: QMimeData) -> list[str]:
    return [url.toLocalFile() for url in mime.urls()
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES)] if mime.hasUrls() else []


def mime_has_images(mime: QMimeData) -> bool:
    """Whether a drop or paste carries image files or an image (cheap: called on every drag move)."""
    return bool(_image_files(mime)) or mime.hasImage()


def attachments_from_mime(mime: QMimeData) -> list[Attachment]:
    """The images a drop or paste carries: image files (by URL), else an image itself (a screenshot) as PNG."""
    files = _image_files(mime)
    if files:
        return [Attachment(Path(f).name, path=f) for f in files]
    if mime.hasImage():
        image = QImage(mime.imageData())
        if not image.isNull():
            return [Attachment("pasted image.png", data=qimage_png(image))]
    return []
