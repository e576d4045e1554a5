"""Chat message content: a string, or a list of OpenAI content parts (stdlib only: both processes import it).

    {"type": "text", "text": "..."}
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}
    {"type": "image", "path": "/abs/file.png"}   or   {"type": "image", "data": b"..."}   (in-process only)

The engine host accepts only ``data:`` URLs: a web page talking to the host must not make it read local
files or reach the network. Decoding the pixels is engines.text.images' job; this module checks the shape
of the parts and names the field that is wrong.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from engines.core.errors import RequestError

IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp")
MAX_DATA_URL_CHARS = 64 * 1024 * 1024  # 48 MB of image after base64: larger is refused before decoding
DATA_URL_HINT = "Send the image inline as a data URL: data:image/png;base64,... (png, jpeg, webp, gif or bmp)."


def is_image_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in ("image_url", "image")


def image_parts(content: Any) -> list[dict]:
    return [p for p in content if is_image_part(p)] if isinstance(content, list) else []


def has_images(messages: list[dict]) -> bool:
    return any(image_parts(m.get("content")) for m in messages if isinstance(m, dict))


def count_images(messages: list[dict]) -> int:
    return sum(len(image_parts(m.get("content"))) for m in messages if isinstance(m, dict))


def text_of(content: Any) -> str:
    """The text of a message's content (its text parts joined; image parts left out)."""
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def text_only(messages: list[dict]) -> list[dict]:
    """The messages with list contents flattened to their text, for text-only templates and models."""
    return [{**m, "content": text_of(m["content"])} if isinstance(m.get("content"), list) else m for m in messages]


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def parse_data_url(url: str, where: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a ``data:image/...;base64,`` URL; a RequestError naming ``where`` otherwise."""
    if len(url) > MAX_DATA_URL_CHARS:
        raise RequestError(f"Field '{where}' is a data URL of {len(url) / 1e6:.0f} MB; Hearth takes at most "
                           f"{MAX_DATA_URL_CHARS / 1e6:.0f} MB.", hint="Send a smaller image (or a JPEG).")
    head, comma, payload = url.partition(",")
    mime = head[5:].split(";")[0].strip().lower() if head.startswith("data:") else ""
    if not comma or not head.lower().endswith(";base64") or not mime.startswith("image/"):
        raise RequestError(f"Field '{where}' is not a base64 image data URL (it starts {url[:40]!r}).", hint=DATA_URL_HINT)
    if mime not in IMAGE_MIME_TYPES:
        raise RequestError(f"Field '{where}' is a {mime} data URL.", hint=DATA_URL_HINT)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"Field '{where}' has base64 data that does not decode.", hint=DATA_URL_HINT) from None
    if not data:
        raise RequestError(f"Field '{where}' is an empty image.", hint=DATA_URL_HINT)
    return mime, data


def check_content(where: str, content: Any, *, local: bool) -> None:
    """A message content: a string or a list of parts. ``local`` allows in-process parts (file paths, bytes)."""
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise RequestError(f"Field '{where}' must be text or a non-empty list of content parts.")
    for j, part in enumerate(content):
        field = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError(f"Field '{field}.text' must be a string.")
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str) or not url:
                raise RequestError(f"Field '{field}.image_url' needs a 'url'.", hint=DATA_URL_HINT)
            if not url.startswith("data:"):
                what = "an http(s) URL" if url.lower().startswith(("http:", "https:")) else f"{url[:40]!r}"
                raise RequestError(f"Field '{field}.image_url.url' is {what}; Hearth never fetches images from the "
                                   "network or reads files named in a request.", hint=DATA_URL_HINT)
            parse_data_url(url, f"{field}.image_url.url")
        elif kind == "image":
            if not local:
                raise RequestError(f"Field '{field}' is an 'image' part with a file path or bytes; over HTTP Hearth "
                                   "takes images only as data URLs.", hint=DATA_URL_HINT)
            path, data = part.get("path"), part.get("data")
            if not ((isinstance(path, str) and path) or (isinstance(data, (bytes, bytearray)) and data)):
                raise RequestError(f"Field '{field}' needs a 'path' (an image file) or 'data' (its bytes).")
        else:
            raise RequestError(f"Field '{field}' has type {kind!r}.", hint="Use 'text' or 'image_url' parts.")


def check_remote_messages(messages: Any) -> None:
    """What the HTTP host adds to the engine's checks: every image is an inline data URL."""
    if not isinstance(messages, list):
        return  # the request's own validation names it
    for i, message in enumerate(messages):
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            check_content(f"messages[{i}].content", message["content"], local=False)
