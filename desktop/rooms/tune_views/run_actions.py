"""What a finished run can do next: chat with it, compare it with its base, merge it into a standalone
model folder, or export it as a job for a cluster.

Merging runs in the engine host (it loads the model; the GUI process never imports torch) on the
``tune.merge`` lane; exporting runs ``main.py export-job`` as a child process (it reads TRL's
accelerate configs). Neither ever blocks the GUI thread.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from engines.core.events import Result
from engines.core.launch import child_command
from desktop.rooms.tune_views.common import TuneJobs, muted
from engines.store.runs import RunInfo

STRATEGIES = (("ddp", "DDP (data parallel)"), ("deepspeed-zero2", "DeepSpeed ZeRO-2"),
              ("deepspeed-zero3", "DeepSpeed ZeRO-3"), ("fsdp", "FSDP"))


def merge_job(adapter: str, target: str):
    def run(client):
        yield Result(data=client.merge_adapter(adapter, target))
    return run


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


class RunActions(QWidget):
    notified = Signal(str, str)
    chat_requested = Signal(str, str)  # adapter folder, base model
    compare_requested = Signal(str)  # adapter folder
    merged = Signal(str)  # the new model folder
    exported = Signal(dict)  # {"folder", "command", "files"}

    def __init__(self, jobs: TuneJobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.run: RunInfo | None = None
        self._merge_job: str | None = None
        self._export: QProcess | None = None
        self._export_out = b""
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        self.chat_button = QPushButton("Chat with this", toolTip="Load this run's adapter on its base model in Chat")
        self.compare_button = QPushButton("Compare", toolTip="Base vs tuned on held-out prompts (Compare tab)")
        self.merge_button = QPushButton("Merge and save…", toolTip="The base model with this adapter merged in, as a new model folder")
        self.export_button = QPushButton("Export job…", toolTip="JOB.json, accelerate config and launch command for many GPUs/machines")
        self.chat_button.clicked.connect(lambda: self.run and self.chat_requested.emit(str(self.run.folder), self.run.base_model))
        self.compare_button.clicked.connect(lambda: self.run and self.compare_requested.emit(str(self.run.folder)))
        self.merge_button.clicked.connect(self._ask_merge)
        self.export_button.clicked.connect(self._ask_export)
        self.hint = muted("Select a finished run.", wrap=False)
        row.addWidget(self.hint, 1)
        for button in (self.chat_button, self.compare_button, self.merge_button, self.export_button):
            row.addWidget(button)
        self.set_run(None)

    def set_run(self, run: RunInfo | None) -> None:
        self.run = run
        adapter = run is not None and run.status == "completed" and run.has_adapter
        policy = adapter and run.method != "reward"  # a reward model scores replies; it does not write them
        self.chat_button.setEnabled(policy)
        self.compare_button.setEnabled(policy)
        self.merge_button.setEnabled(policy and self._merge_job is None)
        self.export_button.setEnabled(run is not None and (run.folder / "job.json").is_file() and self._export is None)
        if run is None:
            self.hint.setText("Select a run to chat with it, compare, merge or export it.")
        elif not adapter:
            self.hint.setText(f"{run.name} has no finished adapter yet.")
        else:
            self.hint.setText(f"{run.name}: " + ("a reward model, for Compare's scores and RL." if not policy else
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

        def on_event(event) -> None:
            if isinstance(event, Result):
                folder = event.data.get("folder", target)
                self.notified.emit("info", f"Saved {run.name} merged into its base model as {folder} "
                                           "(add it in Chat with Folders… to chat with it without the adapter).")
                self.merged.emit(folder)

        def on_done(how: str, error) -> None:
            self._merge_job = None
            self.set_run(self.run)
            if error is not None:
                self.notified.emit("error", f"Merging {run.name} failed: {error}")

        self._merge_job = self.jobs.stream("merge", merge_job(str(run.folder), target), on_event,
                                           label=f"Merging {run.name} into its base model", on_done=on_done)
        self.set_run(self.run)

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
        command = child_command("export-job", "--job", str(run.folder / "job.json"), "--to", folder,
                                "--strategy", strategy, "--gpus", str(gpus), "--machines", str(machines))
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("HF_HUB_OFFLINE", "1")
        process.setProcessEnvironment(env)
        process.setProgram(command[0])
        process.setArguments(command[1:])
        self._export_out = b""
        process.readyReadStandardOutput.connect(lambda: self._read_export(process))
        process.finished.connect(lambda code, _status: self._export_done(process, run, code))
        self._export = process
        self.set_run(self.run)
        process.start()

    def _read_export(self, process: QProcess) -> None:
        self._export_out += bytes(process.readAllStandardOutput())

    def _export_done(self, process: QProcess, run: RunInfo, code: int) -> None:
        self._read_export(process)
        errors = bytes(process.readAllStandardError()).decode("utf-8", "replace")
        self._export = None
        process.deleteLater()
        self.set_run(self.run)
        lines = self._export_out.decode("utf-8", "replace").strip().splitlines()
        try:
            result = json.loads(lines[-1]) if code == 0 and lines else None
        except ValueError:
            result = None
        if result is None:
            message = next((line[6:].strip() for line in errors.splitlines() if line.startswith("error:")), "") or \
                (errors.strip().splitlines() or [f"exit code {code}"])[-1]
            self.notified.emit("error", f"Exporting {run.name} failed: {message}")
            return
        self.notified.emit("info", f"Exported {run.name} to {result['folder']}. On the cluster, from that folder: {result['command']}")
        self.exported.emit(result)

    def shutdown(self) -> None:
        process = self._export
        if process is not None:
            process.kill()
            process.waitForFinished(3000)
