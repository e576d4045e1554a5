"""How well the bundled image model follows its captions, on scenes it never saw in training.

For held-out scenes (engines/image/shapes.py: Scene.held_out), generate one 64x64 image each
through Hearth's image engine and read colour, background, shape and position back with the
pixel grader in engines/image/shapes.py (100% on crisp renders, tests/test_image_shapes.py).

It also grades the model's own VAE round trip of the true renders of the same scenes ("vae_ceiling"):
the best any UNet can do with that VAE (small stars lose their points in a 16x16 latent).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/default_image_quality.py [--count 120] [--steps 20]

Last line: {"color_accuracy": .., "background_accuracy": .., "shape_accuracy": .., "position_accuracy": ..,
            "position_by_word": {"bottom": {"accuracy": .., "images": ..}, ...}, "chance": {"position": 0.2, ...}, ...}
Per position word: of the images whose caption asked for that position, the share drawn there.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def vae_ceiling(model: str, scenes, seed: int) -> dict | None:
    """Grade the VAE's reconstructions of the true renders: what a perfect UNet would score."""
    from diffusers import AutoencoderKL

    from engines.image.shapes import accuracy, render, vae_round_trip

    folder = ROOT / "assets" / "image-default" / "vae" if model == "default" else Path(model) / "vae"
    if not (folder / "config.json").is_file():
        return None
    vae = AutoencoderKL.from_pretrained(folder, local_files_only=True)
    rng = random.Random(seed)
    acc = accuracy(scenes, vae_round_trip(vae, [render(s, rng) for s in scenes]))
    return {f"{k}_accuracy": round(v, 3) for k, v in acc.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=120, help="held-out scenes to try (seeded sample; 258 is all)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=7.0)
    p.add_argument("--scheduler", default="Euler")
    p.add_argument("--model", default="default")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch
    from PIL import Image

    from engines.core.cancel import CancelToken
    from engines.core.events import Result
    from engines.image.engine import ImageEngine
    from engines.core.requests.image import ImageRequest
    from engines.image.shapes import CHANCE, accuracy_by, all_scenes

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    scenes = [s for s in all_scenes() if s.held_out]
    scenes = random.Random(args.seed).sample(scenes, min(args.count, len(scenes)))
    images, per_image = [], []
    with tempfile.TemporaryDirectory() as home:
        os.environ["HEARTH_HOME"] = home
        engine = ImageEngine(outputs_dir=Path(home) / "out")
        started = time.perf_counter()
        for i, scene in enumerate(scenes):
            req = ImageRequest(prompt=scene.caption(), model=args.model, steps=args.steps, guidance=args.guidance,
                               width=64, height=64, seed=args.seed + i, scheduler=args.scheduler, preview_every=0)
            result = [e for e in engine.generate(req, CancelToken(), out_path=Path(home) / "img.png") if isinstance(e, Result)][0]
            with Image.open(result.data["images"][0]["path"]) as img:
                images.append(img.copy())
            per_image.append(time.perf_counter() - started)
            started = time.perf_counter()
        engine.close()
    n = len(scenes)
    graded = accuracy_by(scenes, images, "position")
    out = {f"{k}_accuracy": round(v, 3) for k, v in graded["overall"].items()}
    out["position_by_word"] = {w: {"accuracy": round(v["accuracy"], 3), "images": v["images"]}
                               for w, v in graded["per_value"].items()}
    out["chance"] = {k: round(v, 3) for k, v in CHANCE.items()}
    out["vae_ceiling"] = vae_ceiling(args.model, scenes, args.seed)
    out.update({"images": n, "steps": args.steps, "guidance": args.guidance, "scheduler": args.scheduler,
                "s_per_image": round(sorted(per_image)[n // 2], 3), "held_out_scenes": True})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
