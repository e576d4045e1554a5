"""Writing a decoding run's results: metrics.json, metrics.csv and figure.png, atomically. The CLI
(``main.py decode --out``) and the Decode room's export share it; plain Python in engines.store, so the desktop may
call it without loading any model code."""
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
    """One row per (SNR, condition, metric): this run's conditions, then the sweep's points."""
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


def save_figure(data: dict, path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    atomic_write_bytes(path, base64.b64decode(data["figure_png"]))
    return path


def save_metrics(data: dict, path: str | Path) -> Path:
    """JSON, or CSV when the name ends in .csv."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".csv":
        atomic_write_text(path, metrics_csv(data))
        return path
    if path.suffix.lower() != ".json":
        path = path.with_name(path.name + ".json")
    atomic_write_text(path, json.dumps(metrics_document(data), indent=2) + "\n")
    return path


def write_results(data: dict, out_dir: str | Path) -> dict[str, Path]:
    """metrics.json, metrics.csv and figure.png in ``out_dir`` (created if needed)."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return {"metrics": save_metrics(data, out / "metrics.json"), "csv": save_metrics(data, out / "metrics.csv"),
            "figure": save_figure(data, out / "figure.png")}
