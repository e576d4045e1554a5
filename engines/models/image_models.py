"""Image models Hearth can see: the bundled default, diffusers folders, single-file checkpoints
(A1111/ComfyUI layouts), the Hugging Face cache (offline) and LoRA files.

Header-only: nothing here imports torch or diffusers. Architectures are told from tensor names
and shapes, the same keys diffusers' single-file loader checks (loaders/single_file_utils.py).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from engines.core.errors import HearthError, ModelFileError, UnsupportedModelError
from engines.core.resources import resource
from engines.models.hf_folder import PICKLE_SUFFIXES, read_config
from engines.models.safetensors_file import read_safetensors

BUNDLED_IMAGE_DIR = resource("assets", "image-default")
SINGLE_FILE_CONFIGS = resource("assets", "sd-configs")
DEFAULT_ID = "default"
CHECKPOINT_FOLDERS = ("stable-diffusion", "checkpoints")  # A1111 models/Stable-diffusion, ComfyUI models/checkpoints
LORA_FOLDERS = ("lora", "loras")  # A1111 models/Lora, ComfyUI models/loras
MAX_DEPTH = 4
IMAGE_PICKLE_HINT = ("Hearth does not load pickle files (.ckpt, .pt, .bin) by default: loading one can run "
                     "arbitrary code. Use a .safetensors version of the model, or opt in to loading it "
                     "(--allow-pickle / 'allow_pickle'), which reads tensors only (torch.load weights_only=True).")
PIPELINE_ARCHITECTURES = {  # diffusers pipeline class -> Hearth architecture name
    "StableDiffusionPipeline": "sd", "StableDiffusionImg2ImgPipeline": "sd", "StableDiffusionInpaintPipeline": "sd-inpaint",
    "StableDiffusionXLPipeline": "sdxl", "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl-inpaint", "LatentConsistencyModelPipeline": "sd",
}

_UNET = "model.diffusion_model."
_V2_KEY = _UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
_XL_KEY = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
_REFINER_KEY = "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias"
_IN_KEY = _UNET + "input_blocks.0.0.weight"


@dataclass(frozen=True)
class ImageModelEntry:
    id: str  # "default" or the absolute path
    name: str
    path: str
    format: str  # "diffusers" | "single-file" | "pickle" | "lora"
    architecture: str  # sd1, sd1-inpaint, sd2, sd2-inpaint, sdxl, sdxl-inpaint, sd (diffusers folder), lora
    source: str  # bundled | folder | hf-cache
    size_bytes: int
    parameters: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def detect_single_file_architecture(names: Iterable[str], shapes: dict, path: Path) -> str:
    names = set(names)
    if is_lora(names):
        return "lora"
    if _IN_KEY not in shapes:
        raise UnsupportedModelError(
            f"{path} is not a Stable Diffusion checkpoint Hearth knows: it has no '{_IN_KEY}' tensor.", path=path,
            hint="Hearth loads SD 1.x, SD 2.x and SDXL single-file checkpoints; for other models use a diffusers folder.",
        )
    inpaint = "-inpaint" if len(shapes[_IN_KEY]) > 1 and shapes[_IN_KEY][1] == 9 else ""
    if _XL_KEY in names:
        return "sdxl" + inpaint
    if _REFINER_KEY in names:
        raise UnsupportedModelError(f"{path} is an SDXL refiner, which Hearth does not run on its own.", path=path,
                                    hint="Choose an SDXL base checkpoint.")
    context = (shapes.get(_V2_KEY) or [0])[-1]
    if context == 1024:
        return "sd2" + inpaint
    if context == 768:
        return "sd1" + inpaint
    raise UnsupportedModelError(
        f"{path} looks like a Stable Diffusion checkpoint but its text conditioning width ({context or 'missing'}) "
        "matches no SD 1.x (768), SD 2.x (1024) or SDXL layout.", path=path,
        hint="Use a diffusers folder of this model instead.",
    )


def is_lora(names: Iterable[str]) -> bool:
    for n in names:
        if n.startswith(("lora_unet_", "lora_te", "lora_transformer_")) or ".lora_down." in n or ".lora_A." in n \
                or ".lora.down." in n or ".lora_linear_layer." in n:
            return True
    return False


def bundled_image_entry() -> ImageModelEntry:
    if not (BUNDLED_IMAGE_DIR / "model_index.json").is_file():
        raise ModelFileError(f"The bundled image model is missing from {BUNDLED_IMAGE_DIR}.", path=BUNDLED_IMAGE_DIR,
                             hint="Reinstall Hearth, or run tools/train_default_image_model.py to rebuild it.")
    entry = _diffusers_folder(BUNDLED_IMAGE_DIR, "bundled")
    return ImageModelEntry(DEFAULT_ID, "Hearth shapes (bundled, 64x64)", entry.path, entry.format, entry.architecture,
                           "bundled", entry.size_bytes, entry.parameters)


def _hf_repo_folder(key: str) -> Path | None:
    """``org/name`` in the Hugging Face cache -> its snapshot folder (the one "main" points at)."""
    from engines.models.registry import hf_cache_dir

    if key.count("/") != 1 or os.path.exists(key):
        return None
    repo = hf_cache_dir() / f"models--{key.replace('/', '--')}"
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text().strip()
        if candidate.is_dir():
            return candidate
    found = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def inspect_image_model(key: str | Path, *, allow_pickle: bool = False) -> ImageModelEntry:
    """Validate and describe one image model: "default", a diffusers folder, a single-file
    .safetensors checkpoint, an HF cache repo id, or (opted in) a pickled .ckpt."""
    key = str(key).strip()
    if key in ("", DEFAULT_ID):
        return bundled_image_entry()
    hf = _hf_repo_folder(key)
    if hf is not None:
        return _diffusers_folder(hf, "hf-cache")
    path = Path(os.path.abspath(Path(key).expanduser()))
    if not path.exists():
        raise ModelFileError(f"{path} does not exist.", path=path, hint="Check the path, or choose 'default' for the bundled image model.")
    if path.is_dir():
        return _diffusers_folder(path, "folder")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise UnsupportedModelError(f"{path} is a pickle file.", path=path, hint=IMAGE_PICKLE_HINT)
        return ImageModelEntry(str(path), path.stem, str(path), "pickle", "unknown", "folder", path.stat().st_size)
    if suffix != ".safetensors":
        raise UnsupportedModelError(f"{path} is not an image model file Hearth knows.", path=path,
                                    hint="Choose a .safetensors checkpoint or a diffusers folder (with model_index.json).")
    info = read_safetensors(path)
    arch = detect_single_file_architecture(info.names, info.shapes, path)
    if arch == "lora":
        raise UnsupportedModelError(f"{path} is a LoRA, not a full model.", path=path,
                                    hint="Choose a base checkpoint as the model and add this file as a LoRA.")
    return ImageModelEntry(str(path), f"{path.stem} ({arch})", str(path), "single-file", arch, "folder", info.size, info.parameters)


def _diffusers_folder(folder: Path, source: str) -> ImageModelEntry:
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelFileError(f"{folder} is not a diffusers model folder: it has no model_index.json.", path=folder,
                             hint="Choose a diffusers folder, or a single-file .safetensors checkpoint.")
    config = read_config(index)
    cls = str(config.get("_class_name", ""))
    if cls not in PIPELINE_ARCHITECTURES and not cls.startswith(("StableDiffusion", "LatentConsistency")):
        raise UnsupportedModelError(f"{folder} holds a {cls or 'unnamed'} pipeline, which the Image room does not run.",
                                    path=folder, hint="Choose a Stable Diffusion (1.x, 2.x or XL) model.")
    size, params, pickles = 0, 0, []
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        sub = folder / component
        if not sub.is_dir():
            continue
        weights = [p for p in sub.iterdir() if p.suffix == ".safetensors"]
        if not weights:
            pickles += [f"{component}/{p.name}" for p in sub.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        for w in weights:
            info = read_safetensors(w)  # bounds-checks the header: a truncated download fails here
            size, params = size + info.size, params + info.parameters
    if pickles and not size:
        raise UnsupportedModelError(f"{folder} only holds pickle weights ({', '.join(pickles)}).", path=folder, hint=IMAGE_PICKLE_HINT)
    return ImageModelEntry(str(folder), folder.name, str(folder), "diffusers", PIPELINE_ARCHITECTURES.get(cls, "sd"),
                           source, size, params or None)


def inspect_lora(path: str | Path, *, allow_pickle: bool = False) -> Path:
    path = Path(os.path.abspath(Path(path).expanduser()))
    if not path.is_file():
        raise ModelFileError(f"LoRA {path} does not exist.", path=path, hint="Check the path.")
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise UnsupportedModelError(f"LoRA {path} is a pickle file.", path=path, hint=IMAGE_PICKLE_HINT)
    if path.suffix.lower() == ".safetensors":
        info = read_safetensors(path)
        if not is_lora(info.names):
            raise UnsupportedModelError(f"{path} is not a LoRA: its tensors have no LoRA names (lora_down/lora_A).",
                                        path=path, hint="Choose a LoRA .safetensors file (diffusers or kohya format).")
    return path


def scan_image_models(folders: Iterable[str | Path] = (), include_hf_cache: bool = True
                      ) -> tuple[list[ImageModelEntry], list[ImageModelEntry], list[HearthError]]:
    """(checkpoints, loras, errors): the bundled model first; bad files are listed, never raised."""
    models: list[ImageModelEntry] = []
    loras: list[ImageModelEntry] = []
    errors: list[HearthError] = []
    try:
        models.append(bundled_image_entry())
    except HearthError as exc:
        errors.append(exc)
    seen: set[str] = set()
    for folder in folders:
        root = Path(os.path.abspath(Path(folder).expanduser()))
        if root.is_dir():
            _walk(root, 0, models, loras, errors, seen, in_lora=root.name.lower() in LORA_FOLDERS)
    if include_hf_cache:
        from engines.models.registry import hf_cache_dir

        cache = hf_cache_dir()
        if cache.is_dir():
            for repo in sorted(cache.glob("models--*")):
                key = repo.name[len("models--"):].replace("--", "/")
                snap = _hf_repo_folder(key)
                if snap is not None and (snap / "model_index.json").is_file():
                    try:
                        models.append(_diffusers_folder(snap, "hf-cache"))
                    except HearthError as exc:
                        errors.append(exc)
    return models, loras, errors


def _walk(folder: Path, depth: int, models, loras, errors, seen: set, in_lora: bool) -> None:
    try:
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        errors.append(ModelFileError(f"{folder} cannot be read ({exc.strerror}).", path=folder))
        return
    if any(c.name == "model_index.json" for c in children):
        try:
            if str(folder) not in seen:
                seen.add(str(folder))
                models.append(_diffusers_folder(folder, "folder"))
        except HearthError as exc:
            errors.append(exc)
        return
    for child in children:
        if child.name.startswith("."):
            continue
        path = Path(child.path)
        if child.is_dir():
            if depth < MAX_DEPTH:
                _walk(path, depth + 1, models, loras, errors, seen, in_lora or child.name.lower() in LORA_FOLDERS)
        elif child.name.lower().endswith(".safetensors") and str(path) not in seen:
            seen.add(str(path))
            try:
                info = read_safetensors(path)
                if is_lora(info.names):
                    loras.append(ImageModelEntry(str(path), path.stem, str(path), "lora", "lora", "folder", info.size, info.parameters))
                elif not in_lora and any(n.startswith(_UNET) for n in info.names):
                    arch = detect_single_file_architecture(info.names, info.shapes, path)
                    models.append(ImageModelEntry(str(path), f"{path.stem} ({arch})", str(path), "single-file", arch,
                                                  "folder", info.size, info.parameters))
            except HearthError as exc:
                errors.append(exc)


def sd2_variant(path: str | Path) -> tuple[str, int]:
    """``(prediction_type, native size)`` of an SD 2.x single-file checkpoint.

    The 512 "base" model (epsilon) and the 768 model (v-prediction) have the same tensors, so the weights cannot
    tell them apart. As in AUTOMATIC1111, a YAML config beside the checkpoint (same name, ``.yaml``) decides:
    ``model.params.parameterization: "v"`` means v-prediction, and the UNet's ``image_size`` (latent cells) times
    8 is the size. Without one, a file name with "512" and not "768" (``v2-1_512-ema-pruned``) is the base model;
    anything else is taken as the 768 v-prediction model.
    """
    path = Path(path)
    config = path.with_suffix(".yaml")
    if config.is_file():
        import yaml

        try:
            params = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("model", {}).get("params", {})
        except (yaml.YAMLError, OSError, AttributeError) as exc:
            raise ModelFileError(f"{config} (the config beside {path.name}) could not be read: {exc}", path=config,
                                 hint="Fix or remove the .yaml file.") from exc
        prediction = "v_prediction" if params.get("parameterization") == "v" else "epsilon"
        latent = ((params.get("unet_config") or {}).get("params") or {}).get("image_size")
        size = int(latent) * 8 if isinstance(latent, int) and 8 <= latent <= 512 else (768 if prediction == "v_prediction" else 512)
        return prediction, size
    name = path.stem.lower()
    if "512" in name and "768" not in name:
        return "epsilon", 512
    return "v_prediction", 768


def native_size(entry: ImageModelEntry) -> int:
    """The side length the model was trained at (the default width/height)."""
    if entry.architecture == "sd2" and entry.format != "diffusers":
        return sd2_variant(entry.path)[1]
    by_arch = {"sd1": 512, "sd1-inpaint": 512, "sd2": 768, "sd2-inpaint": 512, "sdxl": 1024, "sdxl-inpaint": 1024}
    if entry.architecture in by_arch:
        return by_arch[entry.architecture]
    folder = Path(entry.path)
    try:
        unet = read_config(folder / "unet" / "config.json")
        vae = read_config(folder / "vae" / "config.json")
        size = int(unet.get("sample_size") or 64) * 2 ** (len(vae.get("block_out_channels") or [0] * 4) - 1)
        return size if isinstance(size, int) and 8 <= size <= 4096 else 512
    except (HearthError, TypeError, ValueError):
        return 1024 if entry.architecture.startswith("sdxl") else 512
