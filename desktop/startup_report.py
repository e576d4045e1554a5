"""A start-up measurement the app can write about itself (``HEARTH_STARTUP_REPORT=FILE``).

``benchmarks/startup.py`` launches Hearth from source or frozen with that variable set: the app notes
the wall-clock time of the main window's first paint and which ML libraries the GUI process had
imported by then, waits for the engine host to be ready (or to fail, or ``HEARTH_STARTUP_WAIT_S``),
writes one JSON object to FILE and quits. Without the variable nothing here runs.
"""
from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from engines.core.layering import ML_MODULES
from engines.core.paths import atomic_write_text

ENV = "HEARTH_STARTUP_REPORT"


class StartupReport(QObject):
    def __init__(self, window: QMainWindow, path: str) -> None:
        super().__init__(window)
        self._path = path
        self.report: dict = {"pid": os.getpid()}
        window.installEventFilter(self)
        host = window.session.host
        host.ready.connect(lambda *_: self._finish("host_ready"))
        host.crashed.connect(lambda message: self._finish("host_error", message))
        QTimer.singleShot(int(float(os.environ.get("HEARTH_STARTUP_WAIT_S", "60")) * 1000), lambda: self._finish("timeout"))

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and "window" not in self.report:
            self.report.update(window=time.time(), ml_imported=[m for m in ML_MODULES if m in sys.modules],
                               modules=len(sys.modules))
        return False

    def _finish(self, key: str, value: object = None) -> None:
        if "written" in self.report:
            return
        self.report[key] = time.time() if value is None else value
        self.report["written"] = True
        atomic_write_text(self._path, json.dumps(self.report))
        QApplication.quit()


def attach(window: QMainWindow) -> StartupReport | None:
    path = os.environ.get(ENV)
    return StartupReport(window, path) if path else None
