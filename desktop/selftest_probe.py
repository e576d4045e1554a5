"""``hearth gui-probe``: the self-test's window check, in a process of its own.

Opens the real main window on a fresh session (the engine host is not started), waits until it is
shown, and prints one JSON line: whether it was shown, on which Qt platform, how long it took, and
which of the ML libraries the GUI process has imported (it must be none).
"""
from __future__ import annotations

import json
import sys
import time

from engines.core.layering import ML_MODULES


def run_probe() -> int:
    started = time.perf_counter()
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session

    app = QApplication.instance() or QApplication([sys.argv[0]])
    apply_theme(app)
    session = Session()
    window = MainWindow(session)
    window.show()
    loop = QEventLoop()
    deadline = time.monotonic() + 30
    while not window.isVisible() and time.monotonic() < deadline:
        QTimer.singleShot(10, loop.quit)
        loop.exec()
    app.processEvents()
    shown = window.isVisible()
    seconds = time.perf_counter() - started
    window.close()
    session.shutdown()
    print(json.dumps({"shown": shown, "platform": QApplication.platformName(), "seconds": round(seconds, 3),
                      "ml_imported": [m for m in ML_MODULES if m in sys.modules]}), flush=True)
    return 0 if shown else 1
