"""Which controls of each room are squeezed below their minimum size or cut off, at a given window size.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/layout_check.py [--size 900x600] [--shots DIR]

A control counts as squeezed when it is narrower or lower than its minimumSizeHint (its text no longer fits),
and as cut off when, outside any scroll area, part of it lies outside what its parents show. A word-wrapped label
outside a scroll area counts when it is lower than its text needs at its width (its last lines are cut off).
The Tune room's guided path is checked open as a view of its own. Prints one line per
room (and Tune tab) with the count and the first offenders, then one JSON object. The GUI test that keeps every
room fitting at the window's minimum size (900x600) is meant to assert zero here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def offenders(window, root) -> list[str]:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QLineEdit, QScrollArea, QSlider,
                                   QTabBar, QWidget)

    def scroll_area(widget):
        parent = widget.parentWidget()
        while parent is not None:
            if isinstance(parent, QScrollArea):
                return parent
            parent = parent.parentWidget()
        return None

    def cut(control) -> str:
        shown = control.visibleRegion().boundingRect()
        if shown.width() < control.width() - 1 or shown.height() < control.height() - 1:
            return f"cut off: {shown.width()}x{shown.height()} of {control.width()}x{control.height()} shown"
        return ""

    def cut_in_scroll_area(control, area) -> str:
        """In a scroll area that scrolls only vertically, a control past its side edge is cut off wherever it is
        scrolled, and one scrolled into view must show whole. Where it scrolls both ways, scrolling shows it all."""
        viewport = area.viewport()
        corner = control.mapTo(viewport, QPoint(0, 0))
        if (area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
                and (corner.x() < -1 or corner.x() + control.width() > viewport.width() + 1)):
            return "cut off sideways in its scroll area"
        if (area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
                and 0 <= corner.y() and corner.y() + control.height() <= viewport.height()):
            return cut(control)  # scrolled into view, yet not all shown: something in the panel overlaps it
        return ""

    found = []
    for label in root.findChildren(QLabel):
        if (label.isVisible() and label.wordWrap() and label.text() and label.window() is window
                and scroll_area(label) is None and label.height() < label.heightForWidth(label.width()) - 1):
            found.append(f"QLabel {label.text()[:40]!r}: text cut, {label.height()} of "
                         f"{label.heightForWidth(label.width())} px shown")
    for bar in root.findChildren(QTabBar):
        if bar.isVisible() and bar.count() and bar.tabRect(bar.count() - 1).right() > bar.width():
            found.append(f"QTabBar {bar.objectName()!r}: tab {bar.tabText(bar.count() - 1)!r} cut off")
    for control in root.findChildren(QWidget):
        if not isinstance(control, (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QSlider)):
            continue
        if not control.isVisible() or control.window() is not window or control.objectName().startswith("qt_"):
            continue
        if isinstance(control.parentWidget(), (QComboBox, QAbstractSpinBox, QTabBar)):
            continue  # the editor inside a combo or spin box, a tab bar's scroll arrows: their owner is checked
        hint = control.minimumSizeHint()
        name = f"{type(control).__name__} {getattr(control, 'text', lambda: '')() or control.objectName()!r}"
        if control.width() < hint.width() - 1 or control.height() < hint.height() - 1:
            found.append(f"{name} squeezed to {control.width()}x{control.height()} (needs {hint.width()}x{hint.height()})")
        else:
            area = scroll_area(control)
            problem = cut(control) if area is None else cut_in_scroll_area(control, area)
            if problem:
                found.append(f"{name} {problem}")
    return found


def views(window):
    """(name, show) for every room and every tab of a room with tabs (Tune, Explore)."""
    from desktop.main_window import ROOMS

    for name in ROOMS:
        room = window.rooms[name]
        tab_bar = getattr(room, "tab_bar", None)
        tabs = range(tab_bar.count()) if tab_bar is not None else [None]
        for tab in tabs:
            def show(name=name, room=room, tab=tab):
                window.show_room(name)
                if tab is not None:
                    room.tab_bar.setCurrentIndex(tab)
            yield (name if tab is None else f"{name}: {room.tab_bar.tabText(tab).replace('&&', '&')}"), show
        if hasattr(room, "open_guide"):
            def show_guide(name=name, room=room):
                window.show_room(name)
                room.tab_bar.setCurrentIndex(0)
                room.open_guide()
            yield f"{name}: guide", show_guide


def audit(window, app, after=None) -> dict[str, list[str]]:
    """Show each room and tab in turn and list its squeezed or clipped controls (``after(key)`` runs on each)."""
    report = {}
    for key, show in views(window):
        show()
        for _ in range(10):
            app.processEvents()
        report[key] = offenders(window, window.centralWidget())
        if after is not None:
            after(key)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="900x600")
    parser.add_argument("--shots", default=None, help="save a screenshot of each room here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.setdefault("HEARTH_HOME", tempfile.mkdtemp(prefix="hearth-layout-"))
    from PySide6.QtWidgets import QApplication

    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session

    app = QApplication([])
    apply_theme(app)
    session = Session()
    window = MainWindow(session)
    window.resize(width, height)
    window.show()

    def shoot(key: str) -> None:
        if args.shots:
            Path(args.shots).mkdir(parents=True, exist_ok=True)
            window.grab().save(str(Path(args.shots) / f"{key.replace(' ', '-').replace(':', '')}.png"))

    report = audit(window, app, shoot)
    for key, lines in report.items():
        print(f"{key}: {len(lines)}" + "".join(f"\n    {line}" for line in lines[:8]))
    window.close()
    session.shutdown()
    print(json.dumps({"size": args.size, "offenders": {k: len(v) for k, v in report.items()},
                      "total": sum(len(v) for v in report.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
