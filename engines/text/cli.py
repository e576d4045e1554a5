"""``python main.py chat``: stream one reply to stdout through the text engine, in-process."""
from __future__ import annotations

import sys
from pathlib import Path

from engines.core.cancel import CancelToken
from engines.core.events import Result, Token
from engines.text.engine import TextEngine
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT, ChatRequest, LoadRequest


def run_chat(args) -> int:
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model=args.model, backend=args.backend, context_length=args.context_length,
                                         device=args.device, chat_template=args.chat_template, mmproj=args.mmproj))
        system = DEFAULT_SYSTEM_PROMPT if args.system is None else args.system
        content: str | list = args.prompt
        if args.image:  # the images first, in order, then the question (the LLaVA convention)
            content = [{"type": "image", "path": str(Path(p).expanduser().resolve())} for p in args.image]
            content.append({"type": "text", "text": args.prompt})
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        request = ChatRequest(
            messages=messages, model=loaded.id, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
            min_p=args.min_p, repeat_penalty=args.repeat_penalty, seed=args.seed, max_tokens=args.max_tokens,
            stop=args.stop,
        )
        cancel = CancelToken()
        result = None
        try:
            for event in engine.chat(request, cancel):
                if isinstance(event, Token):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, Result):
                    result = event
        except KeyboardInterrupt:
            cancel.cancel()
            print("\n[stopped]", file=sys.stderr)
            return 130
        sys.stdout.write("\n")
        if args.stats and result is not None:
            d = result.data
            print(f"[{d['completion_tokens']} tokens, {d['tokens_per_s']:.1f} tok/s, first token {d['ttft_s'] or 0:.2f} s, "
                  f"prompt {d['prompt_tokens']} tokens, finish {result.finish_reason}, backend {loaded.backend_name}]",
                  file=sys.stderr)
        return 0
    finally:
        engine.close()
