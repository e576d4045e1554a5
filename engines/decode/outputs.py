"""Writing a decoding run's results: metrics.json, metrics.csv and figure.png, atomically (the CLI and the Decode
room's export share this). Plain Python: the GUI may call it without loading any model code."""
from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from engines.core.paths import atomic_write_bytes, atomic_write_text

CONDITIONS = ("decoded", "oracle", "shuffled", "lowlevel")


def metrics_document(data: dict) -> dict:
    """``{"decoded": {...}, "oracle": {...}, "shuffled": {...}, ...}`` plus the chance levels, the SNR sweep, the
    settings, the cross-validated alphas and the stage timings."""
    doc = {name: data["metrics"][name] for name in CONDITIONS if name in data.get("metrics", {})}
    for key in ("chance", "n_way", "sweep", "alphas", "timings", "voxels", "n_train", "n_test", "source", "request"):
        if key in data:
            doc[key] = data[key]
    return doc


def metrics_csv(data: dict) -> str:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["snr", "condition", "metric", "value"])
    snr = (data.get("request") or {}).get("snr", "")
    for name in CONDITIONS:
        for metric, value in (data.get("metrics", {}).get(name) or {}).items():
            out.writerow([snr, name, metric, value])
    for point in data.get("sweep") or []:
        for name in ("decoded", "shuffled"):
            for metric, value in point[name].items():
                out.writerow([point["snr"], f"sweep-{name}", metric, value])
    return buf.getvalue()


def write_results(data: dict, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "csv": out / "metrics.csv", "figure": out / "figure.png"}
    atomic_write_text(paths["metrics"], json.dumps(metrics_document(data), indent=2) + "\n")
    atomic_write_text(paths["csv"], metrics_csv(data))
    atomic_write_bytes(paths["figure"], base64.b64decode(data["figure_png"]))
    return paths
