"""Validate and describe a Hugging Face transformers model folder (config.json + safetensors + tokenizer)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from engines.core.errors import ModelFileError, UnsupportedModelError
from engines.models.entry import ModelEntry
from engines.models.safetensors_file import read_safetensors

TEXT_CLASS_SUFFIXES = ("ForCausalLM", "LMHeadModel")  # e.g. LlamaForCausalLM, GPT2LMHeadModel
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
INDEX_FILE = "model.safetensors.index.json"
DTYPE_NAMES = {"float32": "F32", "float": "F32", "float16": "F16", "half": "F16", "bfloat16": "BF16", "float64": "F64"}
PICKLE_HINT = ("Hearth does not load pickle files by default because loading one can run arbitrary code. "
               "Convert the weights to safetensors (in transformers: "
               "model.save_pretrained(folder, safe_serialization=True)).")


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist.", path=path, hint="Re-download the model's config.json.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}).", path=path, hint="Re-download the model's config.json.") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} is not a JSON object.", path=path, hint="Re-download the model's config.json.")
    return config


def text_architecture(config: dict) -> str | None:
    """The first *ForCausalLM / *LMHeadModel class in "architectures", or None."""
    for name in config.get("architectures") or []:
        if isinstance(name, str) and name.endswith(TEXT_CLASS_SUFFIXES):
            return name
    return None


def vision_architecture(config: dict) -> str | None:
    """An image-text-to-text class (LLaVA, Qwen2-VL, Idefics3/SmolVLM, Gemma 3 ...): a generator with a vision
    tower, which transformers loads with AutoModelForImageTextToText."""
    if not isinstance(config.get("vision_config"), dict):
        return None
    for name in config.get("architectures") or []:
        if isinstance(name, str) and name.endswith(("ForConditionalGeneration", "ForImageTextToText")):
            return name
    return None


def pickle_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def _weight_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The safetensors files (from the shard index when there is one) and the shards that are missing."""
    index = folder / INDEX_FILE
    if index.is_file():
        data = read_config(index)
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelFileError(f"{index} has no weight_map.", path=index, hint="Re-download the model's index file.")
        shards = [folder / name for name in sorted(set(map(str, weight_map.values())))]
        return [s for s in shards if s.is_file()], [s.name for s in shards if not s.is_file()]
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".safetensors")
    return files, []


def _lookup(config: dict, *keys: str):
    """First of ``keys`` in the config, else in its text_config (multimodal configs nest it)."""
    nested = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for source in (config, nested):
        for key in keys:
            value = source.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return int(value)
            if isinstance(value, str) and key.endswith("dtype"):
                return value
    return None


def _quantization(config: dict, dtype_elements: dict) -> str:
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        bits = quant.get("bits") or (4 if quant.get("load_in_4bit") else 8 if quant.get("load_in_8bit") else None)
        return f"{str(quant['quant_method']).upper()}{f'-{bits}bit' if bits else ''}"
    dtype = _lookup(config, "dtype", "torch_dtype")
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in DTYPE_NAMES:
        return DTYPE_NAMES[dtype.removeprefix("torch.")]
    return max(dtype_elements, key=dtype_elements.get) if dtype_elements else "unknown"


def inspect_hf_folder(folder: str | Path, *, source: str = "folder", base_name: str | None = None,
                      entry_id: str | None = None) -> ModelEntry:
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    shards, missing_shards = _weight_files(folder)
    if not shards and not missing_shards and (pickles := pickle_files(folder)):
        raise UnsupportedModelError(f"{folder} only holds pickle weights ({', '.join(pickles)}).", path=folder, hint=PICKLE_HINT)
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if missing_shards:
        missing.append(f"weight shards {', '.join(missing_shards)}")
    elif not shards:
        missing.append("weights (*.safetensors)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    if missing:
        raise ModelFileError(
            f"{folder} is incomplete: missing {'; '.join(missing)}.", path=folder,
            hint="Re-download the model, or copy the missing files into the folder.",
        )
    config = read_config(folder / "config.json")
    vision = vision_architecture(config)
    if not (text_architecture(config) or vision):
        classes = [a for a in config.get("architectures") or [] if isinstance(a, str)]
        if classes:
            raise UnsupportedModelError(
                f"{folder} holds a {classes[0]} model, not a text generator (Hearth chats with *ForCausalLM models "
                "and image-text-to-text models with a vision_config).",
                path=folder, hint="Choose a chat or instruct model.",
            )
        raise UnsupportedModelError(
            f"{folder / 'config.json'} names no architectures, so Hearth cannot tell whether it is a text generator.",
            path=folder, hint='Re-download the model, or add e.g. "architectures": ["LlamaForCausalLM"] to config.json.',
        )
    params, size, dtypes = 0, 0, {}
    for shard in shards:  # header-only reads: bounds-checks every shard without loading it
        info = read_safetensors(shard)
        params, size = params + info.parameters, size + info.size
        for dtype, n in info.dtype_elements.items():
            dtypes[dtype] = dtypes.get(dtype, 0) + n
    quant = _quantization(config, dtypes)
    heads = _lookup(config, "num_attention_heads", "n_head")
    hidden = _lookup(config, "hidden_size", "n_embd", "d_model")
    return ModelEntry(
        id=entry_id or str(folder), name=f"{base_name or folder.name} ({quant})", path=str(folder),
        format="hf-folder", kind="text", source=source,
        architecture=str(config.get("model_type") or text_architecture(config) or vision), parameters=params,
        quantization=quant,
        context_length=_lookup(config, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"),
        size_bytes=size,
        layers=_lookup(config, "num_hidden_layers", "n_layer", "num_layers"),
        kv_heads=_lookup(config, "num_key_value_heads", "multi_query_group_num") or heads,
        head_dim=_lookup(config, "head_dim") or (hidden // heads if hidden and heads else None),
        vision=bool(vision),
    )
