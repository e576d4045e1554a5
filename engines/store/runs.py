"""The training run folder: its one owner, for the job that writes it and everyone who reads it.

A run is a folder (under ``HEARTH_HOME/runs`` when the Tune room starts it) that ``main.py train``
fills: ``job.json``, ``events.jsonl`` (one JSON object a line, appended as training goes),
``summary.json`` (written once, atomically, when the run ends), the LoRA adapter
(``adapter_config.json`` + ``adapter_model.safetensors``) and ``checkpoints/``. The folder is the
record, so runs started from the CLI show up in the app too. Stdlib only: the GUI process reads
runs with it, on a file thread.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from engines.core import paths
from engines.core.cancel import CancelToken
from engines.core.events import Event, Log, Metric, Progress
from engines.core.errors import ModelFileError, RequestError

JOB = "job.json"
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CHECKPOINTS = "checkpoints"
CANCEL = "cancel"  # a file of this name asks the running job to checkpoint and stop


def runs_dir() -> Path:
    path = paths.home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_json(path: Path) -> dict | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- writing ------------------------------------------------------------------------------------
class EventLog:
    """Appends one JSON object per line to ``events.jsonl`` (rank 0 only); the GUI tails it."""

    def __init__(self, folder: Path, enabled: bool = True, default: Callable[[Any], Any] | None = None) -> None:
        self.path, self.enabled, self._default = Path(folder) / EVENTS, enabled, default

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=self._default) + "\n")
            fh.flush()


def write_summary(folder: Path, summary: dict, default: Callable[[Any], Any] | None = None) -> None:
    paths.atomic_write_text(Path(folder) / SUMMARY, json.dumps(summary, indent=2, default=default) + "\n")


# -- reading ------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    folder: Path
    method: str = "?"
    status: str = "unknown"  # completed | cancelled | failed | running | stopped | unknown
    steps: int = 0
    max_steps: int = 0
    final_loss: float | None = None
    started: float = 0.0
    base_model: str = ""
    has_checkpoint: bool = False
    summary: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def has_adapter(self) -> bool:
        return (self.folder / ADAPTER_CONFIG).is_file()


def read_run(folder: Path) -> RunInfo:
    info = RunInfo(folder)
    job = read_json(folder / JOB)
    summary = read_json(folder / SUMMARY)
    info.method = (summary or job or {}).get("method", "?")
    info.max_steps = int((summary or job or {}).get("max_steps") or 0)
    info.base_model = (summary or job or {}).get("base_model", "")
    info.has_checkpoint = any((folder / CHECKPOINTS).glob("checkpoint-*")) if (folder / CHECKPOINTS).is_dir() else False
    try:
        info.started = (folder / JOB).stat().st_mtime if (folder / JOB).exists() else folder.stat().st_mtime
    except OSError:
        pass
    if summary:
        info.summary = summary
        info.status = summary.get("status", "unknown")
        info.steps = int(summary.get("steps") or 0)
        info.final_loss = summary.get("final_loss")
        info.started = summary.get("started") or info.started
    else:
        last = last_event(folder / EVENTS)
        if last.get("event") == "error":
            info.status = "failed"
        elif last:
            info.status = "running" if time.time() - float(last.get("time", 0)) < 600 else "stopped"
        info.steps = int(last.get("step") or 0)
    return info


def list_runs() -> list[RunInfo]:
    """Every run folder, newest first (call it off the GUI thread)."""
    out = []
    for folder in runs_dir().iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            out.append(read_run(folder))
    return sorted(out, key=lambda r: -r.started)


def last_event(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


class EventTail:
    """Reads the complete lines appended to ``events.jsonl`` since the last call (a partial line waits)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self._partial = b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(1 << 20)  # at most 1 MB a call keeps each read short
                self.offset = fh.tell()
        except FileNotFoundError:
            return []
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out


# The Log messages a run's records become (what a reader of the typed events matches on).
TRAINING_STARTED = "training started"
CHECKPOINT_SAVED = "checkpoint saved at step"
_NOT_METRICS = {"event", "time", "step", "epoch"}


def typed_events(record: dict, max_steps: int = 0) -> list[Event]:
    """One ``events.jsonl`` record as the typed events every Hearth job yields: a ``step`` is one Metric per
    number it carries, then Progress; ``train``, ``checkpoint``, ``error`` and ``end`` are Logs."""
    kind, step = record.get("event"), record.get("step")
    step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else 0
    if kind == "step":
        out: list[Event] = [Metric(name, float(value), step) for name, value in record.items()
                            if name not in _NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
                            and math.isfinite(value)]
        return out + [Progress(step=step, total=max_steps)]
    if kind == "start":
        return [Progress(step=step, total=int(record.get("max_steps") or max_steps), message="started")]
    if kind == "train":
        return [Log(TRAINING_STARTED)]
    if kind == "checkpoint":
        return [Log(f"{CHECKPOINT_SAVED} {step}")]
    if kind == "error":
        return [Log(str(record.get("message", "")), level="error")]
    if kind == "end":
        return [Log(f"run ended: {record.get('status', '?')}" + (f" ({record['reason']})" if record.get("reason") else ""))]
    return []  # job, trained, score_head: the summary and job.json say these better


def read_events(folder: Path) -> list[Event]:
    """Every typed event of a run so far (a past run's curves; call it off the GUI thread)."""
    tail, out, max_steps = EventTail(Path(folder) / EVENTS), [], 0
    while True:
        records = tail.read()
        if not records:
            return out
        for record in records:
            max_steps = int(record.get("max_steps") or max_steps) if record.get("event") == "start" else max_steps
            out.extend(typed_events(record, max_steps))


def events_size(folder: Path) -> int:
    """How many bytes of events the run has so far (where a resumed run's new events begin)."""
    try:
        return (Path(folder) / EVENTS).stat().st_size
    except OSError:
        return 0


def follow_events(folder: Path, token: CancelToken, max_steps: int = 0, offset: int = 0,
                  poll_s: float = 0.25) -> Iterator[Event]:
    """The typed events of a run as the trainer appends them from byte ``offset`` on, until ``token`` is
    cancelled (then one last read, so nothing written before the cancel is missed). A job like any other:
    the Tune room runs it on a job lane, off the GUI thread."""
    tail = EventTail(Path(folder) / EVENTS, offset)
    while True:
        last = token.cancelled
        for record in tail.read():
            max_steps = int(record.get("max_steps") or max_steps) if record.get("event") == "start" else max_steps
            yield from typed_events(record, max_steps)
        if last:
            return
        token.wait(poll_s)


def seconds_per_step(runs: list[RunInfo], method: str, base_model: str) -> float | None:
    """The median time per step of finished runs like this one (same method and base), or None."""
    samples = []
    for run in runs:
        if run.method != method or run.base_model != base_model or not run.summary:
            continue
        metrics = run.summary.get("train_metrics") or {}
        rate = metrics.get("train_steps_per_second")
        if rate:
            samples.append(1.0 / float(rate))
    if not samples:
        return None
    samples.sort()
    return samples[len(samples) // 2]


# -- the adapter ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdapterInfo:
    """A causal-LM adapter folder, checked: where it is, what it was trained on, how to call it."""

    path: str  # the resolved folder
    base_model: str  # as the run recorded it: "default" or a path
    method: str  # sft | dpo | kto | rl ("" when the folder has no summary.json)

    @property
    def name(self) -> str:
        return Path(self.path).name


def check_adapter(adapter_dir: str | Path) -> AdapterInfo:
    """Validate a PEFT adapter folder for chatting (stdlib only: runs before torch is imported).

    Raises ModelFileError naming the folder or file that is missing or wrong, RequestError for a
    reward model (it scores replies; it cannot write them).
    """
    folder = Path(adapter_dir).expanduser()
    if not folder.is_dir():
        raise ModelFileError(f"The adapter folder {folder} does not exist.", path=folder,
                             hint="Choose the output folder of a finished training run (Tune room, Train tab).")
    config_file = folder / ADAPTER_CONFIG
    if not config_file.is_file():
        raise ModelFileError(f"{folder} holds no adapter: {config_file.name} is missing.", path=config_file,
                             hint="Choose the output folder of a finished training run; a run that is still training "
                                  "or was cancelled has no adapter yet (resume it first).")
    config = paths.read_json_object(config_file, hint="The run's folder is damaged; train it again.")
    summary = read_json(folder / SUMMARY) or {}
    if config.get("task_type") == "SEQ_CLS" or summary.get("method") == "reward":
        raise RequestError(f"{folder} is a reward model: it scores replies and cannot write them.", path=folder,
                           hint="Chat with an SFT, DPO, KTO or RL run; use reward runs in Compare.")
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickled = (folder / "adapter_model.bin").is_file()
        raise ModelFileError(f"{weights} is missing" + (" (the folder has only a pickle, adapter_model.bin, which Hearth "
                             "does not load)." if pickled else "."), path=weights,
                             hint="Choose the output folder of a finished Hearth training run.")
    base = summary.get("base_model") or config.get("base_model_name_or_path")
    if not base:
        raise ModelFileError(f"{config_file} does not say which base model the adapter belongs to "
                             "(no base_model_name_or_path).", path=config_file,
                             hint="Train it again with Hearth, or add base_model_name_or_path to that file.")
    if base != "default" and not Path(base).exists():
        where = folder / SUMMARY if summary.get("base_model") else config_file
        raise ModelFileError(f"The base model of the adapter in {folder}, {base} (named in {where.name}), does not exist.",
                             path=base, hint="Put the base model back at that path, or train the adapter again.")
    return AdapterInfo(str(folder.resolve()), str(base), str(summary.get("method") or ""))
