"""Loading what training jobs wrote: reward models (LoRA + score head), tuned policies, merged exports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.core.errors import ModelFileError, RequestError
from engines.core.requests.text import DEFAULT_SYSTEM_PROMPT
from engines.store import runs
from engines.store.runs import read_json


def _read_json(path: Path) -> dict:
    return read_json(path) or {}


def adapter_base_path(adapter_dir: Path) -> Path:
    """The transformers folder an adapter was trained on (re-resolving 'default' on this machine)."""
    from engines.tune.runner import resolve_base

    adapter_dir = Path(adapter_dir)
    summary = _read_json(adapter_dir / runs.SUMMARY)
    if summary.get("base_model"):
        return resolve_base(summary["base_model"])
    base = _read_json(adapter_dir / runs.ADAPTER_CONFIG).get("base_model_name_or_path")
    if not base or not Path(base).exists():
        raise ModelFileError(f"The adapter in {adapter_dir} does not say which base model it belongs to (or that "
                             f"model, {base!r}, is gone).", path=adapter_dir,
                             hint="Train it again with Hearth, or put the base model back where it was.")
    return resolve_base(base)


def reward_base_path(reward_dir: Path) -> Path:
    if (reward_dir / "config.json").is_file() and not (reward_dir / runs.ADAPTER_CONFIG).is_file():
        return reward_dir
    return adapter_base_path(reward_dir)


def load_reward_model(reward_dir: str | Path, device: str = "cpu"):
    """``(model, tokenizer)`` for a reward job's output folder (or a full sequence-classification folder).

    The adapter holds the LoRA weights and the trained ``score`` head; the head of the freshly
    built classification model is random until the adapter's copy replaces it.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    reward_dir = Path(reward_dir)
    adapter_cfg = _read_json(reward_dir / runs.ADAPTER_CONFIG)
    summary = _read_json(reward_dir / runs.SUMMARY)
    if adapter_cfg:
        if adapter_cfg.get("task_type") != "SEQ_CLS" or (summary and summary.get("method") not in (None, "reward")):
            raise RequestError(f"{reward_dir} is not a reward model (it was trained with "
                               f"{summary.get('method') or adapter_cfg.get('task_type')}).", path=reward_dir,
                               hint="Choose the output folder of a 'reward' job.")
        base = reward_base_path(reward_dir)
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "score.weight MISSING" is expected: the adapter brings it
        try:
            model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1, dtype=torch.float32,
                                                                       local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(reward_dir)).merge_and_unload()
    else:
        base = reward_dir
        model = AutoModelForSequenceClassification.from_pretrained(str(reward_dir), num_labels=1, local_files_only=True)
    tok_dir = reward_dir if (reward_dir / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise RequestError(
            f"The reward model in {reward_dir} does not match its tokenizer: the tokenizer in {tok_dir} has "
            f"{len(tokenizer)} tokens but the model knows {rows}.", path=reward_dir,
            hint="Use the tokenizer the reward model was trained with (train the reward model again if unsure).")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def load_tuned_model(adapter_dir: str | Path, device: str = "cpu"):
    """``(model, tokenizer)``: the adapter's base causal LM with the adapter applied (not merged)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / runs.ADAPTER_CONFIG).is_file():
        raise ModelFileError(f"{adapter_dir} holds no adapter (adapter_config.json is missing).", path=adapter_dir,
                             hint="Choose the output folder of a finished training job.")
    base = adapter_base_path(adapter_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, local_files_only=True)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    return model.to(device).eval(), AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)


def merge_adapter(adapter_dir: str | Path, target: str | Path) -> Path:
    """Merge a causal-LM adapter into its base and save a standalone safetensors folder.

    The folder is written beside ``target`` under a temporary name and renamed when complete, so
    an interrupted merge never leaves a half-written model that looks whole.
    """
    import os
    import shutil

    target = Path(target).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RequestError(f"The folder {target} already exists.", path=target, hint="Choose a new folder.")
    model, tokenizer = load_tuned_model(adapter_dir)
    merged = model.merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    if target.is_dir():
        target.rmdir()  # empty (checked above)
    os.replace(tmp, target)
    return target


def chat_text(tokenizer, prompt: Any, completion: Any = None, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> str:
    """The text a model sees for ``prompt`` (+ ``completion``), with the chat template when there is one."""
    if not getattr(tokenizer, "chat_template", None):
        return (prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)) + (
            "" if completion is None else (completion if isinstance(completion, str) else completion[-1]["content"]))
    messages = list(prompt) if isinstance(prompt, list) else (
        ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": prompt}])
    if completion is None:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    reply = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
    return tokenizer.apply_chat_template(messages + reply, tokenize=False)


def reward_scores(model, tokenizer, prompts: list, completions: list, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[float]:
    """The reward model's score for each (prompt, completion)."""
    import torch

    texts = [chat_text(tokenizer, p, c, system_prompt) for p, c in zip(prompts, completions)]
    scores = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
            scores.append(float(model(**enc).logits[0, 0]))
    return scores
