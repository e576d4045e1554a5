"""The Train tab: a form per method with presets, a memory/time estimate, and the run itself --
``main.py train --job JOB.json`` as a QProcess, and a job on the "train.tail" lane that follows the run
folder (``engines.store.runs.follow_events``) and hands its typed Metric/Progress/Log events to the live curves.

Cancel touches the run's ``cancel`` file and sends SIGTERM (the trainer saves a checkpoint and
exits cleanly); Resume starts the same job with ``--resume``. The job is checked with the same
``TrainJob`` the trainer uses (``engines.core.requests.tune``) before anything starts.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, QTimer, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
    QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)

from engines.core.cancel import CancelToken
from engines.core.errors import HearthError
from engines.core.events import Event, Log, Metric, Progress
from engines.core.launch import child_command
from engines.core.requests.tune import METHODS, PRESETS, TrainJob, count_parameters, estimate_bytes_for
from engines.store.labels import LabelStore
from engines.store.runs import (
    CANCEL, CHECKPOINT_SAVED, JOB, TRAINING_STARTED, RunInfo, events_size, follow_events, list_runs, read_events,
    read_run, runs_dir, seconds_per_step,
)
from desktop.rooms.tune_views.common import Card, FileWorker, TuneJobs, human_bytes, human_seconds, muted, section, set_state
from desktop.rooms.tune_views.runs import RunTable, tune_dir
from desktop.widgets.panels import eliding, side_scroll

METHOD_TEXT = {
    "sft": ("SFT", "Supervised fine-tuning: imitate the replies you liked (thumbs up and the chosen side of pairs)."),
    "reward": ("Reward", "A reward model that scores replies the way you labelled them, from preference pairs. RL needs one."),
    "dpo": ("DPO", "Direct preference optimisation: towards chosen and away from rejected replies, straight from pairs."),
    "kto": ("KTO", "Learns from single replies marked good or bad (thumbs; each pair counts as one of each)."),
    "rl": ("RL", "RLOO: the model writes replies, your reward model scores them, a KL penalty keeps it near the base."),
}
STEP_PRESETS = {  # name -> (max_steps, save_steps)
    "Quick try": (30, 10),
    "Standard": (200, 50),
    "Thorough": (1000, 100),
}
# The bundled SmolLM2-135M, for the estimate before its transformers copy exists (converted on first train).
BUNDLED = {"params": 134_515_008, "config": {"vocab_size": 49152, "hidden_size": 576, "num_hidden_layers": 30}}
FROM_LABELS = "labels"


def export_labels_for(store: LabelStore, method: str, path: Path) -> int:
    """The label store as the JSONL ``method`` reads (runs on the file worker)."""
    if method in ("reward", "dpo"):
        return store.export_preference(path)
    if method in ("sft", "kto"):
        return store.export_unpaired(path, include_pairs=True)
    seen, rows = set(), []
    for s in store.prompt_sets():
        for prompt in store.prompts(s["id"]):
            key = json.dumps(prompt.prompt, sort_keys=True)
            if key not in seen:
                seen.add(key)
                rows.append({"prompt": prompt.prompt})
    from engines.core.paths import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


def label_rows(counts: dict, prompts: int, method: str) -> tuple[int, str]:
    pairs, up, down = counts.get("preference_pairs", 0), counts.get("thumbs_up", 0), counts.get("thumbs_down", 0)
    if method in ("reward", "dpo"):
        return pairs, f"{pairs} preference pairs"
    if method == "sft":
        return pairs + up, f"{pairs + up} good replies ({pairs} chosen, {up} thumbs up)"
    if method == "kto":
        return 2 * pairs + up + down, f"{2 * pairs + up + down} rows ({up} up, {down} down, {pairs} pairs)"
    return prompts, f"{prompts} prompts"


class TrainView(QWidget):
    notified = Signal(str, str)
    status_changed = Signal(str)
    runs_changed = Signal()
    run_finished = Signal(str, str)  # run folder, outcome (completed, cancelled, failed)

    def __init__(self, store: LabelStore, settings, files: FileWorker, jobs: TuneJobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.settings, self.files, self.jobs = store, settings, files, jobs
        self.process: QProcess | None = None
        self.run_dir: Path | None = None
        self._tail_job: str | None = None  # the job following the running trainer's events.jsonl
        self._step_metrics: dict[str, float] = {}
        self._step_events: list[Event] = []
        self._exit_code: int | None = None
        self.curves = None  # built on first show: pyqtgraph loads then
        self.runs: list[RunInfo] = []
        self.memory: dict | None = None  # the host's /hearth/memory, for GPU figures
        self._stderr = ""
        self._last_error = ""
        self._cancelling = False
        self._pending_events: list[Event] = []
        self._estimate_cache: dict[str, tuple[int, dict]] = {}
        self._build()
        self.set_method(self.settings.get("tune.method", "dpo") or "dpo")
        self.refresh_runs()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        form_panel = QWidget(objectName="SidePanel")
        form_panel.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side = QVBoxLayout(form_panel)
        side.setContentsMargins(14, 12, 14, 14)
        side.setSpacing(8)
        side.addWidget(section("Method"))
        methods = QGridLayout()  # three to a row: the panel stays narrow enough for the window's minimum size
        methods.setSpacing(4)
        self.method_group = QButtonGroup(self)
        for i, method in enumerate(METHODS):
            button = QPushButton(METHOD_TEXT[method][0], objectName="Method", checkable=True, toolTip=METHOD_TEXT[method][1])
            self.method_group.addButton(button, i)
            methods.addWidget(button, i // 3, i % 3)
        self.method_group.idClicked.connect(lambda i: self.set_method(METHODS[i]))
        side.addLayout(methods)
        self.method_text = muted()
        self.method_text.setMinimumHeight(34)
        side.addWidget(self.method_text)

        side.addWidget(section("Data and model"))
        data = QFormLayout()
        data.setHorizontalSpacing(10)
        data.setVerticalSpacing(6)
        self.dataset_box = QComboBox()
        self.dataset_box.addItem("My labels", FROM_LABELS)
        self.dataset_box.addItem("Choose a JSONL file…", "browse")
        self.dataset_box.activated.connect(lambda _i: self._maybe_browse(self.dataset_box, "Dataset", file=True))
        self.dataset_info = muted()
        self.base_box = QComboBox()
        self.base_box.addItem("Bundled SmolLM2-135M", "default")
        self.base_box.addItem("Choose a model folder…", "browse")
        self.base_box.activated.connect(lambda _i: self._maybe_browse(self.base_box, "Base model", file=False))
        self.reward_box = QComboBox()
        self.reward_box.addItem("Choose a reward run…", "browse")
        self.reward_box.activated.connect(lambda _i: self._maybe_browse(self.reward_box, "Reward model", file=False))
        data.addRow("Dataset", self.dataset_box)
        data.addRow("", self.dataset_info)
        data.addRow("Base model", self.base_box)
        data.addRow("Reward model", self.reward_box)
        self.data_form = data
        side.addLayout(data)

        side.addWidget(section("Settings"))
        self.preset_box = QComboBox()
        self.preset_box.addItems(list(STEP_PRESETS))
        self.preset_box.setCurrentText("Quick try")
        self.preset_box.activated.connect(lambda _i: self.apply_preset())
        self.steps = QSpinBox(minimum=1, maximum=1_000_000, value=30)
        self.lr = QLineEdit(toolTip="Learning rate, e.g. 5e-5")
        self.batch = QSpinBox(minimum=1, maximum=1024, value=2)
        self.accum = QSpinBox(minimum=1, maximum=1024, value=1, toolTip="Gradient accumulation steps")
        self.beta = QDoubleSpinBox(minimum=0.0, maximum=10.0, decimals=3, singleStep=0.01,
                                   toolTip="DPO/KTO temperature; for RL the weight of the KL penalty against the base model")
        self.lora_r = QSpinBox(minimum=1, maximum=512, value=8)
        self.lora_alpha = QSpinBox(minimum=1, maximum=1024, value=16)
        self.lora_dropout = QDoubleSpinBox(minimum=0.0, maximum=0.9, decimals=2, singleStep=0.05, value=0.05)
        self.targets = QLineEdit("q_proj, k_proj, v_proj, o_proj", toolTip="Layers LoRA adapts (comma separated)")
        self.max_length = QSpinBox(minimum=16, maximum=32768, singleStep=64, value=512)
        self.save_steps = QSpinBox(minimum=1, maximum=1_000_000, value=10, toolTip="Save a checkpoint every N steps")
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.generations = QSpinBox(minimum=2, maximum=64, value=2, toolTip="RL: replies sampled per prompt")
        self.completion_tokens = QSpinBox(minimum=4, maximum=4096, value=64, toolTip="RL: tokens per sampled reply")
        self.run_name = QLineEdit(placeholderText="automatic")
        settings = QFormLayout()
        settings.setHorizontalSpacing(10)
        settings.setVerticalSpacing(6)
        lora = QHBoxLayout()
        for label, widget in (("r", self.lora_r), ("α", self.lora_alpha)):
            lora.addWidget(QLabel(label, objectName="Muted"))
            lora.addWidget(widget)
        batch = QHBoxLayout()
        batch.addWidget(self.batch)
        batch.addWidget(QLabel("× accum", objectName="Muted"))
        batch.addWidget(self.accum)
        self.rl_rows: list[QWidget] = []
        for label, widget in (("Preset", self.preset_box), ("Steps", self.steps), ("Learning rate", self.lr),
                              ("Batch", batch), ("β / KL", self.beta), ("LoRA", lora), ("LoRA dropout", self.lora_dropout), ("Targets", self.targets),
                              ("Max length", self.max_length), ("Checkpoint", self.save_steps), ("Seed", self.seed),
                              ("Device", self.device), ("Samples", self.generations), ("Reply tokens", self.completion_tokens),
                              ("Run name", self.run_name)):
            settings.addRow(label, widget)
        self.settings_form = settings
        for combo in (self.dataset_box, self.base_box, self.reward_box, self.preset_box, self.device):
            eliding(combo, 12)
        side.addLayout(settings)

        side.addStretch(1)
        scroll = side_scroll(form_panel)
        # The estimate and Start stay in view under the scrolling form.
        footer = QWidget(objectName="SidePanel")
        footer.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        foot = QVBoxLayout(footer)
        foot.setContentsMargins(14, 8, 14, 14)
        foot.setSpacing(6)
        self.estimate = QLabel(objectName="Estimate", wordWrap=True)
        foot.addWidget(self.estimate)
        self.form_error = QLabel(objectName="Bad", wordWrap=True, visible=False)
        foot.addWidget(self.form_error)
        self.start_button = QPushButton("Start training", objectName="Primary")
        self.start_button.clicked.connect(self.start)
        foot.addWidget(self.start_button)
        left = QWidget()
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.setSpacing(0)
        left_column.addWidget(scroll, 1)
        left_column.addWidget(footer)
        left.setMaximumWidth(430)

        # centre: the run
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.run_title = QLabel("No run yet", objectName="RoomSubtitle")
        self.run_status = QLabel("", objectName="RunStatus")
        for label in (self.run_title, self.run_status):
            label.setWordWrap(True)  # the run's name wraps rather than pushing its buttons out of the room
        titles.addWidget(self.run_title)
        titles.addWidget(self.run_status)
        head.addLayout(titles, 1)
        self.cancel_button = QPushButton("Cancel", objectName="Danger", enabled=False,
                                         toolTip="Save a checkpoint and stop (Resume continues from it)")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume", enabled=False, toolTip="Continue the selected run from its last checkpoint")
        self.resume_button.clicked.connect(self.resume)
        self.open_button = QPushButton("Open folder", objectName="Flat", enabled=False)
        self.open_button.clicked.connect(lambda: self.run_dir and QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir))))
        for button in (self.open_button, self.resume_button, self.cancel_button):
            head.addWidget(button)
        self.curve_box = QVBoxLayout()
        self.curve_box.setContentsMargins(0, 0, 0, 0)
        self.curve_host = QWidget()
        self.curve_host.setLayout(self.curve_box)
        self.log = QPlainTextEdit(objectName="RunLog", readOnly=True, maximumBlockCount=400)
        self.log.setPlaceholderText("The trainer's messages appear here.")
        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(20, 14, 20, 8)
        column.setSpacing(10)
        column.addLayout(head)
        column.addWidget(self.curve_host, 1)

        runs_card = Card("Runs")
        self.runs_card = runs_card  # the room adds the selected run's actions to it
        runs_head = QHBoxLayout()
        saved_under = muted(f"Saved under {runs_dir()}", wrap=False)
        saved_under.setToolTip(str(runs_dir()))
        saved_under.setMinimumWidth(40)  # a long path is clipped at the right, not allowed to widen the room
        runs_head.addWidget(saved_under, 1)
        refresh = QPushButton("⟳", objectName="Flat", toolTip="Look for runs again")
        refresh.clicked.connect(self.refresh_runs)
        runs_head.addWidget(refresh)
        runs_card.body.addLayout(runs_head)
        self.run_table = RunTable()
        self.run_table.run_selected.connect(self.show_run)
        bottom_row = QHBoxLayout()
        bottom_row.setSpacing(10)
        bottom_row.addWidget(self.run_table, 5)
        bottom_row.addWidget(self.log, 3)
        runs_card.body.addLayout(bottom_row)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(20, 4, 20, 14)
        bottom_layout.addWidget(runs_card)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(side_scroll(bottom))  # a short window scrolls the runs instead of squeezing them
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([520, 300])
        split.setChildrenCollapsible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(left)
        layout.addWidget(split, 1)

        self._kill_timer = QTimer(self, singleShot=True, interval=30_000)
        self._kill_timer.timeout.connect(lambda: self.process and self.process.kill())
        self._estimate_timer = QTimer(self, singleShot=True, interval=250)
        self._estimate_timer.timeout.connect(self.update_estimate)
        for widget in (self.steps, self.batch, self.accum, self.max_length, self.generations, self.completion_tokens):
            widget.valueChanged.connect(self._form_changed)
        self.device.currentIndexChanged.connect(self._form_changed)
        self.base_box.currentIndexChanged.connect(self._form_changed)

    def ensure_curves(self):
        if self.curves is None:
            from desktop.rooms.tune_views.curves import Curves

            self.curves = Curves()
            self.curve_box.addWidget(self.curves)
            if self._pending_events:
                self.curves.add_events(self._pending_events)
                self._pending_events = []
        return self.curves

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_curves()

    # ------------------------------------------------------------------ form
    @property
    def method(self) -> str:
        return METHODS[max(0, self.method_group.checkedId())]

    def set_method(self, method: str) -> None:
        if method not in METHODS:
            method = "dpo"
        self.method_group.button(METHODS.index(method)).setChecked(True)
        self.method_text.setText(METHOD_TEXT[method][1])
        self.settings.set("tune.method", method)
        preset = PRESETS[method]
        self.lr.setText(f"{preset['learning_rate']:g}")
        self.beta.setValue(preset["beta"])
        self.beta.setEnabled(method in ("dpo", "kto", "rl"))
        rl = method == "rl"
        self.data_form.setRowVisible(self.reward_box, rl)
        for widget in (self.generations, self.completion_tokens):
            self.settings_form.setRowVisible(widget, rl)
        if method == "kto" and self.batch.value() < 2:
            self.batch.setValue(2)
        self.update_dataset_info()
        self._form_changed()

    def apply_preset(self) -> None:
        steps, save = STEP_PRESETS[self.preset_box.currentText()]
        self.steps.setValue(steps)
        self.save_steps.setValue(save)
        self.set_method(self.method)

    def _maybe_browse(self, box: QComboBox, what: str, file: bool) -> None:
        if box.currentData() != "browse":
            return
        if file:
            path, _ = QFileDialog.getOpenFileName(self, what, str(Path.home()), "JSON Lines (*.jsonl)")
        else:
            path = QFileDialog.getExistingDirectory(self, what, str(runs_dir() if box is self.reward_box else Path.home()))
        if path:
            self.add_choice(box, path)
        else:
            box.setCurrentIndex(0 if box.count() > 1 and box.itemData(0) != "browse" else box.currentIndex())
        self._form_changed()
        self.update_dataset_info()

    def add_choice(self, box: QComboBox, path: str, text: str | None = None) -> None:
        index = box.findData(path)
        if index < 0:
            box.insertItem(box.count() - 1, text or Path(path).name, path)
            index = box.findData(path)
            box.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        box.setCurrentIndex(index)

    def update_dataset_info(self) -> None:
        if self.dataset_box.currentData() == FROM_LABELS:
            prompts = sum(s["prompts"] for s in self.store.prompt_sets())
            n, text = label_rows(self.store.counts(), prompts, self.method)
            self.dataset_info.setText(("" if n else "⚠ ") + text + ("" if n else " yet: label some replies first"))
        else:
            self.dataset_info.setText(str(self.dataset_box.currentData() or ""))

    def job_dict(self, output_dir: Path, dataset: str) -> dict:
        try:
            lr = float(self.lr.text())
        except ValueError:
            lr = self.lr.text()  # TrainJob says what is wrong with it
        reward = self.reward_box.currentData()
        return {
            "method": self.method, "dataset": dataset, "output_dir": str(output_dir),
            "base_model": self.base_box.currentData() or "default",
            "lora": {"r": self.lora_r.value(), "alpha": self.lora_alpha.value(), "dropout": self.lora_dropout.value(),
                     "target_modules": [t.strip() for t in self.targets.text().split(",") if t.strip()]},
            "max_steps": self.steps.value(), "learning_rate": lr, "batch_size": self.batch.value(),
            "gradient_accumulation_steps": self.accum.value(), "beta": self.beta.value(), "seed": self.seed.value(),
            "reward_model": reward if self.method == "rl" and reward not in (None, "browse") else None,
            "max_length": self.max_length.value(), "max_completion_length": self.completion_tokens.value(),
            "num_generations": self.generations.value(), "save_steps": self.save_steps.value(), "logging_steps": 1,
            "device": self.device.currentText(),
        }

    def check_form(self) -> TrainJob | None:
        """The form as a checked job (placeholder paths), or None with the problem shown."""
        try:
            job = TrainJob.from_dict(self.job_dict(runs_dir() / "check", "dataset.jsonl"), where="The form")
        except (HearthError, TypeError) as exc:
            self._show_form_error(str(exc).replace("The form: ", ""))
            return None
        self._show_form_error("")
        return job

    def _show_form_error(self, text: str) -> None:
        self.form_error.setText(f"⚠ {text}" if text else "")
        self.form_error.setVisible(bool(text))

    def _form_changed(self, *_args) -> None:
        self._estimate_timer.start()

    # ------------------------------------------------------------------ estimate
    def update_estimate(self) -> None:
        job = self.check_form()
        if job is None:
            self.estimate.setText("")
            return
        base = job.base_model
        if base in self._estimate_cache or base == "default":
            self._show_estimate(job, *self._estimate_cache.get(base, (BUNDLED["params"], BUNDLED["config"])))
            return

        def read() -> tuple[int, dict]:
            folder = Path(base)
            return count_parameters(folder), json.loads((folder / "config.json").read_text())

        def done(result, error) -> None:
            if error is not None:
                self.estimate.setText(f"Cannot estimate: {error}")
                return
            self._estimate_cache[base] = result
            if self.check_form() is not None:
                self._show_estimate(self.check_form(), *result)

        self.files.submit(read, done)

    def _show_estimate(self, job: TrainJob, params: int, config: dict) -> None:
        need = estimate_bytes_for(job, params, config)
        gpu = bool(self.memory and self.memory.get("vram_total")) and job.device != "cpu"
        if gpu:
            free, where = float(self.memory.get("vram_free") or 0), f"free on {self.memory.get('gpu_name') or 'the GPU'}"
        else:
            # The host reports memory; importing psutil here would stall the GUI thread (~60 ms).
            free, where = float((self.memory or {}).get("ram_available") or 0), "RAM free"
        when = time_estimate(job, params, self.runs, gpu)[1]
        if not free:  # the host has not reported memory yet
            self.estimate.setText(f"Memory ~{human_bytes(need)} (free memory shows once the engine host is up)\nTime {when}")
            set_state(self.estimate, "fits", True)
            return
        fits = need <= free
        self.estimate.setText(f"Memory ~{human_bytes(need)} of {human_bytes(free)} {where}" + ("" if fits else " ⚠ may not fit: lower "
                              "batch size or max length") + f"\nTime {when}")
        set_state(self.estimate, "fits", fits)

    def time_estimate(self) -> tuple[float, str] | None:
        """(seconds, how it was reached) for the job on the form, or None while the form has an error."""
        job = self.check_form()
        if job is None:
            return None
        params = self._estimate_cache.get(job.base_model, (BUNDLED["params"], None))[0]
        gpu = bool(self.memory and self.memory.get("vram_total")) and job.device != "cpu"
        return time_estimate(job, params, self.runs, gpu)

    def apply_settings(self, values: dict) -> None:
        """Fill the form (the guided path's settings): method first (it sets the preset learning rate and
        beta), then any of base_model, reward_model, steps, batch, max_length, learning_rate, lora_r,
        lora_alpha, targets, device, generations, completion_tokens, save_steps, run_name."""
        self.set_method(values.get("method", self.method))
        self.dataset_box.setCurrentIndex(self.dataset_box.findData(FROM_LABELS))
        for key, box in (("base_model", self.base_box), ("reward_model", self.reward_box)):
            if values.get(key):
                if values[key] == "default":
                    box.setCurrentIndex(box.findData("default"))
                else:
                    self.add_choice(box, values[key])
        spins = {"steps": self.steps, "batch": self.batch, "max_length": self.max_length, "lora_r": self.lora_r,
                 "lora_alpha": self.lora_alpha, "generations": self.generations, "completion_tokens": self.completion_tokens,
                 "save_steps": self.save_steps}
        for key, spin in spins.items():
            if key in values:
                spin.setValue(int(values[key]))
        if "learning_rate" in values:
            self.lr.setText(f"{values['learning_rate']:g}")
        if "targets" in values:
            self.targets.setText(", ".join(values["targets"]))
        if "device" in values:
            self.device.setCurrentText(values["device"])
        if "run_name" in values:
            self.run_name.setText(values["run_name"])
        self.update_dataset_info()
        self._form_changed()

    def set_memory(self, memory: dict) -> None:
        self.memory = memory
        self._form_changed()

    # ------------------------------------------------------------------ runs
    @property
    def running(self) -> bool:
        """A trainer is running, or its last events are still being read."""
        return self.process is not None or self.jobs.active(self._tail_job)

    def refresh_runs(self, select: str | None = None) -> None:
        def done(runs, error) -> None:
            if error is not None:
                self.notified.emit("error", f"Cannot list the runs in {runs_dir()}: {error}")
                return
            self.runs = runs
            self.run_table.set_runs(runs, select=select or (self.run_dir.name if self.run_dir else None))
            current = self.reward_box.currentData()
            for i in range(self.reward_box.count() - 2, -1, -1):
                self.reward_box.removeItem(i)
            for run in runs:
                if run.method == "reward" and run.status == "completed":
                    self.reward_box.insertItem(self.reward_box.count() - 1, f"{run.name}", str(run.folder))
            index = self.reward_box.findData(current)
            self.reward_box.setCurrentIndex(index if index >= 0 else 0)
            self._update_buttons()
            self.runs_changed.emit()
            self._form_changed()

        self.files.submit(list_runs, done)

    def show_run(self, run: RunInfo) -> None:
        """The curves and status of a past run (not while one is training)."""
        if self.running:
            return
        self.run_dir = run.folder
        self._show_run_header(run)
        self._update_buttons()

        def done(events, error) -> None:
            if error is None and self.run_dir == run.folder and not self.running:
                self._set_events(events)

        self.files.submit(lambda: read_events(run.folder), done)

    def _set_events(self, events: list[Event], append: bool = False) -> None:
        if self.curves is None:
            self._pending_events = (self._pending_events if append else []) + events
            return
        if not append:
            self.curves.clear()
        self.curves.add_events(events)

    def _show_run_header(self, run: RunInfo) -> None:
        self.run_title.setText(f"{run.name}  ·  {run.method}")
        loss = f" · final loss {run.final_loss:.4f}" if isinstance(run.final_loss, (int, float)) else ""
        self.run_status.setText(f"{run.status} · {run.steps}/{run.max_steps} steps{loss}")
        set_state(self.run_status, "state", run.status)

    def _update_buttons(self) -> None:
        selected = self.run_table.selected()
        self.start_button.setEnabled(not self.running)
        self.cancel_button.setEnabled(self.running and not self._cancelling)
        resumable = selected is not None and selected.has_checkpoint and selected.status in ("cancelled", "failed", "stopped")
        self.resume_button.setEnabled(not self.running and resumable)
        self.open_button.setEnabled(self.run_dir is not None)

    # ------------------------------------------------------------------ start / cancel / resume
    def start(self) -> None:
        if self.running or self.check_form() is None:
            return
        name = self.run_name.text().strip() or f"{self.method}-{time.strftime('%Y%m%d-%H%M%S')}"
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
        output_dir = runs_dir() / name
        if output_dir.exists():
            self._show_form_error(f"A run named {name} exists already; choose another name.")
            return
        job_file = tune_dir("jobs") / f"{name}.json"
        source = self.dataset_box.currentData()
        if source == FROM_LABELS:
            prompts = sum(s["prompts"] for s in self.store.prompt_sets())
            n, text = label_rows(self.store.counts(), prompts, self.method)
            if not n:
                self._show_form_error(f"Your labels have no {text.split(' ', 1)[1]} for {self.method} yet.")
                return
            dataset = tune_dir("datasets") / f"{name}.jsonl"
            method = self.method

            def export() -> int:
                return export_labels_for(self.store, method, dataset)

            def exported(count, error) -> None:
                if error is not None:
                    self.notified.emit("error", f"Could not export the labels to {dataset}: {error}")
                    self._update_buttons()
                    return
                self._launch_new(name, output_dir, job_file, str(dataset))

            self.start_button.setEnabled(False)
            self.run_title.setText(f"{name}  ·  exporting labels…")
            self.files.submit(export, exported)
        else:
            self._launch_new(name, output_dir, job_file, str(source))

    def _launch_new(self, name: str, output_dir: Path, job_file: Path, dataset: str) -> None:
        try:
            job = TrainJob.from_dict(self.job_dict(output_dir, dataset), where="The form")
        except (HearthError, TypeError) as exc:
            self._show_form_error(str(exc))
            self._update_buttons()
            return
        job.save(job_file)
        self.run_name.clear()
        self._launch(output_dir, ["train", "--job", str(job_file)], f"{name}  ·  {job.method}", job.max_steps)

    def resume(self) -> None:
        run = self.run_table.selected()
        if self.running or run is None:
            return
        job_file = run.folder / JOB  # the trainer saved the job with absolute paths
        (run.folder / CANCEL).unlink(missing_ok=True)
        self._launch(run.folder, ["train", "--job", str(job_file), "--resume"], f"{run.name}  ·  {run.method} (resumed)",
                     run.max_steps, resumed=True)

    def _launch(self, output_dir: Path, args: list[str], title: str, max_steps: int, resumed: bool = False) -> None:
        self.run_dir = output_dir
        self.max_steps = max_steps
        if not resumed:
            self._set_events([])
        self._stderr, self._last_error, self._cancelling = "", "", False
        self.log.clear()
        command = child_command(*args)
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for key, value in (("PYTHONUNBUFFERED", "1"), ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"),
                           ("TOKENIZERS_PARALLELISM", "false"), ("TQDM_DISABLE", "1")):
            env.insert(key, value)
        process.setProcessEnvironment(env)
        process.setProgram(command[0])
        process.setArguments(command[1:])
        process.readyReadStandardError.connect(self._on_stderr)
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_process_error)
        self.process = process
        self.run_title.setText(title)
        self.run_status.setText("starting: loading the trainer and the model…")
        set_state(self.run_status, "state", "running")
        # The trainer appends to events.jsonl; a job on its own lane follows it off the GUI thread.
        token, self._step_metrics, self._step_events = CancelToken(), {}, []
        offset = events_size(output_dir) if resumed else 0  # a resumed run's curves continue from what is shown
        process.start()
        self._tail_job = self.jobs.stream("train.tail", lambda _: follow_events(output_dir, token, max_steps, offset),
                                          self._on_run_event, label=f"Following {title}", on_done=self._on_tail_done,
                                          token=token, host=False)
        self._update_buttons()
        self.status_changed.emit(f"Training {title}")

    def cancel(self) -> None:
        if self.process is None or self._cancelling:
            return
        self._cancelling = True
        if self.run_dir is not None and self.run_dir.is_dir():
            (self.run_dir / CANCEL).touch()  # seen at the next step even where signals are not
        self.process.terminate()  # SIGTERM: the trainer saves a checkpoint and exits
        self._kill_timer.start()
        self.run_status.setText("cancelling: saving a checkpoint…")
        self._update_buttons()

    # ------------------------------------------------------------------ the running process
    def _on_stdout(self) -> None:
        if self.process is not None:
            self._append_log(bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace"))

    def _on_stderr(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr = (self._stderr + text)[-20_000:]
        for line in text.splitlines():
            if line.startswith("error:"):
                self._last_error = line[6:].strip()
        self._append_log(text)

    def _append_log(self, text: str) -> None:
        for line in text.replace("\r", "\n").splitlines():
            line = line.rstrip()
            if line and "FutureWarning" not in line and not line.lstrip().startswith("warnings.warn"):
                self.log.appendPlainText(line)

    def _on_run_event(self, event: Event) -> None:
        """A typed event from the running trainer's folder (see engines.store.runs.typed_events)."""
        if isinstance(event, Metric):
            self._step_metrics[event.name] = event.value
            self._step_events.append(event)
        elif isinstance(event, Progress) and not event.message:  # a step ended: its metrics came just before
            metrics, self._step_metrics = self._step_metrics, {}
            self._set_events(self._step_events, append=True)  # one curve update per step
            self._step_events = []
            parts = [f"step {event.step}/{self.max_steps}"]
            if "loss" in metrics:
                parts.append(f"loss {metrics['loss']:.4f}")
            if metrics.get("samples_per_s"):
                parts.append(f"{metrics['samples_per_s']:.2f} samples/s")
            if "eta_s" in metrics:
                parts.append(f"{human_seconds(metrics['eta_s'])} left")
            if not self._cancelling and self.process is not None:
                self.run_status.setText("  ·  ".join(parts))
            self.status_changed.emit("Training: " + ", ".join(parts))
        elif isinstance(event, Log):
            if event.level == "error":
                self._last_error = event.message
            elif event.message == TRAINING_STARTED and not self._cancelling and self.process is not None:
                self.run_status.setText("training…")
            elif event.message.startswith(CHECKPOINT_SAVED):
                self.log.appendPlainText(event.message)

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._last_error = f"Could not start {self.process.program()}: {self.process.errorString()}"
            self._on_finished(-1, QProcess.ExitStatus.CrashExit)

    def _on_finished(self, code: int, status) -> None:
        process = self.process
        if process is None:
            return
        self._on_stdout()
        self._on_stderr()
        self._kill_timer.stop()
        self.process = None
        process.deleteLater()
        self._exit_code = code
        if self.jobs.active(self._tail_job):
            self.jobs.cancel(self._tail_job)  # the follower reads the last lines, then _on_tail_done ends the run
        else:
            self._end_run()

    def _on_tail_done(self, how: str, error) -> None:
        self._tail_job = None
        if error is not None:
            self.log.appendPlainText(f"Could not follow the run's events: {error}")
        if self.process is None:
            self._end_run()

    def _end_run(self) -> None:
        code = self._exit_code
        run = read_run(self.run_dir) if self.run_dir and self.run_dir.is_dir() else None
        if run is not None and run.summary:
            self._show_run_header(run)
            outcome = run.status
        else:
            outcome = "cancelled" if self._cancelling else "failed"
            self.run_status.setText(outcome + (f": {self._last_error}" if self._last_error else ""))
            set_state(self.run_status, "state", outcome)
        if outcome == "failed" or (code not in (0, None) and not self._cancelling and outcome != "completed"):
            message = self._last_error or _last_line(self._stderr) or f"the trainer exited with code {code}"
            outcome = "failed"
            self.run_status.setText(f"failed: {message}")
            set_state(self.run_status, "state", "failed")
            self.notified.emit("error", f"Training failed: {message}")
        elif outcome == "completed":
            self.notified.emit("info", f"Training finished: the adapter is in {self.run_dir}")
        self._cancelling = False
        self.status_changed.emit(f"Training {outcome}")
        self.run_finished.emit(str(self.run_dir or ""), outcome)
        self.refresh_runs(select=self.run_dir.name if self.run_dir else None)
        self._update_buttons()

    def shutdown(self, wait_ms: int = 15_000) -> None:
        """The window is closing: stop a running job with a checkpoint (resume later), then kill it if it hangs."""
        self._estimate_timer.stop()
        process = self.process
        if process is None:
            return
        self.cancel()
        if not process.waitForFinished(wait_ms):
            process.kill()
            process.waitForFinished(3000)
        self._on_finished(process.exitCode(), process.exitStatus())


def time_estimate(job: TrainJob, params: int, runs: list[RunInfo], gpu: bool) -> tuple[float, str]:
    """(seconds, text) for ``job``: from the speed of earlier runs of the same method and base, else a rough guess."""
    per_step = seconds_per_step(runs, job.method, job.base_model)
    if per_step is not None:
        seconds = per_step * job.max_steps
        return seconds, f"~{human_seconds(seconds)} ({per_step:.2f} s/step in your earlier {job.method} runs)"
    tokens = job.batch_size * job.gradient_accumulation_steps * (2 if job.method in ("dpo", "reward") else 1) * job.max_length * 0.5
    flops = 6 * params * tokens * (3 if job.method == "rl" else 1)
    seconds = flops / (4e12 if gpu else 4e10) * job.max_steps
    return seconds, f"~{human_seconds(seconds)} + model load (a rough guess; it learns from your runs)"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
