"""Build command lines for Hearth's child processes (engine host, training jobs).

When Hearth is frozen by PyInstaller, ``sys.executable`` is the app itself, which dispatches
on its arguments like ``main.py`` does; otherwise it is Python and needs ``main.py``.
"""
from __future__ import annotations

import sys

from engines.core.resources import resource

MAIN = resource("main.py")
# The engine host prints this line, then JSON {"port": N, "pid": P}, once it listens; its starters wait for it.
HOST_READY_PREFIX = "HEARTH_HOST_READY"


def child_command(*args: str) -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, str(MAIN), *args]
