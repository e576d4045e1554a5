"""Typed, immutable events that engines yield, and their JSON wire format.

The wire format is ``{"type": <class name>, **fields}``; bytes fields travel as base64.
"""
from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class Token(Event):
    """A piece of generated text (usually one token)."""

    text: str
    index: int = 0
    # With logprobs asked for: [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]
    logprobs: list | None = None


@dataclass(frozen=True, slots=True)
class Progress(Event):
    step: int
    total: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Preview(Event):
    """A small PNG preview of an unfinished result."""

    step: int
    png: bytes = b""


@dataclass(frozen=True, slots=True)
class Metric(Event):
    name: str
    value: float
    step: int = 0


@dataclass(frozen=True, slots=True)
class Log(Event):
    message: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Result(Event):
    """The final event of every job. ``data`` holds the engine-specific outcome."""

    finish_reason: str = "stop"  # stop | length | cancelled
    data: dict[str, Any] = field(default_factory=dict)


_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in (Token, Progress, Preview, Metric, Log, Result)}


def event_to_wire(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        out[f.name] = value
    return out


def event_from_wire(data: dict[str, Any]) -> Event:
    cls = _TYPES.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if f.type in ("bytes",) and isinstance(value, str):
                value = base64.b64decode(value)
            kwargs[f.name] = value
    return cls(**kwargs)
