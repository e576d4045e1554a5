"""The bundled image model end to end: it ships as a small safetensors diffusers folder and the
CLI turns a caption into a 64x64 PNG with A1111 parameters through the same engine."""
from __future__ import annotations

import sys
from pathlib import Path


from tests.helpers import ROOT
from tests.test_cli import hearth

BUNDLED = ROOT / "assets" / "image-default"


def test_bundled_model_is_small_safetensors_only():
    from engines.models.image_models import inspect_image_model

    entry = inspect_image_model("default")
    assert entry.source == "bundled" and entry.format == "diffusers"
    files = [p for p in BUNDLED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 40_000_000
    assert not [p for p in files if p.suffix in (".bin", ".ckpt", ".pt", ".pth", ".pkl")]


def test_cli_with_the_bundled_model(tmp_path):
    from PIL import Image

    from engines.image.shapes import classify

    out = hearth("image", "--prompt", "a large yellow square in the center on a blue background", "--seed", "1",
                 "--out", str(tmp_path / "sq.png"), home=tmp_path)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    with Image.open(path) as img:
        assert img.size == (64, 64)
        params = img.info["parameters"]
        got = classify(img)
    assert params.startswith("a large yellow square in the center on a blue background\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64")
    assert "Model: default" in params
    assert got["background"] == "blue" and got["color"] == "yellow" and got["shape"] == "square", got
