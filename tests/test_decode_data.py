"""Importing real decoding data: each supported layout, and each kind of malformed file."""
from __future__ import annotations

import numpy as np
import pytest

from engines.core.errors import DataFileError
from engines.decode import data


def _arrays(n=10, m=4, v=30, size=20, seed=0):
    rng = np.random.default_rng(seed)
    return {"fmri_train": rng.normal(size=(n, v)).astype(np.float32), "fmri_test": rng.normal(size=(m, v)).astype(np.float32),
            "images_train": rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8),
            "images_test": rng.integers(0, 256, size=(m, size, size, 3), dtype=np.uint8)}


def test_hearth_npz_with_split_images_and_labels(tmp_path):
    a = _arrays()
    labels = np.array(["cat", "dog"] * 7)
    np.savez(tmp_path / "d.npz", **a, labels=labels)
    d = data.load(tmp_path / "d.npz", size=32)
    assert d.layout == "hearth" and d.fmri_train.shape == (10, 30) and d.fmri_test.shape == (4, 30)
    assert d.train.images.shape == (10, 32, 32, 3) and d.train.images.dtype == np.uint8
    assert d.train.labels == ["cat", "dog"] * 5 and d.test.labels == ["cat", "dog"] * 2
    assert d.test.captions[0] == "a photo of a cat" and len(d.test.vocabulary) == 2


def test_hearth_npz_with_shared_images_and_indices_and_h5(tmp_path):
    import h5py

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    arrays = {"fmri_train": rng.normal(size=(8, 12)), "fmri_test": rng.normal(size=(3, 12)), "images": images,
              "train_image_idx": np.array([0, 1, 2, 3, 0, 1, 2, 3]), "test_image_idx": np.array([4, 5, 4]),
              "captions": np.array([f"caption {i}" for i in range(6)])}
    np.savez(tmp_path / "d.npz", **arrays)
    d = data.load(tmp_path / "d.npz", size=32)
    assert np.array_equal(d.train.images[4], images[0]) and np.array_equal(d.test.images[1], images[5])
    assert d.test.captions == ["caption 4", "caption 5", "caption 4"] and d.train.labels is None
    with h5py.File(tmp_path / "d.h5", "w") as f:
        for key, value in arrays.items():
            f[key] = value.astype("S") if value.dtype.kind == "U" else value
    h = data.load(tmp_path / "d.h5", size=32)
    assert np.array_equal(h.fmri_test, d.fmri_test) and h.test.captions == d.test.captions


def test_brain_diffuser_folder(tmp_path):
    a = _arrays(size=40)
    np.save(tmp_path / "nsd_train_fmriavg_nsdgeneral_sub1.npy", a["fmri_train"])
    np.save(tmp_path / "nsd_test_fmriavg_nsdgeneral_sub1.npy", a["fmri_test"])
    np.save(tmp_path / "nsd_train_stim_sub1.npy", a["images_train"])
    np.save(tmp_path / "nsd_test_stim_sub1.npy", a["images_test"])
    np.save(tmp_path / "nsd_train_cap_sub1.npy", np.array([[f"train {i}", "other"] for i in range(10)]))
    np.save(tmp_path / "nsd_test_cap_sub1.npy", np.array([[f"test {i}", "other"] for i in range(4)]))
    d = data.load(tmp_path, size=32)
    assert d.layout == "brain-diffuser" and d.train.images.shape == (10, 32, 32, 3)
    assert d.test.captions == ["test 0", "test 1", "test 2", "test 3"]


def test_mindvis_god_layout(tmp_path):
    rng = np.random.default_rng(2)
    train_images = rng.uniform(0, 255, size=(5, 36, 36, 3))  # MinD-Vis writes these as floats
    test_images = rng.uniform(0, 255, size=(3, 36, 36, 3))
    np.savez(tmp_path / "images_256.npz", train_images=train_images, test_images=test_images)
    vc = np.zeros(25, dtype=bool)
    vc[:15] = True
    np.savez(tmp_path / "sbj_3.npz", arr_0=rng.normal(size=(10, 25)), arr_1=rng.normal(size=(30, 25)),
             arr_2=rng.normal(size=(3, 25)), arr_3=np.array([0, 1, 2, 3, 4] * 2), VC=vc)
    for path in (tmp_path / "sbj_3.npz", tmp_path):
        d = data.load(path, size=32)
        assert d.layout == "mindvis-god" and d.fmri_train.shape == (10, 15) and d.fmri_test.shape == (3, 15)
        assert d.train.images.shape == (10, 32, 32, 3) and np.array_equal(d.train.images[0], d.train.images[5])


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("fmri_test"), "no 'fmri_test' array"),
    (lambda a: a.update(images_train=a["images_train"].astype(np.float32)), "'images_train' .* dtype float32; expected uint8"),
    (lambda a: a.update(images_test=a["images_test"][..., 0]), r"'images_test' .* shape \(4, 20, 20\)"),
    (lambda a: a.update(fmri_train=a["fmri_train"][:7]), "7 train fMRI rows but 10 train images"),
    (lambda a: a.update(fmri_test=a["fmri_test"][:, :20]), "30 voxels, test data 20"),
    (lambda a: a["fmri_train"].__setitem__((2, 3), np.nan), "'fmri_train' .* NaN"),
    (lambda a: a.update(labels=np.array(["x"] * 3)), "'labels' .* 3 entries; expected 14"),
    (lambda a: a.update(fmri_train=a["fmri_train"].reshape(10, 3, 10)), r"'fmri_train' .* shape \(10, 3, 10\)"),
])
def test_malformed_hearth_files_name_the_field(tmp_path, change, message):
    a = _arrays()
    change(a)
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(DataFileError, match=message) as info:
        data.load(tmp_path / "bad.npz")
    assert info.value.path.endswith("bad.npz")


def test_unreadable_files(tmp_path):
    np.savez(tmp_path / "good.npz", **_arrays())
    raw = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match="not a readable .npz"):
        data.load(tmp_path / "cut.npz")
    a = _arrays()
    np.savez(tmp_path / "objects.npz", **a, labels=np.array([object(), "x"], dtype=object))
    with pytest.raises(DataFileError, match="pickles"):
        data.load(tmp_path / "objects.npz")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(DataFileError, match="not a .npz, .h5"):
        data.load(tmp_path / "x.csv")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataFileError, match="HDF5"):
        data.load(tmp_path / "bad.h5")
    with pytest.raises(DataFileError, match="does not exist"):
        data.load(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="neither a Brain-Diffuser folder"):
        data.load(tmp_path / "empty")
    arrays = {**_arrays(), "images": np.zeros((3, 8, 8, 3), np.uint8), "train_image_idx": np.arange(10),
              "test_image_idx": np.arange(4)}
    del arrays["images_train"], arrays["images_test"]
    np.savez(tmp_path / "idx.npz", **arrays)
    with pytest.raises(DataFileError, match="points outside 'images'"):
        data.load(tmp_path / "idx.npz")
