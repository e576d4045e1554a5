"""A1111 sampler names -> diffusers schedulers, built from the loaded model's scheduler config.

Follows the table in diffusers' docs ("A1111/k-diffusion -> diffusers" in the schedulers
overview): the class and the few config flags that make the difference (Karras sigmas,
DPM++ order 2, ...). ``from_config`` keeps the model's own beta schedule, prediction type and timestep spacing.
A zero-terminal-SNR model (``rescale_betas_zero_snr`` in its scheduler config, as the bundled model ships) keeps
that schedule under every sampler: the classes without the flag (Heun, LMS) get the same betas as ``trained_betas``.
"""
from __future__ import annotations

import inspect

from engines.core.errors import RequestError
from engines.image.request import SCHEDULERS

_TABLE: dict[str, tuple[str, dict]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}
assert set(_TABLE) == set(SCHEDULERS)


def make_scheduler(name: str, base_config):
    """A fresh scheduler for ``name`` from ``base_config`` (the pipeline's scheduler.config)."""
    import diffusers

    if name not in _TABLE:
        raise RequestError(f"Unknown scheduler {name!r}.", hint=f"Use one of: {', '.join(SCHEDULERS)}.")
    class_name, overrides = _TABLE[name]
    cls = getattr(diffusers, class_name)
    if base_config.get("rescale_betas_zero_snr") and "rescale_betas_zero_snr" not in inspect.signature(cls).parameters:
        # from_config would drop the flag silently and sample a schedule the model was not trained on.
        overrides = {**overrides, "trained_betas": zero_snr_betas(base_config)}
    return cls.from_config(base_config, **overrides)


def zero_snr_betas(base_config) -> list[float]:
    """The betas a ``rescale_betas_zero_snr`` scheduler uses, as a list for ``trained_betas``.

    The last alpha_bar is 2**-24 instead of 0, as diffusers' zero-SNR Euler and DPM-Solver set it: sigma at t=999
    is then 4096 instead of infinite, so sigma-based samplers can start there.
    """
    import torch
    from diffusers import DDPMScheduler

    betas = DDPMScheduler.from_config(base_config).betas.double()
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    betas[-1] = 1 - 2.0**-24 / alphas_cumprod[-2]
    return betas.tolist()
