"""What the Decode views share: the metric definitions, colours, the plot theme and the room's style."""
from __future__ import annotations

from dataclasses import dataclass

from engines.core.resources import resource
from desktop.widgets.panels import Card as _Card

from desktop.widgets.palette import ACCENT, BAD, BASE, BLUE, GOOD, LINE, MUTED, TEXT, themed  # noqa: F401  (for the views)
from desktop.widgets.plots import pyqtgraph  # noqa: F401


@dataclass(frozen=True)
class MetricInfo:
    key: str  # the field in the engine's metrics dicts
    title: str  # the table header and the sweep plot's choice
    tip: str
    percent: bool  # an accuracy (shown as a percentage) rather than a correlation


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("pixcorr", "PixCorr", "Pearson correlation between the stimulus and the reconstruction pixels "
               "(resized, flattened), averaged over test images. Chance 0.", False),
    MetricInfo("ssim", "SSIM", "Structural similarity (grayscale, Gaussian window, sigma 1.5) between stimulus and "
               "reconstruction. Unrelated images still score above 0.", False),
    MetricInfo("two_way", "2-way (latent)", "Two-way identification on the image model's VAE latents: for each "
               "reconstruction, the share of other test images it correlates with less than with its own. Chance 50%.", True),
    MetricInfo("two_way_pixels", "2-way (pixels)", "Two-way identification on pixels. Chance 50%.", True),
    MetricInfo("n_way_top1", "n-way top-1", "n-way identification on VAE latents: the true image among n-1 random "
               "distractors; how often the reconstruction is closest to it. Chance 1/n.", True),
    MetricInfo("n_way_top1_pixels", "n-way top-1 (pixels)", "n-way identification on pixels. Chance 1/n.", True),
    MetricInfo("semantic_acc", "Semantic", "How often the decoded label is the true one (procedural stimuli: "
               "colour and shape; photos: the object). Chance 1/labels.", True),
    MetricInfo("color_acc", "Colour", "How often the decoded caption has the right colour.", True),
    MetricInfo("shape_acc", "Shape", "How often the decoded caption has the right shape.", True),
    MetricInfo("position_acc", "Position", "How often the decoded caption has the right position.", True),
    MetricInfo("background_acc", "Background", "How often the decoded caption has the right background.", True),
)
METRIC = {m.key: m for m in METRICS}

# (metrics key, row title, tooltip) in the order the table shows them
CONDITIONS: tuple[tuple[str, str, str], ...] = (
    ("decoded", "Decoded", "The reconstruction from the decoded brain activity."),
    ("lowlevel", "Low-level decode", "The decoded VAE latent alone, before img2img."),
    ("oracle", "Oracle (ceiling)", "The same pipeline fed the true latent and caption: the best it can do."),
    ("shuffled", "Shuffled (floor)", "The test patterns with their voxels shuffled: what the pipeline makes of no information."),
)


def metric_columns(metrics: dict) -> list[MetricInfo]:
    """The metrics that any condition reports, in the table's order."""
    present = {key for values in metrics.values() if isinstance(values, dict) for key in values}
    return [m for m in METRICS if m.key in present]


def format_value(info: MetricInfo, value) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{100 * value:.1f}%" if info.percent else f"{value:.3f}"


def chance_level(info: MetricInfo, chance: dict) -> float | None:
    """The chance level of a metric, where the engine gave one (the pixel variants share their feature twins')."""
    base = {"two_way_pixels": "two_way", "n_way_top1_pixels": "n_way_top1"}.get(info.key, info.key)
    value = chance.get(base)
    return float(value) if isinstance(value, (int, float)) else None




class Card(_Card):
    OBJECT_NAME = "DecodeCard"


STYLE = themed("""
#DecodeHeader { background: @HEADER@; border-bottom: 1px solid @FIELD@; }
#DecodeCard { background: @PANEL@; border: 1px solid @EDGE@; border-radius: 10px; }
#DecodeControls { background: @HEADER@; border-right: 1px solid @FIELD@; }
#FigureRows { background: @PLOT_BACKGROUND@; }
QLabel#ColumnTitle { color: @MUTED@; font-size: 8.5pt; font-weight: 600; }
QLabel#Cell { background: @FIELD@; border-radius: 3px; }
QLabel#RowCaption { color: @SOFT_TEXT@; font-size: 8.5pt; }
QLabel#RunError { color: @ERROR_TEXT@; background: @ERROR_WASH@; border: 1px solid @ERROR_EDGE@; border-radius: 6px; padding: 6px 8px; }
QLabel#StageText { color: @TEXT@; }
QTableWidget#MetricsTable { background: @PLOT_BACKGROUND@; border: 1px solid @EDGE@; border-radius: 8px; gridline-color: @FIELD@; }
QTableWidget#MetricsTable::item { padding: 2px 6px; }
QHeaderView::section { background: @PANEL@; color: @MUTED@; border: none; border-bottom: 1px solid @LINE@; padding: 4px 6px; }
QTableCornerButton::section { background: @PANEL@; border: none; }
QTabWidget#DecodeTabs::pane { border: none; }
QTabWidget#DecodeTabs QTabBar::tab { background: transparent; color: @MUTED@; padding: 6px 14px; margin: 0 2px;
    border: none; border-bottom: 2px solid transparent; }
QTabWidget#DecodeTabs QTabBar::tab:hover { color: @TEXT@; }
QTabWidget#DecodeTabs QTabBar::tab:selected { color: @ACCENT_LIGHT@; border-bottom: 2px solid @ACCENT@; }
QProgressBar#DecodeProgress { background: @FIELD@; border: none; border-radius: 3px; max-height: 6px; }
QProgressBar#DecodeProgress::chunk { background: @ACCENT@; border-radius: 3px; }
QCheckBox::indicator { width: 14px; height: 14px; border-radius: 4px; border: 1px solid @CHECK_EDGE@; background: @FIELD@; }
QCheckBox::indicator:checked { background: @ACCENT@; border-color: @ACCENT@; image: url(@CHECK@); }
""").replace("@CHECK@", resource("desktop", "icons", "check.svg").as_posix())
