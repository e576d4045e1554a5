"""Stimulus sets with known labels: procedural scenes (the bundled image model's caption vocabulary), sample
photographs shipped inside scikit-image, and a folder of the user's images."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from engines.core.errors import DataFileError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
# scikit-image's bundled colour photographs (in the wheel, no download) and the label each one shows.
PHOTOS = {"astronaut": "astronaut", "coffee": "coffee cup", "chelsea": "cat", "rocket": "rocket",
          "immunohistochemistry": "tissue", "hubble_deep_field": "galaxies", "retina": "retina", "colorwheel": "colour wheel"}


@dataclass
class StimulusSet:
    """``images`` uint8 [N, H, W, 3]; ``labels`` (class names) and ``captions`` where known; ``attributes`` holds
    the scene fields (colour, shape, ...) of procedural stimuli."""

    images: np.ndarray
    labels: list[str] | None = None
    captions: list[str] | None = None
    attributes: list[dict] | None = None
    source: str = ""
    vocabulary: list[str] = field(default_factory=list)  # the candidate captions a semantic decode chooses from

    def __len__(self) -> int:
        return len(self.images)


def to_square(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (as the reconstruction papers prepare their stimuli)."""
    image = image.convert("RGB")
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.uint8)


def procedural(count: int, seed: int, size: int = 64, held_out: bool = False) -> StimulusSet:
    """``count`` distinct scenes drawn with the vocabulary the bundled image model was trained on. The test set
    (``held_out=True``) comes from the scenes the model never saw in training."""
    from engines.image.shapes import all_scenes, render

    rng = random.Random(seed)
    pool = [s for s in all_scenes() if s.held_out == held_out]
    if count > len(pool):
        raise DataFileError(f"Asked for {count} procedural {'test' if held_out else 'training'} stimuli; there are "
                            f"{len(pool)} distinct scenes.", hint=f"Use at most {len(pool)}.")
    scenes = rng.sample(pool, count)
    images = np.stack([np.asarray(render(s, random.Random(seed * 7919 + i), size)) for i, s in enumerate(scenes)])
    return StimulusSet(images=images, labels=[f"{s.color} {s.shape}" for s in scenes],
                       captions=[s.caption() for s in scenes],
                       attributes=[{"color": s.color, "shape": s.shape, "size": s.size, "position": s.position,
                                    "background": s.background} for s in scenes],
                       source="procedural", vocabulary=sorted({s.caption() for s in all_scenes()}))


def photo_caption(label: str) -> str:
    return f"a photo of a {label}"


def photos(count: int, seed: int, size: int = 64) -> StimulusSet:
    """Random crops (40-100% of the short side) and mirror images of scikit-image's sample photographs."""
    import skimage.data

    rng = np.random.default_rng(seed)
    sources = [(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"), label) for name, label in PHOTOS.items()]
    images, labels = [], []
    for i in range(count):
        image, label = sources[i % len(sources)]
        w, h = image.size
        s = int(min(w, h) * rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        crop = image.crop((x, y, x + s, y + s)).resize((size, size), Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        images.append(np.asarray(crop, dtype=np.uint8))
        labels.append(label)
    order = rng.permutation(count)
    labels = [labels[i] for i in order]
    return StimulusSet(images=np.stack(images)[order], labels=labels, captions=[photo_caption(l) for l in labels],
                       source="photos", vocabulary=[photo_caption(l) for l in PHOTOS.values()])


def folder(path: str | Path, size: int = 64) -> StimulusSet:
    """Every image under ``path``; an image inside a sub-folder takes the sub-folder's name as its label."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataFileError(f"{root} is not a folder.", path=root, hint="Choose a folder of images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) < 4:
        raise DataFileError(f"{root} holds {len(files)} images; decoding needs at least 4 (training and test).",
                            path=root, hint="Add images (PNG, JPEG, ...) to the folder.")
    images, labels, bad = [], [], []
    for p in files:
        try:
            with Image.open(p) as im:
                images.append(to_square(im, size))
            labels.append(p.parent.name if p.parent != root else "")
        except (OSError, ValueError) as exc:
            bad.append(f"{p.name} ({exc})")
    if bad:
        raise DataFileError(f"{len(bad)} file(s) in {root} could not be read as images: {', '.join(bad[:3])}.",
                            path=root, hint="Remove or re-save those files.")
    labelled = all(labels) and len(set(labels)) > 1
    return StimulusSet(images=np.stack(images), labels=labels if labelled else None,
                       captions=[photo_caption(l) for l in labels] if labelled else None, source="folder",
                       vocabulary=sorted({photo_caption(l) for l in labels}) if labelled else [])


def split(stimuli: StimulusSet, test: int, seed: int) -> tuple[StimulusSet, StimulusSet]:
    """A seeded train/test split of one set (for photos and folders; procedural sets draw two disjoint sets)."""
    if not 2 <= test < len(stimuli) - 1:
        raise DataFileError(f"Cannot hold out {test} of {len(stimuli)} stimuli for testing.",
                            hint="Use at least 2 test stimuli and leave at least 2 for training.")
    order = np.random.default_rng(seed).permutation(len(stimuli))
    return subset(stimuli, order[test:]), subset(stimuli, order[:test])


def subset(stimuli: StimulusSet, index) -> StimulusSet:
    pick = lambda values: [values[i] for i in index] if values is not None else None  # noqa: E731
    return StimulusSet(images=stimuli.images[index], labels=pick(stimuli.labels), captions=pick(stimuli.captions),
                       attributes=pick(stimuli.attributes), source=stimuli.source, vocabulary=stimuli.vocabulary)
