"""A training job's dataset: the JSONL rows each method reads, with only the columns it uses.

Checked before any model loads (``main.py train`` reads the dataset before importing torch).
"""
from __future__ import annotations

import json
from pathlib import Path

from engines.core.errors import RequestError
from engines.core.jsonl import is_text_or_messages, read_jsonl

# Which columns each method reads; the first layout a row matches wins.
LAYOUTS: dict[str, list[tuple[str, ...]]] = {
    "sft": [("prompt", "completion"), ("messages",), ("text",), ("prompt", "chosen")],
    "reward": [("prompt", "chosen", "rejected")],
    "dpo": [("prompt", "chosen", "rejected")],
    "kto": [("prompt", "completion", "label"), ("prompt", "chosen", "rejected")],
    "rl": [("prompt",)],
}


def read_dataset(path: str | Path, method: str, on_error: str = "stop") -> tuple[list[dict], list]:
    """The rows of a JSONL dataset for ``method`` with only the columns it uses.

    KTO also takes preference rows (chosen -> desirable, rejected -> undesirable); SFT takes
    preference rows (the chosen reply) and unpaired rows (thumbs-up replies only). Raises
    RequestError naming the missing columns, an empty file, or (``on_error="stop"``) the
    first malformed line; with ``"skip"`` the skipped lines come back as the second value.
    """
    layouts = LAYOUTS[method]

    def check(obj: dict) -> str | None:
        for layout in layouts:
            if all(k in obj for k in layout):
                for k in layout:
                    if k == "label":
                        if not isinstance(obj[k], bool):
                            return "has a 'label' that is not true or false"
                    elif k == "text":
                        if not isinstance(obj[k], str):
                            return "has a 'text' that is not a string"
                    elif not is_text_or_messages(obj[k]):
                        return f"has a {k!r} that is neither text nor a list of chat messages"
                return None
        wanted = " or ".join("+".join(layout) for layout in layouts)
        return f"lacks the columns {method} needs ({wanted}); it has {', '.join(obj) or 'none'}"

    path = Path(path)
    records, errors = read_jsonl(path, on_error, check)
    if not records:
        detail = f" ({len(errors)} malformed lines skipped, first: {errors[0]})" if errors else ""
        raise RequestError(f"The dataset {path} has no usable rows for {method}{detail}.", path=path,
                           hint="Label some replies first, or choose another file.")
    rows = []
    for _, obj in records:
        layout = next(lay for lay in layouts if all(k in obj for k in lay))
        if method == "sft" and obj.get("label") is False:
            continue  # a thumbs-down reply is not one to imitate
        if method == "sft" and layout == ("prompt", "chosen"):
            rows.append({"prompt": obj["prompt"], "completion": obj["chosen"]})
        elif method == "kto" and layout == ("prompt", "chosen", "rejected"):
            rows.append({"prompt": obj["prompt"], "completion": obj["chosen"], "label": True})
            rows.append({"prompt": obj["prompt"], "completion": obj["rejected"], "label": False})
        else:
            rows.append({k: obj[k] for k in layout})
    if not rows:
        raise RequestError(f"The dataset {path} has no rows {method} can learn from (every reply is labelled bad).",
                           path=path, hint="Add thumbs-up replies or preference pairs.")
    if method == "rl":  # one row per distinct prompt
        seen, unique = set(), []
        for row in rows:
            key = json.dumps(row["prompt"], sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append(row)
        rows = unique
    return rows, errors
