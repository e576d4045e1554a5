"""Validate and describe a .safetensors file from its header alone.

The header is parsed by hand (8-byte little-endian length, then JSON) rather than with the
`safetensors` package: that needs a tensor framework to open a file, reports truncation as an
opaque "MetadataIncompleteBuffer", and cannot say which tensor runs past the end. The format is
specified in a few lines (https://github.com/huggingface/safetensors#format), so this stays small.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engines.core.errors import ModelFileError
from engines.models.entry import ModelEntry

MAX_HEADER = 100 * 1024 * 1024  # the safetensors reference implementation's own limit
REDOWNLOAD = "Re-download or re-copy the file."
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
    "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}

# Key prefixes of single-file image checkpoints (A1111/ComfyUI style) and their LoRAs.
_IMAGE_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.",
                   "lora_unet_", "lora_te", "unet.", "vae.")


@dataclass(frozen=True)
class SafetensorsInfo:
    path: str
    size: int
    parameters: int
    dtype_elements: dict = field(default_factory=dict)  # dtype -> element count
    metadata: dict = field(default_factory=dict)  # the "__metadata__" strings
    names: tuple = ()
    shapes: dict = field(default_factory=dict)  # tensor name -> shape (list of ints)

    @property
    def main_dtype(self) -> str:
        return max(self.dtype_elements, key=self.dtype_elements.get) if self.dtype_elements else "unknown"


def _corrupt(path, what: str) -> ModelFileError:
    return ModelFileError(f"{path} has a corrupt safetensors header: {what}.", path=path, hint=REDOWNLOAD)


def read_safetensors(path: str | Path) -> SafetensorsInfo:
    path = Path(path)
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise ModelFileError(f"{path} is truncated: {size} bytes is too short for a safetensors file.", path=path, hint=REDOWNLOAD)
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER:
                raise _corrupt(path, f"it claims a {header_len}-byte header (the limit is {MAX_HEADER})")
            if header_len > size - 8:
                raise ModelFileError(
                    f"{path} is truncated or corrupt: its header claims {header_len} bytes but the file has {size}.",
                    path=path, hint=REDOWNLOAD,
                )
            raw = fh.read(header_len)
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist.", path=path, hint="Check the path, or rescan your model folders.") from None
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror}).", path=path, hint="Check the file's permissions.") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + header_len
    params, dtypes, worst, shapes = 0, {}, None, {}
    for name, spec in header.items():
        try:
            dtype, shape, (begin, end) = spec["dtype"], [int(d) for d in spec["shape"]], spec["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise _corrupt(path, f"tensor '{name}' has no valid dtype, shape and data_offsets") from None
        n = math.prod(shape)
        if begin < 0 or end < begin or (dtype in DTYPE_SIZES and end - begin != n * DTYPE_SIZES[dtype]):
            raise _corrupt(path, f"tensor '{name}' has data_offsets {[begin, end]} that do not match its shape {shape}")
        if data_start + end > size and (worst is None or data_start + end < worst[1]):
            worst = (name, data_start + end)
        params += n
        dtypes[dtype] = dtypes.get(dtype, 0) + n
        shapes[name] = shape
    if worst:
        raise ModelFileError(
            f"{path} is truncated: tensor '{worst[0]}' ends at byte {worst[1]} but the file has {size} bytes.",
            path=path, hint=REDOWNLOAD,
        )
    return SafetensorsInfo(str(path), size, params, dtypes, metadata if isinstance(metadata, dict) else {}, tuple(header), shapes)


def guess_kind(info: SafetensorsInfo) -> str:
    """A loose .safetensors file has no config: "image" for diffusion checkpoints, else "unknown".

    Never "text": a language model needs its config.json and tokenizer beside the weights,
    which makes it an HF folder, not a loose file.
    """
    return "image" if any(n.startswith(_IMAGE_PREFIXES) for n in info.names) else "unknown"


def inspect_safetensors(path: str | Path, *, source: str = "folder") -> ModelEntry:
    path = Path(os.path.abspath(Path(path).expanduser()))
    info = read_safetensors(path)
    arch = str(info.metadata.get("modelspec.architecture") or info.metadata.get("architecture") or "unknown")
    quant = info.main_dtype
    return ModelEntry(
        id=str(path), name=f"{path.stem} ({quant})", path=str(path), format="safetensors",
        kind=guess_kind(info), source=source, architecture=arch, parameters=info.parameters,
        quantization=quant, context_length=None, size_bytes=info.size,
    )
