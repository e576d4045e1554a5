"""Images attached to chat messages: files beside the database, named by their content.

``<data dir>/chat-images/<sha256>.<ext>``: the same picture attached twice is stored once, a file is written
atomically (never half a file under its final name), and the database only holds the file name. Stdlib only,
so the GUI process uses it directly. The format is recognised from the file's first bytes, not its name.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from engines.core.errors import RequestError
from engines.core.paths import atomic_write_bytes

FOLDER = "chat-images"
MAX_BYTES = 64 * 1024 ** 2  # a chat picture larger than this is a mistake (a raw scan, a video frame dump)
MIME = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp"}
_FILE_NAME = re.compile(r"^[0-9a-f]{64}\.(png|jpg|gif|webp|bmp)$")


@dataclass(frozen=True)
class ChatImage:
    file: str  # "<sha256>.<ext>" inside the chat-images folder
    name: str = ""  # what it was called when attached (a file name, "pasted image"), for tooltips and exports

    @property
    def mime(self) -> str:
        return MIME[self.file.rsplit(".", 1)[-1]]


def sniff(data: bytes) -> str | None:
    """The extension for ``data``'s image format, from its magic bytes; None when it is not one we take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def check(data: bytes, name: str = "") -> str:
    """The extension ``data`` will be stored under; a clear RequestError when it is not an image chat takes."""
    where = name or "The image"
    if len(data) > MAX_BYTES:
        raise RequestError(f"{where} is {len(data) / 1024 ** 2:.0f} MB; chat takes images up to {MAX_BYTES // 1024 ** 2} MB.",
                           hint="Attach a smaller or compressed copy (PNG, JPEG or WebP).")
    ext = sniff(data)
    if ext is None:
        raise RequestError(f"{where} is not a PNG, JPEG, GIF, WebP or BMP image.", hint="Attach an image file.")
    return ext


B64_PIECE = 3 * 64 * 1024  # a multiple of 3, so the encoded pieces join into one valid base64 text


def to_data_url(data: bytes, ext: str) -> str:
    """As engines.core.content.data_url, but encoded in pieces: one b64encode call on a photo holds the GIL for
    tens of ms, and the window's thread would wait on it."""
    encoded = "".join(base64.b64encode(data[i:i + B64_PIECE]).decode("ascii") for i in range(0, len(data), B64_PIECE))
    return f"data:{MIME[ext]};base64,{encoded}"


class ChatImageStore:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def add(self, data: bytes, name: str = "") -> ChatImage:
        """Store ``data`` (once per content) and return its reference."""
        image = ChatImage(f"{hashlib.sha256(data).hexdigest()}.{check(data, name)}", name)
        path = self.path(image)
        if not path.is_file():
            atomic_write_bytes(path, data)
        return image

    def path(self, image: ChatImage) -> Path:
        if not _FILE_NAME.match(image.file):  # never a path outside the folder, whatever the database says
            raise RequestError(f"{image.file!r} is not a chat image file name.")
        return self.folder / image.file

    def exists(self, image: ChatImage) -> bool:
        return _FILE_NAME.match(image.file) is not None and self.path(image).is_file()

    def read(self, image: ChatImage) -> bytes:
        try:
            return self.path(image).read_bytes()
        except OSError as exc:
            raise RequestError(f"The image {image.name or image.file} is missing from {self.folder} ({exc.strerror or exc}).",
                               path=self.path(image), hint="Attach it again.") from exc

    def data_url(self, image: ChatImage) -> str:
        return to_data_url(self.read(image), image.file.rsplit(".", 1)[-1])

    def prune(self, referenced: set[str]) -> int:
        """Delete stored images whose names are not in ``referenced``; returns how many went."""
        gone = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.iterdir():
            if _FILE_NAME.match(path.name) and path.name not in referenced:
                try:
                    path.unlink()
                    gone += 1
                except OSError:
                    pass  # still open elsewhere (Windows); the next prune takes it
        return gone
