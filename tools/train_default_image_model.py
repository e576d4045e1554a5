"""Train Hearth's bundled image model: a tiny Stable Diffusion (AutoencoderKL + UNet2DConditionModel
+ CLIP text encoder/tokenizer) on procedurally drawn shapes, saved as a diffusers folder.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/train_default_image_model.py [--out assets/image-default]

Reproducible from --seed (torch, numpy and Python RNGs; single-threaded data). The same code
path that loads real checkpoints loads the result (StableDiffusionPipeline.from_pretrained).

The shipped weights come from four runs (their settings and times are in <out>/training.json), on 2 CPU cores,
torch 2.13 CPU:
  1. from scratch, defaults, seed 1234: 1438 s (24 min) -- VAE 1200 steps 327 s, rendering and encoding 6000
     scenes 30 s, UNet + text encoder 2400 steps 1080 s (~0.45 s/step at batch 16, shared cores);
  2. --resume <1> --unet-steps 2500 --lr 5e-4 --seed 4321: 1908 s (under heavy contention);
  3. --resume <2> --unet-steps 0 --vae-decoder-steps 1500 --seed 99: 665 s. The decoder-only fine-tune on whole
     images removed a bright frame along the image border and the washed-out flat colours of the 32x32-crop VAE;
  4. --resume <3> --unet-steps 3000 --lr 5e-4 --dataset 30000 --threads 2 --seed 777: 871 s (~0.27 s/step on
     quiet cores). Five times as many rendered scenes: the UNet had been memorising its 6000.

Quality (benchmarks/default_image_quality.py, 120 held-out scenes, 20 Euler steps, CFG 7), after run 1 / 2 / 3 / 4,
read with the first, fill-ratio grader: colour 0.74 / 0.82 / 0.975 / 0.983, background 0.97 / 1.0 / 1.0 / 1.0,
shape 0.20 / 0.275 / 0.35 / 0.525, position 0.16 / 0.14 / 0.15 / 0.15 (chance: shape 0.25, position 0.20).
That grader read even the VAE's faithful reconstructions of the true renders at shape 0.55; the template grader
that replaced it reads those at 0.88 (small stars lose their points in the 16x16 latent) and run 4 at colour
0.983, background 1.0, shape 0.842, position 0.15.

Positions are not learnt, not even for training captions (0.25 on 24 of them), for two measured reasons:
  * SD's noise schedule leaks them: at t=999 the latents of a large red circle on the left and on the right still
    separate by 2.3 noise standard deviations (1.4 for a small one), so the UNet reads the position from the noisy
    input instead of the caption, and at sampling time the starting noise picks it;
  * trained jointly with a UNet that never used them, the text encoder's "left" and "right" collapsed: their token
    states differ by 0.78, against 7.7-12.3 for two colours, shapes or sizes.
Four retrains aimed at this were stopped unfinished and not shipped (see the Image issue's notes). A three-level
UNet (48/96/128, cross-attention at 8x8 and 4x4; 0.24 s per batch, as fast as this one) on the kept text encoder
had good shapes after 3000 steps, but positions still at chance. With a fresh text encoder (word embeddings
frozen), zero-terminal-SNR v-prediction and a terminal sigma of 80 with epsilon-prediction had not learnt colours or
backgrounds after 6000 and 2750 steps. The kept text encoder at terminal sigma 80 pulled "left" and "right" apart
(token states 8.7 apart after 2250 steps), but its samples were still noise. The schedule change looks right, but it
needs a longer run than one session here allowed.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engines.image.shapes import COLORS, SHAPES, SIZES, all_scenes, render  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_TOKENS = 16  # the longest caption is 12 tokens with <start>/<end>
NOISE_OFFSET = 0.15


def build_tokenizer():
    """A CLIPTokenizer whose BPE merges make every caption word one token.

    The merges come from training a BPE on the vocabulary itself (tokenizers' trainer), so a
    word never splits; unknown words fall back to letters, as CLIP's own tokenizer does.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    words = ["a", "on", "the", "at", "in", "background", *COLORS, *SHAPES, *SIZES, "left", "right", "top", "bottom", "center"]
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    trainer = trainers.BpeTrainer(vocab_size=2000, initial_alphabet=letters, end_of_word_suffix="</w>",
                                  special_tokens=["<|startoftext|>", "<|endoftext|>"], show_progress=False)
    bpe.train_from_iterator([" ".join(words)] * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    for ch in letters:  # CLIP keeps end-of-word variants of every letter
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.model_max_length = MAX_TOKENS
    for w in words:
        assert len(tok(w).input_ids) == 3, (w, tok.tokenize(w))
    return tok


def build_models(vocab_size: int):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 64),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=16, sample_size=64)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=MAX_TOKENS, bos_token_id=0,
                                        eos_token_id=1, pad_token_id=1, projection_dim=64))
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(48, 96),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64,
                                attention_head_dim=8, norm_num_groups=16)
    return vae, text, unet


def make_batch(scenes, rng: random.Random, n: int, size: int = 64, captions: bool = True):
    imgs, caps = [], []
    for _ in range(n):
        s = rng.choice(scenes)
        imgs.append(np.asarray(render(s, rng, size), dtype=np.float32) / 127.5 - 1.0)
        if captions:
            if rng.random() < 0.1:
                caps.append("")  # unconditional, for classifier-free guidance
            else:
                caps.append(s.caption(rng.random() < 0.15, rng.random() < 0.15, rng.random() < 0.15))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x, caps


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def train_vae(vae, scenes, rng, steps: int, batch: int, log) -> None:
    # Convolutions do not care where they are: 32x32 crops of 64x64 scenes train 4x cheaper.
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        x, _ = make_batch(scenes, rng, batch, captions=False)
        ox, oy = rng.randrange(0, 33, 8), rng.randrange(0, 33, 8)
        x = x[:, :, oy:oy + 32, ox:ox + 32]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, 2e-3)
        dist = vae.encode(x).latent_dist
        # The mean, not a sample: with a 1e-6 KL weight the posterior noise (std 1 at init) only
        # slowed learning, and the UNet is trained on the means anyway.
        recon = vae.decode(dist.mean).sample
        # L1 as well as MSE: flat colour regions come out exact sooner (MSE alone left colours washed out).
        loss = F.mse_loss(recon, x) + F.l1_loss(recon, x) + 1e-6 * dist.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps} loss {loss.item():.4f}")


def train_vae_decoder(vae, scenes, rng, steps: int, batch: int, log) -> None:
    """Fine-tune only the decoder (and post_quant_conv) on whole 64x64 scenes, as SD's ft-MSE VAE did: the
    encoder and so the latent space stay as they were, so a UNet trained on them stays valid. The 32x32-crop
    training above leaves a bright frame along the image border and washed-out flat colours; whole images fix it."""
    vae.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        x, _ = make_batch(scenes, rng, batch, captions=False)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, 1e-3)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        recon = vae.decode(z).sample
        loss = F.mse_loss(recon, x) + F.l1_loss(recon, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"vae decoder step {step}/{steps} loss {loss.item():.4f}")
    vae.requires_grad_(False)
    vae.eval()


def encode_dataset(vae, scenes, rng, count: int, log):
    """Render ``count`` captioned scenes once and keep their latents: the VAE is frozen, so
    encoding every batch again would only cost time."""
    latents, items = [], []
    scale = vae.config.scaling_factor
    with torch.no_grad():
        for start in range(0, count, 64):
            n = min(64, count - start)
            batch = [rng.choice(scenes) for _ in range(n)]
            x = torch.from_numpy(np.stack([np.asarray(render(s, rng), dtype=np.float32) / 127.5 - 1.0 for s in batch]))
            latents.append(vae.encode(x.permute(0, 3, 1, 2).contiguous()).latent_dist.mean * scale)
            items += batch
    log(f"encoded {count} scenes")
    return torch.cat(latents), items


def train_unet(text, tok, unet, latents, items, rng, steps: int, batch: int, log, peak_lr: float = 1e-3) -> None:
    from diffusers import DDPMScheduler

    noise_sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    alphas = noise_sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=1e-2)
    unet.train(), text.train()
    for step in range(steps):
        idx = [rng.randrange(len(items)) for _ in range(batch)]
        caps = []
        for i in idx:
            if rng.random() < 0.1:
                caps.append("")  # unconditional, for classifier-free guidance
            else:
                caps.append(items[i].caption(rng.random() < 0.15, rng.random() < 0.15, rng.random() < 0.15))
        lat = latents[idx]
        ids = tok(caps, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt").input_ids
        cond = text(ids)[0]
        # Offset noise (Guttenberg 2023): with SD's schedule the last timestep still leaks the
        # image's mean colour, so a model trained without it cannot choose a background colour
        # at sampling time (it keeps the starting noise's mean). A per-channel shift fixes that.
        noise = torch.randn_like(lat) + NOISE_OFFSET * torch.randn(lat.shape[0], lat.shape[1], 1, 1)
        t = torch.randint(0, 1000, (batch,))
        noisy = noise_sched.add_noise(lat, noise, t)
        pred = unet(noisy, t, cond).sample
        # Min-SNR-5 weighting (Hang et al. 2023) converges faster on a small budget.
        w = torch.clamp(snr[t], max=5.0) / snr[t]
        loss = (w * ((pred - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak_lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"unet step {step}/{steps} loss {loss.item():.4f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "assets" / "image-default"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vae-steps", type=int, default=1200)
    p.add_argument("--unet-steps", type=int, default=2400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dataset", type=int, default=6000, help="scenes rendered and encoded once for the UNet")
    # One thread: with other jobs on the 2 cores, two OpenMP threads spun and ran 2-3x slower.
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", default=None, metavar="FOLDER",
                   help="continue from a saved model folder: keep its VAE and tokenizer, train the UNet and text "
                        "encoder --unet-steps more steps (peak learning rate --lr)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak UNet/text-encoder learning rate")
    p.add_argument("--vae-decoder-steps", type=int, default=0,
                   help="then fine-tune the VAE decoder alone on whole images (the latent space is unchanged)")
    args = p.parse_args(argv)

    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    torch.set_num_threads(args.threads)
    random.seed(args.seed), np.random.seed(args.seed), torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {msg}", flush=True)

    scenes = [s for s in all_scenes() if not s.held_out]
    previous = {}
    if args.resume:
        base = StableDiffusionPipeline.from_pretrained(args.resume, local_files_only=True, safety_checker=None,
                                                       requires_safety_checker=False)
        tok, vae, text, unet = base.tokenizer, base.vae, base.text_encoder, base.unet
        previous = json.loads((Path(args.resume) / "training.json").read_text())
        vae.requires_grad_(False)
        vae_done = 0.0
        log(f"resuming from {args.resume} ({previous.get('unet_steps')} UNet steps so far)")
    else:
        tok = build_tokenizer()
        vae, text, unet = build_models(len(tok))
    log(f"params: vae {sum(p.numel() for p in vae.parameters())/1e6:.2f}M, text {sum(p.numel() for p in text.parameters())/1e6:.2f}M, "
        f"unet {sum(p.numel() for p in unet.parameters())/1e6:.2f}M; {len(scenes)} training scenes")
    if not args.resume:
        train_vae(vae, scenes, rng, args.vae_steps, args.batch, log)
        vae.requires_grad_(False)
        with torch.no_grad():  # SD's scaling factor: make the latents unit-variance for the UNet
            x, _ = make_batch(scenes, random.Random(args.seed + 1), 256, captions=False)
            std = vae.encode(x).latent_dist.mean.std().item()
        vae.register_to_config(scaling_factor=round(1.0 / std, 5))
        vae_done = time.time() - started
        log(f"vae done; latent std {std:.4f} -> scaling_factor {vae.config.scaling_factor}")
    vae.eval()
    if args.unet_steps:
        latents, items = encode_dataset(vae, scenes, rng, args.dataset, log)
        train_unet(text, tok, unet, latents, items, rng, args.unet_steps, args.batch, log, args.lr)
    if args.vae_decoder_steps:
        train_vae_decoder(vae, scenes, rng, args.vae_decoder_steps, args.batch, log)
    unet.eval(), text.eval()

    scheduler = EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                                       beta_end=0.012, timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    out = Path(args.out)
    pipe.save_pretrained(out, safe_serialization=True)
    total = time.time() - started
    if previous:  # a continued run records the whole history
        meta_prev = {"resumed_from": previous, "continued_unet_steps": args.unet_steps, "continued_lr": args.lr}
    if args.vae_decoder_steps:
        meta_prev = {**(meta_prev if previous else {}), "vae_decoder_steps": args.vae_decoder_steps}
    meta = {"seed": args.seed, "vae_steps": previous.get("vae_steps", args.vae_steps),
            "unet_steps": previous.get("unet_steps", 0) + args.unet_steps, "batch": args.batch, "dataset": args.dataset,
            "threads": args.threads, "noise_offset": NOISE_OFFSET, "vae_seconds": round(vae_done, 1), "total_seconds": round(total, 1),
            "torch": torch.__version__, "image_size": 64, "note": "tools/train_default_image_model.py"}
    if previous or args.vae_decoder_steps:
        meta.update(meta_prev)
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"saved {out} in {total:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
