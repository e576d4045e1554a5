"""No request body makes the engine host answer 500: wrongly typed or out-of-range fields on every endpoint are
400s whose message names the field."""
from __future__ import annotations

import pytest

from tests.helpers import FRANCE, HostProcess

USER = [{"role": "user", "content": "hi"}]

# (path, body, the field the message must name, or what it must be about)
WRONG = [
    ("/v1/chat/completions", {"messages": FRANCE, "temperature": "hot"}, "temperature"),
    ("/v1/chat/completions", {"messages": FRANCE, "max_tokens": "many"}, "max_tokens"),
    ("/v1/chat/completions", {"messages": FRANCE, "max_tokens": 1.5}, "max_tokens"),
    ("/v1/chat/completions", {"messages": FRANCE, "top_p": [1]}, "top_p"),
    ("/v1/chat/completions", {"messages": FRANCE, "seed": "0"}, "seed"),
    ("/v1/chat/completions", {"messages": FRANCE, "stop": 5}, "stop"),
    ("/v1/chat/completions", {"messages": FRANCE, "n": "two"}, "n"),
    ("/v1/chat/completions", {"messages": FRANCE, "stream": "yes"}, "stream"),
    ("/v1/chat/completions", {"messages": FRANCE, "model": 7}, "model"),
    ("/v1/chat/completions", {"messages": "hello"}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ("/v1/chat/completions", {"messages": FRANCE, "presence_penalty": "lots"}, "presence_penalty"),
    ("/v1/chat/completions", {"messages": FRANCE, "frequency_penalty": 9}, "frequency_penalty"),
    ("/v1/chat/completions", {"messages": FRANCE, "response_format": "json"}, "response_format"),
    ("/v1/chat/completions", {"messages": FRANCE, "response_format": {"type": "yaml"}}, "response_format"),
    ("/v1/chat/completions", {"messages": FRANCE, "tools": {"a": 1}}, "tools"),
    ("/v1/chat/completions", {"messages": FRANCE, "top_logprobs": 99, "logprobs": True}, "top_logprobs"),
    ("/v1/chat/completions", {"messages": FRANCE, "stream_options": "usage"}, "stream_options"),
    ("/v1/chat/completions", {"messages": FRANCE, "logit_bias": {"5": 100}}, "logit_bias"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0].image_url.url"),  # only data: URLs
    ("/v1/chat/completions", {"messages": FRANCE, "max_tokens": 4,
                              "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "wat"}}}}, "JSON schema"),
    ("/v1/chat/completions", {"messages": FRANCE, "max_tokens": 4, "tool_choice": "required", "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"$ref": "#/nowhere"}}}]}, "JSON schema"),
    ("/v1/completions", {"prompt": 12}, "prompt"),
    ("/v1/completions", {"prompt": "", "max_tokens": 2}, "prompt"),
    ("/v1/completions", {"prompt": "x", "temperature": None, "top_k": "ten"}, "top_k"),
    ("/v1/embeddings", {"input": 3}, "input"),
    ("/v1/embeddings", {"input": ["a", 3]}, "input"),
    ("/hearth/chat", {"messages": USER, "temperature": "hot"}, "temperature"),
    ("/hearth/chat", {"messages": USER, "overflow": 3}, "overflow"),
    ("/hearth/chat", {"messages": USER, "conversation_id": 4}, "conversation_id"),
    ("/hearth/models/load", {"model": 5}, "model"),
    ("/hearth/models/load", {"model": "default", "context_length": "big"}, "context_length"),
    ("/hearth/models/load", {"model": "default", "gpu_layers": "all"}, "gpu_layers"),
    ("/hearth/models/load", {"model": "default", "chat_template": 3}, "chat_template"),
    ("/hearth/models/load", {"model": "default", "chat_template": "klingon"}, "chat_template"),
    ("/hearth/models/unload", {"model": 5}, "model"),
    ("/hearth/cancel", {"request_id": 5}, "request_id"),
    ("/hearth/image/generate", {"prompt": "x", "steps": "ten"}, "steps"),
    ("/hearth/image/generate", {"prompt": "x", "memory": {"vae_tiling": "on"}}, "memory.vae_tiling"),
    ("/hearth/image/generate", {"prompt": "x", "loras": [{"path": 3}]}, "loras[0].path"),
    ("/hearth/image/load", {"model": "default", "memory": {"offload": 3}}, "memory.offload"),
    ("/hearth/image/load", {"model": "default", "memory": "low"}, "memory"),
    ("/hearth/image/load", {"model": ["default"]}, "model"),
    ("/hearth/image/unload", {"model": 1}, "model"),
    ("/hearth/image/gallery/delete", {"id": "first"}, "id"),
    ("/hearth/image/gallery/delete", {"id": 2**80}, "id"),
    ("/hearth/models/load", {"model": "default", "gpu_layers": -99}, "gpu_layers"),
    ("/hearth/image/metadata", {"path": 5}, "path"),
    ("/hearth/decode/run", {"snr": "high"}, "snr"),
    ("/hearth/decode/run", {"sweep": "0.5"}, "sweep"),
    ("/hearth/explore/tokens", {"text": 5}, "text"),
    ("/hearth/explore/neighbours", {"word": "king", "top": "ten"}, "top"),
    ("/hearth/explore/projection", {"pairs": "man,woman"}, "pairs"),
    ("/hearth/explore/attention", {"text": "x", "max_tokens": "all"}, "max_tokens"),
    ("/hearth/explore/fewshot/evaluate", {"task": "x", "ks": "1,2"}, "ks"),
    ("/hearth/explore/page", {"description": "x", "temperature": "warm"}, "temperature"),
    ("/hearth/explore/unload", {"model": 5}, "model"),
    ("/hearth/tune/compare", {"adapter": "/nope", "prompts": ["x"], "temperature": "warm"}, "temperature"),
    ("/hearth/tune/merge", {"adapter": 5, "target": "/tmp/x"}, "adapter"),
]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    yield proc
    proc.stop()


@pytest.mark.parametrize("path, body, field", WRONG, ids=[f"{p} {f}" for p, _, f in WRONG])
def test_a_wrongly_typed_field_is_a_400_naming_it(host, path, body, field):
    with host.client() as c:
        r = c.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    named = field if " " in field else f"'{field}'"  # a field, quoted; or what the message is about
    assert named in error["message"], error["message"]


def test_non_object_bodies_and_bad_query_parameters_are_400(host):
    with host.client() as c:
        for path in ("/v1/chat/completions", "/hearth/chat", "/hearth/models/load", "/hearth/image/generate"):
            for body in (b"[1, 2]", b'"text"', b"3", b"null", b"true"):
                r = c.post(path, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"], (path, body, r.text)
        r = c.post("/v1/chat/completions", content=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
        r = c.get("/hearth/image/gallery", params={"limit": "many"})
        assert r.status_code == 400 and "'limit'" in r.json()["error"]["message"]
        r = c.get("/hearth/models", params={"refresh": "soon"})
        assert r.status_code == 400 and "'refresh'" in r.json()["error"]["message"]
