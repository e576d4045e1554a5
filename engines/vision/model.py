"""Hearth's vision model: a transformers CLIPVisionModel tower and a LLaVA MLP projector into the text model.

The forward pass computes exactly what llama.cpp's mmproj graph computes for the file written by
engines.vision.mmproj_gguf: every tower layer, no post-layernorm, class token dropped, then
Linear-GELU(tanh)-Linear. ``preprocess`` matches llama.cpp's for square images of the tower's size
(scale to 0..1, normalise by mean and std).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionProjector(nn.Module):
    def __init__(self, tower_config: dict, text_hidden_size: int):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel

        self.tower_config = dict(tower_config)
        self.tower = CLIPVisionModel(CLIPVisionConfig(**tower_config))
        width = int(tower_config["hidden_size"])
        self.linear_1 = nn.Linear(width, text_hidden_size)
        self.act = nn.GELU(approximate="tanh")  # ggml_gelu is the tanh approximation
        self.linear_2 = nn.Linear(text_hidden_size, text_hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, n_patches, text_hidden_size) image token embeddings.

        The token layout is llama.cpp's (clip_graph_llava in llama-cpp-python 0.3.36's vendored mtmd), not
        transformers' CLIPVisionModel forward: the class token is appended AFTER the patches, positions run
        0..n_patches in that order, and the rows kept for the projector are 1..n_patches (patch 0 is dropped,
        the class token kept). Measured against llama.cpp's output embeddings to 4e-4 (tests/test_vision_mmproj.py).
        """
        t = self.tower.vision_model if hasattr(self.tower, "vision_model") else self.tower
        emb = t.embeddings
        patches = emb.patch_embedding(pixel_values.to(emb.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        cls = emb.class_embedding.view(1, 1, -1).expand(patches.shape[0], 1, -1)
        seq = torch.cat([patches, cls], dim=1)
        seq = seq + emb.position_embedding.weight[: seq.shape[1]].unsqueeze(0)
        hidden = t.pre_layrnorm(seq)
        for layer in t.encoder.layers:
            out = layer(hidden, None)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.linear_2(self.act(self.linear_1(hidden[:, 1:])))

    def mmproj_state_dict(self) -> dict:
        """The tensors under the names engines.vision.mmproj_gguf expects."""
        sd = {k.removeprefix("tower."): v for k, v in self.state_dict().items() if k.startswith("tower.")}
        sd.update({k: v for k, v in self.state_dict().items() if k.startswith("linear_")})
        return sd


def preprocess(images, image_size: int, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """PIL images -> normalised (B, 3, S, S) tensor; images not S x S are resized (bicubic)."""
    from PIL import Image

    arrays = []
    for img in images:
        img = img.convert("RGB")
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.BICUBIC)
        arrays.append(np.asarray(img, dtype=np.float32) / 255.0)
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s
