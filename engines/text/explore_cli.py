"""``python main.py explore tokens|analogy|neighbours|attention``: the Explore room's engine code, headless."""
from __future__ import annotations

import json
import sys

from engines.core.errors import RequestError
from engines.core.paths import atomic_write_bytes, atomic_write_text


def add_parser(sub) -> None:
    explore = sub.add_parser("explore", help="look inside a language model: tokens, embeddings, attention")
    kinds = explore.add_subparsers(dest="explore_command", required=True)
    model_help = "'default' (bundled SmolLM2) or a path to a GGUF file / model folder"

    tokens = kinds.add_parser("tokens", help="the text's tokens, one 'id<TAB>token' line each")
    tokens.add_argument("text")
    tokens.add_argument("--model", default="default", help=model_help)
    tokens.add_argument("--chat", action="store_true", help="wrap the text in the model's chat template first")

    analogy = kinds.add_parser("analogy", help="A : B :: C : ? from the input embeddings, best first")
    for name in ("a", "b", "c"):
        analogy.add_argument(name, metavar=name.upper())
    analogy.add_argument("--top", type=int, default=10)
    analogy.add_argument("--model", default="default", help=model_help)
    analogy.add_argument("--scores", action="store_true", help="print 'word<TAB>cosine'")

    neighbours = kinds.add_parser("neighbours", aliases=["neighbors"], help="the words nearest to WORD in the input embeddings")
    neighbours.add_argument("word")
    neighbours.add_argument("--top", type=int, default=10)
    neighbours.add_argument("--model", default="default", help=model_help)
    neighbours.add_argument("--scores", action="store_true", help="print 'word<TAB>cosine'")

    attention = kinds.add_parser("attention", help="an attention heatmap PNG (and the weights as JSON)")
    attention.add_argument("--text", required=True)
    attention.add_argument("--layer", type=int, default=-1, help="layer index (default: the last; negative counts from the end)")
    attention.add_argument("--head", type=int, default=None, help="head index (default: the mean over heads)")
    attention.add_argument("--out", required=True, help="the PNG to write")
    attention.add_argument("--json", default=None, help="also write {tokens, attentions[layer][head][i][j]} here")
    attention.add_argument("--max-tokens", type=int, default=64)
    attention.add_argument("--model", default="default", help=model_help)


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()
        logging.set_verbosity_error()
    except ImportError:
        pass


def run_explore(args) -> int:
    from engines.core.requests.explore import AnalogyRequest, AttentionRequest, NeighboursRequest, TokensRequest
    from engines.text.explore_service import ExploreService
    from engines.text.explore_tokens import visible

    _quiet_transformers()
    service = ExploreService()
    command = args.explore_command
    if command == "tokens":
        req = TokensRequest.from_dict({"text": args.text, "model": args.model, "chat": args.chat})
        out = service.tokens(req)
        for t in out["tokens"]:
            print(f"{t['id']}\t{visible(t['text'])}")
        print(f"{out['count']} tokens, {out['chars']} characters, {out['chars_per_token']:.2f} characters per token",
              file=sys.stderr)
        return 0
    if command in ("analogy", "neighbours", "neighbors"):
        if command == "analogy":
            out = service.analogy(AnalogyRequest.from_dict({"a": args.a, "b": args.b, "c": args.c, "model": args.model, "top": args.top}))
            looked_up = out["inputs"]
        else:
            out = service.neighbours(NeighboursRequest.from_dict({"word": args.word, "model": args.model, "top": args.top}))
            looked_up = [out["word"]]
        for w in looked_up:
            if w["multi_token"]:
                print(f"note: '{w['word']}' is {len(w['pieces'])} tokens ({' + '.join(map(repr, w['pieces']))}); "
                      "their vectors were averaged", file=sys.stderr)
        for r in out["results"]:
            print(f"{r['word']}\t{r['score']:.4f}" if args.scores else r["word"])
        return 0
    if command == "attention":
        from engines.text.explore_attention import heatmap_png

        req = AttentionRequest.from_dict({"text": args.text, "model": args.model, "max_tokens": args.max_tokens})
        source, maps = service.attention_maps(req)
        matrix = maps.matrix(args.layer, args.head)
        layer = args.layer % maps.layers
        which = f"head {args.head % maps.heads}" if args.head is not None else f"mean of {maps.heads} heads"
        title = f"{source.name} - layer {layer} of {maps.layers}, {which}"
        atomic_write_bytes(args.out, heatmap_png(matrix, maps.tokens, title))
        if args.json:
            atomic_write_text(args.json, json.dumps(maps.to_json(), ensure_ascii=False))
        print(f"wrote {args.out}: {len(maps.tokens)} tokens, layer {layer}, {which}"
              + (f"; weights of all {maps.layers} layers x {maps.heads} heads in {args.json}" if args.json else ""),
              file=sys.stderr)
        return 0
    raise RequestError(f"Unknown explore command {command!r}.")
