"""What a text job needs (loading a model, a chat reply, embeddings), as JSON-serialisable dataclasses (stdlib only: the
GUI builds them too)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engines.core import chat_templates
from engines.core.content import check_content, image_parts
from engines.core.errors import RequestError
from engines.core.requests import from_json

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
OVERFLOW_POLICIES = ("stop", "truncate")
BACKENDS = ("auto", "llama", "transformers")
DEVICES = ("auto", "cpu", "cuda", "mps")  # transformers
ROLES = ("system", "user", "assistant", "tool")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("auto", "none", "required")
MAX_TOP_LOGPROBS = 20
MAX_EMBEDDING_INPUTS = 2048


@dataclass
class LoadRequest:
    model: str = "default"
    backend: str = "auto"
    context_length: int = 4096
    gpu_layers: int = -1  # llama.cpp: -1 = all layers on the GPU when there is one
    device: str = "auto"  # transformers: auto | cpu | cuda | mps
    dtype: str = "auto"  # transformers: auto (bf16/fp16 on GPU, fp32 on CPU) | float32 | float16 | bfloat16
    adapter: str = ""  # a PEFT adapter folder written by a Hearth training run, applied on top of ``model``
    chat_template: str = ""  # "" = the model file's own | chatml | llama3 | gemma | path to a .jinja file
    mmproj: str = ""  # llama.cpp: the vision projector (mmproj*.gguf) to pair with the model; "" = one beside it, if any

    def validate(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise RequestError(f"Field 'model' is {self.model!r}.", hint="Use 'default', a model path or a model id.")
        if not chat_templates.is_choice(self.chat_template):
            raise RequestError(f"Field 'chat_template' is {self.chat_template!r}.",
                               hint=f"Leave it empty for the model's own, or use {', '.join(chat_templates.NAMES)} or the path of a .jinja file.")
        if not isinstance(self.mmproj, str):
            raise RequestError(f"Field 'mmproj' is {self.mmproj!r}.", hint="Use the path of an mmproj .gguf file, or leave it out.")
        if self.mmproj and self.backend == "transformers":
            raise RequestError("Field 'mmproj' pairs a GGUF with its vision projector for llama.cpp; the transformers "
                               "backend reads the vision tower from the model folder.", hint="Leave 'mmproj' out, or choose backend 'llama'.")
        if self.backend not in BACKENDS:
            raise RequestError(f"Field 'backend' is {self.backend!r}.", hint=f"Use one of {', '.join(BACKENDS)}.")
        if not isinstance(self.adapter, str):
            raise RequestError(f"Field 'adapter' is {self.adapter!r}.", hint="Use the path of an adapter folder, or leave it out.")
        if self.adapter and self.backend == "llama":
            raise RequestError("Adapters need the transformers backend; llama.cpp cannot apply a PEFT adapter.",
                               hint="Choose backend 'transformers' (or 'auto') to load the adapter, or merge it first.")
        if not isinstance(self.gpu_layers, int) or self.gpu_layers < -1:
            raise RequestError(f"Field 'gpu_layers' is {self.gpu_layers!r}.", hint="Use -1 (all), 0 (CPU only) or a number of layers.")
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
    """One reply. ``messages`` are OpenAI-style ``{"role", "content"}`` dicts; a content is text or a list of
    parts (text and images, see engines.core.content).

    With ``prompt`` set (and no messages) the text is completed as-is, without a chat template.
    """

    messages: list[dict[str, Any]] = field(default_factory=list)
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
    # OpenAI features (see engines/host/API.md for which backend runs which).
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_format: dict[str, Any] | None = None  # {"type": "text" | "json_object" | "json_schema", "json_schema": {"schema"}}
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{"type": "function", "function": {"name", "parameters"}}]
    tool_choice: str | dict[str, Any] = "auto"  # auto | none | required | {"type": "function", "function": {"name"}}
    logprobs: int | None = None  # None: off; N: the chosen token's logprob and the N most likely alternatives

    def validate(self) -> None:
        if self.prompt is None and not self.messages:
            raise RequestError("The request has no 'messages' (and no 'prompt').", hint="Send at least one user message.")
        if self.prompt is not None and not self.messages and (not isinstance(self.prompt, str) or not self.prompt):
            raise RequestError(f"Field 'prompt' is {self.prompt!r}.", hint="Send the text to complete.")
        for i, m in enumerate(self.messages):
            _check_message(i, m)
        number = (int, float)
        checks = (
            ("temperature", isinstance(self.temperature, number) and 0.0 <= self.temperature <= 5.0, "between 0 and 5"),
            ("top_p", isinstance(self.top_p, number) and 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "0 (off) or more"),
            ("min_p", isinstance(self.min_p, number) and 0.0 <= self.min_p < 1.0, "in [0, 1)"),
            ("repeat_penalty", isinstance(self.repeat_penalty, number) and 0.0 < self.repeat_penalty <= 5.0, "in (0, 5]"),
            ("max_tokens", isinstance(self.max_tokens, int) and self.max_tokens >= 1, "1 or more"),
            ("presence_penalty", isinstance(self.presence_penalty, number) and -2.0 <= self.presence_penalty <= 2.0,
             "between -2 and 2"),
            ("frequency_penalty", isinstance(self.frequency_penalty, number) and -2.0 <= self.frequency_penalty <= 2.0,
             "between -2 and 2"),
            ("logprobs", self.logprobs is None or (isinstance(self.logprobs, int) and 0 <= self.logprobs <= MAX_TOP_LOGPROBS),
             f"from 0 to {MAX_TOP_LOGPROBS} alternatives (or null for none)"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise RequestError(f"Field '{name}' is {getattr(self, name)!r}.", hint=f"It must be {expected}.")
        self._check_structured_output()
        if self.overflow not in OVERFLOW_POLICIES:
            raise RequestError(f"Field 'overflow' is {self.overflow!r}.", hint="Use 'stop' or 'truncate'.")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if not all(isinstance(s, str) and s for s in self.stop):
            raise RequestError("Field 'stop' must be a list of non-empty strings.")
        if self.seed is not None and not isinstance(self.seed, int):
            raise RequestError(f"Field 'seed' is {self.seed!r}.", hint="Use a whole number or leave it out.")

    def _check_structured_output(self) -> None:
        fmt = self.response_format
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") not in RESPONSE_FORMATS:
                raise RequestError(f"Field 'response_format' is {fmt!r}.",
                                   hint='Use {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}.')
            if fmt["type"] == "json_schema":
                spec = fmt.get("json_schema")
                if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                    raise RequestError("Field 'response_format' has type json_schema but no 'json_schema': {'schema': {...}}.")
        if not isinstance(self.tools, list):
            raise RequestError(f"Field 'tools' is {self.tools!r}.", hint="Use a list of {'type': 'function', 'function': {...}}.")
        names = []
        for i, tool in enumerate(self.tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (not isinstance(function, dict) or tool.get("type", "function") != "function"
                    or not isinstance(function.get("name"), str) or not function["name"]
                    or not isinstance(function.get("parameters", {}), dict)):
                raise RequestError(f"Field 'tools[{i}]' is not a function tool.",
                                   hint="Use {'type': 'function', 'function': {'name': ..., 'parameters': {JSON schema}}}.")
            names.append(function["name"])
        choice = self.tool_choice
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
            if name not in names:
                raise RequestError(f"Field 'tool_choice' names the function {name!r}, which is not in 'tools'.")
        elif choice not in TOOL_CHOICES:
            raise RequestError(f"Field 'tool_choice' is {choice!r}.", hint="Use auto, none, required or {'type': 'function', 'function': {'name': ...}}.")
        elif choice == "required" and not names:
            raise RequestError("Field 'tool_choice' is 'required' but 'tools' is empty.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChatRequest":
        if isinstance(data, dict) and isinstance(data.get("stop"), str):
            data = {**data, "stop": [data["stop"]]}
        return from_json(cls, data, "chat request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EmbeddingRequest:
    """``/v1/embeddings``: one vector per input text."""

    input: str | list[str] = field(default_factory=list)
    model: str = "default"
    encoding_format: str = "float"  # float | base64 (little-endian float32, as OpenAI sends it)
    dimensions: int | None = None
    user: str = ""

    def validate(self) -> None:
        inputs = [self.input] if isinstance(self.input, str) else self.input
        if not inputs or len(inputs) > MAX_EMBEDDING_INPUTS or not all(isinstance(i, str) and i for i in inputs):
            raise RequestError(f"Field 'input' is {self.input!r}"[:120] + ".",
                               hint=f"Send a non-empty string or a list of 1 to {MAX_EMBEDDING_INPUTS} non-empty strings.")
        if self.encoding_format not in ("float", "base64"):
            raise RequestError(f"Field 'encoding_format' is {self.encoding_format!r}.", hint="Use float or base64.")
        if self.dimensions is not None:
            raise RequestError("Field 'dimensions' is not supported: the model's embedding size is fixed.")

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EmbeddingRequest":
        return from_json(cls, data, "embedding request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_message(index: int, message: Any) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise RequestError(f"Field '{where}' needs a 'role' ({', '.join(ROLES)}).")
    content, calls = message.get("content"), message.get("tool_calls")
    if calls is not None:
        if message["role"] != "assistant" or not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function"), dict) and isinstance(c["function"].get("name"), str)
                for c in calls):
            raise RequestError(f"Field '{where}' has 'tool_calls' that are not assistant function calls.")
        if content is not None and not isinstance(content, str):
            raise RequestError(f"Field '{where}' has a 'content' that is not text.")
    elif isinstance(content, list):
        check_content(f"{where}.content", content, local=True)
        if message["role"] != "user" and image_parts(content):
            raise RequestError(f"Field '{where}' is a {message['role']} message with images.", hint="Put images in user messages.")
    elif not isinstance(content, str):
        raise RequestError(f"Field '{where}' needs a 'content': text or a list of content parts.")
