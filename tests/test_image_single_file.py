"""The configs shipped for single-file checkpoints: they build the published architectures
(checked by parameter count, without allocating weights) and a CLIP tokenizer identical to
the real one, all offline."""
from __future__ import annotations

import pytest


# Published parameter counts (diffusers' model cards / `sum(p.numel())` of the real models).
EXPECTED = {
    ("sd1", "unet"): 859_520_964,
    ("sd2", "unet"): 865_910_724,
    ("sdxl", "unet"): 2_567_463_684,
    ("sd1", "vae"): 83_653_863,
    ("sd1", "text_encoder"): 123_060_480,
}


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    import os

    os.environ["HEARTH_HOME"] = str(tmp_path_factory.mktemp("home"))
    from engines.image.loading import single_file_config

    return {arch: single_file_config(arch) for arch in ("sd1", "sd2", "sdxl")}


@pytest.mark.parametrize("arch, component", sorted(EXPECTED))
def test_shipped_configs_build_the_published_architectures(configs, arch, component):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = configs[arch] / component
    with init_empty_weights():
        if component == "unet":
            model = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder))
        elif component == "vae":
            model = AutoencoderKL.from_config(AutoencoderKL.load_config(folder))
        else:
            model = CLIPTextModel(CLIPTextConfig.from_pretrained(folder))
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[(arch, component)]


def test_shipped_tokenizers_match_clip(configs):
    from transformers import CLIPTokenizer

    for arch, sub in (("sd1", "tokenizer"), ("sdxl", "tokenizer_2")):
        tok = CLIPTokenizer.from_pretrained(configs[arch], subfolder=sub, local_files_only=True)
        assert len(tok) == 49408 and tok.model_max_length == 77
        assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_single_file_inpainting_and_refiner_are_refused_with_a_reason(tmp_path):
    import torch
    from safetensors.torch import save_file

    from engines.core.cancel import CancelToken
    from engines.core.errors import UnsupportedModelError
    from engines.image.engine import ImageEngine
    from engines.core.requests.image import ImageRequest

    unet = "model.diffusion_model."
    path = tmp_path / "inpaint.safetensors"
    save_file({unet + "input_blocks.0.0.weight": torch.zeros(8, 9, 3, 3),
               unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(8, 768)}, str(path))
    with pytest.raises(UnsupportedModelError, match="inpainting checkpoint"):
        list(ImageEngine().generate(ImageRequest(prompt="x", model=str(path), width=64, height=64), CancelToken()))


def test_sd2_base_and_768_are_told_apart_by_the_yaml_beside_the_file_or_its_name(tmp_path, monkeypatch):
    from engines.models.image_models import ImageModelEntry, native_size, sd2_variant

    (tmp_path / "v2-1_512-ema-pruned.safetensors").write_bytes(b"")
    (tmp_path / "v2-1_768-ema-pruned.safetensors").write_bytes(b"")
    assert sd2_variant(tmp_path / "v2-1_512-ema-pruned.safetensors") == ("epsilon", 512)
    assert sd2_variant(tmp_path / "v2-1_768-ema-pruned.safetensors") == ("v_prediction", 768)
    # A1111's convention: model.yaml beside model.safetensors wins over the name.
    (tmp_path / "mystery.safetensors").write_bytes(b"")
    assert sd2_variant(tmp_path / "mystery.safetensors") == ("v_prediction", 768)
    (tmp_path / "mystery.yaml").write_text("model:\n  params:\n    unet_config:\n      params:\n        image_size: 64\n")
    assert sd2_variant(tmp_path / "mystery.safetensors") == ("epsilon", 512)
    (tmp_path / "mystery.yaml").write_text("model:\n  params:\n    parameterization: v\n    unet_config:\n      params:\n        image_size: 96\n")
    assert sd2_variant(tmp_path / "mystery.safetensors") == ("v_prediction", 768)
    entry = ImageModelEntry(str(tmp_path / "v2-1_512-ema-pruned.safetensors"), "x", str(tmp_path / "v2-1_512-ema-pruned.safetensors"),
                            "single-file", "sd2", "folder", 0, 0)
    assert native_size(entry) == 512
    (tmp_path / "broken.safetensors").write_bytes(b"")
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n")
    from engines.core.errors import ModelFileError

    with pytest.raises(ModelFileError, match="broken.yaml"):
        sd2_variant(tmp_path / "broken.safetensors")


def test_a_single_file_sd2_base_checkpoint_gets_an_epsilon_scheduler(tmp_path, monkeypatch):
    """The loader sets the scheduler's prediction type from sd2_variant (from_single_file is stood in for by a
    tiny pipeline whose shipped scheduler says v_prediction, as the SD 2 config does)."""
    from diffusers import StableDiffusionPipeline

    from engines.image.loading import Placement, load_pipeline
    from engines.models.image_models import ImageModelEntry
    from tests.image_support import tiny_pipeline

    pipe = tiny_pipeline(tmp_path)
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type="v_prediction")
    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", classmethod(lambda cls, *a, **k: pipe))
    path = tmp_path / "sd21-512-base.safetensors"
    path.write_bytes(b"")
    entry = ImageModelEntry(str(path), "x", str(path), "single-file", "sd2", "folder", 0, 0)
    loaded = load_pipeline(entry, Placement("cpu", "float32", "none", 0, 0))
    assert loaded.scheduler.config.prediction_type == "epsilon"
