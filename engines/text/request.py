"""What a text job needs, as JSON-serialisable dataclasses (stdlib only)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engines.core.errors import RequestError
from engines.core.requests import from_json

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
OVERFLOW_POLICIES = ("stop", "truncate")
BACKENDS = ("auto", "llama", "transformers")


@dataclass
class LoadRequest:
    model: str = "default"
    backend: str = "auto"
    context_length: int = 4096
    gpu_layers: int = -1  # llama.cpp: -1 = all layers on the GPU when there is one
    device: str = "auto"  # transformers: auto | cpu | cuda | mps
    dtype: str = "auto"  # transformers: auto (bf16/fp16 on GPU, fp32 on CPU) | float32 | float16 | bfloat16
    adapter: str = ""  # a PEFT adapter folder written by a Hearth training run, applied on top of ``model``

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise RequestError(f"Field 'backend' is {self.backend!r}.", hint=f"Use one of {', '.join(BACKENDS)}.")
        if not isinstance(self.adapter, str):
            raise RequestError(f"Field 'adapter' is {self.adapter!r}.", hint="Use the path of an adapter folder, or leave it out.")
        if self.adapter and self.backend == "llama":
            raise RequestError("Adapters need the transformers backend; llama.cpp cannot apply a PEFT adapter.",
                               hint="Choose backend 'transformers' (or 'auto') to load the adapter, or merge it first.")
        if not isinstance(self.context_length, int) or not 128 <= self.context_length <= 1_048_576:
            raise RequestError(f"Field 'context_length' is {self.context_length!r}.", hint="Use a number of tokens between 128 and 1048576.")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise RequestError(f"Field 'dtype' is {self.dtype!r}.", hint="Use auto, float32, float16 or bfloat16.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadRequest":
        return from_json(cls, data, "load request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ChatRequest:
    """One reply. ``messages`` are OpenAI-style ``{"role", "content"}`` dicts.

    With ``prompt`` set (and no messages) the text is completed as-is, without a chat template.
    """

    messages: list[dict[str, str]] = field(default_factory=list)
    prompt: str | None = None
    model: str = "default"
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    overflow: str = "truncate"  # stop | truncate (drop oldest turns, keep the system prompt)
    conversation_id: str = ""
    request_id: str = ""

    def validate(self) -> None:
        if self.prompt is None and not self.messages:
            raise RequestError("The request has no 'messages' (and no 'prompt').", hint="Send at least one user message.")
        for i, m in enumerate(self.messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
                raise RequestError(f"messages[{i}] needs 'role' (system, user or assistant) and a text 'content'.")
        checks = (
            ("temperature", 0.0 <= self.temperature <= 5.0, "between 0 and 5"),
            ("top_p", 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "0 (off) or more"),
            ("min_p", 0.0 <= self.min_p < 1.0, "in [0, 1)"),
            ("repeat_penalty", 0.0 < self.repeat_penalty <= 5.0, "in (0, 5]"),
            ("max_tokens", isinstance(self.max_tokens, int) and self.max_tokens >= 1, "1 or more"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise RequestError(f"Field '{name}' is {getattr(self, name)!r}.", hint=f"It must be {expected}.")
        if self.overflow not in OVERFLOW_POLICIES:
            raise RequestError(f"Field 'overflow' is {self.overflow!r}.", hint="Use 'stop' or 'truncate'.")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if not all(isinstance(s, str) and s for s in self.stop):
            raise RequestError("Field 'stop' must be a list of non-empty strings.")
        if self.seed is not None and not isinstance(self.seed, int):
            raise RequestError(f"Field 'seed' is {self.seed!r}.", hint="Use a whole number or leave it out.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChatRequest":
        return from_json(cls, data, "chat request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
