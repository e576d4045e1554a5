"""Shared by the Explore tests: one converted-weights cache for the whole test session.

The attention maps need the bundled GGUF converted for transformers (about 40 s on 2 cores);
every Explore test module (and the host and CLI processes they start, which inherit the
environment) points HEARTH_CACHE at the same folder under pytest's session temp dir, so the
conversion happens once per run instead of once per fresh HEARTH_HOME.
"""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def shared_cache(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "hearth-shared-cache"
    path.mkdir(exist_ok=True)
    old = os.environ.get("HEARTH_CACHE")
    os.environ["HEARTH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HEARTH_CACHE", None)
    else:
        os.environ["HEARTH_CACHE"] = old
