"""Types and services shared by every engine and by the desktop process.

Everything here is light: stdlib (+ platformdirs) only, never torch, so the GUI process may
import it.
"""
from engines.core.cancel import CancelToken, Cancelled
from engines.core.errors import (
    ContextOverflowError,
    HearthError,
    HostError,
    ModelFileError,
    NotLoadedError,
    OutOfMemoryError,
    RequestError,
    UnsupportedModelError,
)
from engines.core.events import Event, Log, Metric, Preview, Progress, Result, Token, event_from_wire, event_to_wire

__all__ = [
    "CancelToken", "Cancelled", "HearthError", "ModelFileError", "UnsupportedModelError",
    "OutOfMemoryError", "ContextOverflowError", "RequestError", "NotLoadedError", "HostError",
    "Event", "Token", "Progress", "Preview", "Metric", "Log", "Result",
    "event_to_wire", "event_from_wire",
]
