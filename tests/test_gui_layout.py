"""Every room, and every tab of Tune and Explore, fits the window at its minimum size (900x600): no control is
squeezed below its minimum size hint or cut off (tools/layout_check.py does the looking)."""
from __future__ import annotations

from PySide6.QtWidgets import QApplication

from gui_support import no_leaks, open_hearth  # noqa: F401  (fixtures)
from tools.layout_check import audit


def test_every_room_fits_at_the_minimum_window_size(open_hearth):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    window = hearth.window
    window.resize(window.minimumSize())
    assert (window.width(), window.height()) == (900, 600)
    report = audit(window, QApplication.instance())
    assert len(report) >= 12  # five rooms, Tune's and Explore's tabs each on their own
    assert {key: lines for key, lines in report.items() if lines} == {}


def test_the_check_sees_a_squeezed_control(open_hearth):
    """The audit must fail where a control cannot fit: a button wider than the window."""
    from PySide6.QtWidgets import QPushButton

    hearth = open_hearth(None)
    window = hearth.window
    window.resize(window.minimumSize())
    hearth.window.image.layout().addWidget(QPushButton("x" * 400))
    report = audit(window, QApplication.instance())
    assert any("squeezed" in line or "cut off" in line for line in report["Image"])


def test_the_check_sees_a_wrapped_label_cut_short(open_hearth):
    """A word-wrapped label given less height than its text needs at its width counts (its last lines are cut);
    Hearth's WrappedLabel asks for that height and is not counted."""
    from PySide6.QtWidgets import QLabel

    from desktop.widgets.panels import WrappedLabel

    hearth = open_hearth(None)
    window = hearth.window
    window.resize(window.minimumSize())
    text = "A long explanation that wraps over several lines in a narrow column. " * 6
    plain = QLabel(text, wordWrap=True)
    plain.setFixedWidth(200)
    plain.setMaximumHeight(30)
    fitted = WrappedLabel(text)
    fitted.setFixedWidth(200)
    hearth.window.image.layout().addWidget(plain)
    hearth.window.image.layout().addWidget(fitted)
    report = audit(window, QApplication.instance())
    cut = [line for line in report["Image"] if "text cut" in line]
    assert len(cut) == 1 and "30 of" in cut[0]
    assert fitted.height() >= fitted.heightForWidth(200)
