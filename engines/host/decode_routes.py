"""The engine host's decode endpoint (see API.md): a decoding run as an SSE event stream. It shares the image
engine (and so the loaded image model) with the image endpoints."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from engines.host.wire import event_stream_response, read_json_body

router = APIRouter(prefix="/hearth/decode")


@router.post("/run")
async def run(request: Request):
    from engines.core.requests.decode import DecodeRequest

    state = request.app.state.hearth
    job = DecodeRequest.from_dict(await read_json_body(request))  # validated
    job.request_id = job.request_id or uuid.uuid4().hex
    token = state.register(job.request_id)
    engine = state.decode
    return await event_stream_response(state, job.request_id, lambda: engine.run(job, token), token)
