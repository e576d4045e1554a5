"""The Decode room: stimulus -> simulated fMRI -> decoded reconstruction, laid out like MinD-Vis' Figure 1, with the
papers' metrics, an SNR sweep and export.

A run is one job on the "decode" lane that streams the engine host's /hearth/decode/run events (the image model
runs there, never in this process). Each view is a module under ``decode_views``: the settings, the figure grid,
the metrics table, the sweep plot (pyqtgraph, imported in the background the first time the room opens) and the
export helpers.
"""
from __future__ import annotations

import base64

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter, QTabWidget, QVBoxLayout,
    QWidget,
)

from engines.core.errors import HearthError
from engines.core.events import Progress, Result
from desktop.job_router import JobRouter
from desktop.rooms.decode_views.common import STYLE, Card
from desktop.rooms.decode_views.controls import DecodeControls, RequestProblem
from desktop.rooms.decode_views.export import Exporter, save_figure, save_folder, save_metrics
from desktop.rooms.decode_views.figure import FigureGrid
from desktop.rooms.decode_views.metrics import MetricsTable
from desktop.rooms.decode_views.progress import ProgressTracker
from desktop.rooms.decode_views.sweep import SweepPlot
from desktop.session import Session
from desktop.widgets.panels import muted, side_scroll
from desktop.widgets.plots import warm_up
from desktop.widgets.image_thumbs import Attachment

EXPLAINER = (
    "Hearth simulates how a visual cortex would respond to each image (the <b>fMRI pattern</b>), learns a linear map "
    "from voxels back to the image model's latent and caption embedding on the training images, and decodes held-out "
    "patterns. The <b>low-level decode</b> is the decoded latent through the VAE; the <b>reconstruction</b> refines "
    "it with img2img, steered by the decoded caption. The <b>oracle</b> feeds the same pipeline the true latent and "
    "caption: the ceiling. <b>Shuffled</b> scrambles each pattern's voxels: the floor. If shuffled reconstructions "
    "look good too, the image model is inventing them."
)

CAPTION = ("Oracle: the true features through the same pipeline, the ceiling. Shuffled: each pattern's voxels "
           "scrambled, the floor. Hover a column title for more.")


class DecodeRoom(QWidget):
    notified = Signal(str, str)  # level, text
    status_changed = Signal(str)
    chat_requested = Signal(list)  # [Attachment]: "Send to Chat" on the figure

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = session.runner
        self.host = session.host
        self.exporter = Exporter(self)
        self.result: dict | None = None  # the last finished run's data
        self._job: str | None = None
        self._tracker: ProgressTracker | None = None
        self._ready = False
        self._warmed = False
        self.setStyleSheet(STYLE)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._build()
        self.jobs = JobRouter(self.runner, "decode", self)
        self.host.ready.connect(lambda *_: self._set_ready(True))
        self.host.crashed.connect(lambda *_: self._set_ready(False))
        self.host.restarting.connect(lambda: self._set_ready(False))
        self.host.stopped.connect(lambda: self._set_ready(False))
        self._set_ready(self.host.is_ready)

    # -- layout ----------------------------------------------------------
    def _build(self) -> None:
        header = QWidget(objectName="DecodeHeader")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        titles = QVBoxLayout(header)
        titles.setContentsMargins(20, 12, 20, 10)
        titles.setSpacing(2)
        titles.addWidget(QLabel("Decode", objectName="RoomTitle"))
        titles.addWidget(QLabel("From brain activity back to images: stimulus → simulated fMRI → decoded reconstruction, "
                                "scored as the papers score it.", objectName="RoomSubtitle", wordWrap=True))

        # left: settings, run, progress, export, how to read it
        self.controls = DecodeControls()
        self.run_button = QPushButton("Run", objectName="Primary", clicked=self.run)
        self.cancel_button = QPushButton("Cancel", clicked=self.cancel, enabled=False)
        self.progress = QProgressBar(objectName="DecodeProgress", maximum=1000, value=0, textVisible=False)
        self.stage = QLabel("", objectName="StageText", wordWrap=True)
        self.error = QLabel("", objectName="RunError", wordWrap=True, visible=False)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_figure_button = QPushButton("Save figure…", clicked=self.save_figure_dialog, enabled=False,
                                              toolTip="The figure as one PNG (up to 8 rows)")
        self.save_metrics_button = QPushButton("Save metrics…", clicked=self.save_metrics_dialog, enabled=False,
                                               toolTip="metrics as JSON or CSV")
        self.export_button = QPushButton("Export folder…", clicked=self.export_folder_dialog, enabled=False,
                                         toolTip="metrics.json, metrics.csv and figure.png into one folder (as the CLI writes)")
        self.chat_button = QPushButton("Send figure to Chat", clicked=self.send_to_chat, enabled=False,
                                       toolTip="Attach the figure to a Chat message, to ask a model that can see about it")
        self.export_note = muted(selectable=True)

        run_card = Card("Run")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)
        run_card.body.addLayout(buttons)
        run_card.body.addWidget(self.progress)
        run_card.body.addWidget(self.stage)
        run_card.body.addWidget(self.error)
        export_card = Card("Export")
        export_row = QHBoxLayout()
        export_row.addWidget(self.save_figure_button)
        export_row.addWidget(self.save_metrics_button)
        export_card.body.addLayout(export_row)
        export_card.body.addWidget(self.export_button)
        export_card.body.addWidget(self.chat_button)
        export_card.body.addWidget(self.export_note)

        side = QWidget(objectName="DecodeControls")
        side.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        column = QVBoxLayout(side)
        column.setContentsMargins(12, 12, 12, 12)
        column.setSpacing(8)
        column.addWidget(run_card)
        column.addWidget(self.controls)
        column.addWidget(export_card)
        column.addStretch(1)
        side_panel = side_scroll(side, min_width=300)

        # right: the figure on top; the metrics, the sweep and how to read them below
        self.figure = FigureGrid()
        self.figure.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.figure.addAction(QAction("Send to Chat", self.figure, triggered=self.send_to_chat))
        figure_card = Card("Figure")
        figure_card.body.addWidget(self.figure, 1)
        figure_card.body.addWidget(muted(CAPTION))

        self.summary = muted(selectable=True)
        self.metrics = MetricsTable()
        self.metrics.setVisible(False)
        self.metrics_empty = muted("The scores of each condition appear here after a run.")
        metrics_page = QWidget()
        column = QVBoxLayout(metrics_page)
        column.setContentsMargins(0, 8, 0, 0)
        column.addWidget(self.summary)
        column.addWidget(self.metrics)
        column.addWidget(self.metrics_empty)
        column.addStretch(1)
        self.sweep = SweepPlot()
        explain = muted(EXPLAINER, selectable=True)
        explain.setTextFormat(Qt.TextFormat.RichText)
        explain_page = QWidget()
        column = QVBoxLayout(explain_page)
        column.setContentsMargins(0, 8, 0, 0)
        column.addWidget(explain)
        column.addStretch(1)
        self.tabs = QTabWidget(objectName="DecodeTabs", documentMode=True)
        self.tabs.tabBar().setDrawBase(False)
        self.tabs.addTab(metrics_page, "Metrics")
        self.tabs.addTab(self.sweep, "SNR sweep")
        self.tabs.addTab(explain_page, "How to read it")
        results_card = Card()
        results_card.body.addWidget(self.tabs)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(figure_card)
        right.addWidget(results_card)
        right.setStretchFactor(0, 1)
        right.setSizes([520, 300])
        right_box = QWidget()
        right_layout = QVBoxLayout(right_box)
        right_layout.setContentsMargins(10, 12, 12, 12)
        right_layout.addWidget(right)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(side_panel)
        split.addWidget(right_box)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 1000])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(split, 1)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._warmed:
            self._warmed = True
            warm_up()

    # -- running ---------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None

    def run(self) -> str | None:
        """Start a run with the current settings; returns the job id (None when a setting is wrong or one runs)."""
        if self.running:
            return None
        try:
            request = self.controls.request()
        except RequestProblem as problem:
            self._show_error(str(problem))
            return None
        self._show_error("")
        self._tracker = ProgressTracker(request.reconstruct, len(request.sweep))
        self.progress.setValue(0)
        self.stage.setText(self._tracker.text + "…")
        self._job = self.jobs.stream("run", lambda client: client.stream_decode(request), self._on_event, "Decoding",
                                     self._on_end, request.request_id)  # None: the window is closing
        self._update_buttons()
        return self._job

    def cancel(self) -> None:
        if self._job:
            self.jobs.cancel(self._job)
            self.stage.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
            self.status_changed.emit("Decode: cancelling…")

    def _on_event(self, event) -> None:
        if isinstance(event, Progress) and self._tracker is not None:
            fraction, text = self._tracker.update(event)
            self.progress.setValue(round(1000 * fraction))
            self.stage.setText(text + "…")
        elif isinstance(event, Result):
            if event.finish_reason == "cancelled":
                self.stage.setText("Cancelled." + (" The last finished run stays shown." if self.result else ""))
                return
            self.show_result(event.data)
            self.progress.setValue(1000)
            total = sum(v for v in (event.data.get("timings") or {}).values() if isinstance(v, (int, float)))
            self.stage.setText(f"Done in {total:.1f} s." if total else "Done.")
            self.status_changed.emit("Decode: done")

    def _on_end(self, how: str, error: HearthError | None) -> None:
        self._job = None
        self._tracker = None
        if how == "cancelled":
            self.progress.setValue(0)
            if not self.stage.text().startswith("Cancelled"):
                self.stage.setText("Cancelled.")
            self.status_changed.emit("Decode: cancelled")
        elif how == "failed":
            self.progress.setValue(0)
            self.stage.setText("")
            message = str(error) if error is not None else "The decoding run failed."
            self._show_error(message)
            self.notified.emit("error", message)
            self.status_changed.emit("Decode: failed")
        self._update_buttons()

    def _set_ready(self, ready: bool) -> None:
        self._ready = ready
        if not ready and not self.running:
            self.stage.setText("Waiting for the engine host…")
        elif ready and self.stage.text() == "Waiting for the engine host…":
            self.stage.setText("")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(self._ready and not self.running)
        self.cancel_button.setEnabled(self.running)
        self.controls.setEnabled(not self.running)
        has = self.result is not None
        for button in (self.save_figure_button, self.save_metrics_button, self.export_button, self.chat_button):
            button.setEnabled(has)

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    # -- results ---------------------------------------------------------
    def show_result(self, data: dict) -> None:
        self.result = data
        request = data.get("request") or {}
        self.figure.set_rows(data.get("rows") or [], reconstructed=bool(request.get("reconstruct", True)))
        self.metrics.set_metrics(data.get("metrics") or {}, data.get("chance") or {}, data.get("n_way"))
        self.metrics.setVisible(True)
        self.metrics_empty.setVisible(False)
        self.summary.setText(_summary(data))
        simulated = data.get("source") != "data"
        self.sweep.set_sweep(data.get("sweep") or [], data.get("chance") or {}, request.get("snr") if simulated else None)
        self.export_note.setText("")
        self._update_buttons()

    # -- export ----------------------------------------------------------
    def send_to_chat(self) -> None:
        if self.result is not None and self.result.get("figure_png"):
            data = base64.b64decode(self.result["figure_png"])
            self.chat_requested.emit([Attachment("decode-figure.png", data=data)])

    def save_figure_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "decode-figure.png", "PNG image (*.png)")
        if path:
            self.export(save_figure, path)

    def save_metrics_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Save metrics", "metrics.json", "JSON (*.json);;CSV (*.csv)")
        if path:
            if chosen.startswith("CSV") and not path.lower().endswith(".csv"):
                path += ".csv"
            self.export(save_metrics, path)

    def export_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export metrics.json, metrics.csv and figure.png into")
        if folder:
            self.export(save_folder, folder)

    def export(self, write, target: str) -> None:
        """Write the last result with ``write(data, target)`` in the background; says where it went or what failed."""
        if self.result is None:
            return
        data = self.result
        self.export_note.setText("Saving…")

        def done(paths, error) -> None:
            if error is not None:
                message = f"Could not save to {target}: {error}"
                self.export_note.setText(message)
                self.notified.emit("error", message)
            else:
                self.export_note.setText("Saved " + ", ".join(str(p) for p in paths))

        self.exporter.submit(lambda: write(data, target), done)

    def shutdown(self) -> None:
        self.exporter.shutdown()


def _summary(data: dict) -> str:
    request = data.get("request") or {}
    parts = [f"{data.get('voxels', '?')} voxels", f"{data.get('n_train', '?')} train / {data.get('n_test', '?')} test"]
    if data.get("source") != "data":
        parts.append(f"SNR {request.get('snr', '?'):g}" if isinstance(request.get("snr"), (int, float)) else "SNR ?")
        parts.append(f"{request.get('repeats', '?')} repeats")
    else:
        parts.append(f"data: {request.get('path', '')}")
    alphas = data.get("alphas") or {}
    if alphas:
        parts.append("ridge α " + ", ".join(f"{k} {v:.3g}" for k, v in alphas.items()))
    total = sum(v for v in (data.get("timings") or {}).values() if isinstance(v, (int, float)))
    if total:
        parts.append(f"{total:.1f} s")
    return " · ".join(parts)
