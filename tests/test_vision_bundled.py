"""The shipped vision model (assets/vision-default) through Hearth's engine, as Chat uses it: it loads as
"default-vision" on llama.cpp with its mmproj and answers about a held-out shape scene it never saw in training."""
from __future__ import annotations

import io
import random

import pytest

from engines.core.events import Result
from engines.image import shapes
from engines.core.requests.text import ChatRequest, LoadRequest
from engines.vision import prompts

pytestmark = pytest.mark.timeout(600)


def scene_png(scene: shapes.Scene) -> bytes:
    buf = io.BytesIO()
    shapes.render(scene, rng=random.Random(0)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_bundled_vision_model_reads_a_held_out_scene():
    from engines.text.engine import TextEngine

    scene = next(s for s in shapes.all_scenes() if s.held_out)  # the first scene training never saw
    engine = TextEngine()
    try:
        loaded = engine.load(LoadRequest(model="default-vision", backend="llama", context_length=512))
        assert loaded.vision and loaded.info["mmproj"].endswith("mmproj-hearth-shapes.gguf")

        def ask(kind):
            content = [{"type": "image", "data": scene_png(scene)}, {"type": "text", "text": prompts.BENCHMARK_QUESTIONS[kind]}]
            request = ChatRequest(messages=[{"role": "system", "content": prompts.SYSTEM_PROMPT},
                                            {"role": "user", "content": content}],
                                  model=loaded.id, temperature=0.0, max_tokens=12, seed=0)
            result = list(engine.chat(request))[-1]
            assert isinstance(result, Result) and result.data["images"] == 1
            return result.data["text"]

        background = ask("background")
        assert background.startswith("The background is") and prompts.parse("background", background) == scene.background, background
        colour = ask("color")
        assert colour.startswith("The shape is") and prompts.parse("color", colour) in shapes.COLORS, colour
    finally:
        engine.close()
