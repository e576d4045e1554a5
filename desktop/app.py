"""Start the desktop app: the window first, then the engine host in the background."""
from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from engines.core.resources import resource
from desktop.widgets.palette import (
    ACCENT, ACCENT_LIGHT, BASE, BUTTON, DISABLED_FIELD_TEXT, DISABLED_TEXT, FIELD, LINE, PANEL, PLACEHOLDER, SHADOW, TEXT, themed,
)

THEME = resource("desktop", "theme.qss")
ICONS = resource("desktop", "icons")


PALETTE = {
    QPalette.ColorRole.Window: BASE, QPalette.ColorRole.WindowText: TEXT, QPalette.ColorRole.Base: FIELD,
    QPalette.ColorRole.AlternateBase: PANEL, QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: BUTTON,
    QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.Highlight: ACCENT, QPalette.ColorRole.HighlightedText: BASE,
    QPalette.ColorRole.ToolTipBase: FIELD, QPalette.ColorRole.ToolTipText: TEXT, QPalette.ColorRole.PlaceholderText: PLACEHOLDER,
    QPalette.ColorRole.Link: ACCENT_LIGHT, QPalette.ColorRole.Mid: LINE, QPalette.ColorRole.Dark: SHADOW,
}


def apply_theme(app: QApplication) -> str:
    """Fusion + a dark palette (so unstyled corners are dark too) + the stylesheet.

    Returns a warning for the user when the stylesheet is missing or unreadable (a damaged install):
    the app then runs on the palette alone instead of not starting.
    """
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in PALETTE.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(DISABLED_FIELD_TEXT))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(DISABLED_TEXT))
    app.setPalette(palette)
    font = QFont(app.font())
    font.setPointSizeF(10)
    app.setFont(font)
    try:
        style = THEME.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return (f"The bundled style sheet {THEME} could not be read ({getattr(exc, 'strerror', None) or exc}), so Hearth "
                "looks plain. Reinstall Hearth to restore it; Help → Self-test checks the other bundled files.")
    app.setStyleSheet(themed(style).replace("@ICONS@", ICONS.as_posix()))
    return ""


def run_app(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv)
    app.setApplicationName("Hearth")
    app.setWindowIcon(QIcon(str(resource("assets", "icons", "hearth.png"))))
    theme_warning = apply_theme(app)

    from engines.core.errors import HearthError
    from desktop.main_window import MainWindow
    from desktop.session import Session

    try:
        session = Session()
    except HearthError as exc:  # e.g. a database from a newer Hearth: say so, don't trace back
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Hearth cannot start", str(exc))
        return 2
    window = MainWindow(session)
    from desktop.startup_report import attach as attach_startup_report

    attach_startup_report(window)
    window.show()
    if theme_warning:
        window.notifications.notify("warning", theme_warning)
    # The host starts once the window is up, so nothing it does delays the first paint.
    QTimer.singleShot(0, session.start_host)
    app.aboutToQuit.connect(session.shutdown)
    return app.exec()
