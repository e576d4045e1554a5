"""Procedural captioned images for the bundled image model, and a pixel classifier to grade it.

Shared by tools/train_default_image_model.py (training data), benchmarks/default_image_quality.py
(held-out prompts and grading), tests/test_image_shapes.py and engines/decode (procedural stimuli with known
labels). numpy, Pillow and scipy; torch only inside vae_round_trip.
"""
from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
COLORS = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (240, 220, 30),
    "orange": (245, 140, 20), "purple": (140, 50, 180), "white": (245, 245, 245), "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = {"small": 8, "large": 14}  # half-width in pixels at 64x64
POSITIONS = {  # phrase, centre (x, y) as a fraction of the image
    "left": ("on the left", (0.27, 0.5)), "right": ("on the right", (0.73, 0.5)),
    "top": ("at the top", (0.5, 0.27)), "bottom": ("at the bottom", (0.5, 0.73)),
    "center": ("in the center", (0.5, 0.5)),
}


@dataclass(frozen=True)
class Scene:
    color: str
    shape: str
    size: str
    position: str
    background: str

    def caption(self, drop_size: bool = False, drop_position: bool = False, drop_background: bool = False) -> str:
        words = ["a"] + ([] if drop_size else [self.size]) + [self.color, self.shape]
        if not drop_position:
            words.append(POSITIONS[self.position][0])
        if not drop_background:
            words += ["on a", self.background, "background"]
        return " ".join(words)

    @property
    def held_out(self) -> bool:
        """About one scene in eight is never trained on; the quality benchmark uses those."""
        key = f"{self.color}|{self.shape}|{self.size}|{self.position}|{self.background}"
        return sum(map(ord, key)) * 2654435761 % 8 == 0


def all_scenes() -> list[Scene]:
    return [Scene(c, s, z, p, b) for c in COLORS for s in SHAPES for z in SIZES for p in POSITIONS for b in COLORS if b != c]


def render(scene: Scene, rng: random.Random | None = None, size: int = SIZE) -> Image.Image:
    rng = rng or random.Random(0)
    img = Image.new("RGB", (size, size), COLORS[scene.background])
    draw = ImageDraw.Draw(img)
    fx, fy = POSITIONS[scene.position][1]
    r = SIZES[scene.size] * size / SIZE * rng.uniform(0.9, 1.1)
    cx = fx * size + rng.uniform(-2, 2) * size / SIZE
    cy = fy * size + rng.uniform(-2, 2) * size / SIZE
    _draw_shape(draw, scene.shape, cx, cy, r, COLORS[scene.color])
    return img


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = r * 0.9
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)], fill=fill)
    else:  # star: five points, inner radius 0.42
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rr = r * 1.1 if i % 2 == 0 else r * 0.46
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=fill)


# -- grading ----------------------------------------------------------------
_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)
_NAMES = list(COLORS)


def nearest_color(rgb) -> str:
    return _NAMES[int(np.argmin(((_PALETTE - np.asarray(rgb, dtype=np.float32)) ** 2).sum(1)))]


@functools.lru_cache(maxsize=None)
def _reference_area(shape: str) -> int:
    return int(_template(shape, 10.0).sum())


def _template(shape: str, r: float) -> np.ndarray:
    """A 0/1 mask of ``shape`` at radius ``r``, drawn as render() draws it, centred in a 64x64 frame."""
    img = Image.new("L", (SIZE, SIZE), 0)
    _draw_shape(ImageDraw.Draw(img), shape, SIZE / 2, SIZE / 2, r, 1)
    return np.asarray(img)


def _best_shape(mask: np.ndarray, cy: float, cx: float) -> str:
    """The shape whose template overlaps ``mask`` (centroid ``cy``, ``cx`` in pixels) best, by intersection over union.

    Each template is scaled to the mask's area and moved onto its centroid, then nudged by up to 2 px and 10%
    in size. Fill-ratio rules read soft edges wrongly (a faithful VAE reconstruction of a star read as a
    triangle); overlap with the drawn shape does not depend on edge sharpness.
    """
    from scipy import ndimage

    area = float(mask.sum())
    best, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        base_r = 10.0 * math.sqrt(area / _reference_area(shape))
        for scale in (0.9, 1.0, 1.1):
            t = _template(shape, base_r * scale)
            ty, tx = np.nonzero(t)
            oy, ox = int(round(cy - ty.mean())), int(round(cx - tx.mean()))
            for dy in (-2, -1, 0, 1, 2):
                for dx in (-2, -1, 0, 1, 2):
                    moved = ndimage.shift(t, (oy + dy, ox + dx), order=0, cval=0, prefilter=False).astype(bool)
                    iou = (moved & mask).sum() / float((moved | mask).sum())
                    if iou > best_iou:
                        best, best_iou = shape, iou
    return best


def classify(image: Image.Image) -> dict:
    """Read colour, background, shape and position back from pixels (flat-colour scenes only).

    Background: the median border colour. Shape pixels: those whose nearest palette colour differs from the
    background's and that lie in the largest connected blob of them (specks elsewhere are noise). Colour: the
    blob's most common palette colour; the outline is then where pixels are nearer that colour than the
    background's. Shape: the best-overlapping drawn template (_best_shape). Position: the
    blob centroid's nearest position centre.
    """
    from scipy import ndimage

    a = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    background = nearest_color(np.median(border, axis=0))
    bg_rgb = np.asarray(COLORS[background], dtype=np.float32)
    labels = ((a[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1).argmin(-1)
    mask = (labels != _NAMES.index(background)) & (np.abs(a - bg_rgb).sum(-1) > 90)
    blobs, count = ndimage.label(mask)
    if count:
        mask = blobs == (np.bincount(blobs.ravel())[1:].argmax() + 1)
    if mask.sum() < 12:
        return {"background": background, "color": None, "shape": None, "position": None}
    counts = np.bincount(labels[mask], minlength=len(_NAMES))
    color = _NAMES[int(counts.argmax())]
    # Then the outline: pixels nearer the shape's colour than the background's (the midpoint of a soft edge),
    # in the blob's neighbourhood.
    fg_rgb = np.asarray(COLORS[color], dtype=np.float32)
    nearer = ((a - fg_rgb) ** 2).sum(-1) < ((a - bg_rgb) ** 2).sum(-1)
    mask = nearer & ndimage.binary_dilation(mask, iterations=2)
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][1][0] - cx / SIZE) ** 2 + (POSITIONS[p][1][1] - cy / SIZE) ** 2)
    return {"background": background, "color": color, "shape": _best_shape(mask, cy, cx), "position": position}


ATTRIBUTES = ("color", "background", "shape", "position")


# What a generator that ignored the caption would score: one value drawn uniformly from each attribute's choices.
CHANCE = {"color": 1 / len(COLORS), "background": 1 / len(COLORS), "shape": 1 / len(SHAPES),
          "position": 1 / len(POSITIONS)}


def accuracy(scenes, images) -> dict[str, float]:
    """The share of ``images`` in which classify() reads each attribute of its scene."""
    return accuracy_by(scenes, images)["overall"]


def accuracy_by(scenes, images, attribute: str = "position") -> dict:
    """accuracy() overall, and per value of ``attribute``: for each value asked for ("left", "right", ...), the
    share of its images in which that value is read back, and how many images asked for it."""
    hits = dict.fromkeys(ATTRIBUTES, 0)
    per: dict[str, list[int]] = {}
    for scene, img in zip(scenes, images, strict=True):
        got = classify(img)
        for k in ATTRIBUTES:
            hits[k] += got[k] == getattr(scene, k)
        asked = getattr(scene, attribute)
        per.setdefault(asked, [0, 0])
        per[asked][0] += got[attribute] == asked
        per[asked][1] += 1
    return {"overall": {k: v / len(scenes) for k, v in hits.items()},
            "per_value": {v: {"accuracy": h / n, "images": n} for v, (h, n) in sorted(per.items())}}


def vae_round_trip(vae, images) -> list[Image.Image]:
    """``images`` through an AutoencoderKL and back (the latent mean, no sampling): what a perfect UNet could draw."""
    import torch

    x = torch.from_numpy(np.stack([np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1 for img in images]))
    with torch.no_grad():
        y = vae.decode(vae.encode(x.permute(0, 3, 1, 2)).latent_dist.mean).sample
    y = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a) for a in y]
