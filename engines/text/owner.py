"""One owner thread per loaded model.

llama.cpp contexts (and, in practice, torch models mid-generate) must only be used from one
thread. The owner runs every job for its model on its own thread; callers on any thread
iterate the job's events through a queue. Closing the iterator early cancels the job.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator

from engines.core.cancel import CancelToken
from engines.core.events import Event

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ModelOwner:
    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"hearth-model-{name}", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the owner thread and return its result (or raise its exception)."""
        done: queue.Queue = queue.Queue(maxsize=1)

        def job() -> Iterator[Event]:
            try:
                done.put((True, fn()))
            except BaseException as exc:  # re-raised in the caller's thread
                done.put((False, exc))
            return iter(())

        self._jobs.put((job, queue.Queue(), CancelToken()))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def stream(self, make_events: Callable[[], Iterator[Event]], cancel: CancelToken) -> Iterator[Event]:
        """Run the generator ``make_events()`` on the owner thread; yield its events here."""
        out: queue.Queue = queue.Queue()
        self._jobs.put((make_events, out, cancel))
        finished = False
        try:
            while True:
                item = out.get()
                if item is _DONE:
                    finished = True
                    return
                if isinstance(item, _Failure):
                    finished = True
                    raise item.exc
                yield item
        finally:
            if not finished:
                # The consumer left early (client gone, Stop pressed): end the job at its next token.
                cancel.cancel("consumer closed")

    def close(self) -> None:
        """Finish queued jobs, then stop the thread."""
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            make_events, out, cancel = item
            try:
                if cancel.cancelled:
                    out.put(_DONE)
                    continue
                for event in make_events():
                    out.put(event)
                out.put(_DONE)
            except BaseException as exc:
                out.put(_Failure(exc))
