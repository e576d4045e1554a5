"""Online RL from the app's own reward model: TRL RLOOTrainer (REINFORCE leave-one-out).

TRL 1.16 has no PPO; RLOO samples ``num_generations`` replies per prompt, scores them with the
reward model trained in the Tune room, and uses the other samples' mean as the baseline. ``beta``
> 0 adds the KL penalty against the frozen base (with LoRA: the same weights, adapter off).

Advantages are normalised: a reward model's scores have no fixed scale (the pair loss only sees
differences), so without it the same learning rate moves the policy a lot with one reward model and
not at all with another. Replies cut off at ``max_completion_length`` stay in the loss: for a
preference such as "short answers", being cut off is what a too-long reply looks like. The logged
loss stays near 0 by construction (one update per batch, and RLOO's leave-one-out advantages sum
to zero over each prompt's samples); the reward and KL curves show whether it learns.
"""
from __future__ import annotations

from pathlib import Path


def prepare(job) -> dict:
    """Before memory is checked: find the reward model's base (its weights count too)."""
    from engines.tune.adapters import reward_base_path

    return {"reward_base": reward_base_path(Path(job.reward_model))}


def build_trainer(ctx):
    from trl import RLOOConfig, RLOOTrainer

    from engines.tune.adapters import load_reward_model
    from engines.tune.runner import lora_config

    job = ctx.job
    reward_model, reward_tokenizer = load_reward_model(Path(job.reward_model), device=ctx.device)
    args = RLOOConfig(**ctx.config_kwargs, beta=job.kl_beta, num_generations=job.num_generations,
                      max_completion_length=job.max_completion_length, temperature=job.temperature,
                      normalize_advantages=True)
    return RLOOTrainer(model=str(ctx.base_path), reward_funcs=reward_model, args=args, train_dataset=ctx.dataset(),
                       processing_class=ctx.tokenizer, reward_processing_classes=reward_tokenizer,
                       peft_config=lora_config(job, "CAUSAL_LM"), callbacks=ctx.callbacks)
