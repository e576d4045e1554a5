"""Fitting a conversation into the model's context window under the chosen overflow policy."""
from __future__ import annotations

from typing import Callable

from engines.core.errors import ContextOverflowError

# Room kept free for the reply when the conversation is trimmed: the smaller of max_tokens
# and a quarter of the context, so a huge max_tokens cannot wipe out the whole history.
def reply_reserve(max_tokens: int, n_ctx: int) -> int:
    return max(1, min(max_tokens, n_ctx // 4))


def fit_messages(
    messages: list[dict[str, str]],
    count_tokens: Callable[[list[dict[str, str]]], int],
    n_ctx: int,
    max_tokens: int,
    policy: str,
    note: str = "",
) -> tuple[list[dict[str, str]], int, int]:
    """Return (messages that fit, prompt token count, number of messages dropped).

    'truncate' drops the oldest turns after the system prompt until the prompt plus the reply
    reserve fits; the last message is always kept. 'stop' raises ContextOverflowError instead. ``note`` is added
    to that error's message (e.g. how many of the tokens are images).
    """
    note = f" {note}" if note else ""
    reserve = reply_reserve(max_tokens, n_ctx)
    kept = list(messages)
    n_prompt = count_tokens(kept)
    dropped = 0
    if n_prompt + reserve <= n_ctx:
        return kept, n_prompt, 0
    if policy == "stop":
        raise ContextOverflowError(
            f"The conversation is {n_prompt} tokens and the reply needs room for {reserve} more, "
            f"but the model's context holds {n_ctx} tokens.{note}",
            hint="Start a new chat, load the model with a longer context, or choose the 'drop oldest turns' policy.",
        )
    first = 1 if kept and kept[0]["role"] == "system" else 0
    while n_prompt + reserve > n_ctx and len(kept) - first > 1:
        del kept[first]
        dropped += 1
        # A conversation should not start with an assistant turn after trimming.
        while len(kept) - first > 1 and kept[first]["role"] == "assistant":
            del kept[first]
            dropped += 1
        n_prompt = count_tokens(kept)
    if n_prompt + reserve > n_ctx:
        raise ContextOverflowError(
            f"The last message alone is {n_prompt} tokens (with the system prompt), more than the "
            f"{n_ctx}-token context minus {reserve} tokens kept for the reply.{note}",
            hint="Shorten the message or load the model with a longer context.",
        )
    return kept, n_prompt, dropped
