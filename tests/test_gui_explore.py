"""The Explore room in the real window, offscreen, on the real engine host and the bundled model:
each view opens, shows its result, and paints something that is not blank.

One window and host serve the whole module (starting a host and loading the model per test
would cost more than the tests); the last test checks that nothing outlives it.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import psutil
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from gui_support import HEAVY_MODULES
from tests.explore_support import shared_cache  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow]
SHOTS = os.environ.get("HEARTH_TEST_SHOTS")  # a folder to keep the screenshots in, for looking at them


def _wait(predicate, timeout_s: float = 180.0) -> None:
    app = QApplication.instance()
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the view")
        app.processEvents()
        time.sleep(0.01)


def _not_blank(widget, name: str, tmp_path) -> None:
    image = widget.grab().toImage()
    folder = SHOTS or str(tmp_path)
    image.save(os.path.join(folder, f"explore-{name}.png"))
    colours = {image.pixel(x, y) for x in range(0, image.width(), 5) for y in range(0, image.height(), 5)}
    assert len(colours) > 40, f"the {name} view looks blank ({len(colours)} colours)"


@pytest.fixture(scope="module")
def hearth(qapp, tmp_path_factory, shared_cache):  # noqa: F811
    from desktop.app import apply_theme
    from desktop.main_window import MainWindow
    from desktop.session import Session

    home = tmp_path_factory.mktemp("explore-gui-home")
    old_home = os.environ.get("HEARTH_HOME")
    os.environ["HEARTH_HOME"] = str(home)
    apply_theme(qapp)
    session = Session()
    window = MainWindow(session)
    window.resize(1360, 860)
    window.show()
    session.start_host()
    _wait(lambda: session.host.is_ready, 120)
    window.show_room("Explore")
    yield window
    window.close()
    session.shutdown()
    window.deleteLater()
    qapp.processEvents()
    if old_home is not None:
        os.environ["HEARTH_HOME"] = old_home


def test_tokens_view_shows_ids_counts_special_tokens_and_a_second_model(hearth, tmp_path):
    view = hearth.explore.show_view("Tokens")
    view.editor.setPlainText("Hello world")
    _wait(lambda: view.results.get("a", {}).get("text") == "Hello world")
    assert view.panel_a.count.text() == "2" and view.panel_a.ratio.text() == "5.50"
    assert view.panel_a.ids.toPlainText() == "19556, 905"
    view.editor.setPlainText("Tokenizers split text into pieces.")
    view.chat.setChecked(True)
    _wait(lambda: view.results["a"]["text"].startswith("<|im_start|>") and "pieces" in view.results["a"]["text"])
    assert "<|im_start|>" in view.panel_a.note.text() and "<|im_start|>" in view.panel_a.spans.toPlainText()
    view.compare.setCurrentIndex(view.compare.findData("default"))
    _wait(lambda: "b" in view.results and "pieces" in view.results["b"]["text"])
    assert view.panel_b.isVisible() and view.panel_b.count.text() == view.panel_a.count.text()
    _not_blank(view, "tokens", tmp_path)


def test_embeddings_view_solves_king_queen_and_plots_the_three_relations(hearth, tmp_path):
    view = hearth.explore.show_view("Embeddings")
    _wait(lambda: view.analogy_result and view.neighbours_result and view.projection_result)
    assert view.analogy_bars.rows[0][0] == "queen"
    assert [r[0] for r in view.analogy_bars.rows][:1] == [view.analogy_result["results"][0]["word"]]
    assert len(view.near_bars.rows) == 10
    names = [view.preset.itemText(i) for i in range(view.preset.count())]
    assert names[:3] == ["Male → female", "Verb tense (present → past)", "Country → capital"]
    for index in (1, 2, 0):
        view.preset.setCurrentIndex(index)  # plots the preset
        pairs = view.preset.itemData(index)
        _wait(lambda: [p["word"] for p in view.projection_result["points"][:2]] == pairs[0])
        assert len(view.projection_result["points"]) == 2 * len(pairs)
        assert len(view.projection_result["arrows"]) == len(pairs)
        _not_blank(view.plot, f"embeddings-map-{index}", tmp_path)
    _not_blank(view, "embeddings", tmp_path)


def test_attention_view_heatmap_pickers_clicked_token_and_png_export(hearth, tmp_path):
    view = hearth.explore.show_view("Attention")
    view.text.setText("The cat sat on the mat because it was tired.")
    view.run()
    _wait(lambda: view.data is not None and "mat" in "".join(view.data["tokens"]), 300)
    t = len(view.data["tokens"])
    assert view.weights.shape == (view.data["layers"], view.data["heads"], t, t)
    assert np.allclose(view.weights.sum(axis=-1), 1.0, atol=1e-2)
    view.layer.setValue(3)
    view.head.setCurrentIndex(view.head.findData(2))
    assert np.allclose(view.heatmap.matrix, view.weights[3, 2])
    view.head.setCurrentIndex(0)  # mean over heads
    assert np.allclose(view.heatmap.matrix, view.weights[3].mean(axis=0))
    # Click the cell of the token "it" (row 7): the side panel lists what it attends to.
    left, top, cell = view.heatmap._geometry()
    it = next(i for i, tok in enumerate(view.data["tokens"]) if tok.strip() == "it")
    from PySide6.QtTest import QTest

    QTest.mouseClick(view.heatmap, Qt.MouseButton.LeftButton, pos=QPoint(int(left + cell / 2), int(top + (it + 0.5) * cell)))
    assert view.heatmap.selected == it and "“ it”" in view.side_caption.text()
    assert len(view.row_bars.rows) == min(12, it + 1)
    png = tmp_path / "heatmap.png"
    assert view.export_png(str(png)) and png.read_bytes().startswith(b"\x89PNG")
    _not_blank(view, "attention", tmp_path)


def test_a_bad_request_is_told_in_the_view_before_a_job_is_queued(hearth, monkeypatch):
    view = hearth.explore.show_view("Attention")
    view.text.setText("   ")
    queued = []
    monkeypatch.setattr(view.jobs, "submit", lambda job, *args: queued.append(job))
    view.run()
    assert view.status.text() == "The text is empty. Type a short sentence."  # the RequestError the host would send
    assert view.go.isEnabled() and not view.jobs.active(view._job) and queued == []


def test_fewshot_view_assembles_sends_and_plots_accuracy_against_k(hearth, tmp_path):
    view = hearth.explore.show_view("Few-shot")
    view.task.setCurrentIndex(view.task.findData("capitals"))
    view.k.setValue(1)
    _wait(lambda: view.prompt == "Give the capital city of the country.\n\nInput: Japan\nOutput: Tokyo\n\n"
                                 "Input: France\nOutput:")
    assert view.prompt_view.toPlainText() == view.prompt
    view.send()
    _wait(lambda: view.answer_done)
    assert view.answer.strip() == "Paris" and "right" in view.reply.text()
    view.measure_limit.setValue(3)
    view.measure()
    _wait(lambda: view.accuracy_done, 300)
    assert sorted(view.accuracy) == [0, 1, 2, 4, 8] and all(0 <= v <= 1 for v in view.accuracy.values())
    assert view.accuracy[2] >= view.accuracy[0]
    assert view.sample_table.rowCount() == 15
    _not_blank(view, "fewshot", tmp_path)


def test_page_view_streams_code_and_renders_it_safely(hearth, tmp_path):
    from desktop.rooms.explore_views.page import preview_html

    view = hearth.explore.show_view("Code → page")
    view.max_tokens.setValue(120)
    view.generate()
    _wait(lambda: view.done, 300)
    assert view.code.startswith("<!DOCTYPE html>\n<html>\n") and len(view.code) > 60
    assert view.code_view.toPlainText() == view.code
    assert view.preview.toPlainText().strip()
    _not_blank(view, "page", tmp_path)

    hostile = ('<h1 onclick="steal()">Hi</h1><script>alert(1)</script><img src="https://example.com/x.png">'
               '<a href="javascript:alert(2)">x</a><iframe src="https://example.com"></iframe>')
    html = preview_html(hostile)
    assert "script" not in html and "onclick" not in html and "javascript:" not in html and "iframe" not in html
    view.preview.setHtml(html)
    assert view.preview.blocked == ["https://example.com/x.png"]  # asked for, refused


def test_usage_view_counts_the_jobs_and_prices_them(hearth, tmp_path):
    from engines.store.usage import Price, load_prices

    view = hearth.explore.show_view("Usage & cost")
    view.refresh()
    assert view.table.rowCount() >= 1 and view.total.requests >= 3  # the few-shot send + measure, the page
    assert int(view.stats["in"].text().replace(",", "")) == view.total.prompt_tokens > 0
    view.set_prices([Price("Example", 2.5, 10.0)])
    assert view.prices_table.item(0, 4).text() == "$0.0030"  # one email: 400 in + 200 out
    assert view.prices_table.item(0, 5).text() == "$3.00"
    view.prices_table.item(0, 1).setText("5")
    assert load_prices(hearth.session.settings) == [Price("Example", 5.0, 10.0)]
    assert view.prices_table.item(0, 4).text() == "$0.0040"
    _not_blank(view, "usage", tmp_path)


def test_the_gui_process_stayed_light(hearth):
    for name in HEAVY_MODULES:
        assert name not in sys.modules, f"the GUI process imported {name}"
    children = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert len(children) == 1  # the engine host, and nothing else
