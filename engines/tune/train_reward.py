"""Reward model (TRL RewardTrainer) on preference pairs: a sequence-classification head over the base.

LoRA adapts the body; the new ``score`` head is trained in full and saved with the adapter
(``modules_to_save``) — see ``engines.tune.adapters.load_reward_model`` for the reload.
"""
from __future__ import annotations


def build_trainer(ctx):
    from trl import RewardConfig, RewardTrainer

    from engines.tune.runner import lora_config

    args = RewardConfig(**ctx.config_kwargs, max_length=ctx.job.max_length)
    return RewardTrainer(model=str(ctx.base_path), args=args, train_dataset=ctx.dataset(), processing_class=ctx.tokenizer,
                         peft_config=lora_config(ctx.job, "SEQ_CLS"), callbacks=ctx.callbacks)
