"""The model registry: bundled defaults, user folders, the HF cache; file validation and memory estimates.

Plain Python: importing this never imports torch or Qt (``gguf`` loads on first use).
"""
from engines.models.entry import ModelEntry
from engines.models.estimate import MemoryEstimate, check_fits
from engines.models.registry import (
    DEFAULT_ID, bundled_default_path, configured_folders, hf_cache_dir, inspect_model, resolve_model, scan_models,
)

__all__ = [
    "DEFAULT_ID", "MemoryEstimate", "ModelEntry", "bundled_default_path", "check_fits", "configured_folders",
    "hf_cache_dir", "inspect_model", "resolve_model", "scan_models",
]
