"""A1111 sampler names -> diffusers schedulers, built from the loaded model's scheduler config.

Follows the table in diffusers' docs ("A1111/k-diffusion -> diffusers" in the schedulers
overview): the class and the few config flags that make the difference (Karras sigmas,
DPM++ order 2, ...). ``from_config`` keeps the model's own beta schedule and prediction type.
"""
from __future__ import annotations

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
    return cls.from_config(base_config, **overrides)
