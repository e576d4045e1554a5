"""The run folder's events as typed events: what a trainer appends to events.jsonl becomes the same
Metric / Progress / Log events every Hearth job yields, read whole (a past run) or followed live."""
from __future__ import annotations

import json
import threading
import time

from engines.core.cancel import CancelToken
from engines.core.events import Log, Metric, Progress
from engines.store import runs


def _append(folder, *records, partial: str = "") -> None:
    with open(folder / runs.EVENTS, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        fh.write(partial)


def test_a_step_is_its_metrics_then_progress():
    events = runs.typed_events({"event": "step", "time": 1.0, "step": 3, "epoch": 0.5, "loss": 0.25, "kl": 0.01,
                                "note": "text", "flag": True, "bad": float("nan")}, max_steps=10)
    assert events == [Metric("loss", 0.25, 3), Metric("kl", 0.01, 3), Progress(step=3, total=10)]


def test_lifecycle_records_are_logs_and_unknown_ones_are_skipped():
    assert runs.typed_events({"event": "train", "step": 0}) == [Log(runs.TRAINING_STARTED)]
    assert runs.typed_events({"event": "checkpoint", "step": 4}) == [Log(f"{runs.CHECKPOINT_SAVED} 4")]
    assert runs.typed_events({"event": "error", "message": "out of memory"}) == [Log("out of memory", level="error")]
    assert runs.typed_events({"event": "start", "step": 0, "max_steps": 12}) == [Progress(step=0, total=12, message="started")]
    assert runs.typed_events({"event": "score_head", "std": 0.1}) == []


def test_read_events_takes_max_steps_from_the_start_record(tmp_path):
    _append(tmp_path, {"event": "start", "step": 0, "max_steps": 5}, {"event": "step", "step": 1, "loss": 2.0},
            partial='{"event": "step", "step": 2, "lo')  # a line being written is not read yet
    assert runs.read_events(tmp_path) == [Progress(step=0, total=5, message="started"), Metric("loss", 2.0, 1),
                                          Progress(step=1, total=5)]


def test_follow_events_sees_appended_lines_and_reads_the_last_ones_after_cancel(tmp_path):
    _append(tmp_path, {"event": "step", "step": 1, "loss": 3.0})
    offset = runs.events_size(tmp_path)  # a resumed run: what is there already is skipped
    token = CancelToken()
    seen: list = []
    follower = threading.Thread(target=lambda: seen.extend(runs.follow_events(tmp_path, token, 4, offset, poll_s=0.02)))
    follower.start()
    _append(tmp_path, {"event": "step", "step": 2, "loss": 2.0}, partial='{"event": "step", ')
    deadline = time.monotonic() + 10
    while Metric("loss", 2.0, 2) not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Metric("loss", 2.0, 2) in seen and Metric("loss", 3.0, 1) not in seen
    _append(tmp_path, partial='"step": 3, "loss": 1.0}\n')  # completes the partial line: written before the cancel
    token.cancel()
    follower.join(timeout=10)
    assert not follower.is_alive()
    assert seen == [Metric("loss", 2.0, 2), Progress(step=2, total=4), Metric("loss", 1.0, 3), Progress(step=3, total=4)]
