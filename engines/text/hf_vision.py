"""Image chat on transformers: image-text-to-text folders (LLaVA, Qwen2-VL, Idefics3/SmolVLM, Gemma 3 ...).

``AutoModelForImageTextToText`` with the folder's ``AutoProcessor``: the processor's chat template places the
image tokens and its image processor makes the pixel values, so the prompt is the model's own. Generation,
streaming, cancel and statistics are the text backend's; only the inputs differ.
"""
from __future__ import annotations

from engines.core.content import text_of
from engines.text.context import fit_messages
from engines.text.hf_backend import TransformersBackend
from engines.text.images import ChatImage, chat_images
from engines.core.requests.text import ChatRequest, LoadRequest


class VisionTransformersBackend(TransformersBackend):
    def _load_weights(self, folder: str, load: LoadRequest) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        self.tokenizer = self.processor.tokenizer
        if self.tokenizer.chat_template is None:
            self.tokenizer.chat_template = getattr(self.processor, "chat_template", None)
        self.model = AutoModelForImageTextToText.from_pretrained(folder, dtype=self.dtype, local_files_only=True)

    def info(self) -> dict:
        return {**super().info(), "vision": True}

    def _processor_inputs(self, messages: list[dict], tensors: bool):
        # Processor templates read a list of typed parts in every message.
        parts = [{**m, "content": [{"type": "image", "image": p["image"].pixels} if isinstance(p.get("image"), ChatImage)
                                   else {"type": "text", "text": text_of([p])} for p in m["content"]]
                  if isinstance(m.get("content"), list) else [{"type": "text", "text": m.get("content") or ""}]}
                 for m in messages]
        extra = {"return_tensors": "pt"} if tensors else {}
        return self.processor.apply_chat_template(parts, add_generation_prompt=True, tokenize=True, return_dict=True,
                                                  chat_template=self.chat_template, **extra)

    def _chat_ids(self, messages: list[dict]) -> list[int]:
        from engines.text.chat_template import render_checked

        ids = render_checked(lambda: self._processor_inputs(messages, tensors=False), self.template_origin)["input_ids"]
        return list(ids[0] if ids and isinstance(ids[0], list) else ids)

    def _chat_inputs(self, request: ChatRequest) -> tuple[dict, int]:
        images = chat_images(request.messages)
        note = f"Its {len(images)} image(s) are part of them." if images else ""
        messages, _, dropped = fit_messages(request.messages, self.count_chat_tokens, self.n_ctx, request.max_tokens,
                                            request.overflow, note)
        inputs = self._processor_inputs(messages, tensors=True)
        out = {}
        for key, value in inputs.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            out[key] = value
        return out, dropped
