"""Building a request dataclass from JSON: unknown fields and wrong types become a RequestError naming them.

Every field is checked against its annotation before the dataclass is built, so a range check in
``validate()`` never meets a value of the wrong type (``"temperature": "hot"`` is a 400 naming the
field, not a TypeError deep in a comparison).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable

from engines.core.errors import RequestError

_JSON_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
               dict: "an object"}


def from_json(cls, data: Any, what: str, prepare: Callable[[dict], dict] | None = None):
    """``cls(**data)`` validated. ``prepare`` turns nested dicts into their dataclasses first (it may raise
    TypeError for a malformed one)."""
    if not isinstance(data, dict):
        raise RequestError(f"The {what} must be a JSON object.")
    check_fields(cls, data, what)
    try:
        obj = cls(**(prepare(dict(data)) if prepare else data))
    except TypeError as exc:
        raise RequestError(f"Invalid {what}: {exc}.") from exc
    obj.validate()
    return obj


def check_fields(cls, data: dict, what: str, prefix: str = "") -> None:
    """Unknown fields and values whose JSON type does not match the dataclass field's annotation."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RequestError(f"Unknown field(s) in the {what}: {', '.join(prefix + u for u in unknown)}.",
                           hint=f"Known fields: {', '.join(sorted(names))}.")
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation only importable for type checkers: validate() checks it
        hints = {}
    for name, value in data.items():
        check_value(f"{prefix}{name}", value, hints.get(name, Any), what)


def check_value(name: str, value: Any, expected: Any, what: str = "request") -> None:
    """Raise a RequestError naming ``name`` when ``value`` (parsed JSON) does not fit the type ``expected``."""
    if not _fits(value, expected):
        raise RequestError(f"Field '{name}' is {_show(value)}.", hint=f"It must be {_describe(expected)}.")
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is not None and len(inner) == 1:
            check_value(name, value, inner[0], what)
    elif origin is list and args and isinstance(value, list):
        for i, item in enumerate(value):
            check_value(f"{name}[{i}]", item, args[0], what)
    elif dataclasses.is_dataclass(expected) and isinstance(value, dict):
        check_fields(expected, value, what, prefix=f"{name}.")


def _fits(value: Any, expected: Any) -> bool:
    if expected is Any or expected is object:
        return True
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    if origin is list or expected is list:
        return isinstance(value, list)
    if origin is dict or expected is dict:
        return isinstance(value, dict)
    if dataclasses.is_dataclass(expected):
        return isinstance(value, dict)
    return True  # a type JSON cannot carry directly: validate() has the last word


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(expected) if a is not type(None)]
        null = type(None) in typing.get_args(expected)
        return " or ".join(parts) + (" (or null)" if null else "")
    if origin is list:
        args = typing.get_args(expected)
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if dataclasses.is_dataclass(expected):
        return "an object"
    return _JSON_NAMES.get(origin or expected, "a valid value")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
