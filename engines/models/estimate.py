"""How much memory a model needs at a given context length, and whether that fits now.

The numbers are estimates for the default backend (llama.cpp for GGUF, transformers for
folders), made before loading so the user hears "too large" instead of meeting the OOM killer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from engines.core.errors import OutOfMemoryError

if TYPE_CHECKING:
    from engines.models.entry import ModelEntry

GB = 1_000_000_000
DEFAULT_CONTEXT = 4096  # the "context_length" setting's default

# Compute buffers, the runtime itself, tokenizer and sampling state. llama.cpp's CPU compute
# buffer for small models at 4096 tokens is tens to ~200 MB (it grows with vocabulary and
# batch size); 256 MiB is a deliberately round, slightly pessimistic constant.
OVERHEAD_BYTES = 256 * 1024 * 1024

# The KV cache is stored as f16 by default in llama.cpp and in transformers' half-precision runs.
KV_BYTES_PER_VALUE = 2

# Bytes per parameter for the dtype names a ModelEntry reports as its quantization.
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "BOOL": 1,
}


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    total_bytes: int
    available_bytes: int
    fits: bool
    context_length: int = DEFAULT_CONTEXT
    vision_bytes: int = 0  # the mmproj (vision encoder + projector), part of weights_bytes

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"needs ~{_gb(self.total_bytes, 1)} GB (weights {_gb(self.weights_bytes)} GB"
            + (f" incl. vision {_gb(self.vision_bytes)} GB" if self.vision_bytes else "") + " + KV cache "
            f"{_gb(self.kv_cache_bytes)} GB at {self.context_length} tokens + overhead "
            f"{_gb(self.overhead_bytes)} GB) of {_gb(self.available_bytes, 1)} GB available"
        )


def _gb(n: int, digits: int = 2) -> str:
    """GB with ``digits`` decimals, but never fewer than two below 1 GB (so 50 MB is not "0.1")."""
    return f"{n / GB:.{digits if n >= GB else max(digits, 2)}f}"


def available_memory() -> int:
    """RAM available right now (psutil). Tests monkeypatch this."""
    from engines.core.devices import system_memory

    return system_memory().ram_available


def kv_cache_bytes(layers: int | None, kv_heads: int | None, head_dim: int | None, context_length: int) -> int:
    """K and V for every layer and token: 2 * layers * context * kv_heads * head_dim * 2 bytes.

    0 when the shape is unknown (e.g. a loose safetensors file) or the model has no per-token
    cache (recurrent models report no attention heads).
    """
    if not layers or not kv_heads or not head_dim:
        return 0
    return 2 * layers * context_length * kv_heads * head_dim * KV_BYTES_PER_VALUE


def weights_bytes(entry: "ModelEntry") -> int:
    """GGUF: llama.cpp maps the file as is, so its size (plus its mmproj's). Folders: parameters * bytes of
    the dtype (a vision model's tower and projector are among its parameters)."""
    if entry.format != "gguf" and entry.parameters and entry.quantization in DTYPE_BYTES:
        return entry.parameters * DTYPE_BYTES[entry.quantization]
    return entry.size_bytes + entry.vision_bytes


def estimate_for(entry: "ModelEntry", context_length: int | None = None) -> MemoryEstimate:
    ctx = int(context_length or DEFAULT_CONTEXT)
    weights = weights_bytes(entry)
    kv = kv_cache_bytes(entry.layers, entry.kv_heads, entry.head_dim, ctx)
    total = weights + kv + OVERHEAD_BYTES
    available = available_memory()
    return MemoryEstimate(weights, kv, OVERHEAD_BYTES, total, available, total < available, ctx, entry.vision_bytes)


def check_fits(entry: "ModelEntry", context_length: int | None = None) -> MemoryEstimate:
    """Return the estimate, or raise OutOfMemoryError when the model would not fit in RAM now."""
    est = estimate_for(entry, context_length)
    if not est.fits:
        raise OutOfMemoryError(
            f"{entry.name} needs ~{_gb(est.total_bytes, 1)} GB at context {est.context_length} "
            f"but only {_gb(est.available_bytes, 1)} GB are available.",
            path=entry.path,
            hint="Choose a smaller quantisation or a shorter context.",
        )
    return est
