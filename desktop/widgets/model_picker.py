"""Model choice: what the host can see, what each needs against what is free, Load/Unload."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from desktop.widgets.adapter_picker import AdapterPicker
from engines.core import chat_templates
from engines.core.requests.text import BACKENDS, DEVICES

ID_ROLE = Qt.ItemDataRole.UserRole


def human_bytes(n: float | None) -> str:
    if not n:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB", "MB") else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def human_count(n: float | None) -> str:
    if not n:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(int(n))


def _first(entry: dict, *keys: str):
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def model_id(entry: dict) -> str:
    return str(_first(entry, "id", "path", "name") or "")


def describe(entry: dict, memory: dict | None, context_length: int | None = None) -> tuple[str, bool]:
    """One line about a model, and whether it fits in the memory that is free."""
    parts = ["sees images"] if entry.get("vision") is True else []
    if entry.get("vision_error"):  # an mmproj lies beside it but does not fit it: why it cannot see
        parts.append(f"text only: {entry['vision_error']}")
    for value in (_first(entry, "format"), _first(entry, "quantization", "quant", "dtype")):
        if value:
            parts.append(str(value).upper() if len(str(value)) <= 6 else str(value))
    params = _first(entry, "parameters", "params", "n_params")
    if params:
        parts.append(f"{human_count(params) if isinstance(params, (int, float)) else params} params")
    context = _first(entry, "context_length", "context")
    if context:
        parts.append(f"context {context}")
    needs, available, fits = _memory_need(entry, memory, context_length)
    if needs and available:
        parts.append(f"needs ~{human_bytes(needs)} of {human_bytes(available)} available")
    elif needs:
        parts.append(f"needs ~{human_bytes(needs)}")
    return "  ·  ".join(parts) or "details appear once the engine host has looked at the file", fits


def _memory_need(entry: dict, memory: dict | None, context_length: int | None) -> tuple[float | None, float | None, bool]:
    """(bytes needed at ``context_length``, bytes available, fits) from the entry's estimate and the host's memory."""
    estimate = entry.get("estimate") if isinstance(entry.get("estimate"), dict) else {}
    needs = _first(estimate, "total_bytes") or _first(entry, "estimate_bytes", "size_bytes")
    if needs and context_length and estimate.get("kv_cache_bytes") is not None and estimate.get("context_length"):
        # The KV cache grows with the context; the host estimated it for its own default length.
        kv = float(estimate["kv_cache_bytes"]) * context_length / float(estimate["context_length"])
        needs = float(estimate.get("weights_bytes", 0)) + float(estimate.get("overhead_bytes", 0)) + kv
    available = None
    if memory:
        available = memory.get("vram_free") if memory.get("vram_total") else memory.get("ram_available")
    available = available or _first(estimate, "available_bytes")
    fits = estimate.get("fits", True) if not (needs and available) else float(needs) <= float(available)
    return needs, available, bool(fits)


class ModelPicker(QWidget):
    load_requested = Signal(str, str, int)  # model id, backend, context length
    unload_requested = Signal()
    refresh_requested = Signal()
    folders_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.combo = QComboBox(toolTip="Models the engine host can see")
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(10)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.currentIndexChanged.connect(self._update_info)
        self.refresh_button = QToolButton(text="↻", objectName="Flat", toolTip="Look for models again")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.folders_button = QToolButton(text="Folders…", objectName="Flat", toolTip="Choose the folders Hearth scans for models")
        self.folders_button.clicked.connect(self.folders_requested)
        # Load options sit in the room's side panel (``options``); Load reads them from here.
        self.options = QWidget()
        form = QFormLayout(self.options)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(12)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.backend = QComboBox(toolTip="Which engine runs the model (auto picks llama.cpp for GGUF files)")
        self.backend.addItems(BACKENDS)
        self.context = QSpinBox(minimum=256, maximum=1_048_576, singleStep=1024, value=4096, toolTip="Context length (tokens)")
        self.context.valueChanged.connect(self._update_info)
        self.gpu_layers = QSpinBox(minimum=-1, maximum=999, value=-1, specialValueText="all",
                                   toolTip="llama.cpp: layers offloaded to the GPU (all, or 0 for CPU only); ignored without a GPU")
        self.device = QComboBox(toolTip="transformers: where the model runs (auto picks CUDA, then MPS, then the CPU)")
        self.device.addItems(DEVICES)
        self.template = QComboBox(editable=True, toolTip=(
            "Chat template: the model file's own, a common one, or the path of a .jinja file "
            "(for a model whose template is missing or broken)"))
        self.template.addItem("", chat_templates.FILE_OWN)
        for name in chat_templates.NAMES:
            self.template.addItem(name, name)
        self.template.lineEdit().setPlaceholderText("the model's own")
        self.template_file = QToolButton(text="…", objectName="Flat", toolTip="Choose a .jinja chat template file")
        self.template_file.clicked.connect(self._choose_template_file)
        template_row = QHBoxLayout()
        template_row.setContentsMargins(0, 0, 0, 0)
        template_row.addWidget(self.template, 1)
        template_row.addWidget(self.template_file)
        self.adapter = AdapterPicker()
        self.adapter.adapter_chosen.connect(self._on_adapter_chosen)
        form.addRow("Adapter", self.adapter)
        form.addRow("Backend", self.backend)
        form.addRow("Context length", self.context)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("Device", self.device)
        form.addRow("Chat template", template_row)
        form.addRow("Model folders", self.folders_button)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self._request_load)
        self.unload_button = QPushButton("Unload")
        self.unload_button.clicked.connect(self.unload_requested)
        row.addWidget(self.combo, 1)
        self.loaded_label = QLabel("no model loaded", objectName="Muted")
        for widget in (self.refresh_button, self.load_button, self.unload_button):
            row.addWidget(widget)
        outer.addLayout(row)
        self.info = QLabel(objectName="ModelInfo")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        status = QHBoxLayout()
        status.addWidget(self.info, 1)
        status.addWidget(self.loaded_label)
        outer.addLayout(status)
        self._entries: list[dict] = []
        self._memory: dict | None = None
        self._preferred = ""
        self.set_available(False)
        self.set_loaded(None)

    def set_models(self, entries: list[dict], memory: dict | None) -> None:
        keep = self.current_model() or self._preferred
        # Loose image checkpoints show up in the registry too; only text models can chat.
        self._entries, self._memory = [e for e in entries if e.get("kind", "text") == "text"], memory
        self.combo.blockSignals(True)
        self.combo.clear()
        for entry in self._entries:
            label = str(_first(entry, "name", "id") or model_id(entry))
            source = entry.get("source")
            label = f"{label}  ({source})" if source else label
            self.combo.addItem(f"{label}  · vision" if entry.get("vision") is True else label, model_id(entry))
        index = self.combo.findData(keep)
        if index < 0 and keep and keep == self.adapter.current_base():
            self.combo.addItem(Path(keep).name, keep)  # the chosen adapter's base, outside the scanned folders
            index = self.combo.findData(keep)
        self.combo.setCurrentIndex(index if index >= 0 else 0)
        self.combo.blockSignals(False)
        self._update_info()

    def set_memory(self, memory: dict | None) -> None:
        self._memory = memory
        self._update_info()

    def prefer(self, model: str, backend: str, context_length: int) -> None:
        """Preselect what the user chose last time (before the list arrives)."""
        self._preferred = model
        if backend in BACKENDS:
            self.backend.setCurrentText(backend)
        self.context.setValue(int(context_length))
        if self.combo.count() == 0 and model:
            self.combo.addItem(model, model)

    def load_options(self) -> dict:
        """Backend-specific load options, sent with every load request."""
        options = {"gpu_layers": self.gpu_layers.value(), "device": self.device.currentText()}
        if self.adapter.current_adapter():
            options["adapter"] = self.adapter.current_adapter()
        if self.template.currentText().strip():
            options["chat_template"] = self.template.currentText().strip()
        return options

    def set_load_options(self, options: dict) -> None:
        self.gpu_layers.setValue(int(options.get("gpu_layers", -1)))
        if options.get("device") in DEVICES:
            self.device.setCurrentText(options["device"])
        self.adapter.set_adapter(str(options.get("adapter") or ""))
        self.template.setCurrentText(str(options.get("chat_template") or ""))

    def _choose_template_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Chat template", "", "Jinja templates (*.jinja);;All files (*)")
        if path:
            self.template.setCurrentText(path)

    def choose_adapter(self, folder: str, base: str = "") -> None:
        """Select an adapter (and the base model it was trained on), as if the user had picked it."""
        self.adapter.set_adapter(folder, base)
        self._on_adapter_chosen(folder, base)

    def _on_adapter_chosen(self, folder: str, base: str) -> None:
        if not folder:
            return
        if base:  # an adapter only fits the model it was trained on
            index = self.combo.findData(base)
            if index < 0:
                self.combo.addItem(Path(base).name if base != "default" else base, base)
                index = self.combo.findData(base)
            self.combo.setCurrentIndex(index)
            self._preferred = base
        if self.backend.currentText() == "llama":
            self.backend.setCurrentText("auto")  # auto picks transformers for an adapter

    def current_model(self) -> str:
        return self.combo.currentData() or ""

    def current_entry(self) -> dict | None:
        index = self.combo.currentIndex()
        return self._entries[index] if 0 <= index < len(self._entries) else None

    def set_available(self, available: bool) -> None:
        for widget in (self.load_button, self.refresh_button):
            widget.setEnabled(available)
        self.unload_button.setEnabled(available and self.loaded_label.property("loaded") is True)

    def set_loaded(self, loaded: dict | None) -> None:
        if loaded:
            self.loaded_label.setText(f"● {loaded.get('name') or loaded.get('model')}  ({loaded.get('backend', '?')})")
            self.loaded_label.setObjectName("LoadedBadge")
        else:
            self.loaded_label.setText("no model loaded")
            self.loaded_label.setObjectName("Muted")
        self.loaded_label.setProperty("loaded", bool(loaded))
        self.loaded_label.style().unpolish(self.loaded_label)
        self.loaded_label.style().polish(self.loaded_label)
        self.unload_button.setEnabled(bool(loaded) and self.load_button.isEnabled())

    def _request_load(self) -> None:
        if self.current_model():
            self.load_requested.emit(self.current_model(), self.backend.currentText(), self.context.value())

    def _update_info(self) -> None:
        entry = self.current_entry()
        text, fits = describe(entry, self._memory, self.context.value()) if entry else ("", True)
        self.info.setText(("⚠ " if not fits else "") + text)
        self.info.setToolTip(text)
        self.info.setProperty("fits", fits)
        self.info.style().unpolish(self.info)
        self.info.style().polish(self.info)
