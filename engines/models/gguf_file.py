"""Validate and describe one GGUF file with the `gguf` package (llama.cpp's own Python reader).

Every failure is a ModelFileError / UnsupportedModelError naming the file and what to do; the
reader's own exceptions never escape. `gguf` (and numpy) are imported on first use so that
`import engines.models` stays cheap for the GUI process.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engines.core.errors import HearthError, ModelFileError, UnsupportedModelError
from engines.models import index_cache
from engines.models.entry import ModelEntry

MAGIC = b"GGUF"
MIN_HEADER = 24  # magic, version, tensor count, metadata count
REDOWNLOAD = "Re-download or re-copy the file."

# Architectures gguf knows (its list mirrors llama.cpp's) that are not chat/text generators:
# embedding/encoder models, diffusion language models, audio decoders.
NOT_GENERATORS = frozenset({
    "bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2",
    "jina-bert-v3", "eurobert", "gemma-embedding", "llama-embed", "t5encoder",
    "wavtokenizer-dec", "dream", "llada", "llada-moe", "rnd1",
})
PROJECTORS = frozenset({"clip"})  # mmproj files: the vision half of an image-chat model

SPLIT_NAME = re.compile(r"^(?P<prefix>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    size: int
    metadata: dict  # key -> Python value, tokenizer arrays left out
    parameters: int
    tensor_types: dict = field(default_factory=dict)  # ggml type name -> element count


class ProjectorFileError(UnsupportedModelError):
    """An mmproj file: scans skip it quietly, since it sits beside its model on purpose."""


class _Truncated(Exception):
    def __init__(self, tensor: str, end: int) -> None:
        super().__init__(tensor, end)
        self.tensor, self.end = tensor, end


class _UnknownTensorType(Exception):
    pass


@functools.cache
def _reader_class():
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader

    class CheckedReader(GGUFReader):
        """GGUFReader that refuses to read past the end of the file.

        The stock reader slices its memmap, so a truncated file surfaces as an IndexError or a
        numpy reshape error with no file or tensor named. These two hooks are private in gguf
        0.19; should a later gguf rename them, the caller's generic "truncated or corrupt"
        wrapper and the public post-check in ``_read`` still catch the file.
        """

        def _get(self, offset, dtype, count=1, override_order=None):
            end = int(offset) + np.dtype(dtype).itemsize * int(count)
            if end > self.data.shape[0]:
                raise _Truncated("", end)
            return super()._get(offset, dtype, count, override_order)

        def _build_tensors(self, start_offs, fields):
            size, worst = self.data.shape[0], None
            for info in fields:
                _name_len, name, _n_dims, dims, raw_type, rel_offset = info.parts
                try:
                    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(int(raw_type[0]))]
                except (ValueError, KeyError):
                    raise _UnknownTensorType(int(raw_type[0])) from None
                n_elements = int(np.prod(dims.astype(np.int64)))
                end = int(start_offs) + int(rel_offset[0]) + n_elements * type_size // block
                if end > size and (worst is None or end < worst[1]):
                    worst = (bytes(name).decode("utf-8", "replace"), end)
            if worst:
                raise _Truncated(*worst)
            super()._build_tensors(start_offs, fields)

    return CheckedReader


def read_gguf(path: str | Path) -> GGUFInfo:
    """Validate the file (magic, version, metadata, tensor bounds) and return what it says."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist.", path=path, hint="Check the path, or rescan your model folders.") from None
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror}).", path=path, hint="Check the file's permissions.") from None
    return _read(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)  # keyed on size and mtime: a rescan of unchanged files is free
def _read(path: str, size: int, mtime_ns: int) -> GGUFInfo:
    cached = index_cache.get(path, size, mtime_ns)
    if cached and "error" in cached:  # a bad file stays bad until it changes: no 2 s re-read per scan
        raise HearthError.from_wire(cached["error"])
    if cached:
        try:
            return GGUFInfo(**cached)
        except TypeError:
            pass
    try:
        info = _validate(path, size)
    except OSError as exc:  # not cached: permissions can change without touching the file
        raise ModelFileError(f"{path} cannot be read ({exc.strerror}).", path=path, hint="Check the file's permissions.") from None
    except HearthError as exc:
        index_cache.put(path, size, mtime_ns, {"error": exc.to_wire()})
        raise
    index_cache.put(path, size, mtime_ns, asdict(info))
    return info


def _validate(path: str, size: int) -> GGUFInfo:
    from gguf.gguf_reader import READER_SUPPORTED_VERSIONS

    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes).", path=path, hint=REDOWNLOAD)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] != MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF file (bad magic: it starts with {head[:4]!r}, not {MAGIC!r}).", path=path,
            hint="Choose a .gguf model file; if this one should be a model, re-download it.",
        )
    if size < MIN_HEADER:
        raise ModelFileError(f"{path} is truncated: {size} bytes is too short for a GGUF header.", path=path, hint=REDOWNLOAD)
    # The version is checked here so an unsupported one gets its own message (the reader only
    # raises a generic ValueError). A version with zero low bytes means the other byte order.
    version = int.from_bytes(head[4:8], "little")
    if version & 0xFFFF == 0:
        version = int.from_bytes(head[4:8], "big")
    if version not in READER_SUPPORTED_VERSIONS:
        raise UnsupportedModelError(
            f"{path} uses GGUF version {version}, which this Hearth cannot read "
            f"(it reads versions {', '.join(map(str, READER_SUPPORTED_VERSIONS))}).", path=path,
            hint="Update Hearth, or re-convert the model with a current llama.cpp.",
        )
    try:
        reader = _reader_class()(path, "r")
    except _Truncated as exc:
        if exc.tensor:
            msg = f"{path} is truncated: tensor '{exc.tensor}' ends at byte {exc.end} but the file has {size} bytes."
        else:
            msg = f"{path} is truncated: its GGUF header runs past the end of the file ({size} bytes)."
        raise ModelFileError(msg, path=path, hint=REDOWNLOAD) from None
    except _UnknownTensorType as exc:
        raise UnsupportedModelError(
            f"{path} uses an unknown tensor type ({exc.args[0]}): it is newer than this Hearth or corrupt.", path=path,
            hint=f"Update Hearth, or {REDOWNLOAD[0].lower()}{REDOWNLOAD[1:]}",
        ) from None
    except (MemoryError, OSError):
        raise
    except Exception as exc:  # whatever else the reader throws on a damaged header
        raise ModelFileError(
            f"{path} is truncated or corrupt: its GGUF header could not be read ({type(exc).__name__}: {exc}).",
            path=path, hint=REDOWNLOAD,
        ) from None
    try:
        # The spec's rule, on the reader's public fields: every tensor lies inside the file.
        for tensor in reader.tensors:
            end = int(tensor.data_offset) + int(tensor.n_bytes)
            if end > size:
                raise ModelFileError(
                    f"{path} is truncated: tensor '{tensor.name}' ends at byte {end} but the file has {size} bytes.",
                    path=path, hint=REDOWNLOAD,
                )
        metadata = {}
        for key, fld in reader.fields.items():
            if key.startswith("tokenizer.") or key.startswith("GGUF."):
                continue  # large vocabularies: not needed here, slow to convert
            try:
                metadata[key] = fld.contents()
            except Exception:  # a value we cannot decode is not worth refusing the file for
                continue
        types: dict[str, int] = {}
        params = 0
        for tensor in reader.tensors:
            n = int(tensor.n_elements)
            params += n
            types[tensor.tensor_type.name] = types.get(tensor.tensor_type.name, 0) + n
        return GGUFInfo(path, size, metadata, params, types)
    finally:
        del reader  # drop the memmap so the file is not held open


def check_architecture(path: str | Path, arch: str) -> None:
    from gguf import MODEL_ARCH_NAMES

    if arch in PROJECTORS:
        raise ProjectorFileError(
            f"{path} is a vision projector (mmproj), not a model.", path=path,
            hint="Choose the main model .gguf; the projector is used alongside it for image chat.",
        )
    if arch in NOT_GENERATORS:
        raise UnsupportedModelError(
            f"{path} is a '{arch}' model (an embedding, encoder or other non-chat model), not a text generator.",
            path=path, hint="Choose a chat or instruct model (llama, qwen, gemma, phi, mistral ...).",
        )
    if arch not in set(MODEL_ARCH_NAMES.values()):
        raise UnsupportedModelError(
            f"{path} uses the architecture '{arch}', which the llama.cpp in this Hearth does not run.", path=path,
            hint="Choose a model with a supported architecture (llama, qwen2, qwen3, gemma, phi3, mistral ...), or update Hearth.",
        )


def quantization_name(file_type, tensor_types: dict) -> str:
    """llama.cpp's file type (general.file_type), else the type holding the most weights."""
    from gguf import LlamaFileType

    if file_type is not None:
        try:
            name = LlamaFileType(int(file_type)).name
        except (ValueError, TypeError):
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    if tensor_types:
        return max(tensor_types, key=tensor_types.get)
    return "unknown"


_QUANT_TAG = re.compile(r"[.\-_](?:u?i?q\d\w*|tq\d\w*|mxfp4\w*|b?f16|f32|fp16|fp32)$", re.IGNORECASE)
_GENERIC_STEMS = {"", "model", "ggml-model", "ggml_model", "gguf"}


def display_base(path: Path, md: dict) -> str:
    """The file name without its quant tag ("SmolLM2-135M-Instruct.Q4_1" -> "SmolLM2-135M-Instruct").

    Preferred over general.name, which is often a training-run name (the bundled file says
    'Smollm2 135M 8k Lc100K Mix1 Ep2'); general.name is the fallback for generic file names.
    """
    stem = path.stem
    split = SPLIT_NAME.match(path.name)
    if split:
        stem = split["prefix"]
    stem = _QUANT_TAG.sub("", stem)
    if stem.lower() in _GENERIC_STEMS:
        stem = str(md.get("general.name") or "").strip() or path.stem
    return stem


def _int(value) -> int | None:
    if isinstance(value, list):  # per-layer values (e.g. head_count_kv): the largest one sizes the cache
        value = max(value) if value else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_later_split_part(path: str | Path) -> bool:
    """True for part 2+ of a split GGUF (…-00002-of-00003.gguf): llama.cpp loads them via part 1."""
    m = SPLIT_NAME.match(Path(path).name)
    return bool(m) and int(m["no"]) > 1


def _split_parts(path: Path, md: dict) -> list[Path]:
    count = _int(md.get("split.count")) or 1
    if count <= 1:
        return []
    number = (_int(md.get("split.no")) or 0) + 1
    m = SPLIT_NAME.match(path.name)
    if number != 1:
        first = f"{m['prefix']}-00001-of-{m['count']}.gguf" if m else "the part numbered 00001"
        raise ModelFileError(f"{path} is part {number} of {count} of a split model.", path=path, hint=f"Choose the first part, {first}.")
    if not m:
        raise ModelFileError(
            f"{path} is part 1 of {count} of a split model, but its name does not end in -00001-of-{count:05d}.gguf, "
            "so Hearth cannot find the other parts.", path=path, hint="Keep the part names that llama-gguf-split wrote.",
        )
    parts = [path.with_name(f"{m['prefix']}-{i:05d}-of-{m['count']}.gguf") for i in range(2, count + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise ModelFileError(
            f"{path} is part 1 of {count} of a split model but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing.",
            path=path, hint=f"Copy all {count} parts into {path.parent}.",
        )
    return parts


def inspect_gguf(path: str | Path, *, source: str = "folder", entry_id: str | None = None,
                 name: str | None = None, gguf_file: str = "") -> ModelEntry:
    path = Path(os.path.abspath(Path(path).expanduser()))
    info = read_gguf(path)
    md = info.metadata
    arch = md.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(
            f"{path} has no general.architecture entry, so llama.cpp cannot load it.", path=path,
            hint="Re-convert the model with llama.cpp's convert_hf_to_gguf.py.",
        )
    check_architecture(path, arch)
    params, size = info.parameters, info.size
    for part in _split_parts(path, md):
        part_info = read_gguf(part)
        params += part_info.parameters
        size += part_info.size
    quant = quantization_name(md.get("general.file_type"), info.tensor_types)
    if name is None:
        name = f"{display_base(path, md)} ({quant})"
    heads = _int(md.get(f"{arch}.attention.head_count"))
    embedding = _int(md.get(f"{arch}.embedding_length"))
    head_dim = _int(md.get(f"{arch}.attention.key_length")) or (embedding // heads if embedding and heads else None)
    return ModelEntry(
        id=entry_id or str(path), name=name, path=str(path), format="gguf", kind="text", source=source,
        architecture=arch, parameters=params, quantization=quant,
        context_length=_int(md.get(f"{arch}.context_length")), size_bytes=size, gguf_file=gguf_file,
        layers=_int(md.get(f"{arch}.block_count")),
        kv_heads=_int(md.get(f"{arch}.attention.head_count_kv")) or heads, head_dim=head_dim,
    )
