"""The engine host over real HTTP: OpenAI client, curl, Hearth endpoints, auth, cancel, bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.explore_support import shared_cache  # noqa: F401  (one converted-weights cache per run)
from tests.helpers import FRANCE, GREEDY, ROOT, SYSTEM, HostProcess, make_bad_models, sse_events

LONG = [SYSTEM, {"role": "user", "content": "Write a very long essay about the history of rivers."}]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    with proc.client() as c:
        r = c.post("/hearth/models/load", json={"model": "default", "backend": "llama", "context_length": 2048})
        assert r.status_code == 200, r.text
    yield proc
    proc.stop()


def test_requests_without_the_key_get_401(host):
    r = httpx.get(f"{host.url}/v1/models")
    assert r.status_code == 401
    assert "API key" in r.json()["error"]["message"]
    r = httpx.get(f"{host.url}/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_openai_client_non_streaming_and_streaming(host):
    from openai import OpenAI

    client = OpenAI(base_url=f"{host.url}/v1", api_key=host.api_key)
    assert "default" in [m.id for m in client.models.list().data]
    reply = client.chat.completions.create(model="default", messages=FRANCE, temperature=0, seed=0, max_tokens=40)
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0

    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(model="default", messages=FRANCE, temperature=0, seed=0, max_tokens=40, stream=True):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        usage = getattr(chunk, "usage", None) or usage
    assert "Paris" in "".join(pieces)
    assert finish == "stop" and usage.completion_tokens > 0

    completion = client.completions.create(model="default", prompt="The capital of France is", max_tokens=8, temperature=0)
    assert completion.choices[0].text.strip()
    short = client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_plain_curl_streams_sse_ending_with_done(host):
    body = json.dumps({"model": "default", "messages": FRANCE, "temperature": 0, "max_tokens": 40, "stream": True})
    out = subprocess.run(["curl", "-sN", f"{host.url}/v1/chat/completions", "-H", "Content-Type: application/json",
                          "-H", f"Authorization: Bearer {host.api_key}", "-d", body],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content", "") for l in lines[:-1]
                   if json.loads(l[6:])["choices"])
    assert "Paris" in text
    no_key = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{host.url}/v1/models"],
                            capture_output=True, text=True, timeout=30).stdout
    assert no_key == "401"


def test_hearth_chat_streams_typed_events(host):
    with host.client() as c, c.stream("POST", "/hearth/chat", json={"messages": FRANCE, "max_tokens": 40, **GREEDY}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    assert events[-1] == {"done": True}
    result = events[-2]
    assert result["type"] == "Result" and result["finish_reason"] == "stop"
    tokens = "".join(e["text"] for e in events if e.get("type") == "Token")
    assert "Paris" in tokens and result["data"]["text"] == tokens
    assert result["data"]["tokens_per_s"] > 0


def test_cancel_endpoint_stops_a_stream_and_the_host_stays_usable(host):
    with host.client() as c:
        with c.stream("POST", "/hearth/chat", json={"request_id": "r-cancel", "messages": LONG, "max_tokens": 1500, **GREEDY}) as r:
            seen = 0
            result = None
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if event["type"] == "Token":
                    seen += 1
                    if seen == 3:
                        assert c.post("/hearth/cancel", json={"request_id": "r-cancel"}).json() == {"cancelled": True}
                elif event["type"] == "Result":
                    result = event
        assert result["finish_reason"] == "cancelled"
        assert result["data"]["completion_tokens"] < 40
        assert c.post("/hearth/cancel", json={"request_id": "nope"}).json() == {"cancelled": False}
        reply = c.post("/v1/chat/completions", json={"messages": FRANCE, "max_tokens": 40, "temperature": 0}).json()
        assert "Paris" in reply["choices"][0]["message"]["content"]


def test_client_disconnect_cancels_the_generation(host):
    with host.client() as c:
        with c.stream("POST", "/v1/chat/completions", json={"messages": LONG, "max_tokens": 1500, "temperature": 0, "stream": True}) as r:
            request_id = r.headers["X-Hearth-Request-Id"]
            for i, _ in enumerate(r.iter_lines()):
                if i > 4:
                    break
        # The host logs why the job stopped: a generation that simply finished would leave no such line.
        deadline = time.time() + 10
        line = f"hearth: chat {request_id} cancelled: client disconnected"
        while time.time() < deadline and (line not in host.log() or c.get("/hearth/health").json()["active"]):
            time.sleep(0.1)
        assert line in host.log()
        assert c.get("/hearth/health").json()["active"] == 0


def test_bad_model_load_is_a_clear_400_and_the_model_stays(host, tmp_path):
    bad = make_bad_models(tmp_path)
    with host.client() as c:
        for path in bad.values():
            r = c.post("/hearth/models/load", json={"model": str(path)})
            assert r.status_code == 400
            err = r.json()["error"]
            assert err["kind"] == "model_file" and str(path) in err["message"]
        r = c.post("/hearth/models/load", json={"model": "default", "context_length": 5})
        assert r.status_code == 400 and "context_length" in r.json()["error"]["message"]
        assert c.get("/hearth/health").json()["loaded"] == ["default"]
        reply = c.post("/v1/chat/completions", json={"messages": FRANCE, "max_tokens": 40, "temperature": 0}).json()
        assert "Paris" in reply["choices"][0]["message"]["content"]


def test_bad_requests_are_400_with_the_field_named(host):
    with host.client() as c:
        r = c.post("/v1/chat/completions", json={"messages": FRANCE, "temperature": -3})
        assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
        r = c.post("/hearth/chat", content=b"{oops", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = c.post("/hearth/chat", json={"messages": [{"role": "user", "content": "x" * 40000}], "overflow": "stop"})
        assert r.status_code == 400 and r.json()["error"]["kind"] == "context_overflow"


def test_models_memory_and_unload(host):
    with host.client() as c:
        models = c.get("/hearth/models").json()["models"]
        default = next(m for m in models if m["id"] == "default")
        assert default["format"] == "gguf" and default["source"] == "bundled"
        memory = c.get("/hearth/memory").json()
        assert memory["ram_total"] > 0 and memory["loaded"][0]["model"] == "default"
        assert c.post("/hearth/models/unload", json={"model": "default"}).json() == {"unloaded": ["default"]}
        assert c.get("/hearth/health").json()["loaded"] == []
        # An OpenAI request for an unloaded model loads it on demand.
        reply = c.post("/v1/chat/completions", json={"model": "default", "messages": FRANCE, "max_tokens": 40, "temperature": 0}).json()
        assert "Paris" in reply["choices"][0]["message"]["content"]


def test_host_exits_when_its_parent_is_gone(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        proc = HostProcess(tmp_path, extra_args=("--parent-pid", str(parent.pid)))
    except BaseException:
        parent.kill()  # a host that never started must not leave the stand-in parent behind
        raise
    try:
        parent.kill()
        parent.wait()
        assert proc.proc.wait(timeout=15) == 0
    finally:
        proc.stop()


def test_openai_client_on_the_transformers_backend(tmp_path):
    from openai import OpenAI

    proc = HostProcess(tmp_path / "home-hf")
    try:
        with proc.client(timeout=900) as c:
            r = c.post("/hearth/models/load", json={"model": "default", "backend": "transformers", "context_length": 2048})
            assert r.status_code == 200, r.text
            assert r.json()["backend"] == "transformers"
        client = OpenAI(base_url=f"{proc.url}/v1", api_key=proc.api_key)
        reply = client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=24)
        assert "Paris" in reply.choices[0].message.content
        assert reply.usage.completion_tokens > 0
        pieces = [chunk.choices[0].delta.content or "" for chunk in
                  client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=24, stream=True)
                  if chunk.choices]
        assert "Paris" in "".join(pieces)
        chunks = list(client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=8,
                                                     stream=True, stream_options={"include_usage": True}))
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
        # What needs llama.cpp's sampler is refused with a reason, not silently ignored.
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        with proc.client() as c:
            for extra in ({"response_format": {"type": "json_object"}}, {"tools": tools}, {"logprobs": True},
                          {"presence_penalty": 1.0}, {"frequency_penalty": 0.5}):
                for stream in (False, True):
                    r = c.post("/v1/chat/completions", json={"messages": FRANCE, "max_tokens": 4, "stream": stream, **extra})
                    assert r.status_code == 400, (extra, r.text)
                    assert "transformers backend does not support" in r.json()["error"]["message"]
    finally:
        proc.stop()


def test_extremely_long_prompts_are_refused_or_trimmed_with_a_clear_message(host):
    huge = "All work and no play makes Jack a dull boy. " * 12000  # about 540 kB, about 60 contexts
    with host.client() as c:
        r = c.post("/v1/completions", json={"prompt": huge, "max_tokens": 4})
        assert r.status_code == 400 and r.json()["error"]["kind"] == "context_overflow"
        assert "tokens; the model's context holds" in r.json()["error"]["message"]
        for stream in (False, True):
            r = c.post("/v1/chat/completions", json={"messages": [SYSTEM, {"role": "user", "content": huge}], "max_tokens": 4,
                                                     "stream": stream})
            assert r.status_code == 400 and r.json()["error"]["kind"] == "context_overflow", r.text
            assert "last message alone" in r.json()["error"]["message"]
        # Under the default policy ('truncate') a long history loses its oldest turns, and the reply says how many.
        turn = "Tell me about rivers. " * 60
        history = [SYSTEM] + [{"role": role, "content": turn} for _ in range(8) for role in ("user", "assistant")]
        r = c.post("/v1/chat/completions", json={"messages": history + FRANCE[1:], "max_tokens": 30, "temperature": 0})
        assert r.status_code == 200, r.text
        assert r.json()["hearth"]["dropped_messages"] > 0
        assert r.json()["usage"]["prompt_tokens"] < 4096
        assert c.get("/hearth/health").json()["status"] == "ok"
