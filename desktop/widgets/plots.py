"""pyqtgraph, imported on first use (about half a second: never at start-up) and themed once for the whole app."""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot

from desktop.widgets.palette import LINE, MUTED, PLOT_BACKGROUND


def pyqtgraph():
    import os

    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    import pyqtgraph as pg

    if not getattr(pg, "_hearth_themed", False):
        pg.setConfigOptions(antialias=True, background=PLOT_BACKGROUND, foreground=MUTED)
        pg._hearth_themed = True
    return pg


def style_plot(plot, left: str = "", bottom: str = "") -> None:
    """Hearth's look for a pyqtgraph PlotWidget: a faint grid, themed axes without SI prefixes, optional axis
    labels, and no pyqtgraph context menu."""
    item = plot.getPlotItem()
    item.showGrid(x=True, y=True, alpha=0.12)
    for name, text in (("left", left), ("bottom", bottom)):
        axis = item.getAxis(name)
        axis.enableAutoSIPrefix(False)
        axis.setPen(LINE)
        axis.setTextPen(MUTED)
        if text:
            item.setLabel(name, text, color=MUTED)
    plot.setMenuEnabled(False)


class _Warmer(QObject):
    """Lives on the GUI thread; the import thread signals it when numpy is in."""

    numpy_ready = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.numpy_ready.connect(self.import_pyqtgraph)  # emitted from the thread: delivered queued, here

    @Slot()
    def import_pyqtgraph(self) -> None:
        try:
            pyqtgraph()
        except ImportError:
            pass  # then the first plot raises it, where it can be reported


_warmer: _Warmer | None = None


def warm_up() -> None:
    """Get the plot imports done before the first plot, without freezing the window for all of them.

    numpy (the larger half) is imported in a thread; pyqtgraph itself then on the GUI thread, because its
    import creates Qt objects, which is only safe there (importing it in a thread crashed the process now
    and then). Call from the GUI thread; later calls do nothing.
    """
    global _warmer
    if _warmer is not None:
        return
    _warmer = _Warmer()
    threading.Thread(target=_import_numpy, args=(_warmer,), name="hearth-plot-imports", daemon=True).start()


def _import_numpy(warmer: _Warmer) -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        pass
    warmer.numpy_ready.emit()
