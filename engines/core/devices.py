"""Device choice (cuda > mps > cpu, overridable) and what memory the machine has.

torch is imported lazily: the GUI process calls ``system_memory`` only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from engines.core.errors import RequestError

VALID = ("auto", "cuda", "mps", "cpu")


def select_device(preferred: str | None = None) -> str:
    """Return 'cuda', 'mps' or 'cpu'. ``preferred`` (or ``HEARTH_DEVICE``) overrides 'auto'."""
    choice = (preferred or os.environ.get("HEARTH_DEVICE") or "auto").lower()
    if choice.startswith("cuda:"):
        choice, index = "cuda", choice.split(":", 1)[1]
    else:
        index = ""
    if choice not in VALID:
        raise RequestError(f"Unknown device {choice!r}.", hint="Use one of auto, cuda, mps, cpu.")
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise RequestError("Device 'cuda' was asked for but no CUDA GPU is available.", hint="Choose 'auto' or 'cpu'.")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise RequestError("Device 'mps' was asked for but Apple MPS is not available.", hint="Choose 'auto' or 'cpu'.")
    return f"cuda:{index}" if index else choice


@dataclass(frozen=True)
class MemoryInfo:
    ram_total: int
    ram_available: int
    gpu_name: str = ""
    vram_total: int = 0
    vram_free: int = 0

    def to_dict(self) -> dict:
        return {
            "ram_total": self.ram_total, "ram_available": self.ram_available,
            "gpu_name": self.gpu_name, "vram_total": self.vram_total, "vram_free": self.vram_free,
        }


def system_memory(include_gpu: bool = False) -> MemoryInfo:
    import psutil

    vm = psutil.virtual_memory()
    gpu_name, vram_total, vram_free = "", 0, 0
    if include_gpu:
        import torch

        if torch.cuda.is_available():
            vram_free, vram_total = torch.cuda.mem_get_info()
            gpu_name = torch.cuda.get_device_name()
    return MemoryInfo(vm.total, vm.available, gpu_name, vram_total, vram_free)


def release_memory() -> None:
    """After dropping a model's last reference: collect it, and hand cached GPU memory back to the driver so the
    next model (or another program) can use it."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # never imports torch itself: nothing to release if it was never loaded
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
