"""How a model's tokenizer splits text: ids, the text of each token, counts, characters per token.

With ``chat=True`` the text is first wrapped in the model's chat template (a system prompt, the
user turn, the assistant's opening), so the template's special tokens show up as tokens too.
"""
from __future__ import annotations

from engines.core.errors import RequestError
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

MAX_CHARS = 100_000


def render_chat(tokenizer, text: str, system: str = DEFAULT_SYSTEM_PROMPT) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise RequestError("This model's tokenizer has no chat template.", hint="Untick 'chat template' to see the plain text's tokens.")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def tokenize(tokenizer, text: str, *, chat: bool = False, system: str = DEFAULT_SYSTEM_PROMPT) -> dict:
    """Tokens of ``text``: ``{"text", "tokens": [{"id", "text", "start", "end", "special"}], "count", "chars", "chars_per_token"}``.

    ``text`` in the answer is what was tokenized (the rendered template when ``chat``); each
    token's ``start``/``end`` index into it (a character that takes several tokens, like an
    emoji in a byte-level vocabulary, gives each of them the same span).
    """
    if not isinstance(text, str):
        raise RequestError("Field 'text' must be a string.")
    if len(text) > MAX_CHARS:
        raise RequestError(f"The text is {len(text):,} characters.", hint=f"Explore tokenizes up to {MAX_CHARS:,} at a time.")
    rendered = render_chat(tokenizer, text, system) if chat else text
    # The template already holds the special tokens the model expects; plain text gets the
    # tokenizer's own (a BOS for models that add one), as the model would see it.
    try:
        encoded = tokenizer(rendered, add_special_tokens=not chat, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        offsets = list(encoded.get("offset_mapping") or [(0, 0)] * len(ids))
    except (NotImplementedError, ValueError):  # a slow (pure Python) tokenizer has no offsets
        ids = list(tokenizer(rendered, add_special_tokens=not chat)["input_ids"])
        offsets = [(0, 0)] * len(ids)
    special = set(tokenizer.all_special_ids)
    tokens = []
    for token_id, (start, end) in zip(ids, offsets):
        piece = tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        tokens.append({"id": int(token_id), "text": piece, "start": int(start), "end": int(end), "special": token_id in special})
    chars = len(rendered)
    return {"text": rendered, "tokens": tokens, "count": len(tokens), "chars": chars,
            "chars_per_token": round(chars / len(tokens), 3) if tokens else 0.0}


def visible(piece: str) -> str:
    """A token's text on one line: newlines, tabs and carriage returns as escapes."""
    return piece.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
