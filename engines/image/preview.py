"""Cheap step previews: latents -> RGB by a linear map, no VAE decode.

Hand-written because diffusers has no such helper. The idea and the SD 1.x/SDXL factors come
from the community (A1111's "Approx NN"/"cheap" preview, ComfyUI's latent_rgb_factors): each
RGB channel is roughly a fixed linear mix of the 4 latent channels. For models with other
VAEs (the bundled one) the factors are fitted once per model by least squares against a VAE
decode of a few random latents (``fit_factors``), which costs one small decode at load time.
"""
from __future__ import annotations

import io

SD15_FACTORS = [  # rows: latent channel; columns: R, G, B (ComfyUI's SD1.5 factors)
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
SDXL_FACTORS = [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
]


def fit_factors(vae, size: int = 8, samples: int = 4):
    """Least-squares latent->RGB factors (+ bias) for ``vae`` from ``samples`` random latents."""
    import torch

    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    g = torch.Generator().manual_seed(0)
    ch = vae.config.latent_channels
    with torch.no_grad():
        z = torch.randn(samples, ch, size, size, generator=g) * 0.8
        param = next(vae.parameters())
        img = vae.decode(z.to(param.device, param.dtype)).sample.float().cpu()
    img = torch.nn.functional.avg_pool2d(img, factor)  # one RGB value per latent pixel
    x = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, ch), torch.ones(z.numel() // ch, 1)], 1)
    y = img.permute(0, 2, 3, 1).reshape(-1, 3)
    sol = torch.linalg.lstsq(x, y).solution  # (ch + 1, 3), last row is the bias
    return sol[:ch].tolist(), sol[ch].tolist()


def latents_to_png(latents, factors, bias=None, scaling_factor: float = 1.0, max_side: int = 128) -> bytes:
    """The first image of ``latents`` (B, C, h, w) as a small PNG, in [-1, 1] space mapped to 0..255."""
    import torch
    from PIL import Image

    with torch.no_grad():
        lat = latents[0].detach().float().cpu() / scaling_factor
        f = torch.tensor(factors, dtype=torch.float32)
        rgb = torch.einsum("chw,cr->rhw", lat[: f.shape[0]], f)
        if bias is not None:
            rgb = rgb + torch.tensor(bias, dtype=torch.float32)[:, None, None]
        rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(rgb, "RGB")
    scale = max(1, max_side // max(img.size))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
