"""The engine host's image endpoints (see API.md): generate as an SSE event stream, load/unload,
models and LoRAs, gallery, PNG metadata. A thin transport over engines.image."""
from __future__ import annotations

import json
import uuid
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from engines.core.errors import HearthError, RequestError
from engines.core.events import event_to_wire
from engines.host.pump import StreamFailed, pump
from engines.image.request import ImageRequest, MemoryOptions

router = APIRouter(prefix="/hearth/image")


def _sse(data) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


async def _body(request: Request) -> dict:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    return data


def _wire_error(exc: BaseException) -> dict:
    if isinstance(exc, HearthError):
        return exc.to_wire()
    return {"kind": "internal", "message": f"The engine failed: {type(exc).__name__}: {exc}", "path": None}


@router.post("/generate")
async def generate(request: Request):
    from engines.host.server import error_response

    state = request.app.state.hearth
    job = ImageRequest.from_dict(await _body(request))
    job.request_id = job.request_id or uuid.uuid4().hex
    token = state.register(job.request_id)
    events = pump(lambda: state.image.generate(job, token), token)
    try:
        first = await events.__anext__()  # loading happens here: a bad model is a plain HTTP error
    except StopAsyncIteration:
        first = None
    if isinstance(first, StreamFailed) and isinstance(first.exc, HearthError):
        state.active.pop(job.request_id, None)
        await events.aclose()
        return error_response(first.exc)

    async def frames() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _sse({"type": "Error", "error": _wire_error(first.exc)} if isinstance(first, StreamFailed)
                           else event_to_wire(first))
            async for event in events:
                yield _sse({"type": "Error", "error": _wire_error(event.exc)} if isinstance(event, StreamFailed)
                           else event_to_wire(event))
            yield b"data: [DONE]\n\n"
        finally:
            await events.aclose()
            state.active.pop(job.request_id, None)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"X-Hearth-Request-Id": job.request_id, "Cache-Control": "no-cache"})


@router.post("/load")
async def load(request: Request):
    data = await _body(request)
    memory = MemoryOptions(**(data.get("memory") or {}))
    loaded = await run_in_threadpool(request.app.state.hearth.image.load, str(data.get("model") or "default"), memory,
                                     bool(data.get("allow_pickle")))
    return {"model": loaded.id, "info": loaded.to_dict()}


@router.post("/unload")
async def unload(request: Request):
    data = await _body(request)
    return {"unloaded": await run_in_threadpool(request.app.state.hearth.image.unload, data.get("model"))}


@router.get("/models")
async def models(request: Request):
    from engines.models import configured_folders
    from engines.models.image_models import scan_image_models

    found, loras, errors = await run_in_threadpool(lambda: scan_image_models(configured_folders()))
    return {"models": [m.to_dict() for m in found], "loras": [l.to_dict() for l in loras],
            "errors": [e.to_wire() for e in errors], "loaded": [m.to_dict() for m in request.app.state.hearth.image.loaded()]}


@router.get("/gallery")
async def gallery(search: str = "", model: str = "", limit: int = 200):
    from engines.core.gallery import Gallery
    from engines.core.storage import Database

    def read():
        db = Database()
        try:
            return [g.to_dict() for g in Gallery(db).list(search, model, limit)]
        finally:
            db.close()

    return {"images": await run_in_threadpool(read)}


@router.post("/gallery/delete")
async def gallery_delete(request: Request):
    from engines.core.gallery import Gallery
    from engines.core.storage import Database

    data = await _body(request)

    def delete():
        db = Database()
        try:
            Gallery(db).delete(int(data.get("id")), delete_file=bool(data.get("delete_file", True)))
        finally:
            db.close()

    await run_in_threadpool(delete)
    return {"deleted": int(data.get("id"))}


@router.post("/metadata")
async def metadata(request: Request):
    from engines.image.metadata import parse_parameters, read_png_metadata

    data = await _body(request)
    if isinstance(data.get("parameters"), str):
        return {"parameters": data["parameters"], "parsed": parse_parameters(data["parameters"]), "hearth": None}
    return await run_in_threadpool(read_png_metadata, str(data.get("path") or ""))
