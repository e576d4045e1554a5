"""Compare tab (base vs tuned through the host, reward win rate, blind A/B from the keyboard into the label
store and Elo), the adapter picker in Chat, and the runs view's Chat with this / Merge / Export job."""
from __future__ import annotations

import json
import sys
import time

import pytest
from PySide6.QtCore import Qt

from desktop.rooms.tune_views.compare import split_sides
from engines.store.runs import runs_dir
from gui_support import HEAVY_MODULES, no_leaks, open_hearth  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(240)


def fake_run(name: str, method: str, status: str = "completed"):
    """A run folder as ``main.py train`` leaves it (the adapter's weights are not read by the fake host)."""
    folder = runs_dir() / name
    folder.mkdir(parents=True)
    task = "SEQ_CLS" if method == "reward" else "CAUSAL_LM"
    (folder / "adapter_config.json").write_text(json.dumps({"task_type": task, "base_model_name_or_path": "converted"}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / "summary.json").write_text(json.dumps({"status": status, "method": method, "base_model": "default", "steps": 3,
                                                     "max_steps": 3, "final_loss": 0.5, "started": time.time()}))
    dataset = folder.parent.parent / f"{name}.jsonl"
    dataset.write_text(json.dumps({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) + "\n")
    (folder / "job.json").write_text(json.dumps({"method": method, "dataset": str(dataset), "output_dir": str(folder),
                                                 "base_model": "default", "max_steps": 3}))
    return folder


@pytest.fixture
def heavy_guard():
    before = {name for name in HEAVY_MODULES if name in sys.modules}
    yield
    assert {name for name in HEAVY_MODULES if name in sys.modules} == before, "the GUI process imported the ML stack"


def test_compare_tab_scores_and_blind_ab_feeds_the_label_store(open_hearth, heavy_guard):
    dpo, reward = fake_run("dpo-run-3", "dpo"), fake_run("reward-run", "reward")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.window.show_room("Tune")
    room, qtbot = hearth.window.tune, hearth.qtbot
    room.show_tab(2)
    view, store = room.compare_view, room.store
    qtbot.waitUntil(lambda: view.run_box.findData(str(dpo)) >= 0, timeout=10_000)
    assert view.run_box.findData(str(reward)) < 0  # a reward model is not a model to chat or compare with
    assert view.reward_box.currentData() == str(reward)  # ...but it scores the replies
    view.source_box.setCurrentIndex(view.source_box.findData("starter"))
    view.count.setValue(3)
    view.compare_button.click()
    assert view.running and view.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not view.running, timeout=30_000)
    assert "Compared 3 prompts" in view.status.text()

    prompts = store.prompts(view.comparison)
    assert len(prompts) == 3
    for prompt in prompts:
        base, tuned = split_sides(store.candidates(prompt.id))
        assert base.completion.startswith("Base answer") and tuned.completion.startswith("Tuned answer")
        assert (base.model, base.adapter, tuned.model, tuned.adapter) == ("default", "", "default", str(dpo))
        assert (base.meta["reward_score"], tuned.meta["reward_score"]) == (0.1, 0.9) and base.seed == tuned.seed
    assert view.win_rate.text() == "100%" and "wins 3" in view.win_detail.text()
    assert view.prompt_list.count() == 3
    view.prompt_list.setCurrentRow(1)
    assert "Tuned answer" in view.tuned_card.text.toPlainText() and "+0.900" in view.tuned_card.text.toPlainText()
    assert "Base answer" in view.base_card.text.toPlainText()

    view.set_mode(1)  # blind A/B: random sides, the keyboard judges
    pairs = view.pair_view
    assert pairs.total == 3 and pairs.hasFocus()
    expected = {"tuned": 0, "base": 0, "tie": 0}
    for key, outcome in ((Qt.Key.Key_1, "a"), (Qt.Key.Key_2, "b"), (Qt.Key.Key_T, "tie")):
        shown = pairs.current
        qtbot.keyClick(pairs, key)
        label = store.labels()[-1]
        assert (label.kind, label.a_id, label.b_id, label.outcome) == ("pair", shown.left.id, shown.right.id, outcome)
        if outcome == "tie":
            expected["tie"] += 1
        else:
            winner = shown.left if outcome == "a" else shown.right
            expected["tuned" if winner.adapter else "base"] += 1
    assert pairs.current is None
    assert view.judged_detail.text() == (f"you preferred the tuned reply {expected['tuned']}×, the base {expected['base']}×, "
                                         f"{expected['tie']} ties")
    elo = store.elo()
    assert set(elo) == {"default", f"default+{dpo}"} and elo[f"default+{dpo}"]["games"] == 3
    assert "bundled SmolLM2 + dpo-run-3" in view.elo_label.text()

    qtbot.keyClick(pairs, Qt.Key.Key_Z)  # undo: the tie is asked again
    assert len(store.labels()) == 2 and pairs.current is not None


def test_chat_picks_an_adapter_and_runs_view_chats_with_a_run(open_hearth, heavy_guard):
    dpo, reward = fake_run("dpo-run-3", "dpo"), fake_run("reward-run", "reward")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    qtbot, chat = hearth.qtbot, hearth.chat
    picker = chat.model_picker
    qtbot.waitUntil(lambda: picker.adapter.findData(str(dpo)) >= 0, timeout=10_000)
    assert picker.adapter.findData(str(reward)) < 0
    assert [picker.adapter.itemText(i) for i in (0, picker.adapter.count() - 1)] == ["None", "Browse…"]

    picker.backend.setCurrentText("llama")
    index = picker.adapter.findData(str(dpo))
    picker.adapter.setCurrentIndex(index)
    picker.adapter.activated.emit(index)  # as a user's pick
    assert picker.current_model() == "default" and picker.backend.currentText() == "auto"
    hearth.send("Hello there")
    hearth.wait_reply_done()
    assert chat.loaded["model"] == f"default+{dpo}" and chat.loaded["backend"] == "transformers"
    assert chat.loaded["adapter"] == str(dpo) and chat.loaded["name"].endswith("+ dpo-run-3")
    assert "dpo-run-3" in picker.loaded_label.text()
    assert hearth.last_bubble().message.meta["model"] == f"default+{dpo}"

    picker.adapter.setCurrentIndex(0)  # None: the next reply reloads the plain model
    hearth.send("Hello again")
    hearth.wait_reply_done()
    assert chat.loaded["model"] == "default" and chat.loaded["adapter"] == ""

    hearth.window.show_room("Tune")
    room = hearth.window.tune
    room.show_tab(1)
    table, actions = room.train_view.run_table, room.run_actions
    qtbot.waitUntil(lambda: len(table.runs) == 2, timeout=10_000)
    table.selectRow(next(i for i, r in enumerate(table.runs) if r.name == "reward-run"))
    assert not actions.chat_button.isEnabled() and not actions.merge_button.isEnabled() and actions.export_button.isEnabled()
    table.selectRow(next(i for i, r in enumerate(table.runs) if r.name == "dpo-run-3"))
    assert actions.chat_button.isEnabled() and actions.compare_button.isEnabled()
    actions.chat_button.click()
    assert hearth.window.stack.currentWidget() is chat
    qtbot.waitUntil(lambda: (chat.loaded or {}).get("adapter") == str(dpo), timeout=10_000)
    assert picker.adapter.current_adapter() == str(dpo)

    hearth.window.show_room("Tune")
    actions.compare_button.click()  # the Compare tab with the run chosen
    assert room.stack.currentWidget() is room.compare_view
    qtbot.waitUntil(lambda: room.compare_view.run_box.currentData() == str(dpo), timeout=10_000)


def test_runs_view_merges_in_the_host_and_exports_a_cluster_job(open_hearth, heavy_guard, tmp_path):
    dpo = fake_run("dpo-run-3", "dpo")
    hearth = open_hearth("fake")
    hearth.wait_ready()
    qtbot = hearth.qtbot
    room, actions = hearth.select_only_run()
    run = actions.run
    assert run.folder == dpo

    target = tmp_path / "dpo-run-3-merged"
    with qtbot.waitSignal(actions.merged, timeout=20_000) as merged:
        actions.merge(run, str(target))
        assert not actions.merge_button.isEnabled()  # one merge at a time, in the background
    assert merged.args == [str(target)] and json.loads((target / "config.json").read_text()) == {"merged_from": str(dpo)}
    qtbot.waitUntil(lambda: actions.merge_button.isEnabled())
    errors = []
    actions.notified.connect(lambda level, text: errors.append(text) if level == "error" else None)
    actions.merge(run, str(target))  # the folder exists now: the host says so
    qtbot.waitUntil(lambda: bool(errors), timeout=20_000)
    assert "already exists" in errors[0]

    folder = tmp_path / "cluster"
    with qtbot.waitSignal(actions.exported, timeout=180_000) as exported:
        actions.export(run, str(folder), "deepspeed-zero2", gpus=4, machines=2)
    result = exported.args[0]
    assert result["folder"] == str(folder) and {"JOB.json", "accelerate.yaml", "launch.sh", "dataset.jsonl"} <= set(result["files"])
    assert result["command"].startswith("accelerate launch --config_file accelerate.yaml --machine_rank $MACHINE_RANK")
    assert "num_processes: 8" in (folder / "accelerate.yaml").read_text()
    assert json.loads((folder / "JOB.json").read_text())["output_dir"] == "output"
