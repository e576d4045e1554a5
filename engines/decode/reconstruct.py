"""Reconstruction: img2img from the low-level decode, conditioned on the decoded caption embedding, k samples per
stimulus, keeping the sample closest to the decoded features (as MindEye keeps the sample nearest its predicted
embedding). Without an image->text encoder in the bundled model, "closest" is measured in the VAE latent space:
the correlation between a sample's latent and the decoded latent."""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from engines.core.events import Progress

from engines.decode.features import ImageFeatures
from engines.decode.metrics import correlation_matrix


@dataclass
class ReconstructionSettings:
    samples: int = 3
    strength: float = 0.75
    steps: int = 20
    guidance: float = 5.0
    seed: int = 0


def reconstruct(features: ImageFeatures, img2img, lowlevel: np.ndarray, token_states: np.ndarray,
                target_latents: np.ndarray, settings: ReconstructionSettings, cancel=None, batch: int = 48,
                label: str = "reconstruct"):
    """A generator: ``Progress`` after each batch, then returns the chosen reconstructions uint8 [M, H, W, 3]
    for ``lowlevel`` uint8 [M, H, W, 3] (use ``yield from``)."""
    torch = features.torch
    m, k = len(lowlevel), max(1, settings.samples)
    init = np.repeat(lowlevel, k, axis=0)
    embeds = np.repeat(token_states, k, axis=0).astype(np.float32)
    seeds = [settings.seed + (i % k) for i in range(m * k)]  # sample j of every stimulus uses seed + j
    calls = (len(init) + batch - 1) // batch

    def on_step_end(pipe, step, timestep, kwargs):
        if cancel is not None:
            cancel.raise_if_cancelled()  # stops within one denoising step
        return kwargs

    samples = []
    for start in range(0, len(init), batch):
        part = slice(start, start + batch)
        image = torch.from_numpy(init[part]).permute(0, 3, 1, 2).float().div(255.0)
        result = img2img(prompt_embeds=torch.from_numpy(embeds[part]).to(features.device, features.pipe.text_encoder.dtype),
                         image=image, strength=settings.strength, num_inference_steps=settings.steps,
                         guidance_scale=settings.guidance, output_type="np",
                         generator=[torch.Generator().manual_seed(s) for s in seeds[part]],
                         callback_on_step_end=on_step_end)
        samples.append((np.clip(result.images, 0, 1) * 255).round().astype(np.uint8))
        yield Progress(start // batch + 1, calls, label)
    samples = np.concatenate(samples)
    if k == 1:
        return samples
    latents = features.latents(samples).reshape(m, k, -1)
    chosen = []
    for i in range(m):
        scores = correlation_matrix(latents[i], target_latents[i:i + 1])[:, 0]
        chosen.append(samples[i * k + int(np.argmax(scores))])
    return np.stack(chosen)
