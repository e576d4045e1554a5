"""Turns the decode run's Progress events into one progress fraction and a sentence about the current stage.

The engine announces each stage as it starts (``stimuli`` once they are loaded), reports reconstruction batches
as ``reconstruct decoded|oracle|shuffled`` with step/total, and each sweep point as ``sweep SNR x``. Stages get
weights near their usual share of the run time, so the bar moves about evenly.
"""
from __future__ import annotations

from engines.core.events import Progress

ORDER = ("stimuli", "features", "simulate", "fit", "decode", "reconstruct", "metrics", "sweep")
TEXT = {
    "stimuli": "Stimuli loaded; encoding them next",
    "features": "Encoding the images (VAE latents) and captions (text embeddings)",
    "simulate": "Simulating the fMRI responses",
    "fit": "Fitting the ridge decoders (cross-validating alpha)",
    "decode": "Decoding the test patterns",
    "reconstruct": "Reconstructing",
    "metrics": "Scoring the reconstructions",
}
RECONSTRUCT = {"decoded": "Reconstructing from the decoded activity", "oracle": "Reconstructing the oracle (true features)",
               "shuffled": "Reconstructing from shuffled voxels"}
CONDITIONS = ("decoded", "oracle", "shuffled")
STARTING = "Starting (the first run loads the image model)"


class ProgressTracker:
    def __init__(self, reconstruct: bool, sweep_points: int) -> None:
        self.weights = {"stimuli": 1.0, "features": 3.0, "simulate": 1.0, "fit": 3.0, "decode": 1.0,
                        "reconstruct": 14.0 if reconstruct else 0.0, "metrics": 2.0, "sweep": 1.5 * sweep_points}
        self.total = sum(self.weights.values())
        self.sweep_points = sweep_points
        self.sweep_seen = 0
        self.fraction = 0.0
        self.text = STARTING

    def _start(self, stage: str) -> float:
        """The share of the run done when ``stage`` starts."""
        return sum(self.weights[s] for s in ORDER[:ORDER.index(stage)]) / self.total

    def update(self, event: Progress) -> tuple[float, str]:
        message = event.message or ""
        if message == "stimuli":
            fraction, text = self._start("features"), TEXT["stimuli"]
        elif message in TEXT:
            fraction, text = self._start(message), TEXT[message]
        elif message.startswith("reconstruct "):
            condition = message.split(" ", 1)[1]
            index = CONDITIONS.index(condition) if condition in CONDITIONS else 0
            within = (index + (event.step / event.total if event.total else 0.0)) / len(CONDITIONS)
            fraction = self._start("reconstruct") + within * self.weights["reconstruct"] / self.total
            text = f"{RECONSTRUCT.get(condition, message)} (batch {event.step}/{event.total})"
        elif message.startswith("sweep"):
            self.sweep_seen += 1
            done = (self.sweep_seen - 1) / max(1, self.sweep_points)
            fraction = self._start("sweep") + done * self.weights["sweep"] / self.total
            snr = message.rsplit(" ", 1)[-1]
            text = f"SNR sweep: refitting at SNR {snr} ({self.sweep_seen}/{self.sweep_points})"
        else:
            fraction, text = self.fraction, message or self.text
        self.fraction = max(self.fraction, min(1.0, fraction))  # never moves backwards
        self.text = text
        return self.fraction, self.text
