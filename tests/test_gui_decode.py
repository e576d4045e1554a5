"""The Decode room in the real window, offscreen, on the fake engine host's canned /hearth/decode/run: a run with
the defaults fills the figure, the metrics table and the SNR sweep; export writes the files; cancel stops a run
and the room stays usable; a bad data file's error is shown with its message; the GUI never imports the ML stack.
The last test runs a tiny real decode on the real engine host."""
from __future__ import annotations

import base64
import csv
import importlib.util
import json
import sys

import pytest
from PySide6.QtWidgets import QFileDialog

from gui_support import HEAVY_MODULES, no_leaks, open_hearth  # noqa: F401  (fixtures)


def _decode_room(open_hearth, host: str = "fake"):
    hearth = open_hearth(host)
    hearth.qtbot.waitUntil(lambda: hearth.session.host.is_ready, timeout=120_000)
    hearth.window.show_room("Decode")
    room = hearth.window.decode
    hearth.qtbot.waitUntil(room.run_button.isEnabled, timeout=10_000)
    return hearth, room


def _no_heavy_imports() -> None:
    for name in HEAVY_MODULES:
        assert name not in sys.modules, f"the GUI process imported {name}"


def test_demo_with_defaults_fills_figure_metrics_and_sweep(open_hearth):
    hearth, room = _decode_room(open_hearth)
    assert room.figure.cells == [] and not room.save_figure_button.isEnabled()
    seen: set[str] = set()
    room.progress.valueChanged.connect(lambda _v: seen.add(room.stage.text()))
    room.run_button.click()
    assert room.running and room.cancel_button.isEnabled() and not room.run_button.isEnabled()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=30_000)

    assert room.error.isHidden(), room.error.text()
    assert room.progress.value() == 1000 and room.stage.text().startswith("Done")
    assert any(text.startswith("Fitting the ridge decoders") for text in seen), seen
    assert any(text.startswith("Reconstructing the oracle (true features) (batch") for text in seen), seen
    assert any(text.startswith("SNR sweep: refitting at SNR 0.002 (1/5)") for text in seen), seen

    # the request carried the room's defaults
    request = room.result["request"]
    assert (request["snr"], request["voxels"], request["train"], request["test"], request["repeats"]) == (0.5, 4000, 800, 20, 4)
    assert request["sweep"] == [0.002, 0.01, 0.05, 0.2, 1.0] and request["reconstruct"] is True

    # the figure: a row per test stimulus, every cell painted, the pattern wider than tall, labels underneath
    assert len(room.figure.cells) == 20
    for key in ("stimulus", "pattern", "lowlevel", "decoded", "oracle", "shuffled"):
        pix = room.figure.cells[0][key].pixmap()
        assert pix is not None and not pix.isNull(), key
    pattern = room.figure.cells[0]["pattern"]
    assert pattern.width() > pattern.height()
    assert "decoded: <b>green square</b>" in room.figure.captions[0].text() and "✗" in room.figure.captions[0].text()
    assert "true: <b>green square</b>" in room.figure.captions[1].text() and "✓" in room.figure.captions[1].text()
    assert [room.figure.titles[k].text() for k in ("stimulus", "pattern", "oracle", "shuffled")] == [
        "Stimulus", "fMRI pattern", "Oracle (ceiling)", "Shuffled (floor)"]

    # the metrics table: the four conditions and chance, n shown in the n-way header
    table = room.metrics
    assert table.isVisible() and table.conditions == ["decoded", "lowlevel", "oracle", "shuffled", "chance"]
    headers = [table.horizontalHeaderItem(c).text().replace("\n", " ") for c in range(table.columnCount())]
    assert headers[:7] == ["PixCorr", "SSIM", "2-way (latent)", "2-way (pixels)", "20-way top-1",
                           "20-way top-1 (pixels)", "Semantic"]
    assert "Colour" in headers and "Background" in headers
    assert table.text("decoded", "pixcorr") == "0.720" and table.text("oracle", "two_way") == "98.5%"
    assert table.text("shuffled", "n_way_top1") == "5.9%"
    assert table.text("chance", "two_way") == "50.0%" and table.text("chance", "n_way_top1") == "5.0%"
    assert table.text("chance", "ssim") == "—"
    assert "4000 voxels" in room.summary.text() and "800 train / 20 test" in room.summary.text()

    # the sweep plot: decoded above shuffled at every SNR, a dashed chance line, this run's SNR marked
    sweep = room.sweep
    assert sweep.plot is not None and sweep.stack.currentWidget() is sweep.plot
    xs, decoded = sweep.series("decoded")
    _, shuffled = sweep.series("shuffled")
    assert xs == [0.002, 0.01, 0.05, 0.2, 1.0] and all(d > s for d, s in zip(decoded, shuffled))
    assert decoded == sorted(decoded)  # the canned quality grows with SNR
    assert sweep.plot.getPlotItem().getAxis("bottom").logMode
    sweep.metric_box.setCurrentIndex(sweep.metric_box.findData("two_way"))
    chance_x, chance_y = sweep.chance_curve.getData()
    assert list(chance_y) == [50.0, 50.0]  # accuracies in percent, as in the table
    assert sweep.run_line.isVisible() and abs(sweep.run_line.value() - (-0.30103)) < 1e-3  # log10(0.5)
    assert sweep.series("decoded")[1][-1] == pytest.approx(100 * (0.5 + 0.5 * 1 / 1.05), abs=0.1)
    assert "this run (SNR 0.5)" in sweep.legend.text() and "chance" in sweep.legend.text()
    _no_heavy_imports()


def test_export_writes_figure_metrics_and_folder(open_hearth, tmp_path, monkeypatch):
    hearth, room = _decode_room(open_hearth)
    room.controls.test.setValue(4)
    room.run()
    hearth.qtbot.waitUntil(lambda: room.result is not None and not room.running, timeout=30_000)
    assert room.save_figure_button.isEnabled() and room.export_button.isEnabled()

    figure = tmp_path / "out" / "figure"  # no suffix: the room adds .png
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(figure), "PNG image (*.png)"))
    room.save_figure_button.click()
    hearth.qtbot.waitUntil(lambda: room.export_note.text().startswith("Saved"), timeout=10_000)
    written = tmp_path / "out" / "figure.png"
    assert written.read_bytes() == base64.b64decode(room.result["figure_png"])
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "m"), "CSV (*.csv)"))
    room.export_note.setText("")
    room.save_metrics_button.click()
    hearth.qtbot.waitUntil(lambda: room.export_note.text().startswith("Saved"), timeout=10_000)
    rows = list(csv.reader((tmp_path / "m.csv").open()))
    assert rows[0] == ["snr", "condition", "metric", "value"]
    assert ["0.5", "decoded", "pixcorr", "0.72"] in rows
    assert any(r[:3] == ["0.002", "sweep-decoded", "pixcorr"] for r in rows)

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "m.json"), "JSON (*.json)"))
    room.export_note.setText("")
    room.save_metrics_button.click()
    hearth.qtbot.waitUntil(lambda: room.export_note.text().startswith("Saved"), timeout=10_000)
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["decoded"]["pixcorr"] == 0.72 and doc["oracle"]["two_way"] == 0.985 and doc["chance"]["two_way"] == 0.5
    assert len(doc["sweep"]) == 5

    folder = tmp_path / "export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    room.export_note.setText("")
    room.export_button.click()
    hearth.qtbot.waitUntil(lambda: room.export_note.text().startswith("Saved"), timeout=10_000)
    assert sorted(p.name for p in folder.iterdir()) == ["figure.png", "metrics.csv", "metrics.json"]
    assert json.loads((folder / "metrics.json").read_text())["shuffled"]["pixcorr"] == 0.009
    assert (folder / "metrics.csv").read_text().splitlines()[0] == "snr,condition,metric,value"

    # a place that cannot be written: the error names it, and the room still works
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(blocker / "sub"))
    room.export_note.setText("")
    room.export_button.click()
    hearth.qtbot.waitUntil(lambda: room.export_note.text().startswith("Could not save"), timeout=10_000)
    assert str(blocker / "sub") in room.export_note.text()
    assert any("Could not save" in t for t in hearth.window.notifications.texts())
    _no_heavy_imports()


def test_cancel_stops_the_run_and_the_room_runs_again(open_hearth):
    hearth, room = _decode_room(open_hearth)
    room.controls.steps.setValue(150)  # the fake host's slow reconstruction
    room.controls.test.setValue(3)
    room.run()
    hearth.qtbot.waitUntil(lambda: room.stage.text().startswith("Reconstructing from the decoded activity"), timeout=30_000)
    assert room.cancel_button.isEnabled() and not room.controls.isEnabled()
    room.cancel_button.click()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=10_000)
    assert room.stage.text().startswith("Cancelled") and room.result is None and room.figure.cells == []
    assert room.progress.value() == 0 and room.run_button.isEnabled() and room.controls.isEnabled()
    assert room.error.isHidden()

    room.controls.steps.setValue(4)
    room.controls.sweep.setText("")
    room.run()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=30_000)
    assert len(room.figure.cells) == 3 and room.result["sweep"] == []
    assert room.sweep.stack.currentWidget() is room.sweep.empty  # no sweep asked: the plot says how to get one
    _no_heavy_imports()


def test_bad_data_file_shows_the_hosts_message_and_the_room_stays_usable(open_hearth, tmp_path):
    hearth, room = _decode_room(open_hearth)
    room.controls.set_source("data")
    assert not room.controls.snr.isEnabled() and not room.controls.sweep.isEnabled() and room.controls.browse.isEnabled()
    assert room.run() is None  # no file chosen: said in the room, nothing sent
    assert room.error.isVisible() and "Choose a data file" in room.error.text()

    bad = tmp_path / "my-recording.npz"
    bad.write_bytes(b"not really")
    room.controls.path.setText(str(bad))
    room.run()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=30_000)
    assert room.error.isVisible()
    assert "my-recording.npz" in room.error.text() and "fmri_test" in room.error.text()
    assert any("my-recording.npz" in t for t in hearth.window.notifications.texts())
    assert room.run_button.isEnabled() and room.result is None

    room.controls.set_source("procedural")
    room.controls.sweep.setText("0.1, lots")
    assert room.run() is None and "'lots'" in room.error.text()
    room.controls.sweep.setText("0.1 1")
    room.controls.test.setValue(5)
    room.run()
    assert room.error.isHidden()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=30_000)
    assert len(room.figure.cells) == 5 and room.result["request"]["sweep"] == [0.1, 1.0]
    _no_heavy_imports()


def test_run_waits_for_the_host(open_hearth):
    hearth = open_hearth(host=None)
    hearth.window.show_room("Decode")
    room = hearth.window.decode
    assert not room.run_button.isEnabled() and "Waiting for the engine host" in room.stage.text()
    assert "fMRI" in room.figure.titles["pattern"].text()


@pytest.mark.slow
def test_tiny_real_run_fills_the_room(open_hearth, tmp_path):
    if importlib.util.find_spec("diffusers") is None:  # the host needs it; this process must not import it
        pytest.skip("diffusers is not installed")
    already = {name for name in HEAVY_MODULES if name in sys.modules}
    hearth, room = _decode_room(open_hearth, "real")
    c = room.controls
    c.voxels.setValue(400)
    c.train.setValue(40)
    c.test.setValue(4)
    c.samples.setValue(1)
    c.steps.setValue(2)
    c.sweep.setText("1")
    room.run()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=240_000)
    assert room.error.isHidden(), room.error.text()
    assert len(room.figure.cells) == 4 and room.metrics.conditions[-1] == "chance"
    decoded, shuffled = room.result["metrics"]["decoded"], room.result["metrics"]["shuffled"]
    assert decoded["two_way"] > shuffled["two_way"] and decoded["pixcorr"] > shuffled["pixcorr"] + 0.2
    assert room.sweep.series("decoded")[0] == [1.0]

    # the user's own recording: a Hearth .npz with labels, through the same room and host
    import numpy as np

    rng = np.random.default_rng(0)
    images = np.kron(rng.integers(0, 256, size=(30, 8, 8, 3), dtype=np.uint8), np.ones((1, 8, 8, 1), dtype=np.uint8))
    fmri = images[:, ::8, ::8].reshape(30, -1) / 255.0 @ rng.normal(size=(192, 300)) + rng.normal(size=(30, 300))
    mine = tmp_path / "mine.npz"
    np.savez(mine, fmri_train=fmri[:24], fmri_test=fmri[24:], images_train=images[:24], images_test=images[24:],
             labels=np.array(["warm", "cool", "grey"] * 10))
    c.set_source("data")
    c.path.setText(str(mine))
    room.run()
    hearth.qtbot.waitUntil(lambda: not room.running, timeout=240_000)
    assert room.error.isHidden(), room.error.text()
    assert room.result["voxels"] == 300 and room.result["n_test"] == 6 and len(room.figure.cells) == 6
    assert "semantic_acc" in room.result["metrics"]["decoded"]
    shot = tmp_path / "decode-room.png"
    hearth.window.grab().save(str(shot))
    assert shot.stat().st_size > 10_000
    for name in set(HEAVY_MODULES) - already:
        assert name not in sys.modules, f"the GUI process imported {name}"
