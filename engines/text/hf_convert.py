"""Converted-weight cache for loading GGUF files with transformers.

transformers can read a GGUF (``gguf_file=``) but dequantises it on every load (about 40 s
for the bundled 135M model on 2 cores). The first load saves the dequantised model as a
plain safetensors folder in the user cache dir; later loads read that folder in seconds.
"""
from __future__ import annotations

import copy
import hashlib
import os
import shutil
from pathlib import Path

from engines.core import paths

CONVERTED_FORMAT = "1"  # bump when the conversion changes


def converted_dir(gguf_path: str | Path) -> Path:
    gguf_path = Path(gguf_path).resolve()
    st = gguf_path.stat()
    key = f"{gguf_path}|{st.st_size}|{int(st.st_mtime)}|{CONVERTED_FORMAT}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return paths.cache_dir() / "converted" / f"{gguf_path.stem}-{digest}"


def ensure_converted(gguf_path: str | Path) -> Path:
    """Return a transformers folder for ``gguf_path``, converting it once if needed."""
    target = converted_dir(gguf_path)
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    folder, name = str(gguf_path.parent), gguf_path.name
    quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    # A model loaded from GGUF is marked as quantised and save_pretrained refuses it; rebuild
    # a plain model from the same config without the quantisation marker and copy the weights.
    config = copy.deepcopy(quantised.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict(), strict=False)
    plain.tie_weights()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if plain.generation_config is not None:
        plain.generation_config.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # the folder appears whole or not at all
    return target
