"""The image engine on a tiny SD pipeline built from configs: modes, schedulers, seeds, LoRA,
cancel, previews, PNG metadata, gallery, and every bad input of the issue."""
from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import pytest

from engines.core.cancel import CancelToken
from engines.core.errors import HearthError, ModelFileError, OutOfMemoryError, RequestError, UnsupportedModelError
from engines.core.events import Preview, Progress, Result
from engines.image.metadata import a1111_parameters, parse_parameters, read_png_metadata
from engines.core.requests.image import SCHEDULERS, ImageRequest, LoraSpec, MemoryOptions, parse_lora_arg

from tests.image_support import save_tiny_lora, save_tiny_model, tiny_pipeline  # noqa: E402

SMALL = dict(steps=3, width=32, height=32, seed=5, prompt="a red circle")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("hearth-home")
    old = os.environ.get("HEARTH_HOME")
    os.environ["HEARTH_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HEARTH_HOME", None)
    else:
        os.environ["HEARTH_HOME"] = old


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="module")
def engine(home):
    import torch

    from engines.image.engine import ImageEngine

    torch.set_num_threads(1)
    eng = ImageEngine(outputs_dir=home / "outputs")
    yield eng
    eng.close()


def run(engine, cancel=None, out_path=None, **fields):
    events = list(engine.generate(ImageRequest(**fields), cancel or CancelToken(), out_path=out_path))
    assert isinstance(events[-1], Result)
    return events


def pixels(path) -> bytes:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB").tobytes()


# -- request -----------------------------------------------------------------
def test_request_json_round_trip():
    req = ImageRequest(prompt="a cat", negative_prompt="blurry", mode="img2img", init_image="x.png", steps=7,
                       loras=[LoraSpec("a.safetensors", 0.5)], memory=MemoryOptions(offload="model", vae_tiling=True))
    again = ImageRequest.from_dict(json.loads(json.dumps(req.to_dict())))
    assert again == req


@pytest.mark.parametrize("fields, words", [
    ({"width": 500}, "not a multiple of 8"),
    ({"height": 65}, "not a multiple of 8"),
    ({"scheduler": "Euler b"}, "Unknown scheduler"),
    ({"steps": 0}, "steps"),
    ({"mode": "inpaint", "init_image": "a.png"}, "needs a mask"),
    ({"mode": "img2img"}, "needs an init image"),
    ({"seed": -1}, "seed"),
    ({"memory": {"offload": "disk"}}, "offload"),
])
def test_bad_requests_say_what_to_fix(fields, words):
    with pytest.raises(RequestError, match=words):
        ImageRequest.from_dict({"prompt": "x", **fields})


def test_unknown_field_is_named():
    with pytest.raises(RequestError, match="cfg"):
        ImageRequest.from_dict({"prompt": "x", "cfg": 7})


def test_lora_argument_parsing():
    assert parse_lora_arg("a/b.safetensors:0.6") == LoraSpec("a/b.safetensors", 0.6)
    assert parse_lora_arg("a/b.safetensors") == LoraSpec("a/b.safetensors", 1.0)
    assert parse_lora_arg("C:/x.safetensors") == LoraSpec("C:/x.safetensors", 1.0)


# -- generation ----------------------------------------------------------------
def test_txt2img_streams_progress_previews_and_writes_png(engine, tiny_model, home):
    from PIL import Image

    from engines.store.gallery import Gallery
    from engines.store.storage import Database

    events = run(engine, model=str(tiny_model), **SMALL)
    progress = [e for e in events if isinstance(e, Progress)]
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.step for p in progress] == [1, 2, 3] and progress[-1].total == 3
    assert len(previews) == 3
    assert Image.open(io.BytesIO(previews[0].png)).format == "PNG"
    result = events[-1]
    assert result.finish_reason == "stop"
    (image,) = result.data["images"]
    path = Path(image["path"])
    assert path.is_file() and path.is_relative_to(home / "outputs")
    meta = read_png_metadata(path)
    assert meta["parameters"].startswith("a red circle\nSteps: 3, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 32x32, Model hash: ")
    assert meta["parsed"]["Seed"] == 5 and meta["hearth"]["prompt"] == "a red circle" and meta["hearth"]["seed"] == 5
    again = ImageRequest.from_dict(meta["hearth"])  # the stored request re-runs as is
    assert again.seed == 5
    db = Database()
    try:
        rows = Gallery(db).list(search="red circle")
    finally:
        db.close()
    assert any(r.path == str(path) for r in rows)


def test_batch_seeds_are_seed_plus_i_and_reproducible(engine, tiny_model, tmp_path):
    batch = run(engine, model=str(tiny_model), batch_size=2, batch_count=2, out_path=tmp_path / "b.png", **SMALL)[-1]
    assert [im["seed"] for im in batch.data["images"]] == [5, 6, 7, 8]
    single = run(engine, model=str(tiny_model), out_path=tmp_path / "s.png", **{**SMALL, "seed": 7})[-1]
    assert pixels(batch.data["images"][2]["path"]) == pixels(single.data["images"][0]["path"])
    assert pixels(batch.data["images"][0]["path"]) != pixels(batch.data["images"][1]["path"])


def test_img2img_and_inpaint_reuse_the_loaded_weights(engine, tiny_model, tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 20, 20)).save(tmp_path / "init.png")
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    mask.save(tmp_path / "mask.png")
    img2img = run(engine, model=str(tiny_model), mode="img2img", init_image=str(tmp_path / "init.png"), strength=0.5, **SMALL)
    inpaint = run(engine, model=str(tiny_model), mode="inpaint", init_image=str(tmp_path / "init.png"),
                  mask=str(tmp_path / "mask.png"), **SMALL)
    assert img2img[-1].finish_reason == inpaint[-1].finish_reason == "stop"
    assert "Denoising strength: 0.5" in img2img[-1].data["images"][0]["parameters"]
    (model,) = engine.loaded()
    assert model.mode_pipes["img2img"].unet is model.pipe.unet is model.mode_pipes["inpaint"].unet


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_runs(engine, tiny_model, scheduler, tmp_path):
    events = run(engine, model=str(tiny_model), scheduler=scheduler, out_path=tmp_path / "x.png", preview_every=0, **SMALL)
    assert events[-1].finish_reason == "stop"
    assert f"Sampler: {scheduler}," in events[-1].data["images"][0]["parameters"]
    assert sum(isinstance(e, Progress) for e in events) >= 3


def test_cancel_mid_run_skips_decode_and_saves_nothing(engine, tiny_model, home, monkeypatch):
    run(engine, model=str(tiny_model), **SMALL)  # loaded
    (model,) = engine.loaded()
    decodes = []
    real_decode = model.pipe.vae.decode
    monkeypatch.setattr(model.pipe.vae, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    before = sorted((home / "outputs").rglob("*.png"))
    cancel = CancelToken()
    events = []
    for event in engine.generate(ImageRequest(model=str(tiny_model), **{**SMALL, "steps": 10}), cancel):
        events.append(event)
        if isinstance(event, Progress) and event.step == 2:
            cancel.cancel()
    assert events[-1].finish_reason == "cancelled" and events[-1].data["images"] == []
    assert max(e.step for e in events if isinstance(e, Progress)) <= 3  # stopped within one step
    assert decodes == []
    assert sorted((home / "outputs").rglob("*.png")) == before
    assert not list((home / "outputs").rglob("*.tmp"))
    assert run(engine, model=str(tiny_model), **SMALL)[-1].finish_reason == "stop"  # the lane still works


def test_lora_load_weight_and_unload(engine, tiny_model, tmp_path):
    lora = save_tiny_lora(tiny_pipeline(tmp_path / "w"), tmp_path / "style.safetensors")
    kohya = save_tiny_lora(tiny_pipeline(tmp_path / "w"), tmp_path / "kohya.safetensors", kohya=True, seed=2)
    out = tmp_path / "o.png"
    base = pixels(run(engine, model=str(tiny_model), out_path=out, **SMALL)[-1].data["images"][0]["path"])
    with_lora = pixels(run(engine, model=str(tiny_model), out_path=out, loras=[LoraSpec(str(lora), 1.0)], **SMALL)[-1]
                       .data["images"][0]["path"])
    half = pixels(run(engine, model=str(tiny_model), out_path=out, loras=[LoraSpec(str(lora), 0.3)], **SMALL)[-1]
                  .data["images"][0]["path"])
    both = run(engine, model=str(tiny_model), out_path=out, loras=[LoraSpec(str(lora), 1.0), LoraSpec(str(kohya), 0.7)], **SMALL)
    assert "Lora weights: " in both[-1].data["images"][0]["parameters"]
    after = pixels(run(engine, model=str(tiny_model), out_path=out, **SMALL)[-1].data["images"][0]["path"])
    assert with_lora != base and half not in (base, with_lora)
    assert after == base  # unloading restores the model exactly


def test_lora_that_does_not_fit_is_refused(engine, tiny_model, tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "other-model.safetensors"  # rank-2 LoRA for projections of another width
    save_file({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": torch.zeros(2, 320),
               "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight": torch.zeros(320, 2)}, str(bad))
    with pytest.raises(UnsupportedModelError, match="does not fit"):
        run(engine, model=str(tiny_model), loras=[LoraSpec(str(bad), 1.0)], **SMALL)
    assert run(engine, model=str(tiny_model), **SMALL)[-1].finish_reason == "stop"
    not_lora = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(not_lora))
    with pytest.raises(UnsupportedModelError, match="not a LoRA"):
        run(engine, model=str(tiny_model), loras=[LoraSpec(str(not_lora))], **SMALL)


# -- metadata ------------------------------------------------------------------
def test_a1111_parameters_format_and_parse():
    req = ImageRequest(prompt="a cat, sitting", negative_prompt="blurry\nugly", steps=20, guidance=7.5, width=512,
                       height=768, scheduler="DPM++ 2M Karras")
    text = a1111_parameters(req, 123, "my: model", "abcdef1234")
    assert text == ('a cat, sitting\nNegative prompt: blurry\nugly\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, '
                    'Seed: 123, Size: 512x768, Model hash: abcdef1234, Model: "my: model"')
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "a cat, sitting" and parsed["negative_prompt"] == "blurry\nugly"
    assert parsed["Steps"] == 20 and parsed["CFG scale"] == 7.5 and parsed["Seed"] == 123
    assert parsed["Model"] == "my: model" and (parsed["width"], parsed["height"]) == (512, 768)


def test_parse_a_real_a1111_text():
    text = ("masterpiece, 1girl, <lora:detail:0.6>\nNegative prompt: lowres, bad anatomy\n"
            "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 3405691582, Size: 512x768, "
            'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "detail: 3b1c8a1f", Version: v1.7.0')
    p = parse_parameters(text)
    assert p["prompt"] == "masterpiece, 1girl, <lora:detail:0.6>"
    assert p["negative_prompt"] == "lowres, bad anatomy"
    assert p["Sampler"] == "DPM++ 2M Karras" and p["Seed"] == 3405691582 and p["Lora hashes"] == "detail: 3b1c8a1f"
    assert p["Version"] == "v1.7.0"


def test_png_without_parameters(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert read_png_metadata(tmp_path / "plain.png") == {"parameters": None, "parsed": None, "hearth": None}


# -- bad models ----------------------------------------------------------------
def test_truncated_and_corrupt_safetensors(engine, tiny_model, tmp_path):
    good = (tiny_model / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\0" * 64)
    for path, words in ((truncated, "truncated"), (corrupt, "corrupt")):
        with pytest.raises(ModelFileError, match=words) as info:
            run(engine, model=str(path), **SMALL)
        assert str(path) in str(info.value)
    broken = tmp_path / "broken-folder"  # a diffusers folder whose UNet was cut short
    import shutil

    shutil.copytree(tiny_model, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(good[: len(good) - 100])
    with pytest.raises(ModelFileError, match="truncated"):
        run(engine, model=str(broken), **SMALL)


def test_unknown_architecture(engine, tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.layer.0.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(UnsupportedModelError, match="not a Stable Diffusion checkpoint") as info:
        run(engine, model=str(path), **SMALL)
    assert str(path) in str(info.value)
    odd = tmp_path / "odd-width.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(4, 512)}, str(odd))
    with pytest.raises(UnsupportedModelError, match="matches no SD"):
        run(engine, model=str(odd), **SMALL)


def test_architecture_detection_from_header(tmp_path):
    from engines.models.image_models import detect_single_file_architecture as detect

    unet = "model.diffusion_model."
    k = unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"
    inp = unet + "input_blocks.0.0.weight"
    xl = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"
    assert detect([inp, k], {inp: [320, 4, 3, 3], k: [320, 768]}, tmp_path) == "sd1"
    assert detect([inp, k], {inp: [320, 9, 3, 3], k: [320, 768]}, tmp_path) == "sd1-inpaint"
    assert detect([inp, k], {inp: [320, 4, 3, 3], k: [320, 1024]}, tmp_path) == "sd2"
    assert detect([inp, k, xl], {inp: [320, 4, 3, 3], k: [640, 2048]}, tmp_path) == "sdxl"
    assert detect(["lora_unet_down_blocks_0.lora_down.weight"], {}, tmp_path) == "lora"


class _Payload:
    """Unpickling this calls os.system: the attack a .ckpt can carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin"])
def test_pickles_are_refused_and_never_executed(engine, tmp_path, suffix):
    marker = tmp_path / f"pwned{suffix}"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    with pytest.raises(UnsupportedModelError, match="pickle") as info:
        run(engine, model=str(evil), **SMALL)
    assert "arbitrary code" in str(info.value) and str(evil) in str(info.value)
    # Opted in: torch.load(weights_only=True) refuses the payload; it never runs.
    with pytest.raises(UnsupportedModelError, match="could not be read as plain tensors"):
        run(engine, model=str(evil), allow_pickle=True, **SMALL)
    assert not marker.exists()


def test_opted_in_pickle_of_plain_tensors_is_converted(tmp_path, home):
    import torch

    from engines.image.loading import _pickle_to_safetensors

    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.x": torch.ones(2)}}, ckpt)
    out = _pickle_to_safetensors(ckpt)
    from safetensors.torch import load_file

    assert out.suffix == ".safetensors" and torch.equal(load_file(str(out))["model.diffusion_model.x"], torch.ones(2))


def test_out_of_memory_estimate_refuses_before_loading(engine, tiny_model, monkeypatch):
    from engines.core import devices

    monkeypatch.setattr(devices, "system_memory", lambda include_gpu=False: devices.MemoryInfo(10**9, 10**6))
    with pytest.raises(OutOfMemoryError, match="needs ~") as info:
        run(engine, model=str(tiny_model), **{**SMALL, "width": 2048, "height": 2048})
    assert "smaller size" in str(info.value)


def test_missing_model_and_init_image(engine, tiny_model, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        run(engine, model=str(tmp_path / "nope.safetensors"), **SMALL)
    with pytest.raises(RequestError, match="init image .* does not exist"):
        run(engine, model=str(tiny_model), mode="img2img", init_image=str(tmp_path / "none.png"), **SMALL)


def test_image_model_scan_finds_a1111_and_comfy_layouts(tiny_model, tmp_path):
    import shutil

    from engines.models.image_models import scan_image_models

    root = tmp_path / "webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    shutil.copytree(tiny_model, root / "models" / "Stable-diffusion" / "tiny")
    (root / "models" / "Lora").mkdir()
    save_tiny_lora(tiny_pipeline(tmp_path / "w"), root / "models" / "Lora" / "style.safetensors")
    comfy = tmp_path / "ComfyUI" / "models" / "loras"
    comfy.mkdir(parents=True)
    save_tiny_lora(tiny_pipeline(tmp_path / "w"), comfy / "k.safetensors", kohya=True)
    models, loras, errors = scan_image_models([root, tmp_path / "ComfyUI"], include_hf_cache=False)
    assert [m.name for m in models if m.id != "default"] == ["tiny"]
    assert sorted(l.name for l in loras) == ["k", "style"]


def test_hf_cache_repo_id_loads_offline(engine, tiny_model, tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-sd" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model, snapshot)
    (cache / "models--someone--tiny-sd" / "refs").mkdir()
    (cache / "models--someone--tiny-sd" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    from engines.models.image_models import inspect_image_model, scan_image_models

    entry = inspect_image_model("someone/tiny-sd")
    assert entry.source == "hf-cache" and entry.path == str(snapshot)
    assert any(m.path == str(snapshot) for m in scan_image_models([], include_hf_cache=True)[0])
    assert run(engine, model="someone/tiny-sd", **SMALL)[-1].finish_reason == "stop"
