"""Shared test set-up: headless Qt, no network for Hugging Face, and a fresh HEARTH_HOME per test."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def hearth_home(tmp_path, monkeypatch):
    """Each test gets its own empty user data folder (database, models, outputs)."""
    home = tmp_path / "hearth-home"
    home.mkdir()
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home
