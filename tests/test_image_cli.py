"""``python main.py image``: PNGs with metadata through the same engine; user errors are one line, exit 2."""
from __future__ import annotations

import pytest

from tests.image_support import save_tiny_model
from tests.test_cli import hearth



@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("m") / "tiny-sd")


def test_cli_writes_pngs_with_parameters(tmp_path, tiny):
    from engines.image.metadata import read_png_metadata

    out = hearth("image", "--prompt", "a red circle", "--model", str(tiny), "--steps", "3", "--width", "32", "--height", "32",
                 "--seed", "9", "--batch", "2", "--scheduler", "DPM++ 2M Karras", "--out", str(tmp_path / "x.png"), home=tmp_path)
    assert out.returncode == 0, out.stderr
    paths = out.stdout.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["x-1.png", "x-2.png"]
    meta = read_png_metadata(paths[1])
    assert "Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 10, Size: 32x32" in meta["parameters"]


@pytest.mark.parametrize("args, words", [
    (["--width", "30"], "not a multiple of 8"),
    (["--scheduler", "Nope"], "Unknown scheduler"),
    (["--mask", "m.png"], "--mask needs --init"),
    (["--model", "/nonexistent/model.safetensors"], "does not exist"),
    (["--init", "/nonexistent/init.png"], "does not exist"),
])
def test_cli_user_errors_are_one_line(tmp_path, tiny, args, words):
    base = ["image", "--prompt", "x", "--steps", "2", "--width", "32", "--height", "32"]
    if "--model" not in args:
        base += ["--model", str(tiny)]
    out = hearth(*base, *args, home=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and words in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_cli_refuses_a_pickle_checkpoint(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04not really")
    out = hearth("image", "--prompt", "x", "--model", str(ckpt), home=tmp_path)
    assert out.returncode == 2 and "pickle" in out.stderr and "arbitrary code" in out.stderr
