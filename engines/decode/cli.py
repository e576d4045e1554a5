"""``python main.py decode``: the decoding demo (simulated fMRI) or a user's data file, in-process; writes
metrics.json, metrics.csv and figure.png."""
from __future__ import annotations

import sys

from engines.core.cancel import CancelToken
from engines.core.events import Progress, Result


def add_arguments(parser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--demo", action="store_true", help="simulated fMRI for procedural stimuli (or --stimuli)")
    what.add_argument("--data", metavar="FILE", help="a .npz/.h5 file, a Brain-Diffuser folder or a MinD-Vis GOD file")
    parser.add_argument("--stimuli", default="procedural", help="with --demo: procedural, photos, or a folder of images")
    parser.add_argument("--snr", type=float, default=0.5, help="single-trial signal/noise variance ratio per voxel")
    parser.add_argument("--voxels", type=int, default=4000)
    parser.add_argument("--train", type=int, default=800, help="training stimuli")
    parser.add_argument("--test", type=int, default=20, help="test stimuli")
    parser.add_argument("--repeats", type=int, default=4, help="test trials averaged")
    parser.add_argument("--samples", type=int, default=3, help="img2img samples per stimulus (best one kept)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.75)
    parser.add_argument("--sweep", default="", help="extra SNRs, comma-separated (low-level + semantic metrics)")
    parser.add_argument("--no-reconstruct", action="store_true", help="stop at the low-level (VAE) decode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="decode-out", help="output folder (default: ./decode-out)")


def request_from_args(args):
    from engines.core.errors import RequestError
    from engines.core.requests.decode import DecodeRequest

    try:
        sweep = [float(s) for s in args.sweep.split(",") if s.strip()]
    except ValueError:
        raise RequestError(f"--sweep is {args.sweep!r}.", hint="Give SNRs separated by commas, e.g. 0.01,0.1,1.")
    source, path = "data", args.data or ""
    if args.demo:
        source = args.stimuli if args.stimuli in ("procedural", "photos") else "folder"
        path = "" if source != "folder" else args.stimuli
    return DecodeRequest(source=source, path=path, snr=args.snr, voxels=args.voxels, train=args.train, test=args.test,
                         repeats=args.repeats, seed=args.seed, samples=args.samples, steps=args.steps,
                         strength=args.strength, reconstruct=not args.no_reconstruct, sweep=sweep)


def run_decode(args) -> int:
    import os

    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        os.environ.setdefault(name, "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from engines.decode.engine import DecodeEngine
    from engines.store.decode_results import write_results

    request = request_from_args(args)
    request.validate()
    engine = DecodeEngine()
    cancel = CancelToken()
    result = None
    try:
        for event in engine.run(request, cancel):
            if isinstance(event, Progress):
                print(f"[{event.message}]", file=sys.stderr, flush=True)
            elif isinstance(event, Result):
                result = event
    except KeyboardInterrupt:
        cancel.cancel()
        print("[stopped]", file=sys.stderr)
        return 130
    finally:
        engine.close()
    data = result.data
    paths = write_results(data, args.out)
    keys = ("pixcorr", "ssim", "two_way", "n_way_top1", "semantic_acc")
    print(f"{'condition':<10} " + " ".join(f"{k:>12}" for k in keys), file=sys.stderr)
    for name in ("decoded", "lowlevel", "oracle", "shuffled"):
        if name in data["metrics"]:
            m = data["metrics"][name]
            print(f"{name:<10} " + " ".join(f"{m[k]:>12.3f}" if k in m else f"{'-':>12}" for k in keys), file=sys.stderr)
    print(f"[{data['voxels']} voxels, {data['n_train']} train / {data['n_test']} test, "
          f"{sum(data['timings'].values()):.1f} s]", file=sys.stderr)
    for path in paths.values():
        print(path)
    return 0
