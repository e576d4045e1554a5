"""Tiny vision models for tests, built from configs offline: a LLaVA folder for transformers, images in memory."""
from __future__ import annotations

import io
from pathlib import Path

from tests.test_tune_gguf import build_bpe_tokenizer

# A ChatML template that reads typed parts (what processors' templates do): images become the processor's token.
LLAVA_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def png_bytes(size=(32, 32), color=(200, 30, 30), mode="RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def build_tiny_llava(folder: Path, seed: int = 0) -> Path:
    """A LLaVA (CLIP vision tower 16x16 px / 4 px patches, 2-layer Llama) with random weights and its processor."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    torch.manual_seed(seed)
    tokenizer = build_bpe_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<image>"]})
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                       initializer_range=0.25)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=16, patch_size=4, projection_dim=32)
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_id=image_token_id,
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=4,
                               vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE,
                               image_token="<image>", num_additional_image_tokens=1)
    processor.save_pretrained(folder)
    return folder


def write_projector(path: Path, width: int, projector_type: str = "mlp", name: str = "") -> Path:
    """A small mmproj-shaped GGUF (architecture clip, one projector tensor ``width`` wide) for pairing checks;
    not an encoder llama.cpp could run."""
    import numpy as np
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "clip")
    writer.add_string("clip.projector_type", projector_type)
    writer.add_bool("clip.has_vision_encoder", True)
    if name:
        writer.add_name(name)
    writer.add_tensor("mm.2.weight", np.zeros((width, 8), dtype=np.float32))  # torch (out, in) -> ggml (in, out)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def folder_with_model(folder: Path, *projectors: tuple[str, int]) -> Path:
    """``folder`` holding the bundled SmolLM2 GGUF (a symlink, 576 wide) and projectors ``(file name, width)``."""
    from engines.models import bundled_default_path

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model.symlink_to(bundled_default_path())
    for name, width in projectors:
        write_projector(folder / name, width)
    return model


TINY_TOWER = dict(image_size=32, patch_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, layer_norm_eps=1e-5, hidden_act="quick_gelu")  # 4 image tokens


def write_real_projector(path: Path, width: int = 576, tower: dict | None = None, seed: int = 0) -> Path:
    """A random CLIP tower + LLaVA projector that llama.cpp's libmtmd loads (engines/vision/mmproj_gguf.py)."""
    import torch

    from engines.vision.mmproj_gguf import write_mmproj
    from engines.vision.model import CLIP_MEAN, CLIP_STD, VisionProjector

    tower = tower or TINY_TOWER
    torch.manual_seed(seed)
    model = VisionProjector(tower, width).eval()
    return write_mmproj(path, model.mmproj_state_dict(), tower, CLIP_MEAN, CLIP_STD, name="tiny-random")


def build_tiny_idefics3(folder: Path, seed: int = 0) -> Path:
    """An Idefics3 (SmolVLM's architecture: SigLIP-style tower 32x32 px / 8 px patches, pixel shuffle by 2, 2-layer
    Llama) with random weights and its processor; one image is 4 <image> tokens between its wrapper tokens."""
    import torch
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor,
                              Idefics3VisionConfig, LlamaConfig)

    torch.manual_seed(seed)
    tokenizer = build_bpe_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<|im_start|>", "<|im_end|>", "<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]})
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    vision = Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=32, patch_size=8)
    config = Idefics3Config(text_config=text, vision_config=vision, scale_factor=2, pad_token_id=tokenizer.pad_token_id,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 32},
                                             max_image_size={"longest_edge": 32})
    Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                      chat_template=LLAVA_TEMPLATE).save_pretrained(folder)
    return folder
