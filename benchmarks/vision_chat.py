"""The bundled vision model (SmolLM2 + assets/vision-default's mmproj) on held-out shape scenes, and Hearth's image
chat speed against the raw llama-cpp-python call.

Accuracy: 100 held-out scenes (engines/image/shapes.py, never trained on), one question each about colour, shape,
background and position, plus "Describe the picture."; each answer is parsed (engines/vision/prompts.py) and
graded against the scene's labels (the description per attribute it names). Greedy decoding, Hearth's default system
prompt, asked through Hearth's engine (model "default-vision"), as a user of Chat would.

Speed: one image and "Describe the picture.", interleaved runs, time to first token (image encode + prefill) and
tokens/s after it, Hearth's engine against llama-cpp-python's MTMDChatHandler called directly with the same files,
image, messages, context size and threads. Ratios are raw time / Hearth time for TTFT and Hearth / raw for tokens/s,
so 1.0 means equal and above 1 means Hearth is faster. Prints one JSON object on its last line.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vision_chat.py [--scenes 100] [--runs 5]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HEARTH_HOME", tempfile.mkdtemp(prefix="hearth-bench-"))

from engines.core.content import data_url  # noqa: E402
from engines.core.resources import resource  # noqa: E402
from engines.image import shapes  # noqa: E402
from engines.models import bundled_default_path  # noqa: E402
from engines.vision import prompts  # noqa: E402

CTX = 2048
ASKED = ("color", "shape", "background", "position", "describe")
TARGETS = {"color": 0.9, "background": 0.9, "shape": 0.8, "position": 0.8}
MMPROJ = ("assets", "vision-default", "mmproj-hearth-shapes.gguf")


def held_out_scenes(n: int, seed: int = 0) -> list[shapes.Scene]:
    pool = [s for s in shapes.all_scenes() if s.held_out]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def png(scene: shapes.Scene, index: int) -> bytes:
    buf = io.BytesIO()
    shapes.render(scene, rng=random.Random(index)).save(buf, format="PNG")
    return buf.getvalue()


def messages(image: bytes, question: str) -> list[dict]:
    return [{"role": "system", "content": prompts.SYSTEM_PROMPT},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                         {"type": "text", "text": question}]}]


class Raw:
    """llama-cpp-python alone: Llama + its generic MTMDChatHandler. The one addition is what SmolLM2's template needs
    (string contents): image parts become the media marker and a newline, as Hearth's engine sends them."""

    def __init__(self, mmproj: str):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import MTMDChatHandler

        class Handler(MTMDChatHandler):
            @classmethod
            def _convert_message_for_template(cls, message, media_marker):
                parts = message["content"]
                if isinstance(parts, str):
                    return dict(message)
                text = "".join(media_marker + "\n" if p["type"] == "image_url" else p["text"] for p in parts)
                return {**message, "content": text}

        self.llm = Llama(model_path=str(bundled_default_path()), n_ctx=CTX, verbose=False,
                         chat_handler=Handler(clip_model_path=mmproj, verbose=False))

    def stream(self, msgs: list[dict], max_tokens: int):
        for chunk in self.llm.create_chat_completion(messages=msgs, temperature=0.0, max_tokens=max_tokens, stream=True,
                                                     seed=0):
            text = chunk["choices"][0].get("delta", {}).get("content")
            if text:
                yield text

    def close(self) -> None:
        self.llm.close()


class Hearth:
    """Hearth's text engine with the bundled vision model, as Chat uses it."""

    def __init__(self):
        from engines.text.engine import TextEngine
        from engines.core.requests.text import LoadRequest

        self.engine = TextEngine()
        self.loaded = self.engine.load(LoadRequest(model="default-vision", backend="llama", context_length=CTX))

    def stream(self, msgs: list[dict], max_tokens: int):
        from engines.core.cancel import CancelToken
        from engines.core.events import Token
        from engines.core.requests.text import ChatRequest

        request = ChatRequest(messages=msgs, model=self.loaded.id, temperature=0.0, max_tokens=max_tokens, seed=0)
        for event in self.engine.chat(request, CancelToken()):
            if isinstance(event, Token):
                yield event.text

    def close(self) -> None:
        self.engine.close()


def ask(side, msgs: list[dict], max_tokens: int = 32) -> str:
    return "".join(side.stream(msgs, max_tokens))


def timed(side, msgs: list[dict]) -> tuple[float, float, int]:
    """(time to first token, tokens/s after it, tokens) for one reply."""
    start = time.perf_counter()
    first = last = None
    n = 0
    for _ in side.stream(msgs, 48):
        now = time.perf_counter()
        first = first or now
        last = now
        n += 1
    return first - start, (n - 1) / (last - first) if n > 1 else 0.0, n


def accuracy(side, scenes: list[shapes.Scene]) -> tuple[dict, list]:
    hits = {k: 0 for k in ASKED if k != "describe"}
    described = {k: 0 for k in ("color", "shape", "size", "position", "background")}
    described_all = 0
    examples = []
    for i, scene in enumerate(scenes):
        image = png(scene, i)
        for kind in ASKED:
            reply = ask(side, messages(image, prompts.BENCHMARK_QUESTIONS[kind]))
            got = prompts.parse(kind, reply)
            if kind == "describe":
                right = {k: got[k] == getattr(scene, k) for k in described}
                for k, ok in right.items():
                    described[k] += ok
                described_all += all(right.values())
            else:
                hits[kind] += got == getattr(scene, kind)
            if i < 3:
                examples.append({"scene": scene.caption(), "question": prompts.BENCHMARK_QUESTIONS[kind], "answer": reply})
    n = len(scenes)
    result = {k: round(v / n, 3) for k, v in hits.items()}
    result["describe"] = {**{k: round(v / n, 3) for k, v in described.items()}, "all_five": round(described_all / n, 3)}
    return result, examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    mmproj = resource(*MMPROJ)
    if not mmproj.exists():
        raise SystemExit(f"{mmproj} is missing: build it with tools/train_vision_model.py")
    out: dict = {"model": "SmolLM2-135M-Instruct Q4_1 (bundled) + assets/vision-default mmproj",
                 "mmproj_bytes": mmproj.stat().st_size, "scenes": args.scenes}
    raw = Raw(str(mmproj))
    hearth = None
    try:
        hearth = Hearth()
    except Exception as exc:  # reported, never faked: the accuracy then comes from the raw call
        out["hearth_error"] = f"{type(exc).__name__}: {exc}"
    try:
        scenes = held_out_scenes(args.scenes)
        acc, examples = accuracy(hearth or raw, scenes)
        out["accuracy_via"] = "hearth engine" if hearth else "raw llama-cpp-python"
        out["accuracy"] = acc
        out["targets"] = TARGETS
        out["targets_met"] = {k: acc[k] >= t for k, t in TARGETS.items()}
        out["examples"] = examples

        msgs = messages(png(scenes[0], 0), prompts.BENCHMARK_QUESTIONS["describe"])
        timed(raw, msgs)  # warm-up (first encode allocates)
        if hearth:
            timed(hearth, msgs)
        raw_runs, hearth_runs = [], []
        for _ in range(args.runs):
            raw_runs.append(timed(raw, msgs))
            if hearth:
                hearth_runs.append(timed(hearth, msgs))
        raw_ttft = statistics.median(r[0] for r in raw_runs)
        raw_tps = statistics.median(r[1] for r in raw_runs)
        out["raw"] = {"ttft_s": round(raw_ttft, 4), "tok_s": round(raw_tps, 2), "tokens": raw_runs[0][2]}
        if hearth_runs:
            h_ttft = statistics.median(r[0] for r in hearth_runs)
            h_tps = statistics.median(r[1] for r in hearth_runs)
            out["hearth"] = {"ttft_s": round(h_ttft, 4), "tok_s": round(h_tps, 2), "tokens": hearth_runs[0][2]}
            out["ttft_ratio"] = round(raw_ttft / h_ttft, 3)
            out["tok_s_ratio"] = round(h_tps / raw_tps, 3)
        else:
            out["hearth"] = None
            out["ttft_ratio"] = out["tok_s_ratio"] = None
        out["runs"] = args.runs
    finally:
        raw.close()
        if hearth:
            hearth.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
