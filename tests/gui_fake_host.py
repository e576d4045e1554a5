"""The real engine host with stand-in engines, for fast GUI tests (see engines/host/API.md).

Run as ``python tests/gui_fake_host.py [--parent-pid PID]``: this is ``engines.host.server.serve`` (the real app,
routes, guard, wire format, READY line and parent watch) on a ``StandInState`` instead of ``HostState``. Its engines
yield the real typed events and raise the real errors, canned and fast, without the ML stack:

- text: five listed models (``default``, a 70B that does not fit, a ``broken`` file, an image checkpoint, a vision
  model); replies stream word by word: a question about France -> "The capital of France is **Paris**."; "long" ->
  a long Markdown answer (a few seconds); "fail" -> ContextOverflowError; anything else -> "You said: ...". The vision
  model starts with "I see N image(s)."; a text-only model given images refuses. Tune's replies (request ids
  ``tune-...``) run long unless the system prompt asks for "a short sentence".
- decode: the run's stages and a Result with small generated PNGs; source "data" is a DataFileError; ``steps`` >= 100
  makes the reconstruct stage slow enough to cancel.
- tune: compare writes "Base answer to ..." / "Tuned answer to ...!" (reward scores 0.1 / 0.9); merge writes a
  config.json naming the adapter.
GET /fake/chat-requests lists the chat requests the text engine received.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository root

from engines.core.cancel import CancelToken  # noqa: E402
from engines.core.compare_stats import reward_win_rate  # noqa: E402
from engines.core.content import has_images, image_parts, text_of  # noqa: E402
from engines.core.devices import MemoryInfo  # noqa: E402
from engines.core.errors import (  # noqa: E402
    ContextOverflowError, DataFileError, ModelFileError, RequestError, UnsupportedModelError,
)
from engines.core.events import Progress, Result, Token  # noqa: E402
from engines.core.requests.text import ChatRequest, LoadRequest  # noqa: E402
from engines.models.entry import ModelEntry  # noqa: E402
from engines.models.estimate import MemoryEstimate  # noqa: E402
from engines.models.image_models import ImageModelEntry  # noqa: E402
from engines.store.runs import check_adapter  # noqa: E402
from engines.text.engine import LoadedModel, TextEngine  # noqa: E402
from engines.text.owner import ModelOwner  # noqa: E402
from engines.text.stats import ReplyTimer  # noqa: E402

TOKEN_DELAY = float(os.environ.get("FAKE_HOST_TOKEN_DELAY", "0.01"))
LONG_DELAY = float(os.environ.get("FAKE_HOST_LONG_DELAY", "0.03"))
MIB, GIB = 1024 ** 2, 1024 ** 3
MACHINE = MemoryInfo(ram_total=16 * GIB, ram_available=8 * GIB)  # no GPU


def _entry(id: str, name: str, quantization: str, parameters: int, total_bytes: int, source: str, kind: str = "text",
           vision: bool = False, vision_error: str = "") -> dict:
    entry = ModelEntry(id, name, id, "gguf" if kind == "text" else "safetensors", kind, source, "llama", parameters,
                       quantization, 8192, total_bytes, layers=30, kv_heads=3, head_dim=64, vision=vision,
                       vision_error=vision_error)
    estimate = MemoryEstimate(total_bytes - 60 * MIB, 40 * MIB, 20 * MIB, total_bytes, MACHINE.ram_available,
                              total_bytes < MACHINE.ram_available, 4096)
    return {**asdict(entry), "estimate": estimate.to_dict()}


MODELS = [
    _entry("default", "SmolLM2-135M-Instruct (fake)", "Q4_1", 135_000_000, 180 * MIB, "bundled"),
    _entry("/models/huge-70b.Q4_K_M.gguf", "Huge-70B (fake)", "Q4_K_M", 70_000_000_000, 42 * GIB, "folder"),
    _entry("/models/broken.gguf", "broken (fake)", "Q8_0", 1_000_000, 10 * MIB, "folder",
           vision_error="mmproj-other.gguf projects to 2048 values but broken.gguf embeds 576"),
    _entry("/models/sd-tiny.safetensors", "an image checkpoint", "F16", 1_000_000, 10 * MIB, "folder", kind="image"),
    _entry("default-vision", "SmolLM2 + Hearth shapes vision (fake)", "Q4_1", 140_000_000, 190 * MIB, "bundled", vision=True),
]
VISION_HINT = "Load a model marked 'vision': " + ", ".join(m["name"] for m in MODELS if m["vision"]) + "."
LONG_REPLY = (
    "Here is a longer answer with **Markdown**.\n\n"
    + "".join(f"{i}. Point number {i} explains one more thing in a sentence of moderate length.\n" for i in range(1, 25))
    + "\n```python\ndef greet(name):\n    return f\"hello {name}\"\n```\n\nThat is all."
)


# -- text ---------------------------------------------------------------------------
class CannedBackend:
    """What a llama.cpp/transformers backend does for the text engine, with canned replies."""

    def __init__(self, entry: dict, load: LoadRequest) -> None:
        self.entry, self.load = entry, load

    def info(self) -> dict:
        return {"context_length": self.load.context_length, "vision": self.entry["vision"]}

    def generate(self, request: ChatRequest, cancel: CancelToken):
        last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        user, seen = text_of(last), len(image_parts(last))
        if "fail" in user:
            raise ContextOverflowError("The conversation does not fit.", hint="Start a new conversation or raise the context.")
        text, delay = f"You said: {user}", TOKEN_DELAY
        if "capital of France" in user:
            text = "The capital of France is **Paris**."
        elif "long" in user.lower():
            text, delay = LONG_REPLY, LONG_DELAY
        system = next((m["content"] for m in request.messages if m["role"] == "system"), "")
        if request.request_id.startswith("tune-") and "short sentence" not in system:  # replies to label: brief or not
            text += " And more." * 6
        if seen:
            text = f"I see {seen} image{'s' if seen > 1 else ''}. {text}"
        timer, out, finish = ReplyTimer(), [], "stop"
        for i, piece in enumerate(re.findall(r"\s*\S+|\s+", text)):
            if cancel.cancelled:
                finish = "cancelled"
                break
            if i >= request.max_tokens:
                finish = "length"
                break
            time.sleep(delay)
            timer.token()
            out.append(piece)
            yield Token(piece, i)
        prompt_tokens = sum(len(text_of(m["content"]).split()) for m in request.messages)
        yield timer.result(finish, "".join(out), prompt_tokens, len(out), dropped_messages=0)

    def close(self) -> None:
        pass


class StandInText(TextEngine):
    """The real text engine (model table, owner threads, queue, unload) over the canned registry and backend."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []  # what chat received, for GET /fake/chat-requests

    def load(self, load: LoadRequest) -> LoadedModel:
        load.validate()
        model, adapter = load.model, check_adapter(load.adapter) if load.adapter else None
        if adapter is not None and model in ("", "auto"):
            model = adapter.base_model
        entry = next((e for e in MODELS if e["id"] == model), None)
        if entry is None or entry["kind"] != "text":
            raise ModelFileError(f"{model} is not a model file Hearth knows.", path=model, hint="Choose a model from the list.")
        if "broken" in model:
            raise ModelFileError(f"{model} is truncated (12 MB of 2 GB).", path=model, hint="Download it again.")
        time.sleep(0.05)
        key, name, backend_name = entry["id"], entry["name"], "llama" if load.backend == "auto" else load.backend
        if adapter is not None:  # as the real engine: base + adapter on transformers, named after the run
            key, name, backend_name = f"{key}+{adapter.path}", f"{name} + {adapter.name}", "transformers"
        backend = CannedBackend(entry, load)
        return self._install(LoadedModel(key, name, backend_name, load, backend, ModelOwner(backend_name),
                                         entry["estimate"]["total_bytes"], backend.info()))

    def chat(self, request: ChatRequest, cancel: CancelToken | None = None, client: str = ""):
        self.requests.append(request.to_dict())
        request.validate()
        cancel = cancel or CancelToken()
        model = self.get(request.model)
        if has_images(request.messages) and not model.vision:
            raise UnsupportedModelError(f"{model.name} reads text only and cannot see images.", path=model.id, hint=VISION_HINT)
        label = {"kind": "chat", "request_id": request.request_id, "client": client or "in-process"}
        return model.owner.stream(lambda: model.backend.generate(request, cancel), cancel, label)


# -- decode ---------------------------------------------------------------------------
COLOURS = {"red": (220, 50, 40), "green": (40, 180, 70), "blue": (40, 80, 220), "yellow": (230, 210, 40)}


def _png(width: int, height: int, colour: tuple[int, int, int], noise: float, seed: int) -> str:
    """A small base64 PNG: a coloured square on grey, with some noise (a stand-in for the engine's images)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 90, np.float32)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = colour
    image += rng.normal(0, 255 * noise, image.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode_metrics(quality: float, attributes: bool = True) -> dict:
    m = {"pixcorr": round(0.9 * quality, 4), "ssim": round(0.25 + 0.4 * quality, 4), "two_way": round(0.5 + 0.5 * quality, 4),
         "two_way_pixels": round(0.5 + 0.45 * quality, 4), "n_way_top1": round(0.05 + 0.9 * quality, 4),
         "n_way_top1_pixels": round(0.05 + 0.6 * quality, 4), "n_way": 20, "semantic_acc": round(0.05 + 0.9 * quality, 4)}
    if attributes:
        m.update(color_acc=round(0.25 + 0.7 * quality, 4), shape_acc=round(0.3 + 0.6 * quality, 4),
                 position_acc=round(0.3 + 0.5 * quality, 4), background_acc=round(0.5 + 0.4 * quality, 4))
    return m


class CannedDecode:
    """The decoding engine's events for a run, canned."""

    def run(self, job, cancel: CancelToken):
        if job.source == "data":
            raise DataFileError(f"{os.path.basename(job.path)}: field 'fmri_test' has 10 voxels but 'fmri_train' has 12. "
                                "Both must have the same number of voxels.", path=job.path)
        slow = job.steps >= 100
        for i, name in enumerate(("stimuli", "features", "simulate", "fit", "decode")):
            if cancel.cancelled:
                yield Result("cancelled", {"timings": {}})
                return
            time.sleep(TOKEN_DELAY)
            yield Progress(i, 7, name)
        if job.reconstruct:
            batches = 40 if slow else 2
            for cond in ("decoded", "oracle", "shuffled"):
                yield Progress(5, 7, "reconstruct")
                for b in range(batches):
                    if cancel.cancelled:
                        yield Result("cancelled", {"timings": {"stimuli": 0.1}})
                        return
                    time.sleep(0.1 if slow else TOKEN_DELAY)
                    yield Progress(b + 1, batches, f"reconstruct {cond}")
        yield Progress(6, 7, "metrics")
        sweep = []
        for snr in job.sweep:
            time.sleep(TOKEN_DELAY)
            yield Progress(6, 7, f"sweep SNR {snr:g}")
            sweep.append({"snr": snr, "alpha": 1000.0 / snr, "decoded": _decode_metrics(snr / (snr + 0.05)),
                          "shuffled": _decode_metrics(0.02)})
        n, names, rows = job.test, list(COLOURS), []
        for i in range(n):
            colour = names[i % len(names)]
            decoded = colour if i % 3 else names[(i + 1) % len(names)]
            rows.append({"label": f"{colour} square", "caption": f"a {colour} square", "decoded_label": f"{decoded} square",
                         "stimulus": _png(64, 64, COLOURS[colour], 0.0, i), "pattern": _png(96, 60, (250, 160, 60), 0.3, 100 + i),
                         "lowlevel": _png(64, 64, COLOURS[colour], 0.25, 200 + i),
                         "decoded": _png(64, 64, COLOURS[decoded], 0.08, 300 + i),
                         "oracle": _png(64, 64, COLOURS[colour], 0.03, 400 + i),
                         "shuffled": _png(64, 64, (128, 128, 128), 0.2, 500 + i)})
        metrics = {"decoded": _decode_metrics(0.8), "lowlevel": _decode_metrics(0.7), "oracle": _decode_metrics(0.97),
                   "shuffled": _decode_metrics(0.01)}
        if not job.reconstruct:
            metrics.pop("lowlevel")
        yield Result("stop", {
            "request": job.to_dict(), "metrics": metrics,
            "chance": {"pixcorr": 0.0, "two_way": 0.5, "n_way_top1": 1 / min(n, 50), "semantic_acc": 1 / 48},
            "n_way": min(n, job.n_way), "alphas": {"lowlevel": 1000.0, "semantic": 3000.0},
            "timings": {"stimuli": 0.01, "features": 0.2, "fit": 0.1, "reconstruct": 1.0}, "rows": rows, "sweep": sweep,
            "figure_png": _png(600, 400, (255, 255, 255), 0.05, 7), "voxels": job.voxels, "n_train": job.train,
            "n_test": n, "source": job.source, "model": "default"})

    def close(self) -> None:
        pass


# -- tune ---------------------------------------------------------------------------
class CannedComparer:
    """Base vs tuned: the tuned reply is the base reply with a cheerful ending; a reward model likes it more."""

    def compare(self, request, cancel: CancelToken):
        request.validate()
        info = check_adapter(request.adapter)
        reward = request.reward_model
        if reward and not any((Path(reward) / name).is_file() for name in ("adapter_config.json", "config.json")):
            raise RequestError(f"The reward model {reward} is not a model folder (no adapter_config.json or config.json).",
                               path=reward, hint="Choose the output folder of a finished 'reward' run.")
        total, pairs = 2 * len(request.prompts), []
        for i, prompt in enumerate(request.prompts):
            if cancel.cancelled:
                break
            text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
            for side in ("base", "tuned"):
                time.sleep(TOKEN_DELAY)
                yield Progress(2 * i + (side == "tuned"), total, f"Prompt {i + 1} of {len(request.prompts)}: the {side} model")
            pair = {"index": i, "prompt": prompt, "base": f"Base answer to {text}", "tuned": f"Tuned answer to {text}!",
                    "seed": request.seed + i}
            if reward:
                pair.update(base_score=0.1, tuned_score=0.9)
            pairs.append(pair)
        yield Progress(total, total, "Done")
        scored = [(p["base_score"], p["tuned_score"]) for p in pairs if "base_score" in p]
        yield Result("cancelled" if cancel.cancelled else "stop", {
            "pairs": pairs, "summary": reward_win_rate(scored) if reward else None, "adapter": info.path,
            "base_model": info.base_model, "tuned_model": f"{info.base_model}+{info.path}", "reward_model": reward,
            "sampling": {"temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens}})

    def release(self) -> bool:
        return False


def canned_merge(adapter_dir: str, target: str) -> Path:
    """engines.tune.adapters.merge_adapter without the weights: the folder gets a config.json naming the adapter."""
    target = Path(target).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RequestError(f"The folder {target} already exists.", path=target, hint="Choose a new folder.")
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps({"merged_from": str(adapter_dir)}), encoding="utf-8")
    return target


# -- what the routes need beside the engines ---------------------------------------------
class NotHere:
    """An engine this host does not stand in for (image generation, Explore, embeddings): each call is refused."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.sources = self  # explore.sources.drop

    def loaded(self) -> list:
        return []

    queue = loaded

    def unload(self, model: str | None = None) -> list:
        return []

    drop = unload

    def model_id(self, model: str) -> str:
        return model or "default"

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        def refuse(*args, **kwargs):
            raise UnsupportedModelError(f"The GUI tests' engine host has no {self.what} ({name}).",
                                        hint="Use the real engine host.")
        return refuse


class UsageRows(list):
    def record(self, model: str, source: str, prompt_tokens: int, completion_tokens: int, seconds: float = 0.0) -> None:
        self.append((model, source, prompt_tokens, completion_tokens, seconds))


class StandInState:
    """Shaped like engines.host.state.HostState, which the routes take from ``request.app.state.hearth``."""

    def __init__(self) -> None:
        self.text = StandInText()
        self.image = NotHere("image model")
        self.explore = NotHere("Explore engine")
        self.embeddings = NotHere("embedding model")
        self.decode = CannedDecode()
        self.comparer = CannedComparer()
        self.active: dict[str, CancelToken] = {}
        self._usage = UsageRows()

    def register(self, request_id: str) -> CancelToken:
        self.active[request_id] = token = CancelToken()
        return token

    def list_models(self, refresh: bool = False) -> tuple[list[dict], list[dict]]:
        return MODELS, []

    def release_comparer(self) -> bool:
        return self.comparer.release()

    def usage_log(self) -> UsageRows:
        return self._usage

    def close(self) -> None:
        self.text.close()


def _stand_in_machine() -> None:
    """What some routes read outside the host state: memory, image checkpoints on disk, the merge (torch)."""
    import engines.core.devices
    import engines.models.image_models
    import engines.tune.adapters

    engines.core.devices.system_memory = lambda include_gpu=False: MACHINE
    bundled = ImageModelEntry("default", "Hearth shapes (fake)", "default", "diffusers", "sd", "bundled", 10 * MIB)
    engines.models.image_models.scan_image_models = lambda folders=(), include_hf_cache=True: ([bundled], [], [])
    engines.tune.adapters.merge_adapter = canned_merge


def fake_router(state: StandInState) -> APIRouter:
    router = APIRouter()

    @router.get("/fake/chat-requests")
    async def chat_requests():
        return {"requests": state.text.requests}

    return router


def main() -> int:
    from engines.host import server

    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()
    _stand_in_machine()
    create_app = server.create_app

    def create_fake_app(api_key, state, **kwargs):
        app = create_app(api_key, state, **kwargs)
        app.include_router(fake_router(state))
        return app

    # serve() as it is, on the stand-in state: the real READY line, parent watch and shutdown
    server.HostState, server.create_app = StandInState, create_fake_app
    return server.serve(port=0, parent_pid=args.parent_pid)


if __name__ == "__main__":
    sys.exit(main())
