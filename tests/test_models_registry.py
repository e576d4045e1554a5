"""The model registry: the bundled default, validation of bad files, memory estimates, scans.

Every bad input is made here in tmp_path; each test checks the message names the file and
says what to do.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from engines.core.errors import ModelFileError, OutOfMemoryError, UnsupportedModelError  # noqa: E402
from engines.models import (  # noqa: E402
    MemoryEstimate, ModelEntry, bundled_default_path, check_fits, inspect_model, resolve_model, scan_models,
)
from engines.models import estimate as estimate_mod  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))  # never scan the real cache


def write_gguf(path: Path, arch: str = "llama", *, extra=None) -> Path:
    """A tiny but valid GGUF written with gguf's own writer."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny test model")
    writer.add_block_count(2)
    writer.add_context_length(256)
    writer.add_embedding_length(8)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value in (extra or {}).items():
        writer.add_uint32(key, value)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.ones((8, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_safetensors(path: Path, tensors: dict | None = None) -> Path:
    from safetensors.numpy import save_file

    save_file(tensors or {"model.embed_tokens.weight": np.zeros((16, 8), dtype=np.float16),
                          "model.layers.0.self_attn.q_proj.weight": np.zeros((8, 8), dtype=np.float16)}, str(path))
    return path


TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
    "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512, "torch_dtype": "float16",
}


def write_hf_folder(folder: Path, config: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or TINY_CONFIG))
    write_safetensors(folder / "model.safetensors")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def error_text(excinfo) -> str:
    return str(excinfo.value)


# -- the bundled default ---------------------------------------------------------------------

def test_bundled_default_is_found_and_described():
    path = bundled_default_path()
    assert path.is_file() and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    entry = inspect_model("default")
    assert isinstance(entry, ModelEntry)
    assert (entry.id, entry.source, entry.format, entry.kind) == ("default", "bundled", "gguf", "text")
    assert entry.path == str(path)
    assert entry.architecture == "llama"
    assert 1e8 < entry.parameters < 2e8
    assert entry.quantization == "Q4_1"
    assert entry.context_length == 8192
    assert entry.name == "SmolLM2-135M-Instruct (Q4_1)"
    assert (entry.layers, entry.kv_heads, entry.head_dim) == (30, 3, 64)
    est = entry.estimate()
    assert isinstance(est, MemoryEstimate) and est.fits
    assert resolve_model("default") == entry


def test_bundled_estimate_numbers_and_json():
    entry = inspect_model("default")
    est = entry.estimate(4096)
    assert est.weights_bytes == entry.size_bytes
    assert est.kv_cache_bytes == 2 * 30 * 4096 * 3 * 64 * 2
    assert est.total_bytes == est.weights_bytes + est.kv_cache_bytes + est.overhead_bytes
    assert est.available_bytes > 0
    assert "at 4096 tokens" in est.describe() and "GB available" in est.describe()
    assert entry.estimate(8192).kv_cache_bytes == 2 * est.kv_cache_bytes
    data = json.loads(json.dumps(entry.to_dict()))
    assert data["id"] == "default" and data["estimate"]["kv_cache_bytes"] == est.kv_cache_bytes


def test_import_does_not_pull_in_torch_qt_or_llama_cpp():
    code = ("import engines.models, sys; "
            "print(sorted(m for m in ('torch', 'PySide6', 'llama_cpp', 'transformers', 'gguf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- bad GGUF files --------------------------------------------------------------------------

def test_empty_gguf(tmp_path):
    bad = tmp_path / "empty.gguf"
    bad.write_bytes(b"")
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    assert str(bad) in error_text(exc) and "empty" in error_text(exc) and "Re-download" in error_text(exc)


def test_random_bytes_renamed_gguf(tmp_path):
    bad = tmp_path / "random.gguf"
    bad.write_bytes(os.urandom(4096).replace(b"GGUF", b"xxxx"))
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    assert str(bad) in error_text(exc) and "is not a GGUF file (bad magic" in error_text(exc)


@pytest.mark.parametrize("keep", [1_000_000, 0.9])
def test_truncated_copy_of_the_bundled_gguf(tmp_path, keep):
    src = bundled_default_path()
    size = src.stat().st_size
    n = keep if isinstance(keep, int) else int(size * keep)
    bad = tmp_path / f"cut-{n}.gguf"
    with open(src, "rb") as fh:
        bad.write_bytes(fh.read(n))
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    text = error_text(exc)
    assert str(bad) in text and "truncated" in text and "Re-download or re-copy the file" in text
    if isinstance(keep, float):  # the header is intact: the message names the first tensor cut off
        assert "tensor '" in text and f"but the file has {n} bytes" in text


def test_truncated_header_is_reported(tmp_path):
    good = write_gguf(tmp_path / "good.gguf")
    bad = tmp_path / "header-cut.gguf"
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    assert str(bad) in error_text(exc) and "truncated" in error_text(exc)


@pytest.mark.parametrize("arch, words", [("nonexistent", "does not run"), ("bert", "not a text generator")])
def test_unsupported_architecture(tmp_path, arch, words):
    bad = write_gguf(tmp_path / f"{arch}.gguf", arch)
    with pytest.raises(UnsupportedModelError) as exc:
        inspect_model(bad)
    text = error_text(exc)
    assert str(bad) in text and f"'{arch}'" in text and words in text and "Choose" in text


def test_tiny_valid_gguf_is_described(tmp_path):
    good = write_gguf(tmp_path / "tiny-f32.gguf")
    entry = inspect_model(good)
    assert (entry.id, entry.path, entry.source, entry.architecture) == (str(good), str(good), "folder", "llama")
    assert entry.parameters == 16 * 8 + 8 * 8 and entry.quantization == "F32" and entry.context_length == 256
    assert entry.name == "tiny (F32)" and (entry.layers, entry.kv_heads, entry.head_dim) == (2, 1, 4)


def test_projector_file_is_named_as_such(tmp_path):
    proj = write_gguf(tmp_path / "mmproj-model-f16.gguf", "clip")
    with pytest.raises(UnsupportedModelError) as exc:
        inspect_model(proj)
    assert str(proj) in error_text(exc) and "vision projector" in error_text(exc)


def test_split_gguf_parts(tmp_path):
    second = write_gguf(tmp_path / "big-00002-of-00002.gguf", extra={"split.count": 2, "split.no": 1})
    with pytest.raises(ModelFileError) as exc:
        inspect_model(second)
    assert "part 2 of 2" in error_text(exc) and "big-00001-of-00002.gguf" in error_text(exc)
    second.unlink()
    first = write_gguf(tmp_path / "big-00001-of-00002.gguf", extra={"split.count": 2, "split.no": 0})
    with pytest.raises(ModelFileError) as exc:
        inspect_model(first)
    assert "big-00002-of-00002.gguf is missing" in error_text(exc) and "Copy all 2 parts" in error_text(exc)
    write_gguf(second, extra={"split.count": 2, "split.no": 1})
    entry = inspect_model(first)
    assert entry.parameters == 2 * (16 * 8 + 8 * 8)
    assert entry.size_bytes == first.stat().st_size + second.stat().st_size


# -- folders and safetensors -----------------------------------------------------------------

def test_folder_with_no_model(tmp_path):
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    with pytest.raises(ModelFileError) as exc:
        inspect_model(folder)
    assert error_text(exc).startswith(f"{folder} holds no model: expected a .gguf file or a folder with config.json")


def test_pickle_only_folder(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(UnsupportedModelError) as exc:
        inspect_model(folder)
    text = error_text(exc)
    assert str(folder) in text and "pytorch_model.bin" in text and "pickle" in text and "safetensors" in text


def test_incomplete_hf_folder_lists_what_is_missing(tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    write_safetensors(folder / "model-00001-of-00002.safetensors")
    with pytest.raises(ModelFileError) as exc:
        inspect_model(folder)
    text = error_text(exc)
    assert str(folder) in text and "model-00002-of-00002.safetensors" in text and "a tokenizer" in text
    assert "Re-download" in text


def test_good_hf_folder(tmp_path):
    folder = write_hf_folder(tmp_path / "tiny-llama")
    entry = inspect_model(folder)
    assert (entry.format, entry.source, entry.architecture, entry.quantization) == ("hf-folder", "folder", "llama", "F16")
    assert entry.parameters == 16 * 8 + 8 * 8 and entry.context_length == 512
    assert entry.estimate(100).weights_bytes == entry.parameters * 2
    assert entry.estimate(100).kv_cache_bytes == 2 * 1 * 100 * 1 * 4 * 2


def test_non_text_hf_folder(tmp_path):
    folder = write_hf_folder(tmp_path / "embedder", dict(TINY_CONFIG, architectures=["BertModel"]))
    with pytest.raises(UnsupportedModelError) as exc:
        inspect_model(folder)
    assert str(folder) in error_text(exc) and "BertModel" in error_text(exc) and "not a text generator" in error_text(exc)


def test_corrupt_safetensors_header(tmp_path):
    bad = tmp_path / "corrupt.safetensors"
    junk = b"{this is not json at all"
    bad.write_bytes(struct.pack("<Q", len(junk)) + junk + b"\0" * 64)
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    assert str(bad) in error_text(exc) and "corrupt safetensors header" in error_text(exc)
    huge = tmp_path / "huge-header.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(ModelFileError) as exc:
        inspect_model(huge)
    assert str(huge) in error_text(exc) and "header" in error_text(exc)


def test_truncated_safetensors(tmp_path):
    good = write_safetensors(tmp_path / "good.safetensors")
    entry = inspect_model(good)
    assert entry.format == "safetensors" and entry.parameters == 16 * 8 + 8 * 8 and entry.quantization == "F16"
    bad = tmp_path / "cut.safetensors"
    data = good.read_bytes()
    bad.write_bytes(data[:-10])
    with pytest.raises(ModelFileError) as exc:
        inspect_model(bad)
    text = error_text(exc)
    assert str(bad) in text and "truncated" in text and "tensor '" in text and f"the file has {len(data) - 10} bytes" in text


def test_missing_path(tmp_path):
    with pytest.raises(ModelFileError) as exc:
        inspect_model(tmp_path / "nope.gguf")
    assert str(tmp_path / "nope.gguf") in error_text(exc) and "does not exist" in error_text(exc)


# -- memory ----------------------------------------------------------------------------------

def test_too_large_for_memory(monkeypatch):
    entry = inspect_model("default")
    monkeypatch.setattr(estimate_mod, "available_memory", lambda: 50_000_000)
    assert not entry.estimate(4096).fits
    with pytest.raises(OutOfMemoryError) as exc:
        check_fits(entry, 4096)
    text = error_text(exc)
    assert re.match(r"SmolLM2-135M-Instruct \(Q4_1\) needs ~0\.\d\d GB at context 4096 but only 0\.05 GB are available\.", text)
    assert "Choose a smaller quantisation or a shorter context." in text and exc.value.path == entry.path
    monkeypatch.setattr(estimate_mod, "available_memory", lambda: 64 * 10**9)
    assert check_fits(entry, 4096).fits


# -- scans -----------------------------------------------------------------------------------

def test_scan_reports_bad_files_and_lists_good_ones(tmp_path):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    good = write_gguf(folder / "sub" / "tiny.gguf")
    bad = folder / "broken.gguf"
    bad.write_bytes(b"not a model")
    write_gguf(folder / "sub" / "mmproj-tiny.gguf", "clip")  # a projector beside its model: skipped quietly
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "also-broken.gguf").write_bytes(b"x")
    entries, errors = scan_models([folder], include_hf_cache=False)
    assert [e.id for e in entries if e.id != "default-vision"] == ["default", str(good)]  # the bundled vision model is listed too
    assert len(errors) == 1 and isinstance(errors[0], ModelFileError) and str(bad) in str(errors[0])


def test_scan_missing_folder_is_an_error_not_an_exception(tmp_path):
    entries, errors = scan_models([tmp_path / "gone"], include_hf_cache=False)
    assert [e.id for e in entries if e.id != "default-vision"] == ["default"]
    assert "does not exist" in str(errors[0]) and "Settings" in str(errors[0])


def test_hf_cache_layout(tmp_path, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    snapshot = write_hf_folder(cache / "models--org--tiny-chat" / "snapshots" / "abc123")
    (cache / "models--org--tiny-chat" / "refs").mkdir()
    (cache / "models--org--tiny-chat" / "refs" / "main").write_text("abc123")
    write_hf_folder(cache / "models--org--embedder" / "snapshots" / "def456", dict(TINY_CONFIG, architectures=["BertModel"]))
    gguf_snap = cache / "models--org--tiny-gguf" / "snapshots" / "0f0f"
    gguf_snap.mkdir(parents=True)
    write_gguf(gguf_snap / "tiny-Q8_0.gguf")
    (cache / "datasets--org--data" / "snapshots" / "1111").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    entries, errors = scan_models([], include_hf_cache=True)
    assert errors == []
    by_id = {e.id: e for e in entries if e.id != "default-vision"}
    assert list(by_id) == ["default", str(snapshot), str(gguf_snap / "tiny-Q8_0.gguf")]
    chat = by_id[str(snapshot)]
    assert (chat.source, chat.format, chat.name, chat.architecture) == ("hf-cache", "hf-folder", "org/tiny-chat (F16)", "llama")
    gg = by_id[str(gguf_snap / "tiny-Q8_0.gguf")]
    assert (gg.source, gg.format, gg.gguf_file) == ("hf-cache", "gguf", "tiny-Q8_0.gguf")
    assert inspect_model(snapshot).source == "hf-cache"


def test_hf_home_is_respected(tmp_path, monkeypatch):
    from engines.models import hf_cache_dir

    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert hf_cache_dir() == tmp_path / "hfhome" / "hub"


def test_rescan_uses_the_index_cache_and_notices_changes(tmp_path):
    from engines.models import gguf_file

    good = write_gguf(tmp_path / "tiny.gguf")
    assert inspect_model(good).parameters == 16 * 8 + 8 * 8
    gguf_file._read.cache_clear()  # as in a fresh process: the on-disk index answers
    assert inspect_model(good).parameters == 16 * 8 + 8 * 8
    good.write_bytes(good.read_bytes()[:-8])  # changed size: validated again
    with pytest.raises(ModelFileError, match="truncated") as first:
        inspect_model(good)
    gguf_file._read.cache_clear()
    with pytest.raises(ModelFileError) as again:  # a known-bad file is not re-read either
        inspect_model(good)
    assert str(again.value) == str(first.value) and again.value.path == str(good)


# -- CLI -------------------------------------------------------------------------------------

def test_cli_table_and_json(tmp_path, capsys):
    from engines.models.cli import run_models

    folder = tmp_path / "models"
    folder.mkdir()
    write_gguf(folder / "tiny.gguf")
    (folder / "bad.gguf").write_bytes(b"")
    assert run_models(Namespace(folder=[str(folder)], context_length=2048, json=False)) == 0
    out, err = capsys.readouterr()
    assert "SmolLM2-135M-Instruct (Q4_1)" in out and "tiny (F32)" in out and "fits" in out.splitlines()[0]
    assert err.startswith("warning: ") and "bad.gguf is empty" in err
    assert run_models(Namespace(folder=[str(folder)], context_length=2048, json=True)) == 0
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert [m["id"] for m in data["models"] if m["id"] != "default-vision"][:2] == ["default", str(folder / "tiny.gguf")]
    assert data["models"][0]["estimate"]["context_length"] == 2048
    assert data["errors"][0]["kind"] == "model_file"


def test_cli_via_main(tmp_path):
    env = dict(os.environ, HEARTH_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "none"), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "main.py", "models", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["models"][0]["id"] == "default"
