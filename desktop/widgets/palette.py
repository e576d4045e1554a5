"""Every colour Hearth draws with, named by its role: the one theme source.

Code that draws (plots, painters, rich text) uses the constants; style sheets (desktop/theme.qss and the rooms'
STYLE strings) write ``@NAME@`` and go through ``themed()``, so a colour is changed here once for the whole app.
"""
from __future__ import annotations

import re

ACCENT = "#f08a4b"
ACCENT_DEEP = "#9a5a33"
ACCENT_DIM = "#c0703f"
ACCENT_FLASH = "#241c16"
ACCENT_HOVER = "#f59c64"
ACCENT_LIGHT = "#f5a672"
ACCENT_SELECTED = "#3a2c20"
ACCENT_TOKEN = "#3a2616"
ACCENT_WASH = "#2a2018"
BAD = "#f06b5f"
BASE = "#15171b"
BLUE = "#6fa8f5"
BUTTON = "#2a2e36"
BUTTON_DISABLED = "#20242a"
BUTTON_EDGE = "#343a43"
BUTTON_HOVER = "#323741"
CARD = "#1f232a"
CARD_EDGE = "#2a2f37"
CAUTION = "#e7a04f"
CHECK_EDGE = "#4a505a"
CODE_BACKGROUND = "#0e1013"
CODE_PANEL = "#111317"
DANGER = "#3a2326"
DANGER_HOVER = "#4a2a2e"
DISABLED_FIELD_TEXT = "#646b76"
DISABLED_TEXT = "#5d636d"
EDGE = "#262a31"
EDGE_STRONG = "#3a404a"
ERROR_EDGE = "#5a2e33"
ERROR_TEXT = "#f3a3a0"
ERROR_WASH = "#2d1c1e"
FIELD = "#23272e"
GOOD = "#7fd49a"
HEADER = "#1a1c21"
INFO_EDGE = "#2a3d55"
INFO_WASH = "#1b2430"
LINE = "#2e333b"
MUTED = "#8d94a0"
ON_ACCENT = "#1a1208"
PAGE_TEXT = "#111111"
PANEL = "#1c1f24"
PLACEHOLDER = "#6f7682"
PLOT_BACKGROUND = "#181a1f"
PRIMARY_DISABLED = "#4a3527"
PRIMARY_DISABLED_TEXT = "#8e7562"
QUIET_TEXT = "#c9cdd4"
REPLY_CARD = "#1a1d22"
SCROLL_HANDLE = "#30353e"
SCROLL_HANDLE_HOVER = "#3c424c"
SELECTED = "#2d3139"
SERIES_BLUE = "#7aa2f7"
SHADOW = "#101215"
SOFT_TEXT = "#aeb4be"
TEXT = "#e4e6eb"
TOKEN_ID = "#aab1bc"
TOKEN_TEXT = "#f1f2f4"
VIOLET = "#c08cf0"
WARN = "#e7c04f"
WARNING_EDGE = "#5c4a24"
WARNING_WASH = "#2d2618"
WHITE = "#ffffff"

# Token spans in Explore: one muted hue per token, cycled.
TOKEN_COLOURS = ("#5b3a29", "#2f4a3a", "#2d3f5c", "#533455", "#4d4a26", "#26484d", "#5a2f36", "#3b3a5e")

COLOURS = {name: value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def themed(style: str) -> str:
    """``style`` with every ``@NAME@`` of a colour above replaced by its value (other placeholders stay)."""
    return _PLACEHOLDER.sub(lambda m: COLOURS.get(m.group(1), m.group(0)), style)
