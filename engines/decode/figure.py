"""The MinD-Vis Figure 1 layout as one PNG: rows of stimulus | fMRI pattern | low-level decode | reconstruction |
oracle | shuffled, with column titles and each row's true and decoded label."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLUMNS = (("stimulus", "Stimulus"), ("pattern", "fMRI pattern"), ("lowlevel", "Low-level decode"),
           ("decoded", "Reconstruction"), ("oracle", "Oracle (ceiling)"), ("shuffled", "Shuffled (floor)"))


def compose(rows: list[dict[str, np.ndarray | str]], cell: int = 96, max_rows: int = 8) -> bytes:
    """``rows``: dicts with uint8 images under the COLUMNS keys, and optional ``label``/``decoded_label`` text."""
    font = ImageFont.load_default()
    rows = rows[:max_rows]
    pattern_w = cell
    if rows:
        ph, pw = rows[0]["pattern"].shape[:2]
        pattern_w = max(cell, int(round(pw * cell / ph)))
    widths = [pattern_w if key == "pattern" else cell for key, _ in COLUMNS]
    pad, header, caption = 6, 18, 14
    width = sum(widths) + pad * (len(widths) + 1)
    height = header + len(rows) * (cell + caption + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = pad
    for (key, title), w in zip(COLUMNS, widths):
        draw.text((x, 4), title, fill=(30, 30, 30), font=font)
        x += w + pad
    for r, row in enumerate(rows):
        y = header + r * (cell + caption + pad)
        x = pad
        for (key, _), w in zip(COLUMNS, widths):
            image = row.get(key)
            if isinstance(image, np.ndarray):
                tile = Image.fromarray(image).resize((w, cell), Image.NEAREST if key == "pattern" else Image.BICUBIC)
                sheet.paste(tile, (x, y))
            x += w + pad
        text = str(row.get("label") or "")
        if row.get("decoded_label"):
            text += f"  ->  decoded: {row['decoded_label']}"
        draw.text((pad, y + cell + 1), text, fill=(70, 70, 70), font=font)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
