"""Bridge a blocking engine generator to asyncio: a thread iterates it and hands events over.

A thread per stream keeps the event loop free while a token is being computed, and lets the
loop cancel the job (through its token) the moment the client goes away.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, AsyncIterator, Callable, Iterator

from engines.core.cancel import CancelToken

_END = object()


class StreamFailed(Exception):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


async def pump(make_events: Callable[[], Iterator[Any]], cancel: CancelToken, label: str = "job") -> AsyncIterator[Any]:
    """The events of ``make_events()`` as they come. A job that ends cancelled leaves one line on stderr
    (``hearth: <label> cancelled: <reason>``), the host's log of why a reply stopped early."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def run() -> None:
        try:
            events = make_events()
            try:
                # No break on cancel: the engine sees the token itself and still yields its final
                # Result (finish_reason "cancelled"), which the client must receive.
                for event in events:
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
            if cancel.cancelled:
                print(f"hearth: {label} cancelled: {cancel.reason}", file=sys.stderr, flush=True)
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, StreamFailed(exc))
        finally:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except RuntimeError:
                pass  # the loop is gone (server shutting down)

    thread = threading.Thread(target=run, name="hearth-stream", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            yield item
    finally:
        # Normal end, client disconnect, or server shutdown: make sure the job stops.
        if thread.is_alive():
            cancel.cancel("client disconnected")
