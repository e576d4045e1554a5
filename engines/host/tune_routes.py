"""The engine host's Tune endpoints (see API.md): base-vs-tuned comparison as an SSE event stream,
freeing the comparison's models, and merging an adapter into a standalone model folder.

A thin transport over engines.tune.compare and engines.tune.adapters (the request is
engines.core.requests.tune's CompareRequest); the models load in this process so the desktop never imports torch.
"""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from engines.core.errors import RequestError
from engines.core.requests import check_value
from engines.core.requests.tune import CompareRequest
from engines.host.wire import event_stream_response, read_json_body

router = APIRouter(prefix="/hearth/tune")


@router.post("/compare")
async def compare(request: Request):
    state = request.app.state.hearth
    job = CompareRequest.from_dict(await read_json_body(request))
    job.request_id = job.request_id or uuid.uuid4().hex
    comparer = state.comparer
    token = state.register(job.request_id)
    # checks run before the first event: a bad adapter folder is a plain HTTP error
    return await event_stream_response(state, job.request_id, lambda: comparer.compare(job, token), token)


@router.post("/compare/release")
async def compare_release(request: Request):
    return {"released": await run_in_threadpool(request.app.state.hearth.release_comparer)}


@router.post("/merge")
async def merge(request: Request):
    from engines.store.runs import check_adapter
    from engines.tune.adapters import merge_adapter

    data = await read_json_body(request)
    adapter, target = data.get("adapter"), data.get("target")
    check_value("adapter", adapter, str)
    check_value("target", target, str)
    if not adapter or not target:
        raise RequestError("A merge needs 'adapter' (a run's folder) and 'target' (a new folder).")
    check_adapter(adapter)
    folder = await run_in_threadpool(merge_adapter, adapter, target)
    return {"folder": str(folder)}
