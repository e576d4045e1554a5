"""The image engine: one loaded Stable Diffusion model (on its owner thread), jobs as event streams.

    engine = ImageEngine()
    for event in engine.generate(ImageRequest(prompt="a red circle"), CancelToken()):
        ...  # Progress per step, Preview (small PNG) every preview_every steps, one Result

The pipelines are diffusers'; Hearth adds the event stream (callback_on_step_end), cancel
(raising from that callback, which also skips the VAE decode), seeds, LoRA bookkeeping, PNG
metadata and the gallery.
"""
from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from engines.core import paths
from engines.core.cancel import CancelToken, Cancelled
from engines.core.errors import HearthError, OutOfMemoryError, RequestError, UnsupportedModelError
from engines.core.events import Event, Preview, Progress, Result
from engines.core.requests.image import MAX_SEED, ImageRequest, LoraSpec, MemoryOptions
from engines.text.owner import ModelOwner


@dataclass
class LoadedImageModel:
    id: str
    entry: Any  # ImageModelEntry
    placement: Any  # loading.Placement
    owner: ModelOwner
    pipe: Any  # the txt2img pipeline; other modes share its weights
    key: tuple
    mode_pipes: dict = field(default_factory=dict)
    loras: tuple = ()  # ((path, weight), ...) as applied
    preview_factors: Any = None
    preview_bias: Any = None
    hash: str | None = None
    scheduler_config: Any = None  # the model's own, kept: per-job schedulers replace pipe.scheduler

    def to_dict(self) -> dict:
        return {"model": self.id, "name": self.entry.name, "architecture": self.entry.architecture,
                "device": self.placement.device, "dtype": self.placement.dtype, "offload": self.placement.offload,
                "estimate_bytes": self.placement.estimate_bytes, "loras": [list(l) for l in self.loras]}


class ImageEngine:
    """Holds at most one image model (SD-sized models rarely fit twice); loading another replaces it."""

    def __init__(self, db=None, outputs_dir: str | Path | None = None) -> None:
        self._db = db
        self._outputs = Path(outputs_dir) if outputs_dir else None
        self._model: LoadedImageModel | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # two jobs asking for different models load one after the other

    # -- lifecycle --------------------------------------------------------
    def load(self, model: str = "default", memory: MemoryOptions | None = None, allow_pickle: bool = False,
             width: int = 512, height: int = 512, batch: int = 1) -> LoadedImageModel:
        """Validate, estimate, then load (replacing any other model). The same model with the
        same placement is a no-op; a failed load leaves the engine without a model."""
        with self._load_lock:
            return self._load(model, memory or MemoryOptions(), allow_pickle, width, height, batch)

    def _load(self, model: str, memory: MemoryOptions, allow_pickle: bool, width: int, height: int,
              batch: int) -> LoadedImageModel:
        from engines.image.loading import choose_placement, load_pipeline
        from engines.models.image_models import inspect_image_model

        entry = inspect_image_model(model, allow_pickle=allow_pickle)
        placement = choose_placement(entry, memory, width, height, batch)
        key = (entry.id, placement.device, placement.dtype, placement.offload)
        with self._lock:
            current = self._model
        if current is not None and current.key == key:
            return current
        if current is not None:
            self.unload()  # free the old weights before loading the new ones
        owner = ModelOwner("image")
        try:
            pipe = owner.call(lambda: load_pipeline(entry, placement, allow_pickle))
            factors, bias = owner.call(lambda: _preview_factors(pipe))
        except BaseException:
            owner.close()
            raise
        loaded = LoadedImageModel(entry.id, entry, placement, owner, pipe, key, preview_factors=factors, preview_bias=bias,
                                  scheduler_config=pipe.scheduler.config)
        with self._lock:
            self._model = loaded
        return loaded

    def unload(self, model_id: str | None = None) -> list[str]:
        with self._lock:
            victim = self._model
            if victim is None or (model_id not in (None, "", victim.id)):
                return []
            self._model = None
        victim.owner.call(lambda: _release(victim))
        victim.owner.close()
        return [victim.id]

    def loaded(self) -> list[LoadedImageModel]:
        with self._lock:
            return [self._model] if self._model else []

    def close(self) -> None:
        self.unload()

    def queue(self) -> list[dict]:
        """The loaded image model's running and waiting jobs (image and decode runs share it)."""
        return [{"model": m.id, "backend": "diffusers", **m.owner.snapshot()} for m in self.loaded()]

    # -- work -------------------------------------------------------------
    def generate(self, request: ImageRequest, cancel: CancelToken | None = None,
                 out_path: str | Path | None = None) -> Iterator[Event]:
        """Stream Progress/Preview events and one final Result for ``request``.

        Images are written (atomically) to ``out_path`` (``stem-N.png`` for several) or to the
        outputs folder, and indexed in the gallery. A cancelled run saves nothing of itself.
        """
        request.validate()
        cancel = cancel or CancelToken()
        model = self.load(request.model, request.memory, request.allow_pickle, request.width, request.height,
                          request.batch_size)
        return model.owner.stream(lambda: self._run(model, request, cancel, out_path), cancel,
                                  {"kind": "image", "request_id": request.request_id})

    def _run(self, model: LoadedImageModel, request: ImageRequest, cancel: CancelToken, out_path) -> Iterator[Event]:
        import torch

        started = time.perf_counter()
        init_image, mask = _load_images(request)
        pipe = model.mode_pipes.get(request.mode)
        if pipe is None:
            from engines.image.loading import mode_pipeline

            pipe = model.mode_pipes[request.mode] = mode_pipeline(model.pipe, request.mode)
        _apply_loras(model, request)
        from engines.image.schedulers import make_scheduler

        base_config = model.scheduler_config
        _set_vae_tiling(pipe, request, model.placement)
        first = request.seed if request.seed is not None else random.randint(0, MAX_SEED)
        all_seeds = request.seeds(first)
        record = request.to_dict()
        record["seed"] = first
        images: list[dict] = []
        finish = "stop"
        for run, seeds in enumerate(all_seeds):
            if cancel.cancelled:
                finish = "cancelled"
                break
            pipe.scheduler = make_scheduler(request.scheduler, base_config)  # fresh state per run
            kwargs: dict[str, Any] = dict(
                prompt=request.prompt, negative_prompt=request.negative_prompt or None,
                num_inference_steps=request.steps, guidance_scale=request.guidance,
                num_images_per_prompt=request.batch_size,
                generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
            )
            if request.mode == "txt2img":
                kwargs.update(width=request.width, height=request.height)
            else:
                kwargs.update(image=init_image, strength=request.strength)
                if request.mode == "inpaint":
                    kwargs.update(mask_image=mask, width=request.width, height=request.height)
            try:
                result = None
                for item in _call_streaming(pipe, kwargs, cancel, model, request, run):
                    if isinstance(item, Event):
                        yield item
                    else:
                        result = item
            except Cancelled:
                finish = "cancelled"
                break
            for i, (image, seed) in enumerate(zip(result.images, seeds)):
                images.append(self._save(model, request, record, image, seed, out_path, len(images), len(all_seeds) * len(seeds)))
        yield Result(finish, {"images": images, "seed": first, "seeds": [im["seed"] for im in images],
                              "total_s": round(time.perf_counter() - started, 3), "model": model.id})

    def _save(self, model, request, record, image, seed, out_path, index, count) -> dict:
        from engines.store.gallery import Gallery
        from engines.store.storage import Database
        from engines.image.loading import model_hash
        from engines.image.metadata import a1111_parameters, png_bytes

        if model.hash is None:
            model.hash = model_hash(model.entry.path)
        name = "default" if model.id == "default" else Path(model.entry.path).stem
        params = a1111_parameters(request, seed, name, model.hash)
        image_record = dict(record, seed=seed, batch_count=1, batch_size=1)
        data = png_bytes(image, params, image_record)
        if out_path:
            out = Path(out_path)
            target = out if count == 1 else out.with_name(f"{out.stem}-{index + 1}{out.suffix or '.png'}")
        else:
            folder = self._outputs or paths.outputs_dir()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target = folder / time.strftime("%Y-%m-%d") / f"{stamp}-{seed}.png"
            n = 1
            while target.exists():  # same second and seed (a re-run): never overwrite
                n += 1
                target = target.with_name(f"{stamp}-{seed}-{n}.png")
        paths.atomic_write_bytes(target, data)
        image_id = None
        db = self._db
        own_db = db is None
        try:
            if own_db:
                db = Database()
            image_id = Gallery(db).add(str(target.resolve()), image_record, seed)
        finally:
            if own_db and db is not None:
                db.close()
        return {"path": str(target.resolve()), "seed": seed, "id": image_id, "parameters": params}


def _call_streaming(pipe, kwargs, cancel: CancelToken, model: LoadedImageModel, request: ImageRequest, run: int):
    """Run ``pipe(**kwargs)`` on a helper thread and yield its step events as they happen.

    The pipeline reports steps through callback_on_step_end, which cannot yield; so the call
    runs on a helper thread (still one job at a time: the owner thread waits for it) and the
    callback hands events over a queue. Cancel raises Cancelled inside the callback, which
    leaves the denoising loop before the VAE decode. Yields events, then the pipeline output.

    Progress counts callback calls: ``_num_timesteps`` per run (Heun evaluates twice per step,
    img2img runs only ``strength`` of the steps), times the batch count.
    """
    from engines.image.preview import latents_to_png

    events: queue.Queue = queue.Queue()
    scaling = getattr(getattr(model.pipe, "vae", None), "config", None)
    scaling = getattr(scaling, "scaling_factor", 1.0) or 1.0
    every = request.preview_every

    def on_step_end(p, step_index, timestep, callback_kwargs):
        if cancel.cancelled:
            raise Cancelled(cancel.reason)
        per_run = int(getattr(p, "_num_timesteps", 0) or request.steps)
        n = run * per_run + step_index + 1
        events.put(Progress(n, per_run * request.batch_count, f"step {step_index + 1}/{per_run}"))
        if every and ((step_index + 1) % every == 0) and model.preview_factors is not None:
            events.put(Preview(n, latents_to_png(callback_kwargs["latents"], model.preview_factors, model.preview_bias, scaling)))
        if cancel.cancelled:
            raise Cancelled(cancel.reason)
        return callback_kwargs

    def work():
        try:
            out = pipe(**kwargs, callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"])
            events.put(("done", out))
        except BaseException as exc:  # re-raised on the owner thread
            events.put(("error", exc))

    thread = threading.Thread(target=work, name="hearth-image-run", daemon=True)
    thread.start()
    try:
        while True:
            item = events.get()
            if isinstance(item, tuple):
                if item[0] == "done":
                    yield item[1]
                    return
                raise _translate(item[1], request)
            if not cancel.cancelled:  # after a cancel the next event is the Result (the host stops forwarding then)
                yield item
    finally:
        if thread.is_alive():
            cancel.cancel("consumer closed")
            thread.join()


def _translate(exc: BaseException, request: ImageRequest) -> BaseException:
    if isinstance(exc, (HearthError, Cancelled)):
        return exc
    text = str(exc)
    import torch

    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in text.lower() \
            or "can't allocate memory" in text.lower():
        return OutOfMemoryError(f"Out of memory generating {request.width}x{request.height} x{request.batch_size}.",
                                hint="Use a smaller size or batch, or set memory offload to 'model'.")
    return exc


def _release(model: LoadedImageModel) -> None:
    from engines.core.devices import release_memory

    model.mode_pipes.clear()
    model.pipe = None
    release_memory()


def _preview_factors(pipe):
    from engines.image.preview import SD15_FACTORS, SDXL_FACTORS, fit_factors

    vae = getattr(pipe, "vae", None)
    if vae is None:
        return None, None
    cfg = vae.config
    if cfg.latent_channels == 4 and tuple(cfg.block_out_channels) == (128, 256, 512, 512):  # the SD VAE family
        factors = SDXL_FACTORS if "XL" in type(pipe).__name__ else SD15_FACTORS
        return factors, None
    return fit_factors(vae)


def _set_vae_tiling(pipe, request: ImageRequest, placement) -> None:
    want = request.memory.vae_tiling
    if want is None:
        want = request.width * request.height > 1024 * 1024 or placement.offload != "none"
    vae = pipe.vae
    if want and not getattr(vae, "use_tiling", False):
        vae.enable_tiling()
    elif not want and getattr(vae, "use_tiling", False):
        vae.disable_tiling()


def _load_images(request: ImageRequest):
    from PIL import Image, UnidentifiedImageError

    def read(path: str, what: str, mode: str):
        p = Path(path).expanduser()
        try:
            with Image.open(p) as img:
                img.load()
                return img.convert(mode).resize((request.width, request.height), Image.LANCZOS)
        except FileNotFoundError:
            raise RequestError(f"The {what} {p} does not exist.", path=p, hint="Check the path.") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise RequestError(f"The {what} {p} is not an image Hearth can read ({exc}).", path=p,
                               hint="Use a PNG or JPEG file.") from None

    init = read(request.init_image, "init image", "RGB") if request.mode != "txt2img" else None
    mask = read(request.mask, "mask", "L") if request.mode == "inpaint" else None
    return init, mask


def _apply_loras(model: LoadedImageModel, request: ImageRequest) -> None:
    """Load/unload LoRAs so exactly ``request.loras`` are active with their weights.

    diffusers does the work (load_lora_weights reads diffusers and kohya formats;
    set_adapters sets the weights); this keeps track of what is loaded so that a weight change
    does not reload files.
    """
    from engines.models.image_models import inspect_lora

    pipe = model.pipe
    wanted = tuple((str(inspect_lora(l.path, allow_pickle=request.allow_pickle)), float(l.weight)) for l in request.loras)
    if wanted == model.loras:
        return
    files = tuple(p for p, _ in wanted)
    if files != tuple(p for p, _ in model.loras):
        if model.loras:
            pipe.unload_lora_weights()
        model.loras = ()
        for i, path in enumerate(files):
            try:
                pipe.load_lora_weights(path, adapter_name=f"lora{i}")
            except Exception as exc:
                try:
                    pipe.unload_lora_weights()
                except Exception:
                    pass
                text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
                raise UnsupportedModelError(f"The LoRA {path} does not fit {model.entry.name} ({text}).", path=path,
                                            hint="Use a LoRA trained for this model's architecture (SD 1.x, SD 2.x or SDXL).") from exc
    if files:
        pipe.set_adapters([f"lora{i}" for i in range(len(files))], [w for _, w in wanted])
    model.loras = wanted
