"""The Explore room's requests (tokens, embeddings, attention, few-shot, code -> page), as JSON-serialisable
dataclasses (stdlib only: the GUI builds them, the engine host and the ``explore`` CLI validate them).

The limits they check live here too, so checking a request never imports the engines that answer it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

from engines.core.errors import RequestError
from engines.core.requests import from_json
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

MAX_ATTENTION_TOKENS = 256  # attention maps are T x T per head: longer texts are refused
DEFAULT_KS = (0, 1, 2, 4, 8)  # few-shot: the numbers of worked examples measured by default
MAX_K = 32


def validate_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """The few-shot K values, sorted and without repeats; a RequestError for an empty list or a K out of range."""
    if not ks or not all(isinstance(k, int) and 0 <= k <= MAX_K for k in ks):
        raise RequestError(f"'ks' is {list(ks)!r}.", hint=f"Give numbers of examples from 0 to {MAX_K}, e.g. [0, 1, 2, 4, 8].")
    return tuple(sorted(set(ks)))


class _Request:
    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return from_json(cls, data, f"{cls.__name__.removesuffix('Request').lower()} request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("str",) and not isinstance(value, str):
                raise RequestError(f"Field '{f.name}' must be a string.")


def _top(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 200:
        raise RequestError(f"Field 'top' is {value!r}.", hint="Ask for 1 to 200 results.")


@dataclass
class TokensRequest(_Request):
    text: str = ""
    model: str = ""
    chat: bool = False  # wrap the text in the model's chat template
    system: str = DEFAULT_SYSTEM_PROMPT


@dataclass
class NeighboursRequest(_Request):
    word: str = ""
    model: str = ""
    top: int = 10

    def validate(self) -> None:
        super().validate()
        _top(self.top)


@dataclass
class AnalogyRequest(_Request):
    """a : b :: c : ?"""

    a: str = ""
    b: str = ""
    c: str = ""
    model: str = ""
    top: int = 10

    def validate(self) -> None:
        super().validate()
        _top(self.top)


@dataclass
class ProjectionRequest(_Request):
    pairs: list[list[str]] = field(default_factory=list)  # [["man", "woman"], ...]; a one-word list is a lone point
    model: str = ""

    def validate(self) -> None:
        if not isinstance(self.pairs, list) or not all(
                isinstance(p, list) and 1 <= len(p) <= 2 and all(isinstance(w, str) for w in p) for p in self.pairs):
            raise RequestError("Field 'pairs' must be a list of [word, word] pairs (or [word]).")
        if len(self.pairs) > 200:
            raise RequestError(f"{len(self.pairs)} pairs is too many for one map.", hint="Use up to 200.")


@dataclass
class AttentionRequest(_Request):
    text: str = ""
    model: str = ""
    max_tokens: int = 64
    format: str = "base64-f16"  # or "lists": attentions[layer][head][i][j] as JSON numbers

    def validate(self) -> None:
        super().validate()
        if not self.text.strip():
            raise RequestError("The text is empty.", hint="Type a short sentence.")
        if (not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool)
                or not 2 <= self.max_tokens <= MAX_ATTENTION_TOKENS):
            raise RequestError(f"Field 'max_tokens' is {self.max_tokens!r}.", hint=f"Use 2 to {MAX_ATTENTION_TOKENS}.")
        if self.format not in ("base64-f16", "lists"):
            raise RequestError(f"Field 'format' is {self.format!r}.", hint="Use 'base64-f16' or 'lists'.")


@dataclass
class FewShotPromptRequest(_Request):
    query: str = ""
    description: str = ""
    examples: list[dict] = field(default_factory=list)  # [{"input", "output"}]

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.examples, list) or not all(
                isinstance(e, dict) and isinstance(e.get("input"), str) and isinstance(e.get("output"), str) for e in self.examples):
            raise RequestError("Field 'examples' must be a list of {\"input\": ..., \"output\": ...} objects.")


@dataclass
class FewShotEvalRequest(_Request):
    task: str = "capitals"
    model: str = ""
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    limit: int | None = None  # ask only the first N items of the task
    seed: int = 0
    max_tokens: int = 16
    request_id: str = ""

    def validate(self) -> None:
        super().validate()
        validate_ks(self.ks)
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise RequestError(f"Field 'limit' is {self.limit!r}.", hint="Use a positive number, or leave it out for all items.")


@dataclass
class PageRequest(_Request):
    description: str = ""
    model: str = ""
    max_tokens: int = 400
    temperature: float = 0.2
    seed: int | None = None
    request_id: str = ""
