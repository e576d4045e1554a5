"""Helpers for the GUI tests: open a window on a fake or real engine host, and check that
nothing (thread, QThread, child process) outlives a test."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
FAKE_HOST = Path(__file__).with_name("gui_fake_host.py")
HEAVY_MODULES = ("torch", "transformers", "diffusers", "peft", "trl", "llama_cpp")


def fake_host_command() -> list[str]:
    return [sys.executable, str(FAKE_HOST), "--parent-pid", str(os.getpid())]


@pytest.fixture
def no_leaks():
    """Fail a test that leaves a Python thread, a Qt pool thread or a child process running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        threads = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        children = [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if (not threads and not children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not threads, f"threads left running: {[t.name for t in threads]}"
    assert not children, f"child processes left running: {[(p.pid, p.cmdline()) for p in children]}"
    assert QThreadPool.globalInstance().activeThreadCount() == 0


class Hearth:
    """One window + session; ``close()`` shuts it down the way the app does."""

    def __init__(self, qtbot, host: str | None) -> None:
        from desktop.app import apply_theme
        from desktop.main_window import MainWindow
        from desktop.session import Session

        apply_theme(QApplication.instance())
        command = {"fake": fake_host_command(), "real": None, None: None}[host]
        self.session = Session(host_command=command)
        self.window = MainWindow(self.session)
        self.chat = self.window.chat
        self.qtbot = qtbot
        self.window.show()
        qtbot.waitExposed(self.window)
        if host:
            self.session.start_host()
        self.closed = False

    def wait_ready(self, timeout: int = 60_000) -> None:
        self.qtbot.waitUntil(lambda: self.session.host.is_ready and self.chat.composer.send_button.isEnabled(), timeout=timeout)

    def send(self, text: str) -> None:
        composer = self.chat.composer
        composer.set_text(text)
        self.qtbot.keyClick(composer.editor, Qt.Key.Key_Return)  # Enter sends

    def wait_reply_done(self, timeout: int = 60_000) -> None:
        self.qtbot.waitUntil(lambda: not self.chat.busy, timeout=timeout)

    def last_bubble(self):
        return self.chat.message_view.bubbles[-1]

    def select_only_run(self):
        """Tune room, Runs view, its one run selected (once the file worker has listed it): (room, run actions)."""
        self.window.show_room("Tune")
        room = self.window.tune
        room.show_tab(1)
        table, actions = room.train_view.run_table, room.run_actions
        self.qtbot.waitUntil(lambda: len(table.runs) == 1, timeout=10_000)
        table.selectRow(0)
        return room, actions

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.window.close()
            self.session.shutdown()
            self.window.deleteLater()
            self.qtbot.wait(10)


@pytest.fixture
def open_hearth(qtbot, no_leaks):
    opened: list[Hearth] = []

    def factory(host: str | None = "fake") -> Hearth:
        hearth = Hearth(qtbot, host)
        opened.append(hearth)
        return hearth

    yield factory
    for hearth in opened:
        hearth.close()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny Llama folder, built in a child process so the (GUI) test process never imports torch."""
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]); "
            "from tests.tune_support import build_tiny_model; build_tiny_model(Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(folder), str(ROOT)], check=True, capture_output=True, timeout=120)
    return folder
