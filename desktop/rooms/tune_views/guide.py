"""The guided path "Teach the model a preference": a strip over the Tune room's tabs that walks a new
user through the whole loop with the demo preference of ``engines.core.preference_demo``.

Replies (Label tab, written by the engine host) -> labels (by hand, or by the scripted labeler the
user watches label pair after pair in the same A/B view, every label marked ``labeler: scripted``)
-> reward model -> DPO -> RL (Train tab: the same form, run, live curves and run list as by hand)
-> Compare (base and RL replies side by side, same seed, scored by the reward model). Before each
step the strip says what it will do and about how long it takes. The guide only drives the views
the room already has; it never trains or generates by itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from engines.core import preference_demo as demo
from engines.store.labels import STARTER_PROMPTS
from engines.core.events import Event, Metric
from engines.store.runs import read_events
from desktop.rooms.tune_views.common import human_seconds, set_state
from desktop.widgets.panels import WrappedLabel
from desktop.rooms.tune_views.pairs import as_markdown

STEPS = ("replies", "label", "reward", "dpo", "rl", "compare")
STEP_TITLES = {"replies": "1 · Replies", "label": "2 · Labels", "reward": "3 · Reward model", "dpo": "4 · DPO",
               "rl": "5 · RL", "compare": "6 · Compare"}
# The bundled model through llama.cpp on a 2-core CPU writes about this many tokens a second.
TOKENS_PER_S = 60.0


@dataclass
class GuideSettings:
    """The guide's settings: sized so the bundled SmolLM2 learns "short answers" on a CPU in minutes
    (the same scale as ``benchmarks/rlhf_demo.py --quick``)."""

    replies_per_prompt: int = 4
    reply_tokens: int = 64
    label_interval_ms: int = 400  # the scripted labeler's pace: slow enough to watch
    compare_prompts: int = 12
    common: dict = field(default_factory=lambda: {
        "base_model": "default", "lora_r": 16, "lora_alpha": 32, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "max_length": 192, "device": "auto", "save_steps": 50})
    methods: dict = field(default_factory=lambda: {
        "reward": {"steps": 40, "batch": 8},
        "dpo": {"steps": 30, "batch": 4},
        "rl": {"steps": 24, "batch": 8, "generations": 4, "completion_tokens": 64, "learning_rate": demo.RL_LEARNING_RATE},
    })


class GuidePanel(QFrame):
    """The strip; ``room`` is the TuneRoom whose views it drives."""

    step_changed = Signal(str)

    def __init__(self, room, settings: GuideSettings | None = None) -> None:
        super().__init__(objectName="TuneCard")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.room = room
        self.settings = settings or GuideSettings()
        self.step = STEPS[0]
        self.runs: dict[str, str] = {}  # method -> finished run folder
        self.scripted_labels = 0
        self._training: str | None = None
        self._compare_pending: str | None = None
        self._label_timer = QTimer(self, interval=self.settings.label_interval_ms)
        self._label_timer.timeout.connect(self._scripted_tick)

        column = QVBoxLayout(self)
        column.setContentsMargins(16, 10, 16, 12)
        column.setSpacing(6)
        head = QHBoxLayout()  # the title and Close on one row, the steps on their own: both fit a 900-px window
        head.addWidget(QLabel(f"Teach the model a preference: {demo.TITLE.lower()}", objectName="RoomSubtitle"), 1)
        close = QPushButton("Close guide", objectName="Flat")
        close.clicked.connect(self.hide)
        head.addWidget(close)
        column.addLayout(head)
        chips = QHBoxLayout()
        self.chips: dict[str, QLabel] = {}
        for step in STEPS:
            chip = QLabel(STEP_TITLES[step], objectName="GuideChip")
            self.chips[step] = chip
            chips.addWidget(chip)
        chips.addStretch(1)
        column.addLayout(chips)
        # wrapped labels that keep their full height when the window is short (the tabs below give way)
        self.text = WrappedLabel(objectName="Muted")
        self.estimate = WrappedLabel(objectName="Estimate")
        self.banner = WrappedLabel(objectName="ScriptedBanner", visible=False)
        self.result = WrappedLabel(objectName="Good", visible=False)
        for widget in (self.text, self.banner, self.result, self.estimate):
            column.addWidget(widget)
        buttons = QHBoxLayout()
        self.primary = QPushButton("", objectName="Primary")
        self.primary.clicked.connect(self._go)
        self.secondary = QPushButton("", visible=False)
        self.secondary.clicked.connect(self._go_secondary)
        buttons.addWidget(self.primary)
        buttons.addWidget(self.secondary)
        buttons.addStretch(1)
        column.addLayout(buttons)

        room.label_view.replies_written.connect(self._on_replies_written)
        room.train_view.run_finished.connect(self._on_run_finished)
        room.compare_view.runs_listed.connect(self._on_compare_runs_listed)
        self.show_step(STEPS[0])

    # ------------------------------------------------------------------ steps
    def show_step(self, step: str) -> None:
        self.step = step
        for name, chip in self.chips.items():
            state = "done" if STEPS.index(name) < STEPS.index(step) else "current" if name == step else "todo"
            set_state(chip, "state", state)
        self.secondary.setVisible(False)
        self.primary.setEnabled(True)
        getattr(self, f"_show_{step}")()
        self.step_changed.emit(step)

    def _show_replies(self) -> None:
        k, tokens = self.settings.replies_per_prompt, self.settings.reply_tokens
        self.text.setText(f"The model you chat with writes {k} replies to each prompt of the set on the Label tab (the "
                          f"starter prompts if none is chosen), each with its own seed. The preference to teach: "
                          f"{demo.TITLE.lower()}. {demo.DESCRIPTION} So that pairs differ clearly, every other reply is "
                          f"written with “{demo.BRIEF_HINT}” added to the system prompt (recorded with the reply); the "
                          f"training data keeps your plain prompt, so the tuned model learns to be brief unasked.")
        missing = self._missing_replies()
        self.estimate.setText(f"Before you start: {missing} replies of up to {tokens} tokens, about "
                              f"{human_seconds(missing * tokens / TOKENS_PER_S)} (at ~{TOKENS_PER_S:.0f} tokens/s on a CPU).")
        self.primary.setText("Write the replies")

    def _show_label(self) -> None:
        pairs = len(self.room.label_view.pair_view.tasks)
        self.text.setText("Now say which reply of each pair is better. Label them yourself in the A/B view below "
                          "(keys 1, 2, T), or let the scripted labeler do it while you watch: it follows one fixed rule, "
                          f"“{demo.LABELER_NAME.split(': ', 1)[1]}”, and its labels are marked as scripted in your label store.")
        self.estimate.setText(f"{pairs} pairs to label: about {human_seconds(pairs * self.settings.label_interval_ms / 1000)} "
                              f"for the scripted labeler, a few seconds each by hand.")
        self.primary.setText("Watch the scripted labeler")
        self.secondary.setText("I labelled them: go on")
        self.secondary.setVisible(True)

    def _show_training(self, method: str, what: str) -> None:
        self._configure(method)
        estimate = self.room.train_view.time_estimate()
        when = estimate[1] if estimate else "(the form has an error; see the Train tab)"
        self.text.setText(what)
        self.estimate.setText(f"Before you start: {self.room.train_view.dataset_info.text()}; time {when}.")
        self.primary.setText({"reward": "Train the reward model", "dpo": "Train with DPO", "rl": "Train with RL"}[method])

    def _show_reward(self) -> None:
        self._show_training("reward", "A reward model learns to score replies the way the labels do. The curves show its "
                                      "accuracy on the pairs it trains on; the run list keeps it for RL.")

    def _show_dpo(self) -> None:
        self._show_training("dpo", "DPO tunes the model straight from the pairs: towards the chosen reply, away from the "
                                   "rejected one, with a LoRA adapter (the base model stays as it is).")

    def _show_rl(self) -> None:
        self._show_training("rl", "RL (RLOO): the model writes replies, the reward model scores them, and better-scored "
                                  "replies become more likely. Watch the KL / reward panel: the reward rises while the KL "
                                  "(how far the model moved from the base) stays small.")

    def _show_compare(self) -> None:
        n, tokens = self.settings.compare_prompts, self.room.compare_view.max_tokens.value()
        self.text.setText("See the change: the Compare tab writes the base model's and the RL-tuned model's replies to the "
                          "same prompts with the same seed, side by side, scored by your reward model. The DPO run can be "
                          "compared the same way (choose it in the Compare tab).")
        self.estimate.setText(f"Before you start: {n} prompts × 2 replies of up to {tokens} tokens, about "
                              f"{human_seconds(2 * n * tokens / TOKENS_PER_S)}.")
        self.primary.setText("Compare before and after")

    # ------------------------------------------------------------------ actions
    def _go(self) -> None:
        getattr(self, f"_start_{self.step}")()

    def _go_secondary(self) -> None:  # the label step: labelled by hand
        self._label_timer.stop()
        if not self.room.store.counts().get("preference_pairs"):
            self.room.notified.emit("info", "No preference pairs yet: label a few pairs (1 or 2, not only ties) first.")
            return
        self.show_step("reward")

    def _start_replies(self) -> None:
        label = self.room.label_view
        if label.set_id is None:
            label.add_starter()
        label.brief_hint = True
        label.k_spin.setValue(self.settings.replies_per_prompt)
        label.max_tokens.setValue(self.settings.reply_tokens)
        self.room.show_tab(0)
        label.generate()
        if label.generating:
            self.primary.setEnabled(False)
            self.estimate.setText("Writing replies… (the Label tab shows each one as it arrives)")

    def _on_replies_written(self, how: str) -> None:
        self.room.label_view.brief_hint = False
        if self.step == "replies" and self.isVisible() and not self.primary.isEnabled():
            if how == "finished":
                self.show_step("label")
            else:
                self.primary.setEnabled(True)

    def _start_label(self) -> None:
        self.room.show_tab(0)
        self.room.label_view.set_mode(0)
        self.banner.setText(f"🤖 {demo.LABELER_NAME}. These labels are not yours: each one is stored with "
                            "“labeler: scripted”. Undo (Z) takes any of them back.")
        self.banner.setVisible(True)
        self.primary.setEnabled(False)
        self._label_timer.start()

    def _scripted_tick(self) -> None:
        view = self.room.label_view.pair_view
        task = view.current
        if task is None:
            self._label_timer.stop()
            self.banner.setText(f"🤖 The scripted labeler labelled {self.scripted_labels} pairs "
                                f"({self.room.store.counts().get('preference_pairs', 0)} preference pairs in your store).")
            self.show_step("reward")
            return
        outcome = demo.scripted_judgement(as_markdown(task.left.completion), as_markdown(task.right.completion))
        view.choose(outcome, meta={"labeler": "scripted"})
        self.scripted_labels += 1

    def _configure(self, method: str) -> None:
        values = {**self.settings.common, **self.settings.methods[method], "method": method,
                  "run_name": f"guide-{method}-{time.strftime('%Y%m%d-%H%M%S')}"}
        if method == "rl":
            values["reward_model"] = self.runs.get("reward")
        self.room.train_view.apply_settings(values)

    def _start_training(self, method: str) -> None:
        self._configure(method)
        train = self.room.train_view
        self.room.show_tab(1)
        train.start()
        if train.running or not train.start_button.isEnabled():  # started, or exporting the labels first
            self._training = method
            self.primary.setEnabled(False)
            self.estimate.setText(f"Training {method}… the curves below update at every step.")

    def _start_reward(self) -> None:
        self._start_training("reward")

    def _start_dpo(self) -> None:
        self._start_training("dpo")

    def _start_rl(self) -> None:
        self._start_training("rl")

    def _on_run_finished(self, run_dir: str, outcome: str) -> None:
        method, self._training = self._training, None
        if method is None:
            return
        if outcome != "completed":
            self.primary.setEnabled(True)
            self.estimate.setText(f"The {method} run {outcome}; see the Train tab's log, then try again.")
            return
        self.runs[method] = run_dir
        if method == "rl":
            self.room.files.submit(lambda: read_events(Path(run_dir)), self._show_rl_result)
        self.show_step(STEPS[STEPS.index(method) + 1])

    def _show_rl_result(self, events, error) -> None:
        if error is not None:
            return
        summary = rl_summary(events)
        if summary:
            self.result.setText(summary)
            self.result.setVisible(True)

    def _start_compare(self) -> None:
        self._compare_pending = self.runs.get("rl") or self.runs.get("dpo")
        compare = self.room.compare_view
        compare.count.setValue(self.settings.compare_prompts)
        reward = self.runs.get("reward")
        if reward:
            compare.want_reward(reward)
        self.room.compare_run(self._compare_pending)  # lists the runs, then _on_compare_runs_listed starts

    def _on_compare_runs_listed(self) -> None:
        adapter, self._compare_pending = self._compare_pending, None
        if adapter is None:
            return
        compare = self.room.compare_view
        if compare.run_box.currentData() != adapter:
            self.room.notified.emit("warning", f"The run {adapter} is not among the finished runs; choose it in Compare.")
            return
        compare.start()
        self.primary.setEnabled(not compare.running)
        self.estimate.setText("Comparing… each pair appears on the left as it is written; blind A/B labels count too.")

    # ------------------------------------------------------------------ helpers
    def _missing_replies(self) -> int:
        store, label = self.room.store, self.room.label_view
        k = self.settings.replies_per_prompt
        if label.set_id is None:  # the starter set, added when the step starts
            return k * sum(1 for line in STARTER_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip())
        return sum(max(0, k - len(store.candidates(p.id))) for p in store.prompts(label.set_id))

    def hideEvent(self, event) -> None:
        self._label_timer.stop()  # another room (or Close guide): the labeler pauses...
        super().hideEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.step == "label" and self.banner.isVisible() and not self.primary.isEnabled():
            self._label_timer.start()  # ...and goes on where it stopped


def rl_summary(events: list[Event]) -> str:
    """"Reward rose from a to b; KL stayed below c" from an RL run's Metric events ('' without them)."""
    by_step: dict[int, dict[str, float]] = {}
    for event in events:
        if isinstance(event, Metric) and event.name in ("reward", "kl"):
            by_step.setdefault(event.step, {})[event.name] = event.value
    steps = [by_step[k] for k in sorted(by_step) if len(by_step[k]) == 2]
    if len(steps) < 2:
        return ""
    quarter = max(1, len(steps) // 4)
    first = sum(e["reward"] for e in steps[:quarter]) / quarter
    last = sum(e["reward"] for e in steps[-quarter:]) / quarter
    kl = max(e["kl"] for e in steps)
    verb = "rose" if last > first else "did not rise"
    return (f"RL: the reward model's mean score {verb} from {first:.2f} (first quarter of the steps) to {last:.2f} "
            f"(last quarter) while the KL to the base stayed at or below {kl:.3f}.")
