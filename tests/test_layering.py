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
           "import engines.core.requests.text, engines.core.requests.image, engines.core.requests.decode; " \
           "import engines.core.requests.explore, engines.core.requests.tune; " \
           "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp', 'PySide6') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_colours_live_in_the_palette_only():
    """One theme source: a colour literal anywhere else in the desktop code or its style sheet is a second copy."""
    import re

    colour = re.compile(r"#[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?\b")
    found = []
    for path in [*(ROOT / "desktop").rglob("*.py"), ROOT / "desktop" / "theme.qss"]:
        if path.name == "palette.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if colour.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
    from desktop.widgets.palette import themed

    assert themed("QLabel { color: @ACCENT@; background: url(@ICONS@/x.svg); }") == \
        "QLabel { color: #f08a4b; background: url(@ICONS@/x.svg); }"
