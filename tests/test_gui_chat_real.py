"""End to end with the real engine host (spawned by HostManager) and the bundled model."""
from __future__ import annotations

import os
import signal
import sys

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from gui_support import HEAVY_MODULES, ROOT, no_leaks, open_hearth  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow]
QUESTION = "What is the capital of France?"


def _open_on_llama(open_hearth):
    hearth = open_hearth("real")
    hearth.chat.model_picker.prefer("default", "llama", 4096)
    hearth.chat.sampling.presets.apply("Precise")  # greedy: temperature 0
    hearth.chat.system_prompt.set_text("You are a helpful assistant.")
    hearth.wait_ready(120_000)
    return hearth


def test_real_host_answers_and_gui_stays_light(open_hearth):
    hearth = _open_on_llama(open_hearth)
    hearth.send(QUESTION)
    hearth.wait_reply_done(180_000)
    bubble = hearth.last_bubble()
    assert "Paris" in bubble.message.content, bubble.message.content
    meta = bubble.message.meta
    assert meta["finish_reason"] == "stop" and meta["completion_tokens"] > 0 and meta["tokens_per_s"] > 0
    assert hearth.chat.loaded and hearth.chat.loaded["backend"] == "llama"
    for name in HEAVY_MODULES:
        assert name not in sys.modules, f"the GUI process imported {name}"


def test_real_host_killed_mid_reply_recovers(open_hearth):
    hearth = _open_on_llama(open_hearth)
    hearth.chat.sampling.max_tokens.setValue(400)
    hearth.send("Write a long story about a lighthouse keeper and a storm.")
    hearth.qtbot.waitUntil(lambda: hearth.chat.reply is not None and hearth.chat.reply.tokens >= 3, timeout=180_000)
    old_pid = hearth.session.host.pid
    os.kill(old_pid, signal.SIGKILL)
    hearth.wait_reply_done(30_000)
    texts = lambda: " ".join(hearth.window.notifications.texts())  # noqa: E731
    hearth.qtbot.waitUntil(lambda: "The engine host stopped unexpectedly" in texts(), timeout=10_000)
    assert "restarting it and reloading default" in texts()
    assert hearth.last_bubble().message.meta.get("interrupted")
    hearth.wait_ready(120_000)
    assert hearth.session.host.pid != old_pid
    hearth.chat.sampling.max_tokens.setValue(64)
    hearth.send(QUESTION)
    hearth.wait_reply_done(180_000)
    assert "Paris" in hearth.last_bubble().message.content


def test_real_host_escape_stops_then_next_send_works(open_hearth):
    hearth = _open_on_llama(open_hearth)
    hearth.chat.sampling.max_tokens.setValue(400)
    hearth.send("Write a long story about a lighthouse keeper and a storm.")
    hearth.qtbot.waitUntil(lambda: hearth.chat.reply is not None and hearth.chat.reply.tokens >= 3, timeout=180_000)
    hearth.qtbot.keyClick(hearth.chat.composer.editor, Qt.Key.Key_Escape)
    hearth.wait_reply_done(30_000)
    assert hearth.last_bubble().message.meta["finish_reason"] == "cancelled"
    hearth.chat.sampling.max_tokens.setValue(64)
    hearth.send(QUESTION)
    hearth.wait_reply_done(180_000)
    assert "Paris" in hearth.last_bubble().message.content


def test_real_host_gui_thread_never_stalls(open_hearth):
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    # Probing starts once the window is open and the host is ready: building the window is
    # start-up time (benchmarks/startup.py), not a stall while streaming.
    hearth = _open_on_llama(open_hearth)
    hearth.chat.sampling.max_tokens.setValue(200)
    probe = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
    probe.timeout.connect(tick)
    last[0] = clock.elapsed()
    probe.start()
    hearth.send("Explain how a lighthouse works, in detail.")
    hearth.wait_reply_done(180_000)
    probe.stop()
    assert hearth.last_bubble().message.meta["completion_tokens"] > 20
    assert max(gaps) < 250, f"longest GUI-thread stall {max(gaps)} ms"


def test_real_host_takes_image_parts_and_a_text_model_says_it_cannot_see(open_hearth, tmp_path):
    """The GUI's image request through the real host and engine: the bundled text model refuses it clearly, nothing lost."""
    from PySide6.QtGui import QColor, QImage

    from desktop.widgets.image_thumbs import Attachment

    picture = QImage(40, 30, QImage.Format.Format_RGB32)
    picture.fill(QColor("red"))
    picture.save(str(tmp_path / "red.png"))
    hearth = _open_on_llama(open_hearth)
    chat = hearth.chat
    hearth.qtbot.waitUntil(lambda: chat.model_picker.current_entry() is not None, timeout=60_000)
    entry = chat.model_picker.current_entry()
    assert entry["vision"] is False and "vision" not in chat.model_picker.combo.currentText()
    chat.composer.add_attachments([Attachment("red.png", path=str(tmp_path / "red.png"))])
    hearth.send("What colour is this?")
    assert any("cannot see images" in t for t in hearth.window.notifications.texts())  # refused before sending
    assert chat.composer.text() == "What colour is this?" and len(chat.composer.attachments()) == 1
    entry.pop("vision")  # a registry that does not say: the engine itself refuses, naming the model
    hearth.send("What colour is this?")
    hearth.wait_reply_done(180_000)
    assert any("reads text only and cannot see images" in t for t in hearth.window.notifications.texts())
    saved = hearth.session.conversations.get(chat.conversation.id).messages[0]
    assert saved.content == "What colour is this?" and saved.images[0].name == "red.png"


def test_real_host_gui_image_reaches_llama_cpp_through_a_paired_mmproj(open_hearth, tmp_path):
    """End to end: a GGUF with an mmproj beside it shows as "vision", and the GUI's picture goes through llama.cpp."""
    import subprocess

    from PySide6.QtGui import QColor, QImage

    from desktop.widgets.image_thumbs import Attachment

    folder = tmp_path / "models"
    # Built in a child process: the projector is written with torch, which this GUI test process must never import.
    build = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']; from pathlib import Path; "
             "import vision_support as v; f = Path(sys.argv[2]); v.folder_with_model(f); "
             "v.write_real_projector(f / 'mmproj-tiny.gguf')")
    subprocess.run([sys.executable, "-c", build, str(ROOT), str(folder)], check=True, timeout=300)
    picture = QImage(40, 30, QImage.Format.Format_RGB32)
    picture.fill(QColor("red"))
    picture.save(str(tmp_path / "red.png"))
    hearth = _open_on_llama(open_hearth)
    chat = hearth.chat
    hearth.session.settings.set("model_folders", [str(folder)])
    chat.refresh_models(refresh=True)
    picker = chat.model_picker
    hearth.qtbot.waitUntil(lambda: any("· vision" in picker.combo.itemText(i) for i in range(picker.combo.count())),
                           timeout=60_000)
    picker.combo.setCurrentIndex(next(i for i in range(picker.combo.count()) if "· vision" in picker.combo.itemText(i)))
    chat.sampling.max_tokens.setValue(8)
    chat.composer.add_attachments([Attachment("red.png", path=str(tmp_path / "red.png"))])
    hearth.send("What colour is this?")
    hearth.wait_reply_done(180_000)
    reply = hearth.last_bubble().message
    assert not reply.meta.get("interrupted"), (reply.meta, hearth.window.notifications.texts())
    assert reply.meta["completion_tokens"] > 0 and reply.meta["prompt_tokens"] > 0
    assert chat.loaded["backend"] == "llama"
    for name in HEAVY_MODULES:
        assert name not in sys.modules, f"the GUI process imported {name}"
