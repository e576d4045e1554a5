"""`python main.py models [--folder DIR] [--context-length N] [--json]`: list the models Hearth can see."""
from __future__ import annotations

import json
import sys

from engines.models.registry import configured_folders, scan_models

COLUMNS = ("name", "format", "arch", "params", "quant", "ctx", "estimate", "fits", "sees")


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def run_models(args) -> int:
    folders = list(args.folder or []) + [str(f) for f in configured_folders()]
    folders = list(dict.fromkeys(folders))  # keep order, drop repeats
    entries, errors = scan_models(folders)
    for err in errors:
        print(f"warning: {err}", file=sys.stderr)
    ctx = args.context_length
    if args.json:
        out = []
        for entry in entries:
            data = entry.to_dict()
            data["estimate"] = entry.estimate(ctx).to_dict()
            out.append(data)
        print(json.dumps({"models": out, "errors": [e.to_wire() for e in errors]}, indent=2))
        return 0
    rows = [COLUMNS]
    for entry in entries:
        est = entry.estimate(ctx)
        rows.append((entry.name, entry.format, entry.architecture, _params(entry.parameters), entry.quantization,
                     str(entry.context_length or "?"), f"{est.total_bytes / 1e9:.1f} GB", "yes" if est.fits else "NO",
                     "text+images" if entry.vision else "text"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\n{len(entries)} model(s); estimates at {ctx} tokens, {_available_line(entries, ctx)}")
    return 0


def _available_line(entries, ctx) -> str:
    if not entries:
        return "no estimate"
    return f"{entries[0].estimate(ctx).available_bytes / 1e9:.1f} GB RAM available"
