"""``python main.py chat`` / ``models``: the same engine, headless; user errors are one line, exit 2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.explore_support import shared_cache  # noqa: F401  (one converted-weights cache per run)
from tests.helpers import ROOT, make_bad_models


def hearth(*args, home, timeout=300):
    env = dict(os.environ, HEARTH_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_chat_streams_the_reply_to_stdout(tmp_path):
    out = hearth("chat", "--prompt", "What is the capital of France?", "--temperature", "0", "--max-tokens", "40",
                 "--seed", "1", "--stats", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert "tok/s" in out.stderr and "backend llama" in out.stderr


def test_chat_on_the_transformers_backend(tmp_path):
    out = hearth("chat", "--prompt", "What is the capital of France?", "--temperature", "0", "--max-tokens", "24",
                 "--backend", "transformers", "--stats", home=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout and "backend transformers" in out.stderr


@pytest.mark.parametrize("kind", ["empty", "random", "truncated", "no_model_folder"])
def test_chat_with_a_bad_model_is_one_error_line(tmp_path, kind):
    bad = make_bad_models(tmp_path / "bad")[kind]
    out = hearth("chat", "--prompt", "hi", "--model", str(bad), home=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and str(bad) in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1


def test_chat_with_a_missing_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    out = hearth("chat", "--prompt", "hi", "--model", str(missing), home=tmp_path)
    assert out.returncode == 2 and str(missing) in out.stderr and "Traceback" not in out.stderr


def test_llama_backend_refuses_a_non_gguf_folder(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    out = hearth("chat", "--prompt", "hi", "--model", str(folder), "--backend", "llama", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_models_lists_the_bundled_default(tmp_path):
    out = hearth("models", home=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SmolLM2" in out.stdout and "Q4_1" in out.stdout
