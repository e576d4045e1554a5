"""The engine host's Explore endpoints (see API.md): tokens, embeddings, attention, few-shot,
code -> live page. A thin transport: the requests are engines.core.requests.explore's, the answers
engines.text.explore_service's."""
from __future__ import annotations

import json
import uuid
from typing import Callable, Iterator

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from engines.core.events import Result
from engines.core.requests import check_value
from engines.core.requests.explore import (
    AnalogyRequest, AttentionRequest, FewShotEvalRequest, FewShotPromptRequest, NeighboursRequest, PageRequest,
    ProjectionRequest, TokensRequest,
)
from engines.host.wire import event_stream_response, read_json_body

router = APIRouter(prefix="/hearth/explore")




# -- quick calls: JSON in, JSON out, computed on a worker thread -------------------
_CALLS = {
    "tokens": (TokensRequest, "tokens"),
    "neighbours": (NeighboursRequest, "neighbours"),
    "analogy": (AnalogyRequest, "analogy"),
    "projection": (ProjectionRequest, "projection"),
    "attention": (AttentionRequest, "attention"),
    "fewshot/prompt": (FewShotPromptRequest, "fewshot_prompt"),
}


def _add_call(path: str, request_cls, method: str) -> None:
    async def endpoint(request: Request):
        req = request_cls.from_dict(await read_json_body(request))
        return await run_in_threadpool(getattr(request.app.state.hearth.explore, method), req)

    endpoint.__name__ = f"explore_{method}"
    router.add_api_route(f"/{path}", endpoint, methods=["POST"])


for _path, (_cls, _method) in _CALLS.items():
    _add_call(_path, _cls, _method)


@router.get("/fewshot/tasks")
async def fewshot_tasks(request: Request):
    return await run_in_threadpool(request.app.state.hearth.explore.fewshot_tasks)


@router.get("/presets")
async def presets(request: Request):
    from engines.core.resources import assets_dir

    def read() -> dict:
        return json.loads((assets_dir() / "explore" / "relations.json").read_text(encoding="utf-8"))

    return await run_in_threadpool(read)


@router.post("/unload")
async def unload(request: Request):
    data = await read_json_body(request)
    check_value("model", data.get("model"), str | None)
    return {"unloaded": await run_in_threadpool(request.app.state.hearth.explore.sources.drop, data.get("model"))}


# -- jobs that generate: SSE streams of events, cancellable ------------------------
@router.post("/fewshot/evaluate")
async def fewshot_evaluate(request: Request):
    state = request.app.state.hearth
    req = FewShotEvalRequest.from_dict(await read_json_body(request))
    req.request_id = req.request_id or uuid.uuid4().hex
    model = await _ensure_loaded(request, req.model)
    return await _stream(request, req.request_id, lambda token: state.explore.fewshot_evaluate(req, model, token),
                         model, "explore.fewshot")


@router.post("/page")
async def page(request: Request):
    state = request.app.state.hearth
    req = PageRequest.from_dict(await read_json_body(request))
    req.request_id = req.request_id or uuid.uuid4().hex
    model = await _ensure_loaded(request, req.model)
    return await _stream(request, req.request_id, lambda token: state.explore.page(req, model, token), model, "explore.page")


async def _ensure_loaded(request: Request, model: str) -> str:
    from engines.host.state import ensure_text_model

    state = request.app.state.hearth
    return await ensure_text_model(state, state.explore.model_id(model))


async def _stream(request: Request, request_id: str, make_events: Callable[..., Iterator], model: str, source: str):
    from engines.host.state import record_usage

    state = request.app.state.hearth
    token = state.register(request_id)

    def on_event(event) -> None:
        if isinstance(event, Result):
            record_usage(state, model, source, event)

    return await event_stream_response(state, request_id, lambda: make_events(token), token, on_event)
