"""The decoding demo across an SNR sweep: metrics per SNR and condition, and run time per stage.

Each SNR is a full run as the Decode room does it (simulate -> fit -> low-level decode -> img2img reconstruction
of the decoded, oracle and shuffled conditions -> metrics) with the default settings unless overridden. The
ridge fit is also timed against scikit-learn's RidgeCV (5-fold, same alpha grid) on the same data when
scikit-learn is installed (it is a test dependency).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/decode_demo.py [--snrs 0.01,0.05,0.2,1] [--test 20] [--train 800]

Last line: {"snr": {"0.01": {"decoded": {...}, "oracle": {...}, "shuffled": {...}}, ...},
            "timings_s": {"0.01": {"simulate": .., "fit": .., "reconstruct": ..}, ...}, "fit_vs_sklearn": {...}}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
KEYS = ("pixcorr", "ssim", "two_way", "n_way_top1", "semantic_acc")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--snrs", default="0.01,0.05,0.2,1")
    p.add_argument("--voxels", type=int, default=4000)
    p.add_argument("--train", type=int, default=800)
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from engines.core.events import Result
    from engines.decode.engine import DecodeEngine
    from engines.core.requests.decode import DecodeRequest

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    engine = DecodeEngine()
    t = time.perf_counter()
    engine.image.load("default", width=64, height=64)
    load_s = time.perf_counter() - t
    out = {"snr": {}, "timings_s": {}, "model_load_s": round(load_s, 2)}
    for snr in [float(s) for s in args.snrs.split(",")]:
        request = DecodeRequest(snr=snr, voxels=args.voxels, train=args.train, test=args.test, samples=args.samples,
                                seed=args.seed)
        t = time.perf_counter()
        result = [e for e in engine.run(request) if isinstance(e, Result)][-1]
        wall = time.perf_counter() - t
        m = result.data["metrics"]
        out["snr"][f"{snr:g}"] = {c: {k: m[c].get(k) for k in KEYS} for c in ("decoded", "lowlevel", "oracle", "shuffled")}
        out["timings_s"][f"{snr:g}"] = {**result.data["timings"], "total": round(wall, 2)}
        out["alphas"] = out.get("alphas", {}) | {f"{snr:g}": result.data["alphas"]}
        print(f"SNR {snr:g}: " + "  ".join(f"{c}: " + " ".join(f"{k}={m[c].get(k, float('nan')):.3f}" for k in KEYS)
                                        for c in ("decoded", "oracle", "shuffled")), file=sys.stderr, flush=True)
    out["chance"] = result.data["chance"]

    # The ridge fit against scikit-learn on the same simulated data (low-level target block).
    try:
        from sklearn.linear_model import RidgeCV
        from sklearn.model_selection import KFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        out["fit_vs_sklearn"] = None
    else:
        from engines.decode import simulate
        from engines.decode.ridge import DEFAULT_ALPHAS, fit_ridge

        rng = np.random.default_rng(0)
        z = rng.normal(size=(args.train, 4, 16, 16)).astype(np.float32)
        emb = rng.normal(size=(args.train, 64))
        enc = simulate.build(args.voxels, (4, 16, 16), 64, seed=0)
        x = simulate.measure(enc, enc.signal(z, emb), 0.5, 1, rng)
        y = z.reshape(len(z), -1)
        t = time.perf_counter()
        ours = fit_ridge(x, y)
        hearth_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS, cv=KFold(5, shuffle=True, random_state=0))).fit(x, y)
        sklearn_s = time.perf_counter() - t
        out["fit_vs_sklearn"] = {"hearth_s": round(hearth_s, 2), "sklearn_s": round(sklearn_s, 2),
                                 "ratio": round(sklearn_s / hearth_s, 2), "hearth_alpha": ours.alpha,
                                 "sklearn_alpha": float(ref[-1].alpha_)}
    engine.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
