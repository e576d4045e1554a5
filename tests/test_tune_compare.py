"""Compare: base and tuned replies with the same seed, reward-model scores and win rate; the host's
Tune endpoints (compare stream, merge) and loading an adapter through /hearth/models/load."""
from __future__ import annotations

import json

import pytest

from engines.core.cancel import CancelToken
from engines.core.compare_stats import reward_win_rate
from engines.core.errors import ModelFileError, RequestError
from engines.core.events import Progress, Result
from engines.core.requests.tune import CompareRequest
from engines.tune.compare import Comparer
from tests.tune_support import build_tiny_adapter, build_tiny_model

pytestmark = pytest.mark.timeout(300)
PROMPTS = ["Say hi.", "Name a fruit.", [{"role": "user", "content": "What is 2+2?"}]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    base = build_tiny_model(root / "tiny-llama")
    return {"root": root, "base": base, "adapter": build_tiny_adapter(base, root / "runs" / "dpo-run-3"),
            "reward": build_tiny_adapter(base, root / "runs" / "reward-run", task="SEQ_CLS", seed=3)}


def run(comparer: Comparer, request: CompareRequest, cancel: CancelToken | None = None):
    events = list(comparer.compare(request, cancel))
    results = [e for e in events if isinstance(e, Result)]
    assert len(results) == 1 and events[-1] is results[0]
    return events, results[0]


def base_reply(base, prompt) -> str:
    """What the base model alone says, greedily: the base side of a comparison must match it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engines.tune.adapters import chat_text

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    enc = tokenizer(chat_text(tokenizer, prompt, None, "You are a helpful assistant."), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_pairs_scores_and_win_rate(tiny):
    comparer = Comparer()
    request = CompareRequest(adapter=str(tiny["adapter"]), prompts=PROMPTS, reward_model=str(tiny["reward"]),
                             temperature=0.0, max_tokens=10, device="cpu")
    events, result = run(comparer, request)
    assert sum(isinstance(e, Progress) for e in events) >= 2 * len(PROMPTS)
    pairs = result.data["pairs"]
    assert [p["index"] for p in pairs] == [0, 1, 2] and [p["prompt"] for p in pairs] == PROMPTS
    assert pairs[0]["base"] == base_reply(tiny["base"], PROMPTS[0])  # the adapter really is off for the base side
    assert any(p["base"] != p["tuned"] for p in pairs)  # ...and on for the tuned side
    assert all(isinstance(p["base_score"], float) and isinstance(p["tuned_score"], float) for p in pairs)
    summary = result.data["summary"]
    assert summary == reward_win_rate([(p["base_score"], p["tuned_score"]) for p in pairs])
    assert summary["pairs"] == 3 and summary["wins"] + summary["losses"] + summary["ties"] == 3
    assert 0.0 <= summary["win_rate"] <= 1.0
    assert result.data["tuned_model"] == f"{tiny['base']}+{tiny['adapter'].resolve()}"

    # Same seed, same settings -> the same pairs again (the models stay loaded between calls).
    _, again = run(comparer, request)
    assert [(p["base"], p["tuned"]) for p in again.data["pairs"]] == [(p["base"], p["tuned"]) for p in pairs]
    assert comparer.release() is True and comparer.release() is False


def test_win_rate_counts_ties_as_half():
    summary = reward_win_rate([(0.0, 1.0), (1.0, 0.0), (0.5, 0.5), (0.1, 0.9)])
    assert (summary["wins"], summary["losses"], summary["ties"]) == (2, 1, 1)
    assert summary["win_rate"] == pytest.approx(2.5 / 4) and summary["mean_tuned"] == pytest.approx(0.6)
    assert reward_win_rate([])["win_rate"] is None


def test_cancel_and_bad_input(tiny, tmp_path):
    comparer = Comparer()
    cancel = CancelToken()
    cancel.cancel("test")
    _, result = run(comparer, CompareRequest(adapter=str(tiny["adapter"]), prompts=PROMPTS, max_tokens=4, device="cpu"), cancel)
    assert result.finish_reason == "cancelled" and result.data["pairs"] == [] and result.data["summary"] is None

    with pytest.raises(ModelFileError, match="adapter_config.json is missing"):
        list(comparer.compare(CompareRequest(adapter=str(tmp_path), prompts=["Hi"])))
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    with pytest.raises(RequestError, match="reward model .*notes is not a model folder"):
        list(comparer.compare(CompareRequest(adapter=str(tiny["adapter"]), prompts=["Hi"], reward_model=str(not_a_model))))
    with pytest.raises(RequestError, match="reward model"):  # a reward run cannot be the tuned side
        list(comparer.compare(CompareRequest(adapter=str(tiny["reward"]), prompts=["Hi"])))
    with pytest.raises(RequestError, match="prompts"):
        CompareRequest.from_dict({"adapter": str(tiny["adapter"]), "prompts": []})
    with pytest.raises(RequestError, match="Unknown field"):
        CompareRequest.from_dict({"adapter": "x", "prompts": ["a"], "temprature": 1})
    comparer.release()


def _sse(response) -> list[dict]:
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def test_host_streams_a_comparison_merges_and_loads_adapters(tiny, tmp_path):
    from fastapi.testclient import TestClient

    from engines.host.server import create_app
    from engines.host.state import HostState
    from engines.text.engine import TextEngine
    from engines.core.requests.text import LoadRequest

    state = HostState()
    client = TestClient(create_app(None, state))
    try:
        body = {"adapter": str(tiny["adapter"]), "prompts": ["Say hi."], "reward_model": str(tiny["reward"]),
                "temperature": 0.0, "max_tokens": 6, "device": "cpu"}
        response = client.post("/hearth/tune/compare", json=body)
        assert response.status_code == 200
        events = _sse(response)
        assert events[-1]["type"] == "Result" and len(events[-1]["data"]["pairs"]) == 1
        assert "tuned_score" in events[-1]["data"]["pairs"][0] and events[-1]["data"]["summary"]["pairs"] == 1
        assert client.post("/hearth/tune/compare/release").json() == {"released": True}

        bad = client.post("/hearth/tune/compare", json={**body, "adapter": str(tmp_path)})
        assert bad.status_code == 400 and "adapter_config.json" in bad.json()["error"]["message"]

        loaded = client.post("/hearth/models/load", json={"model": str(tiny["base"]), "adapter": str(tiny["adapter"]),
                                                          "device": "cpu"})
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["backend"] == "transformers" and loaded.json()["info"]["name"].endswith(" + dpo-run-3")
        refused = client.post("/hearth/models/load", json={"model": str(tiny["base"]), "adapter": str(tiny["adapter"]),
                                                           "backend": "llama"})
        assert refused.status_code == 400 and "transformers backend" in refused.json()["error"]["message"]

        target = tmp_path / "merged"
        merged = client.post("/hearth/tune/merge", json={"adapter": str(tiny["adapter"]), "target": str(target)})
        assert merged.status_code == 200 and merged.json() == {"folder": str(target)}
        assert (target / "model.safetensors").is_file() and (target / "config.json").is_file()
        assert not list(target.parent.glob(".merged.*"))
        again = client.post("/hearth/tune/merge", json={"adapter": str(tiny["adapter"]), "target": str(target)})
        assert again.status_code == 400 and "already exists" in again.json()["error"]["message"]
    finally:
        client.close()
        state.text.close()

    # The merged folder is a plain model: it answers like base + adapter.
    engine = TextEngine()
    try:
        ask = {"messages": [{"role": "user", "content": "Say hi."}], "temperature": 0.0, "max_tokens": 8}
        from engines.core.requests.text import ChatRequest

        def text(model_id):
            return [e for e in engine.chat(ChatRequest(model=model_id, **ask)) if isinstance(e, Result)][0].data["text"]

        tuned = engine.load(LoadRequest(model=str(tiny["base"]), adapter=str(tiny["adapter"]), device="cpu"))
        plain = engine.load(LoadRequest(model=str(target), backend="transformers", device="cpu"))
        assert text(plain.id) == text(tuned.id)
    finally:
        engine.close()
