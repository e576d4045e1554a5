"""The image model's feature spaces for decoding: VAE latents (low level) and caption embeddings (high level), and
back from a latent to pixels. Runs on the image model's owner thread."""
from __future__ import annotations

import numpy as np


class ImageFeatures:
    def __init__(self, pipe) -> None:
        import torch

        self.pipe = pipe
        self.torch = torch
        self.device = pipe.vae.device
        self.vae_dtype = pipe.vae.dtype
        self.scaling = float(pipe.vae.config.scaling_factor)
        self.size = int(pipe.unet.config.sample_size) * (2 ** (len(pipe.vae.config.block_out_channels) - 1))

    def latents(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """uint8 [N, H, W, 3] at the model's size -> scaled latent means [N, C, h, w] (float32)."""
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
                dist = self.pipe.vae.encode(x.to(self.device, self.vae_dtype)).latent_dist
                out.append((dist.mean * self.scaling).float().cpu().numpy())
        return np.concatenate(out)

    def decode(self, latents: np.ndarray, batch: int = 64) -> np.ndarray:
        """Scaled latents [N, C, h, w] -> uint8 images [N, H, W, 3]."""
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(latents), batch):
                z = torch.from_numpy(np.ascontiguousarray(latents[i:i + batch], dtype=np.float32))
                x = self.pipe.vae.decode(z.to(self.device, self.vae_dtype) / self.scaling).sample
                out.append(((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)

    def text(self, captions: list[str], batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Captions -> (token hidden states [N, L, D] as the UNet's conditioning, pooled embedding [N, D])."""
        torch = self.torch
        tok = self.pipe.tokenizer
        states, pooled = [], []
        with torch.inference_mode():
            for i in range(0, len(captions), batch):
                ids = tok(list(captions[i:i + batch]), padding="max_length", max_length=tok.model_max_length,
                          truncation=True, return_tensors="pt").input_ids.to(self.pipe.text_encoder.device)
                out = self.pipe.text_encoder(ids)
                states.append(out.last_hidden_state.float().cpu().numpy())
                pooled.append(out.pooler_output.float().cpu().numpy())
        return np.concatenate(states), np.concatenate(pooled)

    def token_shape(self) -> tuple[int, int]:
        return int(self.pipe.tokenizer.model_max_length), int(self.pipe.text_encoder.config.hidden_size)
