"""ModelEntry: what the registry knows about one model, JSON-able for the wire and the GUI."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engines.models.estimate import MemoryEstimate, estimate_for

FORMATS = ("gguf", "hf-folder", "safetensors")
SOURCES = ("bundled", "folder", "hf-cache")


@dataclass(frozen=True)
class ModelEntry:
    id: str  # "default" for the bundled model, otherwise the absolute path (file or folder)
    name: str  # display name, e.g. "SmolLM2-135M-Instruct (Q4_1)"
    path: str  # the .gguf file, or the model folder for HF folders
    format: str  # "gguf" | "hf-folder" | "safetensors"
    kind: str  # "text" (vision models too); loose safetensors files are "image" or "unknown" (they cannot be chatted with)
    source: str  # "bundled" | "folder" | "hf-cache"
    architecture: str  # e.g. "llama"
    parameters: int | None
    quantization: str  # e.g. "Q4_1", "F16"; "BF16"/"F32" from the dtype for HF folders
    context_length: int | None  # training context from the metadata
    size_bytes: int
    gguf_file: str = ""  # for HF-cache repos holding .gguf files: the file relative to the snapshot
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    vision: bool = False  # reads images: a GGUF paired with an mmproj, or an image-text-to-text folder
    mmproj: str = ""  # the vision projector GGUF paired with a .gguf model (beside it, or named in the load)
    vision_bytes: int = 0  # the vision part's weights when they are a file of their own (the mmproj)
    vision_error: str = ""  # an mmproj lies beside the model but cannot be used with it (the reason)

    def estimate(self, context_length: int | None = None) -> MemoryEstimate:
        return estimate_for(self, context_length)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["estimate"] = self.estimate(4096).to_dict()
        return data
