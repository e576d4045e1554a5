"""Export a tuned run (its LoRA merged into the base) or a transformers model folder as a GGUF file
that llama.cpp loads, so Chat's llama.cpp engine can run tuned models.

Facts taken from llama.cpp's ``convert_hf_to_gguf.py`` (the code here is Hearth's own):
- Llama and Mistral are written as the ``llama`` architecture, Qwen2 as ``qwen2``.
- llama.cpp's ``llama`` graph applies rotary embeddings to interleaved pairs while transformers rotates
  the two halves of each head, so the converter reorders the rows of q_proj and k_proj (per head: the
  first half and the second half interleaved). ``qwen2`` uses the half-split (NEOX) rotation: no reorder.
- 1-D tensors (norms, biases) stay F32; the 2-D weights become F16 or Q8_0 (a row length that is not a
  multiple of 32 cannot be Q8_0 and stays F16).
- A byte-level BPE tokenizer is written as ``tokenizer.ggml.model = "gpt2"`` with its tokens, token types and
  merges; ``tokenizer.ggml.pre`` names the pre-tokenizer regex llama.cpp applies before BPE. A SentencePiece
  BPE (▁ for spaces, <0xXX> byte tokens) is ``"llama"`` with a score per token instead of merges: llama.cpp
  merges the adjacent pair whose result scores highest.

The file is written under a temporary name in the target folder and renamed when complete, so a full
disk or a cancel never leaves a half-written file under the target name; the run folder is only read.

Steps: 1. check the source, its architecture and tokenizer, and the target (files only, before torch is
imported, so a refusal is quick); 2. load and merge; 3. metadata and tokenizer; 4. tensor infos; 5. write
each tensor and rename.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from engines.core import paths
from engines.core.cancel import CancelToken, Cancelled
from engines.core.errors import ModelFileError, RequestError, UnsupportedModelError
from engines.core.events import Event, Log, Progress, Result
from engines.store import runs
from engines.store.runs import check_adapter

# transformers model_type -> llama.cpp architecture
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
# A GGUF base (the bundled default is one) names llama.cpp's architecture itself.
GGUF_ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2"}
QUANTS = ("f16", "q8_0")
SUPPORTED_TEXT = "Llama, Mistral, Qwen2 and SmolLM2 (a Llama)"
CONVERT_HINT = "Use \"Merge and save…\" and llama.cpp's own convert_hf_to_gguf.py on the merged folder."


@dataclass(frozen=True)
class ExportSource:
    """What to export, checked: a finished run's adapter folder, or a plain transformers model folder."""

    folder: Path
    is_run: bool
    base_model: str  # the run's base as recorded ("default", a GGUF, a folder); the folder itself otherwise
    architecture: str  # llama.cpp's name

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def source_gguf(self) -> Path | None:
        """The GGUF the base was converted from, when it was one (its tokenizer is copied as is)."""
        if self.base_model == "default":
            from engines.models import bundled_default_path

            return bundled_default_path()
        base = Path(self.base_model)
        return base if base.suffix.lower() == ".gguf" and base.is_file() else None


def _read_json(path: Path) -> dict:
    return paths.read_json_object(path, hint="The folder is damaged; train the run again or choose another model.")


def _refuse(model_type: str, where: Path) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"Cannot export {where} as GGUF: its architecture {model_type!r} is not one Hearth's exporter knows.",
        path=where, hint=f"GGUF export supports {SUPPORTED_TEXT}; for other models use \"Merge and save…\" and "
                         "llama.cpp's own convert_hf_to_gguf.py.")


def _architecture_of_base(base_model: str, run: Path) -> str:
    """llama.cpp's architecture for a run's base, read from its config or GGUF header (no torch)."""
    if base_model == "default" or base_model.lower().endswith(".gguf"):
        if base_model == "default":
            from engines.models import bundled_default_path

            gguf_file = bundled_default_path()
        else:
            gguf_file = Path(base_model)
        from gguf import GGUFReader

        try:
            field = GGUFReader(str(gguf_file)).fields.get("general.architecture")
            arch = str(field.contents()) if field is not None else ""
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"The base model of {run}, {gguf_file}, is not a readable GGUF file ({exc}).",
                                 path=gguf_file, hint="Put the base model back, or train the run again.") from exc
        if arch not in GGUF_ARCHITECTURES:
            raise _refuse(arch or "unknown", run)
        return GGUF_ARCHITECTURES[arch]
    model_type = str(_read_json(Path(base_model) / "config.json").get("model_type") or "unknown")
    if model_type not in ARCHITECTURES:
        raise _refuse(model_type, run)
    return ARCHITECTURES[model_type]


def check_source(source: str | Path) -> ExportSource:
    """A finished causal-LM run folder, or a transformers folder with safetensors weights; else a HearthError
    naming the folder and what is wrong. Reads files only."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ModelFileError(f"{folder} does not exist or is not a folder.", path=folder,
                             hint="Choose the output folder of a finished training run (Tune room, Runs).")
    if (folder / runs.ADAPTER_CONFIG).is_file() or (folder / runs.SUMMARY).is_file() or (folder / runs.EVENTS).is_file():
        has_summary = (folder / runs.SUMMARY).is_file()
        status = (runs.read_json(folder / runs.SUMMARY) or {}).get("status")
        if (has_summary and status != "completed") or (not has_summary and (folder / runs.EVENTS).is_file()):
            raise ModelFileError(f"{folder} is not a finished run (status: {status or 'still training or stopped'}), "
                                 "so it has no adapter to export.", path=folder,
                                 hint="Resume the run until it completes, or choose a finished run.")
        info = check_adapter(folder)  # missing/pickled weights, reward models, a vanished base
        checked = ExportSource(folder.resolve(), True, info.base_model, _architecture_of_base(info.base_model, folder))
        if checked.source_gguf is None:
            _check_tokenizer_file([folder, Path(info.base_model)], folder)
        return checked
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelFileError(f"{folder} is neither a training run nor a transformers model folder "
                             "(no adapter_config.json, no config.json).", path=folder,
                             hint="Choose a finished run's folder or a folder saved by \"Merge and save…\".")
    if not any(folder.glob("*.safetensors")):
        raise ModelFileError(f"{folder} has no .safetensors weights.", path=folder,
                             hint="Hearth exports safetensors models only (pickled .bin weights are not loaded).")
    model_type = str(_read_json(config_file).get("model_type") or "unknown")
    if model_type not in ARCHITECTURES:
        raise _refuse(model_type, folder)
    _check_tokenizer_file([folder], folder)
    return ExportSource(folder.resolve(), False, str(folder.resolve()), ARCHITECTURES[model_type])


def check_target(out: str | Path) -> Path:
    target = Path(out).expanduser()
    if target.suffix.lower() != ".gguf":
        raise RequestError(f"The output file {target} does not end in .gguf.", path=target,
                           hint="Name the file like my-model.Q8_0.gguf.")
    if target.exists():
        raise RequestError(f"The output file {target} already exists.", path=target,
                           hint="Choose a new file name (Hearth never overwrites a model).")
    if target.parent.exists() and not target.parent.is_dir():
        raise RequestError(f"{target.parent} is not a folder.", path=target.parent, hint="Choose another folder.")
    return target


def default_target(source: ExportSource, quant: str) -> Path:
    """``<models folder>/<run name>.<QUANT>.gguf`` (Chat lists the models folder), numbered if taken."""
    from engines.core.paths import models_dir

    folder = models_dir()
    stem = f"{source.name}.{quant.upper()}"
    target, n = folder / f"{stem}.gguf", 2
    while target.exists():
        target, n = folder / f"{stem}-{n}.gguf", n + 1
    return target


# -- tensors ------------------------------------------------------------------------------------
def interleave_rotary_rows(weight, heads: int):
    """Reorder q/k rows from transformers' half-split rotary layout to llama.cpp's interleaved pairs."""
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _llama3_rope_factors(rope: dict, head_dim: int, theta: float):
    """The per-frequency scale factors of Llama 3.1's "llama3" rope (llama.cpp reads them from rope_freqs)."""
    import math

    import numpy as np

    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_context = float(rope.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_context / low, old_context / high
    factors = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * theta ** (i / head_dim)
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


# -- the export ---------------------------------------------------------------------------------
def _load_merged(source: ExportSource):
    import torch

    if source.is_run:
        from engines.tune.adapters import load_tuned_model

        model, tokenizer = load_tuned_model(source.folder)
        model = model.merge_and_unload()
        return model, tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(source.folder), dtype=torch.float32, local_files_only=True)
    return model.eval(), AutoTokenizer.from_pretrained(str(source.folder), local_files_only=True)


def _rope(config) -> tuple[float, dict]:
    rope = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    theta = rope.get("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
    return float(theta), rope


def _write_hparams(writer, config, source: ExportSource, quant: str) -> tuple[int, int, int]:
    import gguf

    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    theta, rope = _rope(config)
    writer.add_name(source.name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_freq_base(theta)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config.vocab_size)
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type not in ("default", "llama3"):
        raise UnsupportedModelError(f"Cannot export {source.folder} as GGUF: its rope scaling {rope_type!r} is not "
                                    "supported by Hearth's exporter.", path=source.folder,
                                    hint=CONVERT_HINT)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    if quant != "f16":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    return heads, kv_heads, head_dim


def _copy_tokenizer_from_gguf(writer, gguf_file: Path) -> None:
    """The base GGUF's own tokenizer (llama.cpp's names for its pre-tokenizer and token types) as is."""
    from gguf import GGUFReader, GGUFValueType

    for key, field in GGUFReader(str(gguf_file)).fields.items():
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        sub_type = field.types[1] if field.types[0] == GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)


def _pre_tokenizer_name(spec: dict | None, where: Path) -> str:
    """llama.cpp's pre-tokenizer for a byte-level BPE, recognised from tokenizer.json's pre_tokenizer."""
    steps = (spec or {}).get("pretokenizers") if (spec or {}).get("type") == "Sequence" else [spec or {}]
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex", "")
        if "\\p{N}{1,3}" in pattern:
            return "llama-bpe"  # Llama 3
        if "\\p{N}|" in pattern or pattern.endswith("\\p{N}"):
            return "qwen2"
    raise UnsupportedModelError(f"Cannot export {where} as GGUF: its tokenizer's pre-tokenizer ({kinds}) is not one "
                                "Hearth's exporter recognises.", path=where, hint=CONVERT_HINT)


def _is_sentencepiece_bpe(spec: dict) -> bool:
    """A SentencePiece BPE vocabulary as transformers writes it (Llama 2, Mistral 7B): ▁ for spaces, byte fallback."""
    model = spec.get("model") or {}
    return model.get("type") == "BPE" and bool(model.get("byte_fallback"))


def check_tokenizer_spec(spec: dict, where: Path) -> tuple[str, str]:
    """``(tokenizer.ggml.model, tokenizer.ggml.pre)`` for a tokenizer.json Hearth can write: a byte-level BPE
    ("gpt2" with a named pre-tokenizer) or a SentencePiece BPE ("llama"); UnsupportedModelError naming ``where``
    otherwise."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise UnsupportedModelError(f"Cannot export {where} as GGUF: its tokenizer ({model.get('type') or 'unknown'}) "
                                    "is not a BPE, the only kind Hearth's exporter writes (byte-level as in Llama 3, "
                                    "Qwen2, SmolLM2; SentencePiece BPE as in Llama 2, Mistral).", path=where,
                                    hint=CONVERT_HINT)
    if not model.get("merges"):  # llama.cpp needs the merges key and the gguf package cannot write an empty array
        raise UnsupportedModelError(f"Cannot export {where} as GGUF: its BPE tokenizer has no merges.", path=where,
                                    hint="Export a model whose tokenizer.json lists its BPE merges.")
    if _is_sentencepiece_bpe(spec):
        return "llama", "default"
    return "gpt2", _pre_tokenizer_name(spec.get("pre_tokenizer"), where)


def _check_tokenizer_file(folders: list[Path], where: Path) -> None:
    """The tokenizer the export will use, checked before any weights are loaded."""
    for folder in folders:
        if (folder / "tokenizer.json").is_file():
            check_tokenizer_spec(_read_json(folder / "tokenizer.json"), where)
            return
    raise UnsupportedModelError(f"Cannot export {where} as GGUF: it has no tokenizer.json (a fast tokenizer), the "
                                "only tokenizer format Hearth's exporter reads.", path=where, hint=CONVERT_HINT)


def _merge_pairs(model: dict) -> list[tuple[str, str]]:
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def _write_tokenizer(writer, tokenizer, vocab_size: int, where: Path) -> None:
    """Tokens, types, merges or scores, special ids and flags from the tokenizer the model was tuned with."""
    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str()) if hasattr(tokenizer, "backend_tokenizer") else {}
    kind, pre = check_tokenizer_spec(spec, where)
    model = spec["model"]
    writer.add_tokenizer_model(kind)
    writer.add_tokenizer_pre(pre)
    by_id = {i: t for t, i in model["vocab"].items()}
    added = {a["id"]: a for a in spec.get("added_tokens", [])}
    pairs = _merge_pairs(model)
    # SentencePiece merges the adjacent pair whose merged piece scores highest: rank order as the score
    # reproduces the order of tokenizer.json's merges.
    rank = {}
    for i, (a, b) in enumerate(pairs):
        rank.setdefault(a + b, i)
    tokens, types, scores = [], [], []
    for i in range(vocab_size):
        if i in added:
            text = added[i]["content"]
            kind_of = gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED
        elif i in by_id:
            text = by_id[i]
            kind_of = gguf.TokenType.NORMAL
            if kind == "llama" and len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
                kind_of = gguf.TokenType.BYTE
            elif text == model.get("unk_token"):
                kind_of = gguf.TokenType.UNKNOWN
        else:  # embedding rows past the tokenizer (padded vocabularies)
            text, kind_of = f"[PAD{i}]", gguf.TokenType.UNUSED
        tokens.append(text)
        types.append(kind_of)
        scores.append(-float(rank.get(text, len(pairs) + i)))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    if kind == "gpt2":
        writer.add_token_merges([f"{a} {b}" for a, b in pairs])
    else:
        writer.add_token_scores(scores)
        writer.add_add_space_prefix(_adds_space_prefix(spec))
    for special in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{special}_token_id", None)
        if token_id is not None:
            getattr(writer, f"add_{special}_token_id")(int(token_id))
    probe = tokenizer("a").input_ids
    writer.add_add_bos_token(tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id])
    writer.add_add_eos_token(tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id])


def _adds_space_prefix(spec: dict) -> bool:
    """SentencePiece's "▁" before the text: a Prepend normaliser (older files) or a Metaspace pre-tokenizer."""
    def steps(part: dict | None, key: str) -> list[dict]:
        part = part or {}
        return part.get(key) or [] if part.get("type") == "Sequence" else [part]

    if any(n.get("type") == "Prepend" and n.get("prepend") == "▁" for n in steps(spec.get("normalizer"), "normalizers")):
        return True
    return any(p.get("type") == "Metaspace" and p.get("prepend_scheme", "always") != "never"
               for p in steps(spec.get("pre_tokenizer"), "pretokenizers"))


def _tensor_plan(model, arch: str, heads: int, kv_heads: int, tied: bool) -> list[tuple]:
    """``(gguf name, tensor, heads to reorder by or 0)`` for each weight, in the model's order."""
    import gguf

    arch_enum = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[arch]
    names = gguf.get_tensor_name_map(arch_enum, model.config.num_hidden_layers)
    plan = []
    for hf_name, tensor in model.state_dict().items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UnsupportedModelError(f"The tensor {hf_name} has no GGUF name for the {arch} architecture.",
                                        hint=CONVERT_HINT)
        reorder = 0
        if arch == "llama" and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            reorder = heads
        elif arch == "llama" and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            reorder = kv_heads
        plan.append((name, tensor, reorder))
    return plan


def _stored_type(shape: tuple, quant: str) -> str:
    """F32 for 1-D tensors (norms, biases, rope factors); Q8_0 where rows split into 32-value blocks; else F16."""
    if len(shape) < 2:
        return "f32"
    return "q8_0" if quant == "q8_0" and shape[-1] % 32 == 0 else "f16"


def _add_tensor_info(writer, name: str, shape: tuple, quant: str) -> None:
    import gguf
    import numpy as np

    kind = _stored_type(shape, quant)
    count = int(np.prod(shape))
    if kind == "q8_0":
        byte_shape = gguf.quants.quant_shape_to_byte_shape(shape, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)),
                               raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        dtype = np.dtype(np.float32 if kind == "f32" else np.float16)
        writer.add_tensor_info(name, shape, dtype, count * dtype.itemsize)


def _convert(tensor, reorder: int, quant: str):
    """The array written for one tensor, in the type ``_stored_type`` announced."""
    import gguf
    import numpy as np

    if isinstance(tensor, np.ndarray):
        data = tensor.astype(np.float32)
    else:
        import torch

        data = tensor.detach().to(dtype=torch.float32).cpu().numpy()
    if reorder:
        data = interleave_rotary_rows(data, reorder)
    kind = _stored_type(data.shape, quant)
    if kind == "q8_0":
        return gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
    return np.ascontiguousarray(data, dtype=np.float32 if kind == "f32" else np.float16)


def export_gguf(source: str | Path | ExportSource, out: str | Path, quant: str = "f16",
                cancel: CancelToken | None = None) -> Iterator[Event]:
    """Write ``out`` (a new .gguf) from a run or model folder; yields Progress/Log, then a Result with
    ``{"file", "bytes", "quant", "architecture", "source"}`` (``finish_reason="cancelled"`` and no file
    when ``cancel`` fired)."""
    try:
        yield from _export(source, out, quant, cancel or CancelToken())
    except Cancelled:
        yield Result(finish_reason="cancelled", data={"file": None, "quant": quant})


def _export(source, out, quant: str, cancel: CancelToken) -> Iterator[Event]:
    import errno

    if quant not in QUANTS:
        raise RequestError(f"Unknown quantisation {quant!r}.", hint=f"Use one of {', '.join(QUANTS)}.")
    # 1. check the source and the target
    src = source if isinstance(source, ExportSource) else check_source(source)
    target = check_target(out)
    yield Progress(0, 3, f"Loading {src.name}" + (" and merging its adapter" if src.is_run else ""))

    # 2. load and merge
    import gguf

    model, tokenizer = _load_merged(src)
    config = model.config
    cancel.raise_if_cancelled()
    yield Progress(1, 3, "Converting the tokenizer")

    # 3. metadata and tokenizer
    writer_tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    writer = gguf.GGUFWriter(None, src.architecture)
    heads, kv_heads, head_dim = _write_hparams(writer, config, src, quant)
    if src.source_gguf is not None:
        _copy_tokenizer_from_gguf(writer, src.source_gguf)
    else:
        _write_tokenizer(writer, tokenizer, config.vocab_size, src.folder)
    template = getattr(tokenizer, "chat_template", None)
    if not template and src.source_gguf is not None:
        from gguf import GGUFReader

        field = GGUFReader(str(src.source_gguf)).fields.get("tokenizer.chat_template")
        template = str(field.contents()) if field is not None else None
    if template:
        writer.add_chat_template(template)

    # 4. tensors: their names, types and sizes first; the data is converted one tensor at a time while
    # writing, so the file never needs a second copy of the model in memory.
    tied = bool(getattr(config, "tie_word_embeddings", False))
    plan = _tensor_plan(model, src.architecture, heads, kv_heads, tied)
    theta, rope = _rope(config)
    if (rope.get("rope_type") or rope.get("type")) == "llama3":
        factors = _llama3_rope_factors(rope, head_dim, theta)
        plan.insert(0, ("rope_freqs.weight", factors, 0))
    for name, tensor, _reorder in plan:
        _add_tensor_info(writer, name, tuple(tensor.shape), quant)
    yield Progress(2, 3, f"Writing {len(plan)} tensors ({quant.upper()}) to {target.name}")

    # 5. write under a temporary name, then rename
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer.write_header_to_file(path=writer_tmp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, tensor, reorder in plan:
            cancel.raise_if_cancelled()
            writer.write_tensor_data(_convert(tensor, reorder, quant))
        writer.close()
        if target.exists():  # appeared while we were writing
            raise RequestError(f"The output file {target} already exists.", path=target, hint="Choose a new file name.")
        os.replace(writer_tmp, target)
    except OSError as exc:
        _discard(writer, writer_tmp)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise ModelFileError(
            f"Writing {target} failed: {'the disk is full' if full else exc.strerror or exc}. Nothing was left "
            "under that name.", path=target,
            hint="Free some disk space or choose another folder." if full else "Choose another folder.") from exc
    except BaseException:  # a cancel, or anything else: never leave the temporary file behind
        _discard(writer, writer_tmp)
        raise
    yield Progress(3, 3, f"Exported {target.name}")
    yield Log(f"Exported {src.folder} to {target} ({quant.upper()}, {src.architecture}).")
    yield Result(data={"file": str(target), "bytes": target.stat().st_size, "quant": quant,
                       "architecture": src.architecture, "source": str(src.folder)})


def _discard(writer, tmp: Path) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - the write already failed; the temp file goes either way
        pass
    tmp.unlink(missing_ok=True)


def run_cli(args: Any) -> int:
    """``main.py export-gguf --run FOLDER [--out FILE.gguf] [--quant f16|q8_0]``: one JSON line on success."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    src = check_source(args.run)
    target = Path(args.out) if args.out else default_target(src, args.quant)
    result: dict = {}
    for event in export_gguf(src, target, args.quant):
        if isinstance(event, Progress):
            print(f"[{event.step}/{event.total}] {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, Result):
            result = event.data
    print(json.dumps(result), flush=True)
    return 0
