"""The engine host's text endpoints (see API.md): Hearth's typed event stream (``/hearth/chat``) and the
OpenAI-compatible API (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``), both
over the text engine's generators."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from engines.core.cancel import CancelToken
from engines.core.content import check_remote_messages
from engines.core.errors import HearthError
from engines.core.events import Log, Result, Token, event_to_wire
from engines.core.requests.text import ChatRequest, EmbeddingRequest
from engines.host import openai_api as oa
from engines.host.openai_api import Reply, chat_from_openai
from engines.host.pump import StreamFailed, pump
from engines.host.state import HostState, ensure_text_model, host, record_usage
from engines.host.wire import SSE_DONE, error_response, error_wire, read_json_body, sse

router = APIRouter()


@router.post("/hearth/chat")
async def hearth_chat(request: Request):
    state = host(request)
    body = await read_json_body(request)
    check_remote_messages(body.get("messages") if isinstance(body, dict) else None)  # data: URLs only over HTTP
    chat = ChatRequest.from_dict(body)
    chat.request_id = chat.request_id or uuid.uuid4().hex
    chat.model = await ensure_text_model(state, chat.model)

    async def frames(events: AsyncIterator) -> AsyncIterator[bytes]:
        async for event in events:
            if isinstance(event, StreamFailed):
                yield sse({"type": "Error", "error": error_wire(event.exc)})
            else:
                yield sse(event_to_wire(event))
        yield SSE_DONE

    return await start_stream(request, state, chat, frames, "hearth")

# -- OpenAI-compatible -----------------------------------------------
@router.get("/v1/models")
async def v1_models(request: Request):
    state = host(request)
    entries, _ = await run_in_threadpool(state.list_models, False)
    ids = {m.id for m in state.text.loaded()} | {e["id"] for e in entries}
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "hearth"} for i in sorted(ids)]}

@router.post("/v1/chat/completions")
async def v1_chat(request: Request):
    chat, reply = chat_from_openai(await read_json_body(request), "chat")
    return await openai_reply(request, chat, reply)

@router.post("/v1/completions")
async def v1_completions(request: Request):
    chat, reply = chat_from_openai(await read_json_body(request), "text")
    return await openai_reply(request, chat, reply)

@router.post("/v1/embeddings")
async def v1_embeddings(request: Request):
    req = EmbeddingRequest.from_dict(await read_json_body(request))
    return await run_in_threadpool(host(request).embeddings.embed, req)

async def openai_reply(request: Request, chat: ChatRequest, reply: Reply):
    state = host(request)
    chat.model = await ensure_text_model(state, chat.model)
    created = int(time.time())
    kind, model_name = reply.kind, reply.model_name
    reply_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{chat.request_id}"

    if not reply.stream:
        token = state.register(chat.request_id)
        events = pump(lambda: state.text.chat(chat, token, client=_client(request, "openai")), token,
                      f"chat {chat.request_id}")
        watcher = asyncio.create_task(cancel_on_disconnect(request, token))
        result = None
        try:
            async for event in events:
                if isinstance(event, StreamFailed):
                    raise event.exc
                if isinstance(event, Result):
                    result = event
        finally:
            watcher.cancel()
            await events.aclose()
            state.active.pop(chat.request_id, None)
        if result is None:  # left the queue because the client went away
            raise HearthError("The request was cancelled before it started.")
        record_usage(state, chat.model, "api", result)
        return oa.final(kind, reply_id, created, model_name, result)

    # With tools on, the reply may turn out to be a call: hold the text until the end decides.
    hold = bool(chat.tools) and chat.tool_choice != "none"

    def piece(text: str, logprobs: list | None) -> dict:
        if kind == "chat":
            choice = {"index": 0, "delta": {"content": text}, "logprobs": oa.chat_logprobs(logprobs), "finish_reason": None}
        else:
            choice = {"index": 0, "text": text, "logprobs": oa.text_logprobs(logprobs), "finish_reason": None}
        return oa.chunk(kind, reply_id, created, model_name, [choice])

    async def frames(events: AsyncIterator) -> AsyncIterator[bytes]:
        if kind == "chat":
            yield sse(oa.chunk(kind, reply_id, created, model_name,
                               [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]))
        async for event in events:
            if isinstance(event, StreamFailed):
                yield sse({"error": {**error_wire(event.exc), "type": getattr(event.exc, "kind", "error")}})
                break
            if isinstance(event, Token) and not hold:
                yield sse(piece(event.text, event.logprobs))
            elif isinstance(event, Result):
                calls = event.data.get("tool_calls")
                if hold and calls:
                    yield sse(oa.chunk(kind, reply_id, created, model_name, [
                        {"index": 0, "delta": {"tool_calls": oa.wire_tool_calls(calls, streaming=True)}, "logprobs": None,
                         "finish_reason": None}]))
                elif hold and event.data.get("text"):
                    yield sse(piece(event.data["text"], event.data.get("logprobs")))
                finish = oa.finish_reason(event)
                choice = ({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish} if kind == "chat"
                          else {"index": 0, "text": "", "logprobs": None, "finish_reason": finish})
                last = oa.chunk(kind, reply_id, created, model_name, [choice])
                last["hearth"] = {"finish_reason": event.finish_reason,
                                  **{k: v for k, v in event.data.items() if k not in ("text", "logprobs", "tool_calls")}}
                if reply.include_usage:
                    # OpenAI's shape: one more chunk with no choices and the usage.
                    yield sse(last)
                    last = {**oa.chunk(kind, reply_id, created, model_name, []), "usage": oa.usage(event)}
                else:
                    last["usage"] = oa.usage(event)
                yield sse(last)
        yield SSE_DONE

    return await start_stream(request, state, chat, frames, "openai")

async def start_stream(request: Request, state: HostState, chat: ChatRequest, frames, api: str):
    """Start the job; a failure before the first event becomes a plain HTTP error. While the job waits its
    turn no response has started, so a client that goes away meanwhile is watched for here."""
    # Hearth's own clients (the Chat room) learn at once why a reply waits: the stream opens with a Log event
    # naming who uses the model, and a later failure comes as an Error event instead of an HTTP error.
    busy = busy_message(state, chat.model) if api == "hearth" else None
    token = state.register(chat.request_id)
    events = pump(lambda: state.text.chat(chat, token, client=_client(request, api)), token, f"chat {chat.request_id}")
    if busy:
        first = Log(busy)
    else:
        watcher = asyncio.create_task(cancel_on_disconnect(request, token))
        try:
            first = await events.__anext__()
        except StopAsyncIteration:
            first = None
        finally:
            watcher.cancel()
    if isinstance(first, StreamFailed) and isinstance(first.exc, HearthError):
        state.active.pop(chat.request_id, None)
        await events.aclose()
        return error_response(first.exc)

    async def replay() -> AsyncIterator:
        try:
            if first is not None:
                yield first
            async for event in events:
                # Chat replies are counted from the chat history; everything else here.
                if isinstance(event, Result) and not chat.conversation_id:
                    record_usage(state, chat.model, "api", event)
                yield event
        finally:
            await events.aclose()
            state.active.pop(chat.request_id, None)

    return StreamingResponse(frames(replay()), media_type="text/event-stream",
                             headers={"X-Hearth-Request-Id": chat.request_id, "Cache-Control": "no-cache"})


def busy_message(state: HostState, model: str) -> str | None:
    """What a new request for ``model`` waits for, in words; None when it will start at once."""
    try:
        queue = state.text.get(model).owner.snapshot()
    except HearthError:
        return None
    jobs = ([queue["running"]] if queue["running"] else []) + queue["waiting"]
    if not jobs:
        return None
    client = str(jobs[0].get("client") or "")
    first = f"an outside client ({client})" if client.startswith("openai") else "another Hearth job"
    more = f" and {len(jobs) - 1} more request(s) ahead" if len(jobs) > 1 else ""
    return f"Waiting for the model: it is busy with {first}{more}."


def _client(request: Request, api: str) -> str:
    peer = request.client
    return f"{api} {peer.host}:{peer.port}" if peer else api


async def cancel_on_disconnect(request: Request, token: CancelToken) -> None:
    """Cancel ``token`` when the client closes the connection (the body has been read: what comes next is
    the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            token.cancel("client disconnected")
            return
