"""Train Hearth's bundled image model: a tiny Stable Diffusion (AutoencoderKL + UNet2DConditionModel
+ CLIP text encoder/tokenizer) on procedurally drawn shapes, saved as a diffusers folder.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/train_default_image_model.py [--out assets/image-default]

Reproducible from --seed (torch, numpy and Python RNGs; single-threaded data). The same code
path that loads real checkpoints loads the result (StableDiffusionPipeline.from_pretrained).

Resumable: with --checkpoint DIR the run saves a loadable model (DIR/model), the optimizer, the encoded dataset and
the loss curve every --checkpoint-every steps, and the same command continues from there. Every training step draws
its batch, noise and timesteps from (seed, step) alone, so a continued run ends where an uninterrupted one would
(checked: the UNet weights of a 4-step run stopped and continued at step 2 matched an uninterrupted run to 1.5e-8).
<out>/training.json records the settings of every run in the chain, the time and the loss curve (mean of each 50
steps).

The shipped weights come from six runs on 2 shared CPU cores, torch 2.13 CPU. The first four made the previous model
(colours and shapes right, positions ignored) with this tool as of commit 44e169a, which drew from global RNGs:
--schedule sd trains as it did, but with other random draws.
  1. from scratch, defaults, --schedule sd --seed 1234: 1438 s (24 min) -- VAE 1200 steps 327 s, rendering and
     encoding 6000 scenes 30 s, UNet + text encoder 2400 steps 1080 s (~0.45 s/step at batch 16, shared cores);
  2. --resume <1> --schedule sd --unet-steps 2500 --lr 5e-4 --seed 4321: 1908 s (under heavy contention);
  3. --resume <2> --schedule sd --unet-steps 0 --vae-decoder-steps 1500 --seed 99: 665 s. The decoder-only fine-tune
     on whole images removed a bright frame along the image border and the washed-out flat colours of the
     32x32-crop VAE;
  4. --resume <3> --schedule sd --unet-steps 3000 --lr 5e-4 --dataset 30000 --threads 2 --seed 777: 871 s (~0.27
     s/step on quiet cores). Five times as many rendered scenes: the UNet had been memorising its 6000.
  5. --resume <4> --reset-position-words --unet-steps 8000 --stop-after 2000 --lr 5e-4 --dataset 30000 --seed 2026
     --checkpoint DIR: 1525 s (182 s of it rendering and encoding the dataset). Zero-terminal-SNR v-prediction (the
     default --schedule); this run was stopped at its step-2000 checkpoint, the --stop-after of the list;
  6. --resume <5> --conv-in-kernel 15 --reset-position-words --position-word-scale 30 --freeze-text-encoder
     --high-t-share 0.5 --unet-steps 5000 --lr 5e-4 --dataset 30000 --seed 2026 --checkpoint DIR: 3048 s (51 min,
     0.45-0.9 s/step as the cores were shared; its dataset is run 5's, the same 30000 scenes by seed and VAE);
  7. --resume <6> --freeze-text-encoder --unet-steps 2000 --lr 2e-4 --dataset 30000 --seed 2027 --checkpoint DIR:
     1170 s (the shipped weights; the command is in training.json). Run 6 drew half its timesteps from 600-999 to
     learn placement; this run trains all timesteps evenly at a lower rate, and the colours came back (most of
     run 6's misses were orange drawn as red).

Quality (benchmarks/default_image_quality.py, 20 Euler steps, CFG 7), run 4 / run 6 / run 7: on the 120 held-out
scenes of the default sample, colour 0.983 / 0.925 / 0.983, background 1.0 / 0.992 / 1.0, shape 0.842 / 0.9 / 0.942,
position 0.15 / 1.0 / 0.992; on all 258 held-out scenes, colour 0.992 / 0.95 / 0.981, background 1.0 / 0.988 / 0.996,
shape 0.822 / 0.891 / 0.938, position 0.151 / 1.0 / 0.996 (per word, run 4 / run 6 / run 7: left 0.042 / 1.0 / 1.0,
right 0.207 / 1.0 / 1.0, top 0.146 / 1.0 / 1.0, bottom 0.10 / 1.0 / 0.98, center 0.241 / 1.0 / 1.0; chance 0.2). The VAE's
own reconstructions of the true renders, the ceiling, read colour 0.988, shape 0.872, position 0.992.
Decode (benchmarks/decode_demo.py, defaults), run 4 / run 6 / run 7, PixCorr of the decoded reconstructions: 0.809 /
0.699 / 0.704 at SNR 0.05, 0.838 / 0.851 / 0.881 at 0.2, 0.885 / 0.912 / 0.926 at 1; oracle 0.955 / 0.952 / 0.957
(SSIM 0.857 / 0.823 / 0.854). At SNR 0.05 the decoded
caption is mostly wrong (semantic accuracy 0.25-0.30), and a model that follows positions follows wrong ones too.

Why run 4 ignored positions, measured:
  * SD's noise schedule leaks them: at t=999 the latents of a large red circle on the left and on the right still
    separate by 2.3 noise standard deviations (1.4 for a small one), so the UNet reads the position from the noisy
    input instead of the caption, and at sampling time the starting noise picks it. Zero terminal SNR
    (rescale_betas_zero_snr, Lin et al. 2023) removes the leak; its t=999 is pure noise, so the UNet predicts v
    (epsilon says nothing there) and sampling starts at t=999 ("trailing" spacing). The saved scheduler config carries
    all three, so every sampler Hearth offers uses them (engines/image/schedulers.py);
  * the text encoder, trained with a UNet that never used them, squashed the position words: two captions that
    differ only in "left"/"right" came out 1.0 apart over their 16 token states, against 23 for "red"/"blue".
    Fresh embeddings did not survive its layers (3.8 apart at 3x a colour word's length, 9.3 at 30x). Run 6 uses
    30x and freezes the encoder, so they cannot be squashed again;
  * a pure-noise input tells a pixel where it is only through the zero padding at the border, which 3x3
    convolutions pass inwards a pixel per layer. After 2000 steps of run 5 the UNet's t=999 prediction did not move
    between "left" and "right" (mean latent change 0.0015, against 0.22 between "red" and "blue"). Run 6 widens the
    first convolution to 15x15 (the old kernel in its centre), so each pixel sees its distance to every border.
    With that, "top"/"bottom" moved the t=999 prediction by 0.37 after 1000 steps and "left"/"right" followed
    (0.06 at 1500); held-out position accuracy (60 scenes) was 0.63 at step 1500 and 0.95 at 2500.
Also tried, not kept: run 5's recipe continued with the wider convolution but the text encoder trainable (positions
still drawn in the centre after 750 steps, colours down to 0.65); a fresh, frozen text encoder (backgrounds 0.08
after 750 steps: it has to relearn every word).
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
from engines.image.shapes import COLORS, POSITIONS, SHAPES, SIZES, all_scenes, render  # noqa: E402

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


SCHEDULES = {
    # SD 1.x's schedule, epsilon-prediction: its last step keeps sqrt(alpha_bar) = 0.068 of the image, which leaks
    # where the shape is (measured: 2.3 noise standard deviations between left and right scenes at t=999).
    "sd": dict(prediction_type="epsilon", rescale_betas_zero_snr=False, timestep_spacing="leading", steps_offset=1),
    # Zero terminal SNR (Lin et al. 2023): t=999 is pure noise, so the caption alone must place the shape. The
    # image cannot be read back from eps at zero SNR, hence v-prediction; "trailing" makes sampling start at t=999.
    "zero-snr": dict(prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
                     steps_offset=1),
}
BETAS = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def _step_rngs(seed: int, step: int):
    """The random draws of one training step depend only on (seed, step), so a resumed run repeats them exactly."""
    return random.Random(seed * 1_000_003 + step), torch.Generator().manual_seed(seed * 1_000_003 + step)


def train_unet(text, tok, unet, latents, items, seed: int, steps: int, batch: int, log, peak_lr: float = 1e-3,
               schedule: str = "sd", state: dict | None = None, checkpoint=None, checkpoint_every: int = 0,
               high_t_share: float = 0.0, stop_after: int | None = None) -> dict:
    """Train the UNet and text encoder; returns the run state (step, loss curve). ``state`` and ``checkpoint``
    (a callable saving the models and that state) make the run resumable from any saved step."""
    from diffusers import DDPMScheduler

    cfg = SCHEDULES[schedule]
    noise_sched = DDPMScheduler(**BETAS, prediction_type=cfg["prediction_type"],
                                rescale_betas_zero_snr=cfg["rescale_betas_zero_snr"])
    alphas = noise_sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    params = [p for p in list(unet.parameters()) + list(text.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=1e-2)
    state = state or {"step": 0, "curve": []}
    if state.get("optimizer") is not None:
        opt.load_state_dict(state.pop("optimizer"))
    unet.train(), text.train()
    window = []
    for step in range(state["step"], min(steps, stop_after or steps)):
        rng, gen = _step_rngs(seed, step)
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
        noise = torch.randn(lat.shape, generator=gen)
        if schedule == "sd":
            # Offset noise (Guttenberg 2023): with SD's schedule the last timestep still leaks the image's mean
            # colour, so a model trained without it keeps the starting noise's mean as its background.
            noise = noise + NOISE_OFFSET * torch.randn(lat.shape[0], lat.shape[1], 1, 1, generator=gen)
        t = torch.randint(0, 1000, (batch,), generator=gen)
        if high_t_share:
            high = int(round(batch * high_t_share))
            t[:high] = torch.randint(600, 1000, (high,), generator=gen)
        noisy = noise_sched.add_noise(lat, noise, t)
        pred = unet(noisy, t, cond).sample
        if schedule == "sd":
            target = noise
            # Min-SNR-5 weighting (Hang et al. 2023) converges faster on a small budget.
            w = torch.clamp(snr[t], max=5.0) / snr[t]
        else:
            target = noise_sched.get_velocity(lat, noise, t)
            # Plain v-MSE (weight 1 at every t): Min-SNR's v weight, min(snr, 5) / (snr + 1), is 0 at t=999, the
            # one step where the shape must be placed from the caption alone.
            w = torch.ones(batch)
        loss = (w * ((pred - target) ** 2).mean(dim=(1, 2, 3))).mean()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak_lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        window.append(loss.item())
        if step % 50 == 49 or step == steps - 1:
            state["curve"].append([step + 1, round(sum(window) / len(window), 5)])
            log(f"unet step {step + 1}/{steps} loss {state['curve'][-1][1]:.4f} (mean of the last {len(window)})")
            window = []
        state["step"] = step + 1
        if checkpoint and checkpoint_every and state["step"] % checkpoint_every == 0 and state["step"] < steps:
            checkpoint(dict(state, optimizer=opt.state_dict()))
    return state


def position_word_gap(text, tok) -> float:
    """How far apart the text encoder puts "left" and "right" (L2 between their final token states in two
    captions that differ only there): 0.78 when they had collapsed, 7.7-12.3 between two colours."""
    ids = tok([f"a large red circle on the {w} on a white background" for w in ("left", "right")],
              padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids
    at = int((ids[0] != ids[1]).nonzero()[0])
    with torch.no_grad():
        states = text(ids)[0][:, at]
    return round(float((states[0] - states[1]).norm()), 3)


def widen_conv_in(unet, kernel: int):
    """The same UNet with a ``kernel``-wide first convolution that computes what the old one did.

    At t=999 of a zero-terminal-SNR schedule the UNet's input is pure noise: the only clue to where a pixel is
    comes from the zero padding at the image border, which 3x3 convolutions pass inwards one pixel per layer. A
    first convolution as wide as the 16x16 latent lets every pixel see how far it is from each border at once.
    """
    from diffusers import UNet2DConditionModel

    wide = UNet2DConditionModel.from_config({**unet.config, "conv_in_kernel": kernel})
    state = unet.state_dict()
    old = state["conv_in.weight"]
    new = torch.zeros(old.shape[0], old.shape[1], kernel, kernel)
    k0, off = old.shape[-1], (kernel - old.shape[-1]) // 2
    new[:, :, off:off + k0, off:off + k0] = old
    state["conv_in.weight"] = new
    wide.load_state_dict(state)
    return wide


def reset_position_words(text, tok, gen: torch.Generator, scale: float = 3.0) -> None:
    """Give the five position words new random input embeddings, ``scale`` times as long as a colour word's.

    Measured on the collapsed encoder, between two captions that differ in one word (all 16 token states): "left"
    and "right" 1.0 apart, 3.8 with fresh embeddings at 3x a colour word's norm, 5.6 at 10x, 9.3 at 30x; "red"
    and "blue" 23-25. The encoder's layers squash what its UNet never used; a longer embedding survives them."""
    table = text.get_input_embeddings().weight
    with torch.no_grad():
        norm = scale * torch.stack([table[tok.convert_tokens_to_ids(c + "</w>")] for c in COLORS]).norm(dim=1).mean()
        for word in POSITIONS:
            i = tok.convert_tokens_to_ids(word + "</w>")
            v = torch.randn(table.shape[1], generator=gen)
            table[i] = v / v.norm() * norm


def _save_optimizer(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {f"{i}.{k}": v.contiguous() for i, per in state["state"].items() for k, v in per.items()}
    save_file(tensors, str(path / "optimizer.safetensors"))
    (path / "optimizer.json").write_text(json.dumps(state["param_groups"]))


def _load_optimizer(path: Path) -> dict:
    from safetensors.torch import load_file

    per: dict[int, dict] = {}
    for key, v in load_file(str(path / "optimizer.safetensors")).items():
        i, k = key.split(".", 1)
        per.setdefault(int(i), {})[k] = v
    return {"state": per, "param_groups": json.loads((path / "optimizer.json").read_text())}


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
                   help="start from a saved model folder: keep its VAE and tokenizer, train the UNet and text "
                        "encoder --unet-steps more steps (peak learning rate --lr)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak UNet/text-encoder learning rate")
    p.add_argument("--vae-decoder-steps", type=int, default=0,
                   help="then fine-tune the VAE decoder alone on whole images (the latent space is unchanged)")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="zero-snr",
                   help="noise schedule and prediction type the UNet is trained for (and the saved scheduler uses)")
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="save the run here every --checkpoint-every UNet steps (a loadable model under DIR/model, "
                        "the optimizer, the encoded dataset, the loss curve); if DIR already holds a checkpoint of "
                        "the same run, continue from it. The result is the same as an uninterrupted run.")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--fresh-text-encoder", action="store_true",
                   help="with --resume: replace the text encoder by a newly initialised one (same config, drawn from "
                        "--seed) and keep it frozen, as SD keeps CLIP frozen: a random encoder keeps every caption "
                        "word apart, and a frozen one cannot learn to drop the words the UNet does not use yet")
    p.add_argument("--conv-in-kernel", type=int, default=None, metavar="K",
                   help="with --resume: widen the UNet's first convolution to KxK (the old 3x3 kernel in its centre, "
                        "zeros around it, so it starts as the same function)")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="save the model after UNet step N of the --unet-steps schedule (the learning rate as at N)")
    p.add_argument("--freeze-text-encoder", action="store_true",
                   help="train the UNet alone (the text encoder as resumed, after --reset-position-words)")
    p.add_argument("--position-word-scale", type=float, default=3.0,
                   help="--reset-position-words draws embeddings this many times as long as a colour word's")
    p.add_argument("--high-t-share", type=float, default=0.0,
                   help="share of each batch whose timestep is drawn from 600-999 instead of 0-999: where the "
                        "zero-SNR UNet has to place the shape from the caption alone")
    p.add_argument("--reset-position-words", action="store_true",
                   help="with --resume: draw fresh, distinct input embeddings for the five position words first "
                        "(collapsed ones get no gradient to pull them apart while the UNet ignores them)")
    args = p.parse_args(argv)

    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    torch.set_num_threads(args.threads)
    random.seed(args.seed), np.random.seed(args.seed), torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.time()
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    run_key = {k: getattr(args, k) for k in ("seed", "unet_steps", "batch", "dataset", "resume", "lr", "schedule",
                                             "vae_steps", "vae_decoder_steps", "reset_position_words",
                                             "fresh_text_encoder", "conv_in_kernel", "freeze_text_encoder",
                                             "position_word_scale", "high_t_share")}
    state = None
    spent = 0.0

    def log(msg: str) -> None:
        print(f"[{spent + time.time() - started:7.1f}s] {msg}", flush=True)

    def load(folder):
        return StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None,
                                                       requires_safety_checker=False)

    scenes = [s for s in all_scenes() if not s.held_out]
    previous = {}
    if ckpt and (ckpt / "state.json").is_file():
        saved = json.loads((ckpt / "state.json").read_text())
        if saved["run"] != {k: run_key.get(k) for k in saved["run"]}:
            raise SystemExit(f"{ckpt} holds a checkpoint of another run: {saved['run']}")
        base = load(ckpt / "model")
        tok, vae, text, unet = base.tokenizer, base.vae, base.text_encoder, base.unet
        previous, vae_done, spent = saved["previous"], saved["vae_seconds"], saved["seconds"]
        state = {"step": saved["step"], "curve": saved["curve"], "optimizer": _load_optimizer(ckpt)}
        log(f"continuing {ckpt} at UNet step {state['step']}")
    elif args.resume:
        base = load(args.resume)
        tok, vae, text, unet = base.tokenizer, base.vae, base.text_encoder, base.unet
        previous = json.loads((Path(args.resume) / "training.json").read_text())
        vae_done = 0.0
        log(f"resuming from {args.resume} ({previous.get('unet_steps')} UNet steps so far)")
        if args.conv_in_kernel and args.conv_in_kernel != unet.config.conv_in_kernel:
            unet = widen_conv_in(unet, args.conv_in_kernel)
            log(f"UNet conv_in widened to {args.conv_in_kernel}x{args.conv_in_kernel}")
        if args.fresh_text_encoder:
            torch.manual_seed(args.seed)
            text = type(text)(text.config)
            log(f"fresh text encoder; left/right gap {position_word_gap(text, tok)}")
        if args.reset_position_words:
            reset_position_words(text, tok, torch.Generator().manual_seed(args.seed), args.position_word_scale)
            log(f"position words re-drawn; left/right gap {position_word_gap(text, tok)}")
    else:
        tok = build_tokenizer()
        vae, text, unet = build_models(len(tok))
    vae.requires_grad_(False)
    if args.fresh_text_encoder or args.freeze_text_encoder:
        text.requires_grad_(False)
    log(f"params: vae {sum(p.numel() for p in vae.parameters())/1e6:.2f}M, text {sum(p.numel() for p in text.parameters())/1e6:.2f}M, "
        f"unet {sum(p.numel() for p in unet.parameters())/1e6:.2f}M; {len(scenes)} training scenes")
    if not args.resume and state is None:
        vae.requires_grad_(True)
        train_vae(vae, scenes, rng, args.vae_steps, args.batch, log)
        vae.requires_grad_(False)
        with torch.no_grad():  # SD's scaling factor: make the latents unit-variance for the UNet
            x, _ = make_batch(scenes, random.Random(args.seed + 1), 256, captions=False)
            std = vae.encode(x).latent_dist.mean.std().item()
        vae.register_to_config(scaling_factor=round(1.0 / std, 5))
        vae_done = time.time() - started
        log(f"vae done; latent std {std:.4f} -> scaling_factor {vae.config.scaling_factor}")
    vae.eval()

    sched_cfg = SCHEDULES[args.schedule]

    def pipeline():
        scheduler = EulerDiscreteScheduler(**BETAS, **sched_cfg)
        return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    if args.unet_steps:
        from safetensors.torch import load_file, save_file

        if ckpt and (ckpt / "dataset.safetensors").is_file():
            data = load_file(str(ckpt / "dataset.safetensors"))
            latents, items = data["latents"], [scenes[i] for i in data["scenes"].tolist()]
        else:
            latents, items = encode_dataset(vae, scenes, rng, args.dataset, log)
            if ckpt:
                ckpt.mkdir(parents=True, exist_ok=True)
                index = {s: i for i, s in enumerate(scenes)}
                save_file({"latents": latents.contiguous(), "scenes": torch.tensor([index[s] for s in items])},
                          str(ckpt / "dataset.safetensors"))

        def checkpoint(run_state: dict) -> None:
            unet.eval(), text.eval()
            pipeline().save_pretrained(ckpt / "model", safe_serialization=True)
            unet.train(), text.train()
            _save_optimizer(run_state["optimizer"], ckpt)
            seconds = spent + time.time() - started
            (ckpt / "state.json").write_text(json.dumps(
                {"run": run_key, "step": run_state["step"], "curve": run_state["curve"], "previous": previous,
                 "vae_seconds": vae_done, "seconds": round(seconds, 1),
                 "left_right_gap": position_word_gap(text, tok)}) + "\n")
            log(f"checkpoint at step {run_state['step']} in {ckpt}; left/right gap {position_word_gap(text, tok)}")

        state = train_unet(text, tok, unet, latents, items, args.seed, args.unet_steps, args.batch, log, args.lr,
                           args.schedule, state, checkpoint if ckpt else None, args.checkpoint_every,
                           args.high_t_share, args.stop_after)
    if args.vae_decoder_steps:
        train_vae_decoder(vae, scenes, rng, args.vae_decoder_steps, args.batch, log)
    unet.eval(), text.eval()

    out = Path(args.out)
    pipeline().save_pretrained(out, safe_serialization=True)
    for config in out.glob("*/config.json"):  # a resumed model remembers the folder it came from: not worth shipping
        fields = json.loads(config.read_text())
        if fields.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    total = spent + time.time() - started
    meta = {"seed": args.seed, "vae_steps": previous.get("vae_steps", args.vae_steps),
            "unet_steps": previous.get("unet_steps", 0) + args.unet_steps, "batch": args.batch, "dataset": args.dataset,
            "threads": args.threads, "schedule": args.schedule, **sched_cfg, "vae_seconds": round(vae_done, 1),
            "total_seconds": round(total, 1), "torch": torch.__version__, "image_size": 64,
            "note": "tools/train_default_image_model.py",
            "command": " ".join(["tools/train_default_image_model.py", *(sys.argv[1:] if argv is None else argv)])}
    if args.schedule == "sd":
        meta["noise_offset"] = NOISE_OFFSET
    done = min(args.unet_steps, args.stop_after or args.unet_steps)
    meta["unet_steps"] = previous.get("unet_steps", 0) + done
    for flag in ("reset_position_words", "position_word_scale", "freeze_text_encoder", "fresh_text_encoder",
                 "conv_in_kernel", "high_t_share"):
        if getattr(args, flag) and (flag != "position_word_scale" or args.reset_position_words):
            meta[flag] = getattr(args, flag)
    if args.stop_after:
        meta.update(scheduled_unet_steps=args.unet_steps, stopped_after=done)
    if previous:  # a continued run records the whole history
        meta.update(resumed_from=previous, continued_unet_steps=done, continued_lr=args.lr)
    if args.vae_decoder_steps:
        meta["vae_decoder_steps"] = args.vae_decoder_steps
    if state and state["curve"]:
        meta["loss_curve"] = {"every": 50, "what": "mean training loss of the 50 UNet steps up to each step",
                              "points": state["curve"]}
        meta["left_right_gap"] = position_word_gap(text, tok)
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"saved {out} in {total:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
