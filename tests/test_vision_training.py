"""tools/train_vision_model.py on a tiny tower: a few steps through the real (frozen) SmolLM2, stopped and resumed,
ends where an uninterrupted run ends, and exports a bundle llama.cpp's mmproj loader reads."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "hearth-shared-cache"  # the converted SmolLM2, shared with other tests
    cache.mkdir(exist_ok=True)
    old = os.environ.get("HEARTH_CACHE")
    os.environ["HEARTH_CACHE"] = str(cache)
    spec = importlib.util.spec_from_file_location("train_vision_model", ROOT / "tools" / "train_vision_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    if old is None:
        os.environ.pop("HEARTH_CACHE", None)
    else:
        os.environ["HEARTH_CACHE"] = old


def run(tool, tmp_path, name, steps, resume=False):
    args = ["--tiny", "--checkpoint", str(tmp_path / f"ck-{name}"), "--out", str(tmp_path / f"out-{name}"),
            "--stage1-steps", "1", "--stage1-batch", "4", "--init-steps", "1", "--steps", str(steps), "--batch", "2",
            "--turns", "2", "--token-steps", "2", "--threads", "1", "--eval-every", "1000", "--checkpoint-every", "1", "--seed", "7"]
    assert tool.main(args + (["--resume"] if resume else [])) == 0
    return tmp_path / f"out-{name}"


def test_two_steps_then_resume_matches_an_uninterrupted_run(tool, tmp_path, capsys):
    import gguf
    from safetensors.torch import load_file

    run(tool, tmp_path, "a", 1)
    out_a = run(tool, tmp_path, "a", 2, resume=True)
    assert "resumed at stage-1 step 1, init step 1, stage-2 step 1" in capsys.readouterr().out
    out_b = run(tool, tmp_path, "b", 2)

    a, b = load_file(out_a / "vision.safetensors"), load_file(out_b / "vision.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() <= 1e-6, key
    training = json.loads((out_a / "training.json").read_text())
    assert training["stage2_steps"] == 2 and len(training["runs"]) == 2 and training["seed"] == 7
    assert training["loss_curve"] == [] or all("loss" in p for p in training["loss_curve"])
    config = json.loads((out_a / "config.json").read_text())
    assert config["projector"]["output_size"] == 576 and config["image_tokens"] == 4
    reader = gguf.GGUFReader(str(out_a / "mmproj-hearth-shapes.gguf"))
    assert any(t.name == "mm.2.weight" for t in reader.tensors)


def test_shape_tokens_are_the_patches_that_hold_the_shape(tool):
    """Stage 1c teaches only the tokens that hold the shape: on a 4x4 patch grid, a large shape on the left lies in
    the left half, one at the top in the top half, and the background-only patches are not picked."""
    import random

    from engines.image import shapes

    tower = tool.default_tower()
    scenes = {p: next(s for s in shapes.all_scenes() if s.position == p and s.size == "large") for p in ("left", "top")}
    images = [shapes.render(scenes[p], rng=random.Random(0)) for p in ("left", "top")]
    masks = tool.shape_tokens(images, list(scenes.values()), tower).reshape(2, 4, 4)
    left, top = masks[0], masks[1]
    assert 2 <= int(left.sum()) <= 6 and 2 <= int(top.sum()) <= 6
    assert left[:, :2].sum() > left[:, 2:].sum() and not left[:, 3].any()
    assert top[:2].sum() > top[2:].sum() and not top[3].any()
