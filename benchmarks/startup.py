"""How fast the main window is on screen, and whether the ML stack was imported by then.

Launches the real app offscreen with a fresh HEARTH_HOME and ``HEARTH_STARTUP_REPORT`` set (see
desktop/startup_report.py): from source (``python main.py``) or, with ``--exe dist/Hearth/hearth``, the
frozen build. Times from just before the launch to the main window's first paint and to the engine
host's ready line. Prints one JSON object on its last line:
{"window_s": median, "window_s_max", "torch_imported", "host_ready_s", ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(command: list[str], host_timeout_s: int) -> dict:
    with tempfile.TemporaryDirectory() as home:
        report_file = Path(home) / "startup.json"
        env = {**os.environ, "HEARTH_HOME": home, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1",
               "HEARTH_STARTUP_REPORT": str(report_file), "HEARTH_STARTUP_WAIT_S": str(host_timeout_s)}
        start = time.time()
        out = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=host_timeout_s + 60)
        if not report_file.is_file():
            raise SystemExit(f"the app did not report (exit {out.returncode}):\n{out.stderr[-2000:]}")
        report = json.loads(report_file.read_text())
    return {
        "window_s": report["window"] - start if "window" in report else None,
        "torch_imported": bool(report.get("ml_imported")),
        "host_ready_s": report["host_ready"] - start if "host_ready" in report else None,
        "host_error": report.get("host_error"),
        "modules_at_window": report.get("modules"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exe", default=None, help="a frozen Hearth executable (dist/Hearth/hearth) instead of main.py")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("HEARTH_BENCH_RUNS", "5")))
    args = parser.parse_args()
    command = [str(Path(args.exe).resolve())] if args.exe else [sys.executable, str(ROOT / "main.py")]
    runs = [one_run(command, host_timeout_s=120) for _ in range(args.runs)]
    windows = [r["window_s"] for r in runs if r["window_s"] is not None]
    hosts = [r["host_ready_s"] for r in runs if r["host_ready_s"] is not None]
    for i, r in enumerate(runs):
        print(f"run {i + 1}: window {r['window_s']:.3f} s, host ready {r['host_ready_s'] or float('nan'):.2f} s")
    result = {
        "mode": "frozen" if args.exe else "source",
        "window_s": round(statistics.median(windows), 3) if windows else None,
        "window_s_max": round(max(windows), 3) if windows else None,
        "torch_imported": any(r["torch_imported"] for r in runs),
        "host_ready_s": round(statistics.median(hosts), 3) if hosts else None,
        "host_error": next((r["host_error"] for r in runs if r["host_error"]), None),
        "modules_at_window": runs[-1]["modules_at_window"],
        "runs": len(runs),
        "target_window_s": 1.5 if args.exe else 1.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
