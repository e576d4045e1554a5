"""Sentence embeddings (``/v1/embeddings``) from a GGUF on llama.cpp.

A chat ``Llama`` cannot embed (llama.cpp wants ``embedding=True`` at creation), so each GGUF asked for
embeddings gets its own small embedding instance, mean-pooled and unit-normalised, on its own owner thread.
"""
from __future__ import annotations

import base64
import os
import struct
import threading

from engines.core.errors import UnsupportedModelError
from engines.core.requests.text import EmbeddingRequest
from engines.text.owner import ModelOwner

EMBED_CONTEXT = 2048  # tokens per input; longer inputs are cut to this (usage counts what was embedded)


class EmbeddingService:
    def __init__(self) -> None:
        self._models: dict[str, tuple[ModelOwner, object]] = {}
        self._lock = threading.Lock()

    def _instance(self, model: str) -> tuple[str, ModelOwner, object]:
        from engines.models import resolve_model

        entry = resolve_model(model)
        if entry.format != "gguf":
            raise UnsupportedModelError(f"Embeddings run on llama.cpp, and {entry.path} is a {entry.format} model.",
                                        path=entry.path, hint="Ask for embeddings from a GGUF model (the bundled 'default' is one).")
        with self._lock:
            if entry.id in self._models:
                return (entry.id, *self._models[entry.id])
        owner = ModelOwner("embeddings")
        try:
            llm = owner.call(lambda: _open(entry.path))
        except BaseException:
            owner.close()
            raise
        with self._lock:
            self._models[entry.id] = (owner, llm)
        return entry.id, owner, llm

    def embed(self, request: EmbeddingRequest) -> dict:
        model_id, owner, llm = self._instance(request.model)
        vectors, count = owner.call(lambda: llm.embed(request.inputs, normalize=True, truncate=True, return_count=True))
        data = []
        for index, vector in enumerate(vectors):
            if request.encoding_format == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
                data.append({"object": "embedding", "index": index, "embedding": encoded})
            else:
                data.append({"object": "embedding", "index": index, "embedding": [float(x) for x in vector]})
        return {"object": "list", "data": data, "model": request.model or model_id,
                "usage": {"prompt_tokens": count, "total_tokens": count}}

    def unload(self, model_id: str | None = None) -> list[str]:
        with self._lock:
            names = [m for m in self._models if model_id is None or m == model_id]
            victims = [(name, self._models.pop(name)) for name in names]
        for _, (owner, llm) in victims:
            try:
                owner.call(llm.close)
            finally:
                owner.close()
        return [name for name, _ in victims]

    def close(self) -> None:
        self.unload(None)


def _open(path: str):
    import llama_cpp

    from engines.text.chat_template import open_llama

    return open_llama(path, False, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, n_ctx=EMBED_CONTEXT,
                 n_batch=EMBED_CONTEXT, n_ubatch=EMBED_CONTEXT, n_threads=int(os.environ.get("HEARTH_THREADS", "0")) or None,
                 verbose=False)
