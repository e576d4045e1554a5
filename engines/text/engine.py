"""The text engine: loads models (one owner thread each) and streams replies as events.

    engine = TextEngine()
    engine.load(LoadRequest(model="default"))
    for event in engine.chat(ChatRequest(messages=[...]), CancelToken()):
        ...

Loading validates the file first (engines.models) and only replaces nothing: a failed load
leaves every loaded model as it was.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.errors import HearthError, NotLoadedError, RequestError, UnsupportedModelError
from engines.core.content import has_images
from engines.core.events import Event
from engines.text.images import decode_messages
from engines.text.owner import ModelOwner
from engines.core.requests.text import ChatRequest, LoadRequest


@dataclass
class LoadedModel:
    id: str
    name: str
    backend_name: str
    load: LoadRequest
    backend: object
    owner: ModelOwner
    estimate_bytes: int = 0
    info: dict = field(default_factory=dict)

    @property
    def vision(self) -> bool:
        return bool(self.info.get("vision"))

    def to_dict(self) -> dict:
        return {"model": self.id, "name": self.name, "backend": self.backend_name,
                "estimate_bytes": self.estimate_bytes, "load": self.load.to_dict(), **self.info}


def choose_backend(entry, requested: str) -> str:
    if requested != "auto":
        if requested == "llama" and entry.format != "gguf":
            raise UnsupportedModelError(f"The llama.cpp backend runs GGUF files; {entry.path} is a {entry.format}.",
                                        path=entry.path, hint="Choose the transformers backend for this model.")
        return requested
    return "llama" if entry.format == "gguf" else "transformers"


def check_adapter_base(entry, adapter) -> None:
    """The chosen model must be the one the adapter was trained on (a LoRA on another model is noise)."""
    from engines.models import bundled_default_path

    chosen = Path(entry.path) / entry.gguf_file if entry.gguf_file else Path(entry.path)
    recorded = bundled_default_path() if adapter.base_model == "default" else Path(adapter.base_model)
    if entry.id == adapter.base_model or chosen.resolve() == recorded.resolve():
        return
    trained_on = "the bundled SmolLM2" if adapter.base_model == "default" else adapter.base_model
    raise RequestError(f"The adapter {adapter.path} was trained on {trained_on}, not on {entry.path}.", path=adapter.path,
                       hint="Load it with the model it was trained on (send model 'auto' to pick that one).")


def vision_models_hint() -> str:
    """Which models can see, from the registry (the bundled vision model and the user's folders)."""
    from engines.models.registry import configured_folders, scan_models

    try:
        entries, _ = scan_models(configured_folders(), include_hf_cache=True)
    except HearthError:
        entries = []
    names = [e.name for e in entries if e.vision]
    if not names:
        return ("Load a vision model: a GGUF with its mmproj*.gguf in the same folder, or an image-text-to-text model "
                "folder (LLaVA, Qwen2-VL, SmolVLM, Gemma 3).")
    return f"Load a model marked 'vision': {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}."


class TextEngine:
    def __init__(self) -> None:
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------
    def load(self, load: LoadRequest) -> LoadedModel:
        """Validate, check memory, then load. Loading an already-loaded id with the same
        options is a no-op; with other options it reloads."""
        from engines.models import check_fits, resolve_model

        load.validate()
        adapter = None
        model = load.model
        if load.adapter:
            from engines.store.runs import check_adapter

            adapter = check_adapter(load.adapter)
            if model in ("", "auto"):
                model = adapter.base_model
        entry = resolve_model(model)
        if load.mmproj:
            from engines.models.mmproj import pair

            entry = pair(entry, load.mmproj)
        if adapter is not None:
            check_adapter_base(entry, adapter)
            # PEFT adapters run on transformers only ('llama' with an adapter is refused by validate()).
            backend_name = "transformers"
            key, name = f"{entry.id}+{adapter.path}", f"{entry.name} + {adapter.name}"
        else:
            backend_name = choose_backend(entry, load.backend)
            key, name = entry.id, entry.name
        with self._lock:
            current = self._models.get(key)
            if current is not None and current.load == load:
                return current
        estimate = entry.estimate(load.context_length)
        check_fits(entry, load.context_length)
        owner = ModelOwner(backend_name)
        try:
            backend = owner.call(lambda: self._make_backend(entry, load, backend_name))
        except BaseException:
            owner.close()
            raise
        return self._install(LoadedModel(key, name, backend_name, load, backend, owner, estimate.total_bytes,
                                         owner.call(backend.info)))

    def _install(self, loaded: LoadedModel) -> LoadedModel:
        """Make ``loaded`` the model under its key, closing the one it replaces."""
        with self._lock:
            previous = self._models.pop(loaded.id, None)
            self._models[loaded.id] = loaded
        if previous is not None:
            self._close(previous)
        return loaded

    @staticmethod
    def _make_backend(entry, load: LoadRequest, backend_name: str):
        if backend_name == "llama":
            from engines.text.llama_backend import LlamaBackend

            return LlamaBackend(entry.path, load, entry.mmproj)
        from engines.text.hf_backend import TransformersBackend

        path = entry.path
        if entry.gguf_file:
            path = str(Path(entry.path) / entry.gguf_file)
        if entry.vision and entry.format == "hf-folder":
            if load.adapter:
                raise RequestError("Adapters on image-text-to-text models are not supported yet.", path=load.adapter,
                                   hint="Load the model without the adapter.")
            from engines.text.hf_vision import VisionTransformersBackend

            return VisionTransformersBackend(path, load, is_gguf=False)
        return TransformersBackend(path, load, is_gguf=path.lower().endswith(".gguf"))

    def unload(self, model_id: str | None = None) -> list[str]:
        with self._lock:
            if model_id is None:
                victims = list(self._models.values())
                self._models.clear()
            else:
                key = self._key(model_id)
                victim = self._models.pop(key, None)
                victims = [victim] if victim else []
        for m in victims:
            self._close(m)
        return [m.id for m in victims]

    @staticmethod
    def _close(model: LoadedModel) -> None:
        try:
            model.owner.call(model.backend.close)
        finally:
            model.owner.close()

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._models.values())

    def get(self, model_id: str) -> LoadedModel:
        with self._lock:
            model = self._models.get(self._key(model_id))
            if model is None and model_id in ("", "auto") and len(self._models) == 1:
                model = next(iter(self._models.values()))
        if model is None:
            raise NotLoadedError(f"Model {model_id!r} is not loaded.", hint="Load it first (POST /hearth/models/load or the model picker).")
        return model

    def _key(self, model_id: str) -> str:
        if model_id == "default" or model_id in self._models:
            return model_id
        base, plus, adapter = model_id.partition("+")
        if plus and adapter and Path(adapter).expanduser().is_dir():  # "base+adapter folder", as load() names it
            return f"{self._key(base)}+{Path(adapter).expanduser().resolve()}"
        try:
            return str(Path(model_id).expanduser().resolve())
        except (OSError, RuntimeError):
            return model_id

    # -- work -------------------------------------------------------------
    def chat(self, request: ChatRequest, cancel: CancelToken | None = None, client: str = "") -> Iterator[Event]:
        """Stream ``Token`` events and one final ``Result`` for ``request`` on its model. Requests for one model
        run one at a time, first come first served; ``client`` names the caller in the model's queue."""
        request.validate()
        cancel = cancel or CancelToken()
        model = self.get(request.model)
        if has_images(request.messages):
            if not model.vision:
                raise UnsupportedModelError(f"{model.name} reads text only and cannot see images.", path=model.id,
                                            hint=vision_models_hint())
            # Decoded here, on the caller's thread: a bad image is an error before the request queues for the model.
            request = dataclasses.replace(request, messages=decode_messages(request.messages))
        label = {"kind": "chat", "request_id": request.request_id, "client": client or "in-process"}
        return model.owner.stream(lambda: model.backend.generate(request, cancel), cancel, label)

    def queue(self) -> list[dict]:
        """Per loaded model: the job running and the jobs waiting, in order."""
        return [{"model": m.id, "backend": m.backend_name, **m.owner.snapshot()} for m in self.loaded()]

    def tokenize(self, model_id: str, text: str) -> list[int]:
        model = self.get(model_id)
        return model.owner.call(lambda: model.backend.tokenize(text))

    def close(self) -> None:
        self.unload(None)

