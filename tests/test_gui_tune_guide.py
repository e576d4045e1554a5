"""The Tune room's guided path "Teach the model a preference", driven end to end: replies through the
(fake) engine host, the scripted labeler labelling in the A/B view, real tiny reward/DPO/RL runs
through the Train tab, and the Compare tab with base and tuned replies side by side."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.core import preference_demo as demo
from gui_support import no_leaks, open_hearth, tiny_base  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(300)


def _fast_settings(base: Path):
    from desktop.rooms.tune_views.guide import GuideSettings

    return GuideSettings(
        replies_per_prompt=3, reply_tokens=30, label_interval_ms=20, compare_prompts=2,
        common={"base_model": str(base), "lora_r": 4, "lora_alpha": 8, "targets": ["q_proj", "v_proj"], "max_length": 160,
                "device": "cpu", "save_steps": 100, "learning_rate": 5e-3},
        methods={"reward": {"steps": 2, "batch": 2}, "dpo": {"steps": 2, "batch": 2},
                 "rl": {"steps": 2, "batch": 4, "generations": 2, "completion_tokens": 8}})


def test_guided_path_from_replies_to_compare(open_hearth, tiny_base, tmp_path):
    hearth = open_hearth("fake")
    hearth.wait_ready()
    hearth.window.show_room("Tune")
    room, qtbot, store = hearth.window.tune, hearth.qtbot, hearth.window.tune.store
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\nName a fruit.\nSay hi.\nPick a colour.\n")
    room.label_view.import_prompts(str(prompts))

    room.guide_button.click()
    guide = room.guide
    assert guide.isVisible() and guide.step == "replies"
    guide.settings = _fast_settings(tiny_base)
    guide.show_step("replies")
    assert "9 replies" in guide.estimate.text() and "about" in guide.estimate.text()  # the time before the step
    guide.primary.click()
    qtbot.waitUntil(lambda: guide.step == "label", timeout=30_000)
    assert len([c for p in store.prompts(room.label_view.set_id) for c in store.candidates(p.id)]) == 9
    assert "9 pairs to label" in guide.estimate.text()

    # the scripted labeler, watched: it labels in the A/B view, and says so
    guide.primary.click()
    assert guide.banner.isVisible() and "Scripted labeler" in guide.banner.text()
    assert room.stack.currentWidget() is room.label_view
    qtbot.waitUntil(lambda: guide.step == "reward", timeout=10_000)
    labels = store.labels(kind="pair")
    assert len(labels) == 9 and all(label.meta.get("labeler") == "scripted" for label in labels)
    for label in labels:
        a, b = store.candidate(label.a_id).completion, store.candidate(label.b_id).completion
        assert label.outcome == demo.scripted_judgement(a, b)
    assert store.counts()["preference_pairs"] > 0 and "labelled 9 pairs" in guide.banner.text()

    # reward model, DPO, RL: each with a time estimate first, trained through the Train tab
    train = room.train_view
    for method, following in (("reward", "dpo"), ("dpo", "rl"), ("rl", "compare")):
        assert guide.step == method and "time ~" in guide.estimate.text()
        assert "preference pairs" in guide.estimate.text() or method == "rl"
        guide.primary.click()
        qtbot.waitUntil(lambda: train.running, timeout=20_000)
        assert room.stack.currentWidget() is train and train.method == method
        qtbot.waitUntil(lambda: guide.step == following, timeout=180_000)
        summary = json.loads((Path(guide.runs[method]) / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["method"] == method, train.log.toPlainText()[-2000:]
    rl_job = json.loads((Path(guide.runs["rl"]) / "job.json").read_text())
    assert rl_job["reward_model"] == guide.runs["reward"]
    assert train.curves.points("kl") == 2 and train.curves.points("reward") == 2  # the RL curves
    qtbot.waitUntil(lambda: guide.result.isVisible(), timeout=10_000)
    assert "reward model's mean score" in guide.result.text() and "KL" in guide.result.text()

    # compare: base and RL replies side by side, same seed, scored by the guide's reward model
    assert "2 prompts" in guide.estimate.text()
    guide.primary.click()
    compare = room.compare_view
    qtbot.waitUntil(lambda: compare.running, timeout=10_000)
    assert room.stack.currentWidget() is compare and compare.run_box.currentData() == guide.runs["rl"]
    assert compare.reward_box.currentData() == guide.runs["reward"]
    qtbot.waitUntil(lambda: not compare.running, timeout=30_000)
    assert "Compared 2 prompts" in compare.status.text()
    assert "Base answer" in compare.base_card.text.toPlainText() and "Tuned answer" in compare.tuned_card.text.toPlainText()
