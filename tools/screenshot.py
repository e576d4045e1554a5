"""Grab a screenshot of the Chat room answering a question (for the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py assets/screenshot-chat.png

Uses a throwaway HEARTH_HOME, the real engine host and the bundled model.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HEARTH_HOME", tempfile.mkdtemp(prefix="hearth-shot-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QEventLoop, QTimer, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

QUESTIONS = ["What is the capital of France?", "Write a Python function that reverses a string."]


def wait_until(app, condition, timeout_ms: int) -> None:
    loop = QEventLoop()
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: condition() and loop.quit())
    QTimer.singleShot(timeout_ms, loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    if not condition():
        raise SystemExit("timed out")


def main(out: str) -> None:
    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session

    app = QApplication(sys.argv)
    apply_theme(app)
    session = Session()
    window = MainWindow(session)
    window.resize(1280, 800)
    window.show()
    session.start_host()
    chat = window.chat
    chat.model_picker.prefer("default", "llama", 4096)
    chat.sampling.presets.apply("Precise")
    chat.system_prompt.set_text("You are a helpful assistant.")
    wait_until(app, lambda: session.host.is_ready and chat.composer.send_button.isEnabled(), 120_000)
    for question in QUESTIONS:
        chat.composer.set_text(question)
        QTest.keyClick(chat.composer.editor, Qt.Key.Key_Return)
        wait_until(app, lambda: chat.busy, 10_000)
        wait_until(app, lambda: not chat.busy, 180_000)
    app.processEvents()
    window.grab().save(out)
    window.close()
    session.shutdown()
    print(out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "assets/screenshot-chat.png")
