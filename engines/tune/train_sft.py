"""Supervised fine-tuning (TRL SFTTrainer) on prompt/completion, messages or text rows."""
from __future__ import annotations


def build_trainer(ctx):
    from trl import SFTConfig, SFTTrainer

    from engines.tune.runner import lora_config

    args = SFTConfig(**ctx.config_kwargs, max_length=ctx.job.max_length)
    return SFTTrainer(model=str(ctx.base_path), args=args, train_dataset=ctx.dataset(), processing_class=ctx.tokenizer,
                      peft_config=lora_config(ctx.job, "CAUSAL_LM"), callbacks=ctx.callbacks)
