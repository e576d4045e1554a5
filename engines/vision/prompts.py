"""Questions, answers and grading for Hearth's bundled vision model (the shape scenes of engines/image/shapes.py).

Shared by tools/train_vision_model.py (training pairs laid out as llama.cpp lays out the chat), the benchmark
benchmarks/vision_chat.py and the tests (questions, and reading the labels back out of an answer).
"""
from __future__ import annotations

import random
import re

from engines.image import shapes
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT

SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT  # what Chat sends unless the user changes it
# What SmolLM2's ChatML template inserts when a chat has no system message.
TEMPLATE_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

KINDS = ("color", "shape", "size", "position", "background", "describe")
# Training mix: descriptions name every attribute; shape and position are the hardest to read.
KINDS_WEIGHTED = ("color", "shape", "shape", "size", "position", "position", "background", "describe", "describe")

QUESTIONS = {
    "color": ("What colour is the shape?", "What color is the shape?", "Which colour is the object?",
              "What is the colour of the shape?", "What color is the object in the picture?"),
    "shape": ("What shape is it?", "What shape is in the picture?", "Which shape do you see?", "What is the shape?"),
    "size": ("Is the shape small or large?", "How big is the shape?", "What size is the shape?"),
    "position": ("Where is the shape?", "Where is the shape in the picture?", "Where is the object?",
                 "In which part of the picture is the shape?"),
    "background": ("What colour is the background?", "What color is the background?",
                   "Which colour is the background?"),
    "describe": ("Describe the picture.", "Describe the image.", "What is in the picture?", "What do you see?"),
}
# The one question per attribute the benchmark and the tests ask.
BENCHMARK_QUESTIONS = {k: v[0] for k, v in QUESTIONS.items()}


def answer(scene: shapes.Scene, kind: str) -> str:
    if kind == "color":
        return f"The shape is {scene.color}."
    if kind == "shape":
        return f"It is a {scene.shape}."
    if kind == "size":
        return f"It is {scene.size}."
    if kind == "position":
        return f"It is {shapes.POSITIONS[scene.position][0]}."
    if kind == "background":
        return f"The background is {scene.background}."
    if kind == "describe":
        text = scene.caption()
        return text[0].upper() + text[1:] + "."
    raise ValueError(f"unknown question kind {kind!r}; expected one of {', '.join(KINDS)}")


def chatml(system: str | None, user_before_image: str = "") -> str:
    """SmolLM2's ChatML up to where the image goes (the user turn's start), as its template renders it."""
    system = TEMPLATE_DEFAULT_SYSTEM if system is None else system
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user_before_image}"


def training_pieces(scene: shapes.Scene, kinds: list[str], rng: random.Random,
                    separator: str | None = None) -> list[tuple[str, bool]]:
    """The text after the image for one training conversation, as (text, is-answer) pieces: the first question
    (joined to the image by ``separator``), its answer, then any further questions as later user turns.

    ``separator`` None picks what joins the image to the question ("\\n", as Hearth's engine sends it, or "" or
    " ") so the model does not depend on how a client joined the parts. The text before the image is
    ``chatml(system)``.
    """
    if separator is None:
        separator = rng.choice(("\n", "\n", "", " "))
    pieces: list[tuple[str, bool]] = []
    for i, kind in enumerate(kinds):
        question = rng.choice(QUESTIONS[kind])
        lead = separator if i == 0 else "\n<|im_start|>user\n"
        pieces.append((f"{lead}{question}<|im_end|>\n<|im_start|>assistant\n", False))
        pieces.append((answer(scene, kind) + "<|im_end|>", True))
    return pieces


_COLOR_RE = re.compile(r"\b(" + "|".join(shapes.COLORS) + r")\b")
_SHAPE_RE = re.compile(r"\b(" + "|".join(shapes.SHAPES) + r")s?\b")
_POSITION_RE = re.compile(r"\b(left|right|top|bottom|cent(?:er|re)|middle)\b")
_SIZE_RE = re.compile(r"\b(small|large)\b")
_BACKGROUND_RE = re.compile(r"\b(" + "|".join(shapes.COLORS) + r")\s+background\b")


def parse(kind: str, text: str) -> str | dict | None:
    """Read a label out of an answer: the first colour/shape/position/size word; for "describe", a dict of all
    five (the background is the colour word before "background"). None where the answer names none."""
    t = text.lower()

    def first(rx):
        m = rx.search(t)
        return m.group(1) if m else None

    def position():
        p = first(_POSITION_RE)
        return {"centre": "center", "middle": "center"}.get(p, p)

    if kind in ("color", "background"):
        return first(_COLOR_RE)
    if kind == "shape":
        return first(_SHAPE_RE)
    if kind == "size":
        return first(_SIZE_RE)
    if kind == "position":
        return position()
    if kind == "describe":
        bg = first(_BACKGROUND_RE)
        fg_text = t.split(bg + " background")[0] if bg else t
        m = _COLOR_RE.search(fg_text)
        return {"color": m.group(1) if m else None, "shape": first(_SHAPE_RE), "size": first(_SIZE_RE),
                "position": position(), "background": bg}
    raise ValueError(f"unknown question kind {kind!r}; expected one of {', '.join(KINDS)}")
