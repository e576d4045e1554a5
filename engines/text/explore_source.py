"""What the Explore room reads from a text model: its tokenizer, its input-embedding matrix and,
on demand, a transformers copy of it with eager attention (so attention weights can be returned).

Works for any model the registry resolves. A GGUF file is read directly (tokenizer from its
metadata, embeddings dequantised with ``gguf``) until attention is asked for; then it goes
through the cached transformers conversion (``hf_convert``), which later loads reuse.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from engines.core.errors import HearthError, ModelFileError, UnsupportedModelError

# Names of the input-embedding tensor in the safetensors of common causal LMs.
EMBEDDING_KEYS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight", "embed_in.weight", "tok_embeddings.weight")
GGUF_EMBEDDING = "token_embd.weight"


def model_file(entry) -> Path:
    """The .gguf file or the model folder behind a registry entry."""
    path = Path(entry.path)
    if entry.gguf_file and not path.is_file():
        path = path / entry.gguf_file
    return path


class ExploreSource:
    """One model's tokenizer, embeddings and attention model, each loaded on first use."""

    def __init__(self, entry) -> None:
        self.entry = entry
        self.id = entry.id
        self.name = entry.name
        self.path = model_file(entry)
        self.is_gguf = entry.format == "gguf"
        if entry.format == "safetensors":
            raise UnsupportedModelError(
                f"{self.path} is a single .safetensors file; Explore needs its config and tokenizer.", path=self.path,
                hint="Choose the model's folder (config.json, tokenizer and *.safetensors) or a GGUF file.")
        self._lock = threading.RLock()  # tokenizer and embeddings
        # The attention model has its own lock: its first load can take a minute (converting a
        # GGUF) and must not hold up tokenizing for the other views meanwhile.
        self.model_lock = threading.RLock()
        self._tokenizer = None
        self._embeddings = None
        self._model = None
        self._space = None
        self._texts: list[str] | None = None

    # -- folders ------------------------------------------------------
    def _converted(self) -> Path | None:
        """The cached transformers folder of a GGUF, if it has been made already."""
        from engines.text.hf_convert import converted_dir

        folder = converted_dir(self.path)
        return folder if (folder / "config.json").exists() and (folder / "model.safetensors").exists() else None

    def _folder(self, convert: bool) -> Path | None:
        if not self.is_gguf:
            return self.path
        if convert:
            from engines.text.hf_convert import ensure_converted

            return ensure_converted(self.path)
        return self._converted()

    # -- tokenizer ----------------------------------------------------
    @property
    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                folder = self._folder(convert=False)
                try:
                    if folder is not None:
                        self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                    else:
                        self._tokenizer = AutoTokenizer.from_pretrained(str(self.path.parent), gguf_file=self.path.name,
                                                                       local_files_only=True)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise ModelFileError(f"The tokenizer of {self.path} could not be read: {_first_line(exc)}.",
                                         path=self.path, hint="Explore needs a model with a Hugging Face tokenizer "
                                         "(tokenizer.json) or a GGUF with tokenizer metadata.") from exc
            return self._tokenizer

    def token_texts(self) -> list[str]:
        """Every vocabulary entry as the text it stands for (a leading space where it starts a word)."""
        with self._lock:
            if self._texts is None:
                self._texts = vocabulary_texts(self.tokenizer)
            return self._texts

    # -- embeddings ---------------------------------------------------
    def embedding_matrix(self):
        """The input-embedding matrix as float32 numpy, one row per token id."""
        with self._lock:
            if self._embeddings is None:
                folder = self._folder(convert=False)
                matrix = _gguf_embeddings(self.path) if folder is None else _folder_embeddings(folder)
                self._embeddings = matrix
            return self._embeddings

    def space(self):
        """The embedding space (normalised rows, word lookup) for neighbours, analogies and plots."""
        from engines.text.explore_embeddings import EmbeddingSpace

        with self._lock:
            if self._space is None:
                tok = self.tokenizer
                self._space = EmbeddingSpace(self.embedding_matrix(), self.token_texts(),
                                             lambda s: tok.encode(s, add_special_tokens=False),
                                             special_ids=set(tok.all_special_ids))
            return self._space

    # -- attention ----------------------------------------------------
    def attention_model(self):
        """The model in transformers with eager attention (the kind that can return its weights)."""
        with self.model_lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM

                from engines.core.devices import select_device
                from engines.text.hf_backend import auto_dtype

                folder = self._folder(convert=True)
                device = select_device("auto")
                try:
                    model = AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager",
                                                                 dtype=auto_dtype(device, "auto"), local_files_only=True)
                except torch.OutOfMemoryError as exc:
                    from engines.core.errors import OutOfMemoryError

                    raise OutOfMemoryError(f"Not enough memory to load {self.path} for attention maps.", path=self.path,
                                           hint="Unload other models, or use a smaller model.") from exc
                except (OSError, ValueError, KeyError) as exc:
                    raise UnsupportedModelError(f"transformers cannot load {self.path} for attention maps: {_first_line(exc)}.",
                                                path=self.path, hint="Attention maps need a model transformers can run.") from exc
                self._model = model.to(device).eval()
            return self._model

    def close(self) -> None:
        with self.model_lock:
            self._model = None
        with self._lock:
            self._embeddings = None
            self._space = None


def vocabulary_texts(tokenizer) -> list[str]:
    size = len(tokenizer)
    raw = tokenizer.convert_ids_to_tokens(list(range(size)))
    texts = []
    for i, piece in enumerate(raw):
        piece = piece or ""
        text = tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        # SentencePiece marks a word start with "▁" but decode() of one token drops the space.
        if piece.startswith("▁") and not text.startswith(" "):
            text = " " + text
        texts.append(text)
    return texts


def _gguf_embeddings(path: Path):
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} could not be read as GGUF: {_first_line(exc)}.", path=path) from exc
    for tensor in reader.tensors:
        if tensor.name == GGUF_EMBEDDING:
            try:
                return np.ascontiguousarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
            except NotImplementedError as exc:
                raise UnsupportedModelError(f"The embeddings of {path} use a quantisation gguf cannot read ({tensor.tensor_type.name}).",
                                            path=path, hint="Try a GGUF with another quantisation (Q4_0, Q4_1, Q8_0, F16).") from exc
    raise UnsupportedModelError(f"{path} has no '{GGUF_EMBEDDING}' tensor.", path=path)


def _folder_embeddings(folder: Path):
    import numpy as np
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        for key, file in weight_map.items():
            if key.endswith(EMBEDDING_KEYS):
                files = [folder / file]
                break
    for file in files:
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                if key.endswith(EMBEDDING_KEYS):
                    return np.ascontiguousarray(fh.get_tensor(key).float().numpy(), dtype=np.float32)
    raise UnsupportedModelError(f"No input-embedding tensor found in {folder}.", path=folder,
                                hint=f"Explore looks for a tensor named like {', '.join(EMBEDDING_KEYS)}.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ExploreSources:
    """The few models Explore has open (the tokens view compares two), least recently used dropped first."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._sources: OrderedDict[str, ExploreSource] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str) -> ExploreSource:
        from engines.models import resolve_model

        entry = resolve_model(model or "default")
        with self._lock:
            source = self._sources.get(entry.id)
            if source is None:
                source = self._sources[entry.id] = ExploreSource(entry)
            self._sources.move_to_end(entry.id)
            while len(self._sources) > self.keep:
                _, old = self._sources.popitem(last=False)
                old.close()
            return source

    def drop(self, model: str | None = None) -> list[str]:
        with self._lock:
            if model is None:
                dropped = list(self._sources)
                victims = list(self._sources.values())
                self._sources.clear()
            else:
                victims = [s for k, s in self._sources.items() if k == model or s.id == model]
                dropped = [s.id for s in victims]
                for s in victims:
                    self._sources.pop(s.id, None)
        for s in victims:
            s.close()
        return dropped

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._sources)


__all__ = ["ExploreSource", "ExploreSources", "HearthError"]
