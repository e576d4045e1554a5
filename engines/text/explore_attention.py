"""Attention weights of every layer and head for a short text, and a heatmap PNG of one of them.

The model runs in transformers with eager attention and ``output_attentions=True``: row i of a
head's T x T matrix is how much token i attends to each token j (a causal model gives zero
above the diagonal; each row sums to 1).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from engines.core.errors import RequestError
from engines.core.requests.explore import MAX_ATTENTION_TOKENS

# Colour ramp for heatmaps (dark to bright, like 'magma'), also used by the desktop view.
RAMP = ((0.0, (16, 17, 24)), (0.25, (72, 31, 110)), (0.5, (180, 54, 121)), (0.75, (246, 128, 76)), (1.0, (252, 236, 170)))


@dataclass
class AttentionMaps:
    tokens: list[str]  # each token's text
    ids: list[int]
    weights: np.ndarray  # float32, layers x heads x T x T

    @property
    def layers(self) -> int:
        return self.weights.shape[0]

    @property
    def heads(self) -> int:
        return self.weights.shape[1]

    def matrix(self, layer: int, head: int | None) -> np.ndarray:
        """One head's T x T weights, or the mean over heads when ``head`` is None."""
        if not -self.layers <= layer < self.layers:
            raise RequestError(f"Layer {layer} does not exist.", hint=f"The model has layers 0 to {self.layers - 1}.")
        if head is None:
            return self.weights[layer].mean(axis=0)
        if not -self.heads <= head < self.heads:
            raise RequestError(f"Head {head} does not exist.", hint=f"Each layer has heads 0 to {self.heads - 1}.")
        return self.weights[layer, head]

    def to_json(self, decimals: int = 5) -> dict:
        """``{"tokens", "ids", "layers", "heads", "attentions": [layer][head][i][j]}``."""
        return {"tokens": self.tokens, "ids": self.ids, "layers": self.layers, "heads": self.heads,
                "attentions": np.round(self.weights.astype(np.float64), decimals).tolist()}


def attention_maps(model, tokenizer, text: str, max_tokens: int = 64) -> AttentionMaps:
    """Run ``text`` through ``model`` (loaded with eager attention) and collect every attention map."""
    import torch

    if not isinstance(text, str) or not text.strip():
        raise RequestError("The text is empty.", hint="Type a short sentence.")
    if not isinstance(max_tokens, int) or not 2 <= max_tokens <= MAX_ATTENTION_TOKENS:
        raise RequestError(f"'max_tokens' is {max_tokens!r}.", hint=f"Use 2 to {MAX_ATTENTION_TOKENS}.")
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if len(ids) > max_tokens:
        raise RequestError(f"The text is {len(ids)} tokens; attention maps are shown for up to {max_tokens}.",
                           hint="Shorten the text: the maps grow with the square of its length.")
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True, use_cache=False)
    if not out.attentions or out.attentions[0] is None:
        raise RequestError("This model did not return attention weights.",
                           hint="Its attention implementation cannot return them; try another model.")
    weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()
    tokens = [tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids]
    return AttentionMaps(tokens, [int(i) for i in ids], weights)


def ramp_colour(value: float) -> tuple[int, int, int]:
    value = min(1.0, max(0.0, float(value)))
    for (p0, c0), (p1, c1) in zip(RAMP, RAMP[1:]):
        if value <= p1:
            t = (value - p0) / (p1 - p0)
            return tuple(int(round(a + (b - a) * t)) for a, b in zip(c0, c1))
    return RAMP[-1][1]


def heatmap_png(matrix: np.ndarray, tokens: list[str], title: str = "") -> bytes:
    """A labelled heatmap of one T x T matrix (rows attend to columns), as PNG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    from engines.text.explore_tokens import visible

    size = matrix.shape[0]
    cell = max(10, min(32, 640 // max(1, size)))
    font = ImageFont.load_default()
    labels = [_short(visible(t)) for t in tokens]
    label_w = max((int(font.getlength(s)) for s in labels), default=0) + 12
    top = label_w + (24 if title else 6)
    width, height = label_w + size * cell + 16, top + size * cell + 16
    image = Image.new("RGB", (width, height), (21, 23, 27))
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((8, 6), title, fill=(228, 230, 235), font=font)
    peak = float(matrix.max()) or 1.0
    lut = [ramp_colour(i / 255) for i in range(256)]
    for i in range(size):
        for j in range(size):
            colour = lut[int(round(255 * float(matrix[i, j]) / peak))]
            x0, y0 = label_w + j * cell, top + i * cell
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=colour)
        y = top + i * cell + (cell - 10) // 2
        draw.text((label_w - 6 - font.getlength(labels[i]), y), labels[i], fill=(200, 204, 212), font=font)
    # Column labels, written sideways in a strip above the grid.
    strip = Image.new("RGB", (label_w, size * cell), (21, 23, 27))
    strip_draw = ImageDraw.Draw(strip)
    for j, label in enumerate(labels):
        strip_draw.text((6, j * cell + (cell - 10) // 2), label, fill=(200, 204, 212), font=font)
    # Turned a quarter anticlockwise: each label reads upwards from just above its column.
    image.paste(strip.rotate(90, expand=True), (label_w, top - label_w))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
