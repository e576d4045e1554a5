"""The Explore room's requests, validated, and the calls that answer them.

One place for the engine host's ``/hearth/explore/...`` endpoints and the ``explore`` CLI, so
both run the same code. Each request is a JSON-able dataclass; each answer a JSON-able dict.
"""
from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

from engines.core.cancel import CancelToken
from engines.core.errors import RequestError
from engines.core.events import Event
from engines.text.explore_source import ExploreSource, ExploreSources
from engines.core.requests import from_json
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT, ChatRequest


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
        from engines.text.explore_attention import MAX_TOKENS

        super().validate()
        if not self.text.strip():
            raise RequestError("The text is empty.", hint="Type a short sentence.")
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or not 2 <= self.max_tokens <= MAX_TOKENS:
            raise RequestError(f"Field 'max_tokens' is {self.max_tokens!r}.", hint=f"Use 2 to {MAX_TOKENS}.")
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
    ks: list[int] = field(default_factory=lambda: [0, 1, 2, 4, 8])
    limit: int | None = None  # ask only the first N items of the task
    seed: int = 0
    max_tokens: int = 16
    request_id: str = ""

    def validate(self) -> None:
        super().validate()
        from engines.text.explore_fewshot import validate_ks

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


class ExploreService:
    """Answers Explore requests for ``text_engine``'s models (any model the registry resolves)."""

    def __init__(self, text_engine=None) -> None:
        self.text = text_engine
        self.sources = ExploreSources()

    def model_id(self, model: str) -> str:
        """'' means the loaded model (when exactly one is loaded), otherwise the bundled default."""
        if model:
            return model
        loaded = self.text.loaded() if self.text is not None else []
        return loaded[0].id if len(loaded) == 1 else "default"

    def source(self, model: str) -> ExploreSource:
        return self.sources.get(self.model_id(model))

    # -- tokens -----------------------------------------------------------
    def tokens(self, req: TokensRequest) -> dict:
        from engines.text.explore_tokens import tokenize

        source = self.source(req.model)
        return {"model": source.id, "name": source.name, **tokenize(source.tokenizer, req.text, chat=req.chat, system=req.system)}

    # -- embeddings -------------------------------------------------------
    def neighbours(self, req: NeighboursRequest) -> dict:
        source = self.source(req.model)
        return {"model": source.id, **source.space().neighbours(req.word, req.top)}

    def analogy(self, req: AnalogyRequest) -> dict:
        source = self.source(req.model)
        return {"model": source.id, **source.space().analogy(req.a, req.b, req.c, req.top)}

    def projection(self, req: ProjectionRequest) -> dict:
        source = self.source(req.model)
        return {"model": source.id, **source.space().projection(req.pairs)}

    # -- attention --------------------------------------------------------
    def attention_maps(self, req: AttentionRequest):
        from engines.text.explore_attention import attention_maps

        source = self.source(req.model)
        tokenizer = source.tokenizer
        with source.model_lock:  # one forward pass at a time per model
            return source, attention_maps(source.attention_model(), tokenizer, req.text, req.max_tokens)

    def attention(self, req: AttentionRequest) -> dict:
        import numpy as np

        source, maps = self.attention_maps(req)
        head = {"model": source.id, "tokens": maps.tokens, "ids": maps.ids, "layers": maps.layers, "heads": maps.heads}
        if req.format == "lists":
            return {**head, "attentions": maps.to_json()["attentions"]}
        data = np.ascontiguousarray(maps.weights, dtype="<f2").tobytes()
        return {**head, "shape": list(maps.weights.shape), "dtype": "float16",
                "data": base64.b64encode(data).decode("ascii")}

    # -- few-shot ---------------------------------------------------------
    @staticmethod
    def fewshot_tasks() -> dict:
        from engines.text.explore_fewshot import DEFAULT_KS, load_tasks

        return {"tasks": [t.to_dict() for t in load_tasks()], "ks": list(DEFAULT_KS)}

    @staticmethod
    def fewshot_prompt(req: FewShotPromptRequest) -> dict:
        from engines.text.explore_fewshot import Example, build_prompt

        examples = [Example(e["input"], e["output"]) for e in req.examples]
        return {"prompt": build_prompt(req.description, examples, req.query), "k": len(examples)}

    def fewshot_evaluate(self, req: FewShotEvalRequest, model_id: str, cancel: CancelToken) -> Iterator[Event]:
        """Runs on a worker thread: every completion goes through the text engine's loaded model."""
        from engines.core.events import Result
        from engines.text.explore_fewshot import evaluate, get_task

        task = get_task(req.task)

        def complete(prompt: str) -> dict:
            chat = ChatRequest(prompt=prompt, model=model_id, temperature=0.0, max_tokens=req.max_tokens, stop=["\n"],
                               seed=req.seed, repeat_penalty=1.0)
            result = None
            for event in self.text.chat(chat, cancel):
                if isinstance(event, Result):
                    result = event
            return dict(result.data) if result is not None else {}

        return evaluate(task, complete, cancel, req.ks, req.limit, req.seed)

    # -- code -> live page ------------------------------------------------
    def page(self, req: PageRequest, model_id: str, cancel: CancelToken) -> Iterator[Event]:
        from engines.text.explore_page import page_request, run_page

        chat = page_request(req.description, model_id, req.max_tokens, req.temperature, req.seed, req.request_id)
        return run_page(self.text, chat, cancel)

    def close(self) -> None:
        self.sources.drop(None)
