"""The inpainting mask brush: dragging over the init image paints white where the user dragged, at the image's
own resolution, and inpaint without a painted mask is refused with a message instead of a no-op run."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)


def _init_png(tmp_path, size=64):
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(20, 60, 200))
    path = tmp_path / "init.png"
    image.save(str(path), "PNG")
    return str(path)


def test_dragging_paints_the_mask_where_the_pointer_went(qtbot, tmp_path):
    from desktop.rooms.image import MaskCanvas

    canvas = MaskCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(240, 240)
    canvas.show()
    canvas.set_image(_init_png(tmp_path))
    assert canvas.mask is not None and not canvas.has_mask()
    shown = canvas.pixmap()
    x0, y0 = (canvas.width() - shown.width()) // 2, (canvas.height() - shown.height()) // 2
    # drag along the upper-left quarter of the shown image, horizontally
    start = QPoint(x0 + shown.width() // 8, y0 + shown.height() // 4)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    for dx in range(0, shown.width() // 4, 4):
        qtbot.mouseMove(canvas, QPoint(start.x() + dx, start.y()))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(start.x() + shown.width() // 4, start.y()))
    assert canvas.has_mask()
    mask = QImage(canvas.save_mask(tmp_path / "mask.png"))
    assert mask.size() == canvas.image.size()  # the engine gets the mask at the init image's size
    assert QColor(mask.pixel(16, 16)).red() == 255 and QColor(mask.pixel(24, 16)).red() == 255  # painted stroke
    assert QColor(mask.pixel(48, 48)).red() == 0 and QColor(mask.pixel(16, 40)).red() == 0  # untouched
    canvas.clear_mask()
    assert not canvas.has_mask()


def test_inpaint_without_a_painted_mask_is_refused_with_a_message(open_hearth, tmp_path):
    hearth = open_hearth("fake")
    room = hearth.window.image
    room.mode.setCurrentText("inpaint")
    room.init_path.setText(_init_png(tmp_path))
    room.canvas.set_image(room.init_path.text())
    messages = []
    room.status_changed.connect(messages.append)
    assert room.generate() == ""
    assert messages and "Paint the area to repaint" in messages[-1]
    assert not room._queue  # nothing was sent to the host
