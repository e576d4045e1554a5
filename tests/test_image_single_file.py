"""The configs shipped for single-file checkpoints: they build the published architectures
(checked by parameter count, without allocating weights) and a CLIP tokenizer identical to
the real one, all offline."""
from __future__ import annotations

import pytest

pytest.importorskip("diffusers")

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
    from engines.image.request import ImageRequest

    unet = "model.diffusion_model."
    path = tmp_path / "inpaint.safetensors"
    save_file({unet + "input_blocks.0.0.weight": torch.zeros(8, 9, 3, 3),
               unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(8, 768)}, str(path))
    with pytest.raises(UnsupportedModelError, match="inpainting checkpoint"):
        list(ImageEngine().generate(ImageRequest(prompt="x", model=str(path), width=64, height=64), CancelToken()))
