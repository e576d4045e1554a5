"""Vision projectors (mmproj GGUF files) and the models they pair with.

An ``mmproj*.gguf`` in the same folder as a model GGUF is paired with it (the convention of llama.cpp and
LM Studio). The projector is validated like any GGUF, and its output width (what it feeds the language
model per image token) must equal the model's embedding width: a projector made for another model is a
clear error naming both files, not garbage replies or a crash inside llama.cpp.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from engines.core.errors import HearthError, ModelFileError, UnsupportedModelError
from engines.models.entry import ModelEntry
from engines.models.gguf_file import PROJECTORS, read_gguf

# llama.cpp's clip loader names projector layers "mm.<...>.weight" (mm.0, mm.2 for LLaVA's MLP; mm.model.fc ...):
# the highest-numbered one is the output layer.
_LAYER_NUMBER = re.compile(r"(\d+)")


def is_mmproj_name(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".gguf") and "mmproj" in lower


def projector_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_mmproj_name(p.name))
    except OSError:
        return []


@dataclasses.dataclass(frozen=True)
class Projector:
    path: str
    size: int
    projector_type: str  # clip.projector_type, e.g. "mlp", "idefics3", "qwen2.5vl_merger"; "" when absent
    output_width: int | None  # the embedding width it produces (must be the model's n_embd)
    name: str  # general.name, "" when absent


def read_projector(path: str | Path) -> Projector:
    """Validate an mmproj GGUF (header, tensor bounds, that it is a vision projector) and describe it."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    info = read_gguf(path)
    md = info.metadata
    arch = md.get("general.architecture")
    if arch not in PROJECTORS:
        raise UnsupportedModelError(f"{path} is a '{arch}' GGUF, not a vision projector (mmproj).", path=path,
                                    hint="Choose the mmproj .gguf made for this model (its name usually starts with 'mmproj').")
    if md.get("clip.has_vision_encoder") is False:
        raise UnsupportedModelError(f"{path} is a projector without a vision encoder (audio only?).", path=path,
                                    hint="Choose an mmproj file with a vision encoder.")
    width = md.get("clip.vision.projection_dim")
    return Projector(str(path), info.size, str(md.get("clip.projector_type") or ""),
                     int(width) if isinstance(width, int) and width > 0 else _width_from_tensors(path),
                     str(md.get("general.name") or ""))


def _width_from_tensors(path: Path) -> int | None:
    """The last projector layer's output size, for mmproj files without clip.vision.projection_dim."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path), "r")
    except Exception:  # noqa: BLE001 - read_gguf already validated the file; no width means no check
        return None
    try:
        best: tuple[int, int] | None = None
        for tensor in reader.tensors:
            if tensor.name.startswith("mm.") and tensor.name.endswith(".weight") and len(tensor.shape) >= 2:
                numbers = _LAYER_NUMBER.findall(tensor.name)
                rank = int(numbers[-1]) if numbers else -1
                if best is None or rank >= best[0]:
                    best = (rank, int(tensor.shape[1]))  # ggml order: (in, out)
        return best[1] if best else None
    finally:
        del reader


def model_width(model_path: str | Path) -> int | None:
    md = read_gguf(model_path).metadata
    arch = md.get("general.architecture")
    value = md.get(f"{arch}.embedding_length")
    return int(value) if isinstance(value, int) else None


def check_pair(model_path: str | Path, projector: Projector) -> None:
    """A ModelFileError naming both files when the projector's output width is not the model's."""
    width = model_width(model_path)
    if width and projector.output_width and width != projector.output_width:
        raise ModelFileError(
            f"The vision projector {projector.path} does not match the model {model_path}: it produces "
            f"{projector.output_width}-wide image embeddings but the model's embeddings are {width} wide.",
            path=projector.path, hint="Use the mmproj file published with this model (same model family and size).")


def pair(entry: ModelEntry, mmproj: str | Path) -> ModelEntry:
    """``entry`` with the projector ``mmproj`` (validated and checked against the model), or an error."""
    if entry.format != "gguf":
        raise UnsupportedModelError(f"An mmproj file pairs with a .gguf model; {entry.path} is a {entry.format}.",
                                    path=entry.path, hint="Leave the mmproj out for this model.")
    projector = read_projector(mmproj)
    check_pair(entry.path, projector)
    return dataclasses.replace(entry, vision=True, mmproj=projector.path, vision_bytes=projector.size, vision_error="")


def pair_beside(entry: ModelEntry) -> ModelEntry:
    """``entry`` paired with an mmproj*.gguf in its folder, if there is one that fits.

    Several projectors (e.g. F16 and Q8_0 of the same one): the first that fits, by name. None fits: the
    entry stays text-only and says why in ``vision_error``.
    """
    candidates = projector_files(Path(entry.path).parent)
    errors: list[str] = []
    for candidate in candidates:
        try:
            return pair(entry, candidate)
        except HearthError as exc:
            errors.append(exc.message)
    if errors:
        return dataclasses.replace(entry, vision_error=" ".join(errors))
    return entry
