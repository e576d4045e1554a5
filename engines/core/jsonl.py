"""JSON Lines with line numbers: what label imports and training-job datasets read (stdlib only)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engines.core.errors import RequestError


@dataclass
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def read_jsonl(path: str | Path, on_error: str = "stop",
               validate: Callable[[dict], str | None] | None = None) -> tuple[list[tuple[int, dict]], list[LineError]]:
    """Read ``path`` as JSON Lines: ``([(line_number, object)], [LineError])``.

    Blank lines are ignored. A line that is not a JSON object, or that ``validate`` rejects
    (it returns a message), is reported by number: ``on_error="stop"`` raises RequestError at
    the first one, ``"skip"`` collects them and goes on.
    """
    if on_error not in ("stop", "skip"):
        raise RequestError(f"on_error must be 'stop' or 'skip', not {on_error!r}.")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise RequestError(f"The file {path} does not exist.", path=path, hint="Choose an existing JSONL file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"Cannot read {path}: {exc}.", path=path, hint="Choose a UTF-8 JSONL file.") from exc
    records, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            problem = None if isinstance(obj, dict) else "is not a JSON object"
        except json.JSONDecodeError as exc:
            obj, problem = None, f"is not valid JSON ({exc.msg} at column {exc.colno})"
        if problem is None and validate is not None:
            problem = validate(obj)
        if problem:
            if on_error == "stop":
                raise RequestError(f"{path} line {number} {problem}.", path=path,
                                   hint="Fix that line, or import with 'skip malformed lines'.")
            errors.append(LineError(number, problem))
            continue
        records.append((number, obj))
    return records, errors


def is_text_or_messages(value: Any) -> bool:
    """A prompt or reply as training data takes: plain text, or chat messages with text content."""
    if isinstance(value, str):
        return True
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
