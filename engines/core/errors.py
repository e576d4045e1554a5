"""The one exception family users see. Each message names the file or field and what to do."""
from __future__ import annotations

from pathlib import Path


class HearthError(Exception):
    """An error the user can act on. ``kind`` crosses the wire so the GUI can tell them apart."""

    kind = "error"

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str = "") -> None:
        self.path = str(path) if path is not None else None
        self.hint = hint
        full = message
        if hint:
            full = f"{message} {hint}"
        super().__init__(full)

    @property
    def message(self) -> str:
        return str(self)

    def to_wire(self) -> dict:
        return {"kind": self.kind, "message": str(self), "path": self.path}

    @staticmethod
    def from_wire(data: dict) -> "HearthError":
        cls = _KINDS.get(data.get("kind", "error"), HearthError)
        err = cls.__new__(cls)
        Exception.__init__(err, data.get("message", "unknown error"))
        err.path = data.get("path")
        err.hint = ""
        return err


class ModelFileError(HearthError):
    """The file is missing, truncated, corrupt or not a model."""

    kind = "model_file"


class UnsupportedModelError(HearthError):
    """A valid file whose architecture or format Hearth cannot run."""

    kind = "unsupported_model"


class OutOfMemoryError(HearthError):
    kind = "out_of_memory"


class ContextOverflowError(HearthError):
    """The conversation does not fit the model's context under the 'stop' policy."""

    kind = "context_overflow"


class RequestError(HearthError):
    """A request field is invalid (e.g. a negative temperature)."""

    kind = "request"


class DataFileError(HearthError):
    """A user's data file (e.g. a decoding dataset) has the wrong layout, shapes or dtypes."""

    kind = "data_file"


class NotLoadedError(HearthError):
    kind = "not_loaded"


class HostError(HearthError):
    """The engine host is unreachable or died."""

    kind = "host"


_KINDS = {cls.kind: cls for cls in (
    HearthError, ModelFileError, UnsupportedModelError, OutOfMemoryError,
    ContextOverflowError, RequestError, DataFileError, NotLoadedError, HostError,
)}
