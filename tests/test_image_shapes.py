"""The pixel grader behind benchmarks/default_image_quality.py and Decode's per-attribute accuracy: it must read
crisp renders, soft edges and the bundled VAE's reconstructions of them right, or the benchmark measures the
grader instead of the model."""
from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageFilter

from engines.image.shapes import ATTRIBUTES, COLORS, accuracy, all_scenes, classify, render
from tests.helpers import ROOT


def _scenes(n: int, seed: int = 1):
    return random.Random(seed).sample(all_scenes(), n)


def test_reads_every_attribute_of_crisp_renders():
    scenes = _scenes(160)
    rng = random.Random(2)
    assert accuracy(scenes, [render(s, rng) for s in scenes]) == {k: 1.0 for k in ATTRIBUTES}


def test_reads_soft_edges():
    scenes = _scenes(160, seed=3)
    rng = random.Random(4)
    acc = accuracy(scenes, [render(s, rng).filter(ImageFilter.GaussianBlur(1.2)) for s in scenes])
    assert min(acc.values()) >= 0.97, acc


def test_every_shape_is_told_apart_from_the_others():
    from engines.image.shapes import Scene

    for shape in ("circle", "square", "triangle", "star"):
        for size in ("small", "large"):
            for position in ("left", "center", "bottom"):
                img = render(Scene("red", shape, size, position, "white"), random.Random(0))
                assert classify(img)["shape"] == shape, (shape, size, position)


def test_an_empty_image_has_no_shape():
    got = classify(Image.new("RGB", (64, 64), COLORS["blue"]))
    assert got == {"background": "blue", "color": None, "shape": None, "position": None}


def test_ignores_a_stray_speck():
    from engines.image.shapes import Scene

    img = render(Scene("yellow", "triangle", "large", "right", "black"), random.Random(0))
    a = np.asarray(img).copy()
    a[5:8, 5:8] = COLORS["yellow"]  # a 3x3 speck in the corner
    got = classify(Image.fromarray(a))
    assert got["shape"] == "triangle" and got["position"] == "right", got


def test_reads_the_bundled_vaes_reconstructions():
    """The ceiling any generator using the bundled VAE can reach. Small stars lose their points in the 16x16 latent
    (about half read as circles), so shape sits near 0.9; everything else is read right."""
    from diffusers import AutoencoderKL

    from engines.image.shapes import vae_round_trip

    vae = AutoencoderKL.from_pretrained(ROOT / "assets" / "image-default" / "vae", local_files_only=True)
    scenes = _scenes(128, seed=5)
    rng = random.Random(6)
    acc = accuracy(scenes, vae_round_trip(vae, [render(s, rng) for s in scenes]))
    assert acc["color"] >= 0.98 and acc["background"] == 1.0 and acc["position"] >= 0.98, acc
    assert acc["shape"] >= 0.85, acc


def test_accuracy_by_position_word_counts_each_word_apart():
    from engines.image.shapes import Scene, accuracy_by

    scenes = [Scene("red", "circle", "large", p, "white") for p in ("left", "left", "right", "top")]
    rng = random.Random(0)
    images = [render(s, rng) for s in scenes]
    images[1] = render(Scene("red", "circle", "large", "right", "white"), rng)  # asked left, drawn right
    graded = accuracy_by(scenes, images, "position")
    assert graded["overall"]["position"] == 0.75 and graded["overall"]["color"] == 1.0
    assert graded["per_value"] == {"left": {"accuracy": 0.5, "images": 2}, "right": {"accuracy": 1.0, "images": 1},
                                   "top": {"accuracy": 1.0, "images": 1}}
