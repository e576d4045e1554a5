"""The desktop's host client sends the request objects of engines.core.requests: each Explore and Compare request
goes to its route as ``request.to_dict()``, and every request survives the JSON round trip the host makes."""
from __future__ import annotations

import json

import httpx
import pytest

from engines.core.errors import RequestError
from engines.core.requests.explore import (
    AnalogyRequest, AttentionRequest, FewShotEvalRequest, FewShotPromptRequest, NeighboursRequest, PageRequest,
    ProjectionRequest, TokensRequest,
)
from engines.core.requests.text import EmbeddingRequest
from engines.core.requests.tune import CompareRequest

REQUESTS = [
    TokensRequest(text="Hello", chat=True), NeighboursRequest(word="Paris", top=5),
    AnalogyRequest(a="man", b="king", c="woman"), ProjectionRequest(pairs=[["man", "woman"], ["cat"]]),
    AttentionRequest(text="The cat sat.", max_tokens=16), FewShotPromptRequest(query="Peru", examples=[{"input": "France", "output": "Paris"}]),
    FewShotEvalRequest(ks=[0, 2], limit=3, request_id="r"), PageRequest(description="A card", seed=4),
    CompareRequest(adapter="/runs/sft-1", prompts=["Hi", [{"role": "user", "content": "2+2?"}]], seed=3),
    EmbeddingRequest(input=["a", "b"]),
]


def _client(seen: list):
    from desktop.host_client import HostClient

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        if request.url.path in ("/hearth/explore/fewshot/evaluate", "/hearth/explore/page", "/hearth/tune/compare"):
            return httpx.Response(200, text="data: [DONE]\n\n", headers={"Content-Type": "text/event-stream"})
        return httpx.Response(200, json={"ok": True})

    client = HostClient("http://hearth.test", "key")
    client._http = httpx.Client(base_url="http://hearth.test", transport=httpx.MockTransport(answer))
    return client


@pytest.mark.parametrize("request_obj", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_round_trips_through_json(request_obj):
    again = type(request_obj).from_dict(json.loads(json.dumps(request_obj.to_dict())))
    assert again == request_obj


def test_explore_and_compare_requests_go_to_their_routes_as_to_dict():
    from engines.host.explore_routes import _CALLS
    from desktop.host_client import EXPLORE_PATHS

    assert {path: cls for path, (cls, _method) in _CALLS.items()} == {path: cls for cls, path in EXPLORE_PATHS.items()}
    seen: list = []
    client = _client(seen)
    quick = [r for r in REQUESTS if type(r) in EXPLORE_PATHS]
    for request in quick:
        assert client.explore(request) == {"ok": True}
    assert list(client.stream_fewshot_evaluate(REQUESTS[6])) == []
    assert list(client.stream_page(REQUESTS[7])) == []
    assert list(client.stream_compare(REQUESTS[8])) == []
    assert seen == [(f"/hearth/explore/{EXPLORE_PATHS[type(r)]}", r.to_dict()) for r in quick] + [
        ("/hearth/explore/fewshot/evaluate", REQUESTS[6].to_dict()), ("/hearth/explore/page", REQUESTS[7].to_dict()),
        ("/hearth/tune/compare", REQUESTS[8].to_dict())]


def test_the_gui_checks_a_request_with_the_hosts_own_rules():
    with pytest.raises(RequestError, match="The text is empty"):
        AttentionRequest(text="  ").validate()
    with pytest.raises(RequestError, match="'ks'"):
        FewShotEvalRequest(ks=[0, 99]).validate()
    with pytest.raises(RequestError, match="prompts"):
        CompareRequest(adapter="/runs/sft-1", prompts=[]).validate()
