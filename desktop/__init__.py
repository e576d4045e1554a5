"""Hearth's desktop app (PySide6). Never imports the ML stack: engines run in the engine host."""
