"""The decoding run: stimuli -> features -> (simulated) fMRI -> ridge decoders -> low-level decode ->
reconstruction, with the oracle (true features) and shuffled-voxel controls, and the metrics of each.

Runs on the image model's owner thread (the same weights the Image room uses), as a generator of Progress events
and one Result whose ``data`` holds metrics, timings, figure rows (PNG, base64) and the SNR sweep.
"""
from __future__ import annotations

import base64
import time
from typing import Iterator

import numpy as np

from engines.core.cancel import Cancelled, CancelToken
from engines.core.events import Event, Progress, Result
from engines.decode import metrics as M
from engines.decode import simulate, stimuli
from engines.core.requests.decode import DecodeRequest

STAGES = ("stimuli", "features", "simulate", "fit", "decode", "reconstruct", "metrics")


def png_b64(image: np.ndarray) -> str:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class DecodeEngine:
    def __init__(self, image_engine=None) -> None:
        if image_engine is None:
            from engines.image.engine import ImageEngine

            image_engine = ImageEngine()
        self.image = image_engine
        self._vocab_cache: dict[tuple, np.ndarray] = {}

    def run(self, request: DecodeRequest, cancel: CancelToken | None = None) -> Iterator[Event]:
        request.validate()
        cancel = cancel or CancelToken()
        model = self.image.load(request.model, width=64, height=64, batch=min(48, request.test * request.samples))  # the bundled model's size
        return model.owner.stream(lambda: self._run(model, request, cancel), cancel)

    def close(self) -> None:
        self.image.close()

    # -- the run, on the owner thread ------------------------------------------
    def _run(self, model, request: DecodeRequest, cancel: CancelToken) -> Iterator[Event]:
        from engines.decode.features import ImageFeatures

        timings: dict[str, float] = {}
        clock = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            timings[name] = round(timings.get(name, 0.0) + now - clock[0], 3)
            clock[0] = now

        def stage(name: str) -> Progress:
            cancel.raise_if_cancelled()
            return Progress(STAGES.index(name), len(STAGES), name)

        try:
            features = ImageFeatures(model.pipe)
            size = features.size
            fmri_train = fmri_test = None  # stimuli load before the first event: a bad file is a plain error
            if request.source == "data":
                from engines.decode import data as datafile

                loaded = datafile.load(request.path, size)
                train, test, fmri_train, fmri_test = loaded.train, loaded.test, loaded.fmri_train, loaded.fmri_test
            elif request.source == "procedural":
                train = stimuli.procedural(request.train, request.seed, size)
                test = stimuli.procedural(request.test, request.seed + 1, size, held_out=True)
            else:
                pool = (stimuli.photos(request.train + request.test, request.seed, size) if request.source == "photos"
                        else stimuli.folder(request.path, size))
                train, test = stimuli.split(pool, min(request.test, len(pool) // 2), request.seed)
            lap("stimuli")
            yield stage("stimuli")

            yield stage("features")
            z_train, z_test = features.latents(train.images), features.latents(test.images)
            latent_shape = z_train.shape[1:]
            have_text = train.captions is not None and test.captions is not None
            # The caption's token states are both the UNet's conditioning and the semantic embedding the ventral
            # voxels encode (flattened: the tiny text encoder's pooled output barely separates shapes).
            if have_text:
                s_train, s_test = features.text(train.captions)[0], features.text(test.captions)[0]
            else:
                s_empty = features.text([""])[0]
                s_train, s_test = np.repeat(s_empty, len(train), 0), np.repeat(s_empty, len(test), 0)
            p_train, p_test = s_train.reshape(len(s_train), -1), s_test.reshape(len(s_test), -1)
            vocab = self._vocabulary(features, model.id, train, test) if test.labels is not None else None
            lap("features")

            yield stage("simulate")
            rng = np.random.default_rng(request.seed + 17)
            encoding = None
            if fmri_train is None:
                encoding = simulate.build(request.voxels, latent_shape, p_train.shape[1], request.seed)
                e_mean, e_std = p_train.mean(0), p_train.std(0)
                e_scale = np.where(e_std > 1e-6, 1.0 / np.maximum(e_std, 1e-6), 0.0)  # constant dims carry nothing
                sig_train = encoding.signal(z_train, (p_train - e_mean) * e_scale)
                sig_test = encoding.signal(z_test, (p_test - e_mean) * e_scale)
                fmri_train = simulate.measure(encoding, sig_train, request.snr, 1, rng)
                fmri_test = simulate.measure(encoding, sig_test, request.snr, request.repeats, rng)
                flatmap = encoding.flatmap
            else:
                v = fmri_train.shape[1]
                rows = max(1, int(np.sqrt(v / 1.6)))
                cols = int(np.ceil(v / rows))
                flatmap = simulate.FlatMap(rows, cols, cols, v)  # no anatomy in the file: voxel order only
            shuffle_rng = np.random.default_rng(request.seed + 29)  # one voxel permutation per test pattern
            permutation = np.stack([shuffle_rng.permutation(fmri_test.shape[1]) for _ in range(len(fmri_test))])
            lap("simulate")

            yield stage("fit")
            decoders = _fit(fmri_train, z_train, s_train, p_train, have_text, request.seed, cancel)
            lap("fit")

            yield stage("decode")
            conditions = {
                "decoded": _predict(decoders, fmri_test, latent_shape, s_train.shape[1:]),
                "shuffled": _predict(decoders, _shuffle(fmri_test, permutation), latent_shape, s_train.shape[1:]),
                "oracle": {"latent": z_test, "states": s_test, "embedding": p_test},
            }
            if not have_text:
                for cond in conditions.values():
                    cond["states"] = s_test
            for cond in conditions.values():
                cond["lowlevel"] = features.decode(cond["latent"])
            lap("decode")

            if request.reconstruct:
                from engines.decode.reconstruct import ReconstructionSettings, reconstruct
                from engines.image.loading import mode_pipeline
                from engines.image.schedulers import make_scheduler

                img2img = model.mode_pipes.get("img2img")
                if img2img is None:
                    img2img = model.mode_pipes["img2img"] = mode_pipeline(model.pipe, "img2img")
                _no_loras(model)
                img2img.scheduler = make_scheduler("Euler", model.scheduler_config)
                settings = ReconstructionSettings(request.samples, request.strength, request.steps, request.guidance,
                                                  request.seed)
                for name in ("decoded", "oracle", "shuffled"):
                    yield stage("reconstruct")
                    cond = conditions[name]
                    cond["recon"] = yield from reconstruct(features, img2img, cond["lowlevel"], cond["states"],
                                                           cond["latent"], settings, cancel, label=f"reconstruct {name}")
                lap("reconstruct")

            yield stage("metrics")
            table = {}
            for name, cond in conditions.items():
                final = cond.get("recon", cond["lowlevel"])
                table[name] = _metrics(features, test, final, z_test, vocab, cond["embedding"], request, cond)
            if request.reconstruct:
                table["lowlevel"] = _metrics(features, test, conditions["decoded"]["lowlevel"], z_test, vocab,
                                             conditions["decoded"]["embedding"], request, {})
            lap("metrics")
            sweep = []
            for snr in request.sweep:
                cancel.raise_if_cancelled()
                yield Progress(STAGES.index("metrics"), len(STAGES), f"sweep SNR {snr:g}")
                sweep.append(self._sweep_point(features, encoding, snr, request, sig_train, sig_test, z_train, z_test,
                                               s_train, p_train, have_text, latent_shape, permutation, test, vocab)
                             if encoding is not None else None)
            sweep = [p for p in sweep if p]
            lap("sweep")
        except Cancelled:
            yield Result("cancelled", {"timings": timings})
            return

        from engines.decode.figure import compose

        rows, figure_rows = [], []
        for i in range(len(test)):
            cells = {"stimulus": test.images[i], "pattern": simulate.heatmap(flatmap, fmri_test[i]),
                     "lowlevel": conditions["decoded"]["lowlevel"][i]}
            for name in ("decoded", "oracle", "shuffled"):
                cells[name] = conditions[name].get("recon", conditions[name]["lowlevel"])[i]
            texts = {"label": test.labels[i] if test.labels else "", "caption": test.captions[i] if test.captions else "",
                     "decoded_label": (conditions["decoded"].get("labels") or [""] * len(test))[i]}
            figure_rows.append({**cells, **texts})
            rows.append({**{k: png_b64(v) for k, v in cells.items()}, **texts})
        figure = base64.b64encode(compose(figure_rows)).decode("ascii")
        n_way = min(request.n_way, len(test))
        chance = {"pixcorr": 0.0, "two_way": 0.5, "n_way_top1": 1.0 / n_way}
        if vocab is not None:
            chance["semantic_acc"] = 1.0 / max(1, len({l for l in (train.labels or []) + (test.labels or [])}))
        yield Result("stop", {
            "request": request.to_dict(), "metrics": table, "chance": chance, "n_way": n_way,
            "alphas": {k: d.alpha for k, d in decoders.items()}, "timings": timings, "rows": rows,
            "sweep": sweep, "figure_png": figure, "voxels": int(fmri_train.shape[1]), "n_train": len(train), "n_test": len(test),
            "source": request.source, "model": model.id,
        })

    def _vocabulary(self, features, model_id: str, train: stimuli.StimulusSet, test: stimuli.StimulusSet):
        """The candidate captions a semantic decode picks from, their embeddings, each one's label and (for
        procedural scenes) its attributes. Procedural: every caption of the vocabulary; otherwise the captions of
        the labelled stimuli, each mapped to its stimulus' label."""
        if test.source == "procedural":
            from engines.image.shapes import all_scenes

            by_caption = {s.caption(): s for s in all_scenes()}
            captions = list(test.vocabulary)
            labels = [f"{by_caption[c].color} {by_caption[c].shape}" for c in captions]
            attrs = [{"color": by_caption[c].color, "shape": by_caption[c].shape, "position": by_caption[c].position,
                      "background": by_caption[c].background} for c in captions]
        else:
            label_of = dict(zip((train.captions or []) + (test.captions or []), (train.labels or []) + (test.labels or [])))
            for caption in test.vocabulary:  # photo captions name their label
                label_of.setdefault(caption, caption.removeprefix(stimuli.photo_caption("")))
            captions = sorted(label_of)
            labels, attrs = [label_of[c] for c in captions], None
        key = (model_id, tuple(captions))
        if key not in self._vocab_cache:
            self._vocab_cache = {key: features.text(captions)[0].reshape(len(captions), -1)}  # one set at a time
        return captions, self._vocab_cache[key], labels, attrs

    def _sweep_point(self, features, encoding, snr, request, sig_train, sig_test, z_train, z_test, s_train, p_train,
                     have_text, latent_shape, permutation, test, vocab) -> dict:
        rng = np.random.default_rng(request.seed + 17 + int(snr * 1000))
        f_train = simulate.measure(encoding, sig_train, snr, 1, rng)
        f_test = simulate.measure(encoding, sig_test, snr, request.repeats, rng)
        decoders = _fit(f_train, z_train, s_train, p_train, have_text, request.seed, None)
        point = {"snr": snr}
        for name, x in (("decoded", f_test), ("shuffled", _shuffle(f_test, permutation))):
            cond = _predict(decoders, x, latent_shape, s_train.shape[1:])
            images = features.decode(cond["latent"])
            point[name] = _metrics(features, test, images, z_test, vocab, cond["embedding"], request, {})
        point["alpha"] = decoders["lowlevel"].alpha
        return point


def _fit(fmri_train, z_train, s_train, p_train, have_text, seed, cancel) -> dict:
    from engines.decode.ridge import fit_ridge_blocks

    blocks = {"lowlevel": z_train.reshape(len(z_train), -1)}
    if have_text:
        blocks["semantic"] = p_train
    return fit_ridge_blocks(fmri_train, blocks, seed=seed, cancel=cancel)


def _shuffle(fmri: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    return np.take_along_axis(fmri, permutation, axis=1)


def _predict(decoders: dict, x: np.ndarray, latent_shape, states_shape) -> dict:
    latent = decoders["lowlevel"].predict_restandardised(x).reshape((len(x),) + tuple(latent_shape))
    out = {"latent": latent.astype(np.float32), "embedding": None, "states": None}
    if "semantic" in decoders:
        pred = decoders["semantic"].predict_restandardised(x)
        out["embedding"] = pred
        out["states"] = pred.reshape((len(x),) + tuple(states_shape)).astype(np.float32)
    return out


def _metrics(features, test, images, z_test, vocab, embedding, request, cond: dict) -> dict:
    truth = test.images
    latents = features.latents(images)
    two_way_latent = M.two_way(latents, z_test)
    n_way_latent, n = M.n_way_top1(latents, z_test, request.n_way, seed=request.seed)
    n_way_pixels, _ = M.n_way_top1(images, truth, request.n_way, seed=request.seed)
    out = {"pixcorr": M.pixcorr(truth, images), "ssim": M.ssim(truth, images), "two_way": two_way_latent,
           "two_way_pixels": M.two_way(images, truth), "n_way_top1": n_way_latent, "n_way_top1_pixels": n_way_pixels,
           "n_way": n}
    if vocab is not None and embedding is not None:
        captions, vocab_embeddings, labels, attrs = vocab
        # Compare in standardised coordinates: raw caption embeddings share a large common component, which would
        # make every caption look alike.
        mean, std = vocab_embeddings.mean(0), vocab_embeddings.std(0)
        scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 0.0)
        pick = np.argmax(M.correlation_matrix((embedding - mean) * scale, (vocab_embeddings - mean) * scale), axis=1)
        decoded = [labels[i] for i in pick]
        out["semantic_acc"] = M.accuracy(decoded, test.labels)
        if attrs is not None and test.attributes is not None:
            for field in ("color", "shape", "position", "background"):
                out[f"{field}_acc"] = M.accuracy([attrs[i][field] for i in pick], [a[field] for a in test.attributes])
        cond["labels"] = decoded
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def _no_loras(model) -> None:
    """Decoding uses the model as trained: drop LoRAs an Image job left active."""
    if model.loras:
        from types import SimpleNamespace

        from engines.image.engine import _apply_loras

        _apply_loras(model, SimpleNamespace(loras=[], allow_pickle=False))
