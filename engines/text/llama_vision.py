"""Image chat on llama.cpp: a GGUF plus its mmproj through llama-cpp-python's multimodal chat handlers.

The handler is chosen from the files' metadata (``choose_handler``): the model families llama-cpp-python ships
a handler for (LLaVA 1.5/1.6, Qwen2.5-VL, MiniCPM-V 2.6, Moondream, nanoLLaVA, Llama-3-Vision-Alpha, Gemma 4)
get theirs; any other model with a chat template gets the generic libmtmd handler, which renders the model's
own template and lets libmtmd wrap each image the way its projector type expects. The handler does the work
(template, image encoding, prefill, sampling); Hearth adds the overflow policy before it, cancel between tokens
and the reply's statistics around it.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

from engines.core.cancel import CancelToken
from engines.core.content import text_only
from engines.core.errors import ContextOverflowError, ModelFileError, RequestError
from engines.core.events import Event, Token
from engines.text.context import fit_messages
from engines.text.images import ChatImage, chat_images
from engines.text.request import ChatRequest
from engines.text.stats import ReplyTimer

if TYPE_CHECKING:
    from engines.text.llama_backend import LlamaBackend

GENERIC = "MTMDChatHandler"
# (handler class, pattern over the model's and projector's names and the projector type), first match wins.
FAMILIES = (
    ("MoondreamChatHandler", r"moondream"),
    ("NanoLlavaChatHandler", r"nano-?llava"),
    ("Llama3VisionAlphaChatHandler", r"llama-?3-?vision-?alpha"),
    ("MiniCPMv26ChatHandler", r"minicpm-?v"),
    ("Qwen25VLChatHandler", r"qwen2\.?5-?vl"),
    ("Llava16ChatHandler", r"llava.*(1\.6|v1\.6|next)|llava-?next"),
    ("Llava15ChatHandler", r"llava"),
)


def choose_handler(model_metadata: dict, projector_metadata: dict, names: tuple[str, ...] = ()) -> str:
    """The llama-cpp-python chat handler class name for this model + projector.

    ``names`` are extra strings to match (the file names). Gemma 4 is told by its architecture; a model with no
    chat template and no known family gets the LLaVA 1.5 handler, whose prompt format is built in.
    """
    if str(model_metadata.get("general.architecture", "")).startswith("gemma4"):
        return "Gemma4ChatHandler"
    haystack = " ".join(str(x).lower() for x in (
        model_metadata.get("general.name"), model_metadata.get("general.basename"),
        projector_metadata.get("general.name"), projector_metadata.get("clip.projector_type"), *names) if x)
    for handler, pattern in FAMILIES:
        if re.search(pattern, haystack):
            return handler
    if not model_metadata.get("tokenizer.chat_template"):
        return "Llava15ChatHandler"
    return GENERIC


def _refuse_url(image_url: str) -> bytes:
    # Hearth hands handlers only the data URLs of images it decoded itself; anything else is a bug, never a fetch.
    if not image_url.startswith("data:"):
        raise RequestError("Hearth's llama.cpp handlers take only inline images.")
    import base64

    return base64.b64decode(image_url.split(",", 1)[1])


def make_handler(class_name: str, mmproj: str, template: str | None = None):
    """An instance of llama-cpp-python's handler ``class_name`` that never fetches URLs; generic-handler subclasses
    render each message as text with the media marker where its images go (templates that expect string contents,
    like SmolLM2's, then work too), with the Jinja ``template`` the user chose instead of the model's, if any."""
    import ctypes

    from llama_cpp import _logger, llama_chat_format, mtmd_cpp

    # libmtmd logs every image it encodes to stderr; route it through llama-cpp-python's logger (errors only
    # unless verbose), as llama.cpp's own logs are.
    mtmd_cpp.mtmd_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    base = getattr(llama_chat_format, class_name)
    extra: dict = {"_load_image": staticmethod(_refuse_url), "load_image": lambda self, url: _refuse_url(url)}
    if issubclass(base, llama_chat_format.MTMDChatHandler):
        extra["_convert_message_for_template"] = classmethod(_message_as_text)
        if template:
            extra["_get_chat_template"] = lambda self, llama_model: template
    handler_class = type(f"Hearth{class_name}", (base,), extra)
    return handler_class(clip_model_path=mmproj, verbose=False)


def _message_as_text(cls, message: dict, media_marker: str) -> dict:
    """One message with a string content: image parts become the media marker and a newline, in part order."""
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    pieces = [media_marker + "\n" if isinstance(p, dict) and p.get("type") == "image_url" else
              (p.get("text", "") if isinstance(p, dict) else str(p)) for p in content]
    return {**message, "content": "".join(pieces)}


def init_context(handler, llm, model_path: str, mmproj: str) -> None:
    """Load the projector now (not at the first image), mapping libmtmd's failures to a message naming both files."""
    try:
        handler._init_mtmd_context(llm)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"llama.cpp could not load the vision projector {mmproj} for the model {model_path}: {exc}.",
                             path=mmproj, hint="Use the mmproj file published with this model (same model family and "
                                               "size), and a llama.cpp that supports its projector type.") from exc


class ImageTokenCounter:
    """How many context positions one image takes with this projector (libmtmd's own count), per image."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self._known: dict[str, int] = {}

    def __call__(self, image: ChatImage) -> int:
        if len(self._known) > 4096:  # a long-running host: forget, rather than grow without end
            self._known.clear()
        if image.digest not in self._known:
            self._known[image.digest] = self._count(image)
        return self._known[image.digest]

    def _count(self, image: ChatImage) -> int:
        import ctypes

        mtmd = self.handler._mtmd_cpp
        try:
            bitmap = self.handler._create_bitmap_from_bytes(image.data)
        except ValueError:
            raise RequestError(f"Field '{image.where}': llama.cpp could not read the image.",
                               hint="Send a PNG or JPEG image.") from None
        chunks = mtmd.mtmd_input_chunks_init()
        try:
            text = mtmd.mtmd_default_marker()
            input_text = mtmd.mtmd_input_text()
            input_text.text, input_text.text_len = text, len(text)
            input_text.add_special, input_text.parse_special = False, True
            bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
            if mtmd.mtmd_tokenize(self.handler.mtmd_ctx, chunks, ctypes.byref(input_text), bitmaps, 1) != 0:
                raise RequestError(f"Field '{image.where}': llama.cpp could not prepare the image for this projector.")
            total = 0
            for i in range(mtmd.mtmd_input_chunks_size(chunks)):
                chunk = mtmd.mtmd_input_chunks_get(chunks, i)
                if mtmd.mtmd_input_chunk_get_type(chunk) != mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    total += mtmd.mtmd_input_chunk_get_n_tokens(chunk)
            return total
        finally:
            mtmd.mtmd_input_chunks_free(chunks)
            mtmd.mtmd_bitmap_free(bitmap)


def wire_messages(messages: list[dict]) -> list[dict]:
    """Decoded messages as the handlers read them: image parts as data-URL ``image_url`` parts."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = [{"type": "image_url", "image_url": {"url": p["image"].url()}} if isinstance(p.get("image"), ChatImage)
                       else p for p in content]
        out.append({**m, "content": content})
    return out


def generate_with_images(backend: "LlamaBackend", request: ChatRequest, cancel: CancelToken, grammar=None) -> Iterator[Event]:
    """One reply to a conversation holding images (``request.messages`` already decoded), constrained by ``grammar``
    (a response_format's). Owner thread only."""
    if request.tools and request.tool_choice != "none" or request.logprobs is not None:
        raise RequestError("Tool calls and logprobs are not available in a conversation with images.",
                           hint="Leave 'tools' and 'logprobs' out, or ask without images.")
    timer = ReplyTimer()
    count_image = backend.image_tokens

    def count(messages: list[dict]) -> int:
        return backend.count_chat_tokens(text_only(messages)) + sum(count_image(i) for i in chat_images(messages))

    images = chat_images(request.messages)
    note = f"Its {len(images)} image(s) take {sum(count_image(i) for i in images)} tokens."
    messages, _, dropped = fit_messages(request.messages, count, backend.n_ctx, request.max_tokens, request.overflow, note)
    llm = backend.llm
    cache, llm.cache = llm.cache, None  # image positions have no token ids: the prompt cache cannot key them
    completion_tokens = 0
    pieces: list[str] = []
    finish = "stop"
    try:
        try:
            stream = backend.handler(
                llama=llm, messages=wire_messages(messages), stream=True, max_tokens=request.max_tokens,
                temperature=request.temperature, top_p=request.top_p, top_k=request.top_k, min_p=request.min_p,
                repeat_penalty=request.repeat_penalty, seed=request.seed, stop=list(request.stop),
                presence_penalty=request.presence_penalty, frequency_penalty=request.frequency_penalty,
                grammar=grammar)
        except ValueError as exc:
            if "exceeds n_ctx" in str(exc):
                raise ContextOverflowError(f"The conversation with its images does not fit the {backend.n_ctx}-token "
                                           f"context ({exc}).", hint="Send fewer images, or load the model with a longer context.") from exc
            raise RequestError(f"llama.cpp could not take the conversation with its images: {exc}.",
                               hint="Send fewer or smaller images (PNG or JPEG).") from exc
        n_prompt = llm.n_tokens  # the handler has evaluated the prompt (text and images) before returning the stream
        try:
            for index, chunk in enumerate(stream):
                choice = chunk["choices"][0]
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                if "content" in delta or text:
                    completion_tokens += 1
                if text:
                    timer.token()
                    pieces.append(text)
                    yield Token(text, index)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if cancel.cancelled:
                    finish = "cancelled"
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        completion_tokens = max(completion_tokens, llm.n_tokens - n_prompt)
    finally:
        llm.cache = cache
        # The KV cache now holds image embeddings at positions whose token ids are stale: the next text prompt
        # must not reuse them as a matching prefix.
        llm.reset()
    yield timer.result(finish, "".join(pieces), n_prompt, completion_tokens, dropped_messages=dropped,
                       backend=backend.name, images=len(chat_images(messages)))


def describe(handler_name: str, mmproj: str) -> dict:
    return {"vision": True, "mmproj": mmproj, "vision_handler": handler_name}

