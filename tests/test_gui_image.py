"""The Image room end to end with the real engine host (tiny SD model built from configs):
generate with previews, cancel, gallery, reuse, PNG drag-and-drop, GUI thread never stalls."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QElapsedTimer, QTimer

from gui_support import HEAVY_MODULES, no_leaks, open_hearth  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Built in a child process: this test process (the GUI's) must not import torch."""
    import os
    import subprocess

    from gui_support import ROOT

    folder = tmp_path_factory.mktemp("m") / "tiny-sd"
    code = "import sys; from pathlib import Path; from tests.image_support import save_tiny_model; save_tiny_model(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=True, capture_output=True,
                   env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return str(folder)


def _room(open_hearth, tiny_model):
    hearth = open_hearth("real")
    hearth.qtbot.waitUntil(lambda: hearth.session.host.is_ready, timeout=120_000)
    room = hearth.window.image
    hearth.window.show_room("Image")
    room.model.addItem("tiny", tiny_model)
    room.model.setCurrentIndex(room.model.count() - 1)
    room.prompt.setPlainText("a red circle")
    room.steps.setValue(4)
    room.seed.setValue(11)
    return hearth, room


def test_generate_preview_gallery_cancel_and_no_stall(open_hearth, tiny_model):
    already = {name for name in HEAVY_MODULES if name in sys.modules}  # imported by other tests in this process
    hearth, room = _room(open_hearth, tiny_model)
    clock, gaps, last = QElapsedTimer(), [], [None]
    clock.start()

    def tick():
        now = clock.nsecsElapsed() / 1e6
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    probe = QTimer(interval=5, timeout=tick)
    probe.start()
    before = room.gallery_list.count()
    room.generate()
    hearth.qtbot.waitUntil(lambda: room.gallery_list.count() == before + 1 and room._running is None, timeout=120_000)
    assert room.progress.maximum() == 4 and room.progress.value() == 4
    assert room.preview.pixmap() is not None and not room.preview.pixmap().isNull()

    room.steps.setValue(150)
    room.generate()
    try:
        hearth.qtbot.waitUntil(lambda: room._running is not None and room.progress.value() >= 2, timeout=60_000)
    except Exception:
        raise AssertionError(f"{hearth.window.notifications.texts()} {room._queue} {room._running} {room.progress.value()}")
    room.cancel()
    hearth.qtbot.waitUntil(lambda: room._running is None and not room._queue, timeout=30_000)
    assert room.gallery_list.count() == before + 1  # the cancelled image was not saved
    probe.stop()

    room.steps.setValue(3)  # the lane still works, and "reuse" fills the form from the gallery
    room.generate()
    hearth.qtbot.waitUntil(lambda: room.gallery_list.count() == before + 2 and room._running is None, timeout=60_000)
    room.gallery_list.setCurrentRow(0)
    room.prompt.setPlainText("")
    room.reuse(room._selected())
    assert room.prompt.toPlainText() == "a red circle" and room.steps.value() == 3
    for name in set(HEAVY_MODULES) - already:
        assert name not in sys.modules, f"the GUI process imported {name}"
    # Generous for a loaded 2-core CI machine; benchmarks/ui_stall.py holds the 50 ms target.
    assert max(gaps) < 250, f"GUI thread stalled {max(gaps):.0f} ms"


def test_dropped_a1111_png_fills_the_form(open_hearth, tiny_model, tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    hearth, room = _room(open_hearth, tiny_model)
    info = PngInfo()
    info.add_text("parameters", "a blue square, detailed\nNegative prompt: blurry\n"
                                "Steps: 33, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 77, Size: 96x128, Model: x")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    room.read_png(str(path))
    hearth.qtbot.waitUntil(lambda: room.prompt.toPlainText() == "a blue square, detailed", timeout=30_000)
    assert room.negative.toPlainText() == "blurry" and room.steps.value() == 33 and room.seed.value() == 77
    assert room.scheduler.currentText() == "DPM++ 2M Karras" and (room.width_box.value(), room.height_box.value()) == (96, 128)
