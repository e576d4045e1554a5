"""Images in chat messages, decoded with limits: each image part becomes a ``ChatImage`` before a model sees it.

Bad input is a RequestError naming the part (``messages[1].content[0]``): not an image, a truncated file, an
image too large to decode in the memory free now. A very large image (20000 x 20000) is decoded once, after
checking that its pixels fit in memory, and downscaled so its longer side is at most ``MAX_SIDE`` (vision
encoders resize to a few hundred pixels anyway).
"""
from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.core.content import data_url, is_image_part, parse_data_url
from engines.core.errors import RequestError

MAX_SIDE = 2048
# Pillow's decompression-bomb guard is replaced by an explicit memory check (below), so that a large
# photo or scan is downscaled instead of refused. Share of the free memory one decode may take:
DECODE_MEMORY_SHARE = 0.5
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg"}  # formats llama.cpp's stb_image reads as they are
_bomb_guard = threading.Lock()


@dataclass(frozen=True)
class ChatImage:
    """One decoded image: RGB pixels (for transformers processors) and encoded bytes (for llama.cpp)."""

    pixels: Any  # PIL.Image.Image, RGB
    data: bytes  # PNG or JPEG bytes of ``pixels``
    mime: str
    original_size: tuple[int, int]
    where: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.size

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def url(self) -> str:
        return data_url(self.data, self.mime)


def part_bytes(part: dict, where: str) -> bytes:
    """The encoded image bytes of a validated image part."""
    if part["type"] == "image_url":
        spec = part["image_url"]
        url = spec["url"] if isinstance(spec, dict) else spec
        return parse_data_url(url, f"{where}.image_url.url")[1]
    if part.get("data"):
        return bytes(part["data"])
    path = Path(part["path"]).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RequestError(f"Field '{where}.path': {path} does not exist.", path=path, hint="Check the image path.") from None
    except OSError as exc:
        raise RequestError(f"Field '{where}.path': {path} cannot be read ({exc.strerror}).", path=path,
                           hint="Check the file and its permissions.") from None


def decode_image(raw: bytes, where: str, available_bytes: int | None = None) -> ChatImage:
    """Decode ``raw`` (PNG, JPEG, WebP, GIF, BMP) to RGB with the limits above."""
    from PIL import Image, UnidentifiedImageError

    if available_bytes is None:
        from engines.models.estimate import available_memory

        available_bytes = available_memory()
    with _bomb_guard:  # MAX_IMAGE_PIXELS is a Pillow global: set it only around our own open()
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(io.BytesIO(raw))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise RequestError(f"Field '{where}' is not an image Hearth can read ({len(raw)} bytes, starting "
                               f"{raw[:8]!r}).", hint="Send a PNG, JPEG, WebP, GIF or BMP image.") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = image.size
    fmt = image.format or "?"
    if fmt == "JPEG" and max(width, height) > MAX_SIDE:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG decodes at 1/2, 1/4, 1/8 scale for free
    decoded_w, decoded_h = image.size
    # Pillow keeps 1-byte modes (1, L, P) at one byte per pixel and every multi-band mode at four; the RGB copy
    # and the resampling buffers are made at the downscaled size.
    pixel_bytes = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    need = decoded_w * decoded_h * pixel_bytes + 2 * MAX_SIDE * MAX_SIDE * 4
    if need > available_bytes * DECODE_MEMORY_SHARE:
        raise RequestError(
            f"Field '{where}' is a {width}x{height} image; decoding it needs ~{need / 1e9:.1f} GB but only "
            f"{available_bytes / 1e9:.1f} GB of memory are free.", hint=f"Downscale the image (to {MAX_SIDE} pixels or so) first.")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise RequestError(f"Field '{where}' is a damaged or truncated {fmt} image ({exc}).",
                           hint="Save the image again, or send another one.") from None
    except MemoryError:
        raise RequestError(f"Field '{where}' is a {width}x{height} image too large to decode in the memory free now.",
                           hint=f"Downscale the image (to {MAX_SIDE} pixels or so) first.") from None
    resized = max(image.size) > MAX_SIDE
    if resized:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    rgb = _rgb(image)
    if not resized and fmt in PASS_THROUGH and image.mode in ("RGB", "L"):
        return ChatImage(rgb, raw, PASS_THROUGH[fmt], (width, height), where)
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return ChatImage(rgb, out.getvalue(), "image/png", (width, height), where)


def _rgb(image):
    """RGB; transparency goes onto white (what a chat window shows behind it), and only the first frame of a GIF."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def decode_messages(messages: list[dict]) -> list[dict]:
    """The messages with every image part replaced by ``{"type": "image", "image": ChatImage}`` (same order)."""
    out = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            out.append(message)
            continue
        parts = []
        for j, part in enumerate(content):
            if is_image_part(part):
                where = f"messages[{i}].content[{j}]"
                parts.append({"type": "image", "image": decode_image(part_bytes(part, where), where)})
            else:
                parts.append(part)
        out.append({**message, "content": parts})
    return out


def chat_images(messages: list[dict]) -> list[ChatImage]:
    """The decoded images of ``decode_messages``' output, in order."""
    return [p["image"] for m in messages if isinstance(m.get("content"), list)
            for p in m["content"] if isinstance(p, dict) and isinstance(p.get("image"), ChatImage)]
