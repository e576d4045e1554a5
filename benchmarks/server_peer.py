"""Hearth's engine host against llama-cpp-python's own OpenAI server on the same GGUF (the bundled SmolLM2).

Both servers run on loopback as subprocesses with the same context size and thread count; one streaming
client (httpx, SSE) sends both the same greedy chat request. Rounds alternate (Hearth, peer, Hearth, ...).
Measured: single-stream decode tokens/s (content chunks after the first, over the time after the first),
and aggregate tokens/s with 4 clients streaming at once (all content chunks over the wall time).

Needs the peer server's extras (benchmark-only): ``pip install starlette-context pydantic-settings``.
Prints one JSON object on its last line.
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from engines.models import bundled_default_path  # noqa: E402
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT  # noqa: E402

N_TOKENS = 128
ROUNDS = 5
AGGREGATE_ROUNDS = 2
CLIENTS = 4
CTX = 2048
THREADS = max(1, (os.cpu_count() or 2) // 2)
KEY = "bench-key"
MESSAGES = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Write a detailed essay about the history of bread."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def start_servers(gguf: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    env = dict(os.environ, HEARTH_HOME=tempfile.mkdtemp(prefix="hearth-bench-"), HF_HUB_OFFLINE="1",
               HEARTH_API_KEY=KEY, HEARTH_THREADS=str(THREADS))
    hearth_port, peer_port = free_port(), free_port()
    hearth = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--port", str(hearth_port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peer = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(peer_port), "--n_ctx", str(CTX), "--n_threads", str(THREADS),
                             "--api_key", KEY, "--verbose", "False",
                             # By default a new request aborts the one streaming; queue them as Hearth does.
                             "--interrupt_requests", "False"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    urls = {"hearth": f"http://127.0.0.1:{hearth_port}", "peer": f"http://127.0.0.1:{peer_port}"}
    procs = [hearth, peer]
    try:
        wait_ready(urls["hearth"], hearth)
        wait_ready(urls["peer"], peer)
        r = httpx.post(f"{urls['hearth']}/hearth/models/load", headers={"Authorization": f"Bearer {KEY}"}, timeout=120,
                       json={"model": str(gguf), "backend": "llama", "context_length": CTX})
        r.raise_for_status()
    except BaseException:
        stop(procs)
        raise
    return urls, procs


def stream_once(url: str, model: str) -> tuple[int, float, float, float]:
    """(content chunks, request start, first content, last content) for one streamed reply."""
    body = {"model": model, "messages": MESSAGES, "max_tokens": N_TOKENS, "temperature": 0.0, "top_p": 0.95,
            "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "seed": 0, "stream": True}
    start = time.perf_counter()
    n, first, last = 0, None, None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300,
                      headers={"Authorization": f"Bearer {KEY}"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    return n, start, first or start, last or start


def single_tok_s(url: str, model: str) -> float:
    n, _, first, last = stream_once(url, model)
    return (n - 1) / (last - first) if n > 1 and last > first else 0.0


def aggregate_tok_s(url: str, model: str) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: stream_once(url, model), range(CLIENTS)))
    return sum(r[0] for r in results) / (time.perf_counter() - start)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    gguf = bundled_default_path()
    urls, procs = start_servers(gguf)
    models = {"hearth": str(gguf), "peer": str(gguf)}
    single: dict[str, list[float]] = {"hearth": [], "peer": []}
    aggregate: dict[str, list[float]] = {"hearth": [], "peer": []}
    try:
        for name in urls:  # warm-up: first prompt evaluation, caches
            stream_once(urls[name], models[name])
        for i in range(ROUNDS):
            for name in (("hearth", "peer") if i % 2 == 0 else ("peer", "hearth")):
                single[name].append(single_tok_s(urls[name], models[name]))
                print(f"round {i + 1} {name}: {single[name][-1]:.1f} tok/s", file=sys.stderr)
        for i in range(AGGREGATE_ROUNDS):
            for name in (("hearth", "peer") if i % 2 == 0 else ("peer", "hearth")):
                aggregate[name].append(aggregate_tok_s(urls[name], models[name]))
                print(f"aggregate {i + 1} {name}: {aggregate[name][-1]:.1f} tok/s", file=sys.stderr)
    finally:
        stop(procs)
    med = {k: statistics.median(v) for k, v in single.items()}
    agg = {k: statistics.median(v) for k, v in aggregate.items()}
    print(json.dumps({
        "model": gguf.name, "n_tokens": N_TOKENS, "rounds": ROUNDS, "threads": THREADS, "context": CTX,
        "single_stream_tok_s": {k: round(v, 2) for k, v in med.items()},
        "single_stream_ratio": round(med["hearth"] / med["peer"], 3),
        "single_stream_all": {k: [round(x, 2) for x in v] for k, v in single.items()},
        "aggregate_tok_s_4_clients": {k: round(v, 2) for k, v in agg.items()},
        "aggregate_ratio": round(agg["hearth"] / agg["peer"], 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
