"""Building a request dataclass from JSON: unknown fields and wrong types become a RequestError naming them."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from engines.core.errors import RequestError


def from_json(cls, data: Any, what: str, prepare: Callable[[dict], dict] | None = None):
    """``cls(**data)`` validated. ``prepare`` turns nested dicts into their dataclasses first (it may raise
    TypeError for a malformed one)."""
    if not isinstance(data, dict):
        raise RequestError(f"The {what} must be a JSON object.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RequestError(f"Unknown field(s) in the {what}: {', '.join(unknown)}.", hint=f"Known fields: {', '.join(sorted(names))}.")
    try:
        obj = cls(**(prepare(dict(data)) if prepare else data))
    except TypeError as exc:
        raise RequestError(f"Invalid {what}: {exc}.") from exc
    obj.validate()
    return obj
