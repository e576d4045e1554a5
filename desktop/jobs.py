"""The one job runner: a worker lane per engine, a FIFO queue per lane, events as Qt signals.

A job is a callable that takes a ``HostClient`` (None for a job that needs no host, such as following a
training run's folder) and yields ``engines.core`` events. Every job carries a ``CancelToken``: cancelling
a job cancels its token (a job checks it between events) and, for a job running inside the host, also
asks the host to stop its ``request_id``; a view hands the same token to its job. Lanes are
single-thread executors, so jobs on one lane run in order (a model load, then the chat that
needs it) while lanes run side by side. Workers never touch widgets: everything they learn
crosses to the GUI thread through the runner's signals, each tagged with the job id. Every
job ends with exactly one of ``finished``, ``failed`` or ``cancelled``.
"""
from __future__ import annotations

import queue
import sys
import threading
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from PySide6.QtCore import QObject, Signal

from engines.core.cancel import CancelToken
from engines.core.errors import HearthError, HostError
from engines.core.events import Event

if TYPE_CHECKING:  # httpx is imported by the first worker that needs it, not at start-up
    from desktop.host_client import HostClient


def _import_client() -> None:
    import desktop.host_client  # noqa: F401


class _Lane:
    """One worker thread with a FIFO queue of futures.

    Written by hand instead of a one-thread ThreadPoolExecutor because starting a thread waits
    for it to be scheduled, which took 15-30 ms on a busy 2-core machine; here the thread is
    started by the runner's control thread, so the GUI thread never waits for it.
    """

    def __init__(self, name: str, starter: ThreadPoolExecutor) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=f"hearth-lane-{name}", daemon=True)
        self._started = starter.submit(self._thread.start)

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel what is queued, let the running job finish, join the thread."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        self._queue.put(None)
        self._started.result()
        self._thread.join()


@dataclass
class Job:
    lane: str
    run: Callable[["HostClient | None"], Iterable[Event]]
    label: str = ""
    request_id: str | None = None  # what /hearth/cancel needs to stop it inside the host
    token: CancelToken = field(default_factory=CancelToken)  # cancelled with the job; the job's generator checks it
    needs_host: bool = True
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class JobRunner(QObject):
    started = Signal(str, str)  # job id, label
    event = Signal(str, object)  # job id, Event
    finished = Signal(str)  # job id
    failed = Signal(str, object)  # job id, HearthError
    cancelled = Signal(str)  # job id

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._futures: dict[str, Future] = {}
        self._jobs: dict[str, Job] = {}
        self._cancel_requested: set[str] = set()
        self._endpoint: tuple[str, str] | None = None
        self._clients: dict[tuple[str, str], HostClient] = {}
        # Cancel requests must never wait behind a lane's running job.
        self._control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-control")
        self._closed = False

    # -- host ----------------------------------------------------------
    def set_endpoint(self, base_url: str | None, key: str | None = None) -> None:
        """Point new jobs at the host (``None`` while it is down or restarting)."""
        with self._lock:
            self._endpoint = (base_url, key or "") if base_url else None

    def _client(self) -> "HostClient":
        from desktop.host_client import HostClient

        with self._lock:
            endpoint = self._endpoint
            if endpoint is None:
                raise HostError("The engine host is not reachable: it is starting or restarting.", hint="Try again in a moment.")
            client = self._clients.get(endpoint)
        if client is None:
            # Built outside the lock: creating an httpx client takes a while, and the GUI
            # thread takes the same lock in submit().
            fresh = HostClient(*endpoint)
            with self._lock:
                client = self._clients.setdefault(endpoint, fresh)
            if client is not fresh:
                fresh.close()
        return client

    # -- jobs ----------------------------------------------------------
    def _lane(self, name: str) -> _Lane:
        with self._lock:
            lane = self._lanes.get(name)
            if lane is None:
                lane = self._lanes[name] = _Lane(name, self._control)
            return lane

    def prepare(self, lanes: Iterable[str]) -> None:
        """Start these lanes' threads and import the HTTP client now, while the host starts, so the
        first real job does not make the GUI thread wait for a thread start or an import."""
        for name in lanes:
            self._lane(name).submit(_import_client)

    def submit(self, job: Job) -> str:
        if self._closed:
            raise RuntimeError("the job runner is shut down")
        lane = self._lane(job.lane)
        with self._lock:
            self._jobs[job.id] = job
            self._futures[job.id] = lane.submit(self._run, job)
        return job.id

    def is_active(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._jobs

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> None:
        """Drop a queued job, or stop a running one: its token is cancelled and, if it runs in the host, the host
        is asked to stop it (answered by its final events)."""
        with self._lock:
            job, future = self._jobs.get(job_id), self._futures.get(job_id)
            if job is None or future is None:
                return
            if future.cancel():  # still queued: it never runs
                self._jobs.pop(job_id, None)
                self._futures.pop(job_id, None)
                dropped = True
            else:
                self._cancel_requested.add(job_id)
                dropped = False
        job.token.cancel()
        if dropped:
            self.cancelled.emit(job_id)
        elif job.request_id:
            self._control.submit(self._send_cancel, job.request_id)

    def cancel_all(self) -> None:
        for job in self.active_jobs():
            self.cancel(job.id)

    def _send_cancel(self, request_id: str) -> None:
        try:
            self._client().cancel(request_id)
        except HearthError:
            pass  # the host is gone, which stops the request too

    def _run(self, job: Job) -> None:
        self.started.emit(job.id, job.label)
        outcome: tuple[str, object] = ("finished", None)
        try:
            for event in job.run(self._client() if job.needs_host else None):
                self.event.emit(job.id, event)
        except HearthError as exc:
            outcome = ("failed", exc)
        except Exception as exc:  # a bug, not a user error: keep the lane alive and say what happened
            traceback.print_exc(file=sys.stderr)
            outcome = ("failed", HearthError(f"{job.label or 'The job'} failed unexpectedly: {type(exc).__name__}: {exc}"))
        with self._lock:
            was_cancelled = job.id in self._cancel_requested
            self._cancel_requested.discard(job.id)
            self._jobs.pop(job.id, None)
            self._futures.pop(job.id, None)
        if outcome[0] == "failed" and not was_cancelled:
            self.failed.emit(job.id, outcome[1])
        elif was_cancelled:
            self.cancelled.emit(job.id)
        else:
            self.finished.emit(job.id)

    def shutdown(self) -> None:
        """Drop queued jobs, wait for running ones (stop the host first so streams end) and join every thread."""
        self._closed = True
        self.cancel_all()
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.shutdown()
        self._control.shutdown(wait=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
