"""The engine host's /hearth/explore endpoints over real HTTP, and the usage they log."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from tests.explore_support import shared_cache  # noqa: F401  (fixture)
from tests.helpers import HostProcess, sse_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def host(tmp_path_factory, shared_cache):  # noqa: F811
    home = tmp_path_factory.mktemp("explore-home")
    proc = HostProcess(home)
    proc.home = home
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(host):
    with host.client(timeout=300) as c:
        yield c


def test_tokens_embeddings_and_presets(client):
    r = client.post("/hearth/explore/tokens", json={"text": "Hello world", "model": "default"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["id"] for t in body["tokens"]] == [19556, 905] and body["chars_per_token"] == 5.5
    chat = client.post("/hearth/explore/tokens", json={"text": "Hi", "chat": True}).json()
    assert any(t["special"] and t["text"] == "<|im_start|>" for t in chat["tokens"])

    analogy = client.post("/hearth/explore/analogy", json={"a": "man", "b": "king", "c": "woman", "top": 5}).json()
    assert analogy["results"][0]["word"] == "queen" and len(analogy["results"]) == 5
    near = client.post("/hearth/explore/neighbours", json={"word": "Paris", "top": 5}).json()
    assert len(near["results"]) == 5 and near["word"]["multi_token"] is False

    presets = client.get("/hearth/explore/presets").json()["relations"]
    assert [p["id"] for p in presets] == ["gender", "tense", "capitals"]
    plot = client.post("/hearth/explore/projection", json={"pairs": presets[0]["pairs"]}).json()
    assert len(plot["points"]) == 20 and len(plot["arrows"]) == 10


def test_bad_requests_are_plain_errors(client, tmp_path):
    r = client.post("/hearth/explore/analogy", json={"a": "man", "b": "king", "c": "woman", "top": 0})
    assert r.status_code == 400 and "top" in r.json()["error"]["message"]
    r = client.post("/hearth/explore/tokens", json={"text": "hi", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    missing = tmp_path / "nope.gguf"
    r = client.post("/hearth/explore/neighbours", json={"word": "cat", "model": str(missing)})
    assert r.status_code == 400 and str(missing) in r.json()["error"]["message"]
    r = client.post("/hearth/explore/attention", json={"text": " "})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]


def test_attention_as_base64_float16(client):
    r = client.post("/hearth/explore/attention", json={"text": "The cat sat.", "max_tokens": 32})
    assert r.status_code == 200, r.text
    body = r.json()
    weights = np.frombuffer(base64.b64decode(body["data"]), dtype="<f2").reshape(body["shape"])
    t = len(body["tokens"])
    assert body["shape"] == [body["layers"], body["heads"], t, t] == [30, 9, 4, 4]
    assert np.allclose(weights.astype(np.float32).sum(axis=-1), 1.0, atol=1e-2)


def test_fewshot_tasks_prompt_and_evaluation_stream(client, host):
    tasks = client.get("/hearth/explore/fewshot/tasks").json()
    assert tasks["ks"] == [0, 1, 2, 4, 8] and "capitals" in [t["id"] for t in tasks["tasks"]]
    prompt = client.post("/hearth/explore/fewshot/prompt", json={
        "description": "Give the capital.", "examples": [{"input": "Japan", "output": "Tokyo"}], "query": "France"}).json()
    assert prompt == {"prompt": "Give the capital.\n\nInput: Japan\nOutput: Tokyo\n\nInput: France\nOutput:", "k": 1}

    with client.stream("POST", "/hearth/explore/fewshot/evaluate", json={"task": "capitals", "ks": [0, 2], "limit": 4}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    assert events[-1] == {"done": True}
    kinds = [e.get("type") for e in events[:-1]]
    assert kinds.count("Progress") == 8 and kinds.count("Metric") == 2 and kinds[-1] == "Result"
    result = events[-2]
    assert set(result["data"]["accuracy"]) == {"0", "2"} and result["data"]["prompt_tokens"] > 0

    from engines.store.storage import Database
    from engines.store.usage import UsageLog

    db = Database(host.home / "hearth.sqlite3")
    try:
        logged = [e for e in UsageLog(db).entries() if e["source"] == "explore.fewshot"]
    finally:
        db.close()
    assert len(logged) == 1 and logged[0]["prompt_tokens"] == result["data"]["prompt_tokens"]


def test_page_streams_html_from_its_opening(client):
    with client.stream("POST", "/hearth/explore/page", json={"description": "A page about cats with a blue heading.",
                                                             "max_tokens": 24, "seed": 1}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    tokens = [e["text"] for e in events if e.get("type") == "Token"]
    assert tokens[0] == "<!DOCTYPE html>\n<html>\n" and len(tokens) > 3
    result = [e for e in events if e.get("type") == "Result"][0]
    assert result["data"]["text"].startswith("<!DOCTYPE html>") and result["data"]["text"] == "".join(tokens)
    r = client.post("/hearth/explore/page", json={"description": ""})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]


def test_openai_calls_are_logged_but_hearth_chat_replies_are_not(client, host):
    from engines.store.storage import Database
    from engines.store.usage import UsageLog

    r = client.post("/v1/completions", json={"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0})
    assert r.status_code == 200
    with client.stream("POST", "/hearth/chat", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                                                     "conversation_id": "7"}) as s:
        sse_events(s)
    db = Database(host.home / "hearth.sqlite3")
    try:
        entries = UsageLog(db).entries()
    finally:
        db.close()
    api = [e for e in entries if e["source"] == "api"]
    assert len(api) == 1 and api[0]["completion_tokens"] == r.json()["usage"]["completion_tokens"]
