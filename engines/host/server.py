"""The engine host's FastAPI app and ``serve()`` (``python main.py serve``).

A thin transport over the engines' generators: the OpenAI-compatible text API for any client,
and Hearth's own endpoints (load/unload, cancel, memory, health, typed event streams) for the
desktop app. Each area's endpoints live in their own route module (model_routes, text_routes,
image_routes, decode_routes, explore_routes, tune_routes); this module puts them together behind
the guard. See API.md beside this file.
"""
from __future__ import annotations

import json
import os
import threading
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from engines.core.errors import HearthError, RequestError
from engines.core.launch import HOST_READY_PREFIX
from engines.core.requests.text import LoadRequest
from engines.host import decode_routes, explore_routes, image_routes, model_routes, text_routes, tune_routes
from engines.host.guard import install, is_loopback
from engines.host.state import HostState
from engines.host.wire import InternalErrorsAsJSON, error_response


def create_app(api_key: str | None = None, state: HostState | None = None, bound_host: str = "127.0.0.1",
               allowed_origins: tuple[str, ...] = ()) -> FastAPI:
    app = FastAPI(title="Hearth engine host", version="1")
    app.state.hearth = state or HostState()
    for area in (model_routes, text_routes, image_routes, decode_routes, explore_routes, tune_routes):
        app.include_router(area.router)

    app.add_middleware(InternalErrorsAsJSON)
    install(app, api_key=api_key, bound_host=bound_host, allowed_origins=allowed_origins)

    @app.exception_handler(HearthError)
    async def hearth_error(request: Request, exc: HearthError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        name = str(first.get("loc", ("", "?"))[-1])
        return error_response(RequestError(f"Field '{name}' is {first.get('input')!r}: {first.get('msg', 'invalid')}."))

    return app


def serve(port: int = 8600, host: str = "127.0.0.1", api_key: str | None = None,
          parent_pid: int | None = None, preload: str | None = None, allowed_origins: tuple[str, ...] = ()) -> int:
    import uvicorn

    api_key = api_key or os.environ.get("HEARTH_API_KEY") or None
    if not is_loopback(host) and not api_key:
        raise RequestError(f"Refusing to listen on {host} without an API key: anyone on the network could use "
                           f"your models and files.", hint="Pass --api-key KEY (or set HEARTH_API_KEY), or bind to 127.0.0.1.")
    state = HostState()
    if preload:
        state.text.load(LoadRequest(model=preload))
    app = create_app(api_key, state, bound_host=host, allowed_origins=tuple(allowed_origins))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(f"{HOST_READY_PREFIX} {json.dumps({'port': bound, 'pid': os.getpid()})}", flush=True)

    def watch_parent() -> None:
        import psutil

        direct_child = os.getppid() == parent_pid
        while not server.should_exit:
            gone = os.getppid() != parent_pid if direct_child else not psutil.pid_exists(parent_pid)
            if gone:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=announce, name="hearth-announce", daemon=True).start()
    if parent_pid:
        threading.Thread(target=watch_parent, name="hearth-parent-watch", daemon=True).start()
    try:
        server.run()
    finally:
        state.close()
    return 0
