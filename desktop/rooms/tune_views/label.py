"""The Label tab: choose a prompt set, have the loaded model write K replies per prompt, then label
them (blind A/B or K-way ranking); counts, Elo and exports on the right.

Replies are written by the engine host (``/hearth/chat``) on the ``tune.generate`` lane; each one
that arrives is stored at once on the GUI thread, so stopping (or a crash) keeps what was written.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QMessageBox, QProgressBar, QPushButton, QSpinBox, QStackedWidget, QVBoxLayout, QWidget,
)

from engines.core import preference_demo as demo
from engines.core.cancel import CancelToken
from engines.core.errors import HearthError, RequestError
from engines.core.events import Progress, Result
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT, ChatRequest
from engines.store.labels import CHAT_THUMBS_SOURCE, LabelStore
from desktop.rooms.tune_views.common import Card, TuneJobs, muted, section, system_name
from desktop.rooms.tune_views.pairs import PairView, as_markdown
from desktop.rooms.tune_views.ranking import RankView
from desktop.widgets.panels import scrolling, side_scroll
from desktop.widgets.palette import MUTED

SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT  # what training jobs add to plain-text prompts, too


def generation_work(store: LabelStore, set_id: int, k: int, t_low: float, t_high: float, rng: random.Random,
                    brief_hint: bool = False) -> list[dict]:
    """One entry per missing reply: each prompt gets up to ``k``, temperatures spread from low to high.
    ``brief_hint`` (the guided path): every other reply is written with the demo preference's brevity
    hint in the system prompt (``engines.core.preference_demo``); the stored prompt stays plain."""
    work = []
    for prompt in store.prompts(set_id):
        have = len(store.candidates(prompt.id))
        base = [{"role": "user", "content": prompt.prompt}] if isinstance(prompt.prompt, str) else list(prompt.prompt)
        for i in range(have, k):
            messages = list(base)
            if not any(m["role"] == "system" for m in messages):
                system = demo.reply_system_prompt(SYSTEM_PROMPT, i) if brief_hint else SYSTEM_PROMPT
                messages.insert(0, {"role": "system", "content": system})
            temperature = t_low if k == 1 else t_low + (t_high - t_low) * i / (k - 1)
            work.append({"prompt_id": prompt.id, "messages": messages, "temperature": round(temperature, 3),
                         "seed": rng.randrange(2 ** 31)})
    return work


def generation_job(work: list[dict], model: str, max_tokens: int, request_id: str, token: CancelToken):
    """The worker side: one host chat per reply; yields Progress and one Result per finished reply."""
    def run(client):
        total = len(work)
        for i, item in enumerate(work):
            if token.cancelled:
                return
            yield Progress(step=i, total=total, message=f"Writing reply {i + 1} of {total}")
            request = ChatRequest(request_id=request_id, model=model, messages=item["messages"], temperature=item["temperature"],
                                  top_p=0.95, seed=item["seed"], max_tokens=max_tokens)
            result = None
            for event in client.stream_chat(request):
                if isinstance(event, Result):
                    result = event
            if result is None or result.finish_reason == "cancelled" or token.cancelled:
                return  # a reply cut off by Stop is not a sample of the model
            yield Result(finish_reason=result.finish_reason,
                         data={"prompt_id": item["prompt_id"], "text": result.data.get("text", ""),
                               "temperature": item["temperature"], "seed": item["seed"], "max_tokens": max_tokens,
                               "model": model, "system_prompt": item["messages"][0]["content"]
                               if item["messages"][0]["role"] == "system" else None})
        yield Progress(step=total, total=total, message="Done")
    return run


def _stat(value: str, caption: str) -> QWidget:
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    number = QLabel(value, objectName="BigNumber")
    column.addWidget(number)
    column.addWidget(QLabel(caption, objectName="BigNumberCaption"))
    box.number = number
    return box


class LabelView(QWidget):
    notified = Signal(str, str)
    status_changed = Signal(str)
    labels_changed = Signal()
    replies_written = Signal(str)  # a "Write replies" run ended: finished, cancelled or failed

    def __init__(self, store: LabelStore, jobs: TuneJobs, host, settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store, self.jobs, self.host, self.settings = store, jobs, host, settings
        self.rng = random.Random()
        self.brief_hint = False  # the guided path: every other reply written with the demo's brevity hint
        self._gen_job: str | None = None
        self._gen_stop: CancelToken | None = None
        self._gen_written = 0
        self._build()
        self.refresh_sets(select=self.settings.get("tune.prompt_set", None))

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        left = QWidget(objectName="SidePanel")
        left.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        side = QVBoxLayout(left)
        side.setContentsMargins(14, 12, 14, 14)
        side.setSpacing(8)
        side.addWidget(section("Prompt set"))
        self.set_box = QComboBox()
        self.set_box.currentIndexChanged.connect(self._on_set_changed)
        side.addWidget(self.set_box)
        row = QGridLayout()  # two to a row: the panel is narrow at the window's minimum size
        row.setSpacing(6)
        for i, (text, tip, slot) in enumerate((
                ("Starter set", "The 52 varied prompts that come with Hearth", self.add_starter),
                ("Import…", "A CSV (a 'prompt' column) or JSONL file ('prompt' or 'text')", self.import_prompts),
                ("From chat", "Your recent questions in Chat", self.add_from_history))):
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(slot)
            row.addWidget(button, i // 2, i % 2)
        side.addLayout(row)
        self.prompt_list = QListWidget(objectName="PromptList")
        self.prompt_list.setWordWrap(False)
        self.prompt_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.prompt_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        side.addWidget(self.prompt_list, 1)

        side.addWidget(section("Replies"))
        form = QFormLayout()
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        self.k_spin = QSpinBox(minimum=2, maximum=8, value=int(self.settings.get("tune.k", 2) or 2),
                               toolTip="Replies the model writes per prompt (3 or more allow ranking)")
        self.t_low = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.6, decimals=2)
        self.t_high = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=1.1, decimals=2)
        temps = QHBoxLayout()
        temps.addWidget(self.t_low)
        temps.addWidget(QLabel("→"))
        temps.addWidget(self.t_high)
        self.max_tokens = QSpinBox(minimum=16, maximum=4096, singleStep=32, value=256)
        form.addRow("Per prompt", self.k_spin)
        form.addRow("Temperature", temps)
        form.addRow("Max tokens", self.max_tokens)
        side.addLayout(form)
        self.model_label = muted()
        side.addWidget(self.model_label)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate replies", objectName="Primary")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop", objectName="Danger", enabled=False)
        self.stop_button.clicked.connect(self.stop_generation)
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.stop_button)
        side.addLayout(buttons)
        self.gen_progress = QProgressBar(objectName="TuneProgress", textVisible=False, visible=False)
        self.gen_status = muted()
        side.addWidget(self.gen_progress)
        side.addWidget(self.gen_status)
        left.setMinimumWidth(290)
        left.setMaximumWidth(340)

        # centre: the labelling views
        self.pair_view = PairView(self.store)
        self.rank_view = RankView(self.store)
        for view in (self.pair_view, self.rank_view):
            view.labelled.connect(self._on_labelled)
        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        modes.setSpacing(6)
        for i, (text, tip) in enumerate((("A / B", "Pick the better of two replies, shown in random order"),
                                         ("Rank", "Drag three or more replies into order"))):
            button = QPushButton(text, objectName="Method", checkable=True, toolTip=tip)
            self.mode_group.addButton(button, i)
            modes.addWidget(button)
        modes.addStretch(1)
        modes.addWidget(muted("Keys: 1 / 2 pick · T tie · S skip · Z undo", wrap=False))
        self.mode_group.button(0).setChecked(True)
        self.mode_stack = QStackedWidget()
        self.mode_stack.addWidget(self.pair_view)
        self.mode_stack.addWidget(self.rank_view)
        self.mode_group.idClicked.connect(self.set_mode)
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(20, 14, 20, 16)
        column.setSpacing(12)
        column.addLayout(modes)
        column.addWidget(self.mode_stack, 1)

        # right: counts, Elo, export
        right = QWidget(objectName="SidePanel")
        right.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        info = QVBoxLayout(right)
        info.setContentsMargins(14, 12, 14, 14)
        info.setSpacing(10)
        counts = Card("Labels")
        grid = QGridLayout()
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(8)
        self.stats = {}
        for i, (key, caption) in enumerate((("preference_pairs", "preference pairs"), ("rankings", "rankings"),
                                            ("ties", "ties"), ("skips", "skipped"),
                                            ("thumbs_up", "thumbs up"), ("thumbs_down", "thumbs down"))):
            self.stats[key] = _stat("0", caption)
            grid.addWidget(self.stats[key], i // 2, i % 2)
        counts.body.addLayout(grid)
        self.set_progress = muted()
        counts.body.addWidget(self.set_progress)
        info.addWidget(counts)
        elo = Card("Elo by model")
        self.elo_label = muted()
        self.elo_label.setTextFormat(Qt.TextFormat.RichText)
        elo.body.addWidget(self.elo_label)
        info.addWidget(elo)
        export = Card("Export / import")
        for text, tip, kind in (("Preference pairs (TRL)…", "prompt / chosen / rejected JSONL for reward, DPO", "preference"),
                                ("Unpaired (KTO)…", "prompt / completion / label JSONL: thumbs, plus each pair as good + bad", "unpaired"),
                                ("Rankings (OpenAssistant)…", "ranked reply trees, pairs included", "rankings")):
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(lambda _=False, k=kind: self.export_labels(k))
            export.body.addWidget(button)
        importer = QPushButton("Import labels…", objectName="Flat", toolTip="A JSONL file in one of the formats above")
        importer.clicked.connect(self.import_labels)
        export.body.addWidget(importer)
        info.addWidget(export)
        info.addStretch(1)
        right_scroll = side_scroll(right, width=270)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(side_scroll(left, width=300))
        layout.addWidget(scrolling(centre), 1)
        layout.addWidget(right_scroll)
        self.update_model_label()

    # ------------------------------------------------------------------ prompt sets
    @property
    def set_id(self) -> int | None:
        return self.set_box.currentData()

    def refresh_sets(self, select: int | None = None) -> None:
        current = select if select is not None else self.set_id
        self.set_box.blockSignals(True)
        self.set_box.clear()
        for s in self.store.prompt_sets():
            if s["source"] == CHAT_THUMBS_SOURCE:
                continue  # Chat's thumbed replies: counted, not a set to generate for
            self.set_box.addItem(f"{s['name']}  ·  {s['prompts']} prompts", s["id"])
        index = self.set_box.findData(current)
        self.set_box.setCurrentIndex(index if index >= 0 else self.set_box.count() - 1)
        self.set_box.blockSignals(False)
        self._on_set_changed()

    def _on_set_changed(self, *_args) -> None:
        if self.set_id is not None:
            self.settings.set("tune.prompt_set", self.set_id)
        self.refresh_prompts()
        self.pair_view.load(self.set_id)
        self.rank_view.load(self.set_id)
        self.refresh_counts()

    def refresh_prompts(self) -> None:
        self.prompt_list.clear()
        if self.set_id is None:
            return
        for prompt in self.store.prompts(self.set_id):
            n = len(self.store.candidates(prompt.id))
            text = " ".join(as_markdown(prompt.prompt).split())
            item = QListWidgetItem(f"{n}  ·  {text}")
            item.setToolTip(as_markdown(prompt.prompt)[:600])
            self.prompt_list.addItem(item)

    def add_starter(self) -> None:
        self.refresh_sets(select=self.store.load_starter_set())

    def add_from_history(self) -> None:
        try:
            set_id = self.store.prompts_from_history()
        except HearthError as exc:
            self.notified.emit("warning", str(exc))
            return
        self.refresh_sets(select=set_id)

    def import_prompts(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Import prompts", str(Path.home()), "Prompts (*.jsonl *.csv *.json)")
        if not path:
            return
        try:
            report = self.store.import_prompts(path)
        except RequestError as exc:
            if "line" not in str(exc):
                self.notified.emit("error", str(exc))
                return
            answer = QMessageBox.question(self, "Malformed lines", f"{exc}\n\nSkip the malformed lines and import the rest?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            try:
                report = self.store.import_prompts(path, on_error="skip")
            except HearthError as again:
                self.notified.emit("error", str(again))
                return
        self.notified.emit("warning" if report.errors else "info", report.describe())
        self.refresh_sets(select=report.set_id)

    # ------------------------------------------------------------------ generation
    def current_model(self) -> str:
        return self.host.loaded_model or self.settings.get("last_model") or "default"

    def update_model_label(self) -> None:
        model = self.current_model()
        name = "the bundled SmolLM2" if model == "default" else Path(model).name
        self.model_label.setText(f"Written by {name} (the model chosen in Chat), with a different seed per reply.")

    @property
    def generating(self) -> bool:
        return self._gen_job is not None

    def generate(self) -> None:
        if self.generating or self.set_id is None:
            if self.set_id is None:
                self.notified.emit("info", "Choose or import a prompt set first.")
            return
        if not self.host.is_ready:
            self.notified.emit("warning", "The engine host is not ready yet; try again in a moment.")
            return
        self.settings.set("tune.k", self.k_spin.value())
        work = generation_work(self.store, self.set_id, self.k_spin.value(), self.t_low.value(), self.t_high.value(), self.rng,
                               brief_hint=self.brief_hint)
        if not work:
            self.notified.emit("info", f"Every prompt already has {self.k_spin.value()} replies; raise “Per prompt” for more.")
            return
        model = self.current_model()
        self.update_model_label()
        self._gen_stop = CancelToken()
        self._gen_written = 0
        request_id = f"tune-{random.getrandbits(48):012x}"
        self._gen_job = self.jobs.stream("generate", generation_job(work, model, self.max_tokens.value(), request_id, self._gen_stop),
                                         self._on_gen_event, label="Writing replies to label", on_done=self._on_gen_done,
                                         request_id=request_id, token=self._gen_stop)
        self.gen_progress.setRange(0, len(work))
        self.gen_progress.setValue(0)
        self.gen_progress.setVisible(True)
        self.gen_status.setText(f"Waiting for the model… 0 of {len(work)} replies")
        self._set_generating(True)

    def stop_generation(self) -> None:
        if self._gen_job:
            self.jobs.cancel(self._gen_job)
            self.gen_status.setText("Stopping…")

    def _set_generating(self, on: bool) -> None:
        self.generate_button.setEnabled(not on)
        self.stop_button.setEnabled(on)

    def _on_gen_event(self, event) -> None:
        if isinstance(event, Progress):
            self.gen_progress.setValue(event.step)
            self.gen_status.setText(f"{event.message} · {self._gen_written} stored")
            self.status_changed.emit(event.message)
        elif isinstance(event, Result):
            d = event.data
            try:
                self.store.add_candidate(d["prompt_id"], d["text"], model=d["model"],
                                         sampling={"temperature": d["temperature"], "top_p": 0.95, "max_tokens": d["max_tokens"]},
                                         seed=d["seed"], meta={"finish_reason": event.finish_reason,
                                                                "system_prompt": d.get("system_prompt")})
            except HearthError:
                return  # the prompt set was deleted meanwhile
            self._gen_written += 1
            if self.pair_view.current is None or self.mode_stack.currentWidget() is self.rank_view and self.rank_view.current is None:
                self._reload_views()  # nothing on screen: show the first pair as soon as it exists

    def _on_gen_done(self, how: str, error) -> None:
        self._gen_job = None
        self._set_generating(False)
        self.gen_progress.setVisible(False)
        text = {"finished": f"Wrote {self._gen_written} replies.", "cancelled": f"Stopped; {self._gen_written} replies kept.",
                "failed": f"Stopped by an error; {self._gen_written} replies kept."}[how]
        self.gen_status.setText(text)
        self.status_changed.emit(text)
        if error is not None:
            self.notified.emit("error", f"Writing replies failed: {error}")
        self._reload_views()
        self.replies_written.emit(how)

    def _reload_views(self) -> None:
        self.refresh_prompts()
        self.pair_view.load(self.set_id)
        if self.rank_view.current is None:
            self.rank_view.load(self.set_id)
        self.refresh_counts()

    # ------------------------------------------------------------------ labels
    def set_mode(self, index: int) -> None:
        self.mode_group.button(index).setChecked(True)
        self.mode_stack.setCurrentIndex(index)
        if index == 1:
            self.rank_view.load(self.set_id)
        else:
            self.pair_view.load(self.set_id)
        self.mode_stack.currentWidget().setFocus()

    def _on_labelled(self) -> None:
        self.refresh_counts()
        self.labels_changed.emit()

    def refresh_counts(self) -> None:
        counts = self.store.counts()
        for key, box in self.stats.items():
            box.number.setText(str(counts.get(key, 0)))
        view = self.pair_view
        if view.total:
            self.set_progress.setText(f"This set: {view.total - len(view.tasks)} of {view.total} pairs labelled.")
        else:
            self.set_progress.setText("This set has no pairs to label yet.")
        rows = []
        for name, row in list(self.store.elo().items())[:6]:
            rows.append(f"<tr><td>{system_name(name)}</td><td align='right'>&nbsp;&nbsp;<b>{row['rating']:.0f}</b></td>"
                        f"<td align='right' style=f'color:{MUTED}'>&nbsp;&nbsp;{row['games']} games</td></tr>")
        self.elo_label.setText("<table>" + "".join(rows) + "</table>" if rows else
                               "Ratings appear once replies of two different models (e.g. base and tuned) are compared.")

    def export_labels(self, kind: str, path: str | None = None) -> int | None:
        if not path:
            names = {"preference": "preferences.jsonl", "unpaired": "unpaired.jsonl", "rankings": "rankings.jsonl"}
            path, _ = QFileDialog.getSaveFileName(self, "Export labels", str(Path.home() / names[kind]), "JSON Lines (*.jsonl)")
        if not path:
            return None
        try:
            if kind == "preference":
                n = self.store.export_preference(path)
            elif kind == "unpaired":
                n = self.store.export_unpaired(path, include_pairs=True)
            else:
                n = self.store.export_rankings(path, include_pairs=True)
        except (HearthError, OSError) as exc:
            self.notified.emit("error", f"Could not export to {path}: {exc}")
            return None
        self.notified.emit("info", f"Exported {n} records to {path}")
        return n

    def import_labels(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Import labels", str(Path.home()), "JSON Lines (*.jsonl)")
        if not path:
            return
        try:
            first = next((line for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip()), "{}")
            keys = set(json.loads(first)) if first.strip().startswith("{") else set()
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self.notified.emit("error", f"Cannot read {path}: {exc}")
            return
        importer = (self.store.import_preference if {"chosen", "rejected"} <= keys else
                    self.store.import_unpaired if {"completion", "label"} <= keys else self.store.import_rankings)
        try:
            report = importer(path, on_error="skip")
        except HearthError as exc:
            self.notified.emit("error", str(exc))
            return
        self.notified.emit("warning" if report.errors else "info", report.describe())
        self.refresh_sets(select=report.set_id)
        self.labels_changed.emit()

    def shutdown(self) -> None:
        self.stop_generation()
