"""A room that is not built yet: says what it will do, so the shell shows the whole plan."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

PLANNED: dict[str, tuple[str, list[str]]] = {
    "Image": ("Stable Diffusion, locally", [
        "Text-to-image, image-to-image and inpainting with SD-family checkpoints (safetensors, diffusers folders).",
        "Step-by-step previews while it denoises; cancel at any step.",
        "A gallery of everything you made; each PNG carries its parameters, so any image can be re-run.",
    ]),
    "Decode": ("From brain activity back to images", [
        "Stimulus → simulated fMRI response → decoded reconstruction, as step-by-step demos.",
        "Side-by-side stimulus and reconstruction with metrics (pixel correlation, SSIM, CLIP similarity).",
        "Try different decoders and noise levels and see what each costs in fidelity.",
    ]),
    "Tune": ("Teach a model your preferences", [
        "Label outputs: pick the better of two replies, rate, or correct them.",
        "Train a reward model, or fine-tune with SFT, DPO or RL, with LoRA adapters to keep it light.",
        "Watch loss and reward curves live; compare the base and tuned model, then export the adapter.",
    ]),
    "Explore": ("Look inside a language model", [
        "Tokens: see how text splits into tokens and what each costs.",
        "Embeddings and attention: maps of what the model relates to what.",
        "Few-shot playground, code → live HTML preview, and a usage/cost log of your sessions.",
    ]),
}


class PlaceholderRoom(QWidget):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        subtitle, points = PLANNED[name]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(56, 48, 56, 48)
        layout.setSpacing(10)
        layout.addWidget(QLabel(name, objectName="RoomTitle"))
        layout.addWidget(QLabel(subtitle, objectName="RoomSubtitle"))
        layout.addSpacing(18)
        for point in points:
            label = QLabel(f"•  {point}")
            label.setWordWrap(True)
            layout.addWidget(label)
        layout.addSpacing(18)
        soon = QLabel("Coming in a later version of Hearth.", objectName="Muted")
        layout.addWidget(soon)
        layout.addStretch(1)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
