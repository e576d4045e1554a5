"""A tiny stand-in for the engine host (see engines/host/API.md) for fast GUI tests.

Run as ``python tests/gui_fake_host.py [--parent-pid PID]``: prints the READY line, serves canned
models and streams canned replies token by token, honouring /hearth/cancel and the API key.
Replies: a question about France -> "The capital of France is Paris."; a message with "long"
-> a long Markdown answer (a few seconds); "fail" -> an Error event; anything else -> an echo.
Message content may be OpenAI parts (text, image_url with a data: URL): the vision model answers how many
images it got, a text-only model gets the engine's error, and GET /fake/chat-requests lists what chat received.
/hearth/decode/run streams the decoding run's stages and a Result with small generated PNGs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

KEY = os.environ.get("HEARTH_API_KEY", "")
TOKEN_DELAY = float(os.environ.get("FAKE_HOST_TOKEN_DELAY", "0.01"))
LONG_DELAY = float(os.environ.get("FAKE_HOST_LONG_DELAY", "0.03"))
GIB = 1024 ** 3



def _entry(id: str, name: str, quantization: str, parameters: int, total_bytes: int, source: str, kind: str = "text",
           vision: bool = False) -> dict:
    """A ModelEntry.to_dict() as the real host sends it."""
    estimate = {"weights_bytes": total_bytes - 60 * 1024 ** 2, "kv_cache_bytes": 40 * 1024 ** 2, "overhead_bytes": 20 * 1024 ** 2,
                "total_bytes": total_bytes, "available_bytes": 8 * GIB, "fits": total_bytes < 8 * GIB, "context_length": 4096}
    return {"id": id, "name": name, "path": id, "format": "gguf", "kind": kind, "source": source, "architecture": "llama",
            "parameters": parameters, "quantization": quantization, "context_length": 8192, "size_bytes": total_bytes,
            "gguf_file": "", "layers": 30, "kv_heads": 3, "head_dim": 64, "estimate": estimate, "vision": vision}


MODELS = [
    _entry("default", "SmolLM2-135M-Instruct (fake)", "Q4_1", 135_000_000, 180 * 1024 ** 2, "bundled"),
    _entry("/models/huge-70b.Q4_K_M.gguf", "Huge-70B (fake)", "Q4_K_M", 70_000_000_000, 42 * GIB, "folder"),
    {**_entry("/models/broken.gguf", "broken (fake)", "Q8_0", 1_000_000, 10 * 1024 ** 2, "folder"),
     "vision_error": "mmproj-other.gguf projects to 2048 values but broken.gguf embeds 576"},
    _entry("/models/sd-tiny.safetensors", "an image checkpoint", "F16", 1_000_000, 10 * 1024 ** 2, "folder", kind="image"),
    _entry("default-vision", "SmolLM2 + Hearth shapes vision (fake)", "Q4_1", 140_000_000, 190 * 1024 ** 2, "bundled", vision=True),
]
LONG_REPLY = (
    "Here is a longer answer with **Markdown**.\n\n"
    + "".join(f"{i}. Point number {i} explains one more thing in a sentence of moderate length.\n" for i in range(1, 25))
    + "\n```python\ndef greet(name):\n    return f\"hello {name}\"\n```\n\nThat is all."
)

app = FastAPI()
loaded: dict[str, str] = {}
cancelled: set[str] = set()
chat_requests: list[dict] = []


@app.middleware("http")
async def check_key(request: Request, call_next):
    if KEY and request.headers.get("authorization") != f"Bearer {KEY}":
        return JSONResponse({"error": {"kind": "host", "message": "Bad or missing API key."}}, status_code=401)
    return await call_next(request)


@app.get("/hearth/health")
async def health():
    return {"status": "ok", "pid": os.getpid(), "loaded": list(loaded)}


@app.get("/hearth/models")
async def models(refresh: int = 0):
    return {"models": MODELS}


@app.get("/hearth/memory")
async def memory():
    return {"ram_total": 16 * GIB, "ram_available": 8 * GIB, "gpu_name": None, "vram_total": 0, "vram_free": 0,
            "loaded": [{"model": m, "backend": b, "estimate_bytes": 180 * 1024 ** 2} for m, b in loaded.items()]}


@app.post("/hearth/models/load")
async def load(request: Request):
    body = await request.json()
    model = body.get("model", "default")
    if "broken" in model:
        return JSONResponse({"error": {"kind": "model_file", "path": model,
                                       "message": f"{model} is truncated (12 MB of 2 GB). Download it again."}}, status_code=400)
    await asyncio.sleep(0.05)
    backend = "llama" if body.get("backend", "auto") == "auto" else body["backend"]
    adapter = body.get("adapter") or ""
    name = next((m["name"] for m in MODELS if m["id"] == model), model)
    if adapter:  # as the real host: base + adapter on transformers, named after the run
        if body.get("backend") == "llama":
            return JSONResponse({"error": {"kind": "request", "message": "Adapters need the transformers backend."}}, status_code=400)
        backend, model, name = "transformers", f"{model}+{adapter}", f"{name} + {os.path.basename(adapter.rstrip('/'))}"
    loaded.clear()
    loaded[model] = backend
    return {"model": model, "backend": backend, "info": {"context_length": body.get("context_length"), "name": name,
                                                          "load": {"adapter": adapter}}}


@app.post("/hearth/models/unload")
async def unload(request: Request):
    body = await request.json()
    gone = [body["model"]] if body.get("model") else list(loaded)
    for model in gone:
        loaded.pop(model, None)
    return {"unloaded": gone}


@app.post("/hearth/cancel")
async def cancel(request: Request):
    body = await request.json()
    cancelled.add(body["request_id"])
    return {"cancelled": True}


def _reply_for(text: str) -> tuple[str, float]:
    if "capital of France" in text:
        return "The capital of France is **Paris**.", TOKEN_DELAY
    if "long" in text.lower():
        return LONG_REPLY, LONG_DELAY
    return f"You said: {text}", TOKEN_DELAY


def _text(content) -> str:
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content if p.get("type") == "text")


def _images(content) -> list[str]:
    return [] if isinstance(content, str) else [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]


@app.get("/fake/chat-requests")
async def received_chats():
    return {"requests": chat_requests}


@app.post("/hearth/chat")
async def chat(request: Request):
    body = await request.json()
    chat_requests.append(body)
    request_id = body.get("request_id", "")
    messages = body.get("messages", [])
    for i, m in enumerate(messages):  # as the real host: data: URLs only
        for url in _images(m["content"]):
            if not url.startswith("data:image/"):
                return JSONResponse({"error": {"kind": "request", "message": f"messages[{i}]: image_url must be a data:image/ URL."}},
                                    status_code=400)
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    user, seen = _text(last), len(_images(last))
    entry = next((e for e in MODELS if e["id"] == body.get("model")), {})
    blind = any(_images(m["content"]) for m in messages) and not entry.get("vision")

    async def events():
        def line(data: dict) -> str:
            return f"data: {json.dumps(data)}\n\n"

        if blind:  # the engine's words for a text-only model given an image
            yield line({"type": "Error", "error": {"kind": "unsupported_model", "message": f"{entry.get('name')} reads text only "
                        f"and cannot see images. Load a model marked 'vision': {MODELS[-1]['name']}."}})
            yield "data: [DONE]\n\n"
            return
        if "fail" in user:
            yield line({"type": "Error", "error": {"kind": "context_overflow", "message": "The conversation does not fit."}})
            yield "data: [DONE]\n\n"
            return
        text, delay = _reply_for(user)
        system = next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
        if request_id.startswith("tune-") and "short sentence" not in system:  # replies to label: asked for brevity or not
            text += " And more." * 6
        if seen:
            text = f"I see {seen} image{'s' if seen > 1 else ''}. {text}"
        pieces = re.findall(r"\s*\S+|\s+", text)
        start, first, out, finish = time.monotonic(), None, [], "stop"
        for i, piece in enumerate(pieces):
            if request_id in cancelled:
                finish = "cancelled"
                break
            if i >= int(body.get("max_tokens") or 10 ** 9):
                finish = "length"
                break
            await asyncio.sleep(delay)
            first = first or time.monotonic() - start
            out.append(piece)
            yield line({"type": "Token", "text": piece, "index": i})
        total = time.monotonic() - start
        data = {"text": "".join(out), "prompt_tokens": sum(len(_text(m["content"]).split()) for m in messages),
                "completion_tokens": len(out), "ttft_s": first or 0.0, "tokens_per_s": len(out) / total if total else 0.0,
                "total_s": total, "dropped_messages": 0}
        yield line({"type": "Result", "finish_reason": finish, "data": data})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/hearth/tune/compare")
async def tune_compare(request: Request):
    """Canned comparison: the tuned reply is the base reply with a cheerful ending; a reward model likes it more."""
    body = await request.json()
    if not os.path.isfile(os.path.join(body.get("adapter", ""), "adapter_config.json")):
        return JSONResponse({"error": {"kind": "model_file", "message": f"{body.get('adapter')} holds no adapter: "
                                       "adapter_config.json is missing."}}, status_code=400)

    async def events():
        def line(data: dict) -> str:
            return f"data: {json.dumps(data)}\n\n"

        pairs = []
        for i, prompt in enumerate(body["prompts"]):
            text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
            for side in (0, 1):
                await asyncio.sleep(TOKEN_DELAY)
                yield line({"type": "Progress", "step": 2 * i + side, "total": 2 * len(body["prompts"]), "message": "writing"})
            pair = {"index": i, "prompt": prompt, "base": f"Base answer to {text}", "tuned": f"Tuned answer to {text}!",
                    "seed": body.get("seed", 0) + i}
            if body.get("reward_model"):
                pair.update(base_score=0.1, tuned_score=0.9)
            pairs.append(pair)
        finish = "cancelled" if body.get("request_id") in cancelled else "stop"
        yield line({"type": "Result", "finish_reason": finish, "data": {"pairs": pairs, "adapter": body["adapter"]}})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/hearth/tune/compare/release")
async def tune_compare_release():
    return {"released": True}


@app.post("/hearth/tune/merge")
async def tune_merge(request: Request):
    body = await request.json()
    target = body["target"]
    if os.path.exists(target):
        return JSONResponse({"error": {"kind": "request", "message": f"The folder {target} already exists."}}, status_code=400)
    os.makedirs(target)
    with open(os.path.join(target, "config.json"), "w") as fh:
        json.dump({"merged_from": body["adapter"]}, fh)
    return {"folder": target}


@app.get("/hearth/image/models")
async def image_models():
    """What the Image room asks for when the host comes up (without it, every window shows a 404 notice)."""
    return {"models": [{"id": "default", "name": "Hearth shapes (fake)"}], "loras": []}


DECODE_DEFAULTS = {"source": "procedural", "path": "", "snr": 0.5, "voxels": 4000, "train": 800, "test": 20, "repeats": 4,
                   "seed": 0, "samples": 3, "strength": 0.75, "steps": 20, "guidance": 5.0, "reconstruct": True,
                   "sweep": [], "n_way": 50, "model": "default", "request_id": ""}
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


@app.post("/hearth/decode/run")
async def decode_run(request: Request):
    """Canned decoding run. A data file is refused before any event (as the real host does for a bad file);
    ``steps`` >= 100 makes the reconstruct stage slow enough to cancel."""
    body = await request.json()
    unknown = sorted(set(body) - set(DECODE_DEFAULTS))
    if unknown:
        return JSONResponse({"error": {"kind": "request", "message": f"Unknown field(s) in the decode request: {', '.join(unknown)}."}},
                            status_code=400)
    job = {**DECODE_DEFAULTS, **body}
    if not 0 < job["snr"] <= 1000:
        return JSONResponse({"error": {"kind": "request", "message": f"Field 'snr' is {job['snr']!r}. Use a positive SNR."}},
                            status_code=400)
    if job["source"] == "data":
        name = os.path.basename(job["path"])
        return JSONResponse({"error": {"kind": "data_file", "path": job["path"],
                                       "message": f"{name}: field 'fmri_test' has 10 voxels but 'fmri_train' has 12. "
                                                  "Both must have the same number of voxels."}}, status_code=400)
    request_id = job["request_id"]
    slow = job["steps"] >= 100

    async def events():
        def line(data: dict) -> str:
            return f"data: {json.dumps(data)}\n\n"

        def progress(step: int, total: int, message: str) -> str:
            return line({"type": "Progress", "step": step, "total": total, "message": message})

        stages = ("stimuli", "features", "simulate", "fit", "decode", "reconstruct", "metrics")
        for i, name in enumerate(stages[:5]):
            if request_id in cancelled:
                yield line({"type": "Result", "finish_reason": "cancelled", "data": {"timings": {}}})
                yield "data: [DONE]\n\n"
                return
            await asyncio.sleep(TOKEN_DELAY)
            yield progress(i, 7, name)
        if job["reconstruct"]:
            batches = 40 if slow else 2
            for cond in ("decoded", "oracle", "shuffled"):
                yield progress(5, 7, "reconstruct")
                for b in range(batches):
                    if request_id in cancelled:
                        yield line({"type": "Result", "finish_reason": "cancelled", "data": {"timings": {"stimuli": 0.1}}})
                        yield "data: [DONE]\n\n"
                        return
                    await asyncio.sleep(0.1 if slow else TOKEN_DELAY)
                    yield progress(b + 1, batches, f"reconstruct {cond}")
        yield progress(6, 7, "metrics")
        sweep = []
        for snr in job["sweep"]:
            await asyncio.sleep(TOKEN_DELAY)
            yield progress(6, 7, f"sweep SNR {snr:g}")
            quality = snr / (snr + 0.05)
            sweep.append({"snr": snr, "alpha": 1000.0 / snr, "decoded": _decode_metrics(quality),
                          "shuffled": _decode_metrics(0.02)})
        n, names = job["test"], list(COLOURS)
        rows = []
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
        if not job["reconstruct"]:
            metrics.pop("lowlevel")
        data = {"request": job, "metrics": metrics, "chance": {"pixcorr": 0.0, "two_way": 0.5, "n_way_top1": 1 / min(n, 50),
                                                                 "semantic_acc": 1 / 48},
                "n_way": min(n, job["n_way"]), "alphas": {"lowlevel": 1000.0, "semantic": 3000.0},
                "timings": {"stimuli": 0.01, "features": 0.2, "fit": 0.1, "reconstruct": 1.0}, "rows": rows, "sweep": sweep,
                "figure_png": _png(600, 400, (255, 255, 255), 0.05, 7), "voxels": job["voxels"], "n_train": job["train"],
                "n_test": n, "source": job["source"], "model": "default"}
        yield line({"type": "Result", "finish_reason": "stop", "data": data})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _exit_with_parent(pid: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print("HEARTH_HOST_READY " + json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    main()
