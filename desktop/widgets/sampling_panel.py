"""System prompt and sampling parameters, each with presets."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPlainTextEdit, QSpinBox, QVBoxLayout, QWidget,
)

from engines.store.settings import Settings
from desktop.widgets.presets import PresetBar
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT


SAMPLING_PRESETS: dict[str, dict] = {
    "Precise": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0},
    "Balanced": {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1},
    "Creative": {"temperature": 1.1, "top_p": 0.98, "top_k": 100, "min_p": 0.02, "repeat_penalty": 1.05},
}
DEFAULT_SAMPLING: dict = {**SAMPLING_PRESETS["Balanced"], "seed": None, "max_tokens": 512, "stop": [], "overflow": "truncate"}

SYSTEM_PROMPT_PRESETS: dict[str, dict] = {
    "Helpful assistant": {"text": DEFAULT_SYSTEM_PROMPT},
    "Concise": {"text": f"{DEFAULT_SYSTEM_PROMPT} Answer briefly and precisely; say so when you are unsure."},
    "Programmer": {"text": "You are an expert programmer. Answer with working code in fenced code blocks and a short explanation."},
}


def _title(text: str) -> QLabel:
    return QLabel(text, objectName="SectionTitle")


class SystemPromptPanel(QWidget):
    changed = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(_title("SYSTEM PROMPT"))
        self.editor = QPlainTextEdit(placeholderText="How the assistant should behave…")
        self.editor.setFixedHeight(92)
        self.editor.textChanged.connect(self.changed)
        self.presets = PresetBar(settings, "system_prompt", SYSTEM_PROMPT_PRESETS, lambda: {"text": self.text()})
        self.presets.applied.connect(lambda value: self.set_text(value.get("text", "")))
        layout.addWidget(self.editor)
        layout.addWidget(self.presets)

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        if text != self.text():
            self.editor.setPlainText(text)


class SamplingPanel(QWidget):
    changed = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(_title("SAMPLING"))
        self.presets = PresetBar(settings, "sampling", SAMPLING_PRESETS, self.values)
        self.presets.applied.connect(self.set_values)
        layout.addWidget(self.presets)

        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(6)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.temperature = self._double(0.0, 2.0, 0.05, "0 = greedy (always the most likely token)")
        self.top_p = self._double(0.0, 1.0, 0.01, "Nucleus sampling: keep the smallest set of tokens with this much probability")
        self.top_k = QSpinBox(minimum=0, maximum=1000, toolTip="Keep only the k most likely tokens (0 = off)")
        self.min_p = self._double(0.0, 1.0, 0.01, "Drop tokens less likely than this fraction of the top token")
        self.repeat_penalty = self._double(0.5, 2.0, 0.01, "Above 1 discourages repeating recent tokens")
        self.seed = QSpinBox(minimum=-1, maximum=2_147_483_647, toolTip="-1 = a new random seed each time")
        self.seed.setSpecialValueText("random")
        self.max_tokens = QSpinBox(minimum=1, maximum=131_072, singleStep=64, toolTip="Longest reply, in tokens")
        self.stop = QPlainTextEdit(placeholderText="one per line; \\n for a newline")
        self.stop.setFixedHeight(52)
        self.stop.setToolTip("The reply ends when the model writes one of these")
        self.overflow = QComboBox(toolTip="When the conversation is longer than the context: stop with an error, "
                                          "or drop the oldest messages")
        self.overflow.addItem("drop oldest", "truncate")
        self.overflow.addItem("stop, say so", "stop")
        for label, widget in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
                              ("Min-p", self.min_p), ("Repeat penalty", self.repeat_penalty), ("Seed", self.seed),
                              ("Max tokens", self.max_tokens), ("Stop strings", self.stop), ("Overflow", self.overflow)):
            form.addRow(label, widget)
        layout.addLayout(form)
        self.set_values(DEFAULT_SAMPLING)
        for spin in (self.temperature, self.top_p, self.top_k, self.min_p, self.repeat_penalty, self.seed, self.max_tokens):
            spin.valueChanged.connect(self.changed)
        self.stop.textChanged.connect(self.changed)
        self.overflow.currentIndexChanged.connect(self.changed)

    @staticmethod
    def _double(low: float, high: float, step: float, tip: str) -> QDoubleSpinBox:
        return QDoubleSpinBox(minimum=low, maximum=high, singleStep=step, decimals=2, toolTip=tip)

    def values(self) -> dict:
        stops = [line.replace("\\n", "\n").replace("\\t", "\t") for line in self.stop.toPlainText().splitlines() if line]
        return {
            "temperature": round(self.temperature.value(), 4),
            "top_p": round(self.top_p.value(), 4),
            "top_k": self.top_k.value(),
            "min_p": round(self.min_p.value(), 4),
            "repeat_penalty": round(self.repeat_penalty.value(), 4),
            "seed": None if self.seed.value() < 0 else self.seed.value(),
            "max_tokens": self.max_tokens.value(),
            "stop": stops,
            "overflow": self.overflow.currentData(),
        }

    def set_values(self, values: dict) -> None:
        """Apply the keys present (a preset may hold only some)."""
        self.blockSignals(True)
        setters = {
            "temperature": self.temperature.setValue, "top_p": self.top_p.setValue, "top_k": self.top_k.setValue,
            "min_p": self.min_p.setValue, "repeat_penalty": self.repeat_penalty.setValue,
            "max_tokens": self.max_tokens.setValue,
        }
        for key, setter in setters.items():
            if values.get(key) is not None:
                setter(values[key])
        if "seed" in values:
            self.seed.setValue(-1 if values["seed"] is None else int(values["seed"]))
        if "stop" in values:
            self.stop.setPlainText("\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in values["stop"] or []))
        if values.get("overflow"):
            index = self.overflow.findData(values["overflow"])
            if index >= 0:
                self.overflow.setCurrentIndex(index)
        self.blockSignals(False)
        self.changed.emit()
