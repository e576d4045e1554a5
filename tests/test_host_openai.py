"""What tools expect from an OpenAI-compatible server, through the official ``openai`` client against the real host
on the bundled model (llama.cpp): structured output, tool calls, embeddings, logprobs, penalties, usage chunks."""
from __future__ import annotations

import json
import math
import re

import pytest

from tests.helpers import FRANCE, SYSTEM, HostProcess

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "hobbies": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "string", "enum": ["low", "high"]},
    },
    "required": ["name", "age", "hobbies", "level"],
    "additionalProperties": False,
}
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK_WEATHER = [SYSTEM, {"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    proc = HostProcess(tmp_path_factory.mktemp("home"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(host):
    from openai import OpenAI

    return OpenAI(base_url=f"{host.url}/v1", api_key=host.api_key, timeout=300)


def fits_person(value) -> bool:
    return (isinstance(value, dict) and set(value) == set(PERSON["required"]) and isinstance(value["name"], str)
            and isinstance(value["age"], int) and value["age"] >= 0 and isinstance(value["hobbies"], list)
            and all(isinstance(h, str) for h in value["hobbies"]) and value["level"] in ("low", "high"))


def test_json_schema_replies_always_parse_and_fit_the_schema(client):
    for seed in range(4):
        reply = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Describe a person."}], temperature=1.0, seed=seed,
            max_tokens=150, response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}})
        assert reply.choices[0].finish_reason == "stop"
        assert fits_person(json.loads(reply.choices[0].message.content)), reply.choices[0].message.content


def test_json_object_replies_parse(client):
    for seed in range(3):
        reply = client.chat.completions.create(model="default", messages=FRANCE, temperature=1.0, seed=seed, max_tokens=100,
                                               response_format={"type": "json_object"})
        assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_a_forced_tool_call_and_the_tool_result_sent_back(client):
    reply = client.chat.completions.create(model="default", messages=ASK_WEATHER, tools=WEATHER, temperature=0, max_tokens=60,
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments)["city"], str)

    # The tool's answer goes back as a 'tool' message; with tool_choice none the model answers in text.
    result = {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21, "sky": "sunny"})}
    history = ASK_WEATHER + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]}, result]
    follow = client.chat.completions.create(model="default", messages=history, tools=WEATHER, tool_choice="none",
                                            temperature=0, max_tokens=40)
    assert follow.choices[0].finish_reason in ("stop", "length")
    assert isinstance(follow.choices[0].message.content, str) and follow.choices[0].message.tool_calls is None
    without_result = client.chat.completions.create(model="default", messages=history[:-1], tools=WEATHER,
                                                    tool_choice="none", temperature=0, max_tokens=1)
    assert follow.usage.prompt_tokens > without_result.usage.prompt_tokens + 10  # the result reached the prompt


def test_tool_calls_stream_as_openai_deltas(client):
    stream = client.chat.completions.create(model="default", messages=ASK_WEATHER, tools=WEATHER, tool_choice="required",
                                            temperature=0, max_tokens=60, stream=True, stream_options={"include_usage": True})
    calls, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            calls += chunk.choices[0].delta.tool_calls or []
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert finish == "tool_calls" and len(calls) == 1
    assert calls[0].function.name == "get_weather" and "city" in json.loads(calls[0].function.arguments)
    assert usage.completion_tokens > 0


def test_embeddings_one_and_many_inputs(client):
    one = client.embeddings.create(model="default", input="The cat sat on the mat.")
    assert len(one.data) == 1 and one.usage.prompt_tokens > 0
    vector = one.data[0].embedding
    assert len(vector) > 100 and math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-3)
    many = client.embeddings.create(model="default", input=["The cat sat on the mat.", "Stock prices fell.", "Hello"],
                                    encoding_format="float")
    assert [d.index for d in many.data] == [0, 1, 2] and {len(d.embedding) for d in many.data} == {len(vector)}
    assert many.usage.prompt_tokens > one.usage.prompt_tokens
    # Deterministic: the same text gives the same vector, alone or in a batch.
    assert max(abs(a - b) for a, b in zip(many.data[0].embedding, vector)) < 1e-4
    assert max(abs(a - b) for a, b in zip(many.data[1].embedding, vector)) > 1e-2


def test_logprobs_and_include_usage(client):
    reply = client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=6, logprobs=True,
                                           top_logprobs=3)
    entries = reply.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == reply.choices[0].message.content
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        assert e.top_logprobs[0].token == e.token  # greedy picks the most likely token
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob

    chunks = list(client.chat.completions.create(model="default", messages=FRANCE, temperature=0, max_tokens=6, stream=True,
                                                 logprobs=True, top_logprobs=1, stream_options={"include_usage": True}))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in entries]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


def test_presence_and_frequency_penalties_curb_repetition(client):
    looping = [{"role": "user", "content": "Say 'one' over and over: one one one one one one"}]

    def ones(**penalties) -> int:
        reply = client.chat.completions.create(model="default", messages=looping, temperature=0, max_tokens=40,
                                               extra_body={"repeat_penalty": 1.0}, **penalties)
        return len(re.findall(r"\bone\b", reply.choices[0].message.content.lower()))

    plain = ones()
    assert plain >= 10  # without penalties the greedy reply loops
    assert ones(presence_penalty=2.0, frequency_penalty=2.0) < plain / 2
