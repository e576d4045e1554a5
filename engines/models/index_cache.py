"""A small on-disk cache of validated GGUF summaries, keyed by path, size and mtime.

GGUFReader parses every metadata entry, including the whole vocabulary: 2 s for the bundled
135M model on a 2-core machine, more for 150k-token vocabularies. Caching the summary makes a
rescan of unchanged files (every host start) instant; a changed file has a new size or mtime
and is validated again. Any trouble with the cache file just means a cache miss.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

VERSION = 1
MAX_ENTRIES = 500
_lock = threading.Lock()


def _file() -> Path:
    from engines.core.paths import cache_dir

    return cache_dir() / "gguf-index.json"


def _load() -> dict:
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
        return data["entries"] if data.get("version") == VERSION and isinstance(data.get("entries"), dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def get(path: str, size: int, mtime_ns: int) -> dict | None:
    with _lock:
        hit = _load().get(path)
    if isinstance(hit, dict) and hit.get("size") == size and hit.get("mtime_ns") == mtime_ns:
        return hit.get("info")
    return None


def put(path: str, size: int, mtime_ns: int, info: dict) -> None:
    from engines.core.paths import atomic_write_text

    with _lock:
        try:
            entries = _load()
            entries.pop(path, None)
            entries[path] = {"size": size, "mtime_ns": mtime_ns, "info": info}
            while len(entries) > MAX_ENTRIES:  # oldest insertions first
                entries.pop(next(iter(entries)))
            atomic_write_text(_file(), json.dumps({"version": VERSION, "entries": entries}))
        except (OSError, TypeError, ValueError):
            pass
