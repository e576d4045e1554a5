"""Code -> live page: the model writes an HTML/CSS page for a described layout, streamed.

The prompt is a plain completion: one small worked example (a description and its page), then
the user's description and the opening of a new page. Small models follow that pattern far
better than an instruction (the bundled 135M model, asked in chat, drifts off into nonsense
CSS); large models follow it too. The page streams as ``Token`` events that begin with the
opening the prompt supplied, so the concatenated tokens are always the whole page so far.
"""
from __future__ import annotations

from typing import Iterator

from engines.core.cancel import CancelToken
from engines.core.errors import RequestError
from engines.core.events import Event, Result, Token
from engines.core.requests.text import ChatRequest

EXAMPLE = """Description: A page for a book club with a green heading, a welcome line and a list of two books.
HTML:
<!DOCTYPE html>
<html>
<head>
<style>
body { font-family: sans-serif; background: #f4f1ea; margin: 40px; }
h1 { color: #2e7d32; }
li { margin: 6px 0; }
</style>
</head>
<body>
<h1>Book Club</h1>
<p>We meet every Tuesday to talk about books.</p>
<ul>
<li>The Hobbit</li>
<li>Little Women</li>
</ul>
</body>
</html>
"""
OPENING = "<!DOCTYPE html>\n<html>\n"
CLOSING = "</html>"
MAX_DESCRIPTION = 2000


def page_prompt(description: str) -> str:
    return f"{EXAMPLE}\nDescription: {description.strip()}\nHTML:\n{OPENING}"


def page_request(description: str, model: str = "default", max_tokens: int = 400, temperature: float = 0.2,
                 seed: int | None = None, request_id: str = "") -> ChatRequest:
    if not isinstance(description, str) or not description.strip():
        raise RequestError("The layout description is empty.", hint="Describe the page, e.g. 'a bakery page with an orange heading'.")
    if len(description) > MAX_DESCRIPTION:
        raise RequestError(f"The description is {len(description)} characters.", hint=f"Keep it under {MAX_DESCRIPTION}.")
    request = ChatRequest(prompt=page_prompt(description), model=model, max_tokens=max_tokens, temperature=temperature,
                          seed=seed, stop=[CLOSING], repeat_penalty=1.1, request_id=request_id)
    request.validate()
    return request


def stream_page(events: Iterator[Event]) -> Iterator[Event]:
    """The engine's events for a page request, with the page's opening first and its close last."""
    yield Token(OPENING, -1)
    for event in events:
        if isinstance(event, Result):
            body = event.data.get("text", "")
            closed = event.finish_reason == "stop"
            if closed:
                yield Token(CLOSING, -1)
            yield Result(event.finish_reason, {**event.data, "text": OPENING + body + (CLOSING if closed else "")})
        else:
            yield event


def run_page(engine, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
    return stream_page(engine.chat(request, cancel))
