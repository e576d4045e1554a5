"""The engine host's model and job endpoints (see API.md): health, queue, memory, the model list, load and unload,
and cancel."""
from __future__ import annotations

import os
import sys

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from engines.core.requests import check_value
from engines.core.requests.text import LoadRequest
from engines.host.state import host
from engines.host.wire import read_json_body

router = APIRouter()


@router.get("/hearth/health")
async def health(request: Request):
    state = host(request)
    return {"status": "ok", "pid": os.getpid(), "loaded": [m.id for m in state.text.loaded()], "active": len(state.active)}

@router.get("/hearth/queue")
async def queue(request: Request):
    state = host(request)
    return {"models": state.text.queue() + state.image.queue()}

@router.get("/hearth/memory")
async def memory(request: Request):
    from engines.core.devices import system_memory

    info = await run_in_threadpool(system_memory, "torch" in sys.modules)
    return {**info.to_dict(), "loaded": [m.to_dict() for m in host(request).text.loaded()]}

@router.get("/hearth/models")
async def models(request: Request, refresh: int = 0):
    entries, errors = await run_in_threadpool(host(request).list_models, bool(refresh))
    return {"models": entries, "errors": errors, "loaded": [m.to_dict() for m in host(request).text.loaded()]}

@router.post("/hearth/models/load")
async def load(request: Request):
    req = LoadRequest.from_dict(await read_json_body(request))
    loaded = await run_in_threadpool(host(request).text.load, req)
    return {"model": loaded.id, "backend": loaded.backend_name, "info": loaded.to_dict()}

@router.post("/hearth/models/unload")
async def unload(request: Request):
    data = await read_json_body(request)
    check_value("model", data.get("model"), str | None)
    state = host(request)
    await run_in_threadpool(state.explore.sources.drop, data.get("model"))
    embedders = await run_in_threadpool(state.embeddings.unload, data.get("model"))
    unloaded = await run_in_threadpool(state.text.unload, data.get("model"))
    return {"unloaded": unloaded + [m for m in embedders if m not in unloaded]}

@router.post("/hearth/cancel")
async def cancel(request: Request):
    data = await read_json_body(request)
    check_value("request_id", data.get("request_id"), str | None)
    token = host(request).active.get(data.get("request_id") or "")
    if token is None:
        return {"cancelled": False}
    token.cancel("cancelled by the user")
    return {"cancelled": True}
