"""Build a diffusers pipeline for an image model, offline, and choose dtype/device/offload.

diffusers does the loading (from_pretrained, from_single_file, AutoPipeline*.from_pipe); this
module only decides which call to make and turns their failures into HearthErrors. Single-file
checkpoints get their component configs from assets/sd-configs/<architecture> (config= plus
local_files_only=True), so from_single_file never reaches the network.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from engines.core import paths
from engines.core.errors import HearthError, ModelFileError, OutOfMemoryError, UnsupportedModelError
from engines.core.requests.image import MemoryOptions
from engines.models.image_models import SINGLE_FILE_CONFIGS, ImageModelEntry

GB = 1_000_000_000
# Activation memory per megapixel at batch 1 (UNet attention + VAE decode), measured for SD 1.5
# at fp16 in the diffusers docs' ballpark; deliberately pessimistic.
ACTIVATION_BYTES_PER_MEGAPIXEL = int(2.5 * GB)
VAE_TILING_PIXELS = 1024 * 1024  # VAE decode above this size goes tile by tile


@dataclass
class Placement:
    device: str
    dtype: str  # float32 | float16 | bfloat16
    offload: str  # none | model | sequential
    estimate_bytes: int
    available_bytes: int


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def choose_placement(entry: ImageModelEntry, memory: MemoryOptions, width: int = 512, height: int = 512,
                     batch: int = 1) -> Placement:
    """Device, dtype and CPU offload from the estimate; every choice is overridable in ``memory``."""
    from engines.core.devices import select_device, system_memory

    device = select_device(memory.device)
    dtype = memory.dtype
    if dtype == "auto":
        if device.startswith("cuda"):
            import torch

            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        elif device == "mps":
            dtype = "float16"
        else:
            dtype = "float32"
    per_param = 4 if dtype == "float32" else 2
    weights = (entry.parameters or entry.size_bytes // 2) * per_param
    activations = ACTIVATION_BYTES_PER_MEGAPIXEL * width * height * batch // (1024 * 1024)
    if dtype == "float32":
        activations *= 2
    estimate = weights + activations
    info = system_memory(include_gpu=device.startswith("cuda"))
    if device.startswith("cuda"):
        available = info.vram_free
        offload = memory.offload
        if offload == "auto":
            if estimate < available:
                offload = "none"
            elif activations + weights // 3 < available:
                offload = "model"  # one component on the GPU at a time
            else:
                offload = "sequential"  # layer by layer: slow, but fits almost anything
    else:
        available = info.ram_available
        offload = "none" if memory.offload == "auto" else memory.offload
        if estimate > available:
            raise OutOfMemoryError(
                f"{entry.name} needs ~{estimate / GB:.1f} GB at {width}x{height} (batch {batch}) "
                f"but only {available / GB:.1f} GB of RAM are available.", path=entry.path,
                hint="Close other programs, or use a smaller size or batch.",
            )
    return Placement(device, dtype, offload, estimate, available)


def model_hash(path: str) -> str:
    """A1111's short model hash: the first 10 hex digits of the file's SHA-256 (for a folder, of
    its UNet weights). Cached by path, size and mtime, since a multi-GB file takes seconds."""
    p = Path(path)
    if p.is_dir():
        found = sorted((p / "unet").glob("*.safetensors")) or sorted(p.glob("*.safetensors"))
        if not found:
            return ""
        p = found[0]
    stat = p.stat()
    cache = paths.cache_dir() / "hashes"
    key = hashlib.sha256(f"{p.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    cached = cache / key
    if cached.is_file():
        return cached.read_text().strip()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    short = h.hexdigest()[:10]
    paths.atomic_write_text(cached, short)
    return short


def _pickle_to_safetensors(path: Path) -> Path:
    """Opted-in pickle: tensors only, through torch.load(weights_only=True), re-saved as safetensors.

    weights_only=True makes torch's unpickler refuse every global but tensor types, so a
    crafted file cannot run code; the re-save means diffusers never sees the pickle itself.
    """
    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for code-carrying pickles, RuntimeError for corrupt zips
        raise UnsupportedModelError(
            f"{path} could not be read as plain tensors ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).",
            path=path, hint="The file holds more than tensors, or is corrupt; Hearth will not execute it. Use a .safetensors version.",
        ) from None
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UnsupportedModelError(f"{path} does not hold a state dict.", path=path, hint="Use a .safetensors version.")
    tensors = {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    out = paths.cache_dir() / "converted" / f"{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}-{path.stem}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, out)
    return out


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte -> printable character table (the BPE alphabet); from the CLIP paper's code."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def single_file_config(arch: str) -> Path:
    """assets/sd-configs/<arch> materialised in the cache with the CLIP tokenizer files.

    The vocabulary ships once (gzipped); vocab.json/merges.txt are rebuilt from it exactly as
    CLIP's SimpleTokenizer builds its tables: the 256 byte symbols, the same with ``</w>``,
    one token per merge, then the two special tokens (49408 in all).
    """
    import gzip
    import json
    import shutil

    source = SINGLE_FILE_CONFIGS / arch
    if not (source / "model_index.json").is_file():
        raise UnsupportedModelError(f"Hearth has no shipped configuration for {arch} checkpoints ({source}).",
                                    hint="Use a diffusers folder of this model.")
    stamp = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(source.rglob("*.json")))).hexdigest()[:12]
    target = paths.cache_dir() / "sd-configs" / f"{arch}-{stamp}"
    if (target / ".complete").is_file():
        return target
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    lines = gzip.open(SINGLE_FILE_CONFIGS / "bpe_simple_vocab_16e6.txt.gz").read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    for tok_dir in tmp.glob("tokenizer*"):
        (tok_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
        (tok_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    (tmp / ".complete").write_text("ok")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def load_pipeline(entry: ImageModelEntry, placement: Placement, allow_pickle: bool = False):
    """The txt2img pipeline for ``entry`` placed per ``placement``. Other modes come from ``from_pipe``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline, StableDiffusionXLPipeline

    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # "Loading pipeline components" bars: noise in logs and CLIs
    dtype = _torch_dtype(placement.dtype)
    path = source = Path(entry.path)
    try:
        if entry.format == "diffusers":
            kwargs = {"dtype": dtype, "local_files_only": True, "use_safetensors": not allow_pickle}
            if entry.architecture.startswith("sd") and not entry.architecture.startswith("sdxl"):
                kwargs.update(safety_checker=None, requires_safety_checker=False)
            pipe = AutoPipelineForText2Image.from_pretrained(str(path), **kwargs)
        else:
            from engines.models.image_models import inspect_image_model

            if entry.format == "pickle":
                path = _pickle_to_safetensors(path)
                entry = inspect_image_model(str(path))
            arch = entry.architecture
            if arch.endswith("-inpaint"):
                raise UnsupportedModelError(f"{entry.path} is an inpainting checkpoint ({arch}); Hearth loads those "
                                            "from diffusers folders only.", path=entry.path,
                                            hint="Use the diffusers folder of this model, or a regular checkpoint (inpainting works with it too).")
            config = single_file_config(arch)
            cls = StableDiffusionXLPipeline if arch.startswith("sdxl") else StableDiffusionPipeline
            kwargs = {"config": str(config), "local_files_only": True, "dtype": dtype}
            if cls is StableDiffusionPipeline:
                kwargs.update(safety_checker=None, requires_safety_checker=False)
            pipe = cls.from_single_file(str(path), **kwargs)
            if arch == "sd2":
                from engines.models.image_models import sd2_variant

                prediction = sd2_variant(source)[0]  # the user's file: its .yaml sits beside it
                if pipe.scheduler.config.get("prediction_type") != prediction:
                    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)
    except HearthError:
        raise
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        raise OutOfMemoryError(f"Out of memory while loading {entry.path}.", path=entry.path,
                               hint="Close other programs or choose CPU offload.") from exc
    except Exception as exc:
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        raise ModelFileError(f"{entry.path} could not be loaded as an image model ({text}).", path=entry.path,
                             hint="Check that it is a complete Stable Diffusion model; re-download it if it is truncated.") from exc
    pipe.set_progress_bar_config(disable=True)
    if placement.offload == "model":
        pipe.enable_model_cpu_offload(device=placement.device)
    elif placement.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=placement.device)
    else:
        pipe.to(placement.device)
    return pipe


def mode_pipeline(base, mode: str):
    """The pipeline for ``mode`` sharing ``base``'s weights (AutoPipelineFor*.from_pipe: no copy)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    if mode == "txt2img":
        return base
    cls = AutoPipelineForImage2Image if mode == "img2img" else AutoPipelineForInpainting
    pipe = cls.from_pipe(base)
    pipe.set_progress_bar_config(disable=True)
    return pipe
