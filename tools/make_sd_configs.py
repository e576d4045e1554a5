"""Write the component configs that single-file SD checkpoints load with (assets/sd-configs/).

diffusers' from_single_file needs a diffusers-layout folder of configs for the architecture
(model_index.json, unet/vae/text_encoder/scheduler configs, tokenizer files); without
``config=`` it downloads them from the Hub. These are the published configs of
stable-diffusion-v1-5, stable-diffusion-2-1 and stable-diffusion-xl-base-1.0 (values that
differ from the diffusers/transformers class defaults). The CLIP BPE vocabulary (MIT, OpenAI;
as shipped in the open_clip_torch wheel) is stored once, gzipped, and expanded into
vocab.json/merges.txt at first use (engines/image/loading.py, single_file_config).

    .venv/bin/python tools/make_sd_configs.py
"""
from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "assets" / "sd-configs"

SCHED = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
         "steps_offset": 1, "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
         "timestep_spacing": "leading", "prediction_type": "epsilon"}
VAE = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
       "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
       "up_block_types": ["UpDecoderBlock2D"] * 4, "act_fn": "silu", "norm_num_groups": 32, "sample_size": 512,
       "scaling_factor": 0.18215}
CLIP_L = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 49408, "hidden_size": 768,
          "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12, "max_position_embeddings": 77,
          "hidden_act": "quick_gelu", "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
          "layer_norm_eps": 1e-05}
TOKENIZER = {"model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
             "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "do_lower_case": True,
             "tokenizer_class": "CLIPTokenizer"}
SD_UNET = {"_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
           "block_out_channels": [320, 640, 1280, 1280],
           "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
           "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
           "norm_num_groups": 32, "flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1}

ARCHS = {
    "sd1": {
        "model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                             "feature_extractor": [None, None], "safety_checker": [None, None],
                             "requires_safety_checker": False, "scheduler": ["diffusers", "PNDMScheduler"],
                             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
        "unet/config.json": {**SD_UNET, "attention_head_dim": 8, "cross_attention_dim": 768, "sample_size": 64},
        "vae/config.json": VAE,
        "text_encoder/config.json": CLIP_L,
        "tokenizer/tokenizer_config.json": TOKENIZER,
        "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler", **SCHED},
    },
    "sd2": {  # stable-diffusion-2-1 (768, v-prediction), what diffusers also assumes for SD 2.x checkpoints
        "model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                             "feature_extractor": [None, None], "safety_checker": [None, None],
                             "requires_safety_checker": False, "scheduler": ["diffusers", "DDIMScheduler"],
                             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
        "unet/config.json": {**SD_UNET, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "sample_size": 96,
                             "use_linear_projection": True, "upcast_attention": True},
        "vae/config.json": {**VAE, "sample_size": 768},
        "text_encoder/config.json": {**CLIP_L, "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                                     "num_hidden_layers": 23, "hidden_act": "gelu", "projection_dim": 512},
        "tokenizer/tokenizer_config.json": {**TOKENIZER, "pad_token": "!"},
        "scheduler/scheduler_config.json": {"_class_name": "DDIMScheduler", **SCHED, "prediction_type": "v_prediction"},
    },
    "sdxl": {
        "model_index.json": {"_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.42.1",
                             "force_zeros_for_empty_prompt": True, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                             "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                             "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
                             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
        "unet/config.json": {"_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                             "block_out_channels": [320, 640, 1280], "attention_head_dim": [5, 10, 20],
                             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                             "transformer_layers_per_block": [1, 2, 10], "cross_attention_dim": 2048, "use_linear_projection": True,
                             "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
                             "projection_class_embeddings_input_dim": 2816, "sample_size": 128, "norm_num_groups": 32},
        "vae/config.json": {**VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text_encoder/config.json": CLIP_L,
        "text_encoder_2/config.json": {**CLIP_L, "architectures": ["CLIPTextModelWithProjection"], "hidden_size": 1280,
                                       "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
                                       "hidden_act": "gelu", "projection_dim": 1280},
        "tokenizer/tokenizer_config.json": TOKENIZER,
        "tokenizer_2/tokenizer_config.json": {**TOKENIZER, "pad_token": "!"},
        "scheduler/scheduler_config.json": {"_class_name": "EulerDiscreteScheduler", **SCHED, "interpolation_type": "linear",
                                            "use_karras_sigmas": False},
    },
}


def main() -> None:
    for arch, files in ARCHS.items():
        for rel, data in files.items():
            path = OUT / arch / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
