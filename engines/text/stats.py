"""Per-reply timing: time to first token, decode speed, and the final Result event."""
from __future__ import annotations

import time

from engines.core.events import Result


class ReplyTimer:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None

    def token(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now

    def result(self, finish_reason: str, text: str, prompt_tokens: int, completion_tokens: int, **extra) -> Result:
        end = time.perf_counter()
        ttft = (self.first - self.start) if self.first is not None else None
        # Decode speed over the tokens after the first (the first one carries the prompt eval).
        if self.first is not None and self.last is not None and completion_tokens > 1 and self.last > self.first:
            tok_s = (completion_tokens - 1) / (self.last - self.first)
        else:
            tok_s = 0.0
        data = {
            "text": text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "ttft_s": ttft,
            "tokens_per_s": tok_s,
            "total_s": end - self.start,
            **extra,
        }
        return Result(finish_reason=finish_reason, data=data)
