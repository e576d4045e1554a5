"""The bundled image model end to end: it ships as a small safetensors diffusers folder and the
CLI turns a caption into a 64x64 PNG with A1111 parameters through the same engine."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engines.core.requests.image import SCHEDULERS
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


def test_its_zero_snr_schedule_survives_every_sampler_swap():
    """The bundled model is trained for zero terminal SNR with v-prediction; a sampler that lost any of those
    settings would start from the wrong noise level or misread the UNet's output."""
    import json

    from engines.image.schedulers import make_scheduler

    config = json.loads((BUNDLED / "scheduler" / "scheduler_config.json").read_text())
    for name in SCHEDULERS:
        scheduler = make_scheduler(name, config)
        scheduler.set_timesteps(20)
        assert scheduler.config.prediction_type == "v_prediction", name
        assert scheduler.config.timestep_spacing == "trailing", name
        # t=999 keeps at most 0.25% of the image (SD's schedule kept 6.8%): 2**-24 or sigma 400 (Heun, LMS)
        assert float(scheduler.alphas_cumprod[-1]) < 1e-5, name
        # Sampling starts at the top: t=999, or t>=990 where a capped sigma maps into the flat top (Karras)
        assert int(scheduler.timesteps[0]) >= 990, name


def test_lms_steps_at_order_two_below_sigma_one_on_v_prediction_only(monkeypatch):
    """LMS's order-4 steps turn a v-prediction model's low-sigma jitter into speckles (engines/image/schedulers.py
    says what was measured); Hearth's LMS lowers the order there and only there."""
    import json

    import torch
    from diffusers import LMSDiscreteScheduler

    from engines.image.schedulers import LMS_LOW_SIGMA, make_scheduler

    config = json.loads((BUNDLED / "scheduler" / "scheduler_config.json").read_text())
    orders = []
    original = LMSDiscreteScheduler.step

    def record(self, model_output, timestep, sample, order=4, return_dict=True):
        orders.append((float(self.sigmas[self.step_index]), order))
        return original(self, model_output, timestep, sample, order=order, return_dict=return_dict)

    monkeypatch.setattr(LMSDiscreteScheduler, "step", record)  # what Hearth's LMS hands diffusers' step
    scheduler = make_scheduler("LMS", config)
    scheduler.set_timesteps(20)
    sample = torch.randn(1, 4, 8, 8) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        sample = scheduler.step(torch.zeros_like(sample), t, scheduler.scale_model_input(sample, t)).prev_sample
    assert {o for s, o in orders if s >= LMS_LOW_SIGMA} == {4}
    assert {o for s, o in orders if s < LMS_LOW_SIGMA} == {2}
    epsilon = make_scheduler("LMS", {**config, "prediction_type": "epsilon"})
    assert type(epsilon) is LMSDiscreteScheduler  # epsilon models keep diffusers' own LMS


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    import os

    import torch

    from engines.image.engine import ImageEngine

    home = tmp_path_factory.mktemp("hearth-home")
    old = os.environ.get("HEARTH_HOME")
    os.environ["HEARTH_HOME"] = str(home)
    torch.set_num_threads(1)
    eng = ImageEngine(outputs_dir=home / "outputs")
    yield eng
    eng.close()
    if old is None:
        os.environ.pop("HEARTH_HOME", None)
    else:
        os.environ["HEARTH_HOME"] = old


# Scenes the model never saw in training (Scene.held_out), one per position word.
UNSEEN = {"left": "a large purple square on the left on a white background",
          "right": "a large black circle on the right on a blue background",
          "top": "a large green square at the top on a blue background",
          "bottom": "a large red square at the bottom on a orange background",
          "center": "a large white star in the center on a green background"}


def test_the_prompts_below_were_never_trained_on():
    from engines.image.shapes import all_scenes

    held_out = {s.caption() for s in all_scenes() if s.held_out}
    assert set(UNSEEN.values()) <= held_out


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_sampler_draws_what_the_caption_asks(engine, scheduler, tmp_path):
    """Colour, position and background right together in 4 of 5 images, and the shape in 4 of 5. (Euler: 258 of 258
    held-out positions right. UniPC and LCM draw the red square on orange in the center at this seed.)"""
    from PIL import Image

    from engines.core.cancel import CancelToken
    from engines.core.events import Result
    from engines.core.requests.image import ImageRequest
    from engines.image.shapes import classify

    shapes_right = scenes_right = 0
    misses = []
    for position, prompt in UNSEEN.items():
        request = ImageRequest(prompt=prompt, model="default", steps=20, guidance=7.0, width=64, height=64, seed=1,
                               scheduler=scheduler, preview_every=0)
        result = list(engine.generate(request, CancelToken(), out_path=tmp_path / f"{position}.png"))[-1]
        assert isinstance(result, Result)
        with Image.open(result.data["images"][0]["path"]) as img:
            got = classify(img)
        words = prompt.split()
        if (got["color"], got["position"], got["background"]) == (words[2], position, words[-2]):
            scenes_right += 1
        else:
            misses.append((prompt, got))
        shapes_right += got["shape"] == words[3]
    assert scenes_right >= 4, (scheduler, misses)
    assert shapes_right >= 4, (scheduler, shapes_right)
