"""Starts the engine host as a child process (QProcess: asynchronous, no thread), watches it,
and restarts it when it dies unexpectedly.

The host prints ``HEARTH_HOST_READY {"port": N, "pid": P}`` once it listens; until then the
GUI keeps working on history and settings. A per-launch key travels in the environment
(``HEARTH_API_KEY``), never on the command line.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from collections import deque

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from engines.core.launch import HOST_READY_PREFIX, child_command



class HostManager(QObject):
    ready = Signal(str, str)  # base_url, key
    crashed = Signal(str)  # a message for the user
    restarting = Signal()
    stopped = Signal()

    MAX_RESTARTS = 3  # in a row without a stable run
    STABLE_S = 60.0  # a host that lived this long resets the restart count
    BACKOFF_MS = (500, 2000, 5000)

    def __init__(self, command: list[str] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._command = command
        self._process: QProcess | None = None
        self._stdout = b""
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._stopping = False
        self._restarts = 0
        self._launched_at = 0.0
        self.state = "idle"  # idle | starting | ready | restarting | failed | stopped
        self.base_url = ""
        self.key = ""
        self.pid: int | None = None
        # What the host had loaded, for the crash message; the chat room keeps it current.
        self.loaded_model = ""
        self._restart_timer = QTimer(self, singleShot=True)
        self._restart_timer.timeout.connect(self._launch)

    @property
    def is_ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        if self._process is not None:
            return
        self._stopping = False
        self._restarts = 0
        self._launch()

    def _launch(self) -> None:
        self.state = "starting"
        self.key = secrets.token_urlsafe()
        self.base_url = ""
        self.pid = None
        self._stdout = b""
        self._stderr_tail.clear()
        env = QProcessEnvironment.systemEnvironment()
        env.insert("HEARTH_API_KEY", self.key)
        env.insert("PYTHONUNBUFFERED", "1")  # the READY line must not sit in a pipe buffer
        if os.environ.get("HEARTH_HOME"):
            env.insert("HEARTH_HOME", os.environ["HEARTH_HOME"])
        command = self._command or child_command("serve", "--port", "0", "--parent-pid", str(os.getpid()))
        process = QProcess(self)
        process.setProcessEnvironment(env)
        process.setProgram(command[0])
        process.setArguments(command[1:])
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.readyReadStandardError.connect(self._on_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._launched_at = time.monotonic()
        process.start()

    def _on_stdout(self) -> None:
        process = self.sender()
        if process is not self._process:
            return
        self._stdout += bytes(process.readAllStandardOutput())
        if self.state != "starting":
            self._stdout = b""  # nothing else on stdout matters; don't let it grow
            return
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith(HOST_READY_PREFIX):
                try:
                    info = json.loads(line[len(HOST_READY_PREFIX):])
                    port = int(info["port"])
                except (ValueError, KeyError, TypeError):
                    self._stderr_tail.append(f"unreadable ready line: {line}")
                    continue
                self.pid = int(info.get("pid") or process.processId())
                self.base_url = f"http://127.0.0.1:{port}"
                self.state = "ready"
                self._stdout = b""
                self.ready.emit(self.base_url, self.key)
                return

    def _on_stderr(self) -> None:
        process = self.sender()
        text = bytes(process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr_tail.extend(line for line in text.splitlines() if line.strip())

    def _on_error(self, error: QProcess.ProcessError) -> None:
        process = self.sender()
        if error == QProcess.ProcessError.FailedToStart and process is self._process:
            reason = process.errorString()
            self._process = None
            process.deleteLater()
            self._handle_death(f"The engine host could not be started ({reason})")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        process = self.sender()
        if process is not self._process:
            return
        self._process = None
        process.deleteLater()
        if self._stopping:
            self.state = "stopped"
            self.stopped.emit()
            return
        how = f"killed by signal {exit_code}" if exit_status == QProcess.ExitStatus.CrashExit else f"exit code {exit_code}"
        was_ready = self.state == "ready"
        what = "stopped unexpectedly" if was_ready else "failed to start"
        self._handle_death(f"The engine host {what} ({how})", self.last_output() if not was_ready else "")

    def _handle_death(self, message: str, detail: str = "") -> None:
        if time.monotonic() - self._launched_at >= self.STABLE_S:
            self._restarts = 0
        self.base_url = ""
        if self._restarts >= self.MAX_RESTARTS:
            self.state = "failed"
            text = f"{message}. It failed {self._restarts + 1} times in a row, so Hearth stopped restarting it; restart Hearth to try again."
            self.crashed.emit(text + (f"\nLast output: {detail}" if detail else ""))
            return
        reload = f" and reloading {self.loaded_model}" if self.loaded_model else ""
        self.crashed.emit(f"{message}; restarting it{reload}…" + (f"\nLast output: {detail}" if detail else ""))
        self.state = "restarting"
        self.restarting.emit()
        self._restart_timer.start(self.BACKOFF_MS[min(self._restarts, len(self.BACKOFF_MS) - 1)])
        self._restarts += 1

    def last_output(self) -> str:
        return " | ".join(list(self._stderr_tail)[-3:])

    def stop(self, timeout_ms: int = 3000) -> None:
        """Terminate the host (kill it if it lingers) and wait for it: no orphan process."""
        self._stopping = True
        self._restart_timer.stop()
        process = self._process
        if process is None:
            if self.state != "stopped":
                self.state = "stopped"
                self.stopped.emit()
            return
        if process.state() != QProcess.ProcessState.NotRunning:
            process.terminate()
            if not process.waitForFinished(timeout_ms):
                process.kill()
                process.waitForFinished(2000)
        if self._process is process:  # finished was not delivered (e.g. it never started)
            self._process = None
            process.deleteLater()
            self.state = "stopped"
            self.stopped.emit()
