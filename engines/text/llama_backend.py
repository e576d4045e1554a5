"""llama.cpp backend (GGUF) on llama-cpp-python.

The chat template comes from the GGUF metadata through llama-cpp-python's
``Jinja2ChatFormatter``; we render the prompt ourselves (instead of calling
``create_chat_completion``) so we can count its tokens and apply the overflow policy before
generating. KV-cache prefix reuse: ``Llama.generate`` keeps the evaluated prefix between calls
on the same object, and a ``LlamaRAMCache`` keeps recent conversations' states when the user
switches between chats.
"""
from __future__ import annotations

import os
from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.errors import ModelFileError, OutOfMemoryError
from engines.core.events import Event, Token
from engines.text.context import fit_messages
from engines.text.request import ChatRequest, LoadRequest
from engines.text.stats import ReplyTimer

# Used when a GGUF carries no chat template.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
RAM_CACHE_BYTES = 512 * 1024 * 1024


class LlamaBackend:
    name = "llama"

    def __init__(self, path: str, load: LoadRequest) -> None:
        from llama_cpp import Llama, LlamaRAMCache
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self.llm = Llama(
                model_path=path,
                n_ctx=load.context_length,
                n_gpu_layers=load.gpu_layers,
                n_threads=int(os.environ.get("HEARTH_THREADS", "0")) or None,
                verbose=False,
            )
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
        template = self.llm.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        self.template_source = "gguf" if "tokenizer.chat_template" in self.llm.metadata else "chatml-fallback"
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                             stop_token_ids=[eos_id] if eos_id != -1 else None)
        self.llm.set_cache(LlamaRAMCache(capacity_bytes=RAM_CACHE_BYTES))

    def info(self) -> dict:
        return {"backend": self.name, "context_length": self.n_ctx, "chat_template": self.template_source,
                "gpu_offload": self._gpu_offload()}

    def _gpu_offload(self) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())

    # -- prompt -----------------------------------------------------------
    def _render(self, messages: list[dict[str, str]]):
        return self.formatter(messages=messages)

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

        timer = ReplyTimer()
        dropped = 0
        stop = list(request.stop)
        criteria = []
        if request.prompt is not None and not request.messages:
            prompt_tokens = self.llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            messages, _, dropped = fit_messages(request.messages, self.count_chat_tokens, self.n_ctx, request.max_tokens, request.overflow)
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
        stream = self.llm.create_completion(
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
        )
        pieces: list[str] = []
        finish = "stop"
        try:
            for index, chunk in enumerate(stream):
                choice = chunk["choices"][0]
                text = choice["text"]
                if text:
                    timer.token()
                    pieces.append(text)
                    yield Token(text, index)
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
        yield timer.result(finish, return_text, n_prompt, completion_tokens, dropped_messages=dropped, backend=self.name)

    def close(self) -> None:
        self.llm.close()
