"""The calls that answer the Explore room's requests.

One place for the engine host's ``/hearth/explore/...`` endpoints and the ``explore`` CLI, so
both run the same code. Each request is a JSON-able dataclass from ``engines.core.requests.explore``
(the GUI builds the same ones); each answer a JSON-able dict.
"""
from __future__ import annotations

import base64
from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.events import Event
from engines.core.requests.explore import (
    AnalogyRequest, AttentionRequest, FewShotEvalRequest, FewShotPromptRequest, NeighboursRequest, PageRequest,
    ProjectionRequest, TokensRequest,
)
from engines.core.requests.text import ChatRequest
from engines.text.explore_source import ExploreSource, ExploreSources


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
        from engines.core.requests.explore import DEFAULT_KS
        from engines.text.explore_fewshot import load_tasks

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
