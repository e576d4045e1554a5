"""The one job path: a room's job runs on a lane off the GUI thread, its events come back through the router,
and cancelling the job cancels the token its generator checks (a local job needs no engine host)."""
from __future__ import annotations

import threading

import pytest

from engines.core.cancel import CancelToken
from engines.core.events import Progress

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def router(qtbot):
    from desktop.job_router import JobRouter
    from desktop.jobs import JobRunner

    runner = JobRunner()
    yield JobRouter(runner, "test")
    runner.shutdown()


def test_a_local_job_is_cancelled_by_its_token(router, qtbot):
    token, seen, ends, threads = CancelToken(), [], [], set()

    def count(client):
        assert client is None  # no host: the job reads local files
        threads.add(threading.get_ident())
        step = 0
        while not token.cancelled:
            yield Progress(step=step, total=0)
            step += 1
            token.wait(0.01)

    job = router.stream("local", count, seen.append, on_done=lambda how, error: ends.append((how, error)), token=token,
                        host=False)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=10_000)
    assert router.active(job) and threading.get_ident() not in threads
    router.cancel(job)
    qtbot.waitUntil(lambda: bool(ends), timeout=10_000)
    assert token.cancelled and ends == [("cancelled", None)] and not router.active(job)
    assert [e.step for e in seen] == list(range(len(seen)))


def test_a_host_job_without_a_host_fails_with_a_clear_error(router, qtbot):
    ends = []
    router.stream("host", lambda client: iter(()), lambda e: None, on_done=lambda how, error: ends.append((how, error)))
    qtbot.waitUntil(lambda: bool(ends), timeout=10_000)
    how, error = ends[0]
    assert how == "failed" and "engine host is not reachable" in str(error)
