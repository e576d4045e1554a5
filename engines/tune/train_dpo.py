"""Direct preference optimisation (TRL DPOTrainer). With LoRA the reference is the base with the adapter off."""
from __future__ import annotations


def build_trainer(ctx):
    from trl import DPOConfig, DPOTrainer

    from engines.tune.runner import lora_config

    args = DPOConfig(**ctx.config_kwargs, beta=ctx.job.kl_beta, max_length=ctx.job.max_length)
    return DPOTrainer(model=str(ctx.base_path), args=args, train_dataset=ctx.dataset(), processing_class=ctx.tokenizer,
                      peft_config=lora_config(ctx.job, "CAUSAL_LM"), callbacks=ctx.callbacks)
