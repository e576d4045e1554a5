"""The Tune room: keyboard labelling (A/B and ranking), replies written through the host, Chat thumbs,
and a real tiny training run started, tailed into the curves, cancelled and resumed."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engines.store.labels import LabelStore
from gui_support import HEAVY_MODULES, no_leaks, open_hearth, tiny_base  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(240)


def _seed_labels(store: LabelStore, prompts: int = 2, k: int = 3) -> int:
    set_id = store.create_prompt_set("test set")
    ids = store.add_prompts(set_id, [f"Question {i}?" for i in range(prompts)])
    for pid in ids:
        for j in range(k):
            store.add_candidate(pid, f"Answer {j} to {pid}", model="default" if j % 2 == 0 else "tuned", seed=j)
    return set_id


def _open_tune(open_hearth, host=None):
    hearth = open_hearth(host)
    hearth.window.show_room("Tune")
    return hearth, hearth.window.tune


def test_ab_view_labels_from_the_keyboard(open_hearth):
    hearth, room = _open_tune(open_hearth)
    store = room.store
    set_id = _seed_labels(store)
    room.label_view.refresh_sets(select=set_id)
    view = room.label_view.pair_view
    assert view.total == 6 and len(view.tasks) == 6
    view.setFocus()

    shown = view.current
    hearth.qtbot.keyClick(view, Qt.Key.Key_1)
    label = store.labels()[-1]
    assert (label.kind, label.a_id, label.b_id, label.outcome) == ("pair", shown.left.id, shown.right.id, "a")

    shown = view.current
    hearth.qtbot.keyClick(view, Qt.Key.Key_2)
    assert store.pair_outcomes()[-1].winner == shown.right.id  # B (the right reply) won
    hearth.qtbot.keyClick(view, Qt.Key.Key_T)
    assert store.labels()[-1].outcome == "tie"
    skipped = view.current
    hearth.qtbot.keyClick(view, Qt.Key.Key_S)
    assert store.labels()[-1].outcome == "skip"
    counts = store.counts()
    assert (counts["pairs"], counts["ties"], counts["skips"]) == (2, 1, 1)
    assert room.label_view.stats["preference_pairs"].number.text() == "2"
    assert len(view.tasks) == 2 and "4 of 6" in view.progress_label.text()

    hearth.qtbot.keyClick(view, Qt.Key.Key_Z)  # undo the skip: that pair is asked again, same sides
    assert store.counts()["skips"] == 0 and len(store.labels(include_undone=True)) == 4
    assert (view.current.left.id, view.current.right.id) == (skipped.left.id, skipped.right.id)
    hearth.qtbot.keyClick(view, Qt.Key.Key_1)
    hearth.qtbot.keyClick(view, Qt.Key.Key_1)
    hearth.qtbot.keyClick(view, Qt.Key.Key_1)
    assert view.current is None and "Every pair" in view.empty_title.text()
    assert store.counts()["preference_pairs"] == 5
    assert set(store.elo()) == {"default", "tuned"}  # replies of two models were compared


def test_ranking_view_orders_ties_and_expands_to_pairs(open_hearth):
    hearth, room = _open_tune(open_hearth)
    store = room.store
    set_id = _seed_labels(store, prompts=1, k=4)
    room.label_view.refresh_sets(select=set_id)
    room.label_view.set_mode(1)
    view = room.label_view.rank_view
    assert view.current is not None and view.list.count() == 4
    view.setFocus()
    view.list.setCurrentRow(3)
    hearth.qtbot.keyClick(view, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)  # last reply moves to third
    hearth.qtbot.keyClick(view, Qt.Key.Key_Equal)  # ...and ties with the second
    order = view.order()
    hearth.qtbot.keyClick(view, Qt.Key.Key_Return)

    rankings = store.labels(kind="ranking")
    assert len(rankings) == 1 and rankings[0].ranking == [[order[0]], [order[1], order[2]], [order[3]]]
    pairs = store.pair_outcomes()
    assert len(pairs) == 6 and sum(p.tie for p in pairs) == 1
    assert {(p.winner, p.loser) for p in pairs if not p.tie} >= {(order[0], order[3]), (order[2], order[3])}
    assert view.current is None and room.label_view.stats["rankings"].number.text() == "1"
    hearth.qtbot.keyClick(view, Qt.Key.Key_Z)
    assert store.labels(kind="ranking") == [] and view.current is not None  # asked again


def test_replies_are_written_through_the_host_and_chat_thumbs_feed_the_store(open_hearth, tmp_path):
    hearth, room = _open_tune(open_hearth, "fake")
    hearth.wait_ready()
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,topic\nName a fruit.,food\nSay hi.,greeting\n")
    labels = room.label_view
    labels.import_prompts(str(prompts))
    assert labels.set_box.currentText().startswith("prompts")
    labels.k_spin.setValue(2)
    labels.generate()
    assert labels.generating and labels.stop_button.isEnabled()
    hearth.qtbot.waitUntil(lambda: not labels.generating, timeout=30_000)
    store = room.store
    candidates = [c for p in store.prompts(labels.set_id) for c in store.candidates(p.id)]
    assert len(candidates) == 4 and all(c.completion.startswith("You said: ") for c in candidates)
    assert {c.sampling["temperature"] for c in candidates} == {0.6, 1.1} and len({c.seed for c in candidates}) == 4
    assert labels.pair_view.total == 2 and labels.pair_view.current is not None
    assert "Wrote 4 replies" in labels.gen_status.text()

    hearth.window.show_room("Chat")
    hearth.send("What is the capital of France?")
    hearth.wait_reply_done()
    bubble = hearth.last_bubble()
    up, down = bubble.thumb_buttons[True], bubble.thumb_buttons[False]
    assert up.isVisible() and up.isEnabled()
    up.click()
    assert store.counts()["thumbs_up"] == 1
    record = store.unpaired_records()[0]
    assert record["prompt"] == "What is the capital of France?" and "Paris" in record["completion"] and record["label"] is True
    down.click()  # changes the thumb: the reply counts once
    assert (store.counts()["thumbs_up"], store.counts()["thumbs_down"]) == (0, 1)
    assert up.isChecked() is False and down.isChecked()
    hearth.chat.open_conversation(hearth.chat.conversation.id)  # reopened: the thumb is shown
    assert hearth.last_bubble().thumb_buttons[False].isChecked()
    assert labels.set_box.findText("Chat replies", Qt.MatchFlag.MatchStartsWith) < 0  # counted, not a set to label


def _tiny_form(train, base: Path, steps: int, name: str) -> None:
    train.set_method("dpo")
    train.add_choice(train.base_box, str(base))
    train.steps.setValue(steps)
    train.save_steps.setValue(2)
    train.lr.setText("5e-3")
    train.batch.setValue(2)
    train.max_length.setValue(160)
    train.lora_r.setValue(4)
    train.lora_alpha.setValue(8)
    train.targets.setText("q_proj, v_proj")
    train.device.setCurrentText("cpu")
    train.run_name.setText(name)


def _preference_labels(store: LabelStore, tmp_path: Path) -> None:
    rows = [{"prompt": p, "chosen": "Yes.", "rejected": "No no no no no, absolutely not."}
            for p in ("Say hi.", "Name a fruit.", "What is 2+2?", "Pick a colour.")]
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store.import_preference(path)


def test_train_runs_a_real_tiny_job_with_live_curves(open_hearth, tiny_base, tmp_path):
    heavy_before = {name for name in HEAVY_MODULES if name in sys.modules}
    hearth, room = _open_tune(open_hearth)
    _preference_labels(room.store, tmp_path)
    room.show_tab(1)
    train = room.train_view
    _tiny_form(train, tiny_base, steps=3, name="gui-dpo")
    assert "4 preference pairs" in train.dataset_info.text()
    train.update_estimate()
    hearth.qtbot.waitUntil(lambda: "Memory ~" in train.estimate.text(), timeout=10_000)
    train.start_button.click()
    hearth.qtbot.waitUntil(lambda: train.running, timeout=10_000)
    assert train.cancel_button.isEnabled() and not train.start_button.isEnabled()
    hearth.qtbot.waitUntil(lambda: not train.running, timeout=180_000)

    run = train.run_dir
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 3, train.log.toPlainText()[-2000:]
    assert (run / "adapter_model.safetensors").is_file()
    assert train.curves.points("loss") == 3 and train.curves.points("learning_rate") == 3
    assert train.curves.points("reward_accuracy") == 3  # DPO logs reward accuracy and margin
    assert "completed" in train.run_status.text()
    hearth.qtbot.waitUntil(lambda: any(r.name == "gui-dpo" and r.status == "completed" for r in train.run_table.runs))
    dataset = json.loads((run / "job.json").read_text())["dataset"]
    assert len(Path(dataset).read_text().splitlines()) == 4  # exported from the label store
    assert {name for name in HEAVY_MODULES if name in sys.modules} == heavy_before


def test_cancel_saves_a_checkpoint_and_resume_finishes(open_hearth, tiny_base, tmp_path):
    hearth, room = _open_tune(open_hearth)
    _preference_labels(room.store, tmp_path)
    room.show_tab(1)
    train = room.train_view
    _tiny_form(train, tiny_base, steps=12, name="gui-cancel")
    train.start_button.click()
    hearth.qtbot.waitUntil(lambda: train.curves.points("loss") >= 1, timeout=180_000)
    train.cancel_button.click()
    assert "cancelling" in train.run_status.text()
    hearth.qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    run = train.run_dir
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "cancelled" and summary["steps"] < 12
    assert any((run / "checkpoints").glob("checkpoint-*"))

    hearth.qtbot.waitUntil(lambda: any(r.name == "gui-cancel" for r in train.run_table.runs))
    row = next(i for i, r in enumerate(train.run_table.runs) if r.name == "gui-cancel")
    train.run_table.selectRow(row)
    assert train.resume_button.isEnabled()
    train.resume_button.click()
    hearth.qtbot.waitUntil(lambda: train.running, timeout=10_000)
    hearth.qtbot.waitUntil(lambda: not train.running, timeout=180_000)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 12, train.log.toPlainText()[-2000:]
    assert train.curves.series["loss"][0][-1] == 12


def test_room_renders(open_hearth, tmp_path):
    hearth, room = _open_tune(open_hearth)
    set_id = _seed_labels(room.store)
    room.label_view.refresh_sets(select=set_id)
    for tab, name in ((0, "label"), (1, "train"), (2, "compare")):
        room.show_tab(tab)
        hearth.qtbot.waitUntil(lambda: room.stack.currentWidget().isVisible() and not room.stack.currentWidget().visibleRegion().isEmpty())
        image = hearth.window.grab().toImage()
        image.save(str(tmp_path / f"tune-{name}.png"))
        colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
        assert len(colours) > 40, f"the {name} tab looks blank"
