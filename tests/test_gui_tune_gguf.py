"""The runs view's "Export GGUF…": a real tiny run exported by a child process into the models folder,
which Chat's model list scans; a second export to the same file is refused with the file named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.rooms.tune_views.run_actions import GgufDialog, default_gguf_path
from engines.store.runs import runs_dir
from gui_support import HEAVY_MODULES, ROOT, no_leaks, open_hearth  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(300)


def real_tiny_run(name: str) -> Path:
    """A tiny Llama and a finished DPO-like run on it, built in a child process (no torch in this process)."""
    folder = runs_dir() / name
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[3]); "
            "from tests.tune_support import build_tiny_adapter; from tests.test_tune_gguf import build_llama; "
            "base = build_llama(Path(sys.argv[1])); build_tiny_adapter(base, Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(runs_dir().parent / "tiny-llama"), str(folder), str(ROOT)],
                   check=True, capture_output=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return folder


def test_export_gguf_writes_a_model_chat_can_list(open_hearth):
    heavy_before = {name for name in HEAVY_MODULES if name in sys.modules}
    run_folder = real_tiny_run("dpo-run-7")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    qtbot = hearth.qtbot
    room, actions = hearth.select_only_run()
    run = actions.run
    assert run.folder == run_folder and actions.gguf_button.isEnabled()
    assert actions.gguf_button.text() == "Export GGUF…"

    dialog = GgufDialog(run, actions)  # what the button opens: Q8_0 into the models folder by default
    target = Path(dialog.file.text())
    assert target == default_gguf_path("dpo-run-7", "q8_0") and target.name == "dpo-run-7.Q8_0.gguf"
    dialog.deleteLater()

    refreshed, errors, exported = [], [], []
    hearth.chat.refresh_models = lambda refresh=False: refreshed.append(refresh)  # what Chat is asked to do
    actions.notified.connect(lambda level, text: errors.append(text) if level == "error" else None)
    actions.gguf_exported.connect(exported.append)
    actions.export_gguf(run, str(target), "q8_0")
    assert not actions.gguf_button.isEnabled()  # one export at a time, in a child process
    qtbot.waitUntil(lambda: bool(exported or errors), timeout=240_000)
    assert not errors and exported == [str(target)] and target.is_file() and target.read_bytes()[:4] == b"GGUF"
    assert refreshed == [True]
    qtbot.waitUntil(lambda: actions.gguf_button.isEnabled())
    from engines.models import configured_folders, scan_models

    entries, _errors = scan_models(configured_folders(), include_hf_cache=False)
    assert any(entry.path == str(target) for entry in entries)  # Chat's model list scans the models folder

    actions.export_gguf(run, str(target), "q8_0")  # the file exists now: refused, left as it was
    qtbot.waitUntil(lambda: bool(errors), timeout=120_000)
    assert "already exists" in errors[0] and str(target) in errors[0]
    assert not any(p.name.endswith(".part") for p in target.parent.iterdir())
    assert json.loads((run_folder / "summary.json").read_text())["status"] == "completed"
    assert {name for name in HEAVY_MODULES if name in sys.modules} == heavy_before
