"""``python main.py image``: generate PNG(s) with metadata through the image engine, in-process."""
from __future__ import annotations

import sys

from engines.core.cancel import CancelToken
from engines.core.events import Progress, Result
from engines.core.requests.image import ImageRequest, MemoryOptions, parse_lora_arg


def add_arguments(parser) -> None:
    from engines.core.requests.image import SCHEDULERS

    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument("--model", default="default",
                        help="'default' (the bundled 64x64 shapes model), a diffusers folder, a .safetensors checkpoint or an HF cache repo id")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=7.0, help="CFG scale")
    parser.add_argument("--width", type=int, default=None, help="default: the model's native size")
    parser.add_argument("--height", type=int, default=None, help="default: the model's native size")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed and stored in the PNG)")
    parser.add_argument("--scheduler", default="Euler", help=f"one of: {', '.join(SCHEDULERS)}")
    parser.add_argument("--batch", type=int, default=1, help="number of images (seeds seed, seed+1, ...)")
    parser.add_argument("--init", default=None, help="init image: img2img (with --mask: inpaint)")
    parser.add_argument("--strength", type=float, default=0.75, help="img2img/inpaint denoising strength")
    parser.add_argument("--mask", default=None, help="inpaint mask (white = repaint); needs --init")
    parser.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]", help="LoRA .safetensors (repeatable)")
    parser.add_argument("--out", default=None, help="output PNG (FILE-1.png, FILE-2.png, ... for several); default: the outputs folder")
    parser.add_argument("--allow-pickle", action="store_true", help="load .ckpt/.pt/.bin checkpoints (tensors only, weights_only=True)")
    parser.add_argument("--offload", default="auto", choices=["auto", "none", "model", "sequential"], help="CPU offload on GPU")
    parser.add_argument("--device", default="auto")


def run_image(args) -> int:
    import os

    # One line per user error on stderr: keep the libraries' import-time notices out of it.
    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        os.environ.setdefault(name, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from engines.core.errors import RequestError
    from engines.image.engine import ImageEngine
    from engines.models.image_models import inspect_image_model, native_size

    if args.mask and not args.init:
        raise RequestError("--mask needs --init (the image to inpaint).")
    mode = "inpaint" if args.mask else "img2img" if args.init else "txt2img"
    width, height = args.width, args.height
    if width is None or height is None:
        side = native_size(inspect_image_model(args.model, allow_pickle=args.allow_pickle))
        width, height = width or side, height or side
    request = ImageRequest(
        prompt=args.prompt, negative_prompt=args.negative, model=args.model, mode=mode, steps=args.steps,
        guidance=args.guidance, width=width, height=height, seed=args.seed, batch_size=args.batch,
        scheduler=args.scheduler, strength=args.strength, init_image=args.init, mask=args.mask,
        loras=[parse_lora_arg(l) for l in args.lora], allow_pickle=args.allow_pickle,
        memory=MemoryOptions(offload=args.offload, device=args.device), preview_every=0,
    )
    request.validate()
    engine = ImageEngine()
    cancel = CancelToken()
    result = None
    tty = sys.stderr.isatty()
    try:
        for event in engine.generate(request, cancel, out_path=args.out):
            if isinstance(event, Progress) and tty:
                print(f"\rstep {event.step}/{event.total}", end="", file=sys.stderr, flush=True)
            elif isinstance(event, Result):
                result = event
    except KeyboardInterrupt:
        cancel.cancel()
        print("\n[stopped]", file=sys.stderr)
        return 130
    finally:
        engine.close()
    if tty:
        print(file=sys.stderr)
    for image in result.data["images"]:
        print(image["path"])
    print(f"[seed {result.data['seed']}, {result.data['total_s']:.1f} s]", file=sys.stderr)
    return 0
