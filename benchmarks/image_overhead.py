"""Hearth's image engine vs a plain diffusers pipeline call: same model, prompt, seed, steps, size.

Runs interleaved (raw, hearth, raw, hearth, ...) after one warm-up each; Hearth's time covers
the whole job as a user gets it (events, per-step previews, PNG with metadata written
atomically, gallery row). Pixels must be identical.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/image_overhead.py [--model default] [--rounds 5]

Last line: {"hearth_s": .., "raw_s": .., "ratio": raw/hearth, "identical": true|false}
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="default")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, default=None, help="default: the model's native size")
    p.add_argument("--prompt", default="a large red circle on the left on a blue background")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    import torch
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    from engines.core.cancel import CancelToken
    from engines.core.events import Result
    from engines.image.engine import ImageEngine
    from engines.core.requests.image import ImageRequest
    from engines.models.image_models import inspect_image_model, native_size

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    entry = inspect_image_model(args.model)
    size = args.size or native_size(entry)
    raw = StableDiffusionPipeline.from_pretrained(entry.path, local_files_only=True, safety_checker=None,
                                                  requires_safety_checker=False)
    raw.set_progress_bar_config(disable=True)

    def run_raw():
        t = time.perf_counter()
        image = raw(args.prompt, num_inference_steps=args.steps, guidance_scale=7.0, width=size, height=size,
                    generator=torch.Generator("cpu").manual_seed(args.seed)).images[0]
        return time.perf_counter() - t, image

    with tempfile.TemporaryDirectory() as home:
        os.environ["HEARTH_HOME"] = home
        engine = ImageEngine(outputs_dir=Path(home) / "out")
        request = ImageRequest(prompt=args.prompt, model=args.model, steps=args.steps, guidance=7.0, width=size,
                               height=size, seed=args.seed, scheduler="Euler")

        def run_hearth():
            t = time.perf_counter()
            result = [e for e in engine.generate(request, CancelToken()) if isinstance(e, Result)][0]
            elapsed = time.perf_counter() - t
            with Image.open(result.data["images"][0]["path"]) as img:
                return elapsed, img.convert("RGB")

        run_raw(), run_hearth()  # warm-up: load, first-call allocations
        raw_times, hearth_times, identical = [], [], True
        for _ in range(args.rounds):
            t_raw, a = run_raw()
            t_hearth, b = run_hearth()
            raw_times.append(t_raw)
            hearth_times.append(t_hearth)
            identical = identical and a.tobytes() == b.tobytes()
        engine.close()
    hearth_s, raw_s = statistics.median(hearth_times), statistics.median(raw_times)
    print(json.dumps({"hearth_s": round(hearth_s, 4), "raw_s": round(raw_s, 4), "ratio": round(raw_s / hearth_s, 3),
                      "identical": identical, "model": args.model, "size": size, "steps": args.steps, "rounds": args.rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
