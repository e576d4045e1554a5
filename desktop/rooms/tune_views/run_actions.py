"""What a finished run can do next: chat with it, compare it with its base, merge it into a standalone
model folder, export it as a GGUF for llama.cpp, or export it as a job for a cluster.

Merging runs in the engine host (it loads the model; the GUI process never imports torch) on the
``tune.merge`` lane; the GGUF export runs ``main.py export-gguf`` and the cluster export ``main.py
export-job`` as child processes (one loads and merges the model, the other reads TRL's accelerate
configs). None of them ever blocks the GUI thread.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLineEdit, QPushButton,
    QSpinBox,
    QVBoxLayout, QWidget,
)

from engines.core.launch import child_command
from engines.core.paths import models_dir
from desktop.rooms.tune_views.common import TuneJobs, muted
from engines.store.runs import JOB, RunInfo

STRATEGIES = (("ddp", "DDP (data parallel)"), ("deepspeed-zero2", "DeepSpeed ZeRO-2"),
              ("deepspeed-zero3", "DeepSpeed ZeRO-3"), ("fsdp", "FSDP"))


class ExportDialog(QDialog):
    """Where to write the job folder, and for how many machines and GPUs."""

    def __init__(self, run: RunInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {run.name} for a cluster")
        self.folder = QLineEdit(str(Path.home() / f"{run.name}-cluster"))
        browse = QPushButton("…", objectName="Flat")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        self.strategy = QComboBox()
        for key, text in STRATEGIES:
            self.strategy.addItem(text, key)
        self.gpus = QSpinBox(minimum=1, maximum=1024, value=8)
        self.machines = QSpinBox(minimum=1, maximum=1024, value=1)
        form = QFormLayout()
        form.addRow("Folder (new)", where)
        form.addRow("Strategy", self.strategy)
        form.addRow("GPUs per machine", self.gpus)
        form.addRow("Machines", self.machines)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(muted("Writes JOB.json, the dataset, accelerate.yaml and launch.sh with the exact "
                               "`accelerate launch` command."))
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Put the job folder in", str(Path(self.folder.text()).parent))
        if folder:
            self.folder.setText(str(Path(folder) / Path(self.folder.text()).name))


GGUF_QUANTS = (("q8_0", "Q8_0 (8-bit, about half the size of F16)"), ("f16", "F16 (16-bit, exact)"))


class GgufDialog(QDialog):
    """The quantisation and the new file; the default is the models folder, which Chat lists."""

    def __init__(self, run: RunInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.setWindowTitle(f"Export {run.name} as GGUF")
        self.quant = QComboBox()
        for key, text in GGUF_QUANTS:
            self.quant.addItem(text, key)
        self.file = QLineEdit()
        self.quant.currentIndexChanged.connect(self._default_name)
        self._default_name()
        browse = QPushButton("…", objectName="Flat")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.file, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Quantisation", self.quant)
        form.addRow("File (new)", where)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(muted("Merges the adapter into its base model and writes a GGUF that Chat runs on llama.cpp, "
                               "with the model's tokenizer and chat template. Llama, Mistral, Qwen2 and SmolLM2 export."))
        layout.addWidget(buttons)

    def _default_name(self) -> None:
        self.file.setText(str(default_gguf_path(self.run.name, self.quant.currentData())))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the GGUF as", self.file.text(), "GGUF models (*.gguf)")
        if path:
            self.file.setText(path if path.lower().endswith(".gguf") else path + ".gguf")


def default_gguf_path(run_name: str, quant: str) -> Path:
    """``<models folder>/<run>.<QUANT>.gguf``, numbered when taken (the exporter never overwrites)."""
    folder = models_dir()
    target, n = folder / f"{run_name}.{quant.upper()}.gguf", 2
    while target.exists():
        target, n = folder / f"{run_name}.{quant.upper()}-{n}.gguf", n + 1
    return target


class RunActions(QWidget):
    notified = Signal(str, str)
    chat_requested = Signal(str, str)  # adapter folder, base model
    compare_requested = Signal(str)  # adapter folder
    merged = Signal(str)  # the new model folder
    exported = Signal(dict)  # {"folder", "command", "files"}
    gguf_exported = Signal(str)  # the new .gguf file

    def __init__(self, jobs: TuneJobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.run: RunInfo | None = None
        self._merge_job: str | None = None
        self._export: QProcess | None = None
        self._export_out = b""
        self._gguf: QProcess | None = None
        self._gguf_out = b""
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        self.chat_button = QPushButton("Chat with this", toolTip="Load this run's adapter on its base model in Chat")
        self.compare_button = QPushButton("Compare", toolTip="Base vs tuned on held-out prompts (Compare tab)")
        self.merge_button = QPushButton("Merge and save…", toolTip="The base model with this adapter merged in, as a new model folder")
        self.gguf_button = QPushButton("Export GGUF…", toolTip="Merged into its base and written as a GGUF file for "
                                                               "Chat's llama.cpp engine (F16 or Q8_0)")
        self.export_button = QPushButton("Export job…", toolTip="JOB.json, accelerate config and launch command for many GPUs/machines")
        self.chat_button.clicked.connect(lambda: self.run and self.chat_requested.emit(str(self.run.folder), self.run.base_model))
        self.compare_button.clicked.connect(lambda: self.run and self.compare_requested.emit(str(self.run.folder)))
        self.merge_button.clicked.connect(self._ask_merge)
        self.gguf_button.clicked.connect(self._ask_gguf)
        self.export_button.clicked.connect(self._ask_export)
        self.hint = muted("Select a finished run.", wrap=False)
        column.addWidget(self.hint)
        # Two columns: the runs panel is narrow at the window's minimum size.
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, button in enumerate((self.chat_button, self.compare_button, self.merge_button, self.gguf_button,
                                    self.export_button)):
            grid.addWidget(button, i // 2, i % 2)
        column.addLayout(grid)
        self.set_run(None)

    def set_run(self, run: RunInfo | None) -> None:
        self.run = run
        adapter = run is not None and run.status == "completed" and run.has_adapter
        policy = adapter and run.method != "reward"  # a reward model scores replies; it does not write them
        self.chat_button.setEnabled(policy)
        self.compare_button.setEnabled(policy)
        self.merge_button.setEnabled(policy and self._merge_job is None)
        self.gguf_button.setEnabled(policy and self._gguf is None)
        self.export_button.setEnabled(run is not None and (run.folder / JOB).is_file() and self._export is None)
        # Five buttons share the row: the hint stays short, the tooltip says it in full.
        if run is None:
            self.hint.setText("Select a run.")
            self.hint.setToolTip("Select a run to chat with it, compare, merge or export it.")
        elif not adapter:
            self.hint.setText(f"{run.name}: no adapter yet.")
            self.hint.setToolTip(f"{run.name} has no finished adapter yet.")
        else:
            self.hint.setText(f"{run.name}: " + ("reward model." if not policy else "ready."))
            self.hint.setToolTip(f"{run.name}: " + ("a reward model, for Compare's scores and RL." if not policy else
                                                    "ready to chat with, compare, merge or export."))

    # -- merge ---------------------------------------------------------------------------
    def _ask_merge(self) -> None:
        if self.run is None:
            return
        parent = QFileDialog.getExistingDirectory(self, f"Save {self.run.name} merged into", str(Path.home()))
        if parent:
            self.merge(self.run, str(Path(parent) / f"{self.run.name}-merged"))

    def merge(self, run: RunInfo, target: str) -> None:
        if self._merge_job is not None:
            return

        def on_result(data: dict) -> None:
            folder = data.get("folder", target)
            self.notified.emit("info", f"Saved {run.name} merged into its base model as {folder} "
                                       "(add it in Chat with Folders… to chat with it without the adapter).")
            self.merged.emit(folder)

        def on_done(how: str, error) -> None:
            self._merge_job = None
            self.set_run(self.run)
            if error is not None:
                self.notified.emit("error", f"Merging {run.name} failed: {error}")

        self._merge_job = self.jobs.call("merge", lambda client: client.merge_adapter(str(run.folder), target), on_result,
                                         f"Merging {run.name} into its base model", on_done)
        self.set_run(self.run)

    # -- GGUF ----------------------------------------------------------------------------
    def _ask_gguf(self) -> None:
        if self.run is None:
            return
        dialog = GgufDialog(self.run, self)
        if dialog.exec():
            self.export_gguf(self.run, dialog.file.text(), dialog.quant.currentData())

    def export_gguf(self, run: RunInfo, target: str, quant: str = "q8_0") -> None:
        """``main.py export-gguf`` for the run, as a child process (it loads torch and the model)."""
        if self._gguf is not None:
            return
        command = child_command("export-gguf", "--run", str(run.folder), "--out", target, "--quant", quant)
        self._gguf_out = b""
        self._gguf = self._start(command, self._read_gguf, lambda process, code: self._gguf_done(process, run, code))
        self.notified.emit("info", f"Exporting {run.name} as {Path(target).name} ({quant.upper()})…")
        self.set_run(self.run)

    def _read_gguf(self, process: QProcess) -> None:
        self._gguf_out += bytes(process.readAllStandardOutput())

    def _gguf_done(self, process: QProcess, run: RunInfo, code: int) -> None:
        self._read_gguf(process)
        result, message = _child_result(process, self._gguf_out, code)
        self._gguf = None
        self.set_run(self.run)
        if result is None:
            self.notified.emit("error", f"Exporting {run.name} as GGUF failed: {message}")
            return
        self.notified.emit("info", f"Exported {run.name} as {result['file']} ({result['quant'].upper()}); "
                                   "pick it in Chat's model list to chat with it on llama.cpp.")
        self.gguf_exported.emit(result["file"])

    def _start(self, command: list[str], on_output, on_finished) -> QProcess:
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("HF_HUB_OFFLINE", "1")
        process.setProcessEnvironment(env)
        process.setProgram(command[0])
        process.setArguments(command[1:])
        process.readyReadStandardOutput.connect(lambda: on_output(process))
        process.finished.connect(lambda code, _status: on_finished(process, code))
        process.start()
        return process

    # -- export --------------------------------------------------------------------------
    def _ask_export(self) -> None:
        if self.run is None:
            return
        dialog = ExportDialog(self.run, self)
        if dialog.exec():
            self.export(self.run, dialog.folder.text(), dialog.strategy.currentData(), dialog.gpus.value(), dialog.machines.value())

    def export(self, run: RunInfo, folder: str, strategy: str = "ddp", gpus: int = 8, machines: int = 1) -> None:
        """``main.py export-job`` for the run's job file, as a child process."""
        if self._export is not None:
            return
        command = child_command("export-job", "--job", str(run.folder / JOB), "--to", folder,
                                "--strategy", strategy, "--gpus", str(gpus), "--machines", str(machines))
        self._export_out = b""
        self._export = self._start(command, self._read_export, lambda process, code: self._export_done(process, run, code))
        self.set_run(self.run)

    def _read_export(self, process: QProcess) -> None:
        self._export_out += bytes(process.readAllStandardOutput())

    def _export_done(self, process: QProcess, run: RunInfo, code: int) -> None:
        self._read_export(process)
        result, message = _child_result(process, self._export_out, code)
        self._export = None
        self.set_run(self.run)
        if result is None:
            self.notified.emit("error", f"Exporting {run.name} failed: {message}")
            return
        self.notified.emit("info", f"Exported {run.name} to {result['folder']}. On the cluster, from that folder: {result['command']}")
        self.exported.emit(result)

    def shutdown(self) -> None:
        for process in (self._export, self._gguf):
            if process is not None:
                process.kill()
                process.waitForFinished(3000)


def _child_result(process: QProcess, out: bytes, code: int) -> tuple[dict | None, str]:
    """A finished child's one-line JSON result, or None and the ``error: ...`` line it printed."""
    errors = bytes(process.readAllStandardError()).decode("utf-8", "replace")
    process.deleteLater()
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if code == 0 and lines else None
    except ValueError:
        result = None
    if result is not None:
        return result, ""
    message = next((line[6:].strip() for line in errors.splitlines() if line.startswith("error:")), "") or \
        (errors.strip().splitlines() or [f"exit code {code}"])[-1]
    return None, message
