"""Hearth's llama.cpp backend vs a minimal raw llama-cpp-python loop, and via the engine host.

Same model (the bundled SmolLM2), prompt, greedy settings and token count; runs interleaved.
Also measures second-turn time-to-first-token with and without KV-cache prefix reuse.
Prints one JSON object on its last line.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HEARTH_HOME", tempfile.mkdtemp(prefix="hearth-bench-"))

import httpx  # noqa: E402

from engines.core.cancel import CancelToken  # noqa: E402
from engines.core.events import Result  # noqa: E402
from engines.models import bundled_default_path  # noqa: E402
from engines.text.engine import TextEngine  # noqa: E402
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT, ChatRequest, LoadRequest  # noqa: E402

N_TOKENS = 128
RUNS = 5
CTX = 2048
MESSAGES = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Write a detailed essay about the history of bread."}]


def raw_tok_s(llm, prompt_tokens: list[int]) -> float:
    """The minimal loop: generate() with greedy sampling, timing after the first token."""
    llm.reset()
    n, first, last = 0, None, None
    for token in llm.generate(prompt_tokens, temp=0.0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1):
        now = time.perf_counter()
        first = first or now
        last = now
        n += 1
        if n >= N_TOKENS:
            break
    return (n - 1) / (last - first)


def hearth_tok_s(engine: TextEngine, reset) -> tuple[float, int]:
    reset()
    request = ChatRequest(messages=MESSAGES, temperature=0.0, max_tokens=N_TOKENS, stop=[])
    result = None
    for event in engine.chat(request, CancelToken()):
        if isinstance(event, Result):
            result = event
    return result.data["tokens_per_s"], result.data["completion_tokens"]


def host_tok_s(url: str, key: str, reset) -> float:
    reset()
    body = {"messages": MESSAGES, "temperature": 0.0, "max_tokens": N_TOKENS}
    first = last = None
    n = 0
    with httpx.Client(timeout=300, headers={"Authorization": f"Bearer {key}"}) as c:
        with c.stream("POST", f"{url}/hearth/chat", json=body) as r:
            for line in r.iter_lines():
                if line.startswith('data: {"type": "Token"'):
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    n += 1
    return (n - 1) / (last - first)


def second_turn_ttft(engine: TextEngine, llm, reuse: bool) -> float:
    first_turn = ChatRequest(messages=MESSAGES, temperature=0.0, max_tokens=64)
    text = ""
    for event in engine.chat(first_turn, CancelToken()):
        if isinstance(event, Result):
            text = event.data["text"]
    follow = MESSAGES + [{"role": "assistant", "content": text}, {"role": "user", "content": "Now summarise it in one line."}]
    if not reuse:
        llm.reset()
        llm.cache = None
    for event in engine.chat(ChatRequest(messages=follow, temperature=0.0, max_tokens=8), CancelToken()):
        if isinstance(event, Result):
            return event.data["ttft_s"]
    raise RuntimeError("no result")


def main() -> None:
    from llama_cpp import Llama, LlamaRAMCache

    from tests.helpers import HostProcess

    path = str(bundled_default_path())
    engine = TextEngine()
    loaded = engine.load(LoadRequest(model="default", backend="llama", context_length=CTX))
    backend = loaded.backend
    raw = Llama(model_path=path, n_ctx=CTX, verbose=False)
    rendered = backend._render(MESSAGES)
    prompt_tokens = backend._tokens(rendered)

    def reset_hearth():
        backend.llm.reset()
        backend.llm.set_cache(LlamaRAMCache(capacity_bytes=512 * 1024 * 1024))

    host = HostProcess(Path(os.environ["HEARTH_HOME"]), api_key="bench")
    with httpx.Client(timeout=300, headers={"Authorization": "Bearer bench"}) as c:
        c.post(f"{host.url}/hearth/models/load", json={"model": "default", "backend": "llama", "context_length": CTX}).raise_for_status()

    def reset_host():
        pass  # each request's prompt is identical; llama.cpp re-evaluates only what differs, as in raw

    raw_runs, hearth_runs, host_runs = [], [], []
    try:
        raw_tok_s(raw, prompt_tokens)  # warm-up
        for _ in range(RUNS):
            raw_runs.append(raw_tok_s(raw, prompt_tokens))
            hearth_runs.append(hearth_tok_s(engine, reset_hearth)[0])
            host_runs.append(host_tok_s(host.url, "bench", reset_host))
        ttft_reuse = statistics.median(second_turn_ttft(engine, backend.llm, True) for _ in range(3))
        ttft_cold = statistics.median(second_turn_ttft(engine, backend.llm, False) for _ in range(3))
    finally:
        host.stop()
        engine.close()
    raw_med, hearth_med, host_med = (statistics.median(x) for x in (raw_runs, hearth_runs, host_runs))
    print(json.dumps({
        "model": "SmolLM2-135M-Instruct Q4_1 (bundled)",
        "tokens_per_run": N_TOKENS, "runs": RUNS,
        "hearth_tok_s": round(hearth_med, 2), "raw_tok_s": round(raw_med, 2), "ratio": round(hearth_med / raw_med, 3),
        "host_tok_s": round(host_med, 2), "ratio_via_host": round(host_med / raw_med, 3),
        "second_turn_ttft_reuse_s": round(ttft_reuse, 4), "second_turn_ttft_no_reuse_s": round(ttft_cold, 4),
        "prefix_reuse_speedup": round(ttft_cold / ttft_reuse, 2),
        "runs_raw": [round(x, 1) for x in raw_runs], "runs_hearth": [round(x, 1) for x in hearth_runs],
        "runs_host": [round(x, 1) for x in host_runs],
    }))


if __name__ == "__main__":
    main()
