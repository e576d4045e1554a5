"""The layering rules of DESIGN.md: engines never import Qt; the GUI side never imports the ML stack."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "desktop")
ML = ("torch", "transformers", "diffusers", "peft", "trl", "llama_cpp", "accelerate")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_engine_module_imports_qt_or_desktop():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & set(QT)) for p in (ROOT / "engines").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_desktop_imports_only_engines_core():
    bad = {}
    for p in (ROOT / "desktop").rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            for m in mods:
                top = m.split(".")[0]
                if top in ML or (top == "engines" and not m.startswith("engines.core")):
                    bad.setdefault(str(p.relative_to(ROOT)), []).append(m)
    assert bad == {}


def test_engines_core_is_light():
    code = "import sys, engines.core, engines.core.conversations, engines.core.settings, engines.core.devices; " \
           "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp', 'PySide6') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
