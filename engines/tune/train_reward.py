"""Reward model (TRL RewardTrainer) on preference pairs: a sequence-classification head over the base.

LoRA adapts the body; the new ``score`` head is trained in full and saved with the adapter
(``modules_to_save``) — see ``engines.tune.adapters.load_reward_model`` for the reload.
"""
from __future__ import annotations

from engines.core.errors import ModelFileError


def build_trainer(ctx):
    from trl import RewardConfig, RewardTrainer

    from engines.tune.runner import lora_config

    args = RewardConfig(**ctx.config_kwargs, max_length=ctx.job.max_length)
    trainer = RewardTrainer(model=str(ctx.base_path), args=args, train_dataset=ctx.dataset(), processing_class=ctx.tokenizer,
                            peft_config=lora_config(ctx.job, "SEQ_CLS"), callbacks=ctx.callbacks)
    ctx.extra["score_head"] = check_score_head(trainer.model, ctx.base_path)
    return trainer


def check_score_head(model, base_path) -> dict:
    """The new score head must start as transformers initialises it (normal, std = the config's
    ``initializer_range``): a head left as uninitialised memory, or one carried over from a checkpoint
    that was trained for something else, gives rewards of arbitrary scale and the pair loss saturates
    before anything is learned. Returns its figures for the run's log."""
    import torch

    # With LoRA the trained copy is score.modules_to_save.default.weight (PEFT keeps the original beside it).
    heads = sorted(((name, p) for name, p in model.named_parameters() if "score" in name.split(".") and name.endswith("weight")),
                   key=lambda item: "modules_to_save" in item[0])
    heads = [p for _, p in heads]
    if not heads:
        raise ModelFileError(f"The reward model built from {base_path} has no score head.", path=base_path,
                             hint="Use a causal LM base (Llama, Mistral, Qwen2, SmolLM2...) for a reward model.")
    weight = heads[-1].detach().float()
    expected = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
    std = float(weight.std()) if weight.numel() > 1 else float(weight.abs().mean())
    if not torch.isfinite(weight).all() or not expected / 4 <= std <= expected * 4:
        raise ModelFileError(
            f"The reward model's new score head from {base_path} starts with std {std:.4g} (expected about {expected:g}).",
            path=base_path, hint="Train the reward model from the causal LM itself, not from a model that already has a head.")
    return {"std": round(std, 5), "expected_std": expected, "shape": list(weight.shape)}
