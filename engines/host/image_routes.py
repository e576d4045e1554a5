"""The engine host's image endpoints (see API.md): generate as an SSE event stream, load/unload,
models and LoRAs, gallery, PNG metadata. A thin transport over engines.image."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from engines.core.errors import RequestError
from engines.core.requests import check_value
from engines.host.wire import event_stream_response, read_json_body
from engines.core.requests.image import ImageRequest, MemoryOptions

router = APIRouter(prefix="/hearth/image")




@router.post("/generate")
async def generate(request: Request):
    state = request.app.state.hearth
    job = ImageRequest.from_dict(await read_json_body(request))
    job.request_id = job.request_id or uuid.uuid4().hex
    token = state.register(job.request_id)
    return await event_stream_response(state, job.request_id, lambda: state.image.generate(job, token), token)


@router.post("/load")
async def load(request: Request):
    data = await read_json_body(request)
    for name, expected in (("model", str | None), ("memory", MemoryOptions | None), ("allow_pickle", bool | None)):
        check_value(name, data.get(name), expected)
    memory = MemoryOptions(**(data.get("memory") or {}))
    loaded = await run_in_threadpool(request.app.state.hearth.image.load, str(data.get("model") or "default"), memory,
                                     bool(data.get("allow_pickle")))
    return {"model": loaded.id, "info": loaded.to_dict()}


@router.post("/unload")
async def unload(request: Request):
    data = await read_json_body(request)
    check_value("model", data.get("model"), str | None)
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
    from engines.store.gallery import Gallery
    from engines.store.storage import Database

    def read():
        db = Database()
        try:
            return [g.to_dict() for g in Gallery(db).list(search, model, limit)]
        finally:
            db.close()

    return {"images": await run_in_threadpool(read)}


@router.post("/gallery/delete")
async def gallery_delete(request: Request):
    from engines.store.gallery import Gallery
    from engines.store.storage import Database

    data = await read_json_body(request)
    check_value("id", data.get("id"), int)
    if not 0 <= data["id"] < 2**63:
        raise RequestError(f"Field 'id' is {data['id']!r}.", hint="Use the id of a gallery image.")
    check_value("delete_file", data.get("delete_file"), bool | None)

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

    data = await read_json_body(request)
    check_value("path", data.get("path"), str | None)
    check_value("parameters", data.get("parameters"), str | None)
    if isinstance(data.get("parameters"), str):
        return {"parameters": data["parameters"], "parsed": parse_parameters(data["parameters"]), "hearth": None}
    return await run_in_threadpool(read_png_metadata, str(data.get("path") or ""))
