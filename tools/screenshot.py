"""Grab a screenshot of a room at work (for the README): the Chat room answering questions, the Image room after
the bundled model drew shapes where its prompts put them, or the Decode room after a small decoding demo.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py assets/screenshot-chat.png
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py --room image assets/screenshot-image.png
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/screenshot.py --room decode assets/screenshot-decode.png

Uses a throwaway HEARTH_HOME, the real engine host and the bundled models.
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
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT  # noqa: E402

# Scenes the bundled model never saw in training (Scene.held_out), one per position word; the last one is the
# large preview.
IMAGE_PROMPTS = ["a large purple square on the left on a white background",
                 "a large black circle on the right on a blue background",
                 "a large green square at the top on a blue background",
                 "a large red square at the bottom on a orange background",
                 "a large white star in the center on a green background",
                 "a large orange star on the left on a yellow background"]
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


def chat_room(app, window, session) -> None:
    chat = window.chat
    chat.model_picker.prefer("default", "llama", 4096)
    chat.sampling.presets.apply("Precise")
    chat.system_prompt.set_text(DEFAULT_SYSTEM_PROMPT)
    wait_until(app, lambda: session.host.is_ready and chat.composer.send_button.isEnabled(), 120_000)
    for question in QUESTIONS:
        chat.composer.set_text(question)
        QTest.keyClick(chat.composer.editor, Qt.Key.Key_Return)
        wait_until(app, lambda: chat.busy, 10_000)
        wait_until(app, lambda: not chat.busy, 180_000)


def image_room(app, window, session) -> None:
    window.show_room("Image")
    room = window.image
    wait_until(app, lambda: session.host.is_ready, 120_000)
    room.seed.setValue(1)
    for prompt in IMAGE_PROMPTS:
        room.prompt.setPlainText(prompt)
        room.generate()
    wait_until(app, lambda: room.gallery_list.count() == len(IMAGE_PROMPTS) and not room.cancel_button.isEnabled(),
               300_000)
    room.prompt.setPlainText(IMAGE_PROMPTS[-1])


def decode_room(app, window, session) -> None:
    """A small demo (a minute or two on a CPU): eight rows, the metrics and a five-point SNR sweep."""
    window.show_room("Decode")
    room = window.decode
    controls = room.controls
    controls.voxels.setValue(2000)
    controls.train.setValue(300)
    controls.test.setValue(8)
    controls.samples.setValue(2)
    controls.steps.setValue(10)
    wait_until(app, room.run_button.isEnabled, 120_000)
    room.run()
    wait_until(app, lambda: not room.running, 900_000)
    if room.result is None:
        raise SystemExit(f"the decoding run failed: {room.error.text()}")


ROOMS = {"chat": (chat_room, "assets/screenshot-chat.png"), "image": (image_room, "assets/screenshot-image.png"),
         "decode": (decode_room, "assets/screenshot-decode.png")}


def main(room: str, out: str) -> None:
    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session

    app = QApplication(sys.argv[:1])
    apply_theme(app)
    session = Session()
    window = MainWindow(session)
    window.resize(1280, 800)
    window.show()
    session.start_host()
    ROOMS[room][0](app, window, session)
    app.processEvents()
    window.grab().save(out)
    window.close()
    session.shutdown()
    print(out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--room", choices=sorted(ROOMS), default="chat")
    parser.add_argument("out", nargs="?", help="the PNG to write (default: assets/screenshot-<room>.png)")
    args = parser.parse_args()
    main(args.room, args.out or ROOMS[args.room][1])
