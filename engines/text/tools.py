"""OpenAI tool calls for any chat template: the tools are described in the system prompt, a forced call is
constrained by a JSON schema (the backend turns it into a grammar), and a reply that is a call is parsed back.

The wire shape between model and Hearth is one JSON object, ``{"name": ..., "arguments": {...}}``. Earlier
calls and tool results in the conversation are written as text, so every template can render them.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from engines.core.content import text_of
from engines.core.requests.text import ChatRequest


def tools_active(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def _functions(request: ChatRequest) -> list[dict]:
    return [t["function"] for t in request.tools]


def _call_schema(function: dict) -> dict:
    parameters = function.get("parameters") or {"type": "object"}
    return {"type": "object", "properties": {"name": {"type": "string", "enum": [function["name"]]}, "arguments": parameters},
            "required": ["name", "arguments"]}


def forced_call_schema(request: ChatRequest) -> dict | None:
    """The JSON schema every reply must match when a call is forced (a named function, or 'required')."""
    if not tools_active(request):
        return None
    choice = request.tool_choice
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        return _call_schema(next(f for f in _functions(request) if f["name"] == name))
    if choice == "required":
        schemas = [_call_schema(f) for f in _functions(request)]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return None


def _tools_prompt(request: ChatRequest) -> str:
    listed = [{"name": f["name"], "description": f.get("description", ""), "parameters": f.get("parameters") or {}}
              for f in _functions(request)]
    if isinstance(request.tool_choice, dict):
        rule = f"Call the function {request.tool_choice['function']['name']} now."
    elif request.tool_choice == "required":
        rule = "Call one of the functions now."
    else:
        rule = "Call a function when it helps answer; otherwise answer in plain text."
    return ("You can call these functions:\n" + json.dumps(listed, ensure_ascii=False) +
            '\nTo call a function, reply with only a JSON object: {"name": "<function name>", "arguments": {<arguments>}}. '
            + rule)


def template_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The conversation as plain role/content messages every chat template renders, with the tools described."""
    names = {}
    out: list[dict[str, str]] = []
    for message in request.messages:
        calls = message.get("tool_calls")
        if calls:
            lines = [text_of(message.get("content"))]
            for call in calls:
                function = call["function"]
                names[call.get("id")] = function["name"]
                lines.append(json.dumps({"name": function["name"], "arguments": _arguments(function.get("arguments"))},
                                        ensure_ascii=False))
            out.append({"role": "assistant", "content": "\n".join(l for l in lines if l)})
        elif message["role"] == "tool":
            name = names.get(message.get("tool_call_id")) or message.get("name") or "the function"
            out.append({"role": "user", "content": f"Result of {name}: {text_of(message['content'])}"})
        else:
            out.append({"role": message["role"], "content": text_of(message["content"])})
    if tools_active(request):
        prompt = _tools_prompt(request)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{prompt}"}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw if raw is not None else {}


def parse_tool_calls(text: str, request: ChatRequest) -> list[dict] | None:
    """The calls in a reply ``[{"id", "name", "arguments"}]``, or None when the reply is plain text."""
    if not tools_active(request):
        return None
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    names = {f["name"] for f in _functions(request)}
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names or not isinstance(item.get("arguments", {}), dict):
            return None
        calls.append({"id": f"call_{uuid.uuid4().hex[:24]}", "name": item["name"], "arguments": item.get("arguments", {})})
    return calls or None
