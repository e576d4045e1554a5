"""What every engine-host route shares: JSON bodies in, SSE frames and error JSON out."""
from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from engines.core.errors import HearthError, NotLoadedError, OutOfMemoryError, RequestError

SSE_DONE = b"data: [DONE]\n\n"
_STATUS = {NotLoadedError: 404, OutOfMemoryError: 507}


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


async def read_json_body(request: Request) -> dict:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise RequestError("The request body is nested too deeply to read.") from exc
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    return data


def error_wire(exc: BaseException) -> dict:
    """A failure as wire JSON; a bug (not a HearthError) still reaches the user as a sentence."""
    if isinstance(exc, HearthError):
        return exc.to_wire()
    return {"kind": "internal", "message": f"The engine failed: {type(exc).__name__}: {exc}", "path": None}


def error_response(exc: HearthError) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    body = exc.to_wire()
    # OpenAI clients read error.message / error.type.
    body["type"] = exc.kind
    return JSONResponse({"error": body}, status_code=status)


async def event_stream_response(state, request_id: str, make_events, token, on_event=None):
    """Run an engine job and stream its events as SSE. Errors raised before the first event (a bad model, a bad
    data file) become a plain HTTP error; later ones an ``Error`` frame. ``on_event`` sees every event before it
    is sent (e.g. to record usage). The job's cancel token leaves ``state.active`` when the stream ends."""
    from fastapi.responses import StreamingResponse

    from engines.core.events import event_to_wire
    from engines.host.pump import StreamFailed, pump

    events = pump(make_events, token, f"job {request_id}")
    try:
        first = await events.__anext__()  # loading happens here
    except StopAsyncIteration:
        first = None
    if isinstance(first, StreamFailed) and isinstance(first.exc, HearthError):
        state.active.pop(request_id, None)
        await events.aclose()
        return error_response(first.exc)

    def frame(item) -> bytes:
        if isinstance(item, StreamFailed):
            return sse({"type": "Error", "error": error_wire(item.exc)})
        if on_event is not None:
            on_event(item)
        return sse(event_to_wire(item))

    async def frames():
        try:
            if first is not None:
                yield frame(first)
            async for event in events:
                yield frame(event)
            yield SSE_DONE
        finally:
            await events.aclose()
            state.active.pop(request_id, None)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"X-Hearth-Request-Id": request_id, "Cache-Control": "no-cache"})


class InternalErrorsAsJSON:
    """A bug (not a HearthError) before the response started becomes a 500 with the usual JSON error body, and the
    connection stays usable. (Starlette's own 500 path re-raises to the server, which then drops the keep-alive
    connection: the client's next request on it would fail with a reset.)"""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - every bug still gets an answer the client can read
            if started:
                raise
            import sys
            import traceback

            traceback.print_exc(file=sys.stderr)
            body = json.dumps({"error": {**error_wire(exc), "type": "internal"}}).encode("utf-8")
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
