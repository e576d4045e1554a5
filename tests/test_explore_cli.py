"""``python main.py explore ...``: the same engine code, headless; user errors are one line, exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.explore_support import shared_cache  # noqa: F401  (fixture)
from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def hearth(*args, home, timeout=600):
    env = dict(os.environ, HEARTH_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "explore", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_analogy_man_king_woman_prints_queen_first(tmp_path):
    out = hearth("analogy", "man", "king", "woman", home=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "queen" and len(lines) == 10
    assert not {"man", "king", "woman"} & {line.lower() for line in lines}


def test_tokens_and_neighbours(tmp_path):
    out = hearth("tokens", "Hello world\nbye", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["19556\tHello", "905\t world", "198\t\\n", "25257\tbye"]
    assert "4 tokens" in out.stderr
    near = hearth("neighbours", "Paris", "--top", "5", "--scores", home=tmp_path)
    assert near.returncode == 0 and len(near.stdout.splitlines()) == 5
    words = [line.split("\t")[0] for line in near.stdout.splitlines()]
    scores = [float(line.split("\t")[1]) for line in near.stdout.splitlines()]
    assert "Paris" not in words and scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1


def test_attention_writes_png_and_json(tmp_path):
    png, data = tmp_path / "att.png", tmp_path / "att.json"
    out = hearth("attention", "--text", "The cat sat on the mat.", "--layer", "3", "--head", "1",
                 "--out", str(png), "--json", str(data), home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes().startswith(b"\x89PNG")
    body = json.loads(data.read_text())
    weights = np.array(body["attentions"])
    assert weights.shape == (30, 9, len(body["tokens"]), len(body["tokens"]))
    assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-3)
    assert "layer 3, head 1" in out.stderr


@pytest.mark.parametrize("args, says", [
    (("attention", "--text", "hi", "--layer", "99", "--out", "x.png"), "Layer 99 does not exist"),
    (("analogy", "man", "king", "woman", "--top", "0"), "top"),
    (("neighbours", "cat", "--model", "/no/such/model.gguf"), "/no/such/model.gguf"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, args, says):
    out = hearth(*args, home=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and says in out.stderr and "Traceback" not in out.stderr
