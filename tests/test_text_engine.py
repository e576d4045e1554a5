"""The text engine on the bundled SmolLM2: real generation on both backends, cancel, policies, bad input."""
from __future__ import annotations

import os

import pytest

from engines.core.cancel import CancelToken
from engines.core.errors import ContextOverflowError, ModelFileError, RequestError
from engines.core.events import Result, Token
from engines.text.engine import TextEngine
from engines.core.requests.text import ChatRequest, LoadRequest
from tests.helpers import FRANCE, GREEDY, SYSTEM, make_bad_models

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(engine, request, cancel=None):
    tokens, result = [], None
    for event in engine.chat(request, cancel or CancelToken()):
        if isinstance(event, Token):
            tokens.append(event.text)
        elif isinstance(event, Result):
            result = event
    return "".join(tokens), result


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    os.environ["HEARTH_HOME"] = str(tmp_path_factory.mktemp("home"))
    engine = TextEngine()
    engine.load(LoadRequest(model="default", backend="llama", context_length=2048))
    yield engine
    engine.close()


def test_llama_greedy_answer_mentions_paris(llama):
    text, result = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, **GREEDY))
    assert "Paris" in text
    assert result.finish_reason == "stop"
    assert result.data["text"] == text
    assert result.data["prompt_tokens"] > 10
    assert 1 <= result.data["completion_tokens"] <= 41
    assert result.data["ttft_s"] > 0 and result.data["tokens_per_s"] > 0


def test_llama_is_deterministic_with_a_seed(llama):
    req = dict(messages=[SYSTEM, {"role": "user", "content": "Tell me a short story."}], temperature=0.9, seed=1234, max_tokens=24)
    a, _ = run(llama, ChatRequest(**req))
    b, _ = run(llama, ChatRequest(**req))
    c, _ = run(llama, ChatRequest(**{**req, "seed": 99}))
    assert a == b
    assert a != c


def test_llama_max_tokens_gives_length(llama):
    _, result = run(llama, ChatRequest(messages=[SYSTEM, {"role": "user", "content": "Count from 1 to 100."}], max_tokens=5, **GREEDY))
    assert result.finish_reason == "length"
    assert result.data["completion_tokens"] == 5


def test_llama_stop_string_ends_the_reply(llama):
    text, result = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, stop=["Paris"], **GREEDY))
    assert "Paris" not in text and result.finish_reason == "stop"


def test_cancel_mid_stream_then_engine_still_works(llama):
    cancel = CancelToken()
    seen = 0
    result = None
    for event in llama.chat(ChatRequest(messages=[SYSTEM, {"role": "user", "content": "Write a long essay about rivers."}],
                                        max_tokens=400, **GREEDY), cancel):
        if isinstance(event, Token):
            seen += 1
            if seen == 3:
                cancel.cancel()
        elif isinstance(event, Result):
            result = event
    assert result.finish_reason == "cancelled"
    assert result.data["completion_tokens"] <= 5  # stopped within a token or two
    text, again = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, **GREEDY))
    assert "Paris" in text and again.finish_reason == "stop"


def test_closing_the_stream_early_cancels(llama):
    stream = llama.chat(ChatRequest(messages=[SYSTEM, {"role": "user", "content": "Write a long essay."}], max_tokens=400, **GREEDY))
    next(stream)
    stream.close()
    text, _ = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, **GREEDY))
    assert "Paris" in text


def test_second_turn_reuses_the_prefix_and_continues_the_conversation(llama):
    first_text, first = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, conversation_id="c1", **GREEDY))
    follow = FRANCE + [{"role": "assistant", "content": first_text}, {"role": "user", "content": "And of Italy?"}]
    text, second = run(llama, ChatRequest(messages=follow, max_tokens=40, conversation_id="c1", **GREEDY))
    assert second.data["prompt_tokens"] > first.data["prompt_tokens"]
    backend = llama.get("default").backend
    # The new prompt's first tokens are the previous turn's: llama.cpp kept them evaluated.
    assert backend.llm.n_tokens >= second.data["prompt_tokens"]
    assert "Rome" in text


def test_overflow_policies(tmp_path):
    engine = TextEngine()
    engine.load(LoadRequest(model="default", backend="llama", context_length=256))
    long_turns = [SYSTEM]
    for i in range(6):
        long_turns += [{"role": "user", "content": f"Question {i}: " + "tell me about rivers " * 8},
                       {"role": "assistant", "content": "Rivers are long. " * 8}]
    long_turns.append({"role": "user", "content": "What is the capital of France?"})
    try:
        with pytest.raises(ContextOverflowError, match="context holds 256"):
            run(engine, ChatRequest(messages=long_turns, overflow="stop", max_tokens=32, **GREEDY))
        text, result = run(engine, ChatRequest(messages=long_turns, overflow="truncate", max_tokens=32, **GREEDY))
        assert result.data["dropped_messages"] > 0
        assert result.data["prompt_tokens"] + 32 <= 256
        assert "Paris" in text
    finally:
        engine.close()


def test_bad_requests_name_the_field(llama):
    with pytest.raises(RequestError, match="temperature"):
        ChatRequest.from_dict({"messages": FRANCE, "temperature": -1})
    with pytest.raises(RequestError, match="bogus"):
        ChatRequest.from_dict({"messages": FRANCE, "bogus": 1})
    with pytest.raises(RequestError, match="messages"):
        ChatRequest.from_dict({"messages": []})


@pytest.mark.parametrize("kind", ["empty", "random", "truncated", "no_model_folder"])
def test_bad_model_files_are_refused_and_the_loaded_model_stays(llama, tmp_path, kind):
    bad = make_bad_models(tmp_path)[kind]
    with pytest.raises(ModelFileError) as info:
        llama.load(LoadRequest(model=str(bad)))
    assert str(bad) in str(info.value)
    assert [m.id for m in llama.loaded()] == ["default"]
    text, _ = run(llama, ChatRequest(messages=FRANCE, max_tokens=40, **GREEDY))
    assert "Paris" in text


def test_transformers_backend_on_the_bundled_gguf(tmp_path, monkeypatch):
    """Converted once into the cache; the second load reads the cached safetensors folder."""
    from engines.text import hf_convert

    monkeypatch.setenv("HEARTH_HOME", str(tmp_path))
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model="default", backend="transformers", context_length=2048))
        assert loaded.backend_name == "transformers"
        from engines.models import bundled_default_path

        cached = hf_convert.converted_dir(bundled_default_path())
        assert (cached / "model.safetensors").exists() and (cached / "config.json").exists()
        text, result = run(engine, ChatRequest(messages=FRANCE, max_tokens=40, **GREEDY))
        assert "Paris" in text and result.data["text"] == text
        cut, stopped = run(engine, ChatRequest(messages=FRANCE, max_tokens=40, stop=["Paris"], **GREEDY))
        assert stopped.finish_reason == "stop" and "Paris" not in stopped.data["text"]
        _, short = run(engine, ChatRequest(messages=FRANCE, max_tokens=3, **GREEDY))
        assert short.finish_reason == "length" and short.data["completion_tokens"] == 3

        # Reload: must come from the cache, never re-reading the GGUF through transformers.
        engine.unload()
        calls = []
        real = hf_convert.ensure_converted

        def spy(path):
            out = real(path)
            calls.append(out)
            return out

        monkeypatch.setattr(hf_convert, "ensure_converted", spy)
        import transformers

        original = transformers.AutoModelForCausalLM.from_pretrained

        def no_gguf(*args, **kwargs):
            assert "gguf_file" not in kwargs, "the converted cache was not used"
            return original(*args, **kwargs)

        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_gguf)
        engine.load(LoadRequest(model="default", backend="transformers", context_length=2048))
        assert calls == [cached]
        cancel = CancelToken()
        got = 0
        for event in engine.chat(ChatRequest(messages=[SYSTEM, {"role": "user", "content": "Write a long essay."}], max_tokens=200, **GREEDY), cancel):
            if isinstance(event, Token):
                got += 1
                if got == 2:
                    cancel.cancel()
            elif isinstance(event, Result):
                assert event.finish_reason == "cancelled"
                assert event.data["completion_tokens"] < 10
    finally:
        engine.close()
