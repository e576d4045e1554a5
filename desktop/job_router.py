"""The one way a room runs a host job: routes the job runner's signals back to the view that asked, on the GUI
thread.

The runner reports every job to everyone; a router keeps, per job it submitted, the view's ``on_event`` and
``on_done(how, error)`` callbacks (``how`` is "finished", "cancelled" or "failed"; ``error`` is set when it failed).
``stream`` runs a job that yields events (``host=False`` for one that reads local files instead of calling the
host); ``call`` a plain host call whose answer arrives as one Result; all are cancelled with ``cancel(job_id)``,
which cancels the job's token (pass your own with ``token=`` when the generator checks it) and stops the job
inside the host.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject

from engines.core.cancel import CancelToken
from engines.core.errors import HearthError
from engines.core.events import Event, Result
from desktop.jobs import Job, JobRunner

OnDone = Callable[[str, "HearthError | None"], None]


@dataclass
class _Route:
    on_event: Callable[[Event], None] | None
    on_done: OnDone | None


class JobRouter(QObject):
    def __init__(self, runner: JobRunner, prefix: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.prefix = prefix  # lanes are "<prefix>.<lane>"
        self._routes: dict[str, _Route] = {}
        runner.event.connect(self._on_event)
        runner.finished.connect(lambda job_id: self._end(job_id, "finished", None))
        runner.cancelled.connect(lambda job_id: self._end(job_id, "cancelled", None))
        runner.failed.connect(lambda job_id, error: self._end(job_id, "failed", error))

    def stream(self, lane: str, make_events: Callable, on_event: Callable[[Event], None], label: str = "",
               on_done: OnDone | None = None, request_id: str | None = None, token: CancelToken | None = None,
               host: bool = True) -> str | None:
        """Submit a streaming job; its id, or None when the runner is shut down (the window is closing)."""
        job = Job(f"{self.prefix}.{lane}", make_events, label=label, request_id=(request_id or uuid.uuid4().hex) if host else None,
                  token=token or CancelToken(), needs_host=host)
        return self.submit(job, on_event, on_done)

    def call(self, lane: str, fn: Callable, on_result: Callable[[dict], None], label: str = "",
             on_done: OnDone | None = None) -> str | None:
        """Run ``fn(client)`` (a plain host call returning a dict) on a lane; its dict reaches ``on_result``."""
        def run(client):
            yield Result(data=fn(client))

        def deliver(event: Event) -> None:
            if isinstance(event, Result):
                on_result(event.data)

        return self.submit(Job(f"{self.prefix}.{lane}", run, label=label), deliver, on_done)

    def submit(self, job: Job, on_event: Callable[[Event], None] | None, on_done: OnDone | None) -> str | None:
        self._routes[job.id] = _Route(on_event, on_done)
        try:
            return self.runner.submit(job)
        except RuntimeError:  # the runner is shut down: the window is closing
            self._routes.pop(job.id, None)
            return None

    def cancel(self, job_id: str | None) -> None:
        if job_id:
            self.runner.cancel(job_id)

    def active(self, job_id: str | None) -> bool:
        return bool(job_id) and job_id in self._routes

    def _on_event(self, job_id: str, event: Event) -> None:
        route = self._routes.get(job_id)
        if route and route.on_event:
            route.on_event(event)

    def _end(self, job_id: str, how: str, error: HearthError | None) -> None:
        route = self._routes.pop(job_id, None)
        if route and route.on_done:
            route.on_done(how, error)
