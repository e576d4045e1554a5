"""The chat templates a user can choose instead of the model file's own (stdlib only: the GUI lists them too).

The llama.cpp backend renders the named ones with llama-cpp-python's own formatters; a value ending in
``.jinja`` is the path of the user's template file; ``""`` keeps the file's own.
"""
from __future__ import annotations

NAMES = {"chatml": "ChatML", "llama3": "Llama 3", "gemma": "Gemma"}
FILE_OWN = ""


def is_choice(value: object) -> bool:
    return isinstance(value, str) and (value in (FILE_OWN, *NAMES) or value.lower().endswith(".jinja"))
