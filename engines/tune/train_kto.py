"""Kahneman-Tversky optimisation (TRL KTOTrainer) on thumbs up/down (unpaired) rows."""
from __future__ import annotations


def build_trainer(ctx):
    from trl import KTOConfig, KTOTrainer

    from engines.tune.runner import lora_config

    args = KTOConfig(**ctx.config_kwargs, beta=ctx.job.kl_beta, max_length=ctx.job.max_length)
    return KTOTrainer(model=str(ctx.base_path), args=args, train_dataset=ctx.dataset(), processing_class=ctx.tokenizer,
                      peft_config=lora_config(ctx.job, "CAUSAL_LM"), callbacks=ctx.callbacks)
