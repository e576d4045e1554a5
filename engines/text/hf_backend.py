"""transformers backend: HF folders, and GGUF files through a cached conversion.

Generation uses ``model.generate`` with a streamer that hands text pieces to the caller and
a stopping criterion that honours the cancel token between tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.content import text_only
from engines.core.devices import select_device
from engines.core.errors import ContextOverflowError, ModelFileError, OutOfMemoryError, RequestError, UnsupportedModelError
from engines.core.events import Event, Token
from engines.text.chat_template import PROBE, hf_template, render_checked, template_origin
from engines.text.context import fit_messages
from engines.core.requests.text import ChatRequest, LoadRequest
from engines.text.stats import ReplyTimer


def auto_dtype(device: str, requested: str):
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


class TransformersBackend:
    name = "transformers"

    def __init__(self, path: str, load: LoadRequest, *, is_gguf: bool) -> None:
        import torch

        self.path = path
        self.adapter = load.adapter
        self.template_origin = template_origin(load.chat_template, path)
        self.chat_template = hf_template(load.chat_template, path)
        self.template_label = load.chat_template or "tokenizer"
        self.device = select_device(load.device)
        self.dtype = auto_dtype(self.device, load.dtype)
        folder = path
        try:
            if is_gguf:
                from engines.text.hf_convert import ensure_converted

                folder = str(ensure_converted(path))
            self._load_weights(folder, load)
            if load.adapter:
                self.model = apply_adapter(self.model, load.adapter, path)
        except torch.OutOfMemoryError as exc:
            raise OutOfMemoryError(f"Not enough memory to load {path} on {self.device}.", path=path,
                                   hint="Use the llama.cpp backend with a quantised GGUF, or a smaller model.") from exc
        except (OSError, ValueError, KeyError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "does not recognize this architecture" in str(exc) or "model type" in str(exc):
                raise UnsupportedModelError(f"transformers cannot run {path}: {message}.", path=path,
                                            hint="Try the llama.cpp backend with a GGUF of this model.") from exc
            raise ModelFileError(f"transformers could not load {path}: {message}.", path=path,
                                 hint="Check the folder holds config.json, the weights (*.safetensors) and the tokenizer.") from exc
        self.model.to(self.device).eval()
        if self.chat_template is None and self.tokenizer.chat_template is None:
            raise UnsupportedModelError(f"{path} has no chat template in its tokenizer.", path=path,
                                        hint="Use an instruction-tuned model, or the Explore room's raw completion.")
        max_pos = _max_positions(self.model.config) or load.context_length
        self.n_ctx = min(load.context_length, max_pos)
        self._chat_ids(PROBE)  # a template that cannot render a plain exchange fails the load, not the first reply

    def _load_weights(self, folder: str, load: LoadRequest) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # A training run saves its tokenizer beside the adapter; it is the one the adapter learned with.
        adapter_tokenizer = load.adapter and (Path(load.adapter) / "tokenizer_config.json").is_file()
        self.tokenizer = AutoTokenizer.from_pretrained(load.adapter if adapter_tokenizer else folder, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=self.dtype, local_files_only=True)

    def info(self) -> dict:
        return {"backend": self.name, "context_length": self.n_ctx, "device": self.device,
                "dtype": str(self.dtype).replace("torch.", ""), "chat_template": self.template_label, "adapter": self.adapter}

    def _chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        out = render_checked(lambda: self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, chat_template=self.chat_template),
            self.template_origin)
        return list(out["input_ids"])

    def count_chat_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self._chat_ids(messages))

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _chat_inputs(self, request: ChatRequest) -> tuple[dict, int]:
        """The model's generate() inputs for the conversation under the overflow policy, and the turns dropped."""
        import torch

        messages, _, dropped = fit_messages(text_only(request.messages), self.count_chat_tokens, self.n_ctx,
                                            request.max_tokens, request.overflow)
        return {"input_ids": torch.tensor([self._chat_ids(messages)], device=self.device)}, dropped

    def generate(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        """Runs on the model's owner thread (see the note on the generate helper thread below)."""
        import queue
        import threading

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        refuse_llama_only_features(request)
        timer = ReplyTimer()
        dropped = 0
        if request.prompt is not None and not request.messages:
            ids = self.tokenizer.encode(request.prompt)
            if len(ids) >= self.n_ctx:
                raise ContextOverflowError(f"The prompt is {len(ids)} tokens; the model's context holds {self.n_ctx}.",
                                           hint="Shorten the prompt or load the model with a longer context.")
            inputs = {"input_ids": torch.tensor([ids], device=self.device)}
        else:
            inputs, dropped = self._chat_inputs(request)
            ids = inputs["input_ids"][0].tolist()
        inputs.setdefault("attention_mask", torch.ones(1, len(ids), dtype=torch.long, device=self.device))
        max_new = max(1, min(request.max_tokens, self.n_ctx - len(ids)))
        pieces: queue.Queue = queue.Queue()
        steps = 0

        class _Streamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    pieces.put(text)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                nonlocal steps
                steps += 1
                return torch.full((input_ids.shape[0],), cancel.cancelled, dtype=torch.bool, device=input_ids.device)

        sampling = request.temperature > 0
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new,
            do_sample=sampling,
            repetition_penalty=request.repeat_penalty,
            streamer=_Streamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True),
            stopping_criteria=StoppingCriteriaList([_Cancel()]),
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id,
        )
        if sampling:
            kwargs.update(temperature=request.temperature, top_p=request.top_p, top_k=request.top_k or None, min_p=request.min_p or None)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=self.tokenizer)
        if request.seed is not None:
            torch.manual_seed(request.seed)

        # generate() blocks; run it on a helper thread so this (owner) thread can yield tokens
        # as they arrive. The model is only touched by that one generate call at a time.
        result: dict = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["out"] = self.model.generate(**kwargs)
            except BaseException as exc:
                result["error"] = exc
            finally:
                pieces.put(None)

        worker = threading.Thread(target=run, name="hearth-hf-generate", daemon=True)
        worker.start()
        texts: list[str] = []
        index = 0
        while True:
            piece = pieces.get()
            if piece is None:
                break
            timer.token()
            texts.append(piece)
            yield Token(piece, index)
            index += 1
        worker.join()
        if "error" in result:
            exc = result["error"]
            if isinstance(exc, torch.OutOfMemoryError):
                raise OutOfMemoryError("Out of memory while generating.", hint="Shorten the conversation or max tokens.") from exc
            raise exc
        out_ids = result["out"][0][len(ids):].tolist()
        completion_tokens = len(out_ids)
        eos_ids = self.model.generation_config.eos_token_id
        eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
        ended_by_eos = bool(out_ids) and out_ids[-1] in eos_ids
        text = "".join(texts)
        if cancel.cancelled:
            finish = "cancelled"
        elif completion_tokens >= max_new and not ended_by_eos:
            finish = "length"
        else:
            finish = "stop"
        if request.stop:
            for s in request.stop:
                cut = text.find(s)
                if cut >= 0:
                    text = text[:cut]
        yield timer.result(finish, text, len(ids), completion_tokens, dropped_messages=dropped, backend=self.name)

    def close(self) -> None:
        from engines.core.devices import release_memory

        del self.model
        release_memory()


def _max_positions(config) -> int | None:
    text = getattr(config, "text_config", None)  # image-text-to-text configs nest the language model's
    return getattr(config, "max_position_embeddings", None) or getattr(text, "max_position_embeddings", None)


def refuse_llama_only_features(request: ChatRequest) -> None:
    """What needs llama.cpp's sampler (grammars, logprobs, OpenAI penalties) is a clear 400 here, not ignored."""
    fmt = request.response_format
    asked = [name for name, on in (
        (f"response_format {fmt.get('type') if fmt else ''}", fmt is not None and fmt.get("type") != "text"),
        ("tools", bool(request.tools) and request.tool_choice != "none"),
        ("logprobs", request.logprobs is not None),
        ("presence_penalty", bool(request.presence_penalty)),
        ("frequency_penalty", bool(request.frequency_penalty)),
    ) if on]
    if asked:
        raise RequestError(f"The transformers backend does not support {', '.join(asked)}.",
                           hint="Load the model's GGUF on the llama.cpp backend for grammar-constrained output, tool "
                                "calls, logprobs and presence/frequency penalties.")


def apply_adapter(model, adapter_dir: str, base_path: str):
    """``model`` with the PEFT adapter in ``adapter_dir`` merged into its weights (as fast as the base model)."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as exc:  # wrong shapes or module names: another base model
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"The adapter in {adapter_dir} does not fit the model {base_path}: {message}.", path=adapter_dir,
                             hint="Load the adapter with the base model it was trained on.") from exc


def is_gguf_path(path: str) -> bool:
    return Path(path).suffix.lower() == ".gguf"
