"""Where Hearth keeps user data: the platform's user dirs, or ``HEARTH_HOME`` when set."""
from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs

APP_NAME = "Hearth"


def home() -> Path:
    override = os.environ.get("HEARTH_HOME")
    if override:
        path = Path(override).expanduser()
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Rebuildable data (converted weights). ``HEARTH_CACHE`` overrides it, then ``HEARTH_HOME``/cache."""
    explicit = os.environ.get("HEARTH_CACHE")
    override = os.environ.get("HEARTH_HOME")
    if explicit:
        path = Path(explicit).expanduser()
    elif override:
        path = Path(override).expanduser() / "cache"
    else:
        path = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    return home() / "hearth.sqlite3"


def outputs_dir() -> Path:
    path = home() / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The default user model folder (more can be added in settings)."""
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json_object(path: str | Path, hint: str) -> dict:
    """A JSON object from ``path``; a missing, unreadable or non-object file is a ModelFileError naming it."""
    from engines.core.errors import ModelFileError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}).", path=path, hint=hint) from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{path} is not a JSON object.", path=path, hint=hint)
    return data
