"""pyqtgraph, imported on first use (about half a second: never at start-up) and themed once for the whole app."""
from __future__ import annotations

from desktop.widgets.palette import MUTED, PLOT_BACKGROUND


def pyqtgraph():
    import os

    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    import pyqtgraph as pg

    if not getattr(pg, "_hearth_themed", False):
        pg.setConfigOptions(antialias=True, background=PLOT_BACKGROUND, foreground=MUTED)
        pg._hearth_themed = True
    return pg
