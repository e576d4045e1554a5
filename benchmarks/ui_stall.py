"""The GUI thread's longest stall from launch through the engine host starting, the default model
loading and a reply streaming (a 5 ms QTimer probe records the gaps between its ticks).

Runs the real window in this process (offscreen, fresh HEARTH_HOME) against the real engine host
(``--host fake`` uses the test suite's fake host instead). ``--image`` attaches a 12-megapixel JPEG photo-sized
image to the question (thumbnail decode, storing it beside the database, base64 for the request) and asks the
vision model. Prints one JSON object on its last line:
{"max_stall_ms", "p99_stall_ms", "reply_tokens", ...}; the target is max < 50 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTION = "Explain how a lighthouse works. Give a long, detailed answer."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", choices=["real", "fake"], default="real")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--room", choices=["chat", "image"], default="chat",
                        help="image: three queued generations with the bundled image model, previews every step")
    parser.add_argument("--image", action="store_true", help="attach a 4000x3000 JPEG to the chat question")
    args = parser.parse_args()
    home = tempfile.TemporaryDirectory()
    os.environ["HEARTH_HOME"] = home.name

    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session
    from engines.core.events import Result, Token

    app = QApplication(sys.argv[:1])
    apply_theme(app)
    clock = QElapsedTimer()
    clock.start()
    gaps: list[float] = []
    ends: list[float] = []  # when each gap ended (ms)
    last = [None]
    marks: dict[str, float] = {}
    slow: list[tuple[float, float]] = []  # (when s, gap ms) of the gaps over 20 ms

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last[0] is not None:
            gaps.append(now - last[0])
            ends.append(now)
            if now - last[0] > 20:
                slow.append((round(now / 1000, 3), round(now - last[0], 1)))
        last[0] = now

    command = None
    if args.host == "fake":
        command = [sys.executable, str(ROOT / "tests" / "gui_fake_host.py"), "--parent-pid", str(os.getpid())]
    session = Session(host_command=command)
    window = MainWindow(session)
    window.show()
    marks["window_built_ms"] = clock.nsecsElapsed() / 1e6
    chat = window.chat
    chat.model_picker.prefer("default-vision" if args.image else "default", "llama", 4096)
    photo = _photo(Path(home.name) / "photo.jpg") if args.image else None
    attached_mb = round(photo.stat().st_size / 1e6, 2) if photo else None
    chat.sampling.presets.apply("Precise")
    chat.sampling.max_tokens.setValue(args.max_tokens)
    outcome: dict = {}

    def on_ready(*_args) -> None:
        marks.setdefault("host_ready_s", clock.elapsed() / 1000)
        send()

    def send() -> None:
        marks["sent_s"] = clock.elapsed() / 1000
        if args.room == "image":
            room = window.image
            window.show_room("Image")
            room.prompt.setPlainText("a large red circle on the left on a blue background")
            room.steps.setValue(20)
            for _ in range(3):
                room.generate()
            return
        if photo is not None:
            send_photo()
            return
        chat.send(QUESTION)

    def send_photo() -> None:
        """Once the model list shows the vision model: attach (its thumbnail decodes meanwhile), then send."""
        from desktop.widgets.image_thumbs import Attachment

        if chat.model_picker.combo.findData("default-vision") < 0:
            QTimer.singleShot(20, send_photo)
            return
        chat.model_picker.combo.setCurrentIndex(chat.model_picker.combo.findData("default-vision"))
        start = time.perf_counter()
        chat.attach([Attachment(photo.name, path=str(photo))])
        marks["attach_call_ms"] = (time.perf_counter() - start) * 1000

        def go() -> None:
            begin = time.perf_counter()
            chat.send("What is in this picture?")
            marks["send_call_ms"] = (time.perf_counter() - begin) * 1000

        QTimer.singleShot(300, go)

    def on_event(_job_id: str, event) -> None:
        if isinstance(event, Result) and "images" in event.data:
            outcome["images"] = outcome.get("images", 0) + len(event.data["images"])
            outcome["finish_reason"] = event.finish_reason
            return
        if isinstance(event, Token):
            marks.setdefault("first_token_s", clock.elapsed() / 1000)
        elif isinstance(event, Result) and "reply_tokens" not in outcome and "completion_tokens" in event.data:
            outcome.update(reply_tokens=event.data.get("completion_tokens"), tokens_per_s=event.data.get("tokens_per_s"),
                           finish_reason=event.finish_reason)

    def on_load_result(_job_id: str, event) -> None:
        if isinstance(event, Result) and event.data.get("requested"):
            marks.setdefault("model_loaded_s", clock.elapsed() / 1000)

    def on_end(*_args) -> None:
        if args.room == "image" and window.image._queue:
            return
        if not chat.busy and "sent_s" in marks and (photo is None or "send_call_ms" in marks):
            marks.setdefault("reply_done_s", clock.elapsed() / 1000)
            QTimer.singleShot(200, app.quit)  # a few more probe ticks after the last repaint

    session.host.ready.connect(on_ready)
    session.host.crashed.connect(lambda message: (outcome.setdefault("error", message), app.quit()))
    session.runner.event.connect(on_event)
    session.runner.event.connect(on_load_result)
    for signal in (session.runner.finished, session.runner.cancelled):
        signal.connect(on_end)
    session.runner.failed.connect(lambda _id, error: (outcome.setdefault("error", str(error)), on_end()))

    probe = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
    probe.timeout.connect(tick)
    probe.start()
    QTimer.singleShot(0, session.start_host)
    QTimer.singleShot(int(args.timeout * 1000), lambda: (outcome.setdefault("error", "timed out"), app.quit()))
    app.exec()
    probe.stop()
    window.close()
    session.shutdown()
    home.cleanup()

    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None
    worst = ordered[-1] if ordered else None
    print(f"{len(gaps)} probe ticks; longest gaps (ms): {[round(g, 1) for g in ordered[-5:]]}; over 20 ms at (s, ms): {slow}")
    print(json.dumps({
        "max_stall_ms": round(worst, 1) if worst is not None else None,
        "max_stall_after_send_ms": round(max((g for g, e in zip(gaps, ends) if e > marks.get("sent_s", 1e9) * 1000),
                                             default=0), 1),
        "p99_stall_ms": round(p99, 1) if p99 is not None else None,
        "reply_tokens": outcome.get("reply_tokens"),
        "tokens_per_s": round(outcome["tokens_per_s"], 1) if outcome.get("tokens_per_s") else None,
        "finish_reason": outcome.get("finish_reason"),
        "host": args.host,
        "room": args.room,
        "images": outcome.get("images"),
        "attached_mb": attached_mb,
        **{k: round(v, 3) for k, v in marks.items()},
        "probe_ticks": len(gaps),
        "error": outcome.get("error"),
        "target_max_stall_ms": 50,
    }))


def _photo(path: Path) -> Path:
    """A photo-sized JPEG (smooth gradients plus noise, so it compresses like a photo), made before the probe starts."""
    import numpy as np
    from PySide6.QtGui import QImage

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3000, 0:4000]
    rgb = np.stack([x * 255 // 4000, y * 255 // 3000, (x + y) * 255 // 7000], -1) + rng.integers(0, 40, (3000, 4000, 3))
    pixels = np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8))
    QImage(pixels.data, 4000, 3000, 12000, QImage.Format.Format_RGB888).save(str(path), "JPEG", 90)
    return path


if __name__ == "__main__":
    main()
