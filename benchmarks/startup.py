"""How fast the main window is on screen, and whether the ML stack was imported by then.

Spawns ``python -c`` children that run the real ``desktop.app.run_app()`` offscreen with a fresh
HEARTH_HOME, and time from just before the spawn to the window's first paint. Prints one JSON
object on its last line: {"window_s": median, "window_s_max", "torch_imported", "host_ready_s", ...}.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("HEARTH_BENCH_RUNS", "5"))

CHILD = r"""
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

app = QApplication(sys.argv)
report = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and "window" not in report:
            report["window"] = time.time()
            report["torch_imported"] = any(m in sys.modules for m in ("torch", "transformers", "llama_cpp", "diffusers"))
            report["modules"] = len(sys.modules)
        return False

watcher = FirstPaint()

def find_window():
    for widget in app.topLevelWidgets():
        if isinstance(widget, QMainWindow):
            widget.installEventFilter(watcher)
            session = widget.session
            session.host.ready.connect(lambda *_: (report.__setitem__("host_ready", time.time()), app.quit()))
            session.host.crashed.connect(lambda message: (report.__setitem__("host_error", message), app.quit()))
            QTimer.singleShot(int(sys.argv[1]) * 1000, app.quit)
            return
    QTimer.singleShot(1, find_window)

QTimer.singleShot(0, find_window)  # runs once run_app() has shown the window
from desktop.app import run_app
run_app()
print("BENCH " + json.dumps(report), flush=True)
"""


def one_run(host_timeout_s: int) -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HEARTH_HOME": home, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
        start = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, str(host_timeout_s)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=host_timeout_s + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"the app did not report (exit {out.returncode}):\n{out.stderr[-2000:]}")
    report = json.loads(line[6:])
    return {
        "window_s": report["window"] - start if "window" in report else None,
        "torch_imported": report.get("torch_imported"),
        "host_ready_s": report["host_ready"] - start if "host_ready" in report else None,
        "host_error": report.get("host_error"),
        "modules_at_window": report.get("modules"),
    }


def main() -> None:
    runs = [one_run(host_timeout_s=60) for _ in range(RUNS)]
    windows = [r["window_s"] for r in runs if r["window_s"] is not None]
    hosts = [r["host_ready_s"] for r in runs if r["host_ready_s"] is not None]
    for i, r in enumerate(runs):
        print(f"run {i + 1}: window {r['window_s']:.3f} s, host ready {r['host_ready_s'] or float('nan'):.2f} s")
    result = {
        "window_s": round(statistics.median(windows), 3) if windows else None,
        "window_s_max": round(max(windows), 3) if windows else None,
        "torch_imported": any(r["torch_imported"] for r in runs),
        "host_ready_s": round(statistics.median(hosts), 3) if hosts else None,
        "host_error": next((r["host_error"] for r in runs if r["host_error"]), None),
        "modules_at_window": runs[-1]["modules_at_window"],
        "runs": len(runs),
        "target_window_s": 1.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
