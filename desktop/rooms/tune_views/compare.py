"""The Compare tab: a finished run against its base model on held-out prompts.

The engine host writes both replies to each prompt with the same seed and settings (and, with a
reward run chosen, scores them) on the ``tune.compare`` lane, one prompt per request; each pair is
stored in the label store as it arrives, in a prompt set of its own (source ``compare:<run folder>``),
as two candidates: the base model's (``model`` = the base) and the tuned one's (``adapter`` = the run).
So the blind A/B judgements made here are ordinary pair labels: they count in the Elo table and
in the preference data like any other.
"""
from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
    QProgressBar, QPushButton, QSpinBox, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from engines.core.cancel import CancelToken
from engines.core.compare_stats import reward_win_rate
from engines.core.errors import RequestError
from engines.core.events import Progress, Result
from engines.core.requests.tune import CompareRequest
from engines.store.labels import CHAT_THUMBS_SOURCE, Candidate, LabelStore
from desktop.rooms.tune_views.common import Card, FileWorker, TuneJobs, muted, section, system_name
from desktop.rooms.tune_views.label import SYSTEM_PROMPT
from desktop.rooms.tune_views.pairs import PairView, ReplyCard, as_markdown
from desktop.widgets.panels import eliding, scrolling, side_scroll
from engines.store.runs import RunInfo, list_runs
from desktop.widgets.palette import MUTED

COMPARE_SOURCE = "compare:"  # + the run folder
STARTER = "starter"


def compare_job(items: list[tuple[int, object]], request: CompareRequest, seed: int, request_id: str, token: CancelToken):
    """The worker side: one host comparison per prompt; yields Progress and one Result per finished pair."""
    def run(client):
        total = len(items)
        try:
            for i, (prompt_id, prompt) in enumerate(items):
                if token.cancelled:
                    return
                yield Progress(step=i, total=total, message=f"Prompt {i + 1} of {total}: base and tuned replies")
                result = None
                one = dataclasses.replace(request, prompts=[prompt], seed=seed + i, request_id=request_id)
                for event in client.stream_compare(one):
                    if isinstance(event, Result):
                        result = event
                    elif isinstance(event, Progress) and event.message.startswith("Loading"):
                        yield Progress(step=i, total=total, message=event.message)
                if result is None or result.finish_reason == "cancelled" or token.cancelled or not result.data.get("pairs"):
                    return
                yield Result(data={"prompt_id": prompt_id, **result.data["pairs"][0]})
            yield Progress(step=total, total=total, message="Done")
        finally:
            try:
                client.compare_release()  # give the memory back to Chat
            except Exception:  # noqa: BLE001 - the host may be gone; nothing to free then
                pass
    return run


def split_sides(candidates: list[Candidate]) -> tuple[Candidate | None, Candidate | None]:
    """(the base model's reply, the tuned model's reply) among one compared prompt's candidates."""
    base = next((c for c in candidates if not c.adapter), None)
    tuned = next((c for c in candidates if c.adapter), None)
    return base, tuned


class CompareView(QWidget):
    notified = Signal(str, str)
    status_changed = Signal(str)
    labels_changed = Signal()
    runs_listed = Signal()  # the run and reward-model choices were filled from the run folders

    def __init__(self, store: LabelStore, jobs: TuneJobs, host, settings, files: FileWorker,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.jobs, self.host, self.settings, self.files = store, jobs, host, settings, files
        self.rng = random.Random()
        self.runs: dict[str, RunInfo] = {}
        self._job: str | None = None
        self._stop: CancelToken | None = None
        self._written = 0
        self._want_run: str | None = None
        self._prompts = []  # the prompts of the comparison on screen
        self._context: dict = {}  # what the running comparison's replies are stored with
        self._build()
        self.refresh_sources()
        self.refresh_comparisons()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        left = QWidget(objectName="SidePanel")
        left.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side = QVBoxLayout(left)
        side.setContentsMargins(14, 12, 14, 14)
        side.setSpacing(8)
        side.addWidget(section("Tuned model"))
        self.run_box = QComboBox(toolTip="A finished SFT, DPO, KTO or RL run; its base model is the other side")
        side.addWidget(self.run_box)
        side.addWidget(section("Reward model"))
        self.reward_box = QComboBox(toolTip="A finished reward run scores both replies; the win rate follows from the scores")
        side.addWidget(self.reward_box)
        side.addWidget(section("Held-out prompts"))
        self.source_box = QComboBox(toolTip="Prompts the run did not train on work best")
        side.addWidget(self.source_box)
        form = QFormLayout()
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        self.count = QSpinBox(minimum=1, maximum=500, value=10, toolTip="How many prompts of the set to compare on")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.7, decimals=2,
                                          toolTip="Both models sample with the same settings and seed")
        self.max_tokens = QSpinBox(minimum=8, maximum=4096, singleStep=32, value=128)
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0, toolTip="Prompt i uses seed + i, for both models")
        form.addRow("Prompts", self.count)
        form.addRow("Temperature", self.temperature)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        side.addLayout(form)
        buttons = QHBoxLayout()
        self.compare_button = QPushButton("Compare", objectName="Primary")
        self.compare_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", objectName="Danger", enabled=False)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.compare_button, 1)
        buttons.addWidget(self.stop_button)
        side.addLayout(buttons)
        self.progress = QProgressBar(objectName="TuneProgress", textVisible=False, visible=False)
        self.status = muted()
        side.addWidget(self.progress)
        side.addWidget(self.status)
        side.addStretch(1)
        left.setMinimumWidth(280)
        left.setMaximumWidth(330)

        # centre: one comparison, side by side or blind
        head = QVBoxLayout()  # the comparison over its two view buttons: the centre is narrow at the minimum size
        head.setSpacing(6)
        self.comparison_box = eliding(QComboBox(toolTip="Comparisons made so far"), 6)
        self.comparison_box.currentIndexChanged.connect(self._on_comparison_changed)
        head.addWidget(self.comparison_box)
        modes = QHBoxLayout()
        modes.setSpacing(6)
        head.addLayout(modes)
        self.mode_group = QButtonGroup(self)
        for i, (text, tip) in enumerate((("Side by side", "Base on the left, tuned on the right, with reward scores"),
                                         ("Blind A/B", "Which reply is better? Random sides, keys 1 / 2 / T / S / Z"))):
            button = QPushButton(text, objectName="Method", checkable=True, toolTip=tip)
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(text) + 36)
            self.mode_group.addButton(button, i)
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_group.button(0).setChecked(True)
        self.mode_group.idClicked.connect(self.set_mode)

        self.prompt_list = QListWidget(objectName="PromptList")
        self.prompt_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.prompt_list.currentRowChanged.connect(self._show_pair)
        self.prompt_text = QLabel(wordWrap=True, objectName="RoomSubtitle")
        self.base_card, self.tuned_card = ReplyCard("· base", ""), ReplyCard("· tuned", "")
        cards = QHBoxLayout()
        cards.setSpacing(12)
        cards.addWidget(self.base_card, 1)
        cards.addWidget(self.tuned_card, 1)
        pair = QWidget()
        pair_column = QVBoxLayout(pair)
        pair_column.setContentsMargins(0, 0, 0, 0)
        pair_column.addWidget(self.prompt_text)
        pair_column.addLayout(cards, 1)
        self.side_view = QSplitter(Qt.Orientation.Vertical)
        self.side_view.addWidget(self.prompt_list)
        self.side_view.addWidget(pair)
        self.side_view.setSizes([160, 420])
        self.pair_view = PairView(self.store)
        self.pair_view.labelled.connect(self._on_labelled)
        self.mode_stack = QStackedWidget()
        self.mode_stack.addWidget(self.side_view)
        self.mode_stack.addWidget(self.pair_view)
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(20, 14, 20, 16)
        column.setSpacing(12)
        column.addLayout(head)
        column.addWidget(self.mode_stack, 1)

        # right: the verdicts
        right = QWidget(objectName="SidePanel")
        right.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        info = QVBoxLayout(right)
        info.setContentsMargins(14, 12, 14, 14)
        info.setSpacing(10)
        reward = Card("Reward model")
        self.win_rate = QLabel("–", objectName="BigNumber")
        self.win_detail = muted()
        reward.body.addWidget(self.win_rate)
        reward.body.addWidget(self.win_detail)
        info.addWidget(reward)
        judged = Card("Your blind judgements")
        self.judged = QLabel("–", objectName="BigNumber")
        self.judged_detail = muted()
        judged.body.addWidget(self.judged)
        judged.body.addWidget(self.judged_detail)
        info.addWidget(judged)
        elo = Card("Elo by model / adapter")
        self.elo_label = muted()
        self.elo_label.setTextFormat(Qt.TextFormat.RichText)
        elo.body.addWidget(self.elo_label)
        info.addWidget(elo)
        info.addStretch(1)
        right_scroll = side_scroll(right, width=260)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(left)
        layout.addWidget(scrolling(centre), 1)
        layout.addWidget(right_scroll)

    # ------------------------------------------------------------------ choices
    def refresh_runs(self, select: str | None = None) -> None:
        """The finished runs (listed on the file worker)."""
        if select:
            self._want_run = select

        def done(runs, error) -> None:
            if error is not None:
                self.notified.emit("error", f"Cannot list the training runs: {error}")
                return
            self.set_runs(runs)

        self.files.submit(list_runs, done)

    def set_runs(self, runs: list[RunInfo]) -> None:
        finished = [r for r in runs if r.status == "completed" and r.has_adapter]
        self.runs = {str(r.folder): r for r in finished}
        want = self._want_run or self.run_box.currentData()
        self.run_box.clear()
        for run in finished:
            if run.method != "reward":
                self.run_box.addItem(f"{run.name}  ·  {run.method}", str(run.folder))
        if not self.run_box.count():
            self.run_box.addItem("No finished run yet (train one first)", None)
        index = self.run_box.findData(want)
        self.run_box.setCurrentIndex(max(0, index))
        reward = self.reward_box.currentData()
        self.reward_box.clear()
        self.reward_box.addItem("None (no scores)", "")
        for run in finished:
            if run.method == "reward":
                self.reward_box.addItem(run.name, str(run.folder))
        # With a reward run at hand, scores come for free: pick the newest unless the user chose.
        index = self.reward_box.findData(reward) if reward else (1 if self.reward_box.count() > 1 else 0)
        self.reward_box.setCurrentIndex(max(0, index))
        self._want_run = None
        self.runs_listed.emit()

    def want_reward(self, folder: str) -> None:
        """Score with this reward run once the runs are listed (the guided path's own reward model)."""
        index = self.reward_box.findData(folder)
        if index >= 0:
            self.reward_box.setCurrentIndex(index)
        else:
            self.reward_box.addItem(Path(folder).name, folder)
            self.reward_box.setCurrentIndex(self.reward_box.count() - 1)

    def select_run(self, adapter: str) -> None:
        index = self.run_box.findData(adapter)
        if index >= 0:
            self.run_box.setCurrentIndex(index)
        self.refresh_runs(select=adapter)

    def refresh_sources(self) -> None:
        current = self.source_box.currentData()
        self.source_box.clear()
        sets = [s for s in self.store.prompt_sets()
                if s["source"] != CHAT_THUMBS_SOURCE and not s["source"].startswith(COMPARE_SOURCE)]
        if not any(s["source"] == "bundled:starter" for s in sets):
            self.source_box.addItem("Starter prompts (bundled)", STARTER)
        for s in sets:
            self.source_box.addItem(f"{s['name']}  ·  {s['prompts']} prompts", s["id"])
        index = self.source_box.findData(current)
        self.source_box.setCurrentIndex(max(0, index))

    def refresh_comparisons(self, select: int | None = None) -> None:
        current = select if select is not None else self.comparison_box.currentData()
        self.comparison_box.blockSignals(True)
        self.comparison_box.clear()
        for s in self.store.prompt_sets():
            if s["source"].startswith(COMPARE_SOURCE):
                self.comparison_box.addItem(s["name"], s["id"])
        if not self.comparison_box.count():
            self.comparison_box.addItem("No comparison yet", None)
        index = self.comparison_box.findData(current)
        self.comparison_box.setCurrentIndex(index if index >= 0 else self.comparison_box.count() - 1)
        self.comparison_box.blockSignals(False)
        self._on_comparison_changed()

    @property
    def comparison(self) -> int | None:
        return self.comparison_box.currentData()

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self) -> None:
        if self.running:
            return
        adapter = self.run_box.currentData()
        if not adapter:
            self.notified.emit("info", "Choose a finished training run to compare (train one in the Train tab).")
            return
        if not self.host.is_ready:
            self.notified.emit("warning", "The engine host is not ready yet; try again in a moment.")
            return
        source = self.source_box.currentData()
        set_id = self.store.load_starter_set() if source == STARTER else source
        prompts = self.store.prompts(set_id)[: self.count.value()] if set_id is not None else []
        if not prompts:
            self.notified.emit("info", "That prompt set is empty; choose another.")
            return
        run = self.runs[adapter]
        reward = self.reward_box.currentData() or ""
        request = CompareRequest(adapter=adapter, prompts=[p.prompt for p in prompts], reward_model=reward,
                                 temperature=self.temperature.value(), top_p=0.95, max_tokens=self.max_tokens.value(),
                                 seed=self.seed.value(), system_prompt=SYSTEM_PROMPT)
        try:
            request.validate()  # the host checks again; here a wrong setting is told before a job is queued
        except RequestError as exc:
            self.notified.emit("warning", str(exc))
            return
        name = f"Compare · {run.name} · {time.strftime('%d %b %H:%M')}"
        compare_id = self.store.create_prompt_set(name, source=COMPARE_SOURCE + adapter)
        ids = self.store.add_prompts(compare_id, [p.prompt for p in prompts],
                                     [{"from_prompt": p.id, "reward_model": reward} for p in prompts])
        self._context = {"base_model": run.base_model or "default", "adapter": adapter, "reward_model": reward,
                         "sampling": {"temperature": request.temperature, "top_p": request.top_p,
                                      "max_tokens": request.max_tokens}}
        self._stop = CancelToken()
        self._written = 0
        request_id = f"compare-{random.getrandbits(48):012x}"
        items = [(pid, p.prompt) for pid, p in zip(ids, prompts)]
        self._job = self.jobs.stream("compare", compare_job(items, request, self.seed.value(), request_id, self._stop),
                                     self._on_event, label=f"Comparing {run.name} with its base model",
                                     on_done=self._on_done, request_id=request_id, token=self._stop)
        self.refresh_sources()
        self.refresh_comparisons(select=compare_id)
        self.progress.setRange(0, len(items))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText(f"Waiting for the models… 0 of {len(items)} prompts")
        self.compare_button.setEnabled(False)
        self.stop_button.setEnabled(True)

    def stop(self) -> None:
        if self._job:
            self.jobs.cancel(self._job)
            self.status.setText("Stopping…")

    def _on_event(self, event) -> None:
        if isinstance(event, Progress):
            self.progress.setValue(event.step)
            self.status.setText(f"{event.message} · {self._written} done")
            self.status_changed.emit(event.message)
        elif isinstance(event, Result):
            d, ctx = event.data, self._context
            seed = d.get("seed")
            for side, text, adapter in (("base", d["base"], ""), ("tuned", d["tuned"], ctx["adapter"])):
                meta = {"compare_side": side, "reward_model": ctx["reward_model"]}
                if f"{side}_score" in d:
                    meta["reward_score"] = d[f"{side}_score"]
                self.store.add_candidate(d["prompt_id"], text, model=ctx["base_model"], adapter=adapter,
                                         sampling=ctx["sampling"], seed=seed, meta=meta)
            self._written += 1
            self._refresh_pairs()

    def _on_done(self, how: str, error) -> None:
        self._job = None
        self.compare_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.setVisible(False)
        text = {"finished": f"Compared {self._written} prompts.", "cancelled": f"Stopped; {self._written} prompts compared.",
                "failed": f"Stopped by an error; {self._written} prompts compared."}[how]
        self.status.setText(text)
        self.status_changed.emit(text)
        if error is not None:
            self.notified.emit("error", f"Comparing failed: {error}")
        self._refresh_pairs()

    # ------------------------------------------------------------------ showing
    def set_mode(self, index: int) -> None:
        self.mode_group.button(index).setChecked(True)
        self.mode_stack.setCurrentIndex(index)
        if index == 1:
            self.pair_view.load(self.comparison)
            self.pair_view.setFocus()

    def _on_comparison_changed(self, *_args) -> None:
        self._refresh_pairs(rebuild=True)

    def _refresh_pairs(self, rebuild: bool = False) -> None:
        row = self.prompt_list.currentRow()
        self.prompt_list.blockSignals(True)
        self.prompt_list.clear()
        self._prompts = self.store.prompts(self.comparison) if self.comparison is not None else []
        for i, prompt in enumerate(self._prompts):
            base, tuned = split_sides(self.store.candidates(prompt.id))
            mark = "…" if tuned is None else "✓"
            item = QListWidgetItem(f"{mark}  {i + 1}.  {' '.join(as_markdown(prompt.prompt).split())}")
            item.setToolTip(as_markdown(prompt.prompt)[:600])
            self.prompt_list.addItem(item)
        self.prompt_list.blockSignals(False)
        if self._prompts:
            self.prompt_list.setCurrentRow(0 if rebuild or row < 0 else min(row, len(self._prompts) - 1))
        self._show_pair(self.prompt_list.currentRow())
        if rebuild or self.pair_view.current is None:
            self.pair_view.load(self.comparison)
        self.refresh_stats()

    def _show_pair(self, row: int) -> None:
        if not 0 <= row < len(self._prompts):
            self.prompt_text.setText("")
            self.base_card.set_text("")
            self.tuned_card.set_text("")
            return
        prompt = self._prompts[row]
        self.prompt_text.setText(as_markdown(prompt.prompt))
        base, tuned = split_sides(self.store.candidates(prompt.id))
        for card, candidate in ((self.base_card, base), (self.tuned_card, tuned)):
            if candidate is None:
                card.set_text("*(not written yet)*")
                continue
            score = candidate.meta.get("reward_score")
            head = f"*reward {score:+.3f}*\n\n" if isinstance(score, (int, float)) else ""
            card.set_text(head + as_markdown(candidate.completion))

    def _on_labelled(self) -> None:
        self.refresh_stats()
        self.labels_changed.emit()

    def refresh_stats(self) -> None:
        """The reward-model win rate and the blind judgements of this comparison; Elo over every label."""
        scores, tuned_ids = [], set()
        prompt_ids = {p.id for p in self._prompts}
        for prompt in self._prompts:
            base, tuned = split_sides(self.store.candidates(prompt.id))
            if tuned is not None:
                tuned_ids.add(tuned.id)
            if base is not None and tuned is not None and "reward_score" in base.meta and "reward_score" in tuned.meta:
                scores.append((base.meta["reward_score"], tuned.meta["reward_score"]))
        summary = reward_win_rate(scores)
        if summary["win_rate"] is None:
            self.win_rate.setText("–")
            self.win_detail.setText("Choose a reward run before comparing to score the replies.")
        else:
            self.win_rate.setText(f"{summary['win_rate']:.0%}")
            self.win_detail.setText(f"tuned wins {summary['wins']}, loses {summary['losses']}, ties {summary['ties']} "
                                    f"of {summary['pairs']} · mean reward {summary['mean_base']:+.3f} → {summary['mean_tuned']:+.3f}")
        wins = losses = ties = 0
        for label in self.store.labels(kind="pair"):
            if label.prompt_id not in prompt_ids or label.outcome == "skip":
                continue
            if label.outcome == "tie":
                ties += 1
                continue
            winner = label.a_id if label.outcome == "a" else label.b_id
            if winner in tuned_ids:
                wins += 1
            else:
                losses += 1
        judged = wins + losses + ties
        self.judged.setText(f"{(wins + 0.5 * ties) / judged:.0%}" if judged else "–")
        self.judged_detail.setText(f"you preferred the tuned reply {wins}×, the base {losses}×, {ties} ties"
                                   if judged else "Judge the replies blind (Blind A/B) to see which you prefer.")
        rows = []
        for name, row in list(self.store.elo().items())[:8]:
            rows.append(f"<tr><td>{system_name(name)}</td><td align='right'>&nbsp;&nbsp;<b>{row['rating']:.0f}</b></td>"
                        f"<td align='right' style=f'color:{MUTED}'>&nbsp;&nbsp;{row['games']} games</td></tr>")
        self.elo_label.setText("<table>" + "".join(rows) + "</table>" if rows else
                               "Ratings appear once replies of two models are judged.")

    def shutdown(self) -> None:
        self.stop()
