"""One decoding run, serialisable to JSON (the CLI, the host and the Decode room all send this)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engines.core.errors import RequestError
from engines.core.requests import from_json

SOURCES = ("procedural", "photos", "folder", "data")
MIN_VOXELS, MAX_VOXELS = 256, 20000  # the simulated brain's size range


@dataclass
class DecodeRequest:
    source: str = "procedural"  # procedural | photos | folder | data
    path: str = ""  # the folder (source=folder) or data file/folder (source=data)
    snr: float = 0.5  # single-trial signal variance / noise variance per voxel
    voxels: int = 4000
    train: int = 800
    test: int = 20
    repeats: int = 4  # test trials averaged
    seed: int = 0
    samples: int = 3  # img2img samples per stimulus; the one closest to the decoded features is kept
    strength: float = 0.75
    steps: int = 20
    guidance: float = 5.0
    reconstruct: bool = True  # False: stop at the low-level (VAE) decode; fast
    sweep: list[float] = field(default_factory=list)  # extra SNRs: low-level + semantic metrics per SNR
    n_way: int = 50
    model: str = "default"
    request_id: str = ""

    def validate(self) -> None:
        def bad(name: str, hint: str) -> RequestError:
            return RequestError(f"Field '{name}' is {getattr(self, name)!r}.", hint=hint)

        if self.source not in SOURCES:
            raise bad("source", f"Use one of {', '.join(SOURCES)}.")
        if self.source in ("folder", "data") and not self.path:
            raise RequestError(f"Source '{self.source}' needs a path.", hint="Choose the folder or data file.")
        if not isinstance(self.snr, (int, float)) or not 0 < self.snr <= 1000:
            raise bad("snr", "Use a positive signal-to-noise ratio up to 1000, e.g. 0.5.")
        if not isinstance(self.voxels, int) or not MIN_VOXELS <= self.voxels <= MAX_VOXELS:
            raise bad("voxels", f"Use {MIN_VOXELS} to {MAX_VOXELS}.")
        if not isinstance(self.train, int) or not 8 <= self.train <= 5000:
            raise bad("train", "Use 8 to 5000 training stimuli.")
        if not isinstance(self.test, int) or not 2 <= self.test <= 200:
            raise bad("test", "Use 2 to 200 test stimuli.")
        if not isinstance(self.repeats, int) or not 1 <= self.repeats <= 64:
            raise bad("repeats", "Use 1 to 64 repeats.")
        if not isinstance(self.samples, int) or not 1 <= self.samples <= 16:
            raise bad("samples", "Use 1 to 16 samples per stimulus.")
        if not isinstance(self.strength, (int, float)) or not 0 < self.strength <= 1:
            raise bad("strength", "Use a denoising strength in (0, 1], e.g. 0.75.")
        if not isinstance(self.guidance, (int, float)) or not 0 <= self.guidance <= 50:
            raise bad("guidance", "Use a CFG scale from 0 to 50, e.g. 5.")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 200:
            raise bad("steps", "Use 1 to 200 steps.")
        if not isinstance(self.sweep, list) or any(not isinstance(s, (int, float)) or isinstance(s, bool)
                                                   or not 0 < s <= 1000 for s in self.sweep):
            raise bad("sweep", "Use positive SNRs up to 1000.")
        if not isinstance(self.n_way, int) or self.n_way < 2:
            raise bad("n_way", "Use 2 or more.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DecodeRequest":
        return from_json(cls, data, "decode request")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
