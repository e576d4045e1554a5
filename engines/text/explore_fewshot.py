"""Zero-, one- and few-shot prompts, and accuracy against K on small tasks with known answers.

A prompt is the task description, K worked examples and the query, each as ``Input:`` /
``Output:`` lines; the model completes the last ``Output:``. ``evaluate`` asks every query of a
task with K = 0, 1, 2, 4, 8 examples (drawn from the task's other items) and reports the share
answered exactly, as the GPT-3 paper's few-shot figure does.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from engines.core import resources
from engines.core.cancel import CancelToken, Cancelled
from engines.core.errors import RequestError
from engines.core.events import Event, Metric, Progress, Result
from engines.core.requests.explore import DEFAULT_KS, validate_ks


@dataclass(frozen=True)
class Example:
    input: str
    output: str

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output}


@dataclass(frozen=True)
class FewShotTask:
    id: str
    name: str
    description: str
    items: tuple[Example, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "items": [e.to_dict() for e in self.items]}


def tasks_file() -> Path:
    return resources.assets_dir() / "explore" / "fewshot_tasks.json"


def load_tasks(path: str | Path | None = None) -> list[FewShotTask]:
    path = Path(path) if path else tasks_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RequestError(f"The few-shot task set {path} could not be read: {exc}.", path=path,
                           hint="Reinstall Hearth, or fix the JSON file.") from exc
    tasks = []
    for t in data.get("tasks", []):
        items = tuple(Example(str(i), str(o)) for i, o in t["items"])
        tasks.append(FewShotTask(t["id"], t["name"], t["description"], items))
    return tasks


def get_task(task_id: str, path: str | Path | None = None) -> FewShotTask:
    tasks = load_tasks(path)
    for task in tasks:
        if task.id == task_id:
            return task
    raise RequestError(f"There is no few-shot task {task_id!r}.", hint=f"Known tasks: {', '.join(t.id for t in tasks)}.")


def build_prompt(description: str, examples: Sequence[Example], query: str) -> str:
    """The prompt the model completes: description, K examples, the query and an open ``Output:``."""
    parts: list[str] = []
    if description.strip():
        parts += [description.strip(), ""]
    for e in examples:
        parts += [f"Input: {e.input.strip()}", f"Output: {e.output.strip()}", ""]
    parts += [f"Input: {query.strip()}", "Output:"]
    return "\n".join(parts)


def choose_examples(task: FewShotTask, query_index: int, k: int, seed: int = 0) -> list[Example]:
    """K examples from the task's other items: fixed for a given (query, K, seed), never the query itself."""
    pool = [e for i, e in enumerate(task.items) if i != query_index]
    if k > len(pool):
        raise RequestError(f"Task {task.id!r} has {len(task.items)} items, too few for K = {k}.",
                           hint=f"Use K up to {len(pool)}.")
    return random.Random(f"{seed}:{query_index}:{k}").sample(pool, k)


def answer_of(completion: str) -> str:
    """The model's answer: the first line of its completion, trimmed, without a final full stop."""
    line = completion.strip().split("\n", 1)[0].strip()
    return line.rstrip(".").strip()


def is_correct(completion: str, expected: str) -> bool:
    return answer_of(completion).casefold() == expected.strip().casefold()


def evaluate(task: FewShotTask, complete: Callable[[str], dict], cancel: CancelToken | None = None,
             ks: Sequence[int] = DEFAULT_KS, limit: int | None = None, seed: int = 0) -> Iterator[Event]:
    """Accuracy of ``complete`` on ``task`` for each K; yields Progress, one Metric per K, then a Result.

    ``complete(prompt)`` returns the engine's result data (``text``, ``prompt_tokens``,
    ``completion_tokens``, ``total_s``). Cancelling ends with a Result whose finish_reason is
    'cancelled' and the accuracies measured so far.
    """
    cancel = cancel or CancelToken()
    ks = validate_ks(ks)
    queries = list(enumerate(task.items))[: limit or None]
    total, step = len(ks) * len(queries), 0
    accuracy: dict[str, float] = {}
    samples: list[dict] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_s": 0.0}
    finish = "stop"
    try:
        for k in ks:
            correct = 0
            for index, item in queries:
                cancel.raise_if_cancelled()
                prompt = build_prompt(task.description, choose_examples(task, index, k, seed), item.input)
                data = complete(prompt)
                cancel.raise_if_cancelled()
                for key in usage:
                    usage[key] += data.get(key) or 0
                ok = is_correct(data.get("text", ""), item.output)
                correct += ok
                step += 1
                if len(samples) < 40:
                    samples.append({"k": k, "input": item.input, "expected": item.output,
                                    "answer": answer_of(data.get("text", "")), "correct": ok})
                yield Progress(step, total, f"K = {k}: {index + 1} of {len(queries)}")
            accuracy[str(k)] = correct / len(queries) if queries else 0.0
            yield Metric("accuracy", accuracy[str(k)], step=k)
    except Cancelled:
        finish = "cancelled"
    yield Result(finish, {"task": task.id, "ks": list(ks), "queries": len(queries), "accuracy": accuracy,
                          "samples": samples, **usage})
