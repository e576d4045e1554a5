"""Help -> Self-test: runs ``hearth selftest`` as a child process and shows its lines as they come.

The same check a user runs on the command line (and pastes into a support thread), started through
the one child-command helper so it works frozen too. Its window check runs offscreen, so no second
window flashes up.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QProcess, QProcessEnvironment
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from engines.core.launch import child_command
from desktop.widgets.palette import BAD, GOOD, MUTED, TEXT


class SelfTestDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hearth self-test")
        self.resize(760, 360)
        self.status = QLabel("Checking the data folder, the engine host, the bundled models and the window…",
                             wordWrap=True)
        self.output = QPlainTextEdit(readOnly=True)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox()
        self.copy_button = QPushButton("Copy report")
        self.rerun_button = QPushButton("Run again")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.rerun_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.output.toPlainText()))
        self.rerun_button.clicked.connect(self.start)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.output, 1)
        layout.addWidget(buttons)
        self.process: QProcess | None = None
        self._pending = b""
        self.passed: bool | None = None

    def start(self) -> None:
        if self.process is not None:
            return
        self.output.clear()
        self.passed = None
        self.rerun_button.setEnabled(False)
        self.status.setText("Running the self-test…")
        command = child_command("selftest")
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("QT_QPA_PLATFORM", "offscreen")
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._on_output)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        process.start(command[0], command[1:])

    def _on_output(self) -> None:
        self._pending += bytes(self.process.readAllStandardOutput())
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            self._append(raw.decode("utf-8", "replace"))

    def _append(self, line: str) -> None:
        colour = GOOD if line.startswith("PASS") else BAD if line.startswith("FAIL") else MUTED if line.strip() else TEXT
        self.output.appendHtml(f'<span style="color:{colour}; white-space:pre">{html.escape(line)}</span>')

    def _on_finished(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        if self._pending:
            self._append(self._pending.decode("utf-8", "replace"))
            self._pending = b""
        self.passed = exit_code == 0
        self.status.setText("Every check passed." if self.passed else
                            "Some checks failed: each FAIL line says why. 'Copy report' copies it for a support thread.")
        self._done()

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.passed = False
            self.status.setText(f"The self-test could not be started: {self.process.errorString()}")
            self._done()

    def _done(self) -> None:
        if self.process is not None:
            self.process.deleteLater()
            self.process = None
        self.rerun_button.setEnabled(True)

    def done(self, result: int) -> None:
        if self.process is not None:  # closing the dialog ends the check and its children
            self.process.kill()
            self.process.waitForFinished(3000)
        super().done(result)
