"""Few-shot: build zero-, one- and few-shot prompts (task description, K worked examples, the
query), send them to the model, and measure accuracy against K on a bundled task set."""
from __future__ import annotations

import json
import uuid

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPlainTextEdit,
    QProgressBar, QPushButton, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from engines.core.events import Metric, Progress, Result, Token
from engines.core.resources import assets_dir
from engines.core.requests.explore import DEFAULT_KS, FewShotEvalRequest, FewShotPromptRequest
from engines.core.requests.text import ChatRequest
from desktop.rooms.explore_views.common import ACCENT, Card, ExploreView, mono_font, muted, pyqtgraph, style_plot
from desktop.widgets.panels import side_scroll
from desktop.widgets.palette import BAD, BASE, GOOD, TEXT

def load_tasks() -> list[dict]:
    try:
        return json.loads((assets_dir() / "explore" / "fewshot_tasks.json").read_text(encoding="utf-8"))["tasks"]
    except (OSError, ValueError, KeyError):
        return []


def normalise(answer: str) -> str:
    """As the engine scores it: the first line, trimmed, no final full stop, case-folded."""
    return answer.strip().split("\n", 1)[0].strip().rstrip(".").strip().casefold()


class FewShotView(ExploreView):
    title = "Few-shot"
    lane = "fewshot"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.tasks = load_tasks()
        self.prompt = ""
        self.answer = ""
        self.answer_done = False
        self.accuracy: dict[int, float] = {}
        self.accuracy_done = False
        self.samples: list[dict] = []
        self._prompt_job: str | None = None
        self._prompt_dirty = False
        self._send_job: str | None = None
        self._measure_job: str | None = None
        self._ready = False

        # -- builder -------------------------------------------------------
        builder = Card("Prompt builder")
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(12)
        self.task = QComboBox()
        for t in self.tasks:
            self.task.addItem(t["name"], t["id"])
        self.task.addItem("Your own task", "")
        self.task.currentIndexChanged.connect(self._task_changed)
        self.description = QLineEdit(placeholderText="What the model should do (optional)")
        self.k = QSpinBox(minimum=0, maximum=8, value=2, toolTip="How many worked examples the prompt shows")
        self.k.valueChanged.connect(self._fill_examples)
        self.examples = QTableWidget(0, 2)
        self.examples.setHorizontalHeaderLabels(["Input", "Output"])
        self.examples.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.examples.verticalHeader().setVisible(False)
        self.query = QLineEdit(placeholderText="The question to ask")
        self.expected = QLineEdit(placeholderText="Known answer (optional, to score the reply)")
        form.addRow("Task", self.task)
        form.addRow("Description", self.description)
        form.addRow("Examples (K)", self.k)
        form.addRow("", self.examples)
        form.addRow("Query", self.query)
        form.addRow("Answer", self.expected)
        builder.body.addLayout(form)
        builder.body.addWidget(QLabel("ASSEMBLED PROMPT", objectName="SectionTitle"))
        self.prompt_view = QPlainTextEdit(readOnly=True, objectName="Code")
        self.prompt_view.setFont(mono_font(9.5))
        self.prompt_view.setMinimumHeight(130)
        builder.body.addWidget(self.prompt_view, 1)
        row = QHBoxLayout()
        self.send_button = QPushButton("Send to the model", objectName="Primary")
        self.send_button.clicked.connect(self.send)
        self.reply = QLabel("", wordWrap=True)
        self.reply.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.send_button)
        row.addWidget(self.reply, 1)
        builder.body.addLayout(row)

        # -- accuracy against K ------------------------------------------------
        measure = Card("Accuracy against K")
        row = QHBoxLayout()
        row.addWidget(QLabel("Questions", objectName="Muted"))
        self.measure_limit = QSpinBox(minimum=2, maximum=100, value=24, toolTip="How many of the task's items to ask for each K")
        row.addWidget(self.measure_limit)
        row.addWidget(QLabel(f"for K = {', '.join(map(str, DEFAULT_KS))}", objectName="Muted"))
        row.addStretch(1)
        measure.body.addLayout(row)
        row = QHBoxLayout()
        self.measure_button = QPushButton("Measure", objectName="Primary")
        self.measure_button.clicked.connect(self.measure)
        self.stop_button = QPushButton("Stop", enabled=False)
        self.stop_button.clicked.connect(lambda: self.jobs.cancel(self._measure_job))
        row.addWidget(self.measure_button)
        row.addWidget(self.stop_button)
        row.addStretch(1)
        measure.body.addLayout(row)
        self.progress = QProgressBar(objectName="JobProgress", textVisible=False, maximum=1)
        self.progress.setValue(0)
        measure.body.addWidget(self.progress)
        pg = pyqtgraph()
        self.plot = pg.PlotWidget()
        style_plot(self.plot, left="accuracy", bottom="K (worked examples in the prompt)")
        self.plot.setYRange(-0.06, 1.08, padding=0)
        self.plot.setXRange(-0.4, 8.4, padding=0)
        self.plot.getPlotItem().getAxis("bottom").setTicks([[(k, str(k)) for k in DEFAULT_KS]])
        self.plot.getPlotItem().getAxis("left").setTicks([[(v / 4, f"{v * 25}%") for v in range(5)]])
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMinimumHeight(240)
        measure.body.addWidget(self.plot, 1)
        self.measure_caption = muted("Each question is asked with K examples drawn from the task's other items, greedily "
                                     "(temperature 0); an answer counts when its first line matches exactly. "
                                     "The GPT-3 paper's Figure 1.2 plots the same curve.")
        measure.body.addWidget(self.measure_caption)
        self.sample_table = QTableWidget(0, 4)
        self.sample_table.setHorizontalHeaderLabels(["K", "Question", "Model said", ""])
        self.sample_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.sample_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.sample_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.sample_table.verticalHeader().setVisible(False)
        self.sample_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sample_table.setMaximumHeight(170)
        measure.body.addWidget(self.sample_table)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(side_scroll(builder))
        splitter.addWidget(side_scroll(measure))
        splitter.setSizes([560, 640])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addWidget(splitter)

        self._prompt_timer = QTimer(self, singleShot=True, interval=150)
        self._prompt_timer.timeout.connect(self.assemble)
        for edit in (self.description, self.query):
            edit.textChanged.connect(self._prompt_timer.start)
        self.examples.itemChanged.connect(self._prompt_timer.start)
        self._task_changed(0)
        self._plot_curve()

    # -- context --------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        self._ready = ready
        self.send_button.setEnabled(ready and not self.jobs.active(self._send_job))
        self.measure_button.setEnabled(ready and not self.jobs.active(self._measure_job))
        if ready:
            self.assemble()

    def current_task(self) -> dict | None:
        task_id = self.task.currentData()
        return next((t for t in self.tasks if t["id"] == task_id), None)

    def _task_changed(self, _index: int) -> None:
        task = self.current_task()
        self.measure_button.setEnabled(self._ready and task is not None)
        if task is None:
            self.description.setText("")
            self.query.setText("")
            self.expected.setText("")
            self._fill_examples()
            return
        self.description.setText(task["description"])
        query, answer = task["items"][0]
        self.query.setText(query)
        self.expected.setText(answer)
        self._fill_examples()

    def _fill_examples(self) -> None:
        """K rows, from the task's other items when a bundled task is chosen (editable either way)."""
        task = self.current_task()
        k = self.k.value()
        old = [(self._cell(r, 0), self._cell(r, 1)) for r in range(self.examples.rowCount())]
        pool = [tuple(i) for i in task["items"][1:]] if task else []
        self.examples.blockSignals(True)
        self.examples.setRowCount(k)
        for r in range(k):
            if task and r < len(pool):
                pair = pool[r]
            else:
                pair = old[r] if r < len(old) else ("", "")
            for c in range(2):
                self.examples.setItem(r, c, QTableWidgetItem(pair[c]))
        self.examples.blockSignals(False)
        # As tall as its rows (up to about six), so K = 1 does not leave a large empty box.
        row_h = self.examples.verticalHeader().defaultSectionSize()
        header_h = self.examples.horizontalHeader().sizeHint().height()
        self.examples.setFixedHeight(header_h + row_h * min(max(k, 1), 6) + 6)
        self._prompt_timer.start()

    def _cell(self, row: int, column: int) -> str:
        item = self.examples.item(row, column)
        return item.text() if item else ""

    def example_rows(self) -> list[dict]:
        rows = [{"input": self._cell(r, 0), "output": self._cell(r, 1)} for r in range(self.examples.rowCount())]
        return [r for r in rows if r["input"].strip() or r["output"].strip()]

    # -- the prompt -----------------------------------------------------
    def assemble(self) -> None:
        if not self._ready:
            return
        if self.jobs.active(self._prompt_job):
            self._prompt_dirty = True
            return
        self._prompt_dirty = False
        request = FewShotPromptRequest(description=self.description.text(), examples=self.example_rows(),
                                       query=self.query.text())
        if not self.jobs.checked(request):
            return
        self._prompt_job = self.jobs.call(self.lane, lambda c: c.explore(request), self._show_prompt,
                                          label="Assembling the prompt", on_done=self._prompt_done)

    def _prompt_done(self, _how: str) -> None:
        if self._prompt_dirty:
            QTimer.singleShot(0, self.assemble)

    def _show_prompt(self, data: dict) -> None:
        self.prompt = data["prompt"]
        self.prompt_view.setPlainText(self.prompt)

    def send(self) -> None:
        if not self.prompt or self.jobs.active(self._send_job):
            return
        request_id = uuid.uuid4().hex
        request = ChatRequest(prompt=self.prompt, model=self.model(), temperature=0.0, max_tokens=24, stop=["\n"],
                              repeat_penalty=1.0, request_id=request_id)
        self.answer, self.answer_done = "", False
        self.reply.setText("…")
        self.send_button.setEnabled(False)
        self._send_job = self.jobs.stream(self.lane + ".send", lambda c: c.stream_chat(request),
                                          self._on_answer_event, label="Asking the model", on_done=self._answer_done,
                                          request_id=request_id, on_error=lambda e: self.reply.setText(str(e)))

    def _on_answer_event(self, event) -> None:
        if isinstance(event, Token):
            self.answer += event.text
            self.reply.setText(f"Model: <b>{_escape(self.answer.strip())}</b>")
        elif isinstance(event, Result):
            self.answer = event.data.get("text", self.answer)

    def _answer_done(self, how: str) -> None:
        self.answer_done = True
        self.send_button.setEnabled(self._ready)
        if how != "finished":
            return
        expected = self.expected.text().strip()
        said = self.answer.strip().split("\n", 1)[0].strip() or "(nothing)"
        if expected:
            ok = normalise(self.answer) == normalise(expected)
            mark = f"<span style=f'color:{GOOD}'>✓ right</span>" if ok else \
                f"<span style=f'color:{BAD}'>✗ expected {_escape(expected)}</span>"
            self.reply.setText(f"Model: <b>{_escape(said)}</b> &nbsp; {mark}")
        else:
            self.reply.setText(f"Model: <b>{_escape(said)}</b>")

    # -- accuracy against K ---------------------------------------------------
    def measure(self) -> None:
        task = self.current_task()
        if task is None or self.jobs.active(self._measure_job):
            return
        request_id = uuid.uuid4().hex
        limit = min(self.measure_limit.value(), len(task["items"]))
        request = FewShotEvalRequest(task=task["id"], model=self.model(), ks=list(DEFAULT_KS), limit=limit,
                                     request_id=request_id)
        if not self.jobs.checked(request, self._measure_failed):
            return
        self.accuracy, self.samples, self.accuracy_done = {}, [], False
        self.progress.setMaximum(limit * len(DEFAULT_KS))
        self.progress.setValue(0)
        self.sample_table.setRowCount(0)
        self._plot_curve()
        self.measure_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.measure_caption.setText(f"Asking {limit} questions of “{task['name']}” for each K…")
        self._measure_job = self.jobs.stream(
            self.lane + ".measure", lambda c: c.stream_fewshot_evaluate(request), self._on_measure_event,
            label="Measuring few-shot accuracy", on_done=self._measure_done, request_id=request_id,
            on_error=self._measure_failed)

    def _measure_failed(self, error) -> None:
        self.measure_caption.setText(str(error))

    def _on_measure_event(self, event) -> None:
        if isinstance(event, Progress):
            self.progress.setValue(event.step)
        elif isinstance(event, Metric) and event.name == "accuracy":
            self.accuracy[event.step] = event.value
            self._plot_curve()
        elif isinstance(event, Result):
            self.samples = event.data.get("samples", [])
            self._fill_samples()
            acc = event.data.get("accuracy", {})
            self.accuracy = {int(k): v for k, v in acc.items()}
            self._plot_curve()
            text = ",  ".join(f"K={k}: {v * 100:.0f}%" for k, v in sorted(self.accuracy.items()))
            stopped = " (stopped)" if event.finish_reason == "cancelled" else ""
            self.measure_caption.setText(f"{event.data.get('queries', 0)} questions per K{stopped}:  {text}")

    def _measure_done(self, _how: str) -> None:
        self.accuracy_done = True
        self.measure_button.setEnabled(self._ready and self.current_task() is not None)
        self.stop_button.setEnabled(False)

    def _plot_curve(self) -> None:
        pg = pyqtgraph()
        item = self.plot.getPlotItem()
        item.clear()
        if not self.accuracy:
            return
        ks = sorted(self.accuracy)
        ys = [self.accuracy[k] for k in ks]
        item.addItem(pg.PlotCurveItem(ks, ys, pen=pg.mkPen(ACCENT, width=2.5)))
        item.addItem(pg.ScatterPlotItem(ks, ys, size=10, brush=pg.mkBrush(ACCENT), pen=pg.mkPen(BASE, width=1.5)))
        for k, y in zip(ks, ys):
            # Above the point, or below it near the top so it stays inside the plot.
            label = pg.TextItem(f"{y * 100:.0f}%", color=TEXT, anchor=(0.5, -0.4) if y > 0.85 else (0.5, 1.4))
            label.setPos(k, y)
            item.addItem(label)

    def _fill_samples(self) -> None:
        rows = self.samples
        self.sample_table.setRowCount(len(rows))
        for r, s in enumerate(rows):
            values = (str(s["k"]), s["input"], s["answer"] or "(nothing)", "✓" if s["correct"] else f"✗ {s['expected']}")
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                if c == 3:
                    item.setForeground(QColor(GOOD if s["correct"] else BAD))
                self.sample_table.setItem(r, c, item)

    def shutdown(self) -> None:
        self.jobs.cancel(self._measure_job)
        self.jobs.cancel(self._send_job)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
