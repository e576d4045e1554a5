"""One owner thread per loaded model, with a visible first-come, first-served queue.

llama.cpp contexts (and, in practice, torch models mid-generate) must only be used from one
thread. The owner runs every job for its model on its own thread, one at a time, in the order
they arrived; callers on any thread iterate the job's events through a queue. Closing the
iterator early cancels the job; cancelling a job that is still waiting takes it out of the
queue at once (its iterator ends without events), so a client that went away holds no place.
"""
from __future__ import annotations

import collections
import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from engines.core.cancel import CancelToken
from engines.core.events import Event

_DONE = object()
_numbers = itertools.count(1)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass
class _Job:
    make_events: Callable[[], Iterator[Any]]
    out: queue.Queue
    cancel: CancelToken
    label: dict
    number: int = field(default_factory=lambda: next(_numbers))
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None

    def describe(self, now: float) -> dict:
        out = {"job": self.number, **self.label, "waited_s": round((self.started_at or now) - self.queued_at, 3)}
        if self.started_at is not None:
            out["running_s"] = round(now - self.started_at, 3)
        return out


class ModelOwner:
    def __init__(self, name: str) -> None:
        self._waiting: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"hearth-model-{name}", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], Any], label: dict | None = None) -> Any:
        """Run ``fn`` on the owner thread and return its result (or raise its exception)."""
        done: queue.Queue = queue.Queue(maxsize=1)

        def job() -> Iterator[Event]:
            try:
                done.put((True, fn()))
            except BaseException as exc:  # re-raised in the caller's thread
                done.put((False, exc))
            return iter(())

        self._submit(_Job(job, queue.Queue(), CancelToken(), label or {"kind": "call"}))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def stream(self, make_events: Callable[[], Iterator[Event]], cancel: CancelToken,
               label: dict | None = None) -> Iterator[Event]:
        """Run the generator ``make_events()`` on the owner thread; yield its events here."""
        job = _Job(make_events, queue.Queue(), cancel, label or {"kind": "job"})
        self._submit(job)
        cancel.on_cancel(lambda: self._withdraw(job))
        finished = False
        try:
            while True:
                item = job.out.get()
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

    def snapshot(self) -> dict:
        """What runs and what waits, in order: ``{"running": JOB | None, "waiting": [JOB, ...]}``."""
        now = time.monotonic()
        with self._cond:
            running = self._running.describe(now) if self._running is not None else None
            return {"running": running, "waiting": [j.describe(now) for j in self._waiting]}

    def close(self) -> None:
        """Finish queued jobs, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _submit(self, job: _Job) -> None:
        with self._cond:
            self._waiting.append(job)
            self._cond.notify()

    def _withdraw(self, job: _Job) -> None:
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                return  # already running (it sees the token itself) or done
        job.out.put(_DONE)

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._waiting and not self._closing:
                self._cond.wait()
            if not self._waiting:
                return None
            job = self._waiting.popleft()
            job.started_at = time.monotonic()
            self._running = job
            return job

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                if job.cancel.cancelled:
                    job.out.put(_DONE)
                    continue
                for event in job.make_events():
                    job.out.put(event)
                job.out.put(_DONE)
            except BaseException as exc:
                job.out.put(_Failure(exc))
            finally:
                with self._cond:
                    self._running = None
