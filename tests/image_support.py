"""Tiny Stable Diffusion pipelines built from configs (no downloads), for the image engine tests."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tiny_tokenizer(folder: Path):
    """A CLIPTokenizer over a handful of words (BPE merges trained on them by tokenizers)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    words = ["a", "red", "blue", "circle", "square", "cat", "dog"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator([" ".join(words)] * 2, trainers.BpeTrainer(
        vocab_size=500, initial_alphabet=letters, end_of_word_suffix="</w>",
        special_tokens=["<|startoftext|>", "<|endoftext|>"], show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = CLIPTokenizer(vocab=dict(model["vocab"]), merges=merges)
    tok.model_max_length = 16
    return tok


def tiny_pipeline(tmp: Path):
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(4, 8), layers_per_block=1,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(4, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=2, sample_size=16)
    tok = tiny_tokenizer(tmp / "tok")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                                        pad_token_id=1, projection_dim=8))
    sched = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                   timestep_spacing="leading")
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def save_tiny_model(folder: Path) -> Path:
    """A tiny diffusers folder (safetensors), made once per folder."""
    if not (folder / "model_index.json").is_file():
        tiny_pipeline(folder.parent / (folder.name + "-work")).save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_lora(pipe, path: Path, rank: int = 2, kohya: bool = False, seed: int = 1) -> Path:
    """A LoRA for the tiny UNet's attention projections (peft), saved as diffusers or kohya safetensors."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file
    from diffusers.utils.state_dict_utils import convert_state_dict_to_diffusers, convert_state_dict_to_kohya
    from diffusers.utils import convert_unet_state_dict_to_peft

    torch.manual_seed(seed)
    unet = pipe.unet
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                init_lora_weights=False), adapter_name="hearth_test")
    state = get_peft_model_state_dict(unet, adapter_name="hearth_test")
    unet.delete_adapters("hearth_test")
    if kohya:
        peft_state = {f"unet.{k}": v for k, v in state.items()}
        out = convert_state_dict_to_kohya(peft_state)
    else:
        out = {f"unet.{k}": v for k, v in convert_state_dict_to_diffusers(state).items()}
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    return path
