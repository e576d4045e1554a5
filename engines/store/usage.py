"""Tokens in and out per day and per model, and what they would have cost on paid APIs.

Two sources, never counted twice: the chat history (each assistant reply's ``meta`` holds its
token counts, model and seconds) and the ``usage`` table, where the engine host records every
completion that is not a Hearth chat reply (OpenAI-compatible API calls, Explore jobs).
Light (stdlib only): the GUI reads it directly.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable

from engines.core.errors import RequestError
from engines.store.storage import Database

PRICES_KEY = "explore.prices"
# "One email": a typical short request and reply, the unit the cost table is easiest to read in.
EMAIL_PROMPT_TOKENS = 400
EMAIL_COMPLETION_TOKENS = 200


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    name: str
    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1_000_000

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: Any) -> "Price":
        try:
            price = Price(str(data["name"]).strip(), float(data["input_per_million"]), float(data["output_per_million"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"A price needs a name and two numbers (input and output per million tokens): {data!r}.") from exc
        if not price.name or price.input_per_million < 0 or price.output_per_million < 0:
            raise RequestError(f"Price {price.name or '(no name)'!r} must have a name and prices of 0 or more.")
        return price


# A starting table of list prices (USD per million tokens) as published in late 2024. Prices
# change: the table is the user's to edit, and the Usage view says so.
DEFAULT_PRICES: tuple[Price, ...] = (
    Price("GPT-4o", 2.50, 10.00),
    Price("GPT-4o mini", 0.15, 0.60),
    Price("Claude 3.5 Sonnet", 3.00, 15.00),
    Price("Claude 3.5 Haiku", 0.80, 4.00),
    Price("Gemini 1.5 Flash", 0.075, 0.30),
)


def email_cost(price: Price, emails: int = 1) -> float:
    """What ``emails`` emails of 400 prompt + 200 output tokens cost at ``price``."""
    return price.cost(EMAIL_PROMPT_TOKENS * emails, EMAIL_COMPLETION_TOKENS * emails)


def load_prices(settings) -> list[Price]:
    stored = settings.get(PRICES_KEY, None)
    if not stored:
        return list(DEFAULT_PRICES)
    prices = []
    for item in stored:
        try:
            prices.append(Price.from_dict(item))
        except RequestError:
            continue  # a row the user half-edited in an older version: skip it, keep the rest
    return prices


def save_prices(settings, prices: Iterable[Price]) -> None:
    settings.set(PRICES_KEY, [p.to_dict() for p in prices])


@dataclass
class UsageRow:
    """One day x model: the sums over every reply and job."""

    day: str  # YYYY-MM-DD, local time
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d")


def model_label(model: str) -> str:
    """A short name for a model id: 'default' stays, a path becomes its file or folder name."""
    if not model:
        return "unknown"
    if model == "default":
        return "default (bundled SmolLM2)"
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


class UsageLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, model: str, source: str, prompt_tokens: int, completion_tokens: int,
               seconds: float = 0.0, created: float | None = None) -> None:
        self.db.execute(
            "INSERT INTO usage(created, model, source, prompt_tokens, completion_tokens, seconds) VALUES (?,?,?,?,?,?)",
            (created if created is not None else time.time(), model, source, int(prompt_tokens), int(completion_tokens),
             float(seconds or 0.0)),
        )

    def entries(self, since: float | None = None) -> list[dict]:
        """Every counted reply and job, oldest first: ``{created, model, source, prompt_tokens, completion_tokens, seconds}``."""
        since = since or 0.0
        out = [dict(r) for r in self.db.query(
            "SELECT created, model, source, prompt_tokens, completion_tokens, seconds FROM usage WHERE created >= ?", (since,))]
        rows = self.db.query(
            "SELECT m.created, m.meta_json, c.model FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE m.role = 'assistant' AND m.created >= ?", (since,))
        for r in rows:
            try:
                meta = json.loads(r["meta_json"])
            except json.JSONDecodeError:
                continue
            if not isinstance(meta, dict) or not (meta.get("prompt_tokens") or meta.get("completion_tokens")):
                continue
            out.append({"created": r["created"], "model": meta.get("model") or r["model"] or "", "source": "chat",
                        "prompt_tokens": int(meta.get("prompt_tokens") or 0),
                        "completion_tokens": int(meta.get("completion_tokens") or 0),
                        "seconds": float(meta.get("total_s") or 0.0)})
        out.sort(key=lambda e: e["created"])
        return out

    def by_day_and_model(self, since: float | None = None) -> list[UsageRow]:
        """Newest day first; within a day, the model with the most tokens first."""
        return summarise(self.entries(since))


def summarise(entries: Iterable[dict]) -> list[UsageRow]:
    rows: dict[tuple[str, str], UsageRow] = {}
    for e in entries:
        key = (_day(e["created"]), model_label(e["model"]))
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRow(*key)
        row.prompt_tokens += int(e["prompt_tokens"])
        row.completion_tokens += int(e["completion_tokens"])
        row.seconds += float(e["seconds"])
        row.requests += 1
    return sorted(rows.values(), key=lambda r: (r.day, r.total_tokens), reverse=True)


def totals(rows: Iterable[UsageRow]) -> UsageRow:
    total = UsageRow("all days", "all models")
    for r in rows:
        total.prompt_tokens += r.prompt_tokens
        total.completion_tokens += r.completion_tokens
        total.seconds += r.seconds
        total.requests += r.requests
    return total
