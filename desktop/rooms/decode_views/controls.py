"""The Decode room's settings: where the stimuli come from, the simulated brain, the decoder, the reconstruction
and the SNR sweep. ``request()`` turns them into the engine host's decode request."""
from __future__ import annotations

import re
import uuid

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QMenu, QPushButton,
    QSpinBox, QVBoxLayout, QWidget,
)

from engines.core.errors import RequestError
from engines.core.requests import decode as decode_request
from engines.core.requests.decode import MAX_VOXELS, MIN_VOXELS, DecodeRequest
from desktop.rooms.decode_views.common import Card
from desktop.widgets.panels import muted

SOURCE_NAMES = {"procedural": "Procedural shapes", "photos": "Sample photos", "folder": "Image folder…",
                "data": "Data file…"}
SOURCES = tuple((SOURCE_NAMES[source], source) for source in decode_request.SOURCES)
DEFAULT_SWEEP = "0.002, 0.01, 0.05, 0.2, 1"
SOURCE_NOTES = {
    "procedural": "Coloured shapes from the bundled image model's vocabulary, so every label is known.",
    "photos": "Crops of scikit-image's sample photographs, labelled by object.",
    "folder": "Your images; a sub-folder's name becomes its images' label. Training and test images are split from it.",
    "data": "Real recordings: a .npz/.h5 file (fmri_train, fmri_test, images_train, images_test), a Brain-Diffuser "
            "folder or a MinD-Vis GOD folder. The brain settings below come from the file.",
}


class RequestProblem(ValueError):
    """A setting the room can tell is wrong before asking the host."""


def parse_sweep(text: str) -> list[float]:
    values = []
    for part in (p for p in re.split(r"[,;\s]+", text.strip()) if p):
        try:
            value = float(part)
        except ValueError:
            raise RequestProblem(f"The SNR sweep has {part!r}, which is not a number. "
                                 "Give SNRs separated by commas, e.g. 0.01, 0.1, 1.") from None
        if not 0 < value <= 1000:
            raise RequestProblem(f"The SNR sweep has {part}; use SNRs above 0 and up to 1000.")
        values.append(value)
    return sorted(set(values))


class RatioSpinBox(QDoubleSpinBox):
    """Shows 0.5 and 0.002 rather than 0.5000 and 0.0020; the arrows halve or double the value."""

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 2.0 ** steps)


class DecodeControls(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = QComboBox()
        for title, key in SOURCES:
            self.source.addItem(title, key)
        self.path = QLineEdit(placeholderText="folder or data file")
        self.browse = QPushButton("Browse…", clicked=self._browse)
        self.source_note = muted()
        self.snr = RatioSpinBox(decimals=4, minimum=0.0001, maximum=1000, singleStep=0.1, value=0.5,
                                  toolTip="Signal variance / noise variance of one trial in each voxel")
        self.voxels = QSpinBox(minimum=MIN_VOXELS, maximum=MAX_VOXELS, singleStep=500, value=4000)
        self.repeats = QSpinBox(minimum=1, maximum=64, value=4, toolTip="Test trials averaged (as fMRI studies repeat test images)")
        self.train = QSpinBox(minimum=8, maximum=5000, singleStep=100, value=800, toolTip="Stimuli the decoder learns from")
        self.test = QSpinBox(minimum=2, maximum=200, value=20, toolTip="Held-out stimuli it is scored on (one figure row each)")
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0)
        self.reconstruct = QCheckBox("Reconstruct with the image model", checked=True,
                                     toolTip="img2img from the low-level decode, steered by the decoded caption. "
                                             "Off: stop at the VAE decode (fast).")
        self.samples = QSpinBox(minimum=1, maximum=16, value=3, toolTip="img2img samples per stimulus; the one closest "
                                                                        "to the decoded latent is kept")
        self.steps = QSpinBox(minimum=1, maximum=200, value=20)
        self.sweep = QLineEdit(DEFAULT_SWEEP, toolTip="Extra SNRs: the decoder is refitted at each and scored on its "
                                                      "low-level and semantic decode. Empty: no sweep.")

        stimuli = Card("Stimuli")
        form = QFormLayout()
        form.addRow("Source", self.source)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(self.browse)
        form.addRow("Path", path_row)
        stimuli.body.addLayout(form)
        stimuli.body.addWidget(self.source_note)

        brain = Card("Simulated brain")
        form = QFormLayout()
        form.addRow("SNR", self.snr)
        form.addRow("Voxels", self.voxels)
        form.addRow("Repeats", self.repeats)
        brain.body.addLayout(form)

        decoder = Card("Decoder")
        form = QFormLayout()
        form.addRow("Training", self.train)
        form.addRow("Test", self.test)
        form.addRow("Seed", self.seed)
        decoder.body.addLayout(form)

        recon = Card("Reconstruction")
        recon.body.addWidget(self.reconstruct)
        form = QFormLayout()
        form.addRow("Samples (k)", self.samples)
        form.addRow("Steps", self.steps)
        recon.body.addLayout(form)

        sweep = Card("SNR sweep")
        sweep.body.addWidget(self.sweep)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        for card in (stimuli, brain, decoder, recon, sweep):
            column.addWidget(card)

        self.source.currentIndexChanged.connect(self._on_source)
        self.reconstruct.toggled.connect(self._on_reconstruct)
        self._on_source()

    # -- state -----------------------------------------------------------
    def current_source(self) -> str:
        return self.source.currentData()

    def set_source(self, key: str, path: str = "") -> None:
        self.source.setCurrentIndex(max(0, self.source.findData(key)))
        if path:
            self.path.setText(path)

    def _on_source(self, *_args) -> None:
        key = self.current_source()
        needs_path = key in ("folder", "data")
        self.path.setEnabled(needs_path)
        self.browse.setEnabled(needs_path)
        self.path.setPlaceholderText({"folder": "a folder of images", "data": ".npz / .h5 file or a data folder"}.get(key, "—"))
        simulated = key != "data"
        for widget in (self.snr, self.voxels, self.repeats, self.sweep):
            widget.setEnabled(simulated)
        self.train.setEnabled(key in ("procedural", "photos"))
        self.test.setEnabled(key != "data")
        self.source_note.setText(SOURCE_NOTES[key])

    def _on_reconstruct(self, on: bool) -> None:
        self.samples.setEnabled(on)
        self.steps.setEnabled(on)

    def _browse(self) -> None:
        if self.current_source() == "folder":
            self._pick_folder("Folder of images")
            return
        menu = QMenu(self)
        menu.addAction("Data file (.npz, .h5)…", self._pick_data_file)
        menu.addAction("Data folder (Brain-Diffuser, MinD-Vis GOD)…", lambda: self._pick_folder("Data folder"))
        menu.exec(self.browse.mapToGlobal(self.browse.rect().bottomLeft()))

    def _pick_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Decoding data", self.path.text(),
                                              "Decoding data (*.npz *.h5 *.hdf5);;All files (*)")
        if path:
            self.path.setText(path)

    def _pick_folder(self, title: str) -> None:
        path = QFileDialog.getExistingDirectory(self, title, self.path.text())
        if path:
            self.path.setText(path)

    # -- the request -----------------------------------------------------
    def request(self) -> DecodeRequest:
        """The decode request, validated; raises RequestProblem naming what to change (the host checks again)."""
        source = self.current_source()
        path = self.path.text().strip()
        if source in ("folder", "data") and not path:
            what = "a folder of images" if source == "folder" else "a data file or folder"
            raise RequestProblem(f"Choose {what} first (Browse…).")
        simulated = source != "data"
        request = DecodeRequest(
            request_id=uuid.uuid4().hex, source=source, path=path if source in ("folder", "data") else "",
            snr=self.snr.value(), voxels=self.voxels.value(), train=self.train.value(), test=self.test.value(),
            repeats=self.repeats.value(), seed=self.seed.value(), samples=self.samples.value(),
            steps=self.steps.value(), reconstruct=self.reconstruct.isChecked(),
            sweep=parse_sweep(self.sweep.text()) if simulated else [],
        )
        try:
            request.validate()
        except RequestError as exc:
            raise RequestProblem(str(exc) + (f" {exc.hint}" if exc.hint else "")) from exc
        return request
