"""Hearth's entry point.

``python main.py`` opens the desktop app; subcommands run the same engine code headless:
``serve`` (the engine host), ``chat``, ``image``, ``decode``, ``models``, ``train``, ``export-job``, ``export-gguf``, ``explore``,
``selftest``. Heavy modules are imported inside the subcommand that needs them, so the GUI starts without
touching torch. Frozen by PyInstaller, this is the ``hearth`` executable and the same arguments apply.
"""
from __future__ import annotations

import argparse
import sys

from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth: local multimodal generation studio.")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the engine host (OpenAI-compatible HTTP API on 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8600, help="port (0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (loopback unless you mean it)")
    serve.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (or set HEARTH_API_KEY)")
    serve.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    serve.add_argument("--preload", default=None, help="model to load at start ('default' for the bundled model)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="let a web front end at ORIGIN (e.g. http://localhost:3000) call the host (repeatable)")

    chat = sub.add_parser("chat", help="stream one reply to stdout")
    chat.add_argument("--prompt", required=True)
    chat.add_argument("--model", default="default", help="'default' (bundled SmolLM2), 'default-vision' (SmolLM2 with "
                      "Hearth's shapes vision projector) or a path to a GGUF file / model folder")
    chat.add_argument("--image", action="append", default=[], metavar="PATH",
                      help="an image the model sees before the prompt (repeatable; needs a vision model)")
    chat.add_argument("--mmproj", default="", metavar="FILE",
                      help="the vision projector (mmproj .gguf) for a GGUF model; default: an mmproj*.gguf beside it")
    chat.add_argument("--system", default=None, help=f"system prompt (default: '{DEFAULT_SYSTEM_PROMPT}')")
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--top-p", type=float, default=0.95)
    chat.add_argument("--top-k", type=int, default=40)
    chat.add_argument("--min-p", type=float, default=0.05)
    chat.add_argument("--repeat-penalty", type=float, default=1.1)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    chat.add_argument("--context-length", type=int, default=4096)
    chat.add_argument("--backend", choices=["auto", "llama", "transformers"], default="auto")
    chat.add_argument("--chat-template", default="", metavar="NAME|FILE",
                      help="chat template instead of the model's own: chatml, llama3, gemma, or a .jinja file")
    chat.add_argument("--device", default="auto")
    chat.add_argument("--stats", action="store_true", help="print token counts and speed to stderr")

    train = sub.add_parser("train", help="run a training job (sft, reward, dpo, kto, rl) with LoRA; also under torchrun/accelerate")
    train.add_argument("--job", required=True, help="the job JSON (see engines/core/requests/tune.py)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the job's output_dir")

    export = sub.add_parser("export-job", help="write JOB.json, an accelerate config and the launch command for a cluster")
    export.add_argument("--job", required=True, help="the job JSON")
    export.add_argument("--to", required=True, help="folder to write into")
    export.add_argument("--gpus", type=int, default=8, help="GPUs per machine")
    export.add_argument("--machines", type=int, default=1, help="number of machines")
    export.add_argument("--strategy", choices=["ddp", "deepspeed-zero2", "deepspeed-zero3", "fsdp"], default="ddp")
    gguf_export = sub.add_parser("export-gguf", help="merge a run's adapter into its base and write a GGUF for llama.cpp")
    gguf_export.add_argument("--run", required=True, help="a finished run's folder (or a transformers model folder)")
    gguf_export.add_argument("--out", help="the new .gguf file (default: the models folder, which Chat lists)")
    gguf_export.add_argument("--quant", choices=["f16", "q8_0"], default="f16")

    image = sub.add_parser("image", help="generate image(s) to PNG with A1111-compatible metadata")
    from engines.image.cli import add_arguments as add_image_arguments

    add_image_arguments(image)

    decode = sub.add_parser("decode", help="image decoding demo: stimulus -> (simulated) fMRI -> reconstruction, with metrics")
    from engines.decode.cli import add_arguments as add_decode_arguments

    add_decode_arguments(decode)

    from engines.text.explore_cli import add_parser as add_explore_parser

    add_explore_parser(sub)

    selftest = sub.add_parser("selftest", help="check this Hearth end to end: data folder, engine host, bundled models, window")
    selftest.add_argument("--json", action="store_true", help="print one JSON object last")
    selftest.add_argument("--full", action="store_true", help="also run a small decoding demo and a one-step training job")
    # The self-test's window check runs in a process of its own (no help: not for users).
    sub.add_parser("gui-probe")

    models = sub.add_parser("models", help="list the models Hearth can see")
    models.add_argument("--folder", action="append", default=[], help="extra model folder to scan")
    models.add_argument("--context-length", type=int, default=4096)
    models.add_argument("--json", action="store_true")
    sub.metavar = "{" + ",".join(name for name in sub.choices if name != "gui-probe") + "}"
    return parser


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    # Frozen, a child process that multiprocessing starts is this executable again: freeze_support
    # runs the child's work and exits instead of opening a second window. A no-op from source.
    multiprocessing.freeze_support()
    args = _build_parser().parse_args(argv)
    if args.command is None:
        from desktop.app import run_app

        return run_app()
    from engines.core.errors import HearthError

    try:
        if args.command == "serve":
            from engines.host.server import serve

            return serve(port=args.port, host=args.host, api_key=args.api_key, parent_pid=args.parent_pid, preload=args.preload,
                         allowed_origins=tuple(args.allow_origin))
        if args.command == "chat":
            from engines.text.cli import run_chat

            return run_chat(args)
        if args.command == "train":
            from engines.tune.runner import run_cli

            return run_cli(args)
        if args.command == "export-job":
            from engines.tune.export import run_export

            return run_export(args)
        if args.command == "export-gguf":
            from engines.tune.gguf_export import run_cli as run_export_gguf

            return run_export_gguf(args)
        if args.command == "image":
            from engines.image.cli import run_image

            return run_image(args)
        if args.command == "decode":
            from engines.decode.cli import run_decode

            return run_decode(args)
        if args.command == "explore":
            from engines.text.explore_cli import run_explore

            return run_explore(args)
        if args.command == "selftest":
            from engines.selftest import run_cli as run_selftest

            return run_selftest(args)
        if args.command == "gui-probe":
            from desktop.selftest_probe import run_probe

            return run_probe()
        if args.command == "models":
            from engines.models.cli import run_models

            return run_models(args)
    except HearthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
