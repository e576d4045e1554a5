"""llama.cpp backend (GGUF) on llama-cpp-python.

The chat template is the GGUF's own (llama-cpp-python's ``Jinja2ChatFormatter``) or the one the
user chose (engines.text.chat_template); we render the prompt ourselves (instead of calling
``create_chat_completion``) so we can count its tokens and apply the overflow policy before
generating. OpenAI extras ride on ``create_completion``: grammars for structured output and
forced tool calls, presence/frequency penalties, logprobs. KV-cache prefix reuse: ``Llama.generate`` keeps the evaluated prefix between calls
on the same object, and a ``LlamaRAMCache`` keeps recent conversations' states when the user
switches between chats.
"""
from __future__ import annotations

import os
from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.content import has_images
from engines.core.errors import ModelFileError, OutOfMemoryError, RequestError
from engines.core.events import Event, Token
from engines.text.chat_template import PROBE, hf_template, llama_formatter, open_llama, render_checked, template_origin
from engines.text.context import fit_messages
from engines.core.requests.text import ChatRequest, LoadRequest
from engines.text.stats import ReplyTimer
from engines.text.tools import forced_call_schema, parse_tool_calls, template_messages

RAM_CACHE_BYTES = 512 * 1024 * 1024


class LlamaBackend:
    name = "llama"

    def __init__(self, path: str, load: LoadRequest, mmproj: str = "") -> None:
        from llama_cpp import LlamaRAMCache

        self._options = dict(n_ctx=load.context_length, n_gpu_layers=load.gpu_layers,
                             n_threads=int(os.environ.get("HEARTH_THREADS", "0")) or None, verbose=False)
        self._chat_template = load.chat_template
        self._scorer = None
        try:
            self.llm = open_llama(path, not load.chat_template, **self._options)
        except (ValueError, RuntimeError, OSError) as exc:
            message = str(exc)
            if "alloc" in message.lower() or "memory" in message.lower():
                raise OutOfMemoryError(f"llama.cpp could not allocate memory for {path}: {message}.", path=path,
                                       hint="Choose a smaller quantisation, fewer GPU layers or a shorter context.") from exc
            raise ModelFileError(f"llama.cpp could not load {path}: {message}.", path=path,
                                 hint="Check that the file is a complete GGUF model for a supported architecture.") from exc
        self.path = path
        self.n_ctx = self.llm.n_ctx()
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        eos = self.llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = self.llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        try:
            self.template_origin = template_origin(load.chat_template, path)
            self.formatter, self.template_source = llama_formatter(load.chat_template, self.llm.metadata, eos, bos, eos_id, path)
            self._render(PROBE)  # a template that cannot render a plain exchange fails the load, not the first reply
            self._init_vision(mmproj)
        except BaseException:
            self.llm.close()
            raise
        self.llm.set_cache(LlamaRAMCache(capacity_bytes=RAM_CACHE_BYTES))

    def _init_vision(self, mmproj: str) -> None:
        self.mmproj, self.handler, self.handler_name = mmproj, None, ""
        if not mmproj:
            return
        from engines.models.gguf_file import read_gguf
        from engines.text import llama_vision

        # A chosen Jinja template (chatml or a .jinja file) renders image turns too; llama3/gemma are formatter
        # functions, so image turns keep the model's own template there.
        choice = self._chat_template
        template = hf_template(choice, self.path) if choice == "chatml" or choice.lower().endswith(".jinja") else None
        metadata = {**self.llm.metadata, **({"tokenizer.chat_template": template} if template else {})}
        self.handler_name = llama_vision.choose_handler(metadata, read_gguf(mmproj).metadata,
                                                        (os.path.basename(self.path), os.path.basename(mmproj)))
        self.handler = llama_vision.make_handler(self.handler_name, mmproj, template)
        llama_vision.init_context(self.handler, self.llm, self.path, mmproj)
        self.image_tokens = llama_vision.ImageTokenCounter(self.handler)

    def info(self) -> dict:
        vision = {"vision": True, "mmproj": self.mmproj, "vision_handler": self.handler_name} if self.handler else {"vision": False}
        return {"backend": self.name, "context_length": self.n_ctx, "chat_template": self.template_source,
                "gpu_offload": self._gpu_offload(), **vision}

    def _gpu_offload(self) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())

    # -- prompt -----------------------------------------------------------
    def _render(self, messages: list[dict], **extra):
        return render_checked(lambda: self.formatter(messages=messages, **extra), self.template_origin)

    def _tokens(self, rendered) -> list[int]:
        return self.llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def count_chat_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self._tokens(self._render(messages)))

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    # -- generation -------------------------------------------------------
    def generate(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        """Runs on the model's owner thread."""
        from llama_cpp import StoppingCriteriaList

        if has_images(request.messages):
            from engines.text.llama_vision import generate_with_images

            yield from generate_with_images(self, request, cancel, output_grammar(request))
            return
        timer = ReplyTimer()
        dropped = 0
        stop = list(request.stop)
        criteria = []
        if request.prompt is not None and not request.messages:
            prompt_tokens = self.llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            messages, _, dropped = fit_messages(template_messages(request), self.count_chat_tokens, self.n_ctx,
                                                request.max_tokens, request.overflow)
            rendered = self._render(messages)
            prompt_tokens = self._tokens(rendered)
            if rendered.stop:
                stop += rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
            if rendered.stopping_criteria is not None:
                criteria.append(rendered.stopping_criteria)
        if len(prompt_tokens) >= self.n_ctx:
            from engines.core.errors import ContextOverflowError

            raise ContextOverflowError(f"The prompt is {len(prompt_tokens)} tokens; the model's context holds {self.n_ctx}.",
                                       hint="Shorten the prompt or load the model with a longer context.")

        n_prompt = len(prompt_tokens)
        sampled = 0
        stopped_by_cancel = False

        def count_and_cancel(input_ids, logits) -> bool:
            # llama.cpp calls this once per sampled token with the ids before it, and once more
            # after the loop; the longest ids seen give the exact count of sampled tokens
            # (the end-of-turn token included). Stop takes effect before the next token.
            nonlocal sampled, stopped_by_cancel
            sampled = max(sampled, len(input_ids) - n_prompt + 1)
            if cancel.cancelled:
                stopped_by_cancel = True
            return cancel.cancelled

        criteria.append(count_and_cancel)
        llm = self.llm if request.logprobs is None else self._logprobs_llm()
        stream = llm.create_completion(
            prompt=prompt_tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            min_p=request.min_p,
            repeat_penalty=request.repeat_penalty,
            seed=request.seed,
            stop=stop,
            stream=True,
            stopping_criteria=StoppingCriteriaList(criteria),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            grammar=output_grammar(request),
            logprobs=request.logprobs,
        )
        pieces: list[str] = []
        all_logprobs: list[dict] | None = [] if request.logprobs is not None else None
        finish = "stop"
        try:
            for index, chunk in enumerate(stream):
                choice = chunk["choices"][0]
                text = choice["text"]
                entries = token_logprobs(choice.get("logprobs"), request.logprobs)
                if entries and all_logprobs is not None:
                    all_logprobs.extend(entries)
                if text:
                    timer.token()
                    pieces.append(text)
                    yield Token(text, index, entries)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if cancel.cancelled:
                    break
        finally:
            stream.close()
        if cancel.cancelled:
            finish = "cancelled"
        return_text = "".join(pieces)
        # A token sampled after Stop was pressed is thrown away, not shown.
        completion_tokens = max(0, sampled - 1) if stopped_by_cancel else sampled
        extra: dict = {} if all_logprobs is None else {"logprobs": all_logprobs}
        calls = parse_tool_calls(return_text, request)
        if calls:
            extra["tool_calls"] = calls
        yield timer.result(finish, return_text, n_prompt, completion_tokens, dropped_messages=dropped, backend=self.name,
                           **extra)

    def _logprobs_llm(self):
        """llama-cpp-python reports logprobs only from a Llama that keeps the logits of every position (n_ctx x
        vocabulary floats: 400 MB for the bundled model at 2048 tokens), so that second instance of the same file
        is made on the first request that asks for logprobs, not at load."""
        if self._scorer is None:
            self._scorer = open_llama(self.path, not self._chat_template, logits_all=True, **self._options)
        return self._scorer

    def close(self) -> None:
        self.llm.close()
        if self._scorer is not None:
            self._scorer.close()


def token_logprobs(chunk: dict | None, top: int | None) -> list[dict] | None:
    """llama-cpp-python's completion logprobs (parallel lists) as OpenAI's chat entries."""
    if not chunk or top is None:
        return None
    out = []
    for token, logprob, alternatives in zip(chunk["tokens"], chunk["token_logprobs"], chunk["top_logprobs"]):
        ranked = sorted((alternatives or {}).items(), key=lambda kv: kv[1], reverse=True)[:top]
        out.append({"token": token, "logprob": float(logprob), "bytes": list(token.encode("utf-8")),
                    "top_logprobs": [{"token": t, "logprob": float(lp), "bytes": list(t.encode("utf-8"))} for t, lp in ranked]})
    return out


def output_grammar(request: ChatRequest):
    """The grammar that constrains the reply: a forced tool call's schema, a response_format's JSON schema, or
    any JSON object (llama-cpp-python compiles JSON schemas to GBNF)."""
    import json

    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    schema = forced_call_schema(request)
    fmt = request.response_format or {}
    if schema is None and fmt.get("type") == "json_schema":
        schema = fmt["json_schema"]["schema"]
    try:
        if schema is not None:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        if fmt.get("type") == "json_object":
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    except Exception as exc:  # noqa: BLE001 - the converter asserts on schemas it cannot read; the schema is the user's
        raise RequestError(f"The JSON schema cannot be turned into a grammar: {type(exc).__name__}: {exc}.",
                           hint="Simplify the schema (types, properties, required, enum, anyOf, arrays work).") from exc
    return None
