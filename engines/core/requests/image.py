"""What an image job needs, as one JSON-serialisable dataclass (stdlib only, GUI-safe)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engines.core.errors import RequestError
from engines.core.requests import from_json

MODES = ("txt2img", "img2img", "inpaint")
# The names A1111/ComfyUI users know; engines.image.schedulers maps them to diffusers classes.
SCHEDULERS = ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "UniPC", "Heun", "LMS", "LCM")
OFFLOAD = ("auto", "none", "model", "sequential")
DTYPES = ("auto", "float32", "float16", "bfloat16")
MAX_SEED = 2**32 - 1


@dataclass
class LoraSpec:
    path: str
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "weight": self.weight}


@dataclass
class MemoryOptions:
    """Each field overrides the automatic choice made from the memory estimate."""

    offload: str = "auto"  # auto | none | model | sequential
    vae_tiling: bool | None = None  # None = on for large sizes
    dtype: str = "auto"  # auto: fp16/bf16 on GPU, fp32 on CPU
    device: str = "auto"


@dataclass
class ImageRequest:
    prompt: str = ""
    negative_prompt: str = ""
    model: str = "default"
    mode: str = "txt2img"
    steps: int = 20
    guidance: float = 7.0
    width: int = 512
    height: int = 512
    seed: int | None = None  # None: a random seed, recorded in the result
    batch_count: int = 1  # how many runs, one after the other
    batch_size: int = 1  # images per run
    scheduler: str = "Euler"
    strength: float = 0.75  # img2img / inpaint: how much of the init image is re-noised
    init_image: str | None = None  # path (PNG/JPEG) for img2img / inpaint
    mask: str | None = None  # path; white = repaint
    loras: list[LoraSpec] = field(default_factory=list)
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    allow_pickle: bool = False  # load .ckpt/.pt/.bin through torch.load(weights_only=True)
    preview_every: int = 1  # a Preview event every N steps (0: none)
    request_id: str = ""

    def validate(self) -> None:
        if not isinstance(self.prompt, str):
            raise RequestError("Field 'prompt' must be text.")
        if self.mode not in MODES:
            raise RequestError(f"Field 'mode' is {self.mode!r}.", hint=f"Use one of {', '.join(MODES)}.")
        if self.scheduler not in SCHEDULERS:
            raise RequestError(f"Unknown scheduler {self.scheduler!r}.", hint=f"Use one of: {', '.join(SCHEDULERS)}.")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 4096:
                raise RequestError(f"Field '{name}' is {value!r}.", hint="Use a size between 8 and 4096 pixels.")
            if value % 8:
                lower = value - value % 8 or 8
                raise RequestError(f"The {name} {value} is not a multiple of 8.",
                                   hint=f"Stable Diffusion works on 8-pixel blocks: use {lower} or {lower + 8}.")
        checks = (
            ("steps", isinstance(self.steps, int) and 1 <= self.steps <= 1000, "a whole number from 1 to 1000"),
            ("guidance", isinstance(self.guidance, (int, float)) and 0.0 <= self.guidance <= 50.0, "between 0 and 50"),
            ("batch_count", isinstance(self.batch_count, int) and 1 <= self.batch_count <= 100, "from 1 to 100"),
            ("batch_size", isinstance(self.batch_size, int) and 1 <= self.batch_size <= 64, "from 1 to 64"),
            ("strength", isinstance(self.strength, (int, float)) and 0.0 < self.strength <= 1.0, "in (0, 1]"),
            ("preview_every", isinstance(self.preview_every, int) and self.preview_every >= 0, "0 (off) or more"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise RequestError(f"Field '{name}' is {getattr(self, name)!r}.", hint=f"It must be {expected}.")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED):
            raise RequestError(f"Field 'seed' is {self.seed!r}.", hint=f"Use a whole number from 0 to {MAX_SEED}, or leave it out for a random one.")
        if self.mode in ("img2img", "inpaint") and not self.init_image:
            raise RequestError(f"Mode {self.mode} needs an init image.", hint="Pass --init IMG (or 'init_image').")
        if self.mode == "inpaint" and not self.mask:
            raise RequestError("Mode inpaint needs a mask image.", hint="Pass --mask IMG (white = repaint).")
        if self.mask and self.mode != "inpaint":
            raise RequestError("A mask was given but the mode is not inpaint.", hint="Use mode 'inpaint', or drop the mask.")
        m = self.memory
        if m.offload not in OFFLOAD:
            raise RequestError(f"Memory option 'offload' is {m.offload!r}.", hint=f"Use one of {', '.join(OFFLOAD)}.")
        if m.dtype not in DTYPES:
            raise RequestError(f"Memory option 'dtype' is {m.dtype!r}.", hint=f"Use one of {', '.join(DTYPES)}.")
        for i, lora in enumerate(self.loras):
            if not isinstance(lora.path, str) or not lora.path:
                raise RequestError(f"loras[{i}] has no path.")
            if not isinstance(lora.weight, (int, float)) or not -10.0 <= lora.weight <= 10.0:
                raise RequestError(f"loras[{i}] has weight {lora.weight!r}.", hint="Use a weight between -10 and 10 (1.0 is full strength).")

    def seeds(self, first: int) -> list[list[int]]:
        """The seed of every image, per run: image i of the whole job uses first + i."""
        return [[(first + run * self.batch_size + i) % (MAX_SEED + 1) for i in range(self.batch_size)]
                for run in range(self.batch_count)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageRequest":
        def nested(data: dict) -> dict:
            data["loras"] = [LoraSpec(**l) if isinstance(l, dict) else LoraSpec(str(l)) for l in data.get("loras") or []]
            data["memory"] = MemoryOptions(**(data.get("memory") or {}))
            return data

        return from_json(cls, data, "image request", nested)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_lora_arg(text: str) -> LoraSpec:
    """``PATH[:WEIGHT]`` from the CLI; a Windows drive letter is not a weight."""
    path, sep, weight = text.rpartition(":")
    if sep and path and not (len(path) == 1 and path.isalpha()):
        try:
            return LoraSpec(path, float(weight))
        except ValueError:
            pass
    return LoraSpec(text, 1.0)
