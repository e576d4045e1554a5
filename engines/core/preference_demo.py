"""The Tune room's demo preference, "short answers", and its scripted labeler.

One definition shared by the guided path in the GUI ("Teach the model a preference") and
``benchmarks/rlhf_demo.py``: what the preference is, how a reply is measured, how the scripted
labeler judges a pair, and how far a tuned model moved. Stdlib only (the GUI process uses it).

Why length: a reward model learns it in a few dozen steps on a CPU and a person reading
before/after replies cannot miss the change. But the bundled SmolLM2-135M's sampled replies to a
plain prompt are nearly all long (most run past 64 tokens), so pairs of them are mostly ties.
So half of the replies to label are written with ``BRIEF_HINT`` added to the system prompt (the
model follows it: about 20 words instead of 48 on the starter prompts), and the labels and the
training data keep the plain prompt. What the tuned model learns is to answer briefly without
being asked (a preference distilled from a prompt; the hint is recorded with each reply).
"""
from __future__ import annotations

import re

TITLE = "Short answers"
DESCRIPTION = ("Prefer the clearly shorter of two replies. Pairs of about the same length are ties "
               "(no preference), so every labelled pair shows the preference plainly.")
LABELER_NAME = "Scripted labeler: prefers the clearly shorter reply"
# The shorter reply wins only when it has at most this share of the longer one's words.
CLEAR_RATIO = 0.7

# RL on this preference: the "rl" preset's 1e-4 (sized for larger models) moves the bundled model's LoRA too
# little in the few dozen steps a CPU affords (measured: -0.005 of the way to shorter replies after 16 steps);
# at 1e-3, 24 steps moved it 0.32 with KL to the base at most 0.07 (2e-3: noisier, KL up to 0.23).
RL_LEARNING_RATE = 1e-3

# Added to the system prompt of every other reply written for labelling.
BRIEF_HINT = "Answer in one short sentence."

_WORD = re.compile(r"\S+")


def reply_system_prompt(system: str, index: int) -> str:
    """The system prompt for the ``index``-th reply to a prompt: every other one asks for brevity."""
    return f"{system} {BRIEF_HINT}".strip() if index % 2 == 1 else system


def reply_words(text: str) -> int:
    """The demo's measure: words in a reply (fewer is preferred)."""
    return len(_WORD.findall(text or ""))


def scripted_judgement(a: str, b: str) -> str:
    """``"a"``, ``"b"`` or ``"tie"`` for two replies to the same prompt.

    An empty reply never wins (a reply must say something); otherwise the clearly shorter one
    wins and replies of about the same length tie.
    """
    wa, wb = reply_words(a), reply_words(b)
    if wa == 0 or wb == 0:
        return "tie" if wa == wb else ("b" if wa == 0 else "a")
    if min(wa, wb) <= CLEAR_RATIO * max(wa, wb):
        return "a" if wa < wb else "b"
    return "tie"


def moved(base: float, tuned: float, preferred_end: float = 0.0) -> float:
    """How far ``tuned`` went from ``base`` toward ``preferred_end`` (0 words): 1.0 all the way, < 0 the wrong way."""
    span = base - preferred_end
    return 0.0 if span == 0 else (base - tuned) / span


def mean_words(replies: list[str]) -> float:
    return sum(map(reply_words, replies)) / len(replies) if replies else 0.0
