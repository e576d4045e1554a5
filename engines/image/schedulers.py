"""A1111 sampler names -> diffusers schedulers, built from the loaded model's scheduler config.

Follows the table in diffusers' docs ("A1111/k-diffusion -> diffusers" in the schedulers
overview): the class and the few config flags that make the difference (Karras sigmas,
DPM++ order 2, ...). ``from_config`` keeps the model's own beta schedule, prediction type and timestep spacing.
A zero-terminal-SNR model (``rescale_betas_zero_snr`` in its scheduler config, as the bundled model ships) keeps
that schedule under every sampler: the classes without the flag (Heun, LMS) get the same betas as ``trained_betas``.
On a v-prediction model LMS steps at order 2 below sigma 1 (see ``lms_class``).
"""
from __future__ import annotations

import functools
import inspect

from engines.core.errors import RequestError
from engines.core.requests.image import SCHEDULERS

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
TERMINAL_SIGMA = 400.0


def make_scheduler(name: str, base_config):
    """A fresh scheduler for ``name`` from ``base_config`` (the pipeline's scheduler.config)."""
    import diffusers

    if name not in _TABLE:
        raise RequestError(f"Unknown scheduler {name!r}.", hint=f"Use one of: {', '.join(SCHEDULERS)}.")
    class_name, overrides = _TABLE[name]
    cls = getattr(diffusers, class_name)
    if class_name == "LMSDiscreteScheduler" and base_config.get("prediction_type") == "v_prediction":
        cls = lms_class()
    if base_config.get("rescale_betas_zero_snr") and (
            "rescale_betas_zero_snr" not in inspect.signature(cls).parameters or overrides.get("use_karras_sigmas")):
        # Heun and LMS have no such flag: from_config would drop it and sample a schedule the model was not trained
        # on. Karras spacing on the uncapped schedule wastes its steps (zero_snr_betas says how much).
        overrides = {**overrides, "trained_betas": zero_snr_betas(base_config), "rescale_betas_zero_snr": False}
    if "clip_sample" in inspect.signature(cls).parameters:
        # DDIM clips its x0 estimate to [-1, 1] unless told not to: right for pixels, wrong for SD latents (unit
        # variance after the VAE's scaling factor). SD's own scheduler configs set it off.
        overrides = {"clip_sample": base_config.get("clip_sample", False), **overrides}
    return cls.from_config(base_config, **overrides)


def zero_snr_betas(base_config) -> list[float]:
    """The betas of a ``rescale_betas_zero_snr`` scheduler with sigma capped at 400, as a list for ``trained_betas``.

    diffusers' own zero-SNR schedulers put t=999 at sigma 4096 (alpha_bar 2**-24) instead of infinity. Measured on the
    bundled model at 20 steps: Heun's second-order correction across the jump from sigma 4096 to the next step's 40
    blew the latents up (std 230, colour read right in 2 of 20 images), and DPM++ 2M Karras spent half its steps
    above sigma 80 (wrong colour, shape or position in 12 of 15 images). Capped at 400 both drew as Euler does. The
    start is pure noise either way: only the step sizes change. The cap flattens sigma over t=990-999, so it stays
    monotonic for the samplers that map sigmas back to timesteps.
    """
    import torch
    from diffusers import DDPMScheduler

    betas = DDPMScheduler.from_config(base_config).betas.double()
    alphas_cumprod = torch.clamp(torch.cumprod(1 - betas, 0), min=1 / (1 + TERMINAL_SIGMA**2))
    return (1 - alphas_cumprod / torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])).tolist()


LMS_LOW_SIGMA = 1.0
LMS_LOW_SIGMA_ORDER = 2


@functools.cache
def lms_class():
    """diffusers' LMSDiscreteScheduler, stepping at order 2 once sigma is below 1: for v-prediction models.

    LMS extrapolates the ODE derivative, eps = (x - x0) / sigma, from its last four values. A v-prediction model's
    eps below sigma 1 comes from an x0 estimate divided by a small sigma, and jitters from step to step; order-4
    weights (up to 55/24 and -59/24) multiply the jitter into speckled noise. Measured on the bundled zero-SNR
    v-prediction model, 24 held-out prompts at 20 steps: order 4 throughout drew colour right in 0.42 of them;
    order 3 below sigma 1, 0.75; order 2 below sigma 1, 0.96 (Euler 1.0); position and shape as Euler's. Where
    sigma is larger the steps keep LMS's order 4. diffusers has no setting for this, so the step is overridden
    (the class is built once, on first use, so diffusers is imported only when a sampler is made).
    """
    from diffusers import LMSDiscreteScheduler

    class LMSDiscreteSchedulerLowSigmaOrder2(LMSDiscreteScheduler):
        def step(self, model_output, timestep, sample, order: int = 4, return_dict: bool = True):
            if self.step_index is None:
                self._init_step_index(timestep)
            if float(self.sigmas[self.step_index]) < LMS_LOW_SIGMA:
                order = min(order, LMS_LOW_SIGMA_ORDER)
            return super().step(model_output, timestep, sample, order=order, return_dict=return_dict)

    return LMSDiscreteSchedulerLowSigmaOrder2
