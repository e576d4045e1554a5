"""The decoding run end to end on the bundled image model: simulated fMRI for procedural stimuli, photos, a user's
data file; cancel; the CLI."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from engines.core.cancel import CancelToken
from engines.core.events import Progress, Result
from engines.core.requests.decode import DecodeRequest
from tests.test_cli import hearth

SMALL = dict(voxels=1200, train=300, test=12, samples=2, steps=8)
METRICS = ("pixcorr", "ssim", "two_way", "n_way_top1", "semantic_acc")


@pytest.fixture(scope="module")
def engine():
    from engines.decode.engine import DecodeEngine

    eng = DecodeEngine()
    yield eng
    eng.close()


def run(engine, cancel=None, **fields) -> tuple[list, Result]:
    events = list(engine.run(DecodeRequest(**{**SMALL, **fields}), cancel))
    assert isinstance(events[-1], Result)
    return events, events[-1]


def test_demo_beats_the_shuffled_floor_and_the_oracle_is_the_ceiling(engine):
    from PIL import Image

    events, result = run(engine)
    assert result.finish_reason == "stop"
    stages = [e.message for e in events if isinstance(e, Progress)]
    assert stages[:5] == ["stimuli", "features", "simulate", "fit", "decode"] and "reconstruct decoded" in stages
    m = result.data["metrics"]
    print(json.dumps({k: {x: m[k][x] for x in METRICS} for k in m}))
    decoded, shuffled, oracle = m["decoded"], m["shuffled"], m["oracle"]
    assert decoded["pixcorr"] > shuffled["pixcorr"] + 0.3
    assert decoded["ssim"] > shuffled["ssim"] + 0.03
    assert decoded["two_way"] > shuffled["two_way"] + 0.25 and decoded["two_way"] > 0.8
    assert decoded["n_way_top1"] > shuffled["n_way_top1"] + 0.3
    assert decoded["semantic_acc"] > shuffled["semantic_acc"] + 0.15
    for key in METRICS:
        assert oracle[key] >= decoded[key] - 0.02, key
    assert result.data["chance"]["two_way"] == 0.5 and result.data["n_way"] == 12
    row = result.data["rows"][0]
    for key in ("stimulus", "pattern", "lowlevel", "decoded", "oracle", "shuffled"):
        assert Image.open(io.BytesIO(base64.b64decode(row[key]))).size[0] >= 64
    assert row["label"] and row["caption"].startswith("a ")
    figure = Image.open(io.BytesIO(base64.b64decode(result.data["figure_png"])))
    assert figure.size[0] > 6 * 96
    assert set(result.data["timings"]) >= {"stimuli", "features", "simulate", "fit", "decode", "reconstruct", "metrics"}


def test_same_seed_same_result_and_the_sweep_degrades_with_noise(engine):
    _, a = run(engine, reconstruct=False, sweep=[0.002, 5.0])
    _, b = run(engine, reconstruct=False)
    assert a.data["metrics"]["decoded"] == b.data["metrics"]["decoded"]
    low, high = a.data["sweep"]
    assert [low["snr"], high["snr"]] == [0.002, 5.0]
    assert high["decoded"]["pixcorr"] > low["decoded"]["pixcorr"] and high["decoded"]["two_way"] > low["decoded"]["two_way"]
    assert low["alpha"] >= high["alpha"]
    assert "decoded" in a.data["rows"][0] and "recon" not in a.data["metrics"]


def test_photos_and_a_users_data_file(engine, tmp_path):
    _, photos = run(engine, source="photos", train=60, test=8, reconstruct=False)
    assert photos.data["metrics"]["decoded"]["two_way"] > photos.data["metrics"]["shuffled"]["two_way"]
    # A data file: "fMRI" made by a random linear map of the images plus noise, labelled.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    images = np.kron(images, np.ones((1, 4, 4, 1), dtype=np.uint8))  # blocky 64x64 images
    w = rng.normal(size=(16 * 16 * 3, 500))
    fmri = images[:, ::4, ::4].reshape(40, -1) / 255.0 @ w + rng.normal(size=(40, 500)) * 2
    np.savez(tmp_path / "mine.npz", fmri_train=fmri[:32], fmri_test=fmri[32:], images_train=images[:32],
             images_test=images[32:], labels=np.array(["a", "b"] * 20))
    _, mine = run(engine, source="data", path=str(tmp_path / "mine.npz"), reconstruct=False)
    assert mine.data["voxels"] == 500 and mine.data["n_train"] == 32 and mine.data["n_test"] == 8
    assert "semantic_acc" in mine.data["metrics"]["decoded"]


def test_bad_data_is_a_clear_error_and_the_engine_stays_usable(engine, tmp_path):
    from engines.core.errors import DataFileError, RequestError

    np.savez(tmp_path / "bad.npz", fmri_train=np.zeros((5, 3)))
    with pytest.raises(DataFileError, match="no 'fmri_test'"):
        run(engine, source="data", path=str(tmp_path / "bad.npz"))
    with pytest.raises(RequestError, match="voxels"):
        run(engine, voxels=5)
    _, ok = run(engine, reconstruct=False, test=4, train=40)
    assert ok.finish_reason == "stop"


def test_cancel_stops_within_the_reconstruction(engine):
    cancel = CancelToken()
    seen = []
    for event in engine.run(DecodeRequest(**{**SMALL, "steps": 40, "samples": 4}), cancel):
        seen.append(event)
        if isinstance(event, Progress) and event.message == "reconstruct":
            cancel.cancel()
    assert isinstance(seen[-1], Result) and seen[-1].finish_reason == "cancelled"
    assert not any(isinstance(e, Progress) and e.message == "reconstruct oracle" for e in seen)


def test_cli_writes_metrics_and_figure(tmp_path):
    out = hearth("decode", "--demo", "--voxels", "800", "--train", "120", "--test", "6", "--samples", "1",
                 "--steps", "4", "--sweep", "0.1", "--out", str(tmp_path / "out"), home=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for name in ("decoded", "oracle", "shuffled"):
        assert set(METRICS) <= set(doc[name])
    assert doc["sweep"][0]["snr"] == 0.1 and (tmp_path / "out" / "figure.png").stat().st_size > 1000
    assert "condition,metric" in (tmp_path / "out" / "metrics.csv").read_text().replace("snr,", "")
    assert str(tmp_path / "out" / "metrics.json") in out.stdout
    bad = hearth("decode", "--data", str(tmp_path / "missing.npz"), home=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error:")
    assert "missing.npz does not exist" in bad.stderr
