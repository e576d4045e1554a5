"""Real decoding data a user brings: Hearth's own ``.npz``/``.h5`` layout, the Brain-Diffuser ``.npy`` folder and
the MinD-Vis GOD ``.npz`` layout. Every problem is a DataFileError naming the file and the field.

Hearth layout (``.npz`` or ``.h5``): ``fmri_train [N, V]``, ``fmri_test [M, V]`` (float), and either
``images_train [N, H, W, 3]`` + ``images_test [M, H, W, 3]`` (uint8) or ``images [K, H, W, 3]`` +
``train_image_idx [N]`` + ``test_image_idx [M]``; optional ``labels``/``captions`` (one per fMRI row, train rows
then test rows, or one per image with the ``images`` form), or ``labels_train``/``labels_test`` and
``captions_train``/``captions_test``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engines.core.errors import DataFileError
from engines.decode.stimuli import StimulusSet, photo_caption, to_square


@dataclass
class DecodingData:
    fmri_train: np.ndarray
    fmri_test: np.ndarray
    train: StimulusSet
    test: StimulusSet
    layout: str
    path: str


def load(path: str | Path, size: int = 64) -> DecodingData:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileError(f"{path} does not exist.", path=path, hint="Choose a .npz/.h5 file or a data folder.")
    if path.is_dir():
        if list(path.glob("nsd_train_fmriavg_*.npy")):
            return _brain_diffuser(path, size)
        if (path / "images_256.npz").is_file() and list(path.glob("sbj_*.npz")):
            return _god(sorted(path.glob("sbj_*.npz"))[0], size)
        raise DataFileError(f"{path} is neither a Brain-Diffuser folder (nsd_train_fmriavg_*.npy, ...) nor a MinD-Vis "
                            "GOD folder (sbj_N.npz + images_256.npz).", path=path,
                            hint="Choose the folder that holds those files, or a Hearth .npz/.h5 file.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
        if {"arr_0", "arr_2", "arr_3"} <= set(arrays):
            return _god(path, size, arrays)
        return _hearth(arrays, path, size)
    if suffix in (".h5", ".hdf5"):
        return _hearth(_read_h5(path), path, size)
    raise DataFileError(f"{path.name} is not a .npz, .h5 or .hdf5 file.", path=path,
                        hint="Save the data with numpy.savez or h5py in the layout the README describes.")


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataFileError(f"{path.name} holds Python objects (pickles); Hearth does not unpickle data files.",
                                path=path, hint="Save strings as fixed-width text arrays (numpy 'U' dtype).") from exc
        raise DataFileError(f"{path.name} is not a readable .npz file ({exc}).", path=path,
                            hint="Check that the file is complete.") from exc
    except (OSError, EOFError) as exc:
        raise DataFileError(f"{path.name} is not a readable .npz file ({exc}).", path=path,
                            hint="Check that the file is complete.") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends from a truncated archive
        raise DataFileError(f"{path.name} is not a readable .npz file ({type(exc).__name__}: {exc}).", path=path,
                            hint="Check that the file is complete.") from exc


def _read_h5(path: Path) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out = {}
            for key, value in f.items():
                if isinstance(value, h5py.Dataset):
                    data = value[()]
                    if data.dtype.kind in "SO":
                        data = np.array([d.decode("utf-8") if isinstance(d, bytes) else str(d) for d in data.ravel()]).reshape(data.shape)
                    out[key] = data
            return out
    except OSError as exc:
        raise DataFileError(f"{path.name} is not a readable HDF5 file ({exc}).", path=path,
                            hint="Check that the file is complete.") from exc


def _require(arrays: dict, key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        raise DataFileError(f"{path.name} has no '{key}' array (it has: {', '.join(sorted(arrays)) or 'nothing'}).",
                            path=path, hint="See the Decode section of the README for the expected layout.")
    return np.asarray(arrays[key])


def _fmri(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    if a.ndim != 2:
        raise DataFileError(f"'{key}' in {path.name} has shape {a.shape}; expected [samples, voxels].", path=path,
                            hint="Flatten each volume to one row of voxels.")
    if a.dtype.kind not in "fiu":
        raise DataFileError(f"'{key}' in {path.name} has dtype {a.dtype}; expected numbers.", path=path)
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataFileError(f"'{key}' in {path.name} contains NaN or infinite values.", path=path,
                            hint="Replace them (e.g. with the voxel's mean) or drop those voxels.")
    return a


def _images(a: np.ndarray, key: str, path: Path, size: int, allow_float: bool = False) -> np.ndarray:
    if a.ndim != 4 or a.shape[-1] != 3:
        raise DataFileError(f"'{key}' in {path.name} has shape {a.shape}; expected [N, H, W, 3].", path=path,
                            hint="Store RGB images, channels last.")
    if a.dtype != np.uint8:
        if not (allow_float and a.dtype.kind == "f"):
            raise DataFileError(f"'{key}' in {path.name} has dtype {a.dtype}; expected uint8 (0-255).", path=path,
                                hint="Convert with (images * 255).round().astype('uint8') if they are 0-1 floats.")
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if a.shape[1:3] == (size, size):
        return a
    return np.stack([to_square(Image.fromarray(im), size) for im in a])


def _texts(arrays: dict, name: str, n_train: int, n_test: int, path: Path, index=None):
    """``(train, test)`` lists for ``labels`` or ``captions``, or ``(None, None)``."""
    if f"{name}_train" in arrays or f"{name}_test" in arrays:
        train = _strings(_require(arrays, f"{name}_train", path), f"{name}_train", n_train, path)
        test = _strings(_require(arrays, f"{name}_test", path), f"{name}_test", n_test, path)
        return train, test
    if name not in arrays:
        return None, None
    if index is not None:
        values = _strings(arrays[name], name, None, path)
        tr, te = index
        if len(values) != len(arrays["images"]):
            raise DataFileError(f"'{name}' in {path.name} has {len(values)} entries; with 'images' it needs one per "
                                f"image ({len(arrays['images'])}).", path=path)
        return [values[i] for i in tr], [values[i] for i in te]
    values = _strings(arrays[name], name, n_train + n_test, path)
    return values[:n_train], values[n_train:]


def _strings(a, key: str, expected: int | None, path: Path) -> list[str]:
    a = np.asarray(a)
    if a.ndim == 2:  # several captions per stimulus (NSD has five): take the first
        a = a[:, 0]
    values = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in a.ravel()]
    if expected is not None and len(values) != expected:
        raise DataFileError(f"'{key}' in {path.name} has {len(values)} entries; expected {expected}.", path=path)
    return values


def _index(arrays: dict, key: str, count: int, path: Path) -> np.ndarray:
    idx = _require(arrays, key, path)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise DataFileError(f"'{key}' in {path.name} must be a 1-D integer array; it is {idx.dtype} {idx.shape}.", path=path)
    if len(idx) and (idx.min() < 0 or idx.max() >= count):
        raise DataFileError(f"'{key}' in {path.name} points outside 'images' (0..{count - 1}).", path=path)
    return idx


def _assemble(fmri_train, fmri_test, images_train, images_test, labels, captions, layout, path, names=None):
    for what, f, im in (("train", fmri_train, images_train), ("test", fmri_test, images_test)):
        if len(f) != len(im):
            raise DataFileError(f"{path.name}: {len(f)} {what} fMRI rows but {len(im)} {what} images.", path=path,
                                hint="Each fMRI row needs the image that was shown.")
    if fmri_train.shape[1] != fmri_test.shape[1]:
        raise DataFileError(f"{path.name}: training data has {fmri_train.shape[1]} voxels, test data "
                            f"{fmri_test.shape[1]}.", path=path, hint="Use the same voxels in both.")
    if len(fmri_train) < 4 or len(fmri_test) < 2:
        raise DataFileError(f"{path.name}: {len(fmri_train)} training and {len(fmri_test)} test samples; decoding "
                            "needs at least 4 and 2.", path=path)
    (l_train, l_test), (c_train, c_test) = labels, captions
    if c_train is None and l_train is not None:
        c_train, c_test = [photo_caption(l) for l in l_train], [photo_caption(l) for l in l_test]
    vocab = sorted(set(c_train or []) | set(c_test or []))
    train = StimulusSet(images_train, l_train, c_train, source=layout, vocabulary=vocab)
    test = StimulusSet(images_test, l_test, c_test, source=layout, vocabulary=vocab)
    return DecodingData(fmri_train, fmri_test, train, test, layout, str(path))


def _hearth(arrays: dict, path: Path, size: int) -> DecodingData:
    fmri_train = _fmri(_require(arrays, "fmri_train", path), "fmri_train", path)
    fmri_test = _fmri(_require(arrays, "fmri_test", path), "fmri_test", path)
    index = None
    if "images" in arrays and "images_train" not in arrays:
        images = _images(np.asarray(arrays["images"]), "images", path, size)
        tr = _index(arrays, "train_image_idx", len(images), path)
        te = _index(arrays, "test_image_idx", len(images), path)
        images_train, images_test, index = images[tr], images[te], (tr, te)
    else:
        images_train = _images(_require(arrays, "images_train", path), "images_train", path, size)
        images_test = _images(_require(arrays, "images_test", path), "images_test", path, size)
    n, m = len(fmri_train), len(fmri_test)
    return _assemble(fmri_train, fmri_test, images_train, images_test,
                     _texts(arrays, "labels", n, m, path, index), _texts(arrays, "captions", n, m, path, index),
                     "hearth", path)


def _brain_diffuser(folder: Path, size: int) -> DecodingData:
    """processed_data/subjXX of Brain-Diffuser: nsd_{train,test}_fmriavg_nsdgeneral_subN.npy,
    nsd_{train,test}_stim_subN.npy, optional nsd_{train,test}_cap_subN.npy."""
    def one(pattern: str, required: bool = True):
        found = sorted(folder.glob(pattern))
        if not found:
            if required:
                raise DataFileError(f"{folder} has no {pattern} file.", path=folder,
                                    hint="A Brain-Diffuser folder holds nsd_train/test_fmriavg and _stim .npy files.")
            return None
        try:
            return np.load(found[0], allow_pickle=False), found[0]
        except (ValueError, OSError) as exc:
            raise DataFileError(f"{found[0].name} could not be read ({exc}).", path=found[0],
                                hint="Check that the file is complete; strings must not be stored as objects.") from exc

    (f_tr, p1), (f_te, p2) = one("nsd_train_fmriavg_*.npy"), one("nsd_test_fmriavg_*.npy")
    (s_tr, p3), (s_te, p4) = one("nsd_train_stim_*.npy"), one("nsd_test_stim_*.npy")
    cap_tr, cap_te = one("nsd_train_cap_*.npy", False), one("nsd_test_cap_*.npy", False)
    fmri_train, fmri_test = _fmri(f_tr, p1.name, p1), _fmri(f_te, p2.name, p2)
    images_train, images_test = _images(s_tr, p3.name, p3, size), _images(s_te, p4.name, p4, size)
    captions = (None, None)
    if cap_tr is not None and cap_te is not None:
        captions = (_strings(cap_tr[0], cap_tr[1].name, len(fmri_train), cap_tr[1]),
                    _strings(cap_te[0], cap_te[1].name, len(fmri_test), cap_te[1]))
    return _assemble(fmri_train, fmri_test, images_train, images_test, (None, None), captions, "brain-diffuser", folder)


def _god(sbj: Path, size: int, arrays: dict | None = None, roi: str = "VC") -> DecodingData:
    """MinD-Vis's GOD files: sbj_N.npz (arr_0 training fMRI, arr_2 averaged test fMRI, arr_3 the training image
    index, ROI masks such as VC) next to images_256.npz (train_images, test_images)."""
    arrays = arrays if arrays is not None else _read_npz(sbj)
    images_file = sbj.parent / "images_256.npz"
    if not images_file.is_file():
        raise DataFileError(f"{sbj.name} is a GOD subject file but {images_file} is missing.", path=images_file,
                            hint="Put images_256.npz (train_images, test_images) next to it.")
    images = _read_npz(images_file)
    mask = np.asarray(arrays[roi]).astype(bool) if roi in arrays else None
    fmri_train = _fmri(_require(arrays, "arr_0", sbj), "arr_0", sbj)
    fmri_test = _fmri(_require(arrays, "arr_2", sbj), "arr_2", sbj)
    if mask is not None:
        if mask.shape != (fmri_train.shape[1],):
            raise DataFileError(f"The '{roi}' mask in {sbj.name} has shape {mask.shape}; the fMRI has "
                                f"{fmri_train.shape[1]} voxels.", path=sbj)
        fmri_train, fmri_test = fmri_train[:, mask], fmri_test[:, mask]
    train_images = _images(_require(images, "train_images", images_file), "train_images", images_file, size, allow_float=True)
    idx = _index(arrays, "arr_3", len(train_images), sbj)
    test_images = _images(_require(images, "test_images", images_file), "test_images", images_file, size, allow_float=True)
    return _assemble(fmri_train, fmri_test, train_images[idx], test_images, (None, None), (None, None), "mindvis-god", sbj)
