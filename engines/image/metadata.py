"""PNG metadata: the A1111 ``parameters`` text (written and parsed) and Hearth's JSON request.

Format, as AUTOMATIC1111 writes it (modules/processing.py, create_infotext) and parses it
(modules/infotext_utils.py, parse_generation_parameters):

    a red circle
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: v1-5

A value holding ``,``, ``:`` or a newline is JSON-quoted. Stdlib + Pillow only: the GUI reads
dropped PNGs with it.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from engines.core.errors import RequestError

PARAMETERS_KEY = "parameters"
HEARTH_KEY = "hearth"
# A1111's own regex for one "Key: value" pair of the last line.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def quote(value: Any) -> str:
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def a1111_parameters(request, seed: int, model_name: str, model_hash: str = "") -> str:
    """The ``parameters`` text for one image of ``request`` (an ImageRequest) made with ``seed``."""
    pairs: list[tuple[str, Any]] = [
        ("Steps", request.steps), ("Sampler", request.scheduler), ("CFG scale", _number(request.guidance)),
        ("Seed", seed), ("Size", f"{request.width}x{request.height}"),
    ]
    if model_hash:
        pairs.append(("Model hash", model_hash))
    pairs.append(("Model", model_name))
    if request.mode != "txt2img":
        pairs.append(("Denoising strength", _number(request.strength)))
    if request.loras:
        pairs.append(("Lora weights", ", ".join(f"{Path(l.path).stem}: {_number(l.weight)}" for l in request.loras)))
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {quote(v)}" for k, v in pairs))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict[str, Any]:
    """A1111 ``parameters`` text -> {"prompt", "negative_prompt", and every "Key": value}.

    Steps/Seed become ints, CFG scale/Denoising strength floats, Size also gives width/height.
    """
    if not isinstance(text, str) or not text.strip():
        raise RequestError("The image has no generation parameters.", hint="Drop a PNG made by Hearth, A1111 or a compatible tool.")
    lines = text.strip().split("\n")
    last = lines[-1]
    params: dict[str, Any] = {}
    if len(_PARAM.findall(last)) >= 3:
        lines = lines[:-1]
        for key, value in _PARAM.findall(last):
            value = value.strip()
            if len(value) > 1 and value[0] == '"' and value[-1] == '"':
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            params[key.strip()] = value
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip(), **params}
    for key, cast in (("Steps", int), ("Seed", int), ("CFG scale", float), ("Denoising strength", float)):
        if key in out:
            try:
                out[key] = cast(out[key])
            except ValueError:
                pass
    size = _SIZE.match(str(out.get("Size", "")))
    if size:
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    return out


def png_bytes(image, parameters: str, request_json: dict) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PARAMETERS_KEY, parameters)
    info.add_itxt(HEARTH_KEY, json.dumps(request_json, ensure_ascii=False, sort_keys=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_png_metadata(path: str | Path) -> dict[str, Any]:
    """{"parameters": text or None, "parsed": {...} or None, "hearth": request dict or None}."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            text = dict(getattr(img, "text", {}) or img.info)
    except FileNotFoundError:
        raise RequestError(f"{path} does not exist.", path=path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise RequestError(f"{path} is not an image Hearth can read ({exc}).", path=path, hint="Choose a PNG file.") from None
    params = text.get(PARAMETERS_KEY)
    hearth = None
    if text.get(HEARTH_KEY):
        try:
            hearth = json.loads(text[HEARTH_KEY])
        except json.JSONDecodeError:
            hearth = None
    return {"parameters": params, "parsed": parse_parameters(params) if params else None, "hearth": hearth}
