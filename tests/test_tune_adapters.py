"""Chatting with a trained adapter: the text engine loads base + PEFT adapter on transformers, names it,
and refuses bad adapter folders with messages that name the file."""
from __future__ import annotations

import json
import shutil

import pytest

from engines.core.cancel import CancelToken
from engines.core.errors import ModelFileError, RequestError
from engines.core.events import Result
from engines.text.engine import TextEngine
from engines.core.requests.text import ChatRequest, LoadRequest
from tests.tune_support import build_tiny_adapter, build_tiny_model

pytestmark = pytest.mark.timeout(300)
ASK = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    base = build_tiny_model(root / "tiny-llama")
    other = build_tiny_model(root / "other-llama", seed=7)
    adapter = build_tiny_adapter(base, root / "runs" / "dpo-run-3")
    reward = build_tiny_adapter(base, root / "runs" / "reward-run", task="SEQ_CLS")
    return {"root": root, "base": base, "other": other, "adapter": adapter, "reward": reward}


def reply(engine: TextEngine, model: str) -> str:
    result = None
    for event in engine.chat(ChatRequest(messages=ASK, model=model, temperature=0.0, seed=0, max_tokens=12), CancelToken()):
        if isinstance(event, Result):
            result = event
    return result.data["text"]


def test_adapter_changes_the_reply_and_shows_in_the_name(tiny):
    engine = TextEngine()
    try:
        base = engine.load(LoadRequest(model=str(tiny["base"]), backend="transformers", device="cpu"))
        tuned = engine.load(LoadRequest(model=str(tiny["base"]), adapter=str(tiny["adapter"]), device="cpu"))
        assert tuned.backend_name == "transformers"  # auto + adapter -> transformers
        assert tuned.name == f"{base.name} + dpo-run-3"
        assert tuned.id == f"{base.id}+{tiny['adapter'].resolve()}" and tuned.to_dict()["adapter"] == str(tiny["adapter"])
        assert {m.id for m in engine.loaded()} == {base.id, tuned.id}  # base and tuned side by side
        assert reply(engine, tuned.id) != reply(engine, base.id)
        assert engine.get(f"{tiny['base']}+{tiny['adapter']}") is tuned  # the same id spelled by path
        # Loading again with the same options is a no-op; unloading the tuned model keeps the base.
        assert engine.load(LoadRequest(model=str(tiny["base"]), adapter=str(tiny["adapter"]), device="cpu")) is tuned
        engine.unload(tuned.id)
        assert [m.id for m in engine.loaded()] == [base.id]
    finally:
        engine.close()


def test_model_auto_takes_the_base_the_adapter_was_trained_on(tiny):
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model="auto", adapter=str(tiny["adapter"]), device="cpu"))
        assert loaded.load.adapter == str(tiny["adapter"]) and loaded.id.startswith(str(tiny["base"].resolve()))
    finally:
        engine.close()


def test_bad_adapter_folders_are_refused_with_the_file_named(tiny, tmp_path):
    engine = TextEngine()
    base = str(tiny["base"])

    def load_error(adapter, **kwargs):
        with pytest.raises((ModelFileError, RequestError)) as info:
            engine.load(LoadRequest(model=kwargs.pop("model", base), adapter=str(adapter), device="cpu", **kwargs))
        return info.value

    error = load_error(tmp_path / "nowhere")
    assert "does not exist" in str(error) and "nowhere" in str(error)

    empty = tmp_path / "empty-run"
    empty.mkdir()
    error = load_error(empty)
    assert isinstance(error, ModelFileError) and "adapter_config.json is missing" in str(error)
    assert error.path.endswith("adapter_config.json")

    broken = shutil.copytree(tiny["adapter"], tmp_path / "broken")
    (broken / "adapter_config.json").write_text("{not json")
    assert "adapter_config.json is not valid JSON" in str(load_error(broken))

    no_weights = shutil.copytree(tiny["adapter"], tmp_path / "no-weights")
    (no_weights / "adapter_model.safetensors").unlink()
    assert "adapter_model.safetensors is missing" in str(load_error(no_weights))

    lost_base = shutil.copytree(tiny["adapter"], tmp_path / "lost-base")
    summary = json.loads((lost_base / "summary.json").read_text())
    (lost_base / "summary.json").write_text(json.dumps({**summary, "base_model": str(tmp_path / "gone-model")}))
    error = load_error(lost_base)
    assert "gone-model" in str(error) and "summary.json" in str(error) and "does not exist" in str(error)

    error = load_error(tiny["reward"])
    assert isinstance(error, RequestError) and "reward model" in str(error)

    error = load_error(tiny["adapter"], model=str(tiny["other"]))
    assert "was trained on" in str(error) and str(tiny["base"]) in str(error) and "auto" in str(error)

    error = load_error(tiny["adapter"], backend="llama")
    assert isinstance(error, RequestError) and "transformers backend" in str(error)
    assert engine.loaded() == []  # nothing half-loaded stays behind
    engine.close()


def test_an_adapter_written_by_a_training_run_loads_in_chat(tiny, tmp_path):
    from engines.core.requests.tune import TrainJob
    from engines.tune.runner import run_job
    from tests.tune_support import job_dict, sft_rows, write_jsonl

    out = tmp_path / "sft-run"
    dataset = write_jsonl(tmp_path / "sft.jsonl", sft_rows())
    summary = run_job(TrainJob.from_dict(job_dict("sft", tiny["base"], dataset, out, max_steps=2, learning_rate=5e-2)))
    assert summary["status"] == "completed"
    engine = TextEngine()
    try:
        tuned = engine.load(LoadRequest(model="auto", adapter=str(out), device="cpu"))
        base = engine.load(LoadRequest(model=str(tiny["base"]), backend="transformers", device="cpu"))
        assert tuned.name.endswith(" + sft-run") and tuned.info["adapter"] == str(out)
        assert reply(engine, tuned.id) != reply(engine, base.id)
    finally:
        engine.close()
