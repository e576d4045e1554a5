"""The OpenAI wire format: request bodies in (checked field by field), replies and stream chunks out.

Bodies become an ``engines.core.requests.text.ChatRequest``; fields OpenAI clients send that Hearth has no
use for (``user``, ``metadata``, ``parallel_tool_calls``, ``store`` ...) are accepted and ignored, so
tools that always send them work.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from engines.core.content import check_content, image_parts, text_of
from engines.core.errors import RequestError
from engines.core.events import Result
from engines.core.requests import check_value
from engines.core.requests.text import ChatRequest

# OpenAI name -> ChatRequest field, for fields that mean the same.
_SAME = ("model", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "stop", "presence_penalty",
         "frequency_penalty", "response_format", "tools", "tool_choice")

# Fields that change the reply and that Hearth does not implement: refused rather than silently ignored.
_REFUSED = ("logit_bias", "functions", "function_call", "audio", "modalities", "prediction", "suffix", "echo")


@dataclass
class Reply:
    """How to answer, beside the request itself."""

    kind: str  # chat | text
    stream: bool = False
    include_usage: bool = False
    model_name: str = "default"


def chat_from_openai(data: dict, kind: str) -> tuple[ChatRequest, Reply]:
    """``/v1/chat/completions`` (kind ``chat``) or ``/v1/completions`` (kind ``text``) body -> request."""
    fields: dict[str, Any] = {k: data[k] for k in _SAME if data.get(k) is not None}
    for name in _REFUSED:
        if data.get(name):
            raise RequestError(f"Field '{name}' is not supported by Hearth.", hint="Leave it out.")
    check_value("n", data.get("n"), int | None)
    if (data.get("n") or 1) != 1:
        raise RequestError(f"Field 'n' is {data['n']!r}.", hint="Hearth generates one choice per request: use 1.")
    check_value("stream", data.get("stream"), bool | None)
    check_value("stream_options", data.get("stream_options"), dict | None)
    include_usage = (data.get("stream_options") or {}).get("include_usage")
    check_value("stream_options.include_usage", include_usage, bool | None)
    max_tokens = data.get("max_completion_tokens")
    name = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, name = data.get("max_tokens"), "max_tokens"
    check_value(name, max_tokens, int | None)
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    if kind == "chat":
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(f"Field 'messages' is {_short(messages)}.", hint="Send a non-empty list of messages.")
        fields["messages"] = [_flatten_message(m, i) for i, m in enumerate(messages)]
        check_value("logprobs", data.get("logprobs"), bool | None)
        check_value("top_logprobs", data.get("top_logprobs"), int | None)
        if data.get("logprobs"):
            fields["logprobs"] = data.get("top_logprobs") or 0
            if not isinstance(fields["logprobs"], int) or not 0 <= fields["logprobs"] <= 20:
                raise RequestError(f"Field 'top_logprobs' is {data.get('top_logprobs')!r}.", hint="It must be from 0 to 20.")
        elif data.get("top_logprobs") is not None:
            raise RequestError("Field 'top_logprobs' needs 'logprobs': true.")
    else:
        prompt = data.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise RequestError(f"Field 'prompt' is {_short(prompt)}.", hint="Send one prompt string.")
        fields["prompt"] = prompt
        check_value("logprobs", data.get("logprobs"), int | None)
        if data.get("logprobs") is not None:
            fields["logprobs"] = data["logprobs"]
    fields.setdefault("model", "default")
    fields["request_id"] = uuid.uuid4().hex
    chat = ChatRequest.from_dict(fields)
    return chat, Reply(kind, bool(data.get("stream")), bool(include_usage), data.get("model") or chat.model)


def _flatten_message(message: Any, index: int) -> dict:
    """OpenAI content may be a list of parts: text and images (data: URLs only over HTTP) pass to the engine as
    they are; assistant and tool messages keep their text."""
    if not isinstance(message, dict):
        raise RequestError(f"Field 'messages[{index}]' must be an object with 'role' and 'content'.")
    out = dict(message)
    content = message.get("content")
    if isinstance(content, list):
        check_content(f"messages[{index}].content", content, local=False)
        if message.get("role") not in ("user", "developer", "system") or not image_parts(content):
            out["content"] = text_of(content)
    if out.get("role") == "developer":
        out["role"] = "system"
    if out.get("content") is None and not out.get("tool_calls"):
        out["content"] = ""
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- replies -------------------------------------------------------------------
def usage(result: Result) -> dict:
    p, c = result.data.get("prompt_tokens", 0), result.data.get("completion_tokens", 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def finish_reason(result: Result) -> str:
    if result.data.get("tool_calls"):
        return "tool_calls"
    return "stop" if result.finish_reason == "cancelled" else result.finish_reason


def chunk(kind: str, reply_id: str, created: int, model: str, choices: list) -> dict:
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
    return {"id": reply_id, "object": obj, "created": created, "model": model, "choices": choices}


def wire_tool_calls(calls: list[dict], streaming: bool = False) -> list[dict]:
    out = []
    for i, call in enumerate(calls):
        item = {"id": call["id"], "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}
        if streaming:
            item["index"] = i
        out.append(item)
    return out


def chat_logprobs(entries: list[dict] | None) -> dict | None:
    return None if entries is None else {"content": entries}


def text_logprobs(entries: list[dict] | None) -> dict | None:
    """The legacy completions shape: parallel lists."""
    if entries is None:
        return None
    return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
            "text_offset": []}


def final(kind: str, reply_id: str, created: int, model: str, result: Result) -> dict:
    text = result.data.get("text", "")
    entries = result.data.get("logprobs")
    if kind == "chat":
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if result.data.get("tool_calls"):
            message = {"role": "assistant", "content": None, "tool_calls": wire_tool_calls(result.data["tool_calls"])}
        choice = {"index": 0, "message": message, "logprobs": chat_logprobs(entries), "finish_reason": finish_reason(result)}
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": text_logprobs(entries), "finish_reason": finish_reason(result)}
        obj = "text_completion"
    hearth = {k: v for k, v in result.data.items() if k not in ("text", "logprobs", "tool_calls")}
    return {"id": reply_id, "object": obj, "created": created, "model": model, "choices": [choice],
            "usage": usage(result), "hearth": hearth}
