"""The layering rules of DESIGN.md at run time. The static rules (engines never import Qt or the desktop; the
desktop imports only engines.core and never the ML stack) are import-linter contracts in pyproject.toml, which
the test command checks with `lint-imports`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engines_core_is_light():
    code = "import sys, engines.core, engines.store.conversations, engines.store.settings, engines.core.devices; " \
           "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp', 'PySide6') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
