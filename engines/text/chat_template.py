"""Chat templates: the model file's own, or one the user picks (ChatML, Llama 3, Gemma, a .jinja file).

A template is code from a file the user downloaded. It renders in llama-cpp-python's Jinja sandbox, and any
failure (a syntax error, a sandbox refusal, an exception the template raises) becomes a ``ModelFileError``
naming the file and the reason, with the way out: choose another template.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from engines.core.errors import ModelFileError, RequestError
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

HINT = ("Choose another chat template: 'chat_template' on load (chatml, llama3, gemma or a .jinja file), "
        "--chat-template in the CLI, or the template choice in Chat's model panel.")
PROBE = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": "Hello"}]


def read_template_file(path: str) -> str:
    file = Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"Cannot read the chat template file {file}: {exc}.", path=str(file),
                           hint="Give the path of a readable UTF-8 .jinja file.") from exc


def template_origin(choice: str, model_path: str) -> str:
    """What a failure message names: the .jinja file, or the model file whose template it is."""
    return str(Path(choice).expanduser()) if choice.lower().endswith(".jinja") else model_path


def failure(origin: str, stage: str, exc: BaseException) -> ModelFileError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelFileError(f"The chat template of {origin} {stage}: {type(exc).__name__}: {reason or 'no details'}.",
                          path=origin, hint=HINT)


def llama_formatter(choice: str, metadata: dict, eos: str, bos: str, eos_id: int, model_path: str) -> tuple[Callable, str]:
    """A llama-cpp-python chat formatter for ``choice`` and a label for it (shown in the model's info)."""
    from llama_cpp import llama_chat_format as formats

    if choice == "llama3":
        return formats.format_llama3, "llama3"
    if choice == "gemma":
        return formats.format_gemma, "gemma"
    origin = template_origin(choice, model_path)
    if choice == "chatml":
        template, label = formats.CHATML_CHAT_TEMPLATE, "chatml"
    elif choice:
        template, label = read_template_file(choice), origin
    elif metadata.get("tokenizer.chat_template"):
        template, label = metadata["tokenizer.chat_template"], "gguf"
    else:
        template, label = formats.CHATML_CHAT_TEMPLATE, "chatml-fallback"
    try:
        formatter = formats.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                                stop_token_ids=[eos_id] if eos_id != -1 else None)
    except Exception as exc:  # noqa: BLE001 - any compile failure of an untrusted template is the file's fault
        raise failure(origin, "does not compile", exc) from exc
    return formatter, label


def render_checked(render: Callable[[], Any], origin: str) -> Any:
    """``render()``, with any failure of the template turned into a clear error naming ``origin``."""
    try:
        return render()
    except (ModelFileError, RequestError):
        raise
    except Exception as exc:  # noqa: BLE001 - the template is untrusted code; whatever it raises is its failure
        raise failure(origin, "failed to render", exc) from exc


def hf_template(choice: str, model_path: str) -> str | None:
    """The Jinja text for the transformers backend (None: the tokenizer's own)."""
    if not choice:
        return None
    if choice == "chatml":
        from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

        return CHATML_CHAT_TEMPLATE
    if choice.lower().endswith(".jinja"):
        return read_template_file(choice)
    raise RequestError(f"The chat template {choice!r} is available on the llama.cpp backend only.",
                       hint="On transformers use the model's own template, chatml or a .jinja file.")


_PATCH_LOCK = threading.Lock()


def open_llama(path: str, uses_file_template: bool, **kwargs):
    """``llama_cpp.Llama(model_path=path, **kwargs)``. Llama compiles every chat template in the GGUF's
    metadata while loading, so a broken one fails the load: that is the file's error when the file's template
    is the one to use, and is skipped when another one was chosen (or none is needed, as for embeddings)."""
    import jinja2
    from llama_cpp import Llama

    try:
        return Llama(model_path=path, **kwargs)
    except jinja2.TemplateError as exc:
        if uses_file_template:
            raise failure(path, "does not compile", exc) from exc
    with _metadata_templates_skipped():
        return Llama(model_path=path, **kwargs)


@contextlib.contextmanager
def _metadata_templates_skipped() -> Iterator[None]:
    """While Llama loads, a metadata template that does not compile becomes a formatter that is never used
    (Hearth renders with its own formatter, chosen in llama_formatter)."""
    from llama_cpp import llama_chat_format as formats

    original = formats.Jinja2ChatFormatter

    class Tolerant(original):
        def __init__(self, template: str, *args, **kwargs) -> None:
            try:
                super().__init__(template, *args, **kwargs)
            except Exception:  # noqa: BLE001 - the user chose another template; this one is never rendered
                super().__init__("", *args, **kwargs)

    with _PATCH_LOCK:
        formats.Jinja2ChatFormatter = Tolerant
        try:
            yield
        finally:
            formats.Jinja2ChatFormatter = original
